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
5. Containment (`dedup.containment`, off by default): partial copies, which document-level
   MinHash cannot see (a short document made of passages of a long one is far from it in Jaccard).
   C(A in B) = |shingles(A) & shingles(B)| / |shingles(A)|. Candidates come from an inverted index
   as a Spark join: (doc_id, shingle hash) exploded for this run's new keepers and every keeper in
   gold, joined on the hash, shared hashes counted per pair; a hash held by more than `max_df`
   documents is left out (a pair still qualifies when its shared plus left-out hashes reach the
   threshold). Each candidate is verified by the exact containment of the two texts' shingle sets
   (`pair_containment`: the index's count is only a bound where hashes were left out). Only new
   keepers can be contained, and only in a larger keeper that stays (the container is kept,
   whatever the keeper policy says; gold is append-only, so a new container never evicts a gold
   document it contains). The contained keeper and its cluster join the container's cluster, the
   keeper with method `containment`.
6. Span dedup (`dedup.spans`, off by default; on in configs/demo.yaml): repeated paragraphs and
   lines (`brickyard.pipelines.text.spans`: text offers every paragraph and line of at least
   `min_chars`; code only its leading comment block, its licence header, unless
   `keep_code_licence_headers`). The first holder of a span in keeper order keeps it; later copies
   are cut from the text that goes to gold. Keeper order over the corpus: documents already in
   gold first (their spans are in `silver.spans`, 64-bit hashes with the doc_id that keeps each),
   then this run's keepers by the keeper policy, computed with a window per span. A keeper left
   with fewer than `min_words` words (code: nothing) is rejected (method `spans`) and owns nothing,
   so its spans pass to the next holder (rounds until the rejected set is stable; one round when
   nobody is rejected).

Outputs: `silver.duplicates` (every deduplicated document with its cluster, keeper flag, method,
the estimated similarity to the keeper, and `matched_with` / `match_score`: the pair and the value
verified when it was placed; singletons are clusters of one), `gold.documents` (the keepers, with
the text left after span dedup and `spans_removed_share`) and `silver.spans` (the span index).
With span dedup on, the run's funnel goes to `ops.filter_stats` (per domain: input, kept, first
failures per method, bytes removed).
gold is append-only: a new document that duplicates one in gold never enters it.
A document that curation no longer keeps, or whose text changed, leaves gold and its cluster; the
cluster is dissolved and the rest of it deduplicated again (signatures reused); so is every keeper
whose gold text lacks a span that belonged to a document that left. gold's quality columns follow
silver's. Counts balance: rows in = keepers + duplicates + span rejects. A run with nothing new is a
recorded no-op.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import ContainmentSettings, DedupSettings, PipelineConfig, SpanSettings, to_dict
from ..lake.delta import (
    ID_LIST_LIMIT,
    code_version,
    delete_matching,
    held,
    id_list,
    insert_new,
    latest_version,
    merge_into,
    query_files,
    read_pinned,
    set_properties,
)
from ..lake.faults import fault_pause
from ..lake.lineage import Ref
from ..lake.session import session_cores
from ..lake.tables import DUPLICATES, FILTER_STATS, GOLD, SIGNATURES, SILVER, SPANS
from .base import Stage, StageContext, StageResult, log, run_stage, skip_unless_curated

GOLD_FROM_SILVER = [c.name for c in GOLD.columns if c.name not in ("cluster_id", "batch_id", "deduped_at", "spans_removed_share")]
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
# Containment: partial copies, from an inverted shingle index (used by the job and by
# bench/dedup_accuracy.py)
# ---------------------------------------------------------------------------------------------

SHINGLE_SCHEMA = "doc_id STRING, n_shingles INT, hashes ARRAY<INT>"
CONTAINED_SCHEMA = "a STRING, b STRING, containment DOUBLE"
MAX_ROUNDS = 64


def make_shingler(ngram: int):
    """mapInArrow function: (doc_id, text) -> (doc_id, n_shingles, hashes): the distinct shingle
    hashes of each text (uint32 stored as int32), as `pair_containment` counts them."""

    def shingle_partition(batches):
        import numpy as np
        import pyarrow as pa

        from ..text.minhash import batch_shingle_hashes

        schema = pa.schema([("doc_id", pa.string()), ("n_shingles", pa.int32()), ("hashes", pa.list_(pa.int32()))])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            cols = batch.to_pydict()
            sets = [np.unique(h).view(np.int32) for h in batch_shingle_hashes(cols["text"], ngram)]
            sizes = np.fromiter((len(h) for h in sets), dtype=np.int32, count=len(sets))
            offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int32)
            flat = np.concatenate(sets) if sets else np.zeros(0, dtype=np.int32)
            yield pa.RecordBatch.from_arrays([
                pa.array(cols["doc_id"], pa.string()), pa.array(sizes),
                pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.int32())),
            ], schema=schema)

    return shingle_partition


def containment_candidates(shingled, threshold: float, max_df: int, min_shingles: int):
    """(a, b) pairs where a may be mostly contained in b, a larger document, from an inverted index
    of shingle hashes: (doc_id, hash) exploded, joined on the hash, shared hashes counted per pair.

    `shingled`: doc_id, n_shingles, hashes (distinct), probe (a may be contained: only these are
    looked up) and settled (b never moves: an equal-sized settled document counts as larger). A
    hash held by more than `max_df` documents is left out of the index (its postings would make
    pairs by the square); a pair is kept when the shared hashes plus a's left-out ones reach
    `threshold` of a's, which no pair of true containment fails, so pruning costs no recall among
    the pairs that share an indexed hash. Documents with fewer than `min_shingles` are not probed."""
    from pyspark.sql import functions as F

    probe = shingled.where(F.col("probe") & (F.col("n_shingles") >= min_shingles))
    probe_post = probe.select(F.col("doc_id").alias("a"), F.explode("hashes").alias("h"))
    # only the hashes the probed documents hold are counted
    post = shingled.select(F.col("doc_id").alias("b"), F.explode("hashes").alias("h")).join(
        probe_post.select("h").distinct(), "h")
    df = post.groupBy("h").agg(F.count("*").alias("df"))
    common = df.where(F.col("df") > max_df).select("h")
    left_out = probe_post.join(common, "h").groupBy("a").agg(F.count("*").alias("left_out"))
    indexed = post.join(df.where((F.col("df") >= 2) & (F.col("df") <= max_df)).select("h"), "h")
    shared = (probe_post.join(indexed, "h").where(F.col("a") != F.col("b"))
              .groupBy("a", "b").agg(F.count("*").alias("shared")))
    sa = shingled.select(F.col("doc_id").alias("a"), F.col("n_shingles").alias("n_a"))
    sb = shingled.select(F.col("doc_id").alias("b"), F.col("n_shingles").alias("n_b"), F.col("settled").alias("settled_b"))
    larger = (F.col("n_b") > F.col("n_a")) | ((F.col("n_b") == F.col("n_a")) & (F.col("settled_b") | (F.col("b") < F.col("a"))))
    return (shared.join(sa, "a").join(sb, "b").join(left_out, "a", "left")
            .where(larger & ((F.col("shared") + F.coalesce("left_out", F.lit(0))) >= F.lit(threshold) * F.col("n_a") - F.lit(1e-9)))
            .select("a", "b"))


def _exact_containment(ngram: int):
    def contain(batches):
        import pyarrow as pa

        from ..text.minhash import pair_containment

        schema = pa.schema([("a", pa.string()), ("b", pa.string()), ("containment", pa.float64())])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            cols = batch.to_pydict()
            found = pair_containment(cols["text_a"], cols["text_b"], ngram)
            yield pa.RecordBatch.from_pydict({"a": cols["a"], "b": cols["b"], "containment": [float(v) for v in found]}, schema=schema)

    return contain


