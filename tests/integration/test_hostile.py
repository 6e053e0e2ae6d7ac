"""Hostile input through the real ingest job: every file is read, quarantined or passed over with a
reason, nothing outside the source root is read, nothing crashes, and reading stays within a
bounded amount of memory.

The corpus is generated in a temporary folder (nothing of it is stored in git):
- files/  (a `text` source)
    long_line.txt        one 24 MB line (the document limit here is 4 MB)
    undecodable.txt      UTF-8 text with a stray byte (no encoding explains it)
    nul.txt              NUL bytes
    bomb.txt.gz          512 MB of text packed into about 0.5 MB
    bomb.txt.zst         the same with zstd
    escape.txt           a symbolic link to a file outside the source root
    escape_dir           a symbolic link to a folder outside the source root
    ..\\..\\escape.txt     a traversal-looking name (hidden: it starts with a dot)
    %2e%2e%2fsecret.txt  an encoded traversal-looking name (an ordinary file)
    new<LF>line.txt      a line feed in the name; -rf.txt: an option-looking name
    bad<FF>name.txt      a name that is not UTF-8
    pipe.txt             a named pipe (opening it would wait forever)
    tiny/                10,000 files of a few bytes
    growing.txt          appended to while ingest runs
- jsonl/  (a `jsonl` source with an id field)
    lines.jsonl          good lines, an id that looks like a path, a NUL escape, a 24 MB line,
                         100,000 levels of nesting, a line that is not JSON, a line that is not UTF-8
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

pytestmark = [pytest.mark.spark, pytest.mark.slow]

MB = 1 << 20
SENTINEL = "OUTSIDE-THE-SOURCE-ROOT-7f3a"
N_TINY = 10_000


def _bomb_gzip(path: Path, mb: int) -> None:
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"A" * MB
    with path.open("wb") as f:
        for _ in range(mb):
            f.write(z.compress(chunk))
        f.write(z.flush())


def _bomb_zstd(path: Path, mb: int) -> None:
    import zstandard

    with path.open("wb") as f, zstandard.ZstdCompressor(level=3).stream_writer(f) as w:
        chunk = b"A" * MB
        for _ in range(mb):
            w.write(chunk)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(f"{SENTINEL} this text lives outside every source root\n")
    files = root / "files"
    files.mkdir()
    (files / "ok.txt").write_text("An ordinary document with a few sentences of plain English text. " * 20)
    (files / "long_line.txt").write_bytes(b"word " * (24 * MB // 5))
    (files / "undecodable.txt").write_bytes("“Quoted” — a café’s naïve menu, then a stray byte: ".encode() + b"\x92")
    (files / "nul.txt").write_bytes(b"text with a NUL \x00 in the middle")
    _bomb_gzip(files / "bomb.txt.gz", 512)
    _bomb_zstd(files / "bomb.txt.zst", 512)
    os.symlink(outside / "secret.txt", files / "escape.txt")
    os.symlink(outside, files / "escape_dir")
    (files / "..\\..\\escape.txt").write_text(SENTINEL)
    (files / "%2e%2e%2fsecret.txt").write_text("a file whose name only looks like a path out of the root")
    (files / "new\nline.txt").write_text("a line feed in the file name")
    (files / "-rf.txt").write_text("a file name that looks like an option")
    with open(os.path.join(os.fsencode(files), b"bad\xffname.txt"), "wb") as f:
        f.write(b"a name that is not UTF-8")
    os.mkfifo(files / "pipe.txt")
    tiny = files / "tiny"
    tiny.mkdir()
    for i in range(N_TINY):
        (tiny / f"{i:05d}.txt").write_text(f"tiny {i}")
    (files / "growing.txt").write_text("the first line of a file that grows\n")

    jl = root / "jsonl"
    jl.mkdir()
    lines = [
        json.dumps({"id": "a", "text": "a good line"}).encode(),
        json.dumps({"id": "../../../etc/passwd", "text": "an id that looks like a path"}).encode(),
        json.dumps({"id": "nul", "text": "a NUL escape \u0000 inside"}).encode(),
        b'{"id": "huge", "text": "' + b"x" * (24 * MB) + b'"}',
        b'{"id": "deep", "text": "d", "meta": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b"this line is not JSON",
        b'{"id": "bytes", "text": "\xff\xfe"}',
        json.dumps({"id": "z", "text": "the last good line"}).encode(),
    ]
    (jl / "lines.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return root


def _config(make_config, corpus: Path):
    return make_config(
        {"name": "hostile_files", "kind": "text", "path": str(corpus / "files"), "domain": "other"},
        {"name": "hostile_jsonl", "kind": "jsonl", "path": str(corpus / "jsonl"), "domain": "other", "id_field": "id"},
        max_doc_bytes=4 * MB, max_file_bytes=64 * MB,
    )


class Appender:
    """Appends a line to a file every few milliseconds until stopped."""

    def __init__(self, path: Path):
        self.path, self.stop = path, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            with self.path.open("a") as f:
                f.write(f"line {i} appended while ingest runs\n")
            i += 1
            time.sleep(0.005)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_hostile_files_are_read_quarantined_or_passed_over_with_a_reason(spark, make_config, corpus):
    from brickyard.pipelines.stages.forget import forget
    from brickyard.pipelines.stages.ingest import ingest

    cfg = _config(make_config, corpus)
    try:
        with Appender(corpus / "files" / "growing.txt"):
            first = ingest(spark, cfg)
        assert first.status == "succeeded"
        assert first.rows_in == first.rows_out + first.rows_quarantined  # conservation

        names = "'hostile_files', 'hostile_jsonl'"
        docs = {(r["source"], r["locator"]): r["text"] for r in spark.sql(
            f"SELECT source, locator, text FROM bronze.documents WHERE source IN ({names})").collect()}
        bad = {(r["source"], r["locator"]): (r["reason"], r["detail"], r["snippet"]) for r in spark.sql(
            f"SELECT source, locator, reason, detail, snippet FROM bronze.quarantine WHERE source IN ({names}) "
            f"AND batch_id = '{first.run_id}'").collect()}
        assert len(docs) == first.rows_out and len(bad) == first.rows_quarantined

        def reason(locator: str, source: str = "hostile_files") -> str:
            return bad[(source, locator)][0]

        # text files
        assert ("hostile_files", "ok.txt") in docs
        assert reason("long_line.txt") == "too_large"
        assert reason("undecodable.txt") == "undecodable"
        assert reason("nul.txt") == "binary"
        assert reason("bomb.txt.gz") == reason("bomb.txt.zst") == "too_large"
        assert reason("escape.txt") == reason("escape_dir") == "symlink"
        assert reason("bad\\xffname.txt") == "bad_name"
        assert reason("growing.txt") == "changed_while_read"
        for name in ("%2e%2e%2fsecret.txt", "new\nline.txt", "-rf.txt"):
            assert ("hostile_files", name) in docs, name
        assert sum(1 for s, loc in docs if s == "hostile_files" and loc.startswith("tiny/")) == N_TINY
        # the hidden file and the pipe are passed over, and counted in the run's lineage
        metrics = spark.sql(f"SELECT metrics FROM ops.lineage WHERE run_id = '{first.run_id}'").first()["metrics"]
        assert metrics["passed_over.hidden"] == "1" and metrics["passed_over.special_file"] == "1"
        # JSONL lines
        assert {"id:a", "id:../../../etc/passwd", "id:nul", "id:z"} <= {loc for s, loc in docs if s == "hostile_jsonl"}
        jsonl_reasons = sorted(r for (s, _), (r, _, _) in bad.items() if s == "hostile_jsonl")
        assert jsonl_reasons == ["malformed_json", "malformed_json", "too_large", "undecodable"]
        # every quarantine entry says why in a sentence, and keeps only a short snippet
        assert all(detail for _, detail, _ in bad.values())
        assert max(len(snippet or "") for _, _, snippet in bad.values()) < 4096
        # nothing from outside the source root was read
        assert not any(SENTINEL in text for text in docs.values())
        assert not any(SENTINEL in (snippet or "") for _, _, snippet in bad.values())

        # the file that changed while it was read has no manifest row, so the next run reads it
        manifest = {r["path"] for r in spark.sql(
            "SELECT path FROM ops.source_files WHERE source = 'hostile_files'").collect()}
        assert "growing.txt" not in manifest and "ok.txt" in manifest
        second = ingest(spark, cfg)
        assert second.status == "succeeded" and second.detail['files_read'] == 1 and second.rows_out == 1
        grown = spark.sql("SELECT text FROM bronze.documents WHERE source = 'hostile_files' "
                          "AND locator = 'growing.txt'").first()["text"]
        assert grown == (corpus / "files" / "growing.txt").read_text() and "appended while ingest runs" in grown
        assert ingest(spark, cfg).status == "noop"
    finally:  # later tests share this lakehouse: the 10,000 tiny documents must not reach their curate runs
        for source in ("hostile_files", "hostile_jsonl"):
            forget(spark, cfg, source=source)


def test_reading_the_hostile_corpus_keeps_memory_bounded(corpus, tmp_path):
    """The readers alone, in a fresh process, over every unit of the corpus: the peak resident
    memory grows by far less than the 1 GB the bombs inflate to or the 48 MB of long lines."""
    cfg_path = tmp_path / "hostile.yaml"
    cfg_path.write_text(json.dumps({
        "ingest": {"max_doc_bytes": 4 * MB, "max_file_bytes": 64 * MB},
        "sources": [
            {"name": "hostile_files", "kind": "text", "path": str(corpus / "files")},
            {"name": "hostile_jsonl", "kind": "jsonl", "path": str(corpus / "jsonl"), "id_field": "id"},
        ],
    }))
    script = """
import resource, sys, json
from collections import Counter
from brickyard.pipelines.config import load_config
from brickyard.pipelines.sources.readers import read_unit
from brickyard.pipelines.sources.listing import list_units
cfg = load_config(sys.argv[1])
units = [u for s in cfg.sources for u in list_units(cfg, s)]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kinds = Counter(r["kind"] for u in units for r in read_unit(u, cfg.ingest.max_doc_bytes, cfg.ingest.max_file_bytes))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"growth_mb": (after - before) / 1024, "kinds": kinds}))
"""
    out = subprocess.run([sys.executable, "-c", script, str(cfg_path)], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["kinds"]["doc"] > N_TINY and result["kinds"]["quarantine"] >= 10
    assert result["growth_mb"] < 100, f"reading grew the process by {result['growth_mb']:.0f} MB"
