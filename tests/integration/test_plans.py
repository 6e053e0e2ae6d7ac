"""Each stage's plan (what is new, changed or withdrawn) on small in-memory frames, and the runner's
quick no-op: a stage whose tables are where its last run left them is not planned at all."""

from __future__ import annotations

import pytest
from brickyard.pipelines.stages.curate import plan_contamination, plan_curate
from brickyard.pipelines.stages.decontaminate import plan_decontaminate
from brickyard.pipelines.stages.dedup import plan_dedup, plan_withdrawal
from brickyard.pipelines.stages.ingest import fresh_in, plan_files
from brickyard.pipelines.stages.tokenize import plan_tokens

pytestmark = pytest.mark.spark


def rows(df, *cols) -> set:
    return {tuple(r[c] for c in cols) if len(cols) > 1 else r[cols[0]] for r in df.collect()}


def test_ingest_plans_files_that_are_new_or_changed_in_size_mtime_or_declared_encoding(spark):
    schema = "source STRING, path STRING, size BIGINT, mtime_ns BIGINT, declared_encoding STRING"
    listed = spark.createDataFrame([("s", "a", 10, 1, None), ("s", "b", 20, 2, None), ("s", "c", 30, 3, None),
                                    ("t", "a", 10, 1, None), ("u", "a", 10, 1, "cp1252"), ("u", "b", 10, 1, "cp1252")], schema)
    seen = spark.createDataFrame([("s", "a", 10, 1, None), ("s", "b", 21, 2, None), ("s", "c", 30, 4, None),
                                  ("u", "a", 10, 1, None), ("u", "b", 10, 1, "cp1252")], schema)
    assert rows(plan_files(listed, seen), "source", "path") == {("s", "b"), ("s", "c"), ("t", "a"), ("u", "a")}
    # the same plan on the driver, as ingest makes it when it reads ops.source_files's files
    assert fresh_in([tuple(r) for r in listed.collect()], [tuple(r) for r in seen.collect()]) == rows(plan_files(listed, seen), "source", "path")


def test_curate_plans_new_and_changed_text_and_pages_whose_newest_capture_changed(spark):
    bronze = spark.createDataFrame([("same", "h1"), ("edited", "h2new"), ("new", "h3"), ("old_page", "h4"), ("page", "h5")],
                                   "doc_id STRING, content_sha256 STRING")
    judged = spark.createDataFrame([("same", "h1", False), ("edited", "h2", False), ("old_page", "h4", False),
                                    ("page", "h5", True), ("left", "h9", False)],
                                   "doc_id STRING, content_sha256 STRING, was_superseded BOOLEAN")
    # old_page is now superseded by a newer capture; page no longer is
    standing = spark.createDataFrame([("old_page", "new"), ("page", None), ("new", None)], "doc_id STRING, superseded_by STRING")
    assert rows(plan_curate(bronze, judged, standing), "doc_id") == {"edited", "new", "old_page", "page"}


def test_dedup_plans_unplaced_or_changed_documents_and_withdraws_whole_clusters(spark):
    kept = spark.createDataFrame([("a", "h1"), ("b", "h2new"), ("c", "h3")], "doc_id STRING, content_sha256 STRING")
    placed = spark.createDataFrame([("a", "h1", "a"), ("b", "h2", "b"), ("x", "h8", "a"), ("y", "h9", "y")],
                                   "doc_id STRING, content_sha256 STRING, cluster_id STRING")
    assert rows(plan_dedup(kept, placed), "doc_id") == {"b", "c"}
    gone = placed.where("doc_id = 'x'")  # x left curation: its cluster (keeper a) is dissolved
    assert rows(plan_withdrawal(placed, gone), "doc_id") == {"x", "a"}


