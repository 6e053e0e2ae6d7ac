"""Decontaminate: find curated documents that contain items of the evaluation sets a model will be
judged on; curate then rejects them (rule `contaminated`).

Evaluation sets are declared under `decontaminate.eval_sets` (a file or folder each, read by
`brickyard.pipelines.sources.evalsets`). The documents checked are those that would go on to dedup
but for contamination: silver rows that are kept, or rejected by `contaminated` alone.

The method (`brickyard.pipelines.text.ngrams`): words are normalized (lower-cased, runs of letters
and digits, typographic punctuation as separators), and an item's n-grams (13 words by default,
never across two of its fields; a field shorter than n words counts whole when it has at least
`min_words`, GPT-3's floor of 8) are hashed to 64 bits. A document contains an item
- in `ngram` mode when it shares at least one of the item's n-grams (GPT-3, the lm-evaluation-harness);
- in `containment` mode when it holds at least `containment` of the item's distinct n-grams (for
  short items, with a smaller n: PaLM's criterion, 70% of 8-grams, taken per document).
Every match is verified word for word against the two texts before it is recorded, so a hash
collision never rejects a document, and the span reported is text the document really holds.

In Spark, an inverted index as a join: each document's distinct n-gram hashes (numpy over whole
Arrow batches, one pass per gram length the evaluation sets need) meet the evaluation sets'
(gram -> set, item) rows. When the evaluation sets have at most `broadcast_limit` distinct
n-grams (4 million by default: 32 MB of hashes), their hashes are collected to the driver and sent
with the task (the one thing the driver collects), and each task keeps only the document grams
found in them (`GramSet`: a bitmap in front of a sorted array), so only hits reach the join; above
the limit, every document gram goes to the join and nothing is collected. Candidate pairs (document,
item) are counted in Spark, prefiltered by the mode, and verified in Arrow batches.

Outputs: `silver.contamination` (one row per document and item found), `ops.eval_sets` (each set's
digest, settings and item counts) and `ops.contamination_checks` (per document, the name@digest of
every set its text was checked against).

Incremental. A set's digest hashes its items (ids and texts) and the settings that decide a match.
A run checks each document in scope against the sets it has not been checked against: a new
document, or one whose text changed, against every set; every document against a new or changed
set (its old rows for that set are replaced). A run with nothing to check is a recorded no-op.
`ops.contamination_checks` is written last, so a run killed before it is checked again in full.
Counts: rows in = documents checked; rows rejected = those found to contain an item (with
`reject`), rows out = the rest.
"""

from __future__ import annotations

from pathlib import Path

from ..config import DecontaminateSettings, EvalSetConfig, PipelineConfig, config_hash, to_dict
from ..errors import BrickyardError
from ..lake.delta import (
    ID_LIST_LIMIT,
    code_version,
    count_in_files,
    delete_matching,
    id_list,
    last_commit,
    latest_version,
    merge_into,
    query_files,
    read_pinned,
    scoped_conf,
    set_properties,
)
from ..lake.faults import fault_pause
from ..lake.lineage import Ref
from ..lake.session import session_cores
from ..lake.tables import CONTAMINATION, CONTAMINATION_CHECKS, EVAL_SETS, SILVER
from ..text.filters import CONTAMINATED
from .base import Stage, StageContext, StageResult, log, run_stage, skip_unless_curated

# the documents checked: those that reach dedup, or would but for contamination
SCOPE = f"keep OR (size(failed_rules) = 1 AND failed_rules[0] = '{CONTAMINATED}')"
SAMPLE_FOLDER = "eval_sets"  # under the lakehouse: where a sample evaluation set is written
BROADCAST_KEYS = 2_000_000  # up to this many documents to check, their texts are picked by a broadcast join

