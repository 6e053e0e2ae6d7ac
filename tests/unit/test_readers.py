import gzip
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from brickyard.pipelines.sources.listing import split_unit
from brickyard.pipelines.sources.readers import (
    Unit,
    code_language,
    content_sha256,
    doc_id,
    is_generated,
    is_vendored,
    license_id,
    read_unit,
)

from tests.helpers import STDLIB, real_metadata_texts, write_jsonl

MB = 1 << 20


def unit_for(path, fmt, **kw):
    st = path.stat()
    return Unit(source="t", domain="web", format=fmt, file=str(path), path=path.name,
                size=st.st_size, mtime_ns=st.st_mtime_ns, **kw)


def read(u, max_doc=MB, max_file=1 << 30):
    return list(read_unit(u, max_doc, max_file))


def by_kind(recs):
    return [r for r in recs if r["kind"] == "doc"], [r for r in recs if r["kind"] == "quarantine"]


def test_doc_id_is_stable_and_depends_on_source_and_locator():
    assert doc_id("web", "a.jsonl:1") == doc_id("web", "a.jsonl:1")
    assert len(doc_id("web", "a.jsonl:1")) == 32
    assert doc_id("web", "a.jsonl:1") != doc_id("web", "a.jsonl:2") != doc_id("books", "a.jsonl:1")


def test_jsonl_every_line_becomes_a_document_or_a_quarantine_entry(tmp_path):
    texts = real_metadata_texts(3)
    lines = [
        {"text": texts[0], "url": "https://a.example/1", "score": 0.5},
        b'{"text": "cut off',
        b"[1, 2, 3]",
        {"body": "no text field"},
        {"text": 42},
        b'{"text": "caf\xe9 latin-1"}',
        {"text": "   "},
        b"",  # a blank line is not a record
        {"text": texts[1]},
    ]
    p = tmp_path / "web.jsonl"
    write_jsonl(p, lines)
    docs, bad = by_kind(read(unit_for(p, "jsonl")))
    assert [d["locator"] for d in docs] == ["web.jsonl:1", "web.jsonl:9"]
    assert docs[0]["text"] == texts[0]
    assert docs[0]["content_sha256"] == content_sha256(texts[0])
    assert docs[0]["n_bytes"] == len(texts[0].encode())
    assert json.loads(docs[0]["metadata"]) == {"url": "https://a.example/1", "score": "0.5"}
    assert {b["locator"]: b["reason"] for b in bad} == {
        "web.jsonl:2": "malformed_json",
        "web.jsonl:3": "not_an_object",
        "web.jsonl:4": "missing_text_field",
        "web.jsonl:5": "wrong_type",
        "web.jsonl:6": "undecodable",
        "web.jsonl:7": "empty",
    }
    assert "0xe9" in next(b["detail"] for b in bad if b["reason"] == "undecodable")


def test_an_oversized_line_is_quarantined_and_the_next_line_is_still_read(tmp_path):
    p = tmp_path / "big.jsonl"
    write_jsonl(p, [{"text": "x" * (3 * MB)}, {"text": "small and fine"}])
    docs, bad = by_kind(read(unit_for(p, "jsonl"), max_doc=MB))
    assert [b["reason"] for b in bad] == ["too_large"]
    assert bad[0]["n_bytes"] > 3 * MB
    assert [d["text"] for d in docs] == ["small and fine"]
    assert docs[0]["locator"] == "big.jsonl:2"


@pytest.mark.parametrize("compress,name", [("gzip", "a.jsonl.gz"), ("zstd", "a.jsonl.zst")])
def test_compressed_jsonl_reads_like_plain(tmp_path, compress, name):
    texts = real_metadata_texts(4)
    p = tmp_path / name
    write_jsonl(p, [{"text": t} for t in texts], compress=compress)
    docs, bad = by_kind(read(unit_for(p, "jsonl")))
    assert [d["text"] for d in docs] == texts and not bad