def test_tokenize_classifies_every_key_once(spark):
    gold = spark.createDataFrame([("new", "h1", "code", "high"), ("done", "h2", "code", "high"), ("text", "h3new", "docs", None),
                                  ("tier", "h4", "docs", "low"), ("enc", "h5", "docs", None)],
                                 "doc_id STRING, content_sha256 STRING, domain STRING, quality_tier STRING")
    have = spark.createDataFrame([("done", "h2", "cl100k_base", "code", "high"), ("text", "h3", "cl100k_base", "docs", None),
                                  ("tier", "h4", "cl100k_base", "docs", "high"), ("enc", "h5", "o200k_base", "docs", None),
                                  ("gone", "h6", "cl100k_base", "web", None)],
                                 "doc_id STRING, content_sha256 STRING, encoding STRING, domain STRING, quality_tier STRING")
    keys = plan_tokens(gold, have, "cl100k_base")
    assert rows(keys, "doc_id", "state") == {("new", "new"), ("done", "done"), ("text", "replace"), ("tier", "retier"),
                                             ("enc", "replace"), ("gone", "gone")}


def test_decontaminate_plans_new_texts_against_every_set_and_every_text_against_a_new_set(spark):
    scope = spark.createDataFrame([("same", "h1"), ("edited", "h2new"), ("new", "h3"), ("partial", "h4")],
                                  "doc_id STRING, content_sha256 STRING")
    checks = spark.createDataFrame([("same", "h1", ["a@1", "b@1", "gone@1"]), ("edited", "h2", ["a@1", "b@1"]),
                                    ("partial", "h4", ["a@0", "gone@1"]), ("left", "h9", ["a@1"])],
                                   "doc_id STRING, content_sha256 STRING, eval_sets ARRAY<STRING>")
    plan = {r["doc_id"]: (sorted(r["check"]), r["eval_sets"]) for r in plan_decontaminate(scope, checks, ["a@1", "b@1"]).collect()}
    assert plan == {
        "same": ([], ["a@1", "b@1", "gone@1"]),  # checked already; a set no longer declared is remembered
        "edited": (["a", "b"], ["a@1", "b@1"]),  # new text: every set, and nothing of the old text kept
        "new": (["a", "b"], ["a@1", "b@1"]),
        "partial": (["a", "b"], ["a@1", "b@1", "gone@1"]),  # set a changed (digest 0 -> 1), b is new to it
    }


def test_curate_judges_again_the_rows_whose_contamination_flips(spark):
    judged = spark.createDataFrame([("found", "h1", []), ("was", "h2", ["gopher_min_words", "contaminated"]),
                                    ("still", "h3", ["contaminated"]), ("old_text", "h4", ["contaminated"]),
                                    ("curated_now", "h5", []), ("clean", "h6", [])],
                                   "doc_id STRING, content_sha256 STRING, failed_rules ARRAY<STRING>")
    flagged = spark.createDataFrame([("found", ["h1"]), ("still", ["h3"]), ("old_text", ["h4old"]), ("curated_now", ["h5"])],
                                    "doc_id STRING, contaminated_shas ARRAY<STRING>")
    planned = spark.createDataFrame([("curated_now",)], "doc_id STRING")  # curated again in this run: judged there
    assert rows(plan_contamination(judged, flagged, planned), "doc_id", "contaminated") == {
        ("found", True), ("was", False), ("old_text", False)}
    assert rows(plan_contamination(judged, None, planned), "doc_id", "contaminated") == {
        ("was", False), ("still", False), ("old_text", False)}


