"""Dedup: kept `silver.documents` -> `gold.documents`, one row per cluster of exact or near duplicates.

Each run takes the kept silver documents it has not seen (new, or changed since their last dedup):

1. Signatures (`silver.signatures`): a MinHash signature per document, computed on the workers
   in Arrow batches (`brickyard.pipelines.text.minhash`: word n-gram shingles, datasketch's affine32 scheme,
   vectorized with numpy). A domain may have its own n-gram size, signature length and threshold
   (`dedup.domains`). Stored signatures are reused; only new documents, changed ones, and those
   whose domain's scheme changed are signed.
2. Exact duplicates: same `content_sha256` (the normalized, redacted text). A new document equal
   to a document already in gold joins that document's cluster; among new documents with the same
   hash the keeper policy picks one representative.
3. Near duplicates among the representatives, and between them and every document already
   clustered: LSH with (bands, rows) from datasketch's optimal-parameter search for the threshold,
   weighted towards recall (`lsh_weights`). A band's key is an xxhash64 of its slice of the
   signature, computed in Spark SQL; candidate pairs are documents that share a (scheme, threshold,
   band, key) bucket. Each candidate pair is verified by the exact Jaccard similarity of the two
   texts' shingle sets (`verify: exact`, the default; or by the signatures' estimate).
4. Clusters: connected components of the verified pairs, distributed (`brickyard.pipelines.text.components`),
   so a chain A~B~C is one cluster even when A and C are not similar. An already clustered
   document stands for its cluster. A component that reaches an existing cluster joins it (the
   smallest, if it reaches several; existing clusters are never merged, so what is in gold stays);
   otherwise the keeper policy (`dedup.keeper`, default: highest quality score, then longest, then
   oldest, then doc_id) picks its keeper, and the cluster is named after it.

Outputs: `silver.duplicates` (every deduplicated document with its cluster, keeper flag, method
and estimated similarity to the keeper; singletons are clusters of one) and `gold.documents`
(the keepers). gold is append-only: a new document that duplicates one in gold never enters it.
A document that curation no longer keeps, or whose text changed, leaves gold and its cluster; the
cluster is dissolved and the rest of it deduplicated again (signatures reused). gold's quality columns follow silver's.
Counts balance: rows in = keepers + duplicates. A run with nothing new is a recorded no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DedupSettings, PipelineConfig, to_dict
from ..lake.delta import (
    code_version,
    delete_matching,
    last_commit,
    latest_version,
    merge_into,
    read_pinned,
    set_properties,
)
from ..lake.faults import fault_pause
from ..lake.lineage import Ref
from ..lake.session import session_cores
from ..lake.tables import DUPLICATES, GOLD, SIGNATURES, SILVER
from .base import Stage, StageContext, StageResult, log, run_stage, skip_unless_curated

GOLD_FROM_SILVER = [c.name for c in GOLD.columns if c.name not in ("cluster_id", "batch_id", "deduped_at")]
QUALITY_COLUMNS = ["quality_score", "quality_tier", "quality_model"]
OLD, NEW = "0|", "1|"  # graph node prefixes: existing clusters sort before new documents


# ---------------------------------------------------------------------------------------------
# Settings per domain
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainPlan:
    domain: str
    ngram: int
    num_perm: int
    seed: int
    threshold: float
    bands: int
    rows: int

    @property
    def scheme(self) -> str:
        return scheme_name(self.ngram, self.num_perm, self.seed)


def scheme_name(ngram: int, num_perm: int, seed: int) -> str:
    from ..text.minhash import HASH_VERSION

    return f"h{HASH_VERSION}-w{ngram}-p{num_perm}-s{seed}"


def domain_plans(settings: DedupSettings, domains) -> dict[str, DomainPlan]:
    from ..text.minhash import lsh_params

    plans = {}
    for d in sorted(set(domains)):
        ngram, num_perm, threshold = settings.scheme(d)
        b, r = lsh_params(threshold, num_perm, tuple(settings.lsh_weights))
        plans[d] = DomainPlan(d, ngram, num_perm, settings.seed, threshold, b, r)
    return plans


def keeper_order(keys: list[str]):
    """Spark sort expressions for the keeper policy (nulls last either way), doc_id last."""
    from pyspark.sql import functions as F

    order = []
    for key in keys:
        name, *direction = key.split()
        col = F.col(name)
        order.append(col.asc_nulls_last() if direction and direction[0].lower() == "asc" else col.desc_nulls_last())
    return order + [F.col("doc_id").asc()]


# ---------------------------------------------------------------------------------------------
# Signatures on the workers
# ---------------------------------------------------------------------------------------------

SIGN_SCHEMA = "doc_id STRING, domain STRING, content_sha256 STRING, scheme STRING, n_shingles INT, signature ARRAY<INT>"


def make_signer(plans: dict[str, tuple[int, int]], default: tuple[int, int], seed: int):
    """mapInArrow function: (doc_id, domain, content_sha256, text) -> signature rows, one numpy
    computation per scheme per Arrow batch."""

    def sign_partition(batches):
        import numpy as np
        import pyarrow as pa

        from ..text.minhash import batch_shingle_hashes, signatures

        schema = pa.schema([("doc_id", pa.string()), ("domain", pa.string()), ("content_sha256", pa.string()),
                            ("scheme", pa.string()), ("n_shingles", pa.int32()), ("signature", pa.list_(pa.int32()))])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            cols = batch.to_pydict()
            groups: dict[tuple[int, int], list[int]] = {}
            for i, d in enumerate(cols["domain"]):
                groups.setdefault(plans.get(d, default), []).append(i)
            for (ngram, num_perm), idx in groups.items():
                hashes = batch_shingle_hashes([cols["text"][i] for i in idx], ngram)
                sigs = signatures(hashes, num_perm, seed).view(np.int32)
                offsets = np.arange(0, (len(idx) + 1) * num_perm, num_perm, dtype=np.int32)
                yield pa.RecordBatch.from_arrays([
                    pa.array([cols["doc_id"][i] for i in idx], pa.string()),
                    pa.array([cols["domain"][i] for i in idx], pa.string()),
                    pa.array([cols["content_sha256"][i] for i in idx], pa.string()),
                    pa.array([scheme_name(ngram, num_perm, seed)] * len(idx), pa.string()),
                    pa.array(np.fromiter((len(h) for h in hashes), dtype=np.int32, count=len(idx))),
                    pa.ListArray.from_arrays(pa.array(offsets), pa.array(sigs.ravel())),
                ], schema=schema)

    return sign_partition


# ---------------------------------------------------------------------------------------------
# LSH candidates and verification in Spark (used by the job and by bench/dedup_accuracy.py)
# ---------------------------------------------------------------------------------------------

SIMILARITY = "CASE WHEN size({a}) = size({b}) THEN size(filter(zip_with({a}, {b}, (x, y) -> x = y), t -> t)) / size({a}) END"


def similarity_expr(a: str, b: str):
    from pyspark.sql import functions as F

    return F.expr(SIMILARITY.format(a=a, b=b))


def plans_frame(spark, plans: dict[str, DomainPlan]):
    rows = [(p.domain, p.scheme, p.ngram, p.threshold, p.bands, p.rows) for p in plans.values()]
    return spark.createDataFrame(rows, "domain STRING, scheme STRING, ngram INT, threshold DOUBLE, bands INT, rows INT")


def band_buckets(signed):
    """(doc_id, scheme, ngram, threshold, band, key) for each LSH band of each signature. `signed`
    has doc_id, scheme, ngram, threshold, bands, rows, signature; documents without shingles are
    left out."""
    from pyspark.sql import functions as F

    keys = F.expr("transform(sequence(0, bands - 1), j -> xxhash64(slice(signature, j * rows + 1, rows)))")
    return signed.where("n_shingles > 0").select("doc_id", "scheme", "ngram", "threshold", F.posexplode(keys).alias("band", "key"))


def candidate_pairs(left, right=None):
    """Distinct (a, b) pairs of documents sharing a bucket: within `left` (a < b), or across."""
    from pyspark.sql import functions as F

    bucket = ["scheme", "ngram", "threshold", "band", "key"]
    x = left.select(*bucket, F.col("doc_id").alias("a"))
    y = (left if right is None else right).select(*bucket, F.col("doc_id").alias("b"))
    pairs = x.join(y, bucket)
    if right is None:
        pairs = pairs.where("a < b")
    return pairs.select("a", "b", "ngram", "threshold").distinct()


PAIR_SCHEMA = "a STRING, b STRING, threshold DOUBLE, similarity DOUBLE"


def _exact_jaccard(batches):
    import pyarrow as pa

    from ..text.minhash import pair_jaccard

    schema = pa.schema([("a", pa.string()), ("b", pa.string()), ("threshold", pa.float64()), ("similarity", pa.float64())])
    for batch in batches:
        if batch.num_rows == 0:
            continue
        cols = batch.to_pydict()
        sims = [0.0] * batch.num_rows
        by_n: dict[int, list[int]] = {}
        for i, n in enumerate(cols["ngram"]):
            by_n.setdefault(n, []).append(i)
        for n, idx in by_n.items():
            found = pair_jaccard([cols["text_a"][i] for i in idx], [cols["text_b"][i] for i in idx], n)
            for i, v in zip(idx, found, strict=True):
                sims[i] = float(v)
        yield pa.RecordBatch.from_pydict({"a": cols["a"], "b": cols["b"], "threshold": cols["threshold"], "similarity": sims}, schema=schema)


def verified(pairs, signed, texts, verify: str = "exact"):
    """Candidate pairs (a, b, ngram, threshold) with their similarity: the exact Jaccard of the two
    texts' shingle sets (`texts`: doc_id, text), or else the signatures' estimate; kept when it
    reaches the threshold (all of them with verify "none")."""
    from pyspark.sql import functions as F

    if verify == "exact":
        ta = texts.select(F.col("doc_id").alias("a"), F.col("text").alias("text_a"))
        tb = texts.select(F.col("doc_id").alias("b"), F.col("text").alias("text_b"))
        out = pairs.join(ta, "a").join(tb, "b").mapInArrow(_exact_jaccard, PAIR_SCHEMA)
    else:
        sa = signed.select(F.col("doc_id").alias("a"), F.col("signature").alias("sig_a"))
        sb = signed.select(F.col("doc_id").alias("b"), F.col("signature").alias("sig_b"))
        out = pairs.join(sa, "a").join(sb, "b").select("a", "b", "threshold", similarity_expr("sig_a", "sig_b").alias("similarity"))
    if verify != "none":
        out = out.where(F.col("similarity") >= F.col("threshold") - F.lit(1e-9))
    return out


# ---------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------


def plan_dedup(kept, placed):
    """The plan: kept silver rows to place in a cluster, those whose (doc_id, content_sha256) no
    row of silver.duplicates (`placed`) holds: new documents, and changed texts."""
    return kept.join(placed.select("doc_id", "content_sha256"), ["doc_id", "content_sha256"], "left_anti")


def plan_withdrawal(placed, gone):
    """What leaves silver.duplicates when documents leave curation (or change): the `gone` ones and
    every other member of their clusters, which are dissolved and placed again."""
    released = placed.join(gone.select("cluster_id").distinct(), "cluster_id").select("doc_id")
    return gone.select("doc_id").unionByName(released).distinct()


def _withdraw(spark, current, run_id: str, say) -> int:
    """Take documents that curation no longer keeps, or whose text changed, out of dedup's tables.
    A cluster that loses a document is dissolved (a lost link may split it, a lost keeper leaves it
    without one): its other documents are released to be deduplicated again. Returns how many left.

    `current`: (doc_id, content_sha256) of the documents curation keeps now."""
    dups = read_pinned(spark, DUPLICATES.name, "doc_id, content_sha256, cluster_id")[0]
    gone = dups.join(current, ["doc_id", "content_sha256"], "left_anti").localCheckpoint(eager=True)
    n_gone = gone.count()
    if n_gone:
        drop = plan_withdrawal(dups, gone).localCheckpoint(eager=True)
        n_released = drop.count() - n_gone
        delete_matching(drop, DUPLICATES.name, "doc_id")
        sigs = read_pinned(spark, SIGNATURES.name, "doc_id, content_sha256")[0]
        stale = sigs.join(current, ["doc_id", "content_sha256"], "left_anti").select("doc_id").localCheckpoint(eager=True)
        if stale.count():
            delete_matching(stale, SIGNATURES.name, "doc_id")
        say(f"dedup: {n_gone} documents left curation or changed; {n_released} cluster members released")
    # gold holds exactly the keepers: after a dissolved cluster, and after a run killed between its
    # gold and duplicates commits (gold is written first, so strays show as more gold rows than keepers)
    keepers = read_pinned(spark, DUPLICATES.name, "doc_id", "is_keeper")[0]
    gold = read_pinned(spark, GOLD.name, "doc_id")[0]
    if n_gone or gold.count() != keepers.count():
        stray = gold.join(keepers, "doc_id", "left_anti").localCheckpoint(eager=True)
        if stray.count():
            delete_matching(stray, GOLD.name, "doc_id")
    return n_gone


def _sign(spark, kept, plans: dict[str, DomainPlan], settings: DedupSettings, run, tasks: int) -> int:
    """Sign every kept document that lacks a signature of its domain's current scheme."""
    from pyspark.sql import functions as F

    have = read_pinned(spark, SIGNATURES.name, "doc_id, content_sha256, scheme")[0]
    want = kept.join(F.broadcast(plans_frame(spark, plans).select("domain", "scheme")), "domain")
    todo = want.join(have, ["doc_id", "content_sha256", "scheme"], "left_anti").select("doc_id", "domain", "content_sha256", "text")
    signer = make_signer({d: (p.ngram, p.num_perm) for d, p in plans.items()},
                         (settings.ngram, settings.num_perm), settings.seed)
    signed = (
        todo.repartition(tasks, "doc_id").mapInArrow(signer, SIGN_SCHEMA)
        .select("*", F.lit(run.run_id).alias("batch_id"), F.current_timestamp().alias("signed_at"))
        .localCheckpoint(eager=True)
    )
    n = signed.count()
    if n:
        merge_into(signed, SIGNATURES.name, "doc_id")
    return n