def test_a_truncated_gzip_keeps_the_lines_before_the_cut(tmp_path):
    texts = real_metadata_texts(6)
    p = tmp_path / "cut.jsonl.gz"
    write_jsonl(p, [{"text": t} for t in texts], compress="gzip")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])
    docs, bad = by_kind(read(unit_for(p, "jsonl")))
    assert 0 < len(docs) < len(texts)
    assert [d["text"] for d in docs] == texts[: len(docs)]
    assert [b["reason"] for b in bad] == ["unreadable"] and "truncated" in bad[0]["detail"]


def test_a_decompression_bomb_is_cut_off_at_the_file_limit(tmp_path):
    p = tmp_path / "bomb.jsonl.gz"
    line = json.dumps({"text": "a" * 1000}).encode() + b"\n"
    p.write_bytes(gzip.compress(line * 20000))  # 20 MB of text in a few KB
    docs, bad = by_kind(read(unit_for(p, "jsonl"), max_file=2 * MB))
    assert bad[-1]["reason"] == "file_too_large"
    assert 0 < len(docs) < 20000


@pytest.mark.parametrize("chunk", [1, 97, 4096, 10**9])
def test_split_ranges_read_every_line_exactly_once(tmp_path, chunk):
    texts = real_metadata_texts(8)
    records = [{"text": f"{i}: " + t[: 500 + 37 * i]} for i, t in enumerate(texts * 5)]
    p = tmp_path / "big.jsonl"
    write_jsonl(p, records)
    units = split_unit(unit_for(p, "jsonl"), chunk)
    got = [r["text"] for u in units for r in read(u) if r["kind"] == "doc"]
    assert got == [r["text"] for r in records]
    if chunk < p.stat().st_size:
        assert len(units) > 1


def test_id_field_gives_a_locator_that_survives_moving_the_record(tmp_path):
    p = tmp_path / "a.jsonl"
    write_jsonl(p, [{"id": "r-1", "text": "first"}, {"text": "no id"}, {"id": [1], "text": "bad id"}])
    recs = read(unit_for(p, "jsonl", id_field="id"))
    assert recs[0]["locator"] == "id:r-1" and recs[0]["doc_id"] == doc_id("t", "id:r-1")
    assert [r["reason"] for r in recs[1:]] == ["missing_id", "wrong_type"]