ITEM_SCHEMA = "eval_set STRING, item_id STRING, segments ARRAY<STRING>, error STRING"
GRAM_SCHEMA = "eval_set STRING, item_id STRING, n_segments INT, n_words INT, n_grams INT, grams ARRAY<BIGINT>, lengths ARRAY<INT>"
FOUND_SCHEMA = "doc_id STRING, grams ARRAY<BIGINT>"
VERIFIED_SCHEMA = ("doc_id STRING, eval_set STRING, item_id STRING, matched_ngrams INT, item_ngrams INT, "
                   "containment DOUBLE, span STRING")


# ---------------------------------------------------------------------------------------------
# The evaluation sets
# ---------------------------------------------------------------------------------------------


def eval_set_path(cfg: PipelineConfig, lakehouse: Path, s: EvalSetConfig) -> Path:
    """Where a set's items are read: its path from the config, or a sample set's file in the lakehouse."""
    if s.format == "sample":
        return Path(lakehouse) / SAMPLE_FOLDER / f"{s.name}.jsonl"
    return cfg.resolve(s.path or "")


def eval_files(cfg: PipelineConfig, lakehouse: Path) -> dict[str, list]:
    """Each declared set's files (`sources.evalsets.EvalFile`), a sample set written first. A path that
    does not exist, or a file whose format cannot be told, is one sentence naming the set."""
    from ..sources.evalsets import SAMPLE_ITEMS, ensure_sample, list_files

    out = {}
    for i, s in enumerate(cfg.decontaminate.eval_sets):
        where = f"decontaminate.eval_sets[{i}] ({s.name})"
        path = eval_set_path(cfg, lakehouse, s)
        if s.format == "sample":
            sample = next((src for src in cfg.sources if src.kind == "sample"), None)
            ensure_sample(path, dict(sample.parts) if sample else {}, s.items or SAMPLE_ITEMS)
            s = s.model_copy(update={"format": "jsonl", "fields": ["passage"], "id_field": "id"})
        out[s.name] = list_files(s, path, where)
    return out


def reading_options(settings: DecontaminateSettings) -> dict[str, tuple[list[str], str | None]]:
    """set name -> (fields, id_field) as the workers read its files."""
    out = {}
    for s in settings.eval_sets:
        out[s.name] = (["passage"], "id") if s.format == "sample" else (list(s.fields), s.id_field)
    return out


def schemes(settings: DecontaminateSettings) -> dict[str, tuple[int, int, str, float]]:
    """set name -> (ngram, min_words, mode, containment threshold: 0 in ngram mode)."""
    out = {}
    for s in settings.eval_sets:
        n, mode, share = settings.scheme(s)
        out[s.name] = (n, settings.min_words, mode, share if mode == "containment" else 0.0)
    return out


def make_item_reader(options: dict[str, tuple[list[str], str | None]]):
    """mapInArrow function: evaluation files (one row each) -> their items (set, id, segments); a
    file that cannot be read gives one row with its error instead."""

    def read_partition(batches):
        import pyarrow as pa

        from ..sources.evalsets import EvalFile, EvalSetError, read_items

        schema = pa.schema([("eval_set", pa.string()), ("item_id", pa.string()), ("segments", pa.list_(pa.string())),
                            ("error", pa.string())])
        for batch in batches:
            for row in batch.to_pylist():
                f = EvalFile(**row)
                fields, id_field = options[f.eval_set]
                out: dict[str, list] = {"eval_set": [], "item_id": [], "segments": [], "error": []}
                try:
                    for item_id, segments in read_items(f, fields, id_field):
                        for k, v in zip(out, (f.eval_set, item_id, segments, None), strict=True):
                            out[k].append(v)
                        if len(out["item_id"]) >= 4096:
                            yield pa.RecordBatch.from_pydict(out, schema=schema)
                            out = {k: [] for k in out}
                except (EvalSetError, OSError, UnicodeDecodeError) as e:
                    message = str(e) if isinstance(e, EvalSetError) else f"{f.eval_set}: {f.rel} could not be read ({e})"
                    for k, v in zip(out, (f.eval_set, None, None, message), strict=True):
                        out[k].append(v)
                if out["eval_set"]:
                    yield pa.RecordBatch.from_pydict(out, schema=schema)

    return read_partition