def test_a_stage_whose_tables_did_not_move_is_a_quick_noop_and_any_change_plans_it_again(spark, make_config, tmp_path):
    from brickyard.pipelines.stages.base import QUICK_NOOP, StageContext, unchanged_since_last_run
    from brickyard.pipelines.stages.curate import Curate, curate
    from brickyard.pipelines.stages.ingest import ingest

    # stdlib modules no other test of the session reads, as code without a licence file: curate
    # rejects them (license:NOASSERTION), so they reach no later stage, and the quality test, which
    # draws its negatives from every text row of silver, never sees them
    from tests.helpers import STDLIB

    (tmp_path / "q").mkdir()
    for name in ("colorsys.py", "sched.py"):
        (tmp_path / "q" / name).write_text((STDLIB / name).read_text())
    cfg = make_config({"name": "t_quick", "kind": "code", "path": "q", "domain": "code"})
    ingest(spark, cfg)
    first = curate(spark, cfg)
    assert first.status == "succeeded"

    def why() -> dict | None:
        stage, ctx = Curate(), StageContext.of(spark, cfg)
        stage.prepare(ctx)
        return unchanged_since_last_run(stage, ctx, stage.settings_hash(ctx, stage.settings(ctx)))

    checked = why()
    assert checked == {"bronze.documents": checked["bronze.documents"], **first.outputs}
    again = curate(spark, cfg)
    assert again.status == "noop" and again.message == QUICK_NOOP
    assert again.outputs == first.outputs  # the versions it checked, recorded as its outputs
    # a new bronze version (another source's ingest) makes it plan again; other settings do too
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "bisect.py").write_text((STDLIB / "bisect.py").read_text())
    ingest(spark, make_config({"name": "t_quick2", "kind": "code", "path": "r", "domain": "code"}))
    assert why() is None
    curate(spark, cfg)
    assert why() is not None
    cfg.curate.min_lang_score = 0.5
    assert why() is None


def test_a_table_outside_the_folder_the_fast_path_assumes_is_versioned_by_spark(spark, tmp_path):
    """A lakehouse folder copied elsewhere keeps a metastore that names the old place: the copy's
    warehouse folder then holds an old past of each table, which must not answer for its version."""
    from brickyard.pipelines.lake import delta

    spark.sql("CREATE SCHEMA IF NOT EXISTS kept_here")
    spark.sql("CREATE TABLE IF NOT EXISTS kept_here.t (x INT) USING delta")
    warehouse = delta.local_log(spark, "kept_here.t").parents[2]
    elsewhere = tmp_path / "elsewhere.db"
    spark.sql(f"CREATE SCHEMA IF NOT EXISTS moved_away LOCATION '{elsewhere}'")
    spark.sql("CREATE TABLE moved_away.t (x INT) USING delta")
    for i in range(3):
        spark.sql(f"INSERT INTO moved_away.t VALUES ({i})")
    stale = warehouse / "moved_away.db" / "t" / "_delta_log"  # what a copy's folder would hold
    stale.mkdir(parents=True)
    (stale / f"{1:020d}.json").write_text("{}\n")
    try:
        assert delta.latest_version(spark, "moved_away.t") == 3  # Spark's answer, not the stale folder's 1
        assert delta.local_log(spark, "moved_away.t") is None
        assert delta.local_log(spark, "kept_here.t") is not None  # the warehouse's own still read from disk
    finally:
        import shutil

        shutil.rmtree(warehouse / "moved_away.db", ignore_errors=True)
        spark.sql("DROP SCHEMA moved_away CASCADE")
        spark.sql("DROP SCHEMA kept_here CASCADE")


def test_the_last_commit_read_from_its_file_is_what_describe_history_says(spark):
    from brickyard.pipelines.lake.delta import last_commit, local_log, merge_into

    spark.sql("CREATE SCHEMA IF NOT EXISTS commits_here")
    spark.sql("CREATE TABLE commits_here.t (k STRING, v INT) USING delta")
    try:
        spark.sql("INSERT INTO commits_here.t VALUES ('a', 1), ('b', 2)")
        merge_into(spark.createDataFrame([("b", 3), ("c", 4)], "k STRING, v INT"), "commits_here.t", "k")
        assert local_log(spark, "commits_here.t") is not None  # the file answers
        version, metrics = last_commit(spark, "commits_here.t")
        row = spark.sql("DESCRIBE HISTORY commits_here.t LIMIT 1").collect()[0]
        assert (version, metrics) == (row["version"], dict(row["operationMetrics"]))
        assert metrics["numTargetRowsInserted"] == "1" and metrics["numTargetRowsUpdated"] == "1"
    finally:
        spark.sql("DROP SCHEMA commits_here CASCADE")


