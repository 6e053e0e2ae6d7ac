"""Forget: delete documents from every layer, mark the exports that hold them stale, record it.

    brickyard forget --source NAME | --doc-id ID [--doc-id ID ...] | --where SQL  [--vacuum]

The selection is made on `bronze.documents` (a `--where` predicate is SQL over its columns). The
chosen documents are deleted from bronze.documents, bronze.quarantine (with `--source`, every
quarantine row of that source too: their snippets are raw data), silver.documents,
silver.contamination, ops.contamination_checks, silver.signatures, silver.duplicates, silver.spans,
gold.documents and gold.tokens, one Delta commit per table.

Clusters: a forgotten document may have been a cluster's keeper, or the link that joined it. As
dedup does when curation drops a document, every cluster that loses a member is dissolved: its
other members leave silver.duplicates (and gold and gold.tokens, where they were the keeper) and
the next `brickyard dedup` clusters them again, so a duplicate of a forgotten keeper can take its
place. Their signatures stay and are reused. A gold document whose text lost a repeated span to a
forgotten one (span dedup) is released by that next dedup, so the span finds a new owner.

Exports: each current export in `ops.exports` is checked against the version of gold.tokens it
was built from (time travel); one that holds a forgotten document becomes `stale` (so does one
whose version can no longer be read). Its shards are not deleted: re-export, and delete the old
folder.

Deleted rows stay in older table versions, in deletion-vector-marked files and in the change data
feed until those files are removed. `--vacuum` rewrites the touched tables without them
(`REORG TABLE ... APPLY (PURGE)`) and then removes every file no longer in the latest version
(`VACUUM ... RETAIN 0 HOURS`): after that, time travel to a version before the forget fails.

The files a source was read from stay in `ops.source_files`, so an unchanged file is not read
again by the next ingest; remove the source from the config to stop reading it for good.
"""

from __future__ import annotations

from ..config import PipelineConfig
from ..errors import BrickyardError
from ..lake.delta import delete_matching, latest_version, table_exists
from ..lake.lineage import Ref
from ..lake.tables import (
    CONTAMINATION,
    CONTAMINATION_CHECKS,
    DOCUMENTS,
    DUPLICATES,
    EXPORTS,
    GOLD,
    QUARANTINE,
    SIGNATURES,
    SILVER,
    SPANS,
    TOKENS,
)
from .base import Stage, StageContext, StageResult, log, run_stage

# the tables keyed by doc_id, upstream first
LAYERS = tuple(t.name for t in (DOCUMENTS, QUARANTINE, SILVER, CONTAMINATION, CONTAMINATION_CHECKS, SIGNATURES,
                                 DUPLICATES, SPANS, GOLD, TOKENS))


def selection(source: str | None, doc_ids: list[str] | None, where: str | None):
    """(how to say it, the condition on bronze.documents) for exactly one of the three selectors.
    A source or ids become a Column (no SQL text); `--where` is SQL by design, parsed by Spark."""
    from pyspark.sql import functions as F

    given = [x for x in (source, doc_ids, where) if x]
    if len(given) != 1:
        raise BrickyardError("forget: name what to forget with exactly one of --source, --doc-id or --where")
    if source:
        return f"source = {source!r}", F.col("source") == F.lit(source)
    if doc_ids:
        return f"doc_id in {sorted(doc_ids)}", F.col("doc_id").isin(list(doc_ids))
    return f"({where})", F.expr(where)


class Forget(Stage):
    """Remove documents (a source, ids, or a condition) from every layer; exports that hold them are
    marked stale. Not part of `brickyard run`: a governance command."""

    name = "forget"
    quick_noop = False

    def prepare(self, ctx: StageContext) -> None:
        from pyspark.errors import AnalysisException

        spark, o = ctx.spark, ctx.options
        if not table_exists(spark, DOCUMENTS.name):
            raise BrickyardError("forget: this lakehouse has no bronze.documents yet; nothing to forget")
        self.present = [t for t in LAYERS if table_exists(spark, t)]
        self.bronze_version = latest_version(spark, DOCUMENTS.name)
        try:
            self.predicate, self.condition = selection(o.get("source"), o.get("doc_ids"), o.get("where"))
            self.chosen = (spark.sql(f"SELECT * FROM {DOCUMENTS.name} VERSION AS OF {int(self.bronze_version)}")
                           .where(self.condition).select("doc_id").localCheckpoint(eager=True))
        except AnalysisException as e:
            raise BrickyardError(f"forget --where {o.get('where')!r}: not a valid condition on bronze.documents "
                                 f"({str(e).splitlines()[0][:200]})") from None

    def settings(self, ctx: StageContext) -> dict:
        o = ctx.options
        return {"source": o.get("source"), "doc_ids": o.get("doc_ids"), "where": o.get("where"), "vacuum": bool(o.get("vacuum"))}

    def apply(self, ctx: StageContext, run) -> dict:
        return _forget(ctx.spark, ctx.options.get("source"), bool(ctx.options.get("vacuum")), self.predicate,
                       self.condition, self.present, self.bronze_version, self.chosen, run)


