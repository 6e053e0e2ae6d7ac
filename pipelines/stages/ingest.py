"""Ingest: declared sources -> `bronze.documents` (+ `bronze.quarantine` for what cannot be used).

The job, in order:
1. List every source into units of work on the driver (names and sizes only, `brickyard.pipelines.sources.listing`).
2. Drop files already ingested unchanged (same size and mtime in `ops.source_files`, read with the
   source's present `encoding:`): only new or changed files are read, so a second run of the same
   sources is a recorded no-op.
3. Read the units in parallel with `mapInArrow` (`brickyard.pipelines.sources.readers`): each record comes out once,
   as a document or as a quarantine entry with its reason.
4. Check conservation: records read = documents + quarantined, or the run fails.
5. MERGE on `doc_id`: new documents are inserted, changed ones (another `content_sha256`) updated,
   unchanged ones left alone. Then the quarantine entries, then the file manifest. Each is an
   atomic Delta commit, so a run killed at any point leaves no partial rows visible, and running
   it again completes it (files whose manifest entry was not committed are simply read again, and
   the MERGE finds their documents already there). A file written to while it was read gets no
   manifest entry either (see `read_unit`), so it too is read again next run.
"""

from __future__ import annotations

from collections import Counter

from ..config import PipelineConfig, to_dict
from ..lake.delta import (
    code_version,
    last_commit,
    latest_version,
    merge_into,
    set_properties,
    table_properties,
)
from ..lake.faults import fault_pause
from ..lake.lineage import Ref
from ..lake.session import default_parallelism
from ..lake.tables import DOCUMENTS, QUARANTINE, SOURCE_FILES
from ..sources.listing import assign_partitions, list_units
from ..sources.readers import CHANGED, RECORD_FIELDS, Unit, read_unit
from .base import Stage, StageContext, StageResult, log, run_stage

TABLES = (DOCUMENTS, QUARANTINE, SOURCE_FILES)

_RECORD_TYPES = {
    "n_bytes": "BIGINT", "is_vendored": "BOOLEAN", "is_generated": "BOOLEAN",
}
RECORD_SCHEMA = ", ".join(f"{f} {_RECORD_TYPES.get(f, 'STRING')}" for f in RECORD_FIELDS)
UNIT_SCHEMA = (
    "source STRING, domain STRING, format STRING, file STRING, path STRING, size BIGINT, "
    "mtime_ns BIGINT, start BIGINT, end BIGINT, text_field STRING, id_field STRING, "
    "license STRING, problem STRING, url_blocklist STRING, encoding STRING, part INT"
)


def make_reader(max_doc_bytes: int, max_file_bytes: int, batch_rows: int, batch_bytes: int = 32 << 20):
    """The function each Spark task runs: units in (Arrow batches), records out (Arrow batches)."""

    def read_partition(batches):
        import pyarrow as pa

        fields = RECORD_FIELDS
        schema = pa.schema(
            [(f, pa.int64() if f == "n_bytes" else pa.bool_() if f.startswith("is_") else pa.string()) for f in fields]
        )

        def flush(rows):
            return pa.RecordBatch.from_pylist(rows, schema=schema)

        rows, size = [], 0
        for batch in batches:
            for u in batch.to_pylist():
                u.pop("part", None)
                for rec in read_unit(Unit(**u), max_doc_bytes, max_file_bytes):
                    rows.append(rec)
                    size += len(rec["text"] or "")
                    if len(rows) >= batch_rows or size >= batch_bytes:
                        yield flush(rows)
                        rows, size = [], 0
        if rows:
            yield flush(rows)

    return read_partition


class Ingest(Stage):
    """Sources -> bronze.documents and bronze.quarantine. Its plan is the file listing against
    ops.source_files: files new or changed since they were read (size or mtime)."""

    name = "ingest"
    writes = (DOCUMENTS, QUARANTINE, SOURCE_FILES)

    def _sources(self, ctx: StageContext):
        only = ctx.options.get("sources")
        return [ctx.cfg.source(n) for n in only] if only else list(ctx.cfg.sources)

    def settings(self, ctx: StageContext) -> dict:
        return {"sources": [to_dict(s) for s in self._sources(ctx)], "ingest": to_dict(ctx.cfg.ingest)}

    def apply(self, ctx: StageContext, run) -> dict:
        return _ingest(ctx.spark, ctx.cfg, self._sources(ctx), run)