def verified_containment(pairs, texts, ngram: int, threshold: float):
    """(a, b, containment) for candidate pairs whose exact containment of a in b, recomputed from
    the two texts' shingle sets (the candidates' counts are bounds: left-out hashes count as
    shared), reaches the threshold."""
    from pyspark.sql import functions as F

    ta = texts.select(F.col("doc_id").alias("a"), F.col("text").alias("text_a"))
    tb = texts.select(F.col("doc_id").alias("b"), F.col("text").alias("text_b"))
    out = pairs.join(ta, "a").join(tb, "b").mapInArrow(_exact_containment(ngram), CONTAINED_SCHEMA)
    return out.where(F.col("containment") >= F.lit(threshold) - F.lit(1e-9))


def _mark(df, column: str) -> tuple:
    """Count and XOR of 64-bit hashes of a column: one job tells whether a set changed."""
    from pyspark.sql import functions as F

    row = df.agg(F.count("*").alias("n"), F.bit_xor(F.xxhash64(column)).alias("h")).first()
    return row["n"], row["h"]


def containers(edges):
    """(a, parent, containment): for each contained document, the container it joins. A container
    must itself stay (not be contained in a document that stays), so that what it holds reaches
    gold: documents are settled from the largest down, in rounds over the verified pairs (each
    round settles at least one more level, as edges point to strictly larger documents). Among
    several containers: the highest containment, then the larger, then doc_id."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    dropped = edges.select("a").distinct().localCheckpoint(eager=True)
    mark = _mark(dropped, "a")
    for _ in range(MAX_ROUNDS):
        live = edges.join(dropped.select(F.col("a").alias("b")), "b", "left_anti")
        nxt = live.select("a").distinct().localCheckpoint(eager=True)
        before, mark = mark, _mark(nxt, "a")
        if mark == before:
            break
        dropped = nxt
    else:
        raise RuntimeError(f"containment did not settle in {MAX_ROUNDS} rounds")
    rank = F.row_number().over(Window.partitionBy("a").orderBy(F.col("containment").desc(), F.col("n_b").desc(), "b"))
    return live.withColumn("_rank", rank).where("_rank = 1").select("a", F.col("b").alias("parent"), "containment")


def _contain(spark, assigned, old, texts, settings: ContainmentSettings, tasks: int):
    """Move every new cluster whose keeper is contained in a keeper (of gold, or new and staying)
    into that keeper's cluster: the contained keeper becomes a duplicate with method containment.
    Returns (assigned, how many keepers were contained)."""
    from pyspark.sql import functions as F

    fresh = assigned.where("is_keeper").select("doc_id", F.lit(True).alias("probe"), F.lit(False).alias("settled"))
    gold = old.where("is_keeper").select("doc_id", F.lit(False).alias("probe"), F.lit(True).alias("settled"))
    units = fresh.unionByName(gold)
    shingled = (units.join(texts, "doc_id").select("doc_id", "text").repartition(tasks, "doc_id")
                .mapInArrow(make_shingler(settings.ngram), SHINGLE_SCHEMA).join(units, "doc_id")
                .localCheckpoint(eager=True))
    cands = containment_candidates(shingled, settings.threshold, settings.max_df, settings.min_shingles)
    edges = (verified_containment(cands, texts, settings.ngram, settings.threshold)
             .join(shingled.select(F.col("doc_id").alias("b"), F.col("n_shingles").alias("n_b")), "b")
             .localCheckpoint(eager=True))
    if edges.limit(1).count() == 0:
        return assigned, 0
    parents = containers(edges).localCheckpoint(eager=True)
    n = parents.count()
    moved = (assigned.join(parents.select(F.col("a").alias("cluster_id"), "parent"), "cluster_id", "left")
             .join(parents.select(F.col("a").alias("doc_id"), F.col("parent").alias("container"), "containment"), "doc_id", "left"))
    contained = F.col("container").isNotNull()
    return moved.select(
        "doc_id", F.coalesce("parent", "cluster_id").alias("cluster_id"),
        F.when(contained, F.lit(False)).otherwise(F.col("is_keeper")).alias("is_keeper"),
        F.when(contained, F.lit("containment")).otherwise(F.col("method")).alias("method"),
        F.when(contained, F.col("container")).otherwise(F.col("matched_with")).alias("matched_with"),
        F.when(contained, F.col("containment")).otherwise(F.col("match_score")).alias("match_score"),
    ), n


# ---------------------------------------------------------------------------------------------
# Span dedup: repeated paragraphs and lines
# ---------------------------------------------------------------------------------------------

SPAN_ROWS = "doc_id STRING, span_kind STRING, span_hash BIGINT"
TRIM_SCHEMA = "doc_id STRING, new_text STRING, spans_removed_share DOUBLE, too_short BOOLEAN"


def span_options(settings: SpanSettings):
    from ..text.spans import SpanOptions

    return SpanOptions(paragraphs=settings.paragraphs, lines=settings.lines, min_chars=settings.min_chars,
                       code_headers=not settings.keep_code_licence_headers)


def make_span_finder(settings: SpanSettings):
    """mapInArrow function: (doc_id, kind, text) -> the distinct spans of each document."""
    options = span_options(settings)

    def find_partition(batches):
        import pyarrow as pa

        from ..text.spans import span_keys

        schema = pa.schema([("doc_id", pa.string()), ("span_kind", pa.string()), ("span_hash", pa.int64())])
        for batch in batches:
            ids, kinds, hashes = [], [], []
            cols = batch.to_pydict()
            for doc_id, kind, text in zip(cols["doc_id"], cols["kind"], cols["text"], strict=True):
                for k, h in span_keys(text, kind, options):
                    ids.append(doc_id)
                    kinds.append(k)
                    hashes.append(h)
            if ids:
                yield pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), pa.array(kinds, pa.string()),
                                                  pa.array(hashes, pa.int64())], schema=schema)

    return find_partition


def make_trimmer(settings: SpanSettings):
    """mapInArrow function: (doc_id, kind, text, removed) -> the text without the removed spans,
    the share of characters cut, and whether too little is left: a text document with fewer than
    `min_words` words, code with nothing but blank lines."""
    options, min_words = span_options(settings), settings.min_words

    def trim_partition(batches):
        import pyarrow as pa

        from ..text.spans import n_words, remove_spans

        schema = pa.schema([("doc_id", pa.string()), ("new_text", pa.string()), ("spans_removed_share", pa.float64()),
                            ("too_short", pa.bool_())])
        for batch in batches:
            if batch.num_rows == 0:
                continue
            cols = batch.to_pydict()
            texts, shares, short = [], [], []
            for kind, text, removed in zip(cols["kind"], cols["text"], cols["removed"], strict=True):
                new = remove_spans(text, kind, {(r["span_kind"], r["span_hash"]) for r in removed or []}, options)
                texts.append(new)
                shares.append(1 - len(new) / len(text) if text else 0.0)
                cut = len(new) < len(text)
                short.append(cut and (not new.strip() if kind == "code" else n_words(new) < min_words))
            yield pa.RecordBatch.from_arrays([pa.array(cols["doc_id"], pa.string()), pa.array(texts, pa.string()),
                                              pa.array(shares, pa.float64()), pa.array(short, pa.bool_())], schema=schema)

    return trim_partition


def span_owners(holders, owners, barred, order):
    """(doc_id, span_kind, span_hash, owner_id) for every span of `holders` (doc_id, span_kind,
    span_hash and the keeper-policy columns): the owner is the document the span index names
    (`owners`: span_kind, span_hash, owner_id; documents already in gold come first), else the first
    holder in keeper order that is not `barred` (doc_id: rejected for too little text); null when
    only barred documents hold it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = ["span_kind", "span_hash"]
    free = holders.join(owners, key, "left_anti").join(barred, "doc_id", "left_anti")
    first = (free.withColumn("_rank", F.row_number().over(Window.partitionBy(*key).orderBy(*order)))
             .where("_rank = 1").select(*key, F.col("doc_id").alias("first_id")))
    return (holders.join(owners, key, "left").join(first, key, "left")
            .select("doc_id", *key, F.coalesce("owner_id", "first_id").alias("owner_id")))


