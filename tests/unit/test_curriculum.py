"""Curriculum specs: validation messages, the shipped specs, and the split of the budget into phase
and stream samples."""

from __future__ import annotations

from pathlib import Path

import pytest
from brickyard.pipelines.config import from_dict
from brickyard.pipelines.curriculum import (
    Curriculum,
    largest_remainder,
    load_curriculum,
    plan_phases,
)
from brickyard.pipelines.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def spec(**over) -> dict:
    base = {
        "name": "t", "seq_len": 8, "tokens": 8000,
        "streams": {"text": {"domains": ["docs"]}, "code": {"domains": ["code"]}},
        "phases": [{"name": "a", "share": 0.75, "mix": {"text": 0.7, "code": 0.3}},
                   {"name": "b", "share": 0.25, "mix": {"text": 0.5, "code": 0.5}}],
    }
    return base | over


def make(**over) -> Curriculum:
    return from_dict(Curriculum, spec(**over), "spec")


@pytest.mark.parametrize("over, message", [
    ({"seq_len": 0}, r"spec.seq_len: must be at least 1, got 0"),
    ({"tokens": 4}, r"spec.tokens: the budget \(4\) must hold at least one sample"),
    ({"phases": [{"name": "a", "share": 0.5, "mix": {"text": 1.0}}]}, r"spec.phases: the phase shares add up to 0.5, not 1"),
    ({"phases": [{"name": "a", "share": 1.0, "mix": {"text": 0.7, "code": 0.2}}]}, r"spec.phases\[0\].mix: the stream shares add up to 0.9, not 1"),
    ({"phases": [{"name": "a", "share": 1.0, "mix": {"txt": 1.0}}]}, r"unknown stream 'txt' \(did you mean 'text'\?\); streams: text, code"),
    ({"phases": [{"name": "a", "share": 1.0, "mix": {"text": 1.5, "code": -0.5}}]}, r"mix.code: a share cannot be negative"),
    ({"phases": []}, r"spec.phases: declare at least one phase"),
    ({"streams": {}}, r"spec.streams: declare at least one stream"),
    ({"streams": {"all": {}, "code": {"domains": ["code"]}}}, r"all and code overlap"),
    ({"streams": {"a": {"domains": ["docs"], "tiers": ["high"]}, "b": {"domains": ["docs", "code"]}}}, r"a and b overlap"),
    ({"phases": [{"name": "a", "share": 0.5, "mix": {"text": 1.0}}, {"name": "a", "share": 0.5, "mix": {"code": 1.0}}]}, r"phase 'a' is declared twice"),
    ({"compression": "gzip"}, r"spec.compression: expected one of 'zstd', 'none'"),
    ({"sequence_length": 8}, r"unknown key 'sequence_length'"),
])
def test_bad_spec_values_get_one_clear_message(over, message):
    with pytest.raises(ConfigError, match=message):
        make(**over)


def test_streams_can_select_sources_and_split_by_them_do_not_overlap():
    s = make(streams={"train": {"sources": ["wiki", "books"]}, "held": {"sources": ["heldout_wiki"]}},
             phases=[{"name": "a", "share": 1.0, "mix": {"train": 1.0}}])
    assert s.streams["train"].condition() == "source IN ('wiki', 'books')"
    with pytest.raises(ConfigError, match="a and b overlap"):
        make(streams={"a": {"sources": ["wiki"]}, "b": {"domains": ["docs"], "sources": ["wiki", "x"]}})


def test_a_spec_without_sources_keeps_the_export_id_it_had_before_sources_existed():
    from brickyard.pipelines.config import config_hash, to_dict
    from brickyard.pipelines.stages.export import spec_hash

    s = make()
    before = to_dict(s)
    for stream in before["streams"].values():
        del stream["sources"]  # the spec's form before streams could select sources
    assert spec_hash(s) == config_hash(before)
    assert spec_hash(make(streams={"text": {"domains": ["docs"], "sources": ["a"]}, "code": {"domains": ["code"]}})) != spec_hash(s)