def ingest(spark, cfg: PipelineConfig, only: list[str] | None = None) -> StageResult:
    """Run the ingest stage (only the sources named in `only`, if given)."""
    return run_stage(Ingest(), StageContext.of(spark, cfg, sources=only))


def _ingest(spark, cfg: PipelineConfig, sources, run) -> dict:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    say = log.info
    # 1. list
    units: list[Unit] = []
    skipped: Counter = Counter()
    for s in sources:
        found = list_units(cfg, s, skipped)
        units.extend(found)
        run.inputs.append(Ref(s.name, "source", None, f"{s.kind}, {len({u.path for u in found})} files"))
    # 2. skip files read before, unchanged
    fresh = _fresh_files(spark, units)
    todo = [u for u in units if (u.source, u.path) in fresh]
    n_files = len({(u.source, u.path) for u in units})
    n_fresh = len(fresh)
    run.metrics.update(files_listed=n_files, files_read=n_fresh, files_skipped=n_files - n_fresh,
                       **{f"passed_over.{k}": v for k, v in sorted(skipped.items())})
    passed = f" (passed over: {', '.join(f'{v} {k}' for k, v in sorted(skipped.items()))})" if skipped else ""
    say(f"ingest: {n_files} files in {len(sources)} sources, {n_fresh} new or changed{passed}")
    if not todo:
        run.counts(0, 0)
        run.noop("no new or changed files")
        for spec in (DOCUMENTS, QUARANTINE):
            run.outputs.append(Ref(spec.name, "table", latest_version(spark, spec.name)))
        return {"files_read": 0, "files_skipped": n_files}

    # 3. read in parallel
    n_parts = cfg.ingest.partitions or min(len(todo), 4 * default_parallelism())
    parts = assign_partitions(todo, n_parts)
    unit_rows = [(*_unit_tuple(u), p) for u, p in zip(todo, parts, strict=True)]
    reader = make_reader(cfg.ingest.max_doc_bytes, cfg.ingest.max_file_bytes, cfg.ingest.batch_rows)
    records = (
        spark.createDataFrame(unit_rows, UNIT_SCHEMA)
        .repartitionByRange(n_parts, "part")
        .mapInArrow(reader, RECORD_SCHEMA)
    )
    if any(src.id_field for src in sources):
        records = _quarantine_duplicate_ids(records)
    records = records.persist(StorageLevel.MEMORY_AND_DISK)
    fault_pause("ingest:after-read")

    # 4. conservation and figures (small aggregates only)
    stats = records.groupBy("kind").agg(F.count("*").alias("n"), F.sum("n_bytes").alias("bytes")).collect()
    by_kind = {r["kind"]: (r["n"], r["bytes"] or 0) for r in stats}
    n_docs, doc_bytes = by_kind.get("doc", (0, 0))
    n_bad, bad_bytes = by_kind.get("quarantine", (0, 0))
    rows_in = n_docs + n_bad
    reasons = {r["reason"]: r["n"] for r in records.where("kind = 'quarantine'").groupBy("reason").agg(F.count("*").alias("n")).collect()}
    licenses = sorted(r[0] for r in records.where("kind = 'doc' AND license IS NOT NULL").select("license").distinct().collect())
    say(f"ingest: read {rows_in} records: {n_docs} documents ({doc_bytes / 1e6:.1f} MB), {n_bad} quarantined")

    # 5. commit: governance properties first, so the documents commit is the run's output version
    props = table_properties(spark, DOCUMENTS.name)
    have = {x for x in props.get("brickyard.licenses", "").split(",") if x}
    wanted = {"brickyard.producer_version": code_version()}
    if not set(licenses) <= have:
        wanted["brickyard.licenses"] = ",".join(sorted(have | set(licenses)))
    set_properties(spark, DOCUMENTS.name, wanted, props)

    now = F.current_timestamp()
    docs = records.where("kind = 'doc'").select(
        *[c.name for c in DOCUMENTS.columns if c.name not in ("metadata", "batch_id", "ingested_at")],
        F.from_json("metadata", "MAP<STRING, STRING>").alias("metadata"),
        F.lit(run.run_id).alias("batch_id"),
        now.alias("ingested_at"),
    )
    target = spark.table(DOCUMENTS.name).select("doc_id", "content_sha256")
    changed = docs.join(target, ["doc_id", "content_sha256"], "left_anti")
    inserted = updated = 0
    if n_docs and _any_new(spark, docs, n_docs, changed):
        merge_into(changed, DOCUMENTS.name, "doc_id", changed=["content_sha256"])
        version, m = last_commit(spark, DOCUMENTS.name)
        inserted, updated = int(m.get("numTargetRowsInserted", 0)), int(m.get("numTargetRowsUpdated", 0))
        run.outputs.append(Ref(DOCUMENTS.name, "table", version))
    fault_pause("ingest:after-documents")

    bad = records.where("kind = 'quarantine'").select(
        *[c.name for c in QUARANTINE.columns if c.name not in ("batch_id", "quarantined_at")],
        F.lit(run.run_id).alias("batch_id"),
        now.alias("quarantined_at"),
    )
    bad_new = bad.join(spark.table(QUARANTINE.name).select("doc_id", "reason", "detail"), ["doc_id", "reason", "detail"], "left_anti")
    if n_bad and not bad_new.isEmpty():
        merge_into(bad_new, QUARANTINE.name, "doc_id")

    per_file = records.groupBy("source", "path").agg(
        F.sum(F.when(F.col("kind") == "doc", 1).otherwise(0)).alias("documents"),
        F.sum(F.when(F.col("kind") == "quarantine", 1).otherwise(0)).alias("quarantined"),
        F.max(F.col("reason") == CHANGED).alias("changed"),
    )
    files = (
        spark.createDataFrame(sorted({(u.source, u.path): (u.source, u.path, u.size, u.mtime_ns, u.encoding) for u in todo}.values()),
                              "source STRING, path STRING, size BIGINT, mtime_ns BIGINT, declared_encoding STRING")
        .join(per_file, ["source", "path"], "left")
        .where(F.coalesce("changed", F.lit(False)) == F.lit(False))  # read again next run
        .select(
            "source", "path", "size", "mtime_ns",
            F.coalesce("documents", F.lit(0)).alias("documents"),
            F.coalesce("quarantined", F.lit(0)).alias("quarantined"),
            F.lit(run.run_id).alias("batch_id"), now.alias("ingested_at"), "declared_encoding",
        )
    )
    merge_into(files, SOURCE_FILES.name, ["source", "path"])
    records.unpersist()

    run.counts(rows_in, n_docs, 0, n_bad)
    run.metrics.update(
        inserted=inserted, updated=updated, unchanged=n_docs - inserted - updated,
        bytes_in=doc_bytes + bad_bytes, document_bytes=doc_bytes,
        **{f"quarantined.{k}": v for k, v in reasons.items()},
    )
    for spec in (DOCUMENTS, QUARANTINE, SOURCE_FILES):
        if spec.name not in {o.name for o in run.outputs}:
            run.outputs.append(Ref(spec.name, "table", latest_version(spark, spec.name)))
    say(f"ingest: {inserted} inserted, {updated} updated, {n_docs - inserted - updated} unchanged")
    return {"inserted": inserted, "updated": updated, "files_read": n_fresh, "files_skipped": n_files - n_fresh}