def _spans(spark, keepers, index, settings: SpanSettings, order, tasks: int):
    """Cut repeated spans out of the new keepers' texts. `keepers`: doc_id, kind, text and the
    keeper-policy columns; `index`: silver.spans (doc_id, span_kind, span_hash, owner_id).

    A span already in the index keeps its owner; a new one goes to its first holder in keeper
    order. A keeper left too short is rejected and owns nothing, so its spans pass to the next
    holder: rounds until the rejected set stops changing (each round settles at least the next
    document in keeper order; one round when nobody is rejected). Returns (trimmed: doc_id,
    new_text (null: unchanged), spans_removed_share, too_short; index rows: doc_id, span_kind,
    span_hash, owner_id; rounds)."""
    from pyspark.sql import functions as F

    policy = [c for c in keepers.columns if c not in ("kind", "text")]
    docs = keepers.select("doc_id", "kind", "text")
    spans = (docs.repartition(tasks, "doc_id").mapInArrow(make_span_finder(settings), SPAN_ROWS)
             .join(keepers.select(*policy), "doc_id").localCheckpoint(eager=True))
    owners = index.where("owner_id = doc_id").groupBy("span_kind", "span_hash").agg(F.min("owner_id").alias("owner_id"))
    barred = spark.createDataFrame([], "doc_id STRING")
    mark, rounds = (0, None), 0
    while True:
        if rounds == MAX_ROUNDS:
            raise RuntimeError(f"span dedup did not settle in {MAX_ROUNDS} rounds")
        rounds += 1
        owned = span_owners(spans, owners, barred, order).localCheckpoint(eager=True)
        removed = (owned.where(F.col("owner_id").isNotNull() & (F.col("owner_id") != F.col("doc_id")))
                   .groupBy("doc_id").agg(F.collect_list(F.struct("span_kind", "span_hash")).alias("removed")))
        trimmed = (docs.join(removed, "doc_id").repartition(tasks, "doc_id")
                   .mapInArrow(make_trimmer(settings), TRIM_SCHEMA).localCheckpoint(eager=True))
        short = trimmed.where("too_short").select("doc_id")
        before, mark = mark, _mark(short, "doc_id")
        if mark == before:
            break
        barred = short.localCheckpoint(eager=True)
    untouched = docs.join(trimmed, "doc_id", "left_anti").select(
        "doc_id", F.lit(None).cast("string").alias("new_text"), F.lit(0.0).alias("spans_removed_share"), F.lit(False).alias("too_short"))
    trimmed = trimmed.unionByName(untouched)
    # the index keeps every span of an admitted keeper, and the spans a rejected one lost to others
    rows = (owned.join(barred.select("doc_id", F.lit(True).alias("rejected")), "doc_id", "left")
            .where(F.col("rejected").isNull() | (F.col("owner_id").isNotNull() & (F.col("owner_id") != F.col("doc_id"))))
            .select("doc_id", "span_kind", "span_hash", "owner_id"))
    return trimmed, rows, rounds


def dedup_stats(rows):
    """ops.filter_stats rows of dedup runs, per run and domain, from `rows`: run_id, domain,
    is_keeper, method, in_bytes (the silver text) and out_bytes (the gold text, keepers). input: every
    document placed; kept: the keepers, with the bytes that reach gold; first_failure: per method
    (exact, near, containment, spans); removed: keepers that lost repeated spans, and the bytes cut.
    Input bytes = kept + removed + first_failure bytes."""
    from pyspark.sql import functions as F

    def entry(rule, counted_as: str, bytes_):
        return F.struct(rule.cast("string").alias("rule"), F.lit(counted_as).alias("counted_as"),
                        bytes_.cast("bigint").alias("bytes"))

    star, in_bytes, out_bytes = F.lit("*"), F.col("in_bytes"), F.col("out_bytes")
    # one aggregate over every row's entries (one shuffle, where four aggregates took four)
    kept = F.concat(F.array(entry(star, "input", in_bytes), entry(star, "kept", out_bytes)),
                    F.when(out_bytes < in_bytes, F.array(entry(F.lit("spans"), "removed", in_bytes - out_bytes)))
                    .otherwise(F.array().cast("array<struct<rule:string,counted_as:string,bytes:bigint>>")))
    entries = F.when(F.col("is_keeper"), kept).otherwise(
        F.array(entry(star, "input", in_bytes), entry(F.col("method"), "first_failure", in_bytes)))
    return (rows.select("run_id", "domain", F.explode(entries).alias("e"))
            .groupBy("run_id", "domain", F.col("e.rule").alias("rule"), F.col("e.counted_as").alias("counted_as"))
            .agg(F.count("*").alias("documents"), F.coalesce(F.sum("e.bytes"), F.lit(0)).cast("bigint").alias("bytes")))


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


def _withdraw(spark, current, say) -> tuple[int, int]:
    """Take documents that curation no longer keeps, or whose text changed, out of dedup's tables.
    A cluster that loses a document is dissolved (a lost link may split it, a lost keeper leaves it
    without one): its other documents are released to be deduplicated again. So is a keeper that
    lost a span to a document that left (see `_span_releases`). Returns how many left and how many
    were released for their spans.

    `current`: (doc_id, content_sha256) of the documents curation keeps now."""
    dups = read_pinned(spark, DUPLICATES.name, "doc_id, content_sha256, cluster_id, is_keeper, method")[0]
    gone = dups.join(current, ["doc_id", "content_sha256"], "left_anti").localCheckpoint(eager=True)
    n_gone = gone.count()
    index = read_pinned(spark, SPANS.name, "doc_id, owner_id")[0]
    gold = read_pinned(spark, GOLD.name, "doc_id")[0]
    if not n_gone and not _needs_repair(dups, index, gold).limit(1).count():
        # the usual increment: nothing left, and the span index and gold agree with the placed
        # documents (one query for the checks below, which each cost a few)
        return 0, 0
    drop = plan_withdrawal(dups, gone).localCheckpoint(eager=True) if n_gone else spark.createDataFrame([], "doc_id STRING")
    n_span, stale = 0, None
    if index.limit(1).count():
        drop, n_span, stale = _span_releases(dups, index, drop)
    # silver.duplicates first: a run killed after it leaves unplaced documents whose index and gold
    # rows the next run finds to repair; the other way round, a keeper whose copy row was deleted
    # would never be released for its span
    n_drop = drop.count()
    if n_drop:
        delete_matching(drop, DUPLICATES.name, "doc_id", fixed=True)
    if stale is not None and stale.count():
        delete_matching(stale, SPANS.name, "doc_id", fixed=True)
    if n_gone:
        sigs = read_pinned(spark, SIGNATURES.name, "doc_id, content_sha256")[0]
        stale = sigs.join(current, ["doc_id", "content_sha256"], "left_anti").select("doc_id").localCheckpoint(eager=True)
        if stale.count():
            delete_matching(stale, SIGNATURES.name, "doc_id", fixed=True)
    _say_withdrawn(say, n_gone, n_drop, n_span)
    # gold holds only placed keepers: after a dissolved cluster, and after a run killed between its
    # gold and duplicates commits (gold is written first). Checked on every run, as the run's new
    # keepers are then inserted into gold without an update clause: none of them is placed, so none
    # may be in gold.
    keepers = read_pinned(spark, DUPLICATES.name, "doc_id", "is_keeper")[0]
    gold = read_pinned(spark, GOLD.name, "doc_id")[0]
    stray = gold.join(keepers, "doc_id", "left_anti").localCheckpoint(eager=True)
    if stray.count():
        delete_matching(stray, GOLD.name, "doc_id", fixed=True)
    return n_gone, n_span


