"""Dedup end to end on real Spark and Delta, with real duplicates: copied licence files, a vendored
copy of a stdlib package, near copies, a chain cluster; then an increment, a no-op rerun, a changed
document that splits its cluster, a killed run's leftover gold row, and the empty and one-document
cases of the clustering step."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from brickyard.pipelines.config import DedupSettings, MinHashOverride
from brickyard.pipelines.lake.delta import latest_version
from brickyard.pipelines.stages.curate import curate
from brickyard.pipelines.stages.dedup import (
    GOLD_FROM_SILVER,
    Settled,
    _needs_repair,
    dedup,
    domain_plans,
    plan_dedup,
    plans_frame,
    settled,
    stale_quality,
)
from brickyard.pipelines.stages.ingest import ingest
from brickyard.pipelines.text.minhash import shingles_of
from pyspark.sql import functions as F

from tests.helpers import copy_stdlib_package

pytestmark = pytest.mark.spark

LICENSES = Path("/usr/share/common-licenses")


def jaccard(a: str, b: str, n: int = 5) -> float:
    x, y = set(shingles_of(a, n)), set(shingles_of(b, n))
    return len(x & y) / len(x | y)


def placed(spark, sources):
    names = ", ".join(f"'{s}'" for s in sources)
    rows = spark.sql(
        "SELECT s.path, s.source, d.* FROM silver.duplicates d JOIN silver.documents s USING (doc_id) "
        f"WHERE s.source IN ({names})").collect()
    return {r["path"]: r for r in rows}


def run_of(spark, run_id):
    return spark.table("ops.lineage").where(f"run_id = '{run_id}'").collect()[0]


def files_agree_with_spark(spark, settings) -> Settled | None:
    """What dedup reads from the tables' files before a run (`settled`) is what Spark says: it stands
    back (None) exactly when a placed document left or changed or the tables need repair, and
    otherwise counts the documents to place and to sign as Spark's plan does."""
    version = latest_version(spark, "silver.documents")
    kept = spark.sql(f"SELECT * FROM silver.documents VERSION AS OF {version} WHERE keep")
    dups = spark.table("silver.duplicates")
    gone = dups.join(kept.select("doc_id", "content_sha256"), ["doc_id", "content_sha256"], "left_anti").count()
    repair = _needs_repair(dups, spark.table("silver.spans"), spark.table("gold.documents").select("doc_id")).count()
    state = settled(spark, version)
    assert (state is None) == bool(gone or repair), (state, gone, repair)
    if state is not None:
        todo = {r["doc_id"] for r in plan_dedup(kept, dups).collect()}
        assert state.todo == len(todo) and set(state.todo_ids) == todo
        plans = domain_plans(settings, state.domains)
        want = kept.join(plans_frame(spark, plans).select("domain", "scheme"), "domain")
        have = spark.table("silver.signatures").select("doc_id", "content_sha256", "scheme")
        unsigned = {r["doc_id"] for r in want.join(have, ["doc_id", "content_sha256", "scheme"], "left_anti").collect()}
        assert state.unsigned(plans) == len(unsigned) and set(state.to_sign(plans)) == unsigned
        assert state.domains == sorted(r["domain"] for r in kept.select("domain").distinct().collect())
    return state