def _any_new(spark, docs, n_docs: int, changed) -> bool:
    """Whether any document read is new to bronze or changed. For a read of at most
    `ID_LIST_LIMIT` documents, their keys are looked up in bronze's files (when on this disk):
    a small increment learns it without a join over the whole table; else Spark answers."""
    from ..lake.delta import ID_LIST_LIMIT, id_list, query_files

    if n_docs <= ID_LIST_LIMIT:
        keys = {(r["doc_id"], r["content_sha256"]) for r in docs.select("doc_id", "content_sha256").collect()}
        listed = id_list(d for d, _ in keys)
        if listed is not None:
            stored = query_files(spark, f"SELECT doc_id, content_sha256 FROM b WHERE doc_id IN ({listed})",
                                 {"b": (DOCUMENTS.name, None)})
            if stored is not None:
                return not keys <= {(r["doc_id"], r["content_sha256"]) for r in stored}
    return not changed.isEmpty()


def _fresh_files(spark, units: list[Unit]) -> set[tuple[str, str]]:
    """(source, path) of the listed files to read. The files read before come from
    ops.source_files's own files when the warehouse is on this disk (the listing is on the driver
    already, and a Spark query costs a second or more of every run, a no-op's included), else from
    a Spark join (`plan_files`)."""
    from ..lake.delta import query_files

    listing = [(u.source, u.path, u.size, u.mtime_ns, u.encoding) for u in units]
    seen = query_files(spark, "SELECT source, path, size, mtime_ns, declared_encoding FROM f", {"f": (SOURCE_FILES.name, None)})
    if seen is not None:
        return fresh_in(listing, [(r["source"], r["path"], r["size"], r["mtime_ns"], r["declared_encoding"]) for r in seen])
    listed = spark.createDataFrame(
        listing, "source STRING, path STRING, size BIGINT, mtime_ns BIGINT, declared_encoding STRING").dropDuplicates(["source", "path"])
    recorded = spark.table(SOURCE_FILES.name).select("source", "path", "size", "mtime_ns", "declared_encoding")
    return {(r["source"], r["path"]) for r in plan_files(listed, recorded).collect()}


