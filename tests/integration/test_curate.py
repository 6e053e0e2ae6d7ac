"""Curate on a real local Spark with Delta: bronze -> silver, conservation, stats, increments."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from brickyard.pipelines.lake import delta
from brickyard.pipelines.stages.curate import curate
from brickyard.pipelines.stages.ingest import ingest

from tests.helpers import STDLIB, copy_stdlib_package, real_metadata_texts
from tests.roff import roff_text

pytestmark = pytest.mark.spark


def silver_of(spark, source):
    return {r["path"]: r for r in spark.table("silver.documents").where(f"source = '{source}'").collect()}


def test_curate_keeps_every_document_with_its_reason_and_counts_balance(spark, make_config, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    prose = real_metadata_texts(3)
    for i, t in enumerate(prose):
        (docs / f"readme{i}.txt").write_text(t)
    (docs / "contact.txt").write_text(prose[0] + "\nQuestions go to maintainer@example.org, thanks.\n")
    german = sorted(Path("/usr/share/man/de").rglob("*.gz"))[:1]
    if german:
        (docs / "german.txt").write_text(roff_text(german[0]))
    (docs / "lorem.txt").write_text("Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 20)
    code = tmp_path / "code"
    code.mkdir()
    copy_stdlib_package(code / "psf", "json")
    (code / "gpl").mkdir()
    (code / "gpl" / "COPYING").write_text("GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007\n")
    shutil.copy(STDLIB / "this.py", code / "gpl" / "zen.py")
    cfg = make_config(
        {"name": "c_docs", "kind": "text", "path": "docs", "domain": "docs"},
        {"name": "c_code", "kind": "code", "path": "code", "domain": "code"},
    )
    ingest(spark, cfg)
    result = curate(spark, cfg)
    run_id, status, kept, rejected = result.run_id, result.status, result.rows_out, result.rows_rejected
    assert status == "succeeded"

    d, c = silver_of(spark, "c_docs"), silver_of(spark, "c_code")
    # Latin fails the language rule first (the stated order), and C4's and Gopher's rules too
    assert d["lorem.txt"]["keep"] is False and d["lorem.txt"]["reject_reason"] == "language"
    assert {"c4_lorem_ipsum", "gopher_dup_lines"} <= set(d["lorem.txt"]["failed_rules"])
    assert "<EMAIL>" in d["contact.txt"]["text"] and "maintainer@example.org" not in d["contact.txt"]["text"]
    # contact.txt is readme0's text plus one line with one address
    assert d["contact.txt"]["pii_counts"]["email"] == d["readme0.txt"]["pii_counts"]["email"] + 1
    if german:
        assert d["german.txt"]["lang"] == "de" and d["german.txt"]["reject_reason"] == "language"
    assert d["readme0.txt"]["lang"] == "en" and d["readme0.txt"]["signals"]["n_words"] > 50
    assert c["gpl/zen.py"]["reject_reason"] == "license:GPL-3.0"
    assert c["psf/json/decoder.py"]["keep"] is True and c["psf/json/decoder.py"]["kind"] == "code"

    row = spark.table("ops.lineage").where(f"run_id = '{run_id}'").collect()[0]
    assert row["rows_in"] == row["rows_out"] + row["rows_rejected"] == kept + rejected
    stats = spark.table("ops.filter_stats").where(f"run_id = '{run_id}'")
    first = stats.where("counted_as = 'first_failure'").groupBy().sum("documents").collect()[0][0]
    assert first == rejected  # every rejected document is explained exactly once
    assert stats.where("counted_as = 'input'").groupBy().sum("documents").collect()[0][0] == kept + rejected
    assert delta.table_properties(spark, "silver.documents")["brickyard.pii"] == "redacted"

    # a rerun is a no-op; a new bronze document is curated alone
    assert curate(spark, cfg).status == "noop"
    (docs / "new.txt").write_text(prose[1] + "\nOne more paragraph, written later.\n")
    ingest(spark, cfg)
    result = curate(spark, cfg)
    status, k2, r2 = result.status, result.rows_out, result.rows_rejected
    assert (status, k2 + r2) == ("succeeded", 1)
    assert "new.txt" in silver_of(spark, "c_docs")
