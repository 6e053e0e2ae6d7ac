"""Dedup speed: MinHash signatures against datasketch, the whole dedup job against datasketch's
in-memory MinHashLSH, and how the job's time and driver memory grow with the corpus.

    bench/corpora.sh linux-doc python-doc      (optional: more real documents)
    .venv/bin/python bench/dedup_throughput.py [--sizes 25000,50000,100000]

Documents are real files of this machine (bench/realdocs.py: site-packages and standard-library
sources, C headers, man pages, licences, documentation), up to 16 kB each, in a fixed order.

1. Signatures, one core: `batch_shingle_hashes` + `signatures` against datasketch's
   `MinHash.update_batch` on the same texts and 5-word shingles (datasketch's default hash, sha1).
   Goal: at least 5 times faster.
2. The dedup job (`brickyard.pipelines.stages.dedup.dedup`, local Spark, every core) on each corpus size, in a fresh
   process on a fresh lakehouse whose silver.documents holds the documents (written by another
   process first, not timed). Printed: wall time, time per 1,000 documents, the driver's peak
   Python memory (ru_maxrss of the driver process) and the JVM's peak heap in use (in local mode
   the JVM is driver and executors at once). The driver never collects documents or the graph, so
   its Python memory should stay flat and time grow close to linearly.
3. Baseline at the largest size: the usual single-process recipe with datasketch: exact duplicates
   by a dict of hashes, then for each remaining document a MinHash (`update_batch`), a
   `MinHashLSH.query` and `insert` at the same threshold, and union-find over the matches. Printed:
   its time, and the ratio baseline / brickyard.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
MAX_BYTES = 16 * 1024

from benchlake import PeakHeap, config, write_documents  # noqa: E402


def documents(n: int) -> list[str]:
    from realdocs import real_documents

    return [t for _, t in real_documents(n, max_bytes=MAX_BYTES)]


def bench_signatures(texts: list[str]) -> None:
    from brickyard.pipelines.text.minhash import batch_shingle_hashes, shingles_of, signatures
    from datasketch import MinHash

    mb = sum(len(t.encode()) for t in texts) / 1e6
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        signatures(batch_shingle_hashes(texts, 5), 128, 1)
        best = min(best, time.perf_counter() - t)
    t = time.perf_counter()
    for text in texts:
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingles_of(text, 5)])
    theirs = time.perf_counter() - t
    print(f"signatures, 1 core, {len(texts)} documents, {mb:.1f} MB, 128 permutations, 5-word shingles")
    print(f"  brickyard (numpy batches)      {mb / best:8.1f} MB/s")
    print(f"  datasketch update_batch        {mb / theirs:8.1f} MB/s")
    print(f"  ratio brickyard / datasketch   {theirs / best:8.1f}  (goal >= 5)")


def write_silver(lakehouse: Path, n: int) -> None:
    """silver.documents with n real documents, all kept (what curate would hand to dedup)."""
    from brickyard.pipelines.lake.tables import SILVER

    texts = documents(n)
    write_documents(lakehouse, SILVER, texts, lang_score=1.0, keep=True,
                    bronze_sha256=lambda d: hashlib.sha256(texts[int(d[1:])].encode()).hexdigest())


def run_dedup(lakehouse: Path) -> dict:
    from brickyard.pipelines.lake.session import get_spark
    from brickyard.pipelines.stages.dedup import dedup

    cfg = config(lakehouse)
    spark = get_spark(lakehouse, cfg.spark, app_name="bench-dedup")
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with PeakHeap(spark) as heap:
        t = time.perf_counter()
        result = dedup(spark, cfg)
        run_id, status, keepers, duplicates = result.run_id, result.status, result.rows_out, result.rows_rejected
        seconds = time.perf_counter() - t
    metrics = spark.table("ops.lineage").where(f"run_id = '{run_id}'").first()["metrics"]
    spark.stop()
    return {"seconds": seconds, "keepers": keepers, "duplicates": duplicates, "status": status,
            "driver_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": rss_before / 1024,
            "jvm_heap_mb": heap.mb, "phases": {k: v for k, v in metrics.items() if k.startswith("seconds.")}}


def baseline(texts: list[str], threshold: float) -> tuple[float, int]:
    """datasketch in memory: exact by hash, then MinHashLSH query/insert and union-find."""
    from brickyard.pipelines.text.minhash import shingles_of
    from datasketch import MinHash, MinHashLSH

    t = time.perf_counter()
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.get(x, x) != x:
            parent[x] = parent.get(parent[x], parent[x])
            x = parent[x]
        return x

    seen: dict[bytes, int] = {}
    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    duplicates = 0
    for i, text in enumerate(texts):
        h = hashlib.sha256(text.encode()).digest()
        if h in seen:
            duplicates += 1
            continue
        seen[h] = i
        m = MinHash(num_perm=128, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingles_of(text, 5)])
        matches = lsh.query(m)
        for j in matches:
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
        lsh.insert(i, m)
    duplicates += sum(1 for i in seen.values() if find(i) != i)
    return time.perf_counter() - t, duplicates


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="25000,50000,100000", help="corpus sizes, documents (the largest gets the baseline)")
    ap.add_argument("--signature-docs", type=int, default=5000)
    ap.add_argument("--child", choices=["silver", "dedup"], help=argparse.SUPPRESS)
    ap.add_argument("--lakehouse", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "silver":
        write_silver(Path(args.lakehouse), args.n)
        return 0
    if args.child == "dedup":
        print(json.dumps(run_dedup(Path(args.lakehouse))))
        return 0

    sizes = sorted(int(s) for s in args.sizes.split(","))
    bench_signatures(documents(args.signature_docs))
    results = {}
    for n in sizes:
        lakehouse = Path(tempfile.mkdtemp(prefix="brickyard-dedup-bench-")) / "lakehouse"
        me = [sys.executable, __file__, "--lakehouse", str(lakehouse), "--n", str(n)]
        subprocess.run([*me, "--child", "silver"], check=True, stderr=subprocess.DEVNULL)
        out = subprocess.run([*me, "--child", "dedup"], check=True, capture_output=True, text=True).stdout
        results[n] = json.loads(out.strip().splitlines()[-1])
        shutil.rmtree(lakehouse.parent, ignore_errors=True)
    print(f"\ndedup job, local Spark, {os.cpu_count()} cores (fresh lakehouse and process per size)")
    print("documents   seconds   s per 1k docs   kept     duplicates   driver RSS MB   JVM heap MB")
    for n, r in results.items():
        print(f"{n:9d}   {r['seconds']:7.1f}   {r['seconds'] / n * 1000:13.2f}   {r['keepers']:6d}   {r['duplicates']:10d}"
              f"   {r['driver_rss_mb']:13.0f}   {r['jvm_heap_mb']:11.0f}")
    small, large = results[sizes[0]], results[sizes[-1]]
    print(f"time ratio largest / smallest: {large['seconds'] / small['seconds']:.2f} for {sizes[-1] / sizes[0]:.1f}x the documents; "
          f"driver RSS ratio {large['driver_rss_mb'] / small['driver_rss_mb']:.2f}")
    print(f"phases at {sizes[-1]}: {large['phases']}")

    texts = documents(sizes[-1])
    t_base, dups = baseline(texts, 0.8)
    print(f"\ndatasketch in memory (1 core), {len(texts)} documents: {t_base:.1f} s, {dups} duplicates "
          f"(its LSH at datasketch's default weights, candidates unverified)")
    print(f"ratio datasketch / brickyard job: {t_base / large['seconds']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