def test_text_file_cases(tmp_path):
    real = (STDLIB / "this.py").read_text()
    (tmp_path / "ok.txt").write_text(real)
    (tmp_path / "latin1.txt").write_bytes("Grüße aus Köln".encode("latin-1"))
    (tmp_path / "blob.txt").write_bytes(b"abc\x00\x01\x02" * 10)
    (tmp_path / "empty.txt").write_bytes(b"\n  \n")
    (tmp_path / "huge.txt").write_bytes(b"word " * (MB // 2))
    (tmp_path / "page.txt.gz").write_bytes(gzip.compress(real.encode()))
    (tmp_path / "image.png").write_bytes(b"\x89PNG....")
    out = {}
    for f in sorted(tmp_path.iterdir()):
        [r] = read(unit_for(f, "text"), max_doc=MB // 4)
        out[f.name] = r["reason"] if r["kind"] == "quarantine" else r["text"]
    assert out == {
        "ok.txt": real, "latin1.txt": "Grüße aus Köln", "blob.txt": "binary", "empty.txt": "empty",
        "huge.txt": "too_large", "page.txt.gz": real, "image.png": "binary",
    }


def test_code_file_gets_language_licence_and_markers(tmp_path):
    f = tmp_path / "decoder.py"
    f.write_text((STDLIB / "json" / "decoder.py").read_text())
    [r] = read(unit_for(f, "code", license="PSF-2.0"))
    assert (r["code_language"], r["license"], r["is_vendored"], r["is_generated"]) == ("Python", "PSF-2.0", False, False)


def test_language_from_extension_name_and_shebang():
    assert code_language("a/b.rs") == "Rust"
    assert code_language("Makefile") == "Makefile"
    assert code_language("bin/tool", "#!/usr/bin/env python3\nprint(1)") == "Python"
    assert code_language("bin/run", "#!/bin/bash\nexit 0") == "Shell"
    assert code_language("bin/x", "no shebang") is None


def test_vendored_and_generated_markers():
    assert is_vendored("pip/_vendor/rich/console.py") and is_vendored("web/node_modules/x/i.js")
    assert not is_vendored("src/vendoring.py")
    assert is_generated("api/types_pb2.py", "")
    assert is_generated("x.go", "// Code generated by protoc-gen-go. DO NOT EDIT.\n")
    assert not is_generated("x.py", "import os\n")


def test_licence_ids_of_real_licence_texts():
    assert license_id((STDLIB / "LICENSE.txt").read_text()) == "PSF-2.0"
    assert license_id("Permission is hereby granted, free of charge, to any person ...") == "MIT"
    assert license_id("whatever we like") == "LicenseRef-unknown"


def test_parquet_row_groups_rows_and_type_problems(tmp_path):
    texts = real_metadata_texts(5)
    p = tmp_path / "docs.parquet"
    pq.write_table(pa.table({"text": texts + [None], "lang": ["en"] * 6}), p, row_group_size=4)
    units = split_unit(unit_for(p, "parquet"), 1)
    assert [(u.start, u.end) for u in units] == [(0, 0), (1, 4)]
    recs = [r for u in units for r in read(u)]
    docs, bad = by_kind(recs)
    assert [d["text"] for d in docs] == texts
    assert [d["locator"] for d in docs][-1] == "docs.parquet#row=4"
    assert [(b["locator"], b["reason"]) for b in bad] == [("docs.parquet#row=5", "missing_text_field")]
    q = tmp_path / "ints.parquet"
    pq.write_table(pa.table({"text": [1, 2]}), q)
    assert {r["reason"] for u in split_unit(unit_for(q, "parquet"), 1) for r in read(u)} == {"wrong_type"}


def test_a_corrupt_parquet_file_is_one_quarantine_entry(tmp_path):
    p = tmp_path / "broken.parquet"
    p.write_bytes(b"PAR1 this is not parquet")
    [u] = split_unit(unit_for(p, "parquet"), 1)
    [r] = read(u)
    assert r["reason"] == "unreadable" and "Parquet" in r["detail"]


@pytest.mark.parametrize("name", ["big.txt.gz", "big.txt.zst"])
def test_an_oversized_compressed_document_is_too_large_not_a_bomb(tmp_path, name):
    import zstandard

    data = (STDLIB / "json" / "decoder.py").read_bytes() * 40  # ~400 KB of real text
    packed = gzip.compress(data) if name.endswith(".gz") else zstandard.ZstdCompressor().compress(data)
    (tmp_path / name).write_bytes(packed)
    [r] = read(unit_for(tmp_path / name, "text"), max_doc=100_000, max_file=1 << 30)
    assert r["reason"] == "too_large"


def test_a_file_that_changed_after_listing_is_quarantined_not_read_torn(tmp_path):
    p = tmp_path / "growing.txt"
    p.write_text("the first version of the text\n")
    u = unit_for(p, "text")
    [doc] = read(u)
    assert doc["kind"] == "doc"
    with p.open("a") as f:
        f.write("a line written after the listing\n")
    [r] = read(u)
    assert r["kind"] == "quarantine" and r["reason"] == "changed_while_read" and r["locator"] == "growing.txt"
    assert "bytes when listed" in r["detail"]
    p.unlink()
    [r] = read(u)
    assert r["reason"] in ("unreadable", "changed_while_read")


def test_a_jsonl_file_that_changed_keeps_its_records_and_gets_one_marker(tmp_path):
    p = tmp_path / "a.jsonl"
    write_jsonl(p, [{"text": "one"}, {"text": "two"}])
    u = unit_for(p, "jsonl")
    os.utime(p, ns=(u.mtime_ns + 10**9, u.mtime_ns + 10**9))
    docs, bad = by_kind(read(u))
    assert [d["text"] for d in docs] == ["one", "two"]
    assert [(b["reason"], b["locator"]) for b in bad] == [("changed_while_read", "a.jsonl#changed")]
    assert "modification time" in bad[0]["detail"]


def test_a_name_that_is_not_utf8_is_one_quarantine_entry():
    u = Unit(source="t", domain="other", format="text", file="", path="caf\\xe9.txt", problem="bad_name")
    [r] = read(u)
    assert r["reason"] == "bad_name" and r["path"] == "caf\\xe9.txt"
