"""Evaluation sets: their settings and mistakes, their files, their items (fields, list fields,
ids, paragraphs, compressed files), and the demo's sample set built from this machine's text."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from brickyard.pipelines.config import EvalSetConfig, PipelineConfig, from_dict, load_config
from brickyard.pipelines.errors import ConfigError
from brickyard.pipelines.sources.evalsets import (
    EvalSetError,
    field_texts,
    list_files,
    paragraphs,
    read_items,
    sample_items,
    write_sample,
)


def eval_set(**kw) -> EvalSetConfig:
    return from_dict(PipelineConfig, {"decontaminate": {"eval_sets": [kw]}}).decontaminate.eval_sets[0]


def test_settings_per_set_fall_back_to_the_stage_defaults():
    cfg = from_dict(PipelineConfig, {"decontaminate": {"containment": 0.6, "eval_sets": [
        {"name": "mmlu", "path": "mmlu.jsonl", "fields": ["question", "choices"]},
        {"name": "short", "path": "s.parquet", "fields": ["q"], "mode": "containment", "ngram": 8}]}})
    d = cfg.decontaminate
    assert (d.ngram, d.mode, d.min_words, d.reject) == (13, "ngram", 8, True)
    assert d.scheme(d.eval_sets[0]) == (13, "ngram", 0.6) and d.scheme(d.eval_sets[1]) == (8, "containment", 0.6)


@pytest.mark.parametrize("sets,message", [
    ([{"name": "a", "path": "x.jsonl"}], r"eval_sets\[0\]: a jsonl evaluation set needs 'fields'"),
    ([{"name": "a", "path": "x.txt", "fields": ["q"]}], r"eval_sets\[0\].fields: a text evaluation set holds one item per paragraph"),
    ([{"name": "a"}], r"eval_sets\[0\]: an evaluation set needs a 'path' \(a file or a folder\), or format: sample"),
    ([{"name": "a", "format": "sample", "path": "x"}], r"eval_sets\[0\].path: the sample evaluation set .* reads no path; remove it"),
    ([{"name": "a", "path": "x", "fields": ["q"], "items": 3}], r"eval_sets\[0\].items: only the sample evaluation set takes items"),
    ([{"name": "a", "path": "x", "fields": ["q"], "mode": "contain"}], r"eval_sets\[0\].mode: expected one of .*did you mean 'containment'"),
    ([{"name": "a", "path": "x", "fields": ["q"], "containment": 0}], r"eval_sets\[0\].containment: a share of the item's n-grams, above 0"),
    ([{"name": "A-1", "path": "x", "fields": ["q"]}], r"eval_sets\[0\].name: 'A-1' must be lower case"),
    ([{"name": "a", "path": "x", "fields": ["q"]}, {"name": "a", "path": "y", "fields": ["q"]}], r"eval_sets\[1\].name: 'a' is declared twice"),
    ([{"name": "a", "path": "x", "feilds": ["q"]}], r"eval_sets\[0\]: unknown key 'feilds' \(did you mean 'fields'\?\)"),
])
def test_a_bad_evaluation_set_is_one_sentence_naming_its_place(sets, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(PipelineConfig, {"decontaminate": {"eval_sets": sets}}, "c.yaml")


def test_bad_stage_settings_are_refused():
    for bad, message in (({"ngram": 0}, "ngram: must be greater than 0"), ({"broadcast_limit": -1}, "broadcast_limit: must be 0"),
                         ({"min_words": 0}, "min_words: must be greater than 0"), ({"containment": 1.5}, "containment: a share")):
        with pytest.raises(ConfigError, match=message):
            from_dict(PipelineConfig, {"decontaminate": bad})


def test_evaluation_paths_resolve_against_the_config_file(tmp_path):
    (tmp_path / "c.yaml").write_text("decontaminate:\n  eval_sets:\n    - {name: qa, path: evals/qa.jsonl, fields: [q]}\n")
    cfg = load_config(tmp_path / "c.yaml")
    assert cfg.resolve(cfg.decontaminate.eval_sets[0].path) == tmp_path.resolve() / "evals" / "qa.jsonl"


def test_a_folder_lists_every_file_with_the_format_its_name_says(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.jsonl", "sub/b.parquet", "c.txt.gz", ".hidden.jsonl"):
        (tmp_path / name).write_bytes(b"")
    s = eval_set(name="mixed", path=str(tmp_path), fields=["q"])
    assert [(f.rel, f.format) for f in list_files(s, tmp_path, "here")] == [("a.jsonl", "jsonl"), ("c.txt.gz", "text"), ("sub/b.parquet", "parquet")]
    (tmp_path / "notes.xyz").write_bytes(b"")
    with pytest.raises(ConfigError, match="here: cannot tell the format of notes.xyz from its name; set format"):
        list_files(s, tmp_path, "here")
    with pytest.raises(ConfigError, match=r"here.path: .*nowhere does not exist"):
        list_files(s, tmp_path / "nowhere", "here")
    texts = eval_set(name="t", path=str(tmp_path), format="text")
    assert {f.format for f in list_files(texts, tmp_path, "here")} == {"text"}
    with pytest.raises(ConfigError, match="here: a.jsonl is a jsonl file, so the set needs 'fields'"):
        list_files(eval_set(name="t", path=str(tmp_path)), tmp_path, "here")


def test_fields_give_one_text_each_and_a_list_gives_each_element():
    record = {"question": "Which one?", "answer": 3, "choices": {"text": ["red", "green"], "label": ["A", "B"]},
              "options": ["x", {"t": "y"}], "none": None}
    assert field_texts(record, ["question"]) == ["Which one?"]
    assert field_texts(record, ["answer"]) == ["3"]
    assert field_texts(record, ["choices", "text"]) == ["red", "green"]
    assert field_texts(record, ["options"]) == ["x"] and field_texts(record, ["options", "t"]) == ["y"]
    assert field_texts(record, ["none"]) == [] and field_texts(record, ["missing"]) == []


def test_items_of_jsonl_parquet_and_text_files(tmp_path):
    lines = [{"id": "q1", "question": "What  is\tit?", "choices": ["a b", "c"]}, {"id": "q2", "question": ""}]
    with gzip.open(tmp_path / "qa.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(x) for x in lines) + "\n\n")
    s = eval_set(name="qa", path=str(tmp_path / "qa.jsonl.gz"), fields=["question", "choices"], id_field="id")
    (f,) = list_files(s, tmp_path / "qa.jsonl.gz", "qa")
    assert list(read_items(f, s.fields, s.id_field)) == [("q1", ["What is it?", "a b", "c"]), ("q2", [])]
    assert [i for i, _ in read_items(f, s.fields, None)] == ["qa.jsonl.gz:1", "qa.jsonl.gz:2"]

    pq.write_table(pa.Table.from_pylist([{"q": "first", "n": 1}, {"q": "second", "n": 2}]), tmp_path / "p.parquet")
    s = eval_set(name="p", path=str(tmp_path / "p.parquet"), fields=["q"])
    (f,) = list_files(s, tmp_path / "p.parquet", "p")
    assert list(read_items(f, s.fields, None)) == [("p.parquet#row=0", ["first"]), ("p.parquet#row=1", ["second"])]

    (tmp_path / "t.txt").write_text("First paragraph,\nover two lines.\n\n\nSecond one.\n")
    s = eval_set(name="t", path=str(tmp_path / "t.txt"))
    (f,) = list_files(s, tmp_path / "t.txt", "t")
    assert list(read_items(f, [], None)) == [("t.txt:1", ["First paragraph,\nover two lines."]), ("t.txt:5", ["Second one."])]
    assert list(paragraphs("a\n \nb")) == [(1, "a"), (3, "b")]


def test_an_unreadable_item_names_its_file_and_line(tmp_path):
    (tmp_path / "bad.jsonl").write_text('{"q": "ok", "id": 1}\n[1, 2]\n')
    s = eval_set(name="bad", path=str(tmp_path / "bad.jsonl"), fields=["q"])
    (f,) = list_files(s, tmp_path / "bad.jsonl", "bad")
    with pytest.raises(EvalSetError, match="bad: bad.jsonl line 2 is not a JSON object"):
        list(read_items(f, ["q"], None))
    (tmp_path / "bad.jsonl").write_text('{"q": "ok", "id": 1}\n{"q": "no id"}\n')
    with pytest.raises(EvalSetError, match="bad: bad.jsonl line 2 has no usable 'id'"):
        list(read_items(f, ["q"], "id"))


@pytest.mark.skipif(not Path("/usr/share/man").is_dir(), reason="this machine has no man pages to draw passages from")
def test_the_sample_set_is_the_same_on_every_run_and_half_of_it_comes_from_the_sample_source(tmp_path):
    parts = {"package_docs": 2, "man_pages": 3}
    items = sample_items(parts, 12)
    assert items == sample_items(parts, 12)
    assert len({i["id"] for i in items}) == len(items) > 0
    assert all(40 <= len(i["passage"].split()) <= 60 for i in items)
    write_sample(tmp_path / "s.jsonl", items)
    before = (tmp_path / "s.jsonl").stat().st_mtime_ns
    write_sample(tmp_path / "s.jsonl", items)  # unchanged: not written again
    assert (tmp_path / "s.jsonl").stat().st_mtime_ns == before
    assert [json.loads(x)["id"] for x in (tmp_path / "s.jsonl").read_text().splitlines()] == [i["id"] for i in items]


def test_the_sample_set_is_built_once_and_again_only_when_its_parts_or_size_change(tmp_path, monkeypatch):
    from brickyard.pipelines.sources import evalsets

    built = []

    def fake_items(parts, n):  # the listing of the machine's folders, counted
        built.append((dict(parts), n))
        return [{"id": f"p{i}", "passage": f"passage {i} " + " ".join(parts)} for i in range(n)]

    monkeypatch.setattr(evalsets, "sample_items", fake_items)
    path = tmp_path / "eval_sets" / "demo.jsonl"
    evalsets.ensure_sample(path, {"man_pages": 3}, 4)
    first = path.read_bytes()
    evalsets.ensure_sample(path, {"man_pages": 3}, 4)  # kept as built: nothing listed
    assert len(built) == 1 and path.read_bytes() == first
    evalsets.ensure_sample(path, {"man_pages": 3}, 5)
    evalsets.ensure_sample(path, {"man_pages": 2, "package_docs": 1}, 5)
    assert len(built) == 3 and len(path.read_text().splitlines()) == 5
    path.unlink()
    evalsets.ensure_sample(path, {"man_pages": 2, "package_docs": 1}, 5)
    assert len(built) == 4 and path.is_file()