def _say_withdrawn(say, n_gone: int, n_drop: int, n_span: int) -> None:
    if n_gone:
        say(f"dedup: {n_gone} documents left curation or changed; {n_drop - n_gone} cluster members released")
    if n_span:
        say(f"dedup: {n_span} keepers released (with their clusters) to be placed again: a span cut from their "
            "gold text belonged to a document that left gold")


@dataclass(frozen=True)
class Withdrawal:
    """What `_withdraw` takes out of dedup's tables, as doc_ids (`withdrawal_from_files`)."""

    gone: list[str]  # placed documents that curation no longer keeps, or whose text changed
    drop: list[str]  # rows leaving silver.duplicates: the gone, their clusters, span releases
    span_released: int  # keepers released because a span cut from them lost its owner
    stale_spans: list[str]  # documents whose span index rows go
    stale_signatures: list[str]  # signatures of texts curation no longer keeps (only with documents gone)
    stray_gold: list[str]  # gold rows of documents not placed as keepers once `drop` is out


def _not_in(column: str, ids: set[str]) -> str | None:
    """`column NOT IN (ids)` for a query over the files ("TRUE" for none); None when the ids are not
    brickyard's own (`id_list`)."""
    if not ids:
        return "TRUE"
    listed = id_list(ids)
    return None if listed is None else f"{column} NOT IN ({listed})"


def withdrawal_from_files(spark, silver_version: int, tables: dict[str, str] | None = None) -> Withdrawal | None:
    """`_withdraw`'s plan read from the tables' files, the same sets its Spark queries find (a test
    holds them equal): a handful of queries of tens of milliseconds instead of a dozen Spark jobs.
    None when the files cannot be read here or a set is larger than `ID_LIST_LIMIT` (then Spark
    plans it). `tables`: other tables of the same shapes (silver, duplicates, spans, gold, signatures)."""
    names = tables or {"s": SILVER.name, "d": DUPLICATES.name, "i": SPANS.name, "gd": GOLD.name, "g": SIGNATURES.name}
    # every query reads the same versions: a commit landing meanwhile (another driver) is not mixed in
    versions = {a: (t, silver_version if a == "s" else latest_version(spark, t)) for a, t in names.items()}
    cur = "WITH cur AS (SELECT doc_id, content_sha256 FROM s WHERE keep) "

    def ask(query: str, *aliases: str) -> list[dict] | None:
        rows = query_files(spark, query, {a: versions[a] for a in aliases})
        return None if rows is None or len(rows) > ID_LIST_LIMIT else rows

    def members(clusters: set[str]) -> set[str] | None:
        if not clusters:
            return set()
        listed = id_list(clusters)
        rows = None if listed is None else ask(f"SELECT doc_id FROM d WHERE cluster_id IN ({listed})", "d")
        return None if rows is None else {r["doc_id"] for r in rows}

    gone_rows = ask(cur + "SELECT d.doc_id, d.cluster_id FROM d LEFT ANTI JOIN cur "
                    "ON d.doc_id = cur.doc_id AND d.content_sha256 = cur.content_sha256", "s", "d")
    if gone_rows is None:
        return None
    gone = {r["doc_id"] for r in gone_rows}
    released = members({r["cluster_id"] for r in gone_rows})
    if released is None:
        return None
    drop, n_span = gone | released, 0
    if len(drop) > ID_LIST_LIMIT:
        return None
    while True:  # `_span_releases`: copies whose owner is no longer a keeper release their holders
        outside = _not_in("doc_id", drop)
        lost = outside and ask(
            "SELECT DISTINCT i.doc_id, d.cluster_id FROM i JOIN d ON i.doc_id = d.doc_id "
            f"LEFT ANTI JOIN (SELECT doc_id FROM d WHERE is_keeper AND {outside}) k ON i.owner_id = k.doc_id "
            f"WHERE i.owner_id <> i.doc_id AND {_not_in('i.doc_id', drop)}", "i", "d")
        if lost is None:
            return None
        if not lost:
            break
        n_span += len({r["doc_id"] for r in lost})
        more = members({r["cluster_id"] for r in lost})
        if more is None:
            return None
        drop |= {r["doc_id"] for r in lost} | more
        if len(drop) > ID_LIST_LIMIT:
            return None
    outside = _not_in("doc_id", drop)
    stale_spans = outside and ask("SELECT DISTINCT i.doc_id FROM i LEFT ANTI JOIN "
                                  f"(SELECT doc_id FROM d WHERE (is_keeper OR method = 'spans') AND {outside}) h "
                                  "ON i.doc_id = h.doc_id", "i", "d")
    stray = outside and ask(f"SELECT gd.doc_id FROM gd LEFT ANTI JOIN (SELECT doc_id FROM d WHERE is_keeper AND {outside}) k "
                            "ON gd.doc_id = k.doc_id", "gd", "d")
    sigs = ask(cur + "SELECT g.doc_id FROM g LEFT ANTI JOIN cur ON g.doc_id = cur.doc_id AND "
               "g.content_sha256 = cur.content_sha256", "s", "g") if gone else []
    if stale_spans is None or stray is None or sigs is None:
        return None
    return Withdrawal(sorted(gone), sorted(drop), n_span, sorted({r["doc_id"] for r in stale_spans}),
                      sorted(r["doc_id"] for r in sigs), sorted(r["doc_id"] for r in stray))


def _apply_withdrawal(spark, plan: Withdrawal, say) -> tuple[int, int]:
    """`_withdraw`'s deletes for a plan read from the files, in its order (the placements, the span
    index, the signatures, then gold's strays). Returns (documents gone, keepers released for spans)."""
    for ids, table in ((plan.drop, DUPLICATES.name), (plan.stale_spans, SPANS.name),
                       (plan.stale_signatures, SIGNATURES.name), (plan.stray_gold, GOLD.name)):
        if ids:
            delete_matching(spark.createDataFrame([(i,) for i in ids], "doc_id STRING"), table, "doc_id", fixed=True)
    _say_withdrawn(say, len(plan.gone), len(plan.drop), plan.span_released)
    return len(plan.gone), plan.span_released


SETTLED_QUERY = """
WITH cur AS (SELECT doc_id, content_sha256 FROM s WHERE keep),
keepers AS (SELECT doc_id FROM d WHERE is_keeper),
gone AS (SELECT d.doc_id FROM d LEFT ANTI JOIN cur ON d.doc_id = cur.doc_id AND d.content_sha256 = cur.content_sha256),
lost AS (SELECT i.doc_id FROM i LEFT ANTI JOIN keepers ON i.owner_id = keepers.doc_id
         WHERE i.owner_id <> i.doc_id AND i.doc_id IN (SELECT doc_id FROM d)),
stale AS (SELECT i.doc_id FROM i LEFT ANTI JOIN (SELECT doc_id FROM d WHERE is_keeper OR method = 'spans') h
          ON i.doc_id = h.doc_id),
stray AS (SELECT g.doc_id FROM g LEFT ANTI JOIN keepers ON g.doc_id = keepers.doc_id),
todo AS (SELECT cur.doc_id FROM cur LEFT ANTI JOIN d ON cur.doc_id = d.doc_id AND cur.content_sha256 = d.content_sha256)
SELECT (SELECT count(*) FROM gone) AS gone,
       (SELECT count(*) FROM (SELECT doc_id FROM lost UNION ALL SELECT doc_id FROM stale
                              UNION ALL SELECT doc_id FROM stray)) AS repair,
       (SELECT count(*) FROM todo) AS todo
"""
# a signature is reused when its document's text and its domain's scheme are the same (one row per doc_id)
SCHEMES_QUERY = """
SELECT k.domain, g.scheme, count(*) AS n
FROM (SELECT doc_id, content_sha256, domain FROM s WHERE keep) k
LEFT JOIN g ON k.doc_id = g.doc_id AND k.content_sha256 = g.content_sha256
GROUP BY k.domain, g.scheme
"""


