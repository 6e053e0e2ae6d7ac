"""Tokenize and export speed, each against a floor measured in the same run on the same data.

    bench/corpora.sh linux-doc python-doc      (optional: more real documents)
    .venv/bin/python bench/tokenize_export.py [--mb 60]

Documents are real files of this machine (bench/realdocs.py: site-packages and standard-library
sources, C headers, man pages, licences, documentation, and the fetched corpora), up to 64 kB
each, in a fixed order, until about --mb megabytes.

1. Tokenize stage: `brickyard tokenize` (`pipelines.tokenize.tokenize`, local Spark on every core)
   on a fresh lakehouse whose gold.documents holds the documents (written by another process
   first, not timed). The job is timed whole: lineage rows, reading gold, encoding, the Delta
   append, the count and mirror checks. Floor: tiktoken's `encode_ordinary_batch` on the same texts
   in one process with as many threads as cores. Printed: both in MB/s and the ratio (goal >= 0.8),
   and the same for the job's encode-and-append phase alone (its `seconds.encode_write` metric):
   the rest is a fixed cost per run (Delta commits of the lineage row and catalog checks) that
   does not grow with the data.
2. Export: `pipelines.export.export` of one stream of every document (seq_len 2048, zstd), timed
   whole. Floor: one process handing the same number of samples, already packed in memory, to one
   `MDSWriter`. Printed: tokens/s of both and the ratio.
3. Read: the exported stream through `streaming.StreamingDataset` (shuffled, as training reads
   it), first pass (copies and decompresses shards into its cache) and second pass, in tokens/s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
MAX_BYTES = 64 * 1024
SEQ_LEN = 2048

from benchlake import config, write_documents  # noqa: E402


def documents(mb: float) -> list[str]:
    from realdocs import real_documents

    out, total = [], 0
    for _, t in real_documents(10**9, max_bytes=MAX_BYTES):
        out.append(t)
        total += len(t.encode())
        if total >= mb * 1e6:
            break
    return out


def write_gold(lakehouse: Path, mb: float) -> None:
    """gold.documents holding the documents (what dedup would hand to tokenize)."""
    from pipelines.dedup import GOLD

    write_documents(lakehouse, GOLD, documents(mb), quality_tier="unscored", cluster_id=lambda d: d)


def run_stages(lakehouse: Path) -> dict:
    from pipelines.config import from_dict
    from pipelines.curriculum import Curriculum
    from pipelines.export import export
    from pipelines.session import get_spark
    from pipelines.tokenize import tokenize

    cfg = config(lakehouse)
    spark = get_spark(lakehouse, cfg.spark, app_name="bench-tokenize")
    spark.range(1).count()  # the JVM is warm before the clock starts
    t = time.perf_counter()
    run_id, status, docs, tokens = tokenize(spark, cfg, quiet=True)
    tokenize_s = time.perf_counter() - t
    metrics = spark.table("ops.lineage").where(f"run_id = '{run_id}'").first()["metrics"]
    spec = from_dict(Curriculum, {"name": "bench", "seq_len": SEQ_LEN, "tokens": SEQ_LEN, "streams": {"all": {}},
                                  "phases": [{"name": "one", "share": 1.0, "mix": {"all": 1.0}}]}, "bench")
    t = time.perf_counter()
    _, _, path, manifest = export(spark, cfg, spec, out=lakehouse.parent / "export", quiet=True)
    export_s = time.perf_counter() - t
    spark.stop()
    return {"tokenize_s": tokenize_s, "encode_write_s": float(metrics["seconds.encode_write"]), "documents": docs, "tokens": tokens, "status": status,
            "export_s": export_s, "export": str(path), "samples": manifest["streams"]["all"]["samples"],
            "shard_bytes": sum(f["bytes"] for f in manifest["streams"]["all"]["shards"])}


def mdswriter_floor(samples: int, out: Path) -> float:
    import numpy as np
    from streaming import MDSWriter

    L = SEQ_LEN + 1
    block = np.random.default_rng(0).integers(0, 100000, (256, L), dtype=np.uint32)
    t = time.perf_counter()
    with MDSWriter(out=str(out), columns={"tokens": f"ndarray:uint32:{L}", "stream": "str"}, compression="zstd",
                   hashes=["xxh64"], size_limit=1 << 26) as w:
        for i in range(samples):
            w.write({"tokens": block[i % 256], "stream": "all"})
    return time.perf_counter() - t


def read_passes(export_dir: Path, cache: Path) -> list[float]:
    from streaming import Stream, StreamingDataset

    ds = StreamingDataset(streams=[Stream(remote=str(export_dir / "streams" / "all"), local=str(cache))],
                          shuffle=True, shuffle_seed=1, batch_size=8)
    out = []
    for _ in range(2):
        t = time.perf_counter()
        n = sum(s["tokens"].size for s in ds)
        out.append(n / (time.perf_counter() - t))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mb", type=float, default=60.0, help="megabytes of real text")
    ap.add_argument("--child", choices=["gold", "stages"], help=argparse.SUPPRESS)
    ap.add_argument("--lakehouse", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child == "gold":
        write_gold(Path(args.lakehouse), args.mb)
        return 0
    if args.child == "stages":
        print(json.dumps(run_stages(Path(args.lakehouse))))
        return 0

    from pipelines.tokenize import encoder

    cores = os.cpu_count() or 1
    texts = documents(args.mb)
    mb = sum(len(t.encode()) for t in texts) / 1e6
    enc = encoder("cl100k_base")
    raw = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        enc.encode_ordinary_batch(texts, num_threads=cores)
        raw = min(raw, time.perf_counter() - t)

    work = Path(tempfile.mkdtemp(prefix="brickyard-tokenize-bench-"))
    try:
        lakehouse = work / "lakehouse"
        me = [sys.executable, __file__, "--lakehouse", str(lakehouse), "--mb", str(args.mb)]
        subprocess.run([*me, "--child", "gold"], check=True, stderr=subprocess.DEVNULL)
        out = subprocess.run([*me, "--child", "stages"], check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        floor_s = mdswriter_floor(r["samples"], work / "floor")
        reads = read_passes(Path(r["export"]), work / "cache")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{len(texts):,} real documents, {mb:.1f} MB, {r['tokens']:,} tokens; {cores} cores")
    print("\n1. tokenize (cl100k_base)")
    print(f"  brickyard tokenize stage (Spark, whole job)       {mb / r['tokenize_s']:8.2f} MB/s   ({r['tokenize_s']:.1f} s)")
    print(f"  encode_ordinary_batch, {cores} threads, one process  {mb / raw:8.2f} MB/s   ({raw:.1f} s)")
    print(f"  ratio stage / raw                                 {raw / r['tokenize_s']:8.2f}   (goal >= 0.8)")
    print(f"  of which encoding + Delta append                  {mb / r['encode_write_s']:8.2f} MB/s   ({r['encode_write_s']:.1f} s)")
    print(f"  ratio encoding + append / raw                     {raw / r['encode_write_s']:8.2f}")
    print(f"  fixed per-job cost (lineage, catalog, plan, checks) {r['tokenize_s'] - r['encode_write_s']:6.1f} s")
    tok = r["samples"] * (SEQ_LEN + 1)
    print(f"\n2. export: {r['samples']:,} samples of {SEQ_LEN + 1} tokens, {r['shard_bytes'] / 1e6:.1f} MB of zstd shards")
    print(f"  brickyard export (Spark, whole job)               {tok / r['export_s'] / 1e6:8.2f} M tokens/s   ({r['export_s']:.1f} s)")
    print(f"  one MDSWriter, samples already in memory          {tok / floor_s / 1e6:8.2f} M tokens/s   ({floor_s:.1f} s)")
    print(f"  ratio export / MDSWriter                          {floor_s / r['export_s']:8.2f}")
    print("\n3. StreamingDataset read, shuffled, one process")
    print(f"  first pass (copy + decompress into the cache)     {reads[0] / 1e6:8.2f} M tokens/s")
    print(f"  second pass (cached)                              {reads[1] / 1e6:8.2f} M tokens/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
