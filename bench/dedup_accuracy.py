"""Near-duplicate accuracy of the dedup job's pair finder on real documents, against exact Jaccard.

    bench/corpora.sh linux-doc        (optional: adds kernel documentation to the mix)
    .venv/bin/python bench/dedup_accuracy.py [--threshold 0.8] [--docs 4000]

Documents: licence and copyright texts and vendored Python modules with the installed copies of
the same packages (bench/realdocs.py), plus kernel documentation when fetched; exact copies are
collapsed first, as the job does, so what is measured is near-duplicate detection.

1. Ground truth: every pair with Jaccard >= threshold on the same shingle sets (5-word shingles,
   the job's hashes), found exactly by prefix filtering (two sets with Jaccard >= t share a token
   among the first |A| - ceil(t |A|) + 1 tokens of each in one global order) and verified exactly.
2. Predicted: the job's own Spark functions (`make_signer`, `band_buckets`, `candidate_pairs`,
   `verified`): LSH candidates, candidates verified by the signatures' estimate, and (the job's
   default) verified exactly; with datasketch's default weights and with brickyard's recall-weighted
   ones. Precision and recall of pairs for each. Goal: recall >= 0.95, precision >= 0.98.
3. Synthetic edits: documents with k% of their words replaced by random words; the share of
   (original, edit) pairs that LSH makes candidates, per true-Jaccard bin, against the S-curve
   1 - (1 - J^r)^b averaged over the bin.
4. Partial copies (`--copies N`, 0 to skip): short documents made of three passages of one real
   document inside words of another real document, as they are and lightly revised (a share of the
   words replaced): how many the job's containment finds inside their source (`make_shingler`,
   `containment_candidates`, `verified_containment`, with the corpus as the documents already in
   gold) against how many its near-duplicate path finds (LSH, verified exactly), with the exact
   containment of each copy in its source.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))


def corpus(limit: int) -> list[str]:
    from realdocs import files, licence_documents, read_text, vendored_documents

    docs = [t for _, t in licence_documents()] + [t for _, t in vendored_documents()]
    kernel = REPO / ".cache" / "corpora" / "linux-doc"
    for p in files(kernel, "*.rst.gz"):
        if len(docs) >= limit:
            break
        if (t := read_text(p, 256 * 1024)) is not None:
            docs.append(t)
    seen, distinct = set(), []
    for t in docs[:limit]:
        h = hashlib.sha256(t.encode()).digest()
        if h not in seen:
            seen.add(h)
            distinct.append(t)
    return distinct


def exact_pairs(sets: list[np.ndarray], t: float) -> dict[tuple[int, int], float]:
    """Every pair (i < j) with Jaccard >= t, by prefix filtering and exact verification."""
    nonempty = [i for i, s in enumerate(sets) if len(s)]
    tokens, freq = np.unique(np.concatenate([sets[i] for i in nonempty]), return_counts=True)
    index: dict[int, list[int]] = defaultdict(list)
    candidates: set[tuple[int, int]] = set()
    for i in nonempty:
        pos = np.searchsorted(tokens, sets[i])
        order = pos[np.lexsort((pos, freq[pos]))]  # rare tokens first, ties by token
        prefix = order[: len(order) - math.ceil(t * len(order)) + 1]
        for tok in prefix.tolist():
            for j in index[tok]:
                candidates.add((j, i))
            index[tok].append(i)
    out = {}
    for i, j in candidates:
        a, b = sets[i], sets[j]
        inter = len(np.intersect1d(a, b, assume_unique=True))
        jac = inter / (len(a) + len(b) - inter)
        if jac >= t - 1e-12:
            out[(i, j)] = jac
    return out


def spark_pairs(spark, texts: list[str], settings, verify: str):
    """{(i, j): similarity} for the pairs the job's functions keep, and the LSH (bands, rows)."""
    from brickyard.pipelines.stages.dedup import (
        SIGN_SCHEMA,
        band_buckets,
        candidate_pairs,
        domain_plans,
        make_signer,
        plans_frame,
        verified,
    )

    plans = domain_plans(settings, ["docs"])
    rows = [(f"{i:07d}", "docs", hashlib.sha256(t.encode()).hexdigest(), t) for i, t in enumerate(texts)]
    docs = spark.createDataFrame(rows, "doc_id STRING, domain STRING, content_sha256 STRING, text STRING").repartition(8)
    signer = make_signer({"docs": (settings.ngram, settings.num_perm)}, (settings.ngram, settings.num_perm), settings.seed)
    signed = docs.mapInArrow(signer, SIGN_SCHEMA).join(plans_frame(spark, plans), ["domain", "scheme"]).localCheckpoint(eager=True)
    cands = candidate_pairs(band_buckets(signed)).localCheckpoint(eager=True)
    found = verified(cands, signed, docs.select("doc_id", "text"), verify).collect()
    plan = plans["docs"]
    return {(int(r["a"]), int(r["b"])): r["similarity"] for r in found}, (plan.bands, plan.rows)


