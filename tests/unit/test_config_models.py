"""The config sections as pydantic models: the hashes recorded in existing lakehouses do not move,
a pydantic ValidationError never reaches the user, rules wait while code builds a config, and
`from_dict` still builds plain dataclasses."""

from __future__ import annotations

from pathlib import Path

import pytest
from brickyard.pipelines.config import (
    DedupSettings,
    PipelineConfig,
    QualitySettings,
    SourceConfig,
    config_hash,
    from_dict,
    load_config,
    to_dict,
)
from brickyard.pipelines.curriculum import Curriculum, load_curriculum
from brickyard.pipelines.errors import ConfigError
from pydantic import BaseModel, ValidationError

REPO = Path(__file__).resolve().parents[2]

# Taken with the dataclass implementation, before the move to pydantic; dedup's (and so the whole
# config's) taken again when dedup gained its containment and spans settings. The whole config's
# hash includes base_dir (the config file's folder), so it is pinned for a folder of its own (the
# same config in another folder hashes differently: bed1052ae83cfd23 was this config's hash in the
# folder it was first taken in).
PINNED_BASE_DIR = "/srv/brickyard/configs"
# The demo gained its evaluation set and span dedup, then quality gained retrain_drift (which its
# stage leaves out of what it hashes: QUALITY_RECIPE_HASH below did not move)
DEMO_HASH = "5e0e33296cd7b6f1"
DEMO_SECTION_HASHES = {  # the sections' own hashes
    "sources": "40c997c334110bb0", "catalog": "29ea1feb4b14bef8", "spark": "f8713786097c92fc",
    "ingest": "f7ce8cb6e143eb3d", "curate": "0cd925aeca919d4a", "quality": "0861d1c31a86bd95",
    "dedup": "8bc3ba96253f3177", "tokenize": "5a91a7eae6652deb", "export": "acbb12d135430451",
    "train": "72b3d5cfaaa9ee0d",
}
# what the quality stage hashes into its lineage rows and its models' fingerprints (all but the tiers
# and retrain_drift), taken before retrain_drift existed
QUALITY_RECIPE_HASH = "437cd63e39df9de4"
CURRICULUM_HASHES = {"demo": "b2eab0941bc37e08", "dbrx-like": "53484d940d686bad", "tinyllama-like": "983c816a00701898"}
SPEC_HASHES = {"demo": "c53a675bfc490506", "dbrx-like": "140f44c6ec947365", "tinyllama-like": "6a6526e76066d5b3"}


def test_the_demo_config_hashes_as_before():
    cfg = load_config(REPO / "configs" / "demo.yaml")
    cfg.base_dir = PINNED_BASE_DIR
    assert config_hash(cfg) == DEMO_HASH
    assert {name: config_hash(getattr(cfg, name)) for name in DEMO_SECTION_HASHES} == DEMO_SECTION_HASHES
    from brickyard.pipelines.stages.quality import recipe

    assert config_hash(recipe(to_dict(cfg.quality))) == QUALITY_RECIPE_HASH


@pytest.mark.parametrize("name", sorted(CURRICULUM_HASHES))
def test_the_shipped_curricula_hash_as_before(name):
    from brickyard.pipelines.stages.export import spec_hash

    spec = load_curriculum(REPO / "configs" / "curriculum" / f"{name}.yaml")
    assert config_hash(spec) == CURRICULUM_HASHES[name]
    assert spec_hash(spec) == SPEC_HASHES[name]


def test_to_dict_is_plain_data_in_field_order_with_integers_as_floats_where_declared():
    cfg = from_dict(PipelineConfig, {"dedup": {"threshold": 0.85}, "quality": {"tiers": {"a": 1, "b": 0}, "lr": 1}})
    d = to_dict(cfg)
    assert list(d) == list(PipelineConfig.model_fields)
    assert d["quality"]["tiers"] == {"a": 1.0, "b": 0.0} and isinstance(d["quality"]["lr"], float)
    assert isinstance(d["dedup"]["domains"], dict) and isinstance(d["sources"], list)
    assert config_hash(cfg) == config_hash(d)