def test_dedup_clusters_keepers_increments_and_splits(spark, make_config, tmp_path):
    for name in ("GPL-3", "LGPL-2.1", "GPL-2", "BSD"):
        if not (LICENSES / name).is_file():
            pytest.skip(f"this machine lacks {LICENSES / name}")
    legal, chain, code = tmp_path / "legal", tmp_path / "chain", tmp_path / "code"
    legal.mkdir()
    chain.mkdir()
    code.mkdir()
    gpl3, lgpl = (LICENSES / "GPL-3").read_text(), (LICENSES / "LGPL-2.1").read_text()
    shutil.copy(LICENSES / "GPL-3", legal / "GPL-3")
    shutil.copy(LICENSES / "GPL-3", legal / "COPYING")  # an exact copy
    shutil.copy(LICENSES / "GPL-2", legal / "GPL-2")
    (legal / "LGPL-2.1").write_text(lgpl)
    # a near copy, longer than the original: the keeper policy prefers it (no quality scores here)
    note = "This copy of the licence was distributed with the example project and is reproduced here in full.\n\n"
    (legal / "LGPL-2.1-project").write_text(note + lgpl)
    # a chain: overlapping windows of one text, A ~ B ~ C but A and C below the threshold
    lines = gpl3.splitlines()
    a, b, c = ("\n".join(lines[s : s + 420]) + "\n" for s in (0, 55, 110))
    assert jaccard(a, b) > 0.75 and jaccard(b, c) > 0.75 and jaccard(a, c) < 0.6
    for name, text in (("a.txt", a), ("b.txt", b), ("c.txt", c)):
        (chain / name).write_text(text)
    copy_stdlib_package(code / "pkg", "html")
    copy_stdlib_package(code / "pkg" / "_vendor", "html")  # a vendored copy

    cfg = make_config(
        {"name": "d_legal", "kind": "text", "path": "legal", "domain": "legal"},
        {"name": "d_chain", "kind": "text", "path": "chain", "domain": "books"},
        {"name": "d_code", "kind": "code", "path": "code", "domain": "code"},
    )
    # the chain's domain has its own threshold (and shingle size, as code might)
    cfg.dedup = DedupSettings(domains={"books": MinHashOverride(threshold=0.7, ngram=5)})
    cfg.validate("test")
    sources = ["d_legal", "d_chain", "d_code"]
    ingest(spark, cfg)
    curate(spark, cfg)
    kept = {r["path"] for r in spark.table("silver.documents").where("source IN ('d_legal', 'd_chain', 'd_code') AND keep").collect()}
    assert {"GPL-3", "COPYING", "GPL-2", "LGPL-2.1", "LGPL-2.1-project", "a.txt", "b.txt", "c.txt", "pkg/html/parser.py"} <= kept

    result = dedup(spark, cfg)
    run_id, status, keepers, duplicates = result.run_id, result.status, result.rows_out, result.rows_rejected
    assert status == "succeeded"
    run = run_of(spark, run_id)
    assert run["rows_in"] == run["rows_out"] + run["rows_rejected"] and run["rows_quarantined"] == 0
    assert (run["rows_out"], run["rows_rejected"]) == (keepers, duplicates)
    assert {o["name"] for o in run["outputs"]} >= {"gold.documents", "silver.duplicates", "silver.signatures"}
    p = placed(spark, sources)
    assert set(p) == kept, "every kept document is placed in a cluster"

    # exact: the copy shares the original's cluster
    assert p["COPYING"]["cluster_id"] == p["GPL-3"]["cluster_id"]
    dup = p["COPYING"] if not p["COPYING"]["is_keeper"] else p["GPL-3"]
    assert (dup["method"], dup["similarity"]) == ("exact", 1.0)
    # near: the longer copy is the keeper, the original its near duplicate
    assert p["LGPL-2.1-project"]["is_keeper"] and p["LGPL-2.1-project"]["cluster_id"] == p["LGPL-2.1-project"]["doc_id"]
    assert p["LGPL-2.1"]["cluster_id"] == p["LGPL-2.1-project"]["doc_id"]
    assert p["LGPL-2.1"]["method"] == "near" and p["LGPL-2.1"]["similarity"] >= 0.8
    assert p["GPL-2"]["cluster_id"] != p["GPL-3"]["cluster_id"]
    # the chain is one cluster although its ends are not similar (Jaccard < 0.6, checked above)
    assert p["a.txt"]["cluster_id"] == p["b.txt"]["cluster_id"] == p["c.txt"]["cluster_id"]
    # vendored code: each file and its copy in one cluster, at most one of them kept
    for f in ("parser.py", "entities.py", "__init__.py"):
        ours, theirs = p[f"pkg/html/{f}"], p[f"pkg/_vendor/html/{f}"]
        assert ours["cluster_id"] == theirs["cluster_id"] and not (ours["is_keeper"] and theirs["is_keeper"])

    # gold holds the keepers and nothing else, each naming its own cluster
    gold = {r["doc_id"]: r for r in spark.table("gold.documents").collect()}
    dups = spark.table("silver.duplicates").collect()
    assert set(gold) == {r["doc_id"] for r in dups if r["is_keeper"]}
    assert all(g["cluster_id"] == d for d, g in gold.items())
    assert p["LGPL-2.1-project"]["doc_id"] in gold and p["LGPL-2.1"]["doc_id"] not in gold
    assert len({g["content_sha256"] for g in gold.values()}) == len(gold), "no two gold rows share a text"

    # nothing new: a recorded no-op
    state = files_agree_with_spark(spark, cfg.dedup)
    assert state is not None and state.todo == 0 and state.unsigned(domain_plans(cfg.dedup, state.domains)) == 0
    result = dedup(spark, cfg)
    run_id, status = result.run_id, result.status
    assert status == "noop" and run_of(spark, run_id)["status"] == "noop"

    # an increment, in one run: copies of gold documents never enter gold, however good; new text
    # does; and the chain's middle changes into another text, so its cluster is dissolved and
    # re-formed, and the ends, no longer linked, are two clusters
    old_signatures = {r["doc_id"]: r["batch_id"] for r in spark.table("silver.signatures").collect()}
    shutil.copy(LICENSES / "GPL-3", legal / "GPL-3-again")
    (legal / "LGPL-2.1-longer").write_text(note + note.replace("example", "sample") + lgpl)
    shutil.copy(LICENSES / "BSD", legal / "BSD")
    (chain / "b.txt").write_text("\n".join((LICENSES / "GPL-2").read_text().splitlines()[:150]) + "\n")
    ingest(spark, cfg)
    curate(spark, cfg)
    assert files_agree_with_spark(spark, cfg.dedup) is None, "the changed document is withdrawn first"
    result = dedup(spark, cfg)
    run_id, status, keepers, duplicates = result.run_id, result.status, result.rows_out, result.rows_rejected
    run = run_of(spark, run_id)
    assert status == "succeeded" and run["rows_in"] == keepers + duplicates
    assert int(run["metrics"]["signed"]) == 4, "only the new and the changed documents are signed"
    assert int(run["metrics"]["withdrawn"]) == 1, "the changed document's old placement is withdrawn"
    p = placed(spark, sources)
    now = {r["doc_id"]: r["batch_id"] for r in spark.table("silver.signatures").collect()}
    assert all(now[d] == b for d, b in old_signatures.items() if d != p["b.txt"]["doc_id"]), "old signatures are not recomputed"
    assert p["GPL-3-again"]["cluster_id"] == p["GPL-3"]["cluster_id"] and p["GPL-3-again"]["method"] == "exact"
    assert p["LGPL-2.1-longer"]["cluster_id"] == p["LGPL-2.1-project"]["doc_id"] and not p["LGPL-2.1-longer"]["is_keeper"]
    assert p["BSD"]["is_keeper"]
    gold_ids = {r["doc_id"] for r in spark.table("gold.documents").collect()}
    assert p["LGPL-2.1-longer"]["doc_id"] not in gold_ids and p["BSD"]["doc_id"] in gold_ids
    assert p["a.txt"]["is_keeper"] and p["c.txt"]["is_keeper"] and p["b.txt"]["is_keeper"]
    assert len({p[n]["cluster_id"] for n in ("a.txt", "b.txt", "c.txt")}) == 3
    assert {p[n]["doc_id"] for n in ("a.txt", "b.txt", "c.txt")} <= gold_ids
    total = spark.table("silver.duplicates").count()
    assert total == spark.table("silver.documents").where("keep").count(), "every kept document is placed once"

    # a run killed after its gold commit left a gold row for a document it never placed: the next
    # run removes it before inserting its keepers, so the document is in gold once
    (legal / "GPL-2-tail").write_text("\n".join((LICENSES / "GPL-2").read_text().splitlines()[200:]) + "\n")
    ingest(spark, cfg)
    curate(spark, cfg)
    stray = (spark.table("silver.documents").where("source = 'd_legal' AND path = 'GPL-2-tail' AND keep")
             .select(*GOLD_FROM_SILVER, F.col("doc_id").alias("cluster_id"), F.lit("killed-run").alias("batch_id"),
                     F.current_timestamp().alias("deduped_at"), F.lit(None).cast("double").alias("spans_removed_share")))
    assert stray.count() == 1
    state = files_agree_with_spark(spark, cfg.dedup)
    assert state is not None and state.todo == 1 and state.unsigned(domain_plans(cfg.dedup, state.domains)) == 1
    stray.write.format("delta").mode("append").saveAsTable("gold.documents")
    assert files_agree_with_spark(spark, cfg.dedup) is None, "the stray gold row is repaired first"
    assert dedup(spark, cfg).status == "succeeded"
    gold_rows = spark.table("gold.documents").select("doc_id", "batch_id").collect()
    assert len(gold_rows) == len({r["doc_id"] for r in gold_rows}), "no document is in gold twice"
    keepers = {r["doc_id"] for r in spark.table("silver.duplicates").where("is_keeper").collect()}
    assert {r["doc_id"] for r in gold_rows} == keepers and "killed-run" not in {r["batch_id"] for r in gold_rows}
    assert placed(spark, sources)["GPL-2-tail"]["is_keeper"], "the stray's document is placed, and kept, by this run"

    # gold's quality columns follow silver's (a retrained classifier rescored silver): a gold row
    # whose columns differ, null against a value included, is found from the files and copied
    tail = placed(spark, sources)["GPL-2-tail"]["doc_id"]
    spark.sql(f"UPDATE gold.documents SET quality_score = 0.5, quality_tier = NULL WHERE doc_id = '{tail}'")
    version = latest_version(spark, "silver.documents")
    assert stale_quality(spark, version) == 1
    result = dedup(spark, cfg)
    assert result.status == "succeeded" and run_of(spark, result.run_id)["metrics"]["quality_refreshed"] == "1"
    assert stale_quality(spark, version) == 0
    silver_row, gold_row = (spark.table(t).where(f"doc_id = '{tail}'").select("quality_score", "quality_tier", "quality_model").first()
                            for t in ("silver.documents", "gold.documents"))
    assert gold_row == silver_row