def contained_pairs(spark, corpus: list[str], probes: list[str], settings, probe_corpus: bool = False):
    """{(a, b): containment} that the job's containment functions find, ids as ("c", i) for the
    corpus and ("p", i) for the probes. The corpus stands for gold (never contained itself, unless
    `probe_corpus`: a first run over all of it), the probes for a run's new keepers."""
    from brickyard.pipelines.stages.dedup import (
        SHINGLE_SCHEMA,
        containment_candidates,
        make_shingler,
        verified_containment,
    )

    rows = [(f"c{i:07d}", t, probe_corpus, not probe_corpus) for i, t in enumerate(corpus)]
    rows += [(f"p{i:07d}", t, True, False) for i, t in enumerate(probes)]
    docs = spark.createDataFrame(rows, "doc_id STRING, text STRING, probe BOOLEAN, settled BOOLEAN").repartition(8)
    units = docs.select("doc_id", "probe", "settled")
    shingled = (docs.select("doc_id", "text").mapInArrow(make_shingler(settings.ngram), SHINGLE_SCHEMA)
                .join(units, "doc_id").localCheckpoint(eager=True))
    cands = containment_candidates(shingled, settings.threshold, settings.max_df, settings.min_shingles).localCheckpoint(eager=True)
    found = verified_containment(cands, docs.select("doc_id", "text"), settings.ngram, settings.threshold).collect()
    return {((r["a"][0], int(r["a"][1:])), (r["b"][0], int(r["b"][1:]))): r["containment"] for r in found}


def partial_copy(source: list[str], host: list[str], revise: float, vocab: list[str], rng: random.Random) -> str:
    """Three passages of 50-80 words of `source`, with 30 words of `host` before and between them;
    `revise`: the share of the words then replaced by random words of the corpus."""
    cuts = sorted(rng.sample(range(len(source) - 80), 3))
    passages = [source[c : c + rng.randint(50, 80)] for c in cuts]
    start = rng.randrange(len(host) - 30)
    own = host[start : start + 30]
    words = own[:20] + passages[0] + own[20:] + passages[1] + passages[2]
    if revise:
        words = edited(words, revise, vocab, rng)
    return " ".join(words)


def report(name: str, predicted: set, truth: set) -> None:
    hit = len(predicted & truth)
    precision = hit / len(predicted) if predicted else 1.0
    recall = hit / len(truth) if truth else 1.0
    print(f"{name:34s} pairs {len(predicted):6d}  true {hit:6d}  precision {precision:.4f}  recall {recall:.4f}")


def edited(words: list[str], rate: float, vocab: list[str], rng: random.Random) -> list[str]:
    out = list(words)
    for i in rng.sample(range(len(out)), max(1, round(rate * len(out)))):
        out[i] = rng.choice(vocab)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--docs", type=int, default=4000, help="documents read before exact copies are collapsed")
    ap.add_argument("--edits", type=int, default=300, help="documents edited for the S-curve check")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--copies", type=int, default=40, help="partial copies of each kind (0: skip them)")
    ap.add_argument("--revise", type=float, default=0.02, help="share of a revised copy's words replaced")
    ap.add_argument("--skip-pairs", action="store_true", help="only the partial copies (steps 1-3 skipped)")
    args = ap.parse_args()

    from brickyard.pipelines.config import SparkSettings
    from brickyard.pipelines.lake.session import get_spark

    texts = corpus(args.docs)
    spark = get_spark(Path(tempfile.mkdtemp(prefix="brickyard-dedup-acc-")) / "lakehouse",
                      SparkSettings(ui=False, progress=False), app_name="bench-dedup-accuracy")
    print(f"{len(texts)} distinct documents ({sum(len(t.encode()) for t in texts) / 1e6:.1f} MB)")
    if not args.skip_pairs:
        pairs_and_edits(spark, texts, args)
    if args.copies:
        partial_copies(spark, texts, args)
    spark.stop()
    return 0


