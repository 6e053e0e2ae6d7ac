"""Curate: `bronze.documents` -> `silver.documents`, every document kept, annotated and judged.

Per document, in Arrow batches on the workers (`mapInArrow`; the fastText model loads once per
Python worker):
1. normalize (text: NFC, controls, line endings, white space; code: line endings only),
2. identify the language (fastText lid.176; recorded for code too, but code is exempt),
3. measure every signal (`brickyard.pipelines.text.signals`),
4. redact PII and secrets with typed placeholders (`brickyard.pipelines.text.pii`),
5. decide (`brickyard.pipelines.text.filters`): a web page is the newest capture of its URL (else
   `url_duplicate`); text in a configured language above the minimum score; code under an allowed
   licence (else `license:<id>`); then the heuristic rules in their stated order. `reject_reason`
   is the first failing rule, `failed_rules` all of them.
6. score quality with the newest registered classifier (`brickyard.pipelines.stages.quality`), if there is one.
7. reject a document whose text `silver.contamination` lists (the decontaminate stage found an item of an
   evaluation set in it): rule `contaminated`, last in the order. A document judged earlier whose
   verdict flips (found by a new or changed evaluation set, or no longer: the set was removed, or
   `decontaminate.reject` turned off) is judged again without being curated again, and counted in
   this run's `ops.filter_stats` like every document it judges.

URL dedup: among bronze documents with the same normalized URL (web sources record it in their
metadata), the newest capture (WARC-Date; then doc_id) is the one judged on its merits; every older
capture is rejected as `url_duplicate`. This is decided over all of bronze on each run, so a newer
capture that arrives in a later batch supersedes a page already kept: the older one is judged again
here and dedup then takes it out of gold.

Rejected documents stay in silver (keep = false) so notebooks can look at them. Only bronze rows
that are new, whose content changed since they were curated, or whose URL-duplicate standing
changed are processed; a rerun with nothing new is a recorded no-op. `ops.filter_stats` explains
every rejected document: per run and domain, documents and bytes in, kept, and dropped per first
failing rule (plus every rule that failed).
Silver's quality columns are kept current: rows scored by another classifier version are rescored,
and tiers that disagree with the config's thresholds are refreshed.
"""

from __future__ import annotations

import hashlib
import json

from ..config import PipelineConfig, to_dict
from ..lake.delta import (
    ID_LIST_LIMIT,
    code_version,
    count_in_files,
    last_commit,
    latest_version,
    merge_into,
    query_files,
    set_properties,
)
from ..lake.faults import fault_pause
from ..lake.lineage import Ref
from ..lake.tables import CONTAMINATION, DOCUMENTS, FILTER_STATS, SILVER
from ..text.filters import CONTAMINATED, configure, evaluate
from ..text.pii import redact
from ..text.quality import tier_sql
from ..text.signals import code_signals, normalize_code, normalize_text, text_signals
from .base import Stage, StageContext, StageResult, log, run_stage, skip_unless_curated

URL_DUPLICATE = "url_duplicate"
IN_FIELDS = ["doc_id", "source", "domain", "format", "path", "locator", "text", "content_sha256",
             "code_language", "license", "is_vendored", "is_generated"]
OUT_SCHEMA = (
    "doc_id STRING, source STRING, domain STRING, kind STRING, path STRING, locator STRING, text STRING, "
    "content_sha256 STRING, n_bytes BIGINT, lang STRING, lang_score DOUBLE, code_language STRING, "
    "license STRING, is_vendored BOOLEAN, is_generated BOOLEAN, signals STRING, pii_counts STRING, "
    "keep BOOLEAN, reject_reason STRING, failed_rules STRING, bronze_sha256 STRING, quality_score DOUBLE"
)