# A plan of at most `ID_LIST_LIMIT` documents is named by doc_id in the run's queries: Spark then
# reads only their rows of silver and of the signatures where the plan is joined in, instead of
# joining (and shuffling) every kept document with a small frame
TODO_IDS = "SELECT cur.doc_id FROM cur LEFT ANTI JOIN d ON cur.doc_id = d.doc_id AND cur.content_sha256 = d.content_sha256"
UNSIGNED_IDS = "SELECT cur.doc_id FROM cur LEFT ANTI JOIN g ON cur.doc_id = g.doc_id AND cur.content_sha256 = g.content_sha256"


@dataclass(frozen=True)
class Settled:
    """What dedup's tables say before a run when nothing is to be withdrawn or repaired, read from
    their files (`settled`): the kept documents' domains, how many of them have a signature of each
    scheme (None: none), and how many are not placed yet (the plan's size). For a plan of at most
    `ID_LIST_LIMIT` documents, their doc_ids (`todo_ids`), and those of the kept documents with no
    signature of their text (`unsigned_ids`); else None."""

    schemes: dict[str, dict[str | None, int]]
    todo: int
    todo_ids: list[str] | None = None
    unsigned_ids: list[str] | None = None

    @property
    def domains(self) -> list[str]:
        return sorted(self.schemes)

    def unsigned(self, plans: dict[str, DomainPlan]) -> int:
        """Kept documents without a signature of their text under their domain's scheme."""
        return sum(n for d, by in self.schemes.items() for scheme, n in by.items() if scheme != plans[d].scheme)

    def to_sign(self, plans: dict[str, DomainPlan]) -> list[str] | None:
        """The doc_ids `_sign` is to sign, when they are known: no document's signature is of another
        scheme than its domain's (a changed scheme signs whole domains again), and they are few."""
        rescheme = sum(n for d, by in self.schemes.items() for scheme, n in by.items()
                       if scheme is not None and scheme != plans[d].scheme)
        return None if rescheme else self.unsigned_ids


def settled(spark, silver_version: int) -> Settled | None:
    """The state before a run, from the tables' files, when no placed document left curation or
    changed and `_needs_repair` would find nothing; None when something is to be withdrawn or
    repaired, or when the files cannot be read here: then the run asks Spark (`_withdraw`,
    `_sign`, `plan_dedup`). The usual increment's and no-op's answers, in tens of milliseconds
    instead of several Spark jobs."""
    silver = (SILVER.name, silver_version)
    rows = query_files(spark, SETTLED_QUERY, {"s": silver, "d": (DUPLICATES.name, None), "i": (SPANS.name, None),
                                              "g": (GOLD.name, None)})
    if not rows or rows[0]["gone"] or rows[0]["repair"]:
        return None
    tables = {"s": silver, "g": (SIGNATURES.name, None), "d": (DUPLICATES.name, None)}
    counts = query_files(spark, SCHEMES_QUERY, tables)
    if counts is None:
        return None
    schemes: dict[str, dict[str | None, int]] = {}
    for r in counts:
        schemes.setdefault(r["domain"], {})[r["scheme"]] = r["n"]
    todo = rows[0]["todo"]
    unsigned = sum(by.get(None, 0) for by in schemes.values())

    def ids(query: str, n: int) -> list[str] | None:
        if n > ID_LIST_LIMIT:
            return None
        found = query_files(spark, f"WITH cur AS (SELECT doc_id, content_sha256 FROM s WHERE keep) {query}", tables)
        return None if found is None else sorted(r["doc_id"] for r in found)

    return Settled(schemes, todo, ids(TODO_IDS, todo), ids(UNSIGNED_IDS, unsigned))


def _needs_repair(dups, index, gold):
    """doc_ids that show dedup's tables disagree with silver.duplicates (`dups`) when nothing left
    curation: a copied span whose owner is no longer a keeper (forgotten) and a span index row or
    gold row of a document not placed as a keeper (or, for the index, a spans reject): left by
    `forget`, or by a run killed between its commits. Empty when `_span_releases` and the stray
    check would find nothing."""
    from pyspark.sql import functions as F

    keepers = dups.where("is_keeper").select("doc_id")
    holders = dups.where("is_keeper OR method = 'spans'").select("doc_id")
    lost = (index.where(F.col("owner_id") != F.col("doc_id"))
            .join(keepers.select(F.col("doc_id").alias("owner_id")), "owner_id", "left_anti")
            .join(dups.select("doc_id"), "doc_id").select("doc_id"))
    stale = index.select("doc_id").join(holders, "doc_id", "left_anti")
    stray = gold.join(keepers, "doc_id", "left_anti")
    return lost.unionByName(stale).unionByName(stray)


def _span_releases(dups, index, drop):
    """Keepers whose gold text lacks a span owned by a document that is no longer a keeper (it left,
    was released, or was forgotten) are released too, with their clusters, so the span finds a new
    owner when they are placed again; repeated, since a released keeper may own spans others lack.
    Rows of the span index whose document is not placed as a keeper (or spans reject) any more are
    to be deleted (they are written again when it is placed). Returns (drop, keepers released for
    spans, the doc_ids whose index rows go)."""
    from pyspark.sql import functions as F

    keepers = dups.where("is_keeper").select("doc_id")
    holders = dups.where("is_keeper OR method = 'spans'").select("doc_id")
    copies = index.where(F.col("owner_id") != F.col("doc_id")).select("doc_id", "owner_id").distinct().localCheckpoint(eager=True)
    n_span = 0
    while True:
        staying = keepers.join(drop, "doc_id", "left_anti").select(F.col("doc_id").alias("owner_id"))
        lost = (copies.join(staying, "owner_id", "left_anti").select("doc_id").distinct()
                .join(drop, "doc_id", "left_anti").join(dups.select("doc_id", "cluster_id"), "doc_id")
                .localCheckpoint(eager=True))
        n = lost.count()
        if not n:
            break
        n_span += n
        drop = drop.unionByName(plan_withdrawal(dups, lost)).distinct().localCheckpoint(eager=True)
    stale = index.select("doc_id").distinct().join(holders.join(drop, "doc_id", "left_anti"), "doc_id", "left_anti")
    return drop, n_span, stale.localCheckpoint(eager=True)


def _sign(spark, kept, plans: dict[str, DomainPlan], settings: DedupSettings, run, tasks: int, listed: bool = False) -> int:
    """Sign every kept document that lacks a signature of its domain's current scheme. `listed`:
    `kept` holds only such documents (named from the files by `Settled.to_sign`), so the signatures
    table is not read to find them."""
    from pyspark.sql import functions as F

    want = kept.join(F.broadcast(plans_frame(spark, plans).select("domain", "scheme")), "domain")
    if not listed:
        have = read_pinned(spark, SIGNATURES.name, "doc_id, content_sha256, scheme")[0]
        want = want.join(have, ["doc_id", "content_sha256", "scheme"], "left_anti")
    todo = want.select("doc_id", "domain", "content_sha256", "text")
    signer = make_signer({d: (p.ngram, p.num_perm) for d, p in plans.items()},
                         (settings.ngram, settings.num_perm), settings.seed)
    signed = (
        todo.repartition(tasks, "doc_id").mapInArrow(signer, SIGN_SCHEMA)
        .select("*", F.lit(run.run_id).alias("batch_id"), F.current_timestamp().alias("signed_at"))
        .localCheckpoint(eager=True)
    )
    n = signed.count()
    if n:
        merge_into(signed, SIGNATURES.name, "doc_id", fixed=True)
    return n