def test_the_last_outcome_read_from_the_files_is_the_row_spark_reads(spark):
    """The quick no-op reads a job's newest ops.lineage row without Spark when the warehouse is on
    this machine's disk: the row Spark's query gives, with a killed row (it shares the end time of
    the run that found it) after its finder, and another job's newer row left out."""
    import datetime as dt

    from brickyard.pipelines.lake.delta import local_log, query_files
    from brickyard.pipelines.lake.lineage import (
        _LINEAGE_SCHEMA,
        ensure_lineage,
        last_outcome,
        outcome_query,
    )
    from brickyard.pipelines.lake.tables import LINEAGE

    ensure_lineage(spark, "data-platform")
    t0 = dt.datetime(2001, 1, 1, 12, 0, 0)  # older than any real run: no other reader sees these first
    t1 = t0 + dt.timedelta(seconds=30, microseconds=123)

    def row(run_id, job, status, version, ended):
        return (run_id, job, status, [], [("ops.t_order", "table", version, None)], None, None, None, None, {},
                f"hash-{run_id}", "{}", "v", "local", "host", 1, t0, ended, None)

    # the killed row comes first in the file and a row without an end time last: neither the files'
    # order nor a sort that puts nulls first (DataFusion's default for DESC) may choose them
    rows = [row("r-killed", "t_order", "killed", 3, t1), row("r-old", "t_order", "succeeded", 1, t0),
            row("r-new", "t_order", "succeeded", 2, t1), row("r-open", "t_order", "succeeded", 5, None),
            row("r-other", "t_order_other", "noop", 4, t1 + dt.timedelta(hours=1))]
    spark.createDataFrame(rows, _LINEAGE_SCHEMA).write.format("delta").mode("append").saveAsTable(LINEAGE.name)
    try:
        assert local_log(spark, LINEAGE.name) is not None  # the warehouse is on this disk: last_outcome reads the files
        (fast,) = query_files(spark, outcome_query("t_order"), {"lineage": (LINEAGE.name, None)})  # the files answered
        slow = last_outcome(spark, "t_order", local=False)
        assert fast == slow == last_outcome(spark, "t_order")
        assert fast["status"] == "succeeded" and fast["config_hash"] == "hash-r-new"
        assert fast["outputs"] == [{"name": "ops.t_order", "kind": "table", "version": 2, "detail": None}]
        assert last_outcome(spark, "t_never_ran") is None and last_outcome(spark, "t_never_ran", local=False) is None
    finally:  # the session's lakehouse is shared with other tests
        spark.sql(f"DELETE FROM {LINEAGE.name} WHERE job IN ('t_order', 't_order_other')")


def test_curate_quality_counts_read_from_the_files_are_what_spark_counts(spark):
    """Curate's quality checks (rows a different classifier scored, tiers that differ from the
    config's thresholds) are counted from silver's files where they are on this disk: the same
    conditions give Spark's counts, nulls included, in both dialects."""
    from brickyard.pipelines.lake.delta import count_in_files, latest_version, local_log
    from brickyard.pipelines.text.quality import tier_sql

    spark.sql("CREATE SCHEMA IF NOT EXISTS counts_here")
    spark.sql("CREATE TABLE counts_here.t (kind STRING, quality_model STRING, quality_score DOUBLE, quality_tier STRING) USING delta")
    try:
        rows = [("text", "q/2", 0.9, "top"), ("text", "q/1", 0.6, "top"), ("text", None, None, "unscored"),
                ("code", None, None, "unscored"), ("text", "q/2", 0.2, None), ("text", "q/2", 0.5, "mid"),
                ("text", "q/2", 0.05, "low")]
        spark.createDataFrame(rows, "kind STRING, quality_model STRING, quality_score DOUBLE, quality_tier STRING") \
            .write.format("delta").mode("append").saveAsTable("counts_here.t")
        assert local_log(spark, "counts_here.t") is not None  # the files answer
        version = latest_version(spark, "counts_here.t")
        tiers = {"top": 0.75, "mid": 0.4, "low": 1e-05}
        checks = {"kind IN ('text') AND quality_model IS DISTINCT FROM 'q/2'": 2,
                  f"quality_tier IS DISTINCT FROM ({tier_sql(tiers)})": 2}
        for where, expected in checks.items():
            spark_count = spark.sql(f"SELECT * FROM counts_here.t VERSION AS OF {version} WHERE {where}").count()
            assert count_in_files(spark, "counts_here.t", version, where) == spark_count == expected, where
    finally:
        spark.sql("DROP SCHEMA counts_here CASCADE")


