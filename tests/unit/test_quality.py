"""The quality classifier's pure parts: preprocessing, tiers, ROC AUC, and fastText training."""

from __future__ import annotations

import re

import pytest
from brickyard.pipelines.config import QualitySettings, from_dict
from brickyard.pipelines.errors import ConfigError
from brickyard.pipelines.text.quality import (
    fasttext_line,
    load,
    roc_auc,
    score_texts,
    tier_of,
    tier_sql,
    train_fasttext,
)

from tests.helpers import real_metadata_texts
from tests.roff import roff_text

TIERS = {"high": 0.7, "medium": 0.3, "low": 0.0}


def test_fasttext_line_is_one_lower_case_line_cut_to_length():
    assert fasttext_line("Hello\n  World\tAGAIN\r\n", 100) == "hello world again"
    assert fasttext_line("abcdef ghij", 4) == "abcd"


@pytest.mark.parametrize("score,tier", [(None, "unscored"), (0.0, "low"), (0.29, "low"), (0.3, "medium"), (0.7, "high"), (1.0, "high")])
def test_tiers_take_the_highest_threshold_reached(score, tier):
    assert tier_of(score, TIERS) == tier


def test_a_score_below_every_threshold_gets_the_lowest_tier():
    assert tier_of(0.1, {"good": 0.8, "ok": 0.5}) == "ok"
    assert "ELSE 'ok'" in tier_sql({"good": 0.8, "ok": 0.5})


def test_roc_auc_by_hand():
    assert roc_auc([0.9, 0.8, 0.3, 0.1], [1, 1, 0, 0]) == 1.0
    assert roc_auc([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) == 0.0
    # positives 0.8 and 0.4, negatives 0.6 and 0.2: 3 of the 4 pairs are ordered right
    assert roc_auc([0.8, 0.4, 0.6, 0.2], [1, 1, 0, 0]) == 0.75
    assert roc_auc([0.5, 0.5], [1, 0]) == 0.5  # a tie counts half


def _man_pages(n):
    from pathlib import Path

    pages = sorted(Path("/usr/share/man/man1").glob("*.gz"))
    texts = [roff_text(p) for p in pages[: n * 3]]
    return [t for t in texts if len(t) > 500][:n]


def test_fasttext_learns_readmes_from_man_pages_from_the_same_training_file(tmp_path):
    readmes = real_metadata_texts(60)
    pages = _man_pages(60)
    if len(readmes) < 40 or len(pages) < 40:
        pytest.skip("this machine has too few package READMEs or man pages")
    q = QualitySettings(holdout=0.25, min_count=1)
    runs = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        runs.append(train_fasttext(readmes, pages, q, str(tmp_path / name)))
    a, b = runs
    assert a.n_train + a.n_holdout == len(readmes) + len(pages)
    # the seed fixes the split, the order and the chunks: the same training file
    assert (tmp_path / "a" / "train.txt").read_bytes() == (tmp_path / "b" / "train.txt").read_bytes()
    for r in runs:
        assert r.metrics["holdout_auc"] > 0.9, r.metrics
        probe = score_texts(load(r.path), readmes[:10] + pages[:10], q.max_chars)
        assert all(0 <= s <= 1 for s in probe)
        assert sum(probe[:10]) / 10 > sum(probe[10:]) / 10 + 0.3


@pytest.mark.parametrize("bad,message", [
    ({"tiers": {"high": 1.5}}, "quality.tiers.high: a threshold is a score in [0, 1]"),
    ({"tiers": {}}, "name at least one tier"),
    ({"negatives": "everything"}, "quality.negatives: expected 'random', 'rejected' or a selection (a mapping like positives), got 'everything'"),
    ({"negatives": "rejectd"}, "got 'rejectd' (did you mean 'rejected'?)"),
    ({"negatives": 5}, "quality.negatives: expected 'random', 'rejected' or a selection"),
    ({"negatives": {"wher": "source = 'x'"}}, "quality.negatives: unknown key 'wher' (did you mean 'where'?)"),
    ({"negatives": {"table": "docs"}}, "quality.negatives.table: expected schema.table"),
    ({"negatives": {"kept_only": "yes"}}, "quality.negatives.kept_only: expected true or false, got 'yes'"),
    ({"positives": {}}, "selects all of silver.documents"),
    ({"positives": {"table": "docs"}}, "quality.positives.table: expected schema.table"),
    ({"holdout": 1.0}, "quality.holdout: must be at least 0 and below 1"),
    ({"retrain_drift": -0.1}, "quality.retrain_drift: must be at least 0 and below 1"),
    ({"kinds": ["prose"]}, "quality.kinds[0]: expected one of 'text', 'code'"),
])
def test_bad_quality_settings_get_one_clear_sentence(bad, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        from_dict(QualitySettings, bad, where="quality")


def test_negatives_are_random_rejected_or_a_selection_of_their_own():
    from brickyard.pipelines.config import Selection, to_dict

    assert from_dict(QualitySettings, {}, where="quality").negatives == "random"
    assert from_dict(QualitySettings, {"negatives": "rejected"}, where="quality").negatives == "rejected"
    q = from_dict(QualitySettings, {"negatives": {"where": "source = 'forum'", "kept_only": False}}, where="quality")
    assert q.negatives == Selection(where="source = 'forum'", kept_only=False)
    assert to_dict(q)["negatives"] == {"table": "silver.documents", "domains": [], "where": "source = 'forum'", "kept_only": False}


def test_a_registered_model_stands_until_a_class_drifts_by_retrain_drift_or_the_recipe_changes():
    from brickyard.pipelines.stages.quality import recipe, still_stands

    trained = "r1-200-00aa-400-00bb"
    assert still_stands(trained, trained, 0.1) == "was trained on the same data and settings"
    # one new negative of 400 (0.25%), and a replaced positive (same count, another hash): it stands
    why = still_stands(trained, "r1-200-11cc-401-22dd", 0.1)
    assert why and "positives changed by 0.0% and its negatives by 0.2%" in why and "retrain_drift (10%)" in why
    assert still_stands(trained, "r1-219-11cc-400-00bb", 0.1)  # 9.5% more positives
    assert still_stands(trained, "r1-220-11cc-400-00bb", 0.1) is None  # 10%: trained again
    assert still_stands(trained, "r1-200-00aa-360-11cc", 0.1) is None  # 10% fewer negatives
    assert still_stands(trained, "r2-200-00aa-400-00bb", 0.1) is None  # another recipe
    assert still_stands(trained, "r1-200-00aa-401-22dd", 0.0) is None  # 0: any change of data trains
    assert still_stands(None, trained, 0.1) is None and still_stands("an-older-form", trained, 0.1) is None
    # neither the tiers nor the drift are part of the recipe (changing them trains nothing)
    q = {"dim": 32, "tiers": {"high": 0.7}, "retrain_drift": 0.1}
    assert recipe(q) == {"dim": 32}