def _assign(spark, todo, old, signed, texts, settings: DedupSettings, single: bool = False, signed_todo=None):
    """(doc_id, cluster_id, is_keeper, method, matched_with, match_score) for every document of
    `todo`: exact and near duplicates (see `DUPLICATES` for what the columns mean).

    `todo`: new documents with the keeper-policy columns; `old`: (doc_id, cluster_id) of every
    document already clustered; `signed`: signatures with their domain's LSH settings, for all;
    `texts`: (doc_id, text) for all, for exact verification; `single`: `todo` holds one document;
    `signed_todo`: the rows of `signed` for `todo`'s documents, where the caller can read them alone."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    from ..text.components import components

    order = keeper_order(settings.keeper)
    old_keepers = old.where("is_keeper").groupBy("content_sha256").agg(F.min("cluster_id").alias("cluster_id"))
    # exact, against gold: the document joins the cluster of the gold document with its text
    exact_old = todo.join(old_keepers, "content_sha256").select(
        "doc_id", "cluster_id", F.lit(False).alias("is_keeper"), F.lit("exact").alias("method"),
        F.col("cluster_id").alias("matched_with"), F.lit(1.0).alias("match_score"))
    rest = todo.join(old_keepers, "content_sha256", "left_anti")
    # exact, among the new: one representative per text
    ranked = rest.withColumn("_rank", F.row_number().over(Window.partitionBy("content_sha256").orderBy(*order)))
    reps = ranked.where("_rank = 1").drop("_rank")
    exact_new = ranked.where("_rank > 1").select("doc_id", "content_sha256").join(
        reps.select("content_sha256", F.col("doc_id").alias("rep")), "content_sha256")
    # near: representatives against each other and against every clustered document
    rep_signed = (signed if signed_todo is None else signed_todo).join(reps.select("doc_id"), "doc_id")
    old_signed = signed.join(old.select("doc_id"), "doc_id")
    rep_buckets = band_buckets(rep_signed).localCheckpoint(eager=True)
    old_buckets = band_buckets(old_signed)
    # verified once (exact verification reads both texts), used for the graph and for matched_with
    if single:  # one new document has no pair among the new: no job for an empty frame
        new_new = rep_buckets.sparkSession.createDataFrame([], "a STRING, b STRING, similarity DOUBLE")
    else:
        new_new = verified(candidate_pairs(rep_buckets), signed, texts, settings.verify).select("a", "b", "similarity").localCheckpoint(eager=True)
    new_old = (verified(candidate_pairs(rep_buckets, old_buckets), signed, texts, settings.verify)
               .select("a", "b", "similarity").localCheckpoint(eager=True))
    edges = new_new.select(F.concat(F.lit(NEW), "a").alias("u"), F.concat(F.lit(NEW), "b").alias("v")).unionByName(
        new_old.join(old.select(F.col("doc_id").alias("b"), "cluster_id"), "b")
        .select(F.concat(F.lit(NEW), "a").alias("u"), F.concat(F.lit(OLD), "cluster_id").alias("v"))
    )  # `components` checkpoints its first step
    comp = components(edges).where(F.col("node").startswith(NEW)).select(
        F.expr(f"substring(node, {len(NEW) + 1})").alias("doc_id"), "component")
    reps = reps.join(comp, "doc_id", "left").withColumn("component", F.coalesce("component", F.concat(F.lit(NEW), "doc_id")))
    joined_old = reps.where(F.col("component").startswith(OLD)).select(
        "doc_id", F.expr(f"substring(component, {len(OLD) + 1})").alias("cluster_id"), F.lit(False).alias("is_keeper"))
    fresh = reps.where(F.col("component").startswith(NEW))
    fresh = fresh.withColumn("_rank", F.row_number().over(Window.partitionBy("component").orderBy(*order)))
    heads = fresh.where("_rank = 1").select("component", F.col("doc_id").alias("cluster_id"))
    fresh = fresh.join(heads, "component").select("doc_id", "cluster_id", (F.col("_rank") == 1).alias("is_keeper"))
    rep_cluster = joined_old.unionByName(fresh).localCheckpoint(eager=True)
    # matched_with of a near duplicate: its best verified pair, inside its own cluster where it has one
    partners = (
        new_new.select(F.col("a").alias("doc_id"), F.col("b").alias("partner"), "similarity")
        .unionByName(new_new.select(F.col("b").alias("doc_id"), F.col("a").alias("partner"), "similarity"))
        .join(rep_cluster.select(F.col("doc_id").alias("partner"), F.col("cluster_id").alias("p_cluster")), "partner")
        .unionByName(new_old.select(F.col("a").alias("doc_id"), F.col("b").alias("partner"), "similarity")
                     .join(old.select(F.col("doc_id").alias("partner"), F.col("cluster_id").alias("p_cluster")), "partner"))
    )
    best = (partners.join(rep_cluster.where("NOT is_keeper").select("doc_id", "cluster_id"), "doc_id")
            .withColumn("_rank", F.row_number().over(Window.partitionBy("doc_id").orderBy(
                (F.col("p_cluster") == F.col("cluster_id")).desc(), F.col("similarity").desc(), "partner")))
            .where("_rank = 1").select("doc_id", F.col("partner").alias("matched_with"), F.col("similarity").alias("match_score")))
    near = rep_cluster.join(best, "doc_id", "left").select(
        "doc_id", "cluster_id", "is_keeper", F.when(~F.col("is_keeper"), F.lit("near")).alias("method"),
        "matched_with", F.col("match_score").cast("double").alias("match_score"))
    followers = exact_new.join(rep_cluster.select(F.col("doc_id").alias("rep"), "cluster_id"), "rep").select(
        "doc_id", "cluster_id", F.lit(False).alias("is_keeper"), F.lit("exact").alias("method"),
        F.col("rep").alias("matched_with"), F.lit(1.0).alias("match_score"))
    return exact_old.unionByName(near).unionByName(followers)


class Dedup(Stage):
    """silver.documents (kept) -> gold.documents, silver.duplicates, silver.signatures, silver.spans
    (and, with span dedup on, its funnel in ops.filter_stats). Its plan: kept documents not placed in
    a cluster yet (or whose text changed), and placed ones that left."""

    name = "dedup"
    reads = (SILVER.name,)
    writes = (SIGNATURES, DUPLICATES, GOLD, SPANS, FILTER_STATS)

    def skip(self, ctx: StageContext) -> str | None:
        return skip_unless_curated(ctx)

    def settings(self, ctx: StageContext) -> dict:
        return to_dict(ctx.cfg.dedup)

    def apply(self, ctx: StageContext, run) -> dict:
        return _dedup(ctx.spark, ctx.cfg, run)


def dedup(spark, cfg: PipelineConfig) -> StageResult:
    """Run the dedup stage (rows_out: keepers, rows_rejected: duplicates and span rejects)."""
    return run_stage(Dedup(), StageContext.of(spark, cfg))


def _recover_stats(spark) -> list[str]:
    """A dedup with span dedup on, killed between its silver.duplicates commit and its statistics,
    left placed documents without ops.filter_stats rows: write them now, under that run's id."""
    from pyspark.sql import functions as F

    dups, dups_version = read_pinned(spark, DUPLICATES.name, "*")
    # asked on every run, so from the files where they are on this disk (no Spark job)
    missing = query_files(spark, "SELECT DISTINCT d.batch_id FROM d LEFT ANTI JOIN f ON d.batch_id = f.run_id "
                          "WHERE d.spans_removed_share IS NOT NULL",
                          {"d": (DUPLICATES.name, dups_version), "f": (FILTER_STATS.name, None)})
    if missing is None:
        counted = read_pinned(spark, FILTER_STATS.name, "run_id")[0].select(F.col("run_id").alias("batch_id")).distinct()
        missing = (dups.where("spans_removed_share IS NOT NULL").select("batch_id").distinct()
                   .join(counted, "batch_id", "left_anti").collect())
    missing = [r["batch_id"] for r in missing]
    if missing:
        rows = dups.where(F.col("batch_id").isin(missing))
        silver = read_pinned(spark, SILVER.name, "doc_id, n_bytes")[0]
        gold = read_pinned(spark, GOLD.name, "doc_id, n_bytes")[0].select("doc_id", F.col("n_bytes").alias("out_bytes"))
        stats = dedup_stats(rows.join(silver, "doc_id").join(gold, "doc_id", "left").select(
            F.col("batch_id").alias("run_id"), "domain", "is_keeper", "method", F.col("n_bytes").alias("in_bytes"), "out_bytes"))
        stats.write.format("delta").mode("append").saveAsTable(FILTER_STATS.name)
    return sorted(missing)