def pairs_and_edits(spark, texts: list[str], args) -> None:
    from brickyard.pipelines.config import DedupSettings
    from brickyard.pipelines.text.minhash import batch_shingle_hashes, s_curve, words_of

    t0 = time.perf_counter()
    sets = [np.unique(h) for h in batch_shingle_hashes(texts, 5)]
    truth = exact_pairs(sets, args.threshold)
    t_truth = time.perf_counter() - t0
    print(f"{len(truth)} pairs with Jaccard >= {args.threshold} (exact, {t_truth:.1f} s)")

    classic = DedupSettings(threshold=args.threshold, lsh_weights=[0.5, 0.5])
    found, (b, r) = spark_pairs(spark, texts, classic, "none")
    print(f"\nLSH with datasketch's default weights (0.5, 0.5): {b} bands x {r} rows")
    report("  candidates", set(found), set(truth))
    report("  verified by the estimate", set(spark_pairs(spark, texts, classic, "estimate")[0]), set(truth))
    settings = DedupSettings(threshold=args.threshold)
    t0 = time.perf_counter()
    found, (b, r) = spark_pairs(spark, texts, settings, "exact")
    t_exact = time.perf_counter() - t0
    candidates, _ = spark_pairs(spark, texts, settings, "none")
    estimated, _ = spark_pairs(spark, texts, settings, "estimate")
    print(f"\nLSH with brickyard's default weights {tuple(settings.lsh_weights)}: {b} bands x {r} rows")
    report("  candidates", set(candidates), set(truth))
    report("  verified by the estimate", set(estimated), set(truth))
    report("  verified exactly (the default)", set(found), set(truth))
    print(f"  ({t_exact:.1f} s for signatures, candidates and exact verification of {len(candidates)} candidates)")
    missed = sorted(truth[p] for p in set(truth) - set(found))
    if missed:
        print(f"  missed pairs' true Jaccard: min {missed[0]:.3f}, median {missed[len(missed) // 2]:.3f}")

    # synthetic edits against the S-curve
    rng = random.Random(args.seed)
    pool = [words_of(t) for t in texts]
    pool = [w for w in pool if len(w) >= 200]
    rng.shuffle(pool)
    pool = pool[: args.edits]
    vocab = sorted({w for ws in pool for w in ws})
    pairs_text, true_j = [], []
    for ws in pool:
        for rate in (0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.12):
            e = edited(ws, rate, vocab, rng)
            a, c = set(np.unique(batch_shingle_hashes([" ".join(ws)], 5)[0])), set(np.unique(batch_shingle_hashes([" ".join(e)], 5)[0]))
            pairs_text.append((" ".join(ws), " ".join(e)))
            true_j.append(len(a & c) / len(a | c))
    flat = [t for pair in pairs_text for t in pair]
    found, _ = spark_pairs(spark, flat, settings, "none")
    exact, _ = spark_pairs(spark, flat, settings, "exact")
    caught = [(2 * k, 2 * k + 1) in found for k in range(len(pairs_text))]
    kept = [(2 * k, 2 * k + 1) in exact for k in range(len(pairs_text))]
    print(f"\nsynthetic edits: {len(pairs_text)} (original, edit) pairs from {len(pool)} documents")
    print(f"LSH {b} bands x {r} rows; 'verified': candidates whose exact Jaccard reaches {args.threshold}")
    print("true Jaccard   pairs   S-curve   candidates   verified")
    edges = [0.0, 0.5, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 1.01]
    worst = 0.0
    for lo, hi in zip(edges, edges[1:], strict=False):
        idx = [k for k, j in enumerate(true_j) if lo <= j < hi]
        if not idx:
            continue
        predicted = float(np.mean([s_curve(true_j[k], b, r) for k in idx]))
        observed = float(np.mean([caught[k] for k in idx]))
        if len(idx) >= 30:
            worst = max(worst, abs(observed - predicted))
        print(f"[{lo:.2f}, {min(hi, 1):.2f})  {len(idx):6d}   {predicted:7.3f}   {observed:10.3f}   {np.mean([kept[k] for k in idx]):8.3f}")
    print(f"largest gap between observed and predicted candidate rate (bins of 30+ pairs): {worst:.3f}")


