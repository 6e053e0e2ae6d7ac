from pathlib import Path

import pytest
from brickyard.pipelines.config import PipelineConfig, config_hash, from_dict, load_config
from brickyard.pipelines.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return p


def test_demo_config_loads_with_the_sample_source():
    cfg = load_config(REPO / "configs" / "demo.yaml")
    assert [s.name for s in cfg.sources] == ["sample"]
    assert cfg.sources[0].kind == "sample"
    assert cfg.sources[0].parts["stdlib"] == 6
    assert [(s.name, s.format) for s in cfg.decontaminate.eval_sets] == [("demo_passages", "sample")]


def test_unknown_key_is_named_with_a_suggestion(tmp_path):
    p = write(tmp_path, "sources:\n  - {name: a, kind: jsonl, path: x, txt_field: body}\n")
    with pytest.raises(ConfigError, match=r"sources\[0\]: unknown key 'txt_field' \(did you mean 'text_field'\?\)"):
        load_config(p)


def test_wrong_type_names_the_place_and_the_value(tmp_path):
    p = write(tmp_path, "ingest:\n  max_doc_bytes: lots\n")
    with pytest.raises(ConfigError, match=r"ingest.max_doc_bytes: expected an integer, got 'lots'"):
        load_config(p)


def test_out_of_range_value_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="max_doc_bytes: must be greater than 0"):
        load_config(write(tmp_path, "ingest: {max_doc_bytes: 0}\n"))


def test_unknown_kind_lists_the_choices(tmp_path):
    p = write(tmp_path, "sources:\n  - {name: a, kind: jsnl, path: x}\n")
    with pytest.raises(ConfigError, match=r"kind: expected one of .*'jsonl'.*did you mean 'jsonl'"):
        load_config(p)


def test_unknown_domain_is_refused_unless_declared(tmp_path):
    p = write(tmp_path, "sources:\n  - {name: a, kind: text, path: x, domain: webb}\n")
    with pytest.raises(ConfigError, match=r"unknown domain 'webb' \(did you mean 'web'\?\)"):
        load_config(p)
    p = write(tmp_path, "domains: [forum]\nsources:\n  - {name: a, kind: text, path: x, domain: forum}\n")
    assert load_config(p).sources[0].domain == "forum"


def test_duplicate_source_names_and_bad_names_are_refused(tmp_path):
    p = write(tmp_path, "sources:\n  - {name: a, kind: text, path: x}\n  - {name: a, kind: text, path: y}\n")
    with pytest.raises(ConfigError, match="declared twice"):
        load_config(p)
    with pytest.raises(ConfigError, match="must be lower case"):
        load_config(write(tmp_path, "sources:\n  - {name: My-Src, kind: text, path: x}\n"))


def test_a_file_source_needs_a_path_and_the_sample_needs_none(tmp_path):
    with pytest.raises(ConfigError, match="a jsonl source needs a 'path'"):
        load_config(write(tmp_path, "sources:\n  - {name: a, kind: jsonl}\n"))
    with pytest.raises(ConfigError, match="unknown part 'stdlb'.*did you mean 'stdlib'"):
        load_config(write(tmp_path, "sources:\n  - {name: s, kind: sample, parts: {stdlb: 1}}\n"))


def test_invalid_yaml_gets_its_line(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML at line 2"):
        load_config(write(tmp_path, "lakehouse: x\n  owner: : y\nspark: {}\n"))


def test_missing_config_file_is_one_sentence(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_relative_source_paths_resolve_against_the_config_file(tmp_path):
    cfg = load_config(write(tmp_path, "sources:\n  - {name: a, kind: text, path: data}\n"))
    assert cfg.source_path(cfg.sources[0]) == tmp_path.resolve() / "data"


def test_config_hash_ignores_key_order_and_sees_values():
    a = from_dict(PipelineConfig, {"lakehouse": "x", "catalog": {"owner": "o"}})
    b = from_dict(PipelineConfig, {"catalog": {"owner": "o"}, "lakehouse": "x"})
    c = from_dict(PipelineConfig, {"catalog": {"owner": "p"}, "lakehouse": "x"})
    assert config_hash(a) == config_hash(b) != config_hash(c)


def test_dedup_settings_per_domain_and_their_mistakes():
    cfg = from_dict(PipelineConfig, {"dedup": {"threshold": 0.85, "domains": {"code": {"ngram": 7, "num_perm": 256}}}})
    assert cfg.dedup.scheme("code") == (7, 256, 0.85)
    assert cfg.dedup.scheme("web") == (5, 128, 0.85)
    with pytest.raises(ConfigError, match=r"dedup.threshold: a Jaccard similarity strictly between 0 and 1, got 1.5"):
        from_dict(PipelineConfig, {"dedup": {"threshold": 1.5}})
    with pytest.raises(ConfigError, match=r"dedup.domains: unknown domain 'cod' \(did you mean 'code'\?\)"):
        from_dict(PipelineConfig, {"dedup": {"domains": {"cod": {"ngram": 7}}}})
    with pytest.raises(ConfigError, match=r"dedup.domains.code.num_perm: must be between 16 and 1024"):
        from_dict(PipelineConfig, {"dedup": {"domains": {"code": {"num_perm": 4}}}})
    with pytest.raises(ConfigError, match=r"dedup.keeper\[1\]: 'length desc' is not 'COLUMN \[asc\|desc\]'"):
        from_dict(PipelineConfig, {"dedup": {"keeper": ["quality_score desc", "length desc"]}})
    with pytest.raises(ConfigError, match=r"dedup.keeper\[0\]: .* \(did you mean 'n_bytes'\?\)"):
        from_dict(PipelineConfig, {"dedup": {"keeper": ["n_byte"]}})


def test_below_the_document_dedup_is_off_by_default_and_its_mistakes_are_one_sentence():
    plain = from_dict(PipelineConfig, {})
    assert not plain.dedup.spans.enabled and not plain.dedup.containment.enabled
    cfg = from_dict(PipelineConfig, {"dedup": {"spans": {"lines": True}, "containment": {"enabled": True, "max_df": 50}}})
    assert cfg.dedup.spans.enabled and (cfg.dedup.spans.min_chars, cfg.dedup.spans.min_words) == (40, 50)
    assert (cfg.dedup.containment.threshold, cfg.dedup.containment.max_df) == (0.8, 50)
    for bad, says in (
        ({"containment": {"threshold": 0}}, r"dedup.containment.threshold: a containment above 0 and at most 1, got 0"),
        ({"containment": {"max_df": 1}}, r"dedup.containment.max_df: at least 2 \(a shingle must be shared"),
        ({"containment": {"ngram": 0}}, r"dedup.containment.ngram: must be greater than 0, got 0"),
        ({"spans": {"min_chars": 0}}, r"dedup.spans.min_chars: must be greater than 0, got 0"),
        ({"spans": {"min_words": -1}}, r"dedup.spans.min_words: must be 0 or more, got -1"),
        ({"spans": {"paragraph": True}}, r"dedup.spans: unknown key 'paragraph' \(did you mean 'paragraphs'\?\)"),
        ({"spans": {"lines": "yes"}}, r"dedup.spans.lines: expected true or false"),
    ):
        with pytest.raises(ConfigError, match=says):
            from_dict(PipelineConfig, {"dedup": bad})