def test_curate_reads_its_plan_from_the_files_as_spark_plans_it_and_leaves_web_pages_to_spark(spark):
    """`planned_from_files`' queries over bronze's and silver's files: texts silver has not judged are
    found as `plan_curate` finds them (the same doc_ids), and web pages (whose standing flips are
    left to Spark) as `url_standing` finds them, the metadata map read by both engines."""
    from brickyard.pipelines.lake.delta import query_files
    from brickyard.pipelines.stages.curate import (
        PLANNED_QUERY,
        plan_curate,
        planned_from_files,
        url_standing,
    )

    spark.sql("CREATE SCHEMA IF NOT EXISTS planned_here")
    spark.sql("CREATE TABLE planned_here.b (doc_id STRING, content_sha256 STRING, metadata MAP<STRING, STRING>) USING delta")
    spark.sql("CREATE TABLE planned_here.s (doc_id STRING, bronze_sha256 STRING, failed_rules ARRAY<STRING>) USING delta")
    tables = {"b": ("planned_here.b", None), "s": ("planned_here.s", None)}

    def both():
        bronze, silver = spark.table("planned_here.b"), spark.table("planned_here.s")
        judged = silver.selectExpr("doc_id", "bronze_sha256 AS content_sha256",
                                   "array_contains(failed_rules, 'url_duplicate') AS was_superseded")
        changed = bronze.join(judged.drop("was_superseded"), ["doc_id", "content_sha256"], "left_anti").count()
        (files,) = query_files(spark, PLANNED_QUERY, tables)
        assert files == {"changed": changed, "pages": url_standing(bronze).count()}
        planned = sorted(r["doc_id"] for r in plan_curate(bronze, judged, url_standing(bronze)).collect())
        return files, planned, planned_from_files(spark, None, None, ("planned_here.b", "planned_here.s"))

    try:
        spark.sql("INSERT INTO planned_here.b VALUES ('d1', 'h1', map('mtime_ns', '1')), ('d2', 'h2', NULL)")
        spark.sql("INSERT INTO planned_here.s VALUES ('d1', 'h1', array()), ('d2', 'h2', NULL)")
        assert both() == ({"changed": 0, "pages": 0}, [], [])
        spark.sql("UPDATE planned_here.b SET content_sha256 = 'h2b' WHERE doc_id = 'd2'")
        spark.sql("INSERT INTO planned_here.b VALUES ('d3', 'h5', NULL)")
        assert both() == ({"changed": 2, "pages": 0}, ["d2", "d3"], ["d2", "d3"])
        spark.sql("INSERT INTO planned_here.b VALUES ('w1', 'h3', map('url_normalized', 'example.org/a', 'fetch_date', '2024-01-01')), "
                  "('w2', 'h4', map('url_normalized', ''))")
        spark.sql("INSERT INTO planned_here.s VALUES ('w1', 'h3', array()), ('w2', 'h4', array())")
        files, planned, listed = both()
        assert files == {"changed": 2, "pages": 1} and planned == ["d2", "d3"] and listed is None  # a page: Spark plans
    finally:
        spark.sql("DROP SCHEMA planned_here CASCADE")