def forget(spark, cfg: PipelineConfig, source: str | None = None, doc_ids: list[str] | None = None,
           where: str | None = None, vacuum: bool = False) -> StageResult:
    """Run forget; the result's detail holds `deleted` (rows per table), `released` and `stale_exports`."""
    return run_stage(Forget(), StageContext.of(spark, cfg, source=source, doc_ids=doc_ids, where=where, vacuum=vacuum))


def _forget(spark, source, vacuum: bool, predicate: str, condition, present: list[str], bronze_version: int, chosen, run) -> dict:
    from pyspark.sql import functions as F

    say = log.info
    run.inputs.append(Ref(DOCUMENTS.name, "table", bronze_version, predicate))
    n = chosen.count()
    n_quarantine = (spark.table(QUARANTINE.name).where(condition).count()
                    if source and QUARANTINE.name in present else 0)
    say(f"forget: {n} documents match {predicate}" + (f", and {n_quarantine} quarantine rows" if n_quarantine else ""))
    if n == 0 and n_quarantine == 0:
        run.counts(0, 0)
        run.noop(f"no document matches {predicate}")
        return {"documents": 0, "deleted": {}, "released": 0, "stale_exports": []}

    # 1. exports built from a version of gold.tokens that holds any of them
    stale = _stale_exports(spark, chosen) if table_exists(spark, EXPORTS.name) else []
    if stale:
        (spark.createDataFrame([(x,) for x in stale], "export_id STRING").alias("source")
         .mergeInto(EXPORTS.name, F.col(f"{EXPORTS.name}.export_id") == F.col("source.export_id"))
         .whenMatched().update({"status": F.lit("stale")}).merge())
        run.outputs.append(Ref(EXPORTS.name, "table", latest_version(spark, EXPORTS.name)))
        say(f"forget: {len(stale)} exports marked stale: {', '.join(stale)}")

    # 2. clusters that lose a member are dissolved; their other members are released
    released = spark.createDataFrame([], "doc_id STRING")
    if DUPLICATES.name in present:
        dups = spark.sql(f"SELECT doc_id, cluster_id FROM {DUPLICATES.name} VERSION AS OF {latest_version(spark, DUPLICATES.name)}")
        touched = dups.join(chosen, "doc_id", "left_semi").select("cluster_id").distinct()
        released = (dups.join(touched, "cluster_id", "left_semi").select("doc_id")
                    .join(chosen, "doc_id", "left_anti").localCheckpoint(eager=True))
    n_released = released.count()

    # 3. delete, downstream first: a run killed half way leaves no orphan below a parent
    deleted: dict[str, int] = {}
    for table in reversed(present):
        gone = chosen.unionByName(released) if table in (DUPLICATES.name, SPANS.name, GOLD.name, TOKENS.name) else chosen
        before = latest_version(spark, table)
        delete_matching(gone, table, "doc_id")
        if table == QUARANTINE.name and source:
            delete_matching(spark.createDataFrame([(source,)], "source STRING"), table, "source")
        deleted[table] = _deleted_since(spark, table, before)
        if latest_version(spark, table) != before:
            run.outputs.append(Ref(table, "table", latest_version(spark, table)))
    say("forget: deleted " + ", ".join(f"{t} {k}" for t, k in deleted.items() if k)
        + (f"; {n_released} duplicates released to be clustered again by the next dedup" if n_released else ""))

    if vacuum:
        _purge(spark, [t for t in present if deleted.get(t)] + ([EXPORTS.name] if stale else []), say)
    run.counts(n + n_quarantine, n + n_quarantine)
    run.metrics.update({f"deleted.{t}": k for t, k in deleted.items()})
    run.metrics.update(released=n_released, exports_stale=len(stale), vacuumed=int(vacuum))
    return {"documents": n, "deleted": deleted, "released": n_released, "stale_exports": stale}


def _stale_exports(spark, chosen) -> list[str]:
    """Current exports whose gold.tokens version holds a chosen document (or cannot be read)."""
    from pyspark.errors import AnalysisException

    out = []
    for row in spark.sql("SELECT export_id, tokens_version FROM ops.exports WHERE status = 'current'").collect():
        try:
            hit = (spark.sql(f"SELECT doc_id FROM {TOKENS.name} VERSION AS OF {int(row['tokens_version'])}")
                   .join(chosen, "doc_id", "left_semi").limit(1).count())
        except AnalysisException:  # the version was vacuumed away: it cannot be shown clean
            hit = 1
        if hit:
            out.append(row["export_id"])
    return out


def _deleted_since(spark, table: str, before: int) -> int:
    """Rows deleted by the commits after version `before` (from Delta's operation metrics)."""
    total = 0
    for r in spark.sql(f"DESCRIBE HISTORY {table}").where(f"version > {before}").collect():
        m = r["operationMetrics"] or {}
        total += int(m.get("numTargetRowsDeleted") or m.get("numDeletedRows") or 0)
    return total


def _purge(spark, tables: list[str], say) -> None:
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    old = spark.conf.get(key, "true")
    spark.conf.set(key, "false")
    try:
        for t in tables:
            spark.sql(f"REORG TABLE {t} APPLY (PURGE)")
            spark.sql(f"VACUUM {t} RETAIN 0 HOURS")
        say(f"forget: vacuumed {', '.join(tables)}: their older versions can no longer be read")
    finally:
        spark.conf.set(key, old)