@pytest.mark.parametrize("data, message", [
    (3, "c.yaml: expected a mapping, got 3"),
    ({"spark": 3}, "c.yaml.spark: expected a mapping, got 3"),
    ({"spark": {"ui": 1}}, "c.yaml.spark.ui: expected true or false, got 1"),
    ({"ingest": {"max_doc_bytes": 1.0}}, "c.yaml.ingest.max_doc_bytes: expected an integer, got 1.0"),
    ({"ingest": {"partitions": 0}}, "c.yaml.ingest.partitions: must be greater than 0, got 0"),
    ({"sources": [None]}, "c.yaml.sources[0]: missing required key 'name'"),
    ({"sources": [{"name": "a", "kind": "jsnl", "path": "x"}]},
     "c.yaml.sources[0].kind: expected one of 'jsonl', 'parquet', 'text', 'code', 'warc', 'sample', got 'jsnl' (did you mean 'jsonl'?)"),
    ({"sources": [{"name": "s", "kind": "sample", "parts": {"stdlib": -1}}]}, "c.yaml.sources[0].parts.stdlib: must be 0 or more, got -1.0"),
    ({"sources": [{"name": "a", "kind": "jsonl"}]}, "c.yaml.sources[0]: a jsonl source needs a 'path'"),
    ({"sources": [{"name": "books", "kind": "text", "path": "x", "encoding": "cp1252x"}]},
     "c.yaml.sources[0].encoding: source 'books': 'cp1252x' is not a text encoding Python knows; name one such as cp1252, latin-1, utf-16-le or shift_jis"),
    ({"sources": [{"name": "books", "kind": "text", "path": "x", "encoding": "base64"}]},
     "c.yaml.sources[0].encoding: source 'books': 'base64' is not a text encoding Python knows"),
    ({"sources": [{"name": "web", "kind": "jsonl", "path": "x", "encoding": "cp1252"}]},
     "c.yaml.sources[0].encoding: only text and code sources take an encoding (JSON Lines are UTF-8"),
    ({"curate": {"rules": {"gopher_mean_word_length": {"min": 5, "max": 1}}}}, "c.yaml.curate.rules.gopher_mean_word_length: min 5 is above max 1"),
    ({"curate": {"rules": {"gopher_mean_word_length": {"min": "x"}}}}, "c.yaml.curate.rules.gopher_mean_word_length.min: expected a number, got 'x'"),
    ({"quality": {"kinds": "text"}}, "c.yaml.quality.kinds: expected a list, got 'text'"),
    ({"dedup": {"domains": {"code": {"ngam": 3}}}},
     "c.yaml.dedup.domains.code: unknown key 'ngam' (did you mean 'ngram'?); allowed: ngram, num_perm, threshold"),
    ({"dedup": {"lsh_weights": [0.5]}}, "c.yaml.dedup.lsh_weights: two weights, false positives then false negatives"),
    # several mistakes: unknown keys first, then the fields in order, then the section's own rules
    ({"dedup": {"threshold": "a"}, "zzz": 1}, "c.yaml: unknown key 'zzz'"),
    ({"ingest": {"batch_rows": 0, "partitions": "x"}}, "c.yaml.ingest.partitions: expected an integer, got 'x'"),
])
def test_mistakes_are_one_config_error_sentence_never_a_validation_error(data, message):
    with pytest.raises(ConfigError) as e:
        from_dict(PipelineConfig, data, "c.yaml")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)
    assert not isinstance(e.value, ValidationError) and e.value.__cause__ is None


def test_a_source_encoding_is_any_python_text_codec_and_hashes_only_once_set():
    plain = {"name": "books", "kind": "text", "path": "x"}
    for name in ("cp1252", "latin-1", "UTF-16-LE", "shift_jis", "koi8_r"):
        assert from_dict(SourceConfig, {**plain, "encoding": name}).encoding == name
    unset = from_dict(SourceConfig, plain)
    assert "encoding" not in to_dict(unset)  # configs without it hash as they did before it existed
    assert to_dict(from_dict(SourceConfig, {**plain, "encoding": "cp1252"}))["encoding"] == "cp1252"
    assert config_hash(from_dict(SourceConfig, {**plain, "encoding": "cp1252"})) != config_hash(unset)


def test_an_empty_section_means_its_defaults_and_mapping_keys_are_names():
    cfg = from_dict(PipelineConfig, {"spark": None, "dedup": {"domains": {"code": None}}})
    assert cfg.spark == PipelineConfig().spark and cfg.dedup.scheme("code") == (5, 128, 0.8)
    assert from_dict(PipelineConfig, {"spark": {"conf": {1: "x"}}}).spark.conf == {"1": "x"}


def test_code_builds_and_adjusts_a_config_and_its_rules_wait_for_validate():
    s = SourceConfig(name="bad", kind="text")  # types are checked now, rules later
    with pytest.raises(ConfigError, match=r"^test: a text source needs a 'path'$"):
        s.validate("test")
    s.path = "x"
    s.validate("test")
    cfg = PipelineConfig(sources=[SourceConfig(name="a", kind="text", path="x")])
    cfg.dedup = DedupSettings(threshold=2.0)
    with pytest.raises(ConfigError, match=r"^test.dedup.threshold: a Jaccard similarity strictly between 0 and 1, got 2.0$"):
        cfg.validate("test")
    cfg.dedup.threshold = 0.5
    cfg.validate("test")
    with pytest.raises(ValidationError):  # a wrong type set in code is a bug in that code, caught at once
        cfg.spark.ui = "no"


def test_pydantics_own_entry_point_applies_the_rules():
    with pytest.raises(ValidationError, match="a threshold is a score in"):
        QualitySettings.model_validate({"tiers": {"high": 2}})
    assert isinstance(QualitySettings.model_validate({}), BaseModel)


def test_curriculum_models_built_in_code_validate_like_loaded_ones():
    from brickyard.pipelines.curriculum import PhaseSpec, StreamSpec

    spec = Curriculum(name="c", seq_len=8, tokens=80, streams={"a": StreamSpec(), "b": StreamSpec()},
                      phases=[PhaseSpec(name="p", share=1.0, mix={"a": 1.0})])
    with pytest.raises(ConfigError, match=r"^spec.streams: a and b overlap"):
        spec.validate("spec")