def make_item_hasher(scheme: dict[str, tuple[int, int, str, float]]):
    """mapInArrow function: items -> their distinct gram hashes, words and gram lengths."""

    def hash_partition(batches):
        import numpy as np
        import pyarrow as pa

        from ..text.ngrams import item_hashes

        schema = pa.schema([("eval_set", pa.string()), ("item_id", pa.string()), ("n_segments", pa.int32()),
                            ("n_words", pa.int32()), ("n_grams", pa.int32()), ("grams", pa.list_(pa.int64())),
                            ("lengths", pa.list_(pa.int32()))])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            cols = batch.to_pydict()
            by_set: dict[str, list[int]] = {}
            for i, name in enumerate(cols["eval_set"]):
                by_set.setdefault(name, []).append(i)
            for name, idx in by_set.items():
                n, min_words = scheme[name][:2]
                segs = [cols["segments"][i] or [] for i in idx]
                h, offsets, n_words, lengths = item_hashes(segs, n, min_words)
                yield pa.RecordBatch.from_arrays([
                    pa.array([name] * len(idx), pa.string()),
                    pa.array([cols["item_id"][i] for i in idx], pa.string()),
                    pa.array([len(s) for s in segs], pa.int32()),
                    pa.array(n_words, pa.int32()),
                    pa.array(np.diff(offsets).astype(np.int32)),
                    pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(h.view(np.int64))),
                    pa.array(lengths, pa.list_(pa.int32())),
                ], schema=schema)

    return hash_partition


# ---------------------------------------------------------------------------------------------
# The documents: n-grams on the workers, candidates in Spark, verification on the workers
# ---------------------------------------------------------------------------------------------

_MEMBERS: dict[str, object] = {}  # per Python worker: the evaluation grams' GramSet, built once per run


def make_finder(lengths: list[int], members=None, key: str = ""):
    """mapInArrow function: (doc_id, text) -> each document's distinct gram hashes of the given
    lengths; with `members` (the evaluation grams, an int64 array), only those among them, and only
    documents that have some."""

    def find_partition(batches):
        import numpy as np
        import pyarrow as pa

        from ..text.ngrams import GramSet, document_grams

        gramset = None
        if members is not None:
            gramset = _MEMBERS.get(key)
            if gramset is None:
                _MEMBERS.clear()
                gramset = _MEMBERS[key] = GramSet(members.view(np.uint64))
        schema = pa.schema([("doc_id", pa.string()), ("grams", pa.list_(pa.int64()))])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            h, offsets = document_grams(batch.column("text").to_pylist(), lengths, gramset)
            ids = batch.column("doc_id")
            if gramset is not None:
                some = np.flatnonzero(np.diff(offsets) > 0)
                if not len(some):
                    continue
                ids = ids.take(pa.array(some))
                counts = np.diff(offsets)[some]
                offsets = np.concatenate([[0], np.cumsum(counts)])
            yield pa.RecordBatch.from_arrays(
                [ids, pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(h.view(np.int64)))], schema=schema)

    return find_partition


def make_verifier(scheme: dict[str, tuple[int, int, str, float]]):
    """mapInArrow function: candidate (document, item) pairs with both texts, sorted by document ->
    the pairs that hold up word for word and meet their set's mode, with one span each."""

    def verify_partition(batches):
        import pyarrow as pa

        from ..text.ngrams import DocumentWords, item_grams, verify_matches

        schema = pa.schema([("doc_id", pa.string()), ("eval_set", pa.string()), ("item_id", pa.string()),
                            ("matched_ngrams", pa.int32()), ("item_ngrams", pa.int32()), ("containment", pa.float64()),
                            ("span", pa.string())])
        doc_id, doc = None, None
        for batch in batches:
            out: dict[str, list] = {name: [] for name in schema.names}
            for r in batch.to_pylist():
                if r["doc_id"] != doc_id:
                    doc_id, doc = r["doc_id"], DocumentWords(r["text"])
                n, min_words, _, threshold = scheme[r["eval_set"]]
                m = verify_matches(doc, item_grams(r["segments"] or [], n, min_words))
                if m is None or m.containment < threshold - 1e-9:
                    continue
                for k, v in zip(out, (doc_id, r["eval_set"], r["item_id"], m.matched, m.item_grams, m.containment, m.span), strict=True):
                    out[k].append(v)
            if out["doc_id"]:
                yield pa.RecordBatch.from_pydict(out, schema=schema)

    return verify_partition