def test_curate_reads_from_the_files_that_no_contamination_verdict_flips_as_spark_finds(spark):
    """`no_flips`' query over silver's and silver.contamination's files counts the rows whose
    `contaminated` rule is not what the table says of their text, as `plan_contamination` finds them
    (with nothing planned): for the declared sets, for none (curate rejects nothing as contaminated),
    with a null rule list and another set's finding."""
    from brickyard.pipelines.lake.delta import query_files
    from brickyard.pipelines.stages.curate import FLIPS_QUERY, plan_contamination
    from brickyard.pipelines.text.filters import CONTAMINATED
    from pyspark.sql import functions as F

    spark.sql("CREATE SCHEMA IF NOT EXISTS flips_here")
    spark.sql("CREATE TABLE flips_here.s (doc_id STRING, content_sha256 STRING, failed_rules ARRAY<STRING>) USING delta")
    spark.sql("CREATE TABLE flips_here.c (doc_id STRING, eval_set STRING, content_sha256 STRING) USING delta")
    tables = {"s": ("flips_here.s", None), "c": ("flips_here.c", None)}

    def both(names):
        silver, found = spark.table("flips_here.s"), spark.table("flips_here.c")
        flagged = (found.where(F.col("eval_set").isin(names)).groupBy("doc_id")
                   .agg(F.collect_set("content_sha256").alias("contaminated_shas"))) if names else None
        sets = f"eval_set IN ({', '.join(repr(n) for n in names)})" if names else "false"
        (files,) = query_files(spark, FLIPS_QUERY.format(sets=sets, rule=CONTAMINATED), tables)
        planned = spark.createDataFrame([], "doc_id STRING")
        assert files["n"] == plan_contamination(silver, flagged, planned).count()
        return files["n"]

    try:
        spark.sql("INSERT INTO flips_here.s VALUES ('a', 'h1', array('contaminated')), ('b', 'h2', NULL), ('c', 'h3', array('too_short'))")
        spark.sql("INSERT INTO flips_here.c VALUES ('a', 'set_one', 'h1'), ('a', 'set_two', 'h1'), ('c', 'set_two', 'h3'), ('b', 'set_one', 'old')")
        assert both(["set_one"]) == 0  # a is marked and found; b's finding was of another text
        assert both(["set_one", "set_two"]) == 1  # c is found by set_two, not marked
        assert both([]) == 1  # nothing is rejected as contaminated: a's mark is to go
    finally:
        spark.sql("DROP SCHEMA flips_here CASCADE")