def _dedup(spark, cfg: PipelineConfig, run) -> dict:
    from pyspark.sql import functions as F

    say = log.info
    settings = cfg.dedup
    spans_on, contain_on = settings.spans.enabled, settings.containment.enabled
    silver_version = latest_version(spark, SILVER.name)
    run.inputs.append(Ref(SILVER.name, "table", silver_version))
    kept = spark.sql(f"SELECT * FROM {SILVER.name} VERSION AS OF {silver_version} WHERE keep")
    with run.phase("withdraw"):
        state = settled(spark, silver_version)
        withdrawn = span_released = 0
        if state is None:
            plan = withdrawal_from_files(spark, silver_version)
            if plan is not None:
                withdrawn, span_released = _apply_withdrawal(spark, plan, say)
            else:
                current = kept.select("doc_id", "content_sha256").localCheckpoint(eager=True)
                withdrawn, span_released = _withdraw(spark, current, say)
            # withdrawn, the tables agree again: read the state after it from the files, so that the
            # rest of the run reads only the documents to place, as an increment's does
            state = settled(spark, silver_version)
            domains = state.domains if state is not None else [r["domain"] for r in kept.select("domain").distinct().collect()]
        else:
            domains = state.domains
    recovered = _recover_stats(spark) if spans_on else []
    if recovered:
        run.metrics["filter_stats_recovered"] = ",".join(recovered)
        say(f"dedup: filter statistics recorded for {len(recovered)} earlier run(s) killed after placing documents")
    plans = domain_plans(settings, set(domains) | set(cfg.domains))
    tasks = 4 * session_cores(spark)
    if state is None or state.todo:
        # planning, clustering, span rounds and the placed rows read the kept rows again and again:
        # when silver is small, once (`held`; a run that only signs a few reads just those)
        kept = held(spark, kept, SILVER.name, silver_version)
    with run.phase("sign"):
        if state is not None and not state.unsigned(plans):
            n_signed = 0
        else:
            listed = state.to_sign(plans) if state is not None else None
            n_signed = _sign(spark, kept if listed is None else kept.where(F.col("doc_id").isin(listed)), plans, settings,
                             run, tasks, listed=listed is not None)

    dup_version = latest_version(spark, DUPLICATES.name)
    old = spark.sql(f"SELECT doc_id, cluster_id, is_keeper, content_sha256 FROM {DUPLICATES.name} VERSION AS OF {dup_version}")
    policy = sorted({k.split()[0] for k in settings.keeper})
    policy = [c for c in policy if c not in ("doc_id", "domain", "content_sha256")]
    # `fresh`: the kept rows this run places, named by doc_id when the files listed them (a narrower
    # read of the same rows: every use of it below is joined with the plan)
    fresh = kept if state is None or state.todo_ids is None else kept.where(F.col("doc_id").isin(state.todo_ids))
    if state is not None and not state.todo:
        n_todo = 0
    else:
        old = held(spark, old, DUPLICATES.name, dup_version)  # read again by the clustering's joins
        todo = plan_dedup(fresh, old).select("doc_id", "domain", "content_sha256", *policy).localCheckpoint(eager=True)
        n_todo = todo.count()
    metrics = {"signed": n_signed, "withdrawn": withdrawn, "spans_released": span_released}
    written = (GOLD, DUPLICATES, SIGNATURES, SPANS, FILTER_STATS)
    if n_todo == 0:
        refreshed = _refresh_quality(spark, kept, silver_version)
        run.counts(0, 0)
        run.metrics.update(metrics | {"quality_refreshed": refreshed})
        # every table it writes, at the version it leaves: the next run's quick no-op compares them
        for spec in written:
            run.outputs.append(Ref(spec.name, "table", latest_version(spark, spec.name)))
        if refreshed or withdrawn or span_released or recovered:
            say(f"dedup: no new documents; {refreshed} gold quality columns refreshed, {withdrawn} withdrawn")
            return {}
        run.noop("no new or changed kept documents")
        say("dedup: nothing new")
        return {}

    sig_version = latest_version(spark, SIGNATURES.name)
    run.inputs.append(Ref(SIGNATURES.name, "table", sig_version))
    sig_rows = held(spark, spark.sql(f"SELECT doc_id, content_sha256, scheme, n_shingles, signature FROM {SIGNATURES.name} "
                                     f"VERSION AS OF {sig_version}"), SIGNATURES.name, sig_version)

    def signatures_of(rows, ids: list[str] | None):
        sigs = sig_rows.select("doc_id", "scheme", "n_shingles", "signature")
        sigs = sigs if ids is None else sigs.where(F.col("doc_id").isin(ids))
        return sigs.join(rows.select("doc_id", "domain"), "doc_id").join(F.broadcast(plans_frame(spark, plans)), ["domain", "scheme"])

    signed = signatures_of(kept, None)
    signed_fresh = signed if fresh is kept else signatures_of(fresh, state.todo_ids)
    texts = kept.select("doc_id", "text")
    with run.phase("cluster"):
        assigned = _assign(spark, todo, old, signed, texts, settings, single=n_todo == 1,
                           signed_todo=signed_fresh).localCheckpoint(eager=True)
    n_contained = 0
    if contain_on:
        with run.phase("containment"):
            assigned, n_contained = _contain(spark, assigned, old, texts, settings.containment, tasks)
            assigned = assigned.localCheckpoint(eager=True)
    trimmed, span_rows, span_rounds = None, None, 0
    if spans_on:
        with run.phase("spans"):
            keepers = (assigned.where("is_keeper").select("doc_id").join(todo.select("doc_id", *policy), "doc_id")
                       .join(fresh.select("doc_id", "kind", "text"), "doc_id"))
            index, index_version = read_pinned(spark, SPANS.name, "doc_id, span_kind, span_hash, owner_id")
            index = held(spark, index, SPANS.name, index_version)
            trimmed, span_rows, span_rounds = _spans(spark, keepers, index, settings.spans, keeper_order(settings.keeper), tasks)
            trimmed = trimmed.localCheckpoint(eager=True)  # span_rows is read once, by its append
    else:
        trimmed = assigned.where("is_keeper").select(
            "doc_id", F.lit(None).cast("string").alias("new_text"), F.lit(None).cast("double").alias("spans_removed_share"),
            F.lit(False).alias("too_short"))

    # a keeper left too short by span dedup is rejected: it stays the name of its cluster, out of gold
    spanned = assigned.join(trimmed, "doc_id", "left")
    rejected = F.coalesce(F.col("too_short"), F.lit(False))
    assigned = spanned.select(
        "doc_id", "cluster_id", (F.col("is_keeper") & ~rejected).alias("is_keeper"),
        F.when(rejected, F.lit("spans")).otherwise(F.col("method")).alias("method"),
        "matched_with", "match_score", "spans_removed_share", "new_text")

    # similarity to the keeper, from the two signatures
    me = signed_fresh.select("doc_id", F.col("signature").alias("sig"))
    keeper = sig_rows.select(F.col("doc_id").alias("cluster_id"), F.col("content_sha256").alias("keeper_sha"),
                             F.col("signature").alias("keeper_sig"))
    duplicate = ~F.col("is_keeper") & (F.col("method") != "spans")
    with run.phase("place"):
        placed = (
            assigned.join(todo.select("doc_id", "domain", "content_sha256"), "doc_id")
            .join(me, "doc_id", "left").join(keeper, "cluster_id", "left")
            .select(
                "doc_id", "domain", "content_sha256", "cluster_id", "is_keeper", "method",
                F.when(~duplicate, F.lit(None)).when(F.col("content_sha256") == F.col("keeper_sha"), 1.0)
                .otherwise(similarity_expr("sig", "keeper_sig")).cast("double").alias("similarity"),
                F.lit(run.run_id).alias("batch_id"), F.current_timestamp().alias("deduped_at"),
                "matched_with", F.col("match_score").cast("double").alias("match_score"), "spans_removed_share", "new_text",
            )
            .localCheckpoint(eager=True)
        )
        tally = placed.agg(
            F.count("*").alias("n"), F.countDistinct("doc_id").alias("docs"),
            *[F.count(F.when(cond, 1)).alias(name) for name, cond in (
                ("keepers", F.col("is_keeper")), ("exact", F.col("method") == "exact"), ("near", F.col("method") == "near"),
                ("contained", F.col("method") == "containment"), ("spans", F.col("method") == "spans"),
                ("trimmed", F.col("is_keeper") & (F.col("spans_removed_share") > 0)))],
        ).first()
        n_placed, n_distinct, keepers = tally["n"], tally["docs"], tally["keepers"]
        exact, near, contained, span_rejects, trimmed_docs = (tally[k] for k in ("exact", "near", "contained", "spans", "trimmed"))
        if n_placed != n_todo or n_distinct != n_todo or contained != n_contained:
            from ..errors import BrickyardError

            raise BrickyardError(f"dedup placed {n_placed} rows ({n_distinct} documents) for {n_todo} new documents")

    admitted = placed.where("is_keeper").select("doc_id", "cluster_id", "batch_id", "deduped_at", "spans_removed_share", "new_text")
    cut = F.col("new_text").isNotNull()
    gold_rows = (fresh.select(*GOLD_FROM_SILVER).join(admitted, "doc_id")
                 .withColumn("text", F.when(cut, F.col("new_text")).otherwise(F.col("text")))
                 .withColumn("content_sha256", F.when(cut, F.sha2(F.col("new_text"), 256)).otherwise(F.col("content_sha256")))
                 .withColumn("n_bytes", F.when(cut, F.octet_length("new_text").cast("bigint")).otherwise(F.col("n_bytes")))
                 .select(*GOLD_FROM_SILVER, "cluster_id", "batch_id", "deduped_at", "spans_removed_share"))
    set_properties(spark, GOLD.name, {"brickyard.producer_version": code_version()})
    # gold first, the span index next, duplicates last: duplicates is what marks a document done, and a
    # run killed in between leaves gold and index rows that the next run's checks remove before it starts again
    # Inserts, not upserts: every document placed here is new to silver.duplicates (`plan_dedup`; a
    # changed text left it in `_withdraw`), and gold holds only placed keepers (checked there). Not
    # plain appends: those would let two overlapping runs (drivers on two hosts) both commit
    with run.phase("write"):
        insert_new(gold_rows, GOLD.name, "doc_id", fixed=True)  # silver at a pinned version, and checkpoints
        fault_pause("dedup:after-gold")
        if span_rows is not None:
            (span_rows.select("doc_id", "span_kind", "span_hash", "owner_id", F.lit(run.run_id).alias("batch_id"),
                              F.current_timestamp().alias("indexed_at"))
             .write.format("delta").mode("append").saveAsTable(SPANS.name))
        insert_new(placed.drop("new_text"), DUPLICATES.name, "doc_id", fixed=True)
        if spans_on:
            fault_pause("dedup:after-duplicates")
            # a keeper's gold bytes are its cut text's, or silver's (as in gold_rows): no text is read
            in_bytes = fresh.select("doc_id", F.col("n_bytes").alias("in_bytes"))
            rows = placed.join(in_bytes, "doc_id").select(
                F.col("batch_id").alias("run_id"), "domain", "is_keeper", "method", "in_bytes",
                F.when(F.col("is_keeper"), F.coalesce(F.octet_length("new_text").cast("bigint"), F.col("in_bytes"))).alias("out_bytes"),
            ).localCheckpoint(eager=True)  # joined once: the aggregate and its append then read a few rows (1.3 -> 0.4 s)
            dedup_stats(rows).write.format("delta").mode("append").saveAsTable(FILTER_STATS.name)
    with run.phase("refresh_quality"):
        refreshed = _refresh_quality(spark, kept, silver_version)
    for spec in written:
        if spec is not SIGNATURES:
            run.outputs.append(Ref(spec.name, "table", latest_version(spark, spec.name)))
    run.outputs.append(Ref(SIGNATURES.name, "table", sig_version))
    rejected_total = exact + near + contained + span_rejects
    run.counts(n_todo, keepers, rejected_total, 0)
    run.metrics.update(metrics | {
        "exact_duplicates": exact, "near_duplicates": near, "quality_refreshed": refreshed,
        **{f"lsh.{p.domain}": f"{p.scheme} t={p.threshold} b={p.bands} r={p.rows}" for p in plans.values()}})
    if contain_on:
        run.metrics["contained"] = contained
    if spans_on:
        run.metrics.update({"spans_rejected": span_rejects, "spans_trimmed": trimmed_docs, "spans_rounds": span_rounds})
    say(f"dedup: {n_todo} documents: {keepers} kept, {exact} exact and {near} near duplicates"
        + (f", {contained} contained" if contain_on else "")
        + (f"; {trimmed_docs} keepers lost repeated spans, {span_rejects} left too short" if spans_on else ""))
    return {"keepers": keepers, "duplicates": exact + near + contained, "rejected": span_rejects}