def curate_record(rec: dict, lang: str, score: float, settings: dict, rules) -> dict:
    """One bronze record -> one silver record (pure; `lang`/`score` come from a batched LID call)."""
    kind = "code" if rec["format"] == "code" or rec["domain"] == "code" else "text"
    text = normalize_code(rec["text"]) if kind == "code" else normalize_text(rec["text"])
    # a file's name speaks for a code file read on its own; a record inside a JSON Lines or Parquet
    # file is judged on its text alone (the container's `.jsonl` would mark every record as data)
    signals = code_signals(text, rec["path"] if rec["format"] == "code" else "") if kind == "code" else text_signals(text)
    failed = []
    if rec.get("superseded_by"):
        failed.append(URL_DUPLICATE)
    if kind == "text" and (lang not in settings["languages"] or score < settings["min_lang_score"]):
        failed.append("language")
    if kind == "code" and (rec["license"] or "NOASSERTION") not in settings["licenses"]:
        failed.append(f"license:{rec['license'] or 'NOASSERTION'}")
    failed += evaluate(signals, kind, rules)
    counts = {}
    if settings["redact_pii"]:
        text, counts = redact(text)
    data = text.encode("utf-8")
    sha = hashlib.sha256(data).hexdigest()
    if sha in (rec.get("contaminated_shas") or ()):  # this very text holds an evaluation item
        failed.append(CONTAMINATED)
    return {
        "doc_id": rec["doc_id"], "source": rec["source"], "domain": rec["domain"], "kind": kind,
        "path": rec["path"], "locator": rec["locator"], "text": text,
        "content_sha256": sha, "n_bytes": len(data),
        "lang": lang, "lang_score": float(score), "code_language": rec["code_language"],
        "license": rec["license"], "is_vendored": rec["is_vendored"], "is_generated": rec["is_generated"],
        "signals": json.dumps(signals), "pii_counts": json.dumps(counts),
        "keep": not failed, "reject_reason": failed[0] if failed else None,
        "failed_rules": json.dumps(failed), "bronze_sha256": rec["content_sha256"], "quality_score": None,
    }