def test_dedup_withdrawal_read_from_the_files_is_what_its_spark_queries_find(spark):
    """`withdrawal_from_files` against `_withdraw`'s Spark queries on the same small tables: a changed
    text and a rejected keeper dissolve their clusters; a keeper holding a copy of the rejected one's
    span is released, and then the keeper holding a copy of its span (two rounds); span index rows of
    documents no longer holding spans, gold rows of documents no longer keepers, and signatures of
    texts no longer kept are found."""
    from brickyard.pipelines.stages.dedup import _span_releases, withdrawal_from_files

    def h(name: str) -> str:  # brickyard's ids are lower-case hex
        return name.encode().hex()

    silver = [("a", "h1", True), ("b", "h2", True), ("c", "h3new", True), ("e", "h5", True), ("f", "h6", True),
              ("g", "h7", True), ("h", "h8", False), ("i", "h9", True), ("j", "h10", True), ("k", "h11", True),
              ("m", "h12", True), ("p", "h13", True)]
    placed = [("a", "h1", "a", True, None), ("b", "h2", "a", False, "near"), ("c", "h3", "c", True, None),
              ("e", "h5", "c", False, "near"), ("f", "h6", "f", True, None), ("g", "h7", "g", True, None),
              ("h", "h8", "h", True, None), ("i", "h9", "i", True, None), ("j", "h10", "i", False, "exact"),
              ("k", "h11", "k", True, None), ("m", "h12", "a", False, "near"), ("p", "h13", "p", False, "spans")]
    index = [("f", "s1", "f"), ("g", "s1", "f"), ("p", "s1", "f"), ("h", "s2", "h"), ("i", "s2", "h"), ("i", "s3", "i"),
             ("k", "s3", "i"), ("m", "s4", "m")]
    gold = ["a", "f", "g", "c", "h", "i", "k", "n"]
    sigs = [("a", "h1"), ("b", "h2"), ("c", "h3"), ("e", "h5"), ("h", "h8"), ("z", "hz")]
    spark.sql("CREATE SCHEMA IF NOT EXISTS withdraw_here")
    frames = {
        "s": spark.createDataFrame([(h(d), x, k) for d, x, k in silver], "doc_id STRING, content_sha256 STRING, keep BOOLEAN"),
        "d": spark.createDataFrame([(h(d), x, h(c), k, m) for d, x, c, k, m in placed],
                                   "doc_id STRING, content_sha256 STRING, cluster_id STRING, is_keeper BOOLEAN, method STRING"),
        "i": spark.createDataFrame([(h(d), "paragraph", s, h(o)) for d, s, o in index],
                                   "doc_id STRING, span_kind STRING, span_hash STRING, owner_id STRING"),
        "gd": spark.createDataFrame([(h(d),) for d in gold], "doc_id STRING"),
        "g": spark.createDataFrame([(h(d), x) for d, x in sigs], "doc_id STRING, content_sha256 STRING"),
    }
    try:
        for alias, df in frames.items():
            df.write.format("delta").saveAsTable(f"withdraw_here.t_{alias}")
        t = {alias: spark.table(f"withdraw_here.t_{alias}") for alias in frames}
        # Spark, as `_withdraw` asks it
        current = t["s"].where("keep").select("doc_id", "content_sha256")
        gone = t["d"].join(current, ["doc_id", "content_sha256"], "left_anti")
        drop = plan_withdrawal(t["d"], gone)
        drop, n_span, stale = _span_releases(t["d"], t["i"], drop)
        stray = t["gd"].join(t["d"].where("is_keeper").select("doc_id").join(drop, "doc_id", "left_anti"), "doc_id", "left_anti")
        stale_sigs = t["g"].join(current, ["doc_id", "content_sha256"], "left_anti")
        ids = lambda df: sorted(r.doc_id for r in df.select("doc_id").distinct().collect())  # noqa: E731
        by_spark = (ids(gone), ids(drop), n_span, ids(stale), ids(stale_sigs), ids(stray))

        plan = withdrawal_from_files(spark, 0, {alias: f"withdraw_here.t_{alias}" for alias in frames})  # silver at version 0
        assert plan is not None, "the scratch tables' files are on this machine"
        by_files = (plan.gone, plan.drop, plan.span_released, plan.stale_spans, plan.stale_signatures, plan.stray_gold)
        expected = (sorted(h(d) for d in "ch"), sorted(h(d) for d in "cehijk"), 2, sorted(h(d) for d in "ikhm"),
                    sorted(h(d) for d in "chz"), sorted(h(d) for d in "chikn"))
        assert by_files == by_spark == expected
    finally:
        spark.sql("DROP SCHEMA withdraw_here CASCADE")