def _none_found_before(spark, todo, n_todo: int, version: int) -> bool:
    """Whether silver.contamination (at `version`) holds no row of a document checked in this run,
    read from its files for a plan of at most `ID_LIST_LIMIT` documents (named by their ids):
    then nothing found before is to be replaced, the usual case for new documents. False when some
    row may be, or when the files cannot be read here."""
    if n_todo > ID_LIST_LIMIT:
        return False
    listed = id_list(r["doc_id"] for r in todo.select("doc_id").collect())
    return listed is not None and count_in_files(spark, CONTAMINATION.name, version, f"doc_id IN ({listed})") == 0


def plan_decontaminate(scope, checks, entries: list[str]):
    """The plan: for every document in scope (doc_id, content_sha256), the sets to check it against
    (`check`, names) and what it will have been checked against after (`eval_sets`, name@digest).
    `checks`: ops.contamination_checks (doc_id, content_sha256, eval_sets); `entries`: name@digest of
    every declared set. A document whose text was checked keeps the entries of sets no longer
    declared (declared again unchanged, they need no new check); one whose text is new or changed
    is checked against every set."""
    from pyspark.sql import functions as F

    wanted = F.array(*[F.lit(e) for e in entries]) if entries else F.array().cast("array<string>")
    names = F.array(*[F.lit(e.split("@")[0]) for e in entries]) if entries else F.array().cast("array<string>")
    old = checks.select("doc_id", F.col("content_sha256").alias("checked_sha"), F.col("eval_sets").alias("checked"))
    same = F.coalesce(F.col("checked_sha") == F.col("content_sha256"), F.lit(False))
    missing = F.when(same, F.array_except(wanted, "checked")).otherwise(wanted)
    others = F.when(same, F.filter("checked", lambda e: ~F.array_contains(names, F.substring_index(e, "@", 1)))).otherwise(
        F.array().cast("array<string>"))
    return scope.join(old, "doc_id", "left").select(
        "doc_id", "content_sha256", F.transform(missing, lambda e: F.substring_index(e, "@", 1)).alias("check"),
        F.array_sort(F.array_union(others, wanted)).alias("eval_sets"))


def candidate_pairs(hits, todo, items, thresholds: dict[str, float]):
    """(doc_id, eval_set, item_id) pairs worth verifying: `hits` (doc_id, gram) meet the evaluation
    grams (`items`: eval_set, item_id, n_grams, grams), only for sets the document is checked
    against (`todo`: doc_id, check); in containment mode a pair needs at least its threshold of the
    item's grams (hash matches: an upper bound of the verified share)."""
    from pyspark.sql import functions as F

    grams = items.select("eval_set", "item_id", F.explode("grams").alias("gram"))
    share = F.create_map(*[x for name, t in thresholds.items() for x in (F.lit(name), F.lit(t))]) if thresholds else None
    pairs = (hits.join(grams, "gram").join(todo.select("doc_id", "check"), "doc_id")
             .where(F.array_contains("check", F.col("eval_set")))
             .groupBy("doc_id", "eval_set", "item_id").agg(F.count("*").alias("hit_grams"))
             .join(items.select("eval_set", "item_id", "n_grams"), ["eval_set", "item_id"]))
    if share is not None:
        pairs = pairs.where(F.col("hit_grams") >= F.coalesce(share[F.col("eval_set")], F.lit(0.0)) * F.col("n_grams") - 1e-9)
    return pairs.select("doc_id", "eval_set", "item_id")