def fresh_in(listed: list[tuple], seen: list[tuple]) -> set[tuple[str, str]]:
    """`plan_files` on the driver: rows are (source, path, size, mtime_ns, declared_encoding)."""
    def key(row):  # no encoding declared matches no encoding recorded
        return (*row[:4], row[4] or "")

    recorded = {key(r) for r in seen}
    return {(r[0], r[1]) for r in listed if key(r) not in recorded}


def plan_files(listed, seen):
    """The plan: (source, path) of the listed files not read before at this size and mtime with
    the source's present `encoding:` (`seen`: ops.source_files). Names and sizes only: the driver
    never sees a document."""
    from pyspark.sql import functions as F

    def keyed(df):  # no encoding declared matches no encoding recorded
        return df.withColumn("declared_encoding", F.coalesce("declared_encoding", F.lit("")))

    keys = ["source", "path", "size", "mtime_ns", "declared_encoding"]
    return keyed(listed).join(keyed(seen), keys, "left_anti").select("source", "path")


def _quarantine_duplicate_ids(records):
    """With an id_field, one batch can hold the same id twice: keep the first, quarantine the rest.

    A duplicate gets its own quarantine key (its id with the path and a counter), so that every
    record read keeps a row. Without id fields, locators are unique and this shuffle is skipped.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    first = F.when(F.col("kind") == "doc", 0).otherwise(1)
    w = Window.partitionBy("doc_id").orderBy(first, "path", "locator")
    dup = F.col("_n") > 1
    return (
        records.withColumn("_n", F.row_number().over(w))
        .withColumn("detail", F.when(dup, F.concat(F.lit("another record in this batch has the same id (doc_id "), F.col("doc_id"), F.lit(")"))).otherwise(F.col("detail")))
        .withColumn("snippet", F.when(dup, F.substring(F.coalesce("text", "snippet"), 1, 200)).otherwise(F.col("snippet")))
        .withColumn("reason", F.when(dup, F.lit("duplicate_id")).otherwise(F.col("reason")))
        .withColumn("kind", F.when(dup, F.lit("quarantine")).otherwise(F.col("kind")))
        .withColumn("doc_id", F.when(dup, F.substring(F.sha2(F.concat_ws("\x1f", "source", "locator", "path", F.col("_n").cast("string")), 256), 1, 32)).otherwise(F.col("doc_id")))
        .drop("_n")
    )


def _unit_tuple(u: Unit) -> tuple:
    return (u.source, u.domain, u.format, u.file, u.path, u.size, u.mtime_ns, u.start, u.end,
            u.text_field, u.id_field, u.license, u.problem, u.url_blocklist, u.encoding)