def make_curator(settings: dict):
    def curate_partition(batches):
        import pyarrow as pa

        from ..text.langid import identify

        rules = configure(settings["rules"])
        scorer = quality_scorer(settings.get("quality"))
        arrow = {"STRING": pa.string(), "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_()}
        schema = pa.schema([(name, arrow[typ]) for name, typ in (f.split() for f in OUT_SCHEMA.split(", "))])
        for batch in batches:
            recs = batch.to_pylist()
            if not recs:
                continue
            langs, scores = identify([r["text"] for r in recs])  # one fastText call per Arrow batch
            out = [curate_record(r, lang, s, settings, rules) for r, lang, s in zip(recs, langs, scores, strict=True)]
            if scorer is not None:
                scorer(out)
            yield pa.RecordBatch.from_pylist(out, schema=schema)

    return curate_partition


def quality_scorer(q: dict | None):
    """A function that fills `quality_score` in place on records of the kinds the classifier scores
    (loads the model once per worker), or None without a classifier."""
    if not q:
        return None
    from ..lake.registry import resolve_worker_path
    from ..text.quality import load, score_texts

    model = load(resolve_worker_path(q["path"]))
    kinds, max_chars = set(q["kinds"]), q["max_chars"]

    def score(records: list[dict]) -> None:
        mine = [r for r in records if r["kind"] in kinds]
        for r, p in zip(mine, score_texts(model, [r["text"] for r in mine], max_chars), strict=True):
            r["quality_score"] = p

    return score


def make_rescorer(q: dict):
    def rescore_partition(batches):
        import pyarrow as pa

        score = quality_scorer(q)
        schema = pa.schema([("doc_id", pa.string()), ("quality_score", pa.float64())])
        for batch in batches:
            recs = batch.to_pylist()
            if recs:
                score(recs)
                yield pa.RecordBatch.from_pylist([{"doc_id": r["doc_id"], "quality_score": r["quality_score"]} for r in recs], schema=schema)

    return rescore_partition


def apply_quality(spark, cfg: PipelineConfig, q: dict | None, run) -> tuple[int, int]:
    """Bring silver's quality columns up to date: rescore rows a different (or no) classifier version
    scored, then refresh tiers that differ from the config's thresholds. Returns (rescored, retiered)."""
    from pyspark.sql import functions as F

    from ..text.quality import tier_sql

    rescored = 0
    tier = tier_sql(cfg.quality.tiers)
    # both counts are read from silver's files where they are on this disk (usually nothing to do:
    # no Spark job), else asked of Spark
    if q:
        version = latest_version(spark, SILVER.name)
        kinds = ", ".join(repr(k) for k in q["kinds"])
        unscored = f"kind IN ({kinds}) AND quality_model IS DISTINCT FROM {q['label']!r}"
        stale = spark.sql(f"SELECT doc_id, kind, text FROM {SILVER.name} VERSION AS OF {version} WHERE {unscored}")
        rescored = count_in_files(spark, SILVER.name, version, unscored)
        if rescored is None:
            rescored = stale.count()
        if rescored:
            scored = stale.mapInArrow(make_rescorer(q), "doc_id STRING, quality_score DOUBLE").select(
                "doc_id", "quality_score", F.expr(tier).alias("quality_tier"), F.lit(q["label"]).alias("quality_model"))
            merge_into(scored, SILVER.name, "doc_id", columns=["quality_score", "quality_tier", "quality_model"])
    mistiered = f"quality_tier IS DISTINCT FROM ({tier})"
    wrong = count_in_files(spark, SILVER.name, None, mistiered)
    if wrong is None:
        wrong = spark.table(SILVER.name).where(mistiered).count()
    if wrong:
        spark.sql(f"UPDATE {SILVER.name} SET quality_tier = {tier} WHERE {mistiered}")
    return rescored, wrong


def _contamination_in_use(spark) -> bool:
    """Whether silver may hold rows rejected as contaminated: the decontaminate stage ran here once."""
    from ..lake.delta import table_exists

    return table_exists(spark, CONTAMINATION.name)


def classifier(spark, cfg: PipelineConfig) -> dict | None:
    """The newest registered quality classifier, as the settings the workers need, or None."""
    from ..lake.registry import current_model, model_path_on_workers
    from ..lake.session import session_lakehouse

    model = current_model(session_lakehouse(spark), cfg.quality.model_name)
    if model is None:
        return None
    return {"path": model_path_on_workers(spark, model.path), "kinds": list(cfg.quality.kinds),
            "max_chars": cfg.quality.max_chars, "label": model.label, "version": model.version,
            "name": model.name, "uri": model.uri}


def url_standing(bronze):
    """(doc_id, superseded_by) for every bronze document that has a normalized URL: superseded_by
    is the newest capture of the same URL (latest fetch date, then smallest doc_id), null for that
    newest capture itself."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    url = F.col("metadata")["url_normalized"]
    pages = bronze.where((url.isNotNull()) & (url != "")).select(
        "doc_id", url.alias("url"), F.expr("try_to_timestamp(metadata['fetch_date'])").alias("fetched")
    )
    newest = F.first("doc_id").over(Window.partitionBy("url").orderBy(F.col("fetched").desc_nulls_last(), "doc_id"))
    return pages.select("doc_id", newest.alias("newest")).select(
        "doc_id", F.when(F.col("newest") != F.col("doc_id"), F.col("newest")).alias("superseded_by")
    )


def plan_curate(bronze, judged, standing):
    """The plan: doc_ids of bronze to curate (again). New or changed text (no silver row judged this
    `content_sha256`), and web pages whose standing flipped (a newer capture of their URL arrived, or
    the one that superseded them left). `judged`: silver's (doc_id, content_sha256 of the bronze text
    it judged, was_superseded); `standing`: `url_standing(bronze)`."""
    from pyspark.sql import functions as F

    changed = bronze.join(judged.drop("was_superseded"), ["doc_id", "content_sha256"], "left_anti").select("doc_id")
    flipped = (standing.join(judged, "doc_id")
               .where(F.col("superseded_by").isNotNull() != F.col("was_superseded")).select("doc_id"))
    return changed.union(flipped).distinct()


def contamination_flags(spark, cfg: PipelineConfig, run):
    """(doc_id, contaminated_shas): the texts of each document that silver.contamination lists for a
    declared evaluation set, when curate rejects them (`decontaminate.reject`); None when it rejects
    none. The table is read at its latest version, recorded as an input of the run; returned with
    the frame (None with None)."""
    from pyspark.sql import functions as F

    from ..lake.delta import table_exists

    names = [s.name for s in cfg.decontaminate.eval_sets]
    if not names or not cfg.decontaminate.reject or not table_exists(spark, CONTAMINATION.name):
        return None, None
    version = latest_version(spark, CONTAMINATION.name)
    run.inputs.append(Ref(CONTAMINATION.name, "table", version))
    found = spark.sql(f"SELECT doc_id, eval_set, content_sha256 FROM {CONTAMINATION.name} VERSION AS OF {version}")
    return (found.where(F.col("eval_set").isin(names)).groupBy("doc_id")
            .agg(F.collect_set("content_sha256").alias("contaminated_shas"))), version


# silver rows whose `contaminated` rule is not what silver.contamination says of their text, over
# every row (a superset of `plan_contamination`'s, which leaves out the rows curated again anyway)
FLIPS_QUERY = """
WITH flagged AS (SELECT DISTINCT doc_id, content_sha256 FROM c WHERE {sets})
SELECT count(*) AS n FROM s LEFT JOIN flagged f ON s.doc_id = f.doc_id AND s.content_sha256 = f.content_sha256
WHERE coalesce(array_has(s.failed_rules, '{rule}'), false) <> (f.doc_id IS NOT NULL)
"""


def no_flips(spark, silver_version: int, flags_version: int | None, names: list[str]) -> bool:
    """Whether no silver row's contamination verdict flips, read from the tables' files: every row's
    `contaminated` rule is what silver.contamination (at `flags_version`, None: the latest) says of
    its text for the sets in `names` (none: curate rejects nothing as contaminated). False when some
    verdict may flip, or when the files cannot be read here."""
    sets = f"eval_set IN ({', '.join(repr(n) for n in names)})" if names else "false"  # names are [a-z][a-z0-9_]*
    rows = query_files(spark, FLIPS_QUERY.format(sets=sets, rule=CONTAMINATED),
                       {"s": (SILVER.name, silver_version), "c": (CONTAMINATION.name, flags_version)})
    return rows is not None and rows[0]["n"] == 0


def plan_contamination(judged, flagged, planned):
    """The silver rows to judge again without curating them again: (doc_id, contaminated), for rows
    not in `planned` whose `contaminated` rule is not what `flagged` (doc_id, contaminated_shas, or
    None: nothing is) says of their current text. `judged`: silver's doc_id, content_sha256,
    failed_rules."""
    from pyspark.sql import functions as F

    rows = judged.join(planned, "doc_id", "left_anti")
    if flagged is None:
        rows = rows.withColumn("contaminated_shas", F.lit(None).cast("array<string>"))
    else:
        rows = rows.join(flagged, "doc_id", "left")
    should = F.coalesce(F.array_contains("contaminated_shas", F.col("content_sha256")), F.lit(False))
    has = F.coalesce(F.array_contains("failed_rules", CONTAMINATED), F.lit(False))
    return rows.where(has != should).select("doc_id", should.alias("contaminated"))


def rejudged(silver_rows, flips, run_id: str):
    """Silver rows (all columns) with the `contaminated` rule added or removed as `flips` says
    (doc_id, contaminated); keep and reject_reason follow (the rule is last in the order)."""
    from pyspark.sql import functions as F

    rules = F.coalesce(F.col("failed_rules"), F.array().cast("array<string>"))
    failed = F.when(F.col("contaminated"), F.concat(rules, F.array(F.lit(CONTAMINATED)))).otherwise(
        F.array_remove(rules, CONTAMINATED))
    changed = {
        "failed_rules": failed, "keep": F.size(failed) == 0,
        "reject_reason": F.when(F.size(failed) > 0, F.element_at(failed, 1)),
        "batch_id": F.lit(run_id), "curated_at": F.current_timestamp(),
    }
    rows = silver_rows.join(F.broadcast(flips), "doc_id")
    return rows.select(*[changed[c.name].alias(c.name) if c.name in changed else F.col(c.name) for c in SILVER.columns])


def filter_stats(rows):
    """ops.filter_stats rows for curated silver rows: per run (their batch_id) and domain. Every row
    counts as input, then as kept or as the first failure (its reject_reason), and a rejected one
    once more for each rule it failed: one aggregate over those entries (one shuffle, where four
    aggregates took four)."""
    from pyspark.sql import functions as F

    def entry(rule, counted_as: str):
        return F.struct(rule.cast("string").alias("rule"), F.lit(counted_as).alias("counted_as"))

    star = F.lit("*")
    rejected = F.concat(F.array(entry(star, "input"), entry(F.col("reject_reason"), "first_failure")),
                        F.transform(F.coalesce(F.col("failed_rules"), F.array().cast("array<string>")),
                                    lambda rule: entry(rule, "any_failure")))
    entries = F.when(F.col("keep"), F.array(entry(star, "input"), entry(star, "kept"))).otherwise(rejected)
    return (rows.select(F.col("batch_id").alias("run_id"), "domain", "n_bytes", F.explode(entries).alias("e"))
            .groupBy("run_id", "domain", F.col("e.rule").alias("rule"), F.col("e.counted_as").alias("counted_as"))
            .agg(F.count("*").alias("documents"), F.coalesce(F.sum("n_bytes"), F.lit(0)).cast("bigint").alias("bytes")))


def _recover_filter_stats(spark, silver_version: int) -> list[str]:
    """A curate killed between its silver commit and its statistics left rows with no statistics:
    write them now, under that run's id, so the funnel still adds up. Returns the runs recovered."""
    silver = spark.sql(f"SELECT * FROM {SILVER.name} VERSION AS OF {silver_version}")
    # asked on every run, so from the files where they are on this disk (no Spark job)
    found = query_files(spark, "SELECT DISTINCT s.batch_id FROM s LEFT ANTI JOIN f ON s.batch_id = f.run_id",
                        {"s": (SILVER.name, silver_version), "f": (FILTER_STATS.name, None)})
    if found is None:
        counted = spark.table(FILTER_STATS.name).selectExpr("run_id AS batch_id").distinct()
        found = silver.select("batch_id").distinct().join(counted, "batch_id", "left_anti").collect()
    missing = [r["batch_id"] for r in found]
    if missing:
        rows = silver.where(silver["batch_id"].isin(missing))
        filter_stats(rows).write.format("delta").mode("append").saveAsTable(FILTER_STATS.name)
    return sorted(missing)