# ---------------------------------------------------------------------------------------------
# The stage
# ---------------------------------------------------------------------------------------------


class Decontaminate(Stage):
    """silver.documents (those headed for dedup) -> silver.contamination, ops.eval_sets,
    ops.contamination_checks; curate then rejects what it found (the follow-up `brickyard run` runs).
    Its plan: documents not yet checked, with their text, against each declared set's digest."""

    name = "decontaminate"
    reads = (SILVER.name,)
    writes = (CONTAMINATION, EVAL_SETS, CONTAMINATION_CHECKS)

    def skip(self, ctx: StageContext) -> str | None:
        if not ctx.cfg.decontaminate.eval_sets:
            return "no evaluation sets declared (decontaminate.eval_sets)"
        return skip_unless_curated(ctx)

    def prepare(self, ctx: StageContext) -> None:
        self.files = eval_files(ctx.cfg, ctx.lakehouse)

    def settings(self, ctx: StageContext) -> dict:
        return to_dict(ctx.cfg.decontaminate)

    def settings_hash(self, ctx: StageContext, settings: dict) -> str:
        # the files' sizes and times too: an evaluation file edited in place is new work (its items
        # decide through their digest whether anything needs checking again)
        stats = {name: [(f.rel, f.size, f.mtime_ns) for f in files] for name, files in self.files.items()}
        return config_hash({"settings": settings, "files": stats})

    def apply(self, ctx: StageContext, run) -> dict:
        return _decontaminate(ctx.spark, ctx.cfg, self.files, run)


def decontaminate(spark, cfg: PipelineConfig) -> StageResult:
    """Run the decontaminate stage (rows_in: documents checked; rows_rejected: found contaminated)."""
    return run_stage(Decontaminate(), StageContext.of(spark, cfg))


def _read_items(spark, settings: DecontaminateSettings, files: dict[str, list]):
    """Every declared set's items, read on the workers (one task per file), checkpointed; and per
    set its item count and content checksum. A file that cannot be read, or an id given twice,
    is one sentence."""
    from pyspark.sql import functions as F

    rows = [f.to_row() for fs in files.values() for f in fs]
    schema = "eval_set STRING, file STRING, rel STRING, format STRING, size BIGINT, mtime_ns BIGINT"
    listed = spark.createDataFrame(rows, schema).repartition(max(1, len(rows)))
    items = listed.mapInArrow(make_item_reader(reading_options(settings)), ITEM_SCHEMA).localCheckpoint(eager=True)
    sha = F.sha2(F.concat_ws("\u241f", "item_id", F.concat_ws("\u241e", "segments")), 256)
    summary = items.groupBy("eval_set").agg(
        F.count("item_id").alias("items"), F.countDistinct("item_id").alias("ids"),
        F.min("error").alias("error"),
        F.coalesce(F.sum(F.conv(F.substring(sha, 1, 15), 16, 10).cast("decimal(38,0)")), F.lit(0)).cast("string").alias("checksum"),
    ).collect()
    found = {r["eval_set"]: r for r in summary}
    for name in files:
        r = found.get(name)
        if r is not None and r["error"]:
            raise BrickyardError(f"decontaminate: evaluation set {r['error']}")
        if r is not None and r["ids"] != r["items"]:
            dup = (items.where(F.col("eval_set") == name).groupBy("item_id").count().where("count > 1").first())
            raise BrickyardError(f"decontaminate: evaluation set {name} has the item id {dup['item_id']!r} more than once; "
                                 "its id_field must be unique (or drop id_field to number items by file and line)")
    return items.where(F.col("error").isNull()).drop("error"), {n: (found[n]["items"], found[n]["checksum"]) if n in found else (0, "0")
                                                                 for n in files}