def test_streams_split_by_tier_do_not_overlap():
    s = make(streams={"hi": {"domains": ["docs"], "tiers": ["high"]}, "rest": {"domains": ["docs"], "tiers": ["low", "unscored"]}},
             phases=[{"name": "a", "share": 1.0, "mix": {"hi": 0.5, "rest": 0.5}}])
    assert s.streams["hi"].condition() == "domain IN ('docs') AND quality_tier IN ('high')"


def test_shipped_specs_validate_and_say_what_they_claim():
    dbrx = load_curriculum(REPO / "configs/curriculum/dbrx-like.yaml")
    broad, anneal = dbrx.phases
    assert anneal.mix["text_high"] > broad.mix["text_high"] and anneal.mix["code"] > broad.mix["code"]
    assert "text_rest" not in anneal.mix and broad.share > anneal.share
    tl = load_curriculum(REPO / "configs/curriculum/tinyllama-like.yaml")
    assert len(tl.phases) == 1 and tl.phases[0].mix == {"text": 0.7, "code": 0.3}
    demo = load_curriculum(REPO / "configs/curriculum/demo.yaml")
    assert len(demo.phases) == 2


def test_missing_or_broken_spec_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="curriculum file .*nope.yaml does not exist"):
        load_curriculum(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML at line"):
        load_curriculum(tmp_path / "bad.yaml")


def test_largest_remainder_hands_out_exactly_the_total():
    for total in (0, 1, 7, 1000, 12345):
        got = largest_remainder(total, {"a": 0.7, "b": 0.2, "c": 0.1})
        assert sum(got.values()) == total
        assert all(abs(got[k] - total * w) < 1 for k, w in {"a": 0.7, "b": 0.2, "c": 0.1}.items())
    assert largest_remainder(3, {"x": 0.5, "y": 0.5}) == largest_remainder(3, {"y": 0.5, "x": 0.5})


def test_phase_plans_give_token_shares_within_one_sample():
    s = make()  # 8000 tokens / 8 per sample = 1000 samples
    plans, warnings = plan_phases(s, {"text": 10_000, "code": 10_000})
    assert [p.samples for p in plans] == [750, 250] and not warnings
    a, b = plans
    assert a.streams["text"]["samples"] == 525 and a.streams["code"]["samples"] == 225
    for p, phase in zip(plans, s.phases, strict=True):
        for name, st in p.streams.items():
            assert abs(st["proportion"] - phase.mix[name]) <= 1 / p.samples


def test_a_stream_smaller_than_its_share_repeats_with_a_warning():
    plans, warnings = plan_phases(make(), {"text": 100, "code": 10_000})
    assert plans[0].streams["text"]["repeat"] == pytest.approx(5.25)
    assert any("phase a: stream text has 100 samples but the phase takes 525: each repeats 5.25 times" in w for w in warnings)


def test_streams_read_more_than_once_over_the_phases_are_named():
    plans, warnings = plan_phases(make(), {"text": 600, "code": 10_000})  # 525 + 125 > 600, no phase alone
    assert warnings == ["stream text: the phases together take 650 of its 600 samples: read 1.08 times over the run"]


def test_an_empty_stream_with_a_share_is_an_error_and_without_one_is_fine():
    with pytest.raises(ConfigError, match="phase a needs 225 samples of stream code, which has none"):
        plan_phases(make(), {"text": 10_000, "code": 0})
    s = make(streams={"text": {"domains": ["docs"]}, "code": {"domains": ["code"]}, "web": {"domains": ["web"]}},
             phases=[{"name": "a", "share": 1.0, "mix": {"text": 0.5, "code": 0.5, "web": 0.0}}])
    plans, _ = plan_phases(s, {"text": 10_000, "code": 10_000, "web": 0})
    assert plans[0].streams["web"]["samples"] == 0
