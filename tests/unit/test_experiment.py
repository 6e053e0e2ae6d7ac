"""The DBRX-claims experiment's arithmetic (bench/experiments/dbrx_claims.py): where a loss curve
reaches a target, the ratios and their spread, the corpus split, the near-duplicate banding, and
the model arms' parameter budgets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def claims():
    spec = importlib.util.spec_from_file_location("dbrx_claims", REPO / "bench" / "experiments" / "dbrx_claims.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["dbrx_claims"] = mod  # dataclasses look their module up while the class is made
    spec.loader.exec_module(mod)
    return mod


def test_reach_interpolates_between_validations_and_says_when_never(claims):
    xs, losses = [0, 100, 200, 300], [10.0, 8.0, 6.0, 5.0]
    assert claims.reach(xs, losses, 7.0) == pytest.approx(150)
    assert claims.reach(xs, losses, 6.0) == pytest.approx(200)
    assert claims.reach(xs, losses, 11.0) == 0
    assert claims.reach(xs, losses, 4.9) is None


def test_ratios_compare_against_the_baselines_final_loss(claims):
    curated = {"tokens": [0, 100, 200], "flops": [0, 1e9, 2e9], "val_loss": [10.0, 6.0, 5.0]}
    raw = {"tokens": [0, 100, 200], "flops": [0, 1e9, 2e9], "val_loss": [10.0, 8.0, 6.0]}
    assert claims.ratio(curated, raw, "tokens") == pytest.approx(0.5)  # raw's 6.0 reached at 100 of 200 tokens
    # raw never comes down to curated's 5.0: read the other way, its 2e9 FLOPs over curated's 1e9 to reach 6.0
    assert claims.ratio(raw, curated, "flops") == pytest.approx(2.0)
    # a run that never gets below where the baseline started: no ratio either way
    worse = {"tokens": [0, 100], "flops": [0, 1e9], "val_loss": [13.0, 12.5]}
    assert claims.ratio(worse, {"tokens": [0, 100], "flops": [0, 1e9], "val_loss": [12.0, 11.0]}, "tokens") is None
    s = claims.spread([0.5, None, 0.7])
    assert s["mean"] == pytest.approx(0.6) and (s["min"], s["max"], s["reached"]) == (0.5, 0.7, "2/3")
    assert claims.spread([None])["mean"] is None


def test_text_and_code_parts_take_their_shares_of_the_megabytes(claims):
    parts = [claims.Part("t1", "text", "docs", Path("/a"), ()), claims.Part("t2", "text", "docs", Path("/b"), ()),
             claims.Part("c1", "code", "code", Path("/c"), ()), claims.Part("c2", "code", "code", Path("/d"), ())]
    listing = {"t1": [("x", 60_000_000)], "t2": [("y", 40_000_000)], "c1": [("z", 10_000_000)], "c2": [("w", 100_000_000)]}
    f = claims.fractions(parts, listing, mb=100)
    assert f["t1"] == f["t2"] == pytest.approx(0.55)  # 55 MB of the 100 MB of text
    assert f["c1"] == 1.0  # smaller than its 22.5 MB split: all of it
    assert f["c2"] == pytest.approx(0.225)


def test_near_duplicates_share_a_band_and_unrelated_texts_do_not(claims):
    base = " ".join(f"word{i}" for i in range(400))
    near = base.replace("word200 ", "changed ")
    other = " ".join(f"token{i}" for i in range(400))
    a, b, c, short, short_again, empty = claims.band_rows([base, near, other, "too short", "too  short", ""], threshold=0.8)
    assert set(a) & set(b)
    assert not set(a) & set(c)
    assert short == short_again  # fewer words than a shingle: the words are one shingle, as in dedup
    assert empty is None
    assert claims.normalized_sha("A  b\nC") == claims.normalized_sha("a b c")


def test_the_dense_arms_match_the_moes_active_and_total_parameters(claims):
    from brickyard.model.presets import get_preset, param_counts

    counts = {arm: param_counts(get_preset("tiny", **claims.model_overrides(claims.FULL, arm))) for arm in claims.ARMS}
    moe, active, total = counts["moe-curated"], counts["dense-active"], counts["dense-total"]
    ffn = lambda c: c["total"] - c["embedding"]  # noqa: E731
    assert abs(active["active"] - moe["active"]) / moe["active"] < 0.001  # the router is the only difference
    assert abs(ffn(total) - ffn(moe)) / ffn(moe) < 0.01
    assert counts["moe-raw"] == moe