def digests(settings: DecontaminateSettings, counted: dict[str, tuple[int, str]]) -> dict[str, str]:
    """set name -> digest of its items and of the settings that decide a match."""
    from ..text.ngrams import HASH_VERSION

    out = {}
    for s in settings.eval_sets:
        n, min_words, mode, share = schemes(settings)[s.name]
        decides = {"hash": HASH_VERSION, "ngram": n, "min_words": min_words, "mode": mode, "items": counted[s.name]}
        if mode == "containment":
            decides["containment"] = share
        out[s.name] = config_hash(decides)
    return out


def _decontaminate(spark, cfg: PipelineConfig, files: dict[str, list], run) -> dict:
    from pyspark.sql import functions as F

    say = log.info
    settings = cfg.decontaminate
    scheme = schemes(settings)
    silver, silver_version = read_pinned(spark, SILVER.name, "doc_id, content_sha256, text", SCOPE)
    run.inputs.append(Ref(SILVER.name, "table", silver_version))
    with run.phase("read_eval_sets"):
        items, counted = _read_items(spark, settings, files)
        digest = digests(settings, counted)
    for name, (n, _) in counted.items():
        run.inputs.append(Ref(f"eval_set:{name}", "source", None, f"{digest[name]}: {n} items"))
    entries = sorted(f"{name}@{d}" for name, d in digest.items())

    checks, checks_version = read_pinned(spark, CONTAMINATION_CHECKS.name, "doc_id, content_sha256, eval_sets")
    with run.phase("plan"):
        planned = plan_decontaminate(silver.select("doc_id", "content_sha256"), checks, entries)
        todo = planned.where(F.size("check") > 0).localCheckpoint(eager=True)
        n_todo = todo.count()
    listed = query_files(spark, "SELECT eval_set, digest FROM e", {"e": (EVAL_SETS.name, None)})  # no Spark job where local
    if listed is None:
        listed = [r.asDict() for r in spark.table(EVAL_SETS.name).select("eval_set", "digest").collect()]
    recorded = {r["eval_set"]: r["digest"] for r in listed}
    sets_changed = recorded != digest
    if n_todo == 0 and not sets_changed:
        run.counts(0, 0)
        for spec in (CONTAMINATION, EVAL_SETS, CONTAMINATION_CHECKS):
            run.outputs.append(Ref(spec.name, "table", latest_version(spark, spec.name)))
        run.noop("every document in scope was checked against every evaluation set as it is")
        say("decontaminate: nothing new")
        return {}

    with run.phase("hash_eval_sets"):
        hashed = items.mapInArrow(make_item_hasher(scheme), GRAM_SCHEMA).localCheckpoint(eager=True)
    if sets_changed:
        _record_sets(spark, settings, files, digest, counted, hashed, run)
    if n_todo == 0:
        run.counts(0, 0)
        for spec in (CONTAMINATION, EVAL_SETS, CONTAMINATION_CHECKS):
            run.outputs.append(Ref(spec.name, "table", latest_version(spark, spec.name)))
        say("decontaminate: evaluation sets recorded; no document to check")
        return {}

    needed = sorted({r["name"] for r in todo.select(F.explode("check").alias("name")).distinct().collect()})
    wanted = hashed.where(F.col("eval_set").isin(needed) & (F.col("n_grams") > 0))
    lengths = sorted({r["L"] for r in wanted.select(F.explode("lengths").alias("L")).distinct().collect()})
    tasks = 4 * session_cores(spark)
    with run.phase("find"):
        small, n_grams, pairs = _candidates(spark, silver, todo, n_todo, wanted, lengths, scheme, needed, settings, run, tasks)
    n_pairs = pairs.count() if pairs is not None else 0
    found, tally, n_found = None, {}, 0
    with run.phase("verify"):
        if n_pairs:
            text_of = silver.join(F.broadcast(pairs.select("doc_id").distinct()), "doc_id", "left_semi").select("doc_id", "text")
            # a task per few hundred pairs, a few per core at most (each pair is a Python check of two texts)
            checked = (pairs.join(text_of, "doc_id").join(items, ["eval_set", "item_id"])
                       .repartition(min(tasks, 1 + n_pairs // 200), "doc_id").sortWithinPartitions("doc_id")
                       .mapInArrow(make_verifier(scheme), VERIFIED_SCHEMA))
            found = (checked.join(todo.select("doc_id", "content_sha256"), "doc_id")
                     .select(*[c.name for c in CONTAMINATION.columns if c.name not in ("batch_id", "checked_at")],
                             F.lit(run.run_id).alias("batch_id"), F.current_timestamp().alias("checked_at"))
                     .localCheckpoint(eager=True))
            tally = {r["eval_set"]: (r["docs"], r["items"]) for r in found.groupBy("eval_set").agg(
                F.countDistinct("doc_id").alias("docs"), F.countDistinct("item_id").alias("items")).collect()}
            n_found = found.select("doc_id").distinct().count()

    with run.phase("write"):
        # the rows of what is checked again go first; the checks table, which marks work done, last.
        # silver.contamination is touched only when its rows change: curate, which reads it, then
        # stays a quick no-op after a check that found nothing
        old, old_version = read_pinned(spark, CONTAMINATION.name, "doc_id, eval_set, item_id")
        if _none_found_before(spark, todo, n_todo, old_version):
            n_stale = 0
        else:
            pairs_checked = todo.select("doc_id", F.explode("check").alias("eval_set"))
            stale = old.join(pairs_checked, ["doc_id", "eval_set"], "left_semi").localCheckpoint(eager=True)
            n_stale = stale.count()
        if n_stale or n_found:
            set_properties(spark, CONTAMINATION.name, {"brickyard.producer_version": code_version()})
        if n_stale:
            delete_matching(stale, CONTAMINATION.name, ["doc_id", "eval_set", "item_id"], fixed=True)
        if found is not None and n_found:  # rows of pairs just checked, whose old rows are gone: an append
            found.write.format("delta").mode("append").saveAsTable(CONTAMINATION.name)
        fault_pause("decontaminate:after-contamination")
        done = todo.select("doc_id", "content_sha256", "eval_sets", F.lit(run.run_id).alias("batch_id"),
                           F.current_timestamp().alias("checked_at"))
        checked_before = count_in_files(spark, CONTAMINATION_CHECKS.name, checks_version, "true")
        if checked_before is None:
            checked_before = checks.limit(1).count()
        if checked_before:
            merge_into(done, CONTAMINATION_CHECKS.name, "doc_id")
        else:  # the first run: nothing to match
            done.write.format("delta").mode("append").saveAsTable(CONTAMINATION_CHECKS.name)
    for spec in (CONTAMINATION, EVAL_SETS, CONTAMINATION_CHECKS):
        run.outputs.append(Ref(spec.name, "table", last_commit(spark, spec.name)[0]))
    rejected = n_found if settings.reject else 0
    run.counts(n_todo, n_todo - rejected, rejected, 0)
    run.metrics.update({"documents_found": n_found, "candidate_pairs": n_pairs, "lookup": "broadcast" if small else "join" if lengths else "none",
                        "eval_ngrams": n_grams if n_grams is not None else f">{settings.broadcast_limit}",
                        "gram_lengths": ",".join(map(str, lengths)), "replaced_rows": n_stale})
    for name in needed:
        docs, found_items = tally.get(name, (0, 0))
        run.metrics.update({f"documents.{name}": docs, f"items.{name}": found_items})
    say(f"decontaminate: {n_todo} documents checked against {', '.join(needed)}: {n_found} contain an evaluation item"
        + ("" if settings.reject else " (recorded, not rejected: decontaminate.reject is off)"))
    return {"checked": n_todo, "found": n_found}


def _candidates(spark, silver, todo, n_todo: int, wanted, lengths: list[int], scheme, needed: list[str],
                settings: DecontaminateSettings, run, tasks: int):
    """(broadcast?, evaluation n-grams sent to the tasks, candidate pairs checkpointed or None): the
    documents' grams met with the evaluation grams, through the broadcast lookup when there are at
    most `broadcast_limit` distinct evaluation grams, else through the join alone."""
    import numpy as np
    from pyspark.sql import functions as F

    if not lengths:  # every item of the sets to check is too short: nothing to look for
        return False, 0, None
    members = None
    if settings.broadcast_limit:
        members = wanted.select(F.explode("grams").alias("gram")).distinct().limit(settings.broadcast_limit + 1).toArrow()
    small = members is not None and members.num_rows <= settings.broadcast_limit
    if small:
        grams = np.sort(members.column("gram").to_numpy())
        finder, n_grams = make_finder(lengths, grams, f"{run.run_id}:{len(grams)}"), len(grams)
    else:
        finder, n_grams = make_finder(lengths), None
    with scoped_conf(spark, {"spark.sql.files.minPartitionNum": str(tasks)}):
        hits = _texts(silver, todo, n_todo, tasks).mapInArrow(finder, FOUND_SCHEMA).select("doc_id", F.explode("grams").alias("gram"))
        thresholds = {name: scheme[name][3] for name in needed}
        return small, n_grams, candidate_pairs(hits, todo, wanted, thresholds).localCheckpoint(eager=True)


def _texts(silver, todo, n_todo: int, tasks: int):
    """(doc_id, text) of the documents to check, read in the scan's own partitions: all of the
    scope, or the scope semi-joined with the keys to check (broadcast when there are few)."""
    from pyspark.sql import functions as F

    keys = todo.select("doc_id")
    if n_todo <= BROADCAST_KEYS:
        keys = F.broadcast(keys)
    picked = silver.join(keys, "doc_id", "left_semi")
    if n_todo > BROADCAST_KEYS:
        picked = picked.repartition(tasks, "doc_id")
    return picked.select("doc_id", "text")


def _record_sets(spark, settings: DecontaminateSettings, files: dict[str, list], digest: dict[str, str],
                 counted: dict[str, tuple[int, str]], hashed, run) -> None:
    """Replace ops.eval_sets with the declared sets: digest, settings and item counts."""
    from pyspark.sql import functions as F

    stats = {r["eval_set"]: r for r in hashed.groupBy("eval_set").agg(
        F.count("*").alias("items"),
        F.sum(F.when(F.col("n_grams") > 0, 1).otherwise(0)).alias("checked"),
        F.sum(F.when((F.col("n_grams") == 0) & (F.col("n_segments") > 0), 1).otherwise(0)).alias("too_short"),
        F.sum(F.when(F.col("n_segments") == 0, 1).otherwise(0)).alias("empty"),
    ).collect()}
    ngrams = {r["eval_set"]: r["n"] for r in hashed.select("eval_set", F.explode("grams").alias("g")).groupBy("eval_set")
              .agg(F.countDistinct("g").alias("n")).collect()}
    rows = []
    for s in settings.eval_sets:
        n, _, mode, share = schemes(settings)[s.name]
        st = stats.get(s.name)
        formats = sorted({f.format for f in files[s.name]})
        fmt = "sample" if s.format == "sample" else formats[0] if len(formats) == 1 else "mixed"
        rows.append((s.name, digest[s.name], s.path if s.format != "sample" else files[s.name][0].file, fmt, mode, n,
                     share if mode == "containment" else None, int(st["items"]) if st else 0, int(st["checked"]) if st else 0,
                     int(st["too_short"]) if st else 0, int(st["empty"]) if st else 0, int(ngrams.get(s.name, 0)), run.run_id))
        if st:
            run.metrics.update({f"items_too_short.{s.name}": int(st["too_short"]), f"items_empty.{s.name}": int(st["empty"])})
    schema = ", ".join(f"{c.name} {c.type}" for c in EVAL_SETS.columns if c.name != "updated_at")
    df = spark.createDataFrame(rows, schema).withColumn("updated_at", F.current_timestamp())
    # INSERT OVERWRITE: one commit that keeps the table's comments, properties and constraints
    df.select(*[c.name for c in EVAL_SETS.columns]).write.insertInto(EVAL_SETS.name, overwrite=True)
