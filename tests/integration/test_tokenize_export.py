"""Tokenize and export end to end on real Spark and Delta: real licence prose and a real stdlib
package through ingest, curate and dedup; token ids against tiktoken; an export with several
writer tasks read back through StreamingDataset and unpacked into the documents' token stream;
phase shares, repeats and an empty stream; determinism, --as-of reproduction, no-op reruns, and a
corrupted shard caught by verify."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from brickyard.pipelines.config import DEFAULT_DOMAINS, PipelineConfig, SourceConfig, from_dict
from brickyard.pipelines.curriculum import Curriculum
from brickyard.pipelines.errors import ConfigError
from brickyard.pipelines.manifest import stream_registration, verify
from brickyard.pipelines.stages.curate import curate
from brickyard.pipelines.stages.dedup import dedup
from brickyard.pipelines.stages.export import export, ordered
from brickyard.pipelines.stages.ingest import ingest
from brickyard.pipelines.stages.tokenize import tokenize
from brickyard.pipelines.text.tokenizer import encoder

from tests.conftest import spark_settings
from tests.helpers import copy_stdlib_package

pytestmark = pytest.mark.spark

LICENSES = Path("/usr/share/common-licenses")
TEXTS = ("GFDL-1.3", "CC0-1.0", "GPL-1")  # English prose that curation keeps
EOT = 100257
MARKED = "Note that a line reading <|endoftext|> in a document is just text to the tokenizer."


def spec(**over) -> Curriculum:
    base = {
        "name": "tk-test", "seq_len": 64, "tokens": 64 * 1000, "seed": 3, "doc_boundaries": True, "shard_bytes": 8192,
        "streams": {"prose": {"domains": ["tk_text"]}, "code": {"domains": ["tk_code"]}, "none": {"domains": ["tk_none"]}},
        "phases": [{"name": "a", "share": 0.7, "mix": {"prose": 0.5, "code": 0.5, "none": 0.0}},
                   {"name": "b", "share": 0.3, "mix": {"prose": 0.2, "code": 0.8}}],
    }
    return from_dict(Curriculum, base | over, "spec")


def shard_sums(manifest: dict) -> dict:
    return {s: (v["index_sha256"], [(f["file"], f["sha256"]) for f in v["shards"]]) for s, v in manifest["streams"].items()}


def lineage(spark, run_id):
    return spark.table("ops.lineage").where(f"run_id = '{run_id}'").collect()[0]


@pytest.fixture(scope="module")
def built(spark, tmp_path_factory):
    for name in TEXTS + ("MPL-1.1",):
        if not (LICENSES / name).is_file():
            pytest.skip(f"this machine lacks {LICENSES / name}")
    root = tmp_path_factory.mktemp("tk")
    (root / "text").mkdir()
    for name in TEXTS:
        text = (LICENSES / name).read_text()
        if name == "GPL-1":  # a document that contains the end-of-text marker as characters
            text = text.replace("\n\n", f"\n\n{MARKED}\n\n", 1)
        (root / "text" / name).write_text(text)
    copy_stdlib_package(root / "code", "email")
    cfg = PipelineConfig(
        sources=[SourceConfig(name="tk_text", kind="text", path=str(root / "text"), domain="tk_text"),
                 SourceConfig(name="tk_code", kind="code", path=str(root / "code"), domain="tk_code")],
        spark=spark_settings(), domains=[*DEFAULT_DOMAINS, "tk_text", "tk_code", "tk_none"])
    cfg.validate("test")
    ingest(spark, cfg)
    curate(spark, cfg)
    dedup(spark, cfg)
    return cfg, root


def mine(spark, version=None):
    at = f" VERSION AS OF {version}" if version is not None else ""
    return spark.sql(f"SELECT * FROM gold.tokens{at} WHERE source IN ('tk_text', 'tk_code')")


def test_tokenize_matches_tiktoken_counts_and_reruns_as_a_noop(spark, built):
    cfg, _ = built
    result = tokenize(spark, cfg)
    run_id, status, docs = result.run_id, result.status, result.rows_out
    assert status == "succeeded" and docs >= 1
    enc = encoder("cl100k_base")
    gold = {r["doc_id"]: r for r in spark.sql("SELECT doc_id, path, text, domain, quality_tier FROM gold.documents WHERE source IN ('tk_text', 'tk_code')").collect()}
    rows = mine(spark).collect()
    assert {r["doc_id"] for r in rows} == set(gold)
    assert {gold[r["doc_id"]]["path"] for r in rows if r["domain"] == "tk_text"} == set(TEXTS)
    for r in rows:
        g = gold[r["doc_id"]]
        assert r["tokens"] == enc.encode_ordinary(g["text"]) + [EOT]
        assert r["n_tokens"] == len(r["tokens"]) and r["encoding"] == "cl100k_base"
        assert (r["domain"], r["quality_tier"]) == (g["domain"], g["quality_tier"])
    marked = next(r for r in rows if gold[r["doc_id"]]["path"] == "GPL-1")
    assert MARKED in gold[marked["doc_id"]]["text"] and marked["tokens"].count(EOT) == 1

    run = lineage(spark, run_id)
    assert run["rows_in"] == run["rows_out"] == docs and run["status"] == "succeeded"
    text_tokens = sum(r["n_tokens"] for r in rows if r["domain"] == "tk_text")
    assert int(run["metrics"]["tokens.tk_text.unscored"]) == text_tokens
    assert int(run["metrics"]["documents.tk_code.unscored"]) == sum(1 for r in rows if r["domain"] == "tk_code")
    assert any(i["name"] == "gold.documents" and i["version"] is not None for i in run["inputs"])

    again = tokenize(spark, cfg)
    assert again.status == "noop" and lineage(spark, again.run_id)["rows_in"] == 0

    # the closing check: gold.tokens must mirror the gold it read, row for row
    from brickyard.pipelines.errors import BrickyardError
    from brickyard.pipelines.lake.delta import latest_version
    from brickyard.pipelines.stages.tokenize import _check_and_count

    version = latest_version(spark, "gold.tokens")
    whole = spark.table("gold.documents")
    assert _check_and_count(spark, whole, "gold.documents", version, run_id)["tokens.tk_text.unscored"] == text_tokens
    one_more = whole.select("doc_id").unionByName(spark.sql("SELECT 'no-such-document' AS doc_id"))
    with pytest.raises(BrickyardError, match="does not mirror gold.documents after tokenizing: 1 documents without tokens, 0 "):
        _check_and_count(spark, one_more, "gold.documents", version)
    with pytest.raises(BrickyardError, match="0 documents without tokens, 1 tokens rows without a document"):
        _check_and_count(spark, whole.where(f"doc_id <> '{marked['doc_id']}'"), "gold.documents", version)


def test_export_packs_streams_that_unpack_to_the_token_stream(spark, built, tmp_path):
    cfg, _ = built
    tokenize(spark, cfg)
    s = spec()
    result = export(spark, cfg, s, out=tmp_path / "x1")
    run_id, status, path, m = result.run_id, result.status, result.detail['path'], result.detail['manifest']
    assert status == "succeeded" and verify(path, quiet=True) == []
    version = m["tables"]["gold.tokens"]
    L = 65

    from streaming import Stream, StreamingDataset

    for name in ("prose", "code"):
        docs = (ordered(mine(spark, version).where(f"domain = 'tk_{'text' if name == 'prose' else 'code'}'"), s.seed)
                .orderBy("bucket", "key", "doc_id").select("tokens").collect())
        stream = np.concatenate([np.asarray(r["tokens"], dtype=np.uint32) for r in docs])
        info = m["streams"][name]
        assert info["documents"] == len(docs) and info["tokens"] == len(stream)
        assert info["samples"] == len(stream) // L and info["tail_tokens_dropped"] == len(stream) % L
        with stream_registration():  # a training in the other test process may be registering
            ds = StreamingDataset(streams=[Stream(remote=str(path / info["path"]), local=str(tmp_path / "cache" / name))], shuffle=False, batch_size=1)
        samples = [ds[i] for i in range(len(ds))]
        assert np.array_equal(np.concatenate([x["tokens"] for x in samples]), stream[: info["samples"] * L])
        for x in samples:  # document starts: 0, then right after each end-of-text
            assert x["doc_starts"].tolist() == [0] + [int(p) + 1 for p in np.flatnonzero(x["tokens"][:-1] == EOT)]
    assert len({f["file"].split("/")[2] for f in m["streams"]["code"]["shards"]}) > 3  # written by several parts

    # phases: token shares within 1% of the spec, the small stream repeated with a warning, the empty one unused
    assert m["streams"]["none"]["samples"] == 0 and m["streams"]["none"]["documents"] == 0
    a, b = m["phases"]
    assert a["samples"] + b["samples"] == 1000 and a["samples"] == 700
    for phase, want in ((a, s.phases[0].mix), (b, s.phases[1].mix)):
        for name, share in want.items():
            assert abs(phase["streams"][name]["proportion"] - share) <= 0.01
    prose = m["streams"]["prose"]["samples"]
    assert a["streams"]["prose"]["samples"] == 350 > prose
    assert a["streams"]["prose"]["repeat"] == pytest.approx(350 / prose, abs=1e-3)
    assert any(f"stream prose has {prose} samples but the phase takes 350" in w for w in m["warnings"])

    # recorded: ops.exports and the lineage row
    row = spark.table("ops.exports").where(f"run_id = '{run_id}'").collect()[0]
    assert row["path"] == str(path) and row["tokens_version"] == version and row["status"] == "current"
    assert json.loads(row["manifest"])["export_id"] == m["export_id"]
    run = lineage(spark, run_id)
    assert [(i["name"], i["version"]) for i in run["inputs"]] == [("gold.tokens", version)]
    assert any(o["kind"] == "export" and o["detail"] == str(path) for o in run["outputs"])

    # the same versions and spec: the same bytes; exporting into the same folder again is a no-op
    again = export(spark, cfg, s, out=tmp_path / "x2").detail['manifest']
    assert shard_sums(again) == shard_sums(m)
    assert export(spark, cfg, s, out=tmp_path / "x1").status == "noop"

    # --as-of: after new data, the old version re-exports to the same checksums
    shutil.copy(LICENSES / "MPL-1.1", built[1] / "text" / "MPL-1.1")
    ingest(spark, cfg)
    curate(spark, cfg)
    dedup(spark, cfg)
    result = tokenize(spark, cfg)
    t_run, t_status, t_docs = result.run_id, result.status, result.rows_out
    assert t_status == "succeeded" and lineage(spark, t_run)["rows_in"] == t_docs >= 1
    latest = export(spark, cfg, s, out=tmp_path / "x3").detail['manifest']
    assert latest["tables"]["gold.tokens"] > version and latest["streams"]["prose"]["documents"] == len(TEXTS) + 1
    old = export(spark, cfg, s, out=tmp_path / "x4", as_of=version).detail['manifest']
    assert old["export_id"] == m["export_id"] and shard_sums(old) == shard_sums(m)

    # a corrupted shard is caught
    shard = path / m["streams"]["code"]["shards"][0]["file"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    problems = verify(path, quiet=True)
    assert problems and "does not match its checksum" in problems[0]


def test_export_refuses_a_share_of_an_empty_stream_and_a_bad_version(spark, built, tmp_path):
    cfg, _ = built
    tokenize(spark, cfg)
    s = spec(phases=[{"name": "a", "share": 1.0, "mix": {"prose": 0.5, "none": 0.5}}])
    with pytest.raises(ConfigError, match="phase a needs 500 samples of stream none, which has none"):
        export(spark, cfg, s, out=tmp_path / "e")
    from brickyard.pipelines.errors import BrickyardError

    with pytest.raises(BrickyardError, match=r"--as-of 99999: gold.tokens has versions 0 to \d+"):
        export(spark, cfg, spec(), out=tmp_path / "e", as_of=99999)
    assert not (tmp_path / "e").exists()  # nothing half-written