def _assign(spark, todo, old, signed, texts, settings: DedupSettings):
    """(doc_id, cluster_id, is_keeper) for every document of `todo`.

    `todo`: new documents with the keeper-policy columns; `old`: (doc_id, cluster_id) of every
    document already clustered; `signed`: signatures with their domain's LSH settings, for all;
    `texts`: (doc_id, text) for all, for exact verification."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from ..text.components import components

    order = keeper_order(settings.keeper)
    old_keepers = old.where("is_keeper").groupBy("content_sha256").agg(F.min("cluster_id").alias("cluster_id"))
    # exact, against gold: the document joins the cluster of the gold document with its text
    exact_old = todo.join(old_keepers, "content_sha256").select("doc_id", "cluster_id", F.lit(False).alias("is_keeper"))
    rest = todo.join(old_keepers, "content_sha256", "left_anti")
    # exact, among the new: one representative per text
    ranked = rest.withColumn("_rank", F.row_number().over(Window.partitionBy("content_sha256").orderBy(*order)))
    reps = ranked.where("_rank = 1").drop("_rank")
    exact_new = ranked.where("_rank > 1").select("doc_id", "content_sha256").join(
        reps.select("content_sha256", F.col("doc_id").alias("rep")), "content_sha256")
    # near: representatives against each other and against every clustered document
    rep_signed = signed.join(reps.select("doc_id"), "doc_id")
    old_signed = signed.join(old.select("doc_id"), "doc_id")
    rep_buckets = band_buckets(rep_signed).localCheckpoint(eager=True)
    old_buckets = band_buckets(old_signed)
    new_new = verified(candidate_pairs(rep_buckets), signed, texts, settings.verify)
    new_old = verified(candidate_pairs(rep_buckets, old_buckets), signed, texts, settings.verify)
    edges = new_new.select(F.concat(F.lit(NEW), "a").alias("u"), F.concat(F.lit(NEW), "b").alias("v")).unionByName(
        new_old.join(old.select(F.col("doc_id").alias("b"), "cluster_id"), "b")
        .select(F.concat(F.lit(NEW), "a").alias("u"), F.concat(F.lit(OLD), "cluster_id").alias("v"))
    ).localCheckpoint(eager=True)
    comp = components(edges).where(F.col("node").startswith(NEW)).select(
        F.expr(f"substring(node, {len(NEW) + 1})").alias("doc_id"), "component")
    reps = reps.join(comp, "doc_id", "left").withColumn("component", F.coalesce("component", F.concat(F.lit(NEW), "doc_id")))
    joined_old = reps.where(F.col("component").startswith(OLD)).select(
        "doc_id", F.expr(f"substring(component, {len(OLD) + 1})").alias("cluster_id"), F.lit(False).alias("is_keeper"))
    fresh = reps.where(F.col("component").startswith(NEW))
    fresh = fresh.withColumn("_rank", F.row_number().over(Window.partitionBy("component").orderBy(*order)))
    heads = fresh.where("_rank = 1").select("component", F.col("doc_id").alias("cluster_id"))
    fresh = fresh.join(heads, "component").select("doc_id", "cluster_id", (F.col("_rank") == 1).alias("is_keeper"))
    rep_cluster = joined_old.unionByName(fresh)
    followers = exact_new.join(rep_cluster.select(F.col("doc_id").alias("rep"), "cluster_id"), "rep").select(
        "doc_id", "cluster_id", F.lit(False).alias("is_keeper"))
    return exact_old.unionByName(rep_cluster).unionByName(followers)


class Dedup(Stage):
    """silver.documents (kept) -> gold.documents, silver.duplicates, silver.signatures. Its plan:
    kept documents not placed in a cluster yet (or whose text changed), and placed ones that left."""

    name = "dedup"
    reads = (SILVER.name,)
    writes = (SIGNATURES, DUPLICATES, GOLD)

    def skip(self, ctx: StageContext) -> str | None:
        return skip_unless_curated(ctx)

    def settings(self, ctx: StageContext) -> dict:
        return to_dict(ctx.cfg.dedup)

    def apply(self, ctx: StageContext, run) -> dict:
        return _dedup(ctx.spark, ctx.cfg, run)


def dedup(spark, cfg: PipelineConfig) -> StageResult:
    """Run the dedup stage (rows_out: keepers, rows_rejected: duplicates)."""
    return run_stage(Dedup(), StageContext.of(spark, cfg))


def _dedup(spark, cfg: PipelineConfig, run) -> dict:
    from pyspark.sql import functions as F

    say = log.info
    settings = cfg.dedup
    silver_version = latest_version(spark, SILVER.name)
    run.inputs.append(Ref(SILVER.name, "table", silver_version))
    kept = spark.sql(f"SELECT * FROM {SILVER.name} VERSION AS OF {silver_version} WHERE keep")
    with run.phase("withdraw"):
        current = kept.select("doc_id", "content_sha256", "domain").localCheckpoint(eager=True)
        withdrawn = _withdraw(spark, current.drop("domain"), run.run_id, say)
        domains = [r["domain"] for r in current.select("domain").distinct().collect()]
    plans = domain_plans(settings, set(domains) | set(cfg.domains))
    tasks = 4 * session_cores(spark)
    with run.phase("sign"):
        n_signed = _sign(spark, kept, plans, settings, run, tasks)

    dup_version = latest_version(spark, DUPLICATES.name)
    old = spark.sql(f"SELECT doc_id, cluster_id, is_keeper, content_sha256 FROM {DUPLICATES.name} VERSION AS OF {dup_version}")
    policy = sorted({k.split()[0] for k in settings.keeper})
    todo = (plan_dedup(kept, old)
            .select("doc_id", "domain", "content_sha256", *[c for c in policy if c not in ("doc_id", "domain", "content_sha256")])
            .localCheckpoint(eager=True))
    n_todo = todo.count()
    metrics = {"signed": n_signed, "withdrawn": withdrawn}
    if n_todo == 0:
        refreshed = _refresh_quality(spark, kept, run)
        run.counts(0, 0)
        run.metrics.update(metrics | {"quality_refreshed": refreshed})
        # every table it writes, at the version it leaves: the next run's quick no-op compares them
        for spec in (GOLD, DUPLICATES, SIGNATURES):
            run.outputs.append(Ref(spec.name, "table", latest_version(spark, spec.name)))
        if refreshed or withdrawn:
            say(f"dedup: no new documents; {refreshed} gold quality columns refreshed, {withdrawn} withdrawn")
            return {}
        run.noop("no new or changed kept documents")
        say("dedup: nothing new")
        return {}

    sig_version = latest_version(spark, SIGNATURES.name)
    run.inputs.append(Ref(SIGNATURES.name, "table", sig_version))
    signed = (spark.sql(f"SELECT doc_id, scheme, n_shingles, signature FROM {SIGNATURES.name} VERSION AS OF {sig_version}")
              .join(kept.select("doc_id", "domain"), "doc_id")
              .join(F.broadcast(plans_frame(spark, plans)), ["domain", "scheme"]))
    with run.phase("cluster"):
        assigned = _assign(spark, todo, old, signed, kept.select("doc_id", "text"), settings)

    # method and similarity to the keeper, from the two signatures
    me = signed.select("doc_id", F.col("signature").alias("sig"))
    keeper = spark.sql(f"SELECT doc_id AS cluster_id, content_sha256 AS keeper_sha, signature AS keeper_sig FROM {SIGNATURES.name} VERSION AS OF {sig_version}")
    with run.phase("place"):
        placed = (
            assigned.join(todo.select("doc_id", "domain", "content_sha256"), "doc_id")
            .join(me, "doc_id", "left").join(keeper, "cluster_id", "left")
            .select(
                "doc_id", "domain", "content_sha256", "cluster_id", "is_keeper",
                F.when(F.col("is_keeper"), F.lit(None)).when(F.col("content_sha256") == F.col("keeper_sha"), "exact").otherwise("near").alias("method"),
                F.when(F.col("is_keeper"), F.lit(None)).when(F.col("content_sha256") == F.col("keeper_sha"), 1.0)
                .otherwise(similarity_expr("sig", "keeper_sig")).cast("double").alias("similarity"),
                F.lit(run.run_id).alias("batch_id"), F.current_timestamp().alias("deduped_at"),
            )
            .localCheckpoint(eager=True)
        )
        tally = placed.agg(
            F.count("*").alias("n"), F.countDistinct("doc_id").alias("docs"),
            *[F.count(F.when(cond, 1)).alias(name) for name, cond in
              (("keepers", F.col("is_keeper")), ("exact", F.col("method") == "exact"), ("near", F.col("method") == "near"))],
        ).first()
        n_placed, n_distinct, keepers, exact, near = tally["n"], tally["docs"], tally["keepers"], tally["exact"], tally["near"]
        if n_placed != n_todo or n_distinct != n_todo:
            from ..errors import BrickyardError

            raise BrickyardError(f"dedup placed {n_placed} rows ({n_distinct} documents) for {n_todo} new documents")

    gold_rows = (kept.select(*GOLD_FROM_SILVER).join(placed.where("is_keeper").select("doc_id", "cluster_id", "batch_id", "deduped_at"), "doc_id")
                 .select(*GOLD_FROM_SILVER, "cluster_id", "batch_id", "deduped_at"))
    set_properties(spark, GOLD.name, {"brickyard.producer_version": code_version(), "brickyard.last_batch": run.run_id})
    # gold first, duplicates last: duplicates is what marks a document done, and a run killed in
    # between leaves gold rows that the next run's check removes before it starts again
    with run.phase("write"):
        merge_into(gold_rows, GOLD.name, "doc_id")
        fault_pause("dedup:after-gold")
        merge_into(placed, DUPLICATES.name, "doc_id")
    with run.phase("refresh_quality"):
        refreshed = _refresh_quality(spark, kept, run)
    for spec in (GOLD, DUPLICATES):
        run.outputs.append(Ref(spec.name, "table", last_commit(spark, spec.name)[0]))
    run.outputs.append(Ref(SIGNATURES.name, "table", sig_version))
    run.counts(n_todo, keepers, exact + near, 0)
    run.metrics.update(metrics | {"exact_duplicates": exact, "near_duplicates": near, "quality_refreshed": refreshed,
                                  **{f"lsh.{p.domain}": f"{p.scheme} t={p.threshold} b={p.bands} r={p.rows}" for p in plans.values()}})
    say(f"dedup: {n_todo} documents: {keepers} kept, {exact} exact and {near} near duplicates")
    return {"keepers": keepers, "duplicates": exact + near}


def _refresh_quality(spark, kept, run) -> int:
    """Copy silver's quality columns onto gold rows where they differ (a retrained classifier)."""
    from pyspark.sql import functions as F

    gold = read_pinned(spark, GOLD.name, ", ".join(["doc_id", *QUALITY_COLUMNS]))[0]
    now = kept.select("doc_id", *[F.col(c).alias(f"new_{c}") for c in QUALITY_COLUMNS])
    differ = " OR ".join(f"NOT ({c} <=> new_{c})" for c in QUALITY_COLUMNS)
    stale = gold.join(now, "doc_id").where(differ).select("doc_id", *[F.col(f"new_{c}").alias(c) for c in QUALITY_COLUMNS])
    stale = stale.localCheckpoint(eager=True)
    n = stale.count()
    if n:
        merge_into(stale, GOLD.name, "doc_id", columns=QUALITY_COLUMNS)
    return n
