"""Ingest throughput on a real corpus, against reading the same files in a plain Python loop.

    bench/corpora.sh linux-doc
    .venv/bin/python bench/ingest_throughput.py [--corpus linux-doc] [--repeat 2]

Three figures, all in MB of document text per second, measured in the same run:
- floor: a plain Python loop on one core that opens, decompresses, decodes and hashes each file
  (the least work any ingest must do);
- readers: brickyard's own readers in the same plain loop on one core (what the readers cost);
- spark: the whole `ingest` job on local Spark with every core: listing, reading in Python workers,
  the Arrow hand-off, conservation checks and the Delta MERGE commits, on a fresh lakehouse.
It prints spark / floor and the same per core. Spark session start-up is not counted (it is paid
once per build); a warm-up ingest of a few files runs first so JIT and metastore set-up are not
counted either.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CORPORA = {
    "linux-doc": ("usr/share/doc/linux-doc-6.1/Documentation", ["*.rst.gz"]),
    "python-doc": ("usr/share/doc/python3.11/html/_sources", ["*.txt"]),
}


def bench_source(corpus: str):
    """The corpus as a `text` source named `bench` and a pipeline config over it, or None (with a
    message) when bench/corpora.sh has not fetched it yet."""
    from brickyard.pipelines.config import PipelineConfig, SourceConfig, SparkSettings

    sub, include = CORPORA[corpus]
    root = REPO / ".cache" / "corpora" / corpus / sub
    if not root.is_dir():
        print(f"corpus not found at {root}; run bench/corpora.sh {corpus} first", file=sys.stderr)
        return None
    source = SourceConfig(name="bench", kind="text", path=str(root), include=include, domain="docs")
    return source, PipelineConfig(sources=[source], spark=SparkSettings(ui=False, progress=False))


def plain_loop(files: list[Path]) -> int:
    total = 0
    for f in files:
        data = f.read_bytes()
        if f.suffix == ".gz":
            data = gzip.decompress(data)
        text = data.decode("utf-8")
        hashlib.sha256(text.encode("utf-8")).hexdigest()
        total += len(data)
    return total


def readers_loop(cfg, units) -> int:
    from brickyard.pipelines.sources.readers import read_unit

    total = 0
    for u in units:
        for r in read_unit(u, cfg.ingest.max_doc_bytes, cfg.ingest.max_file_bytes):
            total += r["n_bytes"] or 0
    return total


def best_of(repeat: int, fn):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="linux-doc", choices=sorted(CORPORA))
    ap.add_argument("--repeat", type=int, default=2, help="runs of each loop; the best counts")
    args = ap.parse_args()

    found = bench_source(args.corpus)
    if found is None:
        return 2
    source, cfg = found

    from brickyard.pipelines.config import PipelineConfig, SourceConfig
    from brickyard.pipelines.lake.session import get_spark
    from brickyard.pipelines.sources.listing import list_units
    from brickyard.pipelines.stages.ingest import ingest

    t_list, units = best_of(1, lambda: list_units(cfg, source))
    files = [Path(u.file) for u in units]

    t_floor, n_floor = best_of(args.repeat, lambda: plain_loop(files))
    t_read, n_read = best_of(args.repeat, lambda: readers_loop(cfg, units))

    workdir = Path(tempfile.mkdtemp(prefix="brickyard-bench-"))
    try:
        spark = get_spark(workdir / "lakehouse", cfg.spark, app_name="bench-ingest")
        warm = workdir / "warm"
        warm.mkdir()
        for f in files[:20]:
            shutil.copy(f, warm / f.name)
        ingest(spark, PipelineConfig(sources=[SourceConfig(name="warmup", kind="text", path=str(warm))]))
        t0 = time.perf_counter()
        result = ingest(spark, cfg)
        t_spark = time.perf_counter() - t0
        # the fixed cost of a run (listing aside): the same job over one small file
        one = workdir / "one"
        one.mkdir()
        shutil.copy(files[-1], one / files[-1].name)
        t0 = time.perf_counter()
        ingest(spark, PipelineConfig(sources=[SourceConfig(name="one", kind="text", path=str(one))]))
        t_fixed = time.perf_counter() - t0
        cores = spark.sparkContext.defaultParallelism
        spark.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    mb = n_floor / 1e6
    floor, readers, spark_rate = mb / t_floor, n_read / 1e6 / t_read, mb / t_spark
    print(f"corpus: {args.corpus}, {len(files)} files, {mb:.1f} MB of text; "
          f"{result.rows_out} documents, {result.rows_quarantined} quarantined; {os.cpu_count()} cores here")
    print(f"floor   (plain loop, 1 core)        {floor:8.2f} MB/s")
    print(f"readers (brickyard readers, 1 core) {readers:8.2f} MB/s   ratio to floor {readers / floor:.2f}")
    steady = mb / max(t_spark - t_fixed, 1e-9)
    print(f"listing {len(units)} units on the driver: {t_list:.2f} s")
    print(f"spark   (ingest job, {cores} cores)       {spark_rate:8.2f} MB/s   {t_spark:.1f} s, of which "
          f"{t_fixed:.1f} s is the fixed cost of any run (Delta commits, lineage)")
    print(f"spark beyond the fixed cost          {steady:8.2f} MB/s")
    print(f"ratio spark / floor:                    {spark_rate / floor:.2f}")
    print(f"ratio spark beyond fixed cost / floor:  {steady / floor:.2f} ({steady / cores / floor:.2f} per core)")
    print(f"ratio readers / floor (same 1 core):    {readers / floor:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