def test_the_funnel_rows_of_curate_and_dedup_are_the_tallies_of_their_rows(spark):
    """`filter_stats` and `dedup_stats` (one aggregate over each row's entries) against tallies
    computed here row by row: per run and domain, input and kept (or the first failure), every rule
    a rejected document failed, and the bytes span dedup cut from keepers."""
    import random
    from collections import Counter

    from brickyard.pipelines.stages.curate import filter_stats
    from brickyard.pipelines.stages.dedup import dedup_stats

    def tally(entries):
        docs, size = Counter(), Counter()
        for key, n_bytes in entries:
            docs[key] += 1
            size[key] += n_bytes or 0
        return {(*k, docs[k], size[k]) for k in docs}

    rng = random.Random(7)
    rules = ["language", "too_short", "pii_heavy", "contaminated"]
    silver = []
    for i in range(200):
        keep = rng.random() < 0.5
        failed = [] if keep else rng.sample(rules, rng.randint(1, 3))
        silver.append((f"run{i % 3}", rng.choice(["code", "docs"]), keep, None if keep else failed[0],
                       None if not keep and i % 17 == 0 else failed, rng.choice([None, rng.randint(0, 999)])))
    frame = spark.createDataFrame(silver, "batch_id STRING, domain STRING, keep BOOLEAN, reject_reason STRING, "
                                          "failed_rules ARRAY<STRING>, n_bytes BIGINT")
    want = []
    for run, domain, keep, reason, failed, n in silver:
        want.append(((run, domain, "*", "input"), n))
        want += [((run, domain, "*", "kept"), n)] if keep else [((run, domain, reason, "first_failure"), n)]
        want += [((run, domain, rule, "any_failure"), n) for rule in (failed or []) if not keep]
    assert set(map(tuple, filter_stats(frame).collect())) == tally(want)

    placed = []
    for i in range(200):
        keeper, n = rng.random() < 0.5, rng.randint(1, 999)
        placed.append((f"run{i % 2}", rng.choice(["code", "docs"]), keeper,
                       None if keeper else rng.choice(["exact", "near", "containment", "spans"]), n,
                       (n - rng.choice([0, 0, rng.randint(1, n)])) if keeper else None))
    frame = spark.createDataFrame(placed, "run_id STRING, domain STRING, is_keeper BOOLEAN, method STRING, "
                                          "in_bytes BIGINT, out_bytes BIGINT")
    want = []
    for run, domain, keeper, method, n, out in placed:
        want.append(((run, domain, "*", "input"), n))
        want += ([((run, domain, "*", "kept"), out)] + ([((run, domain, "spans", "removed"), n - out)] if out < n else [])
                 if keeper else [((run, domain, method, "first_failure"), n)])
    assert set(map(tuple, dedup_stats(frame).collect())) == tally(want)


def test_a_small_pinned_read_is_held_in_memory_and_its_size_is_read_from_the_log(spark):
    """`table_bytes` sums the data files a version holds, from the Delta log (a later commit does not
    change an earlier version's size); `held` materializes a read of a table under `HOLD_BYTES`,
    with the same rows, and leaves a read it cannot size (no log on this disk) as it is."""
    from brickyard.pipelines.lake.delta import (
        HOLD_BYTES,
        held,
        latest_version,
        local_log,
        table_bytes,
    )

    spark.sql("CREATE SCHEMA IF NOT EXISTS held_here")
    spark.sql("CREATE TABLE held_here.t (doc_id STRING, n INT) USING delta")
    try:
        spark.sql("INSERT INTO held_here.t VALUES ('a', 1), ('b', 2)")
        first = latest_version(spark, "held_here.t")
        spark.sql("INSERT INTO held_here.t VALUES ('c', 3)")
        files = sorted(local_log(spark, "held_here.t").parent.glob("*.parquet"))
        assert table_bytes(spark, "held_here.t", None) == sum(f.stat().st_size for f in files)
        assert 0 < table_bytes(spark, "held_here.t", first) < table_bytes(spark, "held_here.t", None) < HOLD_BYTES
        read = spark.sql(f"SELECT * FROM held_here.t VERSION AS OF {first}")
        kept = held(spark, read, "held_here.t", first)
        assert kept is not read and sorted(map(tuple, kept.collect())) == [("a", 1), ("b", 2)]
        assert table_bytes(spark, "held_here.nowhere", None) is None
        assert held(spark, read, "held_here.nowhere", first) is read
    finally:
        spark.sql("DROP SCHEMA held_here CASCADE")