def partial_copies(spark, texts: list[str], args) -> None:
    from brickyard.pipelines.config import ContainmentSettings, DedupSettings
    from brickyard.pipelines.text.minhash import pair_containment, pair_jaccard, words_of

    rng = random.Random(args.seed + 1)
    words = [t.split() for t in texts]
    sources = [i for i, w in enumerate(words) if len(w) >= 600]
    hosts = [i for i, w in enumerate(words) if len(w) >= 100]
    vocab = sorted({w for i in rng.sample(hosts, min(200, len(hosts))) for w in words_of(texts[i])})
    kinds = {"copied": 0.0, f"revised ({args.revise:.0%} of words)": args.revise}
    cases = []  # (kind, source index, text)
    for kind, revise in kinds.items():
        for _ in range(args.copies):
            s = rng.choice(sources)
            h = rng.choice([i for i in rng.sample(hosts, 5) if i != s] or hosts)
            cases.append((kind, s, partial_copy(words[s], words[h], revise, vocab, rng)))
    probes = [t for _, _, t in cases]
    true_c = pair_containment(probes, [texts[s] for _, s, _ in cases], 5)
    true_j = pair_jaccard(probes, [texts[s] for _, s, _ in cases], 5)
    near_settings = DedupSettings(threshold=args.threshold)
    t0 = time.perf_counter()
    near, _ = spark_pairs(spark, texts + probes, near_settings, "exact")
    t_near = time.perf_counter() - t0
    base = len(texts)
    near_hit = [any(p in near for p in ((s, base + k), (base + k, s))) for k, (_, s, _) in enumerate(cases)]
    print(f"\npartial copies: {len(cases)} short documents, each three passages of 50-80 words of one real "
          "document with 30 words of another around them, among the corpus")
    thresholds = (0.9, 0.8, 0.7, 0.6)
    runs = {}
    for max_df in (100, 10):
        cs = ContainmentSettings(enabled=True, threshold=min(thresholds), max_df=max_df)
        t0 = time.perf_counter()
        runs[max_df] = (contained_pairs(spark, texts, probes, cs), time.perf_counter() - t0)
    print(f"containment: 5-gram shingles, verified exactly, max_df 100 ({runs[100][1]:.1f} s; max_df 10: "
          f"{runs[10][1]:.1f} s); near: LSH at Jaccard {args.threshold}, verified exactly ({t_near:.1f} s)")
    print("cells: copies found inside their source at threshold t / copies whose exact C reaches t")
    print(f"{'kind':24s} cases  median C  median J  near  " + "  ".join(f"   t={t}" for t in thresholds) + "  t=0.8, max_df 10")

    def hits(found, k, t):
        return found.get((("p", k), ("c", cases[k][1])), 0.0) >= t - 1e-12

    for kind in kinds:
        idx = [k for k, c in enumerate(cases) if c[0] == kind]
        cells = []
        for t in thresholds:
            pos = [k for k in idx if true_c[k] >= t - 1e-12]
            cells.append(f"{sum(hits(runs[100][0], k, t) for k in idx):3d}/{len(pos):3d}")
        pos8 = [k for k in idx if true_c[k] >= 0.8 - 1e-12]
        cells.append(f"{sum(hits(runs[10][0], k, 0.8) for k in pos8):3d}/{len(pos8):3d}")
        print(f"{kind:24s} {len(idx):5d}  {np.median(true_c[idx]):8.3f}  {np.median(true_j[idx]):8.3f}  "
              f"{sum(near_hit[k] for k in idx):4d}  " + "  ".join(f"{c:>7s}" for c in cells))
    elsewhere = sum(1 for (a, b), c in runs[100][0].items() if c >= 0.8 and b != ("c", cases[a[1]][1]))
    print(f"pairs at t=0.8 with another corpus document than the source (a copy of the source, or of its passages): {elsewhere}")
    # the real corpus on its own, as a first run would see it: every document may be contained
    t0 = time.perf_counter()
    own = contained_pairs(spark, texts, [], ContainmentSettings(enabled=True, threshold=min(thresholds), max_df=100),
                          probe_corpus=True)
    for t in (0.9, 0.8, 0.7):
        n = len({a for (a, b), c in own.items() if c >= t - 1e-12})
        print(f"real corpus documents inside another (larger) one at t={t}: {n} of {len(texts)}")
    print(f"({time.perf_counter() - t0:.1f} s for the corpus probed against itself)")


if __name__ == "__main__":
    sys.exit(main())