def stale_quality(spark, silver_version: int) -> int | None:
    """How many gold rows have quality columns that differ from silver's kept row (null against a
    value included), read from the tables' files; None when they cannot be read here."""
    # each comparison bracketed: DataFusion would read `a IS DISTINCT FROM b OR c` as `b OR c`
    changed = " OR ".join(f"(g.{c} IS DISTINCT FROM s.{c})" for c in QUALITY_COLUMNS)
    found = query_files(spark, f"SELECT count(*) AS n FROM g JOIN s ON g.doc_id = s.doc_id WHERE s.keep AND ({changed})",
                        {"g": (GOLD.name, None), "s": (SILVER.name, silver_version)})
    return None if found is None else found[0]["n"]


def _refresh_quality(spark, kept, silver_version: int) -> int:
    """Copy silver's quality columns onto gold rows where they differ (a retrained classifier).
    `kept`: silver's kept rows at `silver_version`."""
    from pyspark.sql import functions as F

    if stale_quality(spark, silver_version) == 0:  # the usual run: read from the files, no Spark job
        return 0
    gold = read_pinned(spark, GOLD.name, ", ".join(["doc_id", *QUALITY_COLUMNS]))[0]
    now = kept.select("doc_id", *[F.col(c).alias(f"new_{c}") for c in QUALITY_COLUMNS])
    differ = " OR ".join(f"NOT ({c} <=> new_{c})" for c in QUALITY_COLUMNS)
    stale = gold.join(now, "doc_id").where(differ).select("doc_id", *[F.col(f"new_{c}").alias(c) for c in QUALITY_COLUMNS])
    stale = stale.localCheckpoint(eager=True)
    n = stale.count()
    if n:
        merge_into(stale, GOLD.name, "doc_id", columns=QUALITY_COLUMNS, fixed=True)
    return n