class Curate(Stage):
    """bronze.documents -> silver.documents and ops.filter_stats. Its plan: bronze rows whose text is
    not the one silver judged, and web pages whose newest capture changed."""

    name = "curate"
    reads = (DOCUMENTS.name,)
    writes = (SILVER, FILTER_STATS)

    def skip(self, ctx: StageContext) -> str | None:
        return skip_unless_curated(ctx)

    def prepare(self, ctx: StageContext) -> None:
        self.quality = q = classifier(ctx.spark, ctx.cfg)  # the newest registered classifier, if any
        self.full = to_dict(ctx.cfg.curate) | {"quality": q, "quality_tiers": dict(ctx.cfg.quality.tiers)}

    def settings(self, ctx: StageContext) -> dict:
        q = self.quality  # what scores and which kinds, not where its file lies on this machine
        scoring = {k: v for k, v in q.items() if k != "path"} if q else None
        out = {k: v for k, v in self.full.items() if k != "quality"} | {"quality_model": q["label"] if q else None,
                                                                         "quality_scoring": scoring}
        d = ctx.cfg.decontaminate
        if d.eval_sets:  # the sets whose findings it applies (absent without any: earlier hashes stay valid)
            out["contamination"] = {"eval_sets": [s.name for s in d.eval_sets], "reject": d.reject}
        return out

    def read_tables(self, ctx: StageContext) -> tuple[str, ...]:
        d = ctx.cfg.decontaminate
        return self.reads + ((CONTAMINATION.name,) if d.eval_sets and d.reject else ())

    def apply(self, ctx: StageContext, run) -> dict:
        return _curate(ctx.spark, ctx.cfg, self.full, self.quality, run)


