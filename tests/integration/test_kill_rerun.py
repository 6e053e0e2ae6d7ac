"""SIGKILL a real `brickyard ingest` mid-run, then run it again: nothing partial, nothing twice."""

from __future__ import annotations

import pytest
import yaml

from pipelines.config import load_config
from pipelines.readers import read_unit
from pipelines.sources import list_units
from tests.helpers import (
    copy_stdlib_package,
    kill_at,
    real_metadata_texts,
    start_brickyard,
    write_jsonl,
)

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.long]


def start_ingest(config, lakehouse, log, pause=None):
    return start_brickyard(["ingest", "--config", str(config), "--lakehouse", str(lakehouse), "--master", "local[2]",
                            "--no-progress", "--conf", "spark.ui.enabled=false", "--conf", "spark.driver.memory=1g"],
                           log, pause)


def test_ingest_killed_at_any_point_completes_on_rerun_without_duplicates(spark, tmp_path):
    src = tmp_path / "src"
    (src / "code").mkdir(parents=True)
    for pkg in ("json", "email", "http"):
        copy_stdlib_package(src / "code", pkg)
    (src / "web").mkdir()
    write_jsonl(src / "web" / "a.jsonl.gz", [{"text": t} for t in real_metadata_texts(40)] + [b"{bad"], compress="gzip")
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump({"sources": [
        {"name": "k_code", "kind": "code", "path": "src/code", "domain": "code"},
        {"name": "k_web", "kind": "jsonl", "path": "src/web", "domain": "web"},
    ]}))
    lakehouse = tmp_path / "lakehouse"

    # what a complete ingest must hold, from the pure readers
    cfg = load_config(config)
    expected_docs, expected_bad = set(), set()
    for s in cfg.sources:
        for u in list_units(cfg, s):
            for r in read_unit(u, cfg.ingest.max_doc_bytes, cfg.ingest.max_file_bytes):
                (expected_docs if r["kind"] == "doc" else expected_bad).add(r["doc_id"])
    assert len(expected_docs) > 50 and len(expected_bad) >= 1

    with open(tmp_path / "jobs.log", "w") as log:
        kill_at(start_ingest(config, lakehouse, log, "ingest:after-read"), "ingest:after-read")
        kill_at(start_ingest(config, lakehouse, log, "ingest:after-documents"), "ingest:after-documents")
        final = start_ingest(config, lakehouse, log)
        out, _ = final.communicate(timeout=400)
    assert final.returncode == 0, (tmp_path / "jobs.log").read_text()[-3000:]
    assert "succeeded" in out

    # read the other lakehouse's tables by path (its metastore belongs to its own driver)
    wh = lakehouse / "warehouse"
    docs = spark.read.format("delta").load(str(wh / "bronze.db" / "documents"))
    bad = spark.read.format("delta").load(str(wh / "bronze.db" / "quarantine"))
    files = spark.read.format("delta").load(str(wh / "ops.db" / "source_files"))
    lineage = spark.read.format("delta").load(str(wh / "ops.db" / "lineage")).orderBy("started_at").collect()

    assert docs.count() == docs.select("doc_id").distinct().count() == len(expected_docs)
    assert {r["doc_id"] for r in docs.select("doc_id").collect()} == expected_docs
    assert {r["doc_id"] for r in bad.select("doc_id").collect()} == expected_bad and bad.count() == len(expected_bad)
    assert files.count() == files.select("source", "path").distinct().count()

    assert [r["status"] for r in lineage] == ["killed", "killed", "succeeded"]
    last = lineage[-1]
    assert last["rows_in"] == last["rows_out"] + last["rows_quarantined"] == len(expected_docs) + len(expected_bad)
    # the second killed run had committed the documents already: the rerun found them unchanged
    assert last["metrics"]["inserted"] == "0" and last["metrics"]["unchanged"] == str(len(expected_docs))
    assert "killed" in lineage[0]["message"]