def test_assign_handles_empty_and_single_input(spark):
    from brickyard.pipelines.stages.dedup import (
        SIGN_SCHEMA,
        _assign,
        domain_plans,
        make_signer,
        plans_frame,
    )

    settings = DedupSettings()
    plans = domain_plans(settings, ["docs"])
    docs = spark.createDataFrame([("only", "docs", "h1", "one lonely document with a handful of words in it")],
                                 "doc_id STRING, domain STRING, content_sha256 STRING, text STRING")
    signer = make_signer({"docs": (5, 128)}, (5, 128), settings.seed)
    signed = docs.mapInArrow(signer, SIGN_SCHEMA).join(plans_frame(spark, plans), ["domain", "scheme"])
    old = spark.createDataFrame([], "doc_id STRING, cluster_id STRING, is_keeper BOOLEAN, content_sha256 STRING")
    policy = "doc_id STRING, domain STRING, content_sha256 STRING, quality_score DOUBLE, n_bytes BIGINT, curated_at TIMESTAMP"
    one = spark.createDataFrame([("only", "docs", "h1", None, 51, None)], policy)
    texts = docs.select("doc_id", "text")
    rows = _assign(spark, one, old, signed, texts, settings).collect()
    assert [(r["doc_id"], r["cluster_id"], r["is_keeper"]) for r in rows] == [("only", "only", True)]
    assert _assign(spark, one.limit(0), old, signed, texts, settings).count() == 0