def curate(spark, cfg: PipelineConfig) -> StageResult:
    """Run the curate stage."""
    return run_stage(Curate(), StageContext.of(spark, cfg))


PLANNED_QUERY = """
SELECT (SELECT count(*) FROM b LEFT ANTI JOIN s ON b.doc_id = s.doc_id AND b.content_sha256 = s.bronze_sha256) AS changed,
       (SELECT count(*) FROM b WHERE b.metadata['url_normalized'] IS NOT NULL AND b.metadata['url_normalized'] <> '') AS pages
"""
PLANNED_IDS = "SELECT b.doc_id FROM b LEFT ANTI JOIN s ON b.doc_id = s.doc_id AND b.content_sha256 = s.bronze_sha256"


def planned_from_files(spark, bronze_version: int | None, silver_version: int | None,
                       names: tuple[str, str] = (DOCUMENTS.name, SILVER.name)) -> list[str] | None:
    """`plan_curate`'s doc_ids, read from the tables' files: the bronze texts silver has not judged,
    when bronze holds no web page (whose standing could flip: that part of the plan is left to
    Spark) and they are at most `ID_LIST_LIMIT`; None when Spark is to plan, or when the files
    cannot be read here. An increment's plan (and a no-op's empty one) without the anti-join and
    window jobs over both tables; a run after a new classifier or new thresholds (curate again, to
    rescore) plans nothing with no Spark job. `names`: bronze's and silver's (other tables, in tests)."""
    tables = {"b": (names[0], bronze_version), "s": (names[1], silver_version)}
    rows = query_files(spark, PLANNED_QUERY, tables)
    if rows is None or rows[0]["pages"] or rows[0]["changed"] > ID_LIST_LIMIT:
        return None
    if rows[0]["changed"] == 0:
        return []
    found = query_files(spark, PLANNED_IDS, tables)
    return None if found is None else sorted(r["doc_id"] for r in found)


def _no_new_rows(spark, cfg: PipelineConfig, q: dict | None, run, recovered: list[str]) -> dict:
    """The end of a run that curated no row: quality brought up to date, else a recorded no-op."""
    run.counts(0, 0)
    rescored, retiered = apply_quality(spark, cfg, q, run)
    run.metrics.update({"quality_rescored": rescored, "quality_retiered": retiered})
    # every table it writes, at the version it leaves: the next run's quick no-op compares them
    run.outputs.append(Ref(SILVER.name, "table", latest_version(spark, SILVER.name)))
    run.outputs.append(Ref(FILTER_STATS.name, "table", latest_version(spark, FILTER_STATS.name)))
    if rescored or retiered or recovered:
        log.info(f"curate: no new documents; quality: {rescored} rescored with {q['label'] if q else '-'}, {retiered} tiers refreshed")
        return {}
    run.noop("no new or changed bronze documents")
    return {}


def _curate(spark, cfg: PipelineConfig, settings: dict, q: dict | None, run) -> dict:
    from pyspark.sql import functions as F

    from ..lake.session import session_cores

    say = log.info
    if q:
        run.inputs.append(Ref(q["name"], "model", q["version"], q["uri"]))
    bronze_version = latest_version(spark, DOCUMENTS.name)
    run.inputs.append(Ref(DOCUMENTS.name, "table", bronze_version))
    bronze = spark.sql(f"SELECT * FROM {DOCUMENTS.name} VERSION AS OF {bronze_version}")
    # pinned to a version: a plan over the live table would be invalidated (and recomputed against
    # the new rows) by this run's own MERGE, which would empty everything computed after it
    silver_version = latest_version(spark, SILVER.name)
    recovered = _recover_filter_stats(spark, silver_version)
    if recovered:
        run.metrics["filter_stats_recovered"] = ",".join(recovered)
        say(f"curate: filter statistics recorded for {len(recovered)} earlier run(s) killed after writing silver")
    judged = spark.sql(
        f"SELECT doc_id, bronze_sha256 AS content_sha256, array_contains(failed_rules, '{URL_DUPLICATE}') AS was_superseded "
        f"FROM {SILVER.name} VERSION AS OF {silver_version}"
    )
    listed = planned_from_files(spark, bronze_version, silver_version)
    if listed is None:
        standing = url_standing(bronze)
        planned = plan_curate(bronze, judged, standing)
        source = bronze.join(planned, "doc_id", "left_semi")
    else:  # named by doc_id: no page in bronze, so no standing to judge
        standing = spark.createDataFrame([], "doc_id STRING, superseded_by STRING")
        planned = spark.createDataFrame([(i,) for i in listed], "doc_id STRING")
        source = bronze.where(F.col("doc_id").isin(listed))
    flagged, flags_version = contamination_flags(spark, cfg, run)
    # curation is CPU-bound Python: spread it over several tasks per core (an explicit count, so
    # adaptive execution does not coalesce a few MB of text into one or two skewed tasks)
    tasks = 4 * session_cores(spark)
    todo = source.join(standing, "doc_id", "left")
    todo = (todo.join(flagged, "doc_id", "left") if flagged is not None
            else todo.withColumn("contaminated_shas", F.lit(None).cast("array<string>")))
    todo = todo.select(*IN_FIELDS, "superseded_by", "contaminated_shas").repartition(tasks, "doc_id")
    # rows judged before whose contamination verdict flips: judged again, not curated again
    flips = None
    names = [e.name for e in cfg.decontaminate.eval_sets] if flagged is not None else []
    if (flagged is not None or _contamination_in_use(spark)) and not no_flips(spark, silver_version, flags_version, names):
        silver_now = spark.sql(f"SELECT * FROM {SILVER.name} VERSION AS OF {silver_version}")
        flips = plan_contamination(silver_now.select("doc_id", "content_sha256", "failed_rules"), flagged, planned)
        flips = flips.localCheckpoint(eager=True)
        if flips.count() == 0:
            flips = None
    if flips is None and listed == []:
        return _no_new_rows(spark, cfg, q, run, recovered)
    silver = (
        todo.mapInArrow(make_curator(settings), OUT_SCHEMA)
        .select(
            *[c.name for c in SILVER.columns if c.name not in ("signals", "pii_counts", "quality_score", "quality_tier", "quality_model", "failed_rules", "batch_id", "curated_at")],
            F.from_json("signals", "MAP<STRING, DOUBLE>").alias("signals"),
            F.from_json("pii_counts", "MAP<STRING, INT>").alias("pii_counts"),
            "quality_score",
            F.expr(tier_sql(cfg.quality.tiers)).alias("quality_tier"),
            F.when(F.col("quality_score").isNotNull(), F.lit(q["label"] if q else None)).cast("string").alias("quality_model"),
            F.from_json("failed_rules", "ARRAY<STRING>").alias("failed_rules"),
            F.lit(run.run_id).alias("batch_id"),
            F.current_timestamp().alias("curated_at"),
        )
        .transform(lambda df: df if flips is None else df.unionByName(rejudged(silver_now, flips, run.run_id)))
        # computed once and cut loose from its plan: the MERGE below invalidates every cached plan
        # that reads silver.documents (even at a pinned version), and a merely persisted frame
        # would then run the whole curation again for each statistic computed after it
        .localCheckpoint(eager=True)
    )
    counts = {r["keep"]: r["n"] for r in silver.groupBy("keep").agg(F.count("*").alias("n")).collect()}
    kept, rejected = counts.get(True, 0), counts.get(False, 0)
    if kept + rejected == 0:
        silver.unpersist()
        return _no_new_rows(spark, cfg, q, run, recovered)
    say(f"curate: {kept + rejected} documents: {kept} kept, {rejected} rejected")

    set_properties(spark, SILVER.name, {"brickyard.producer_version": code_version()})
    merge_into(silver, SILVER.name, "doc_id", fixed=True)
    version, _ = last_commit(spark, SILVER.name)
    run.outputs.append(Ref(SILVER.name, "table", version))
    fault_pause("curate:after-silver")

    per_rule = silver.where("NOT keep")
    filter_stats(silver).write.format("delta").mode("append").saveAsTable(FILTER_STATS.name)
    run.outputs.append(Ref(FILTER_STATS.name, "table", latest_version(spark, FILTER_STATS.name)))
    reasons = {r["reject_reason"]: r["n"] for r in per_rule.groupBy("reject_reason").agg(F.count("*").alias("n")).collect()}
    silver.unpersist()
    if flips is not None:
        run.metrics["contamination_rejudged"] = flips.count()
    rescored, retiered = apply_quality(spark, cfg, q, run)
    if rescored or retiered:
        say(f"curate: quality: {rescored} earlier documents rescored with {q['label'] if q else '-'}, {retiered} tiers refreshed")
        run.outputs.append(Ref(SILVER.name, "table", latest_version(spark, SILVER.name)))
    run.metrics.update({"quality_rescored": rescored, "quality_retiered": retiered})
    run.counts(kept + rejected, kept, rejected, 0)
    run.metrics.update({f"rejected.{k}": v for k, v in reasons.items()})
    return {"kept": kept, "rejected": rejected}
