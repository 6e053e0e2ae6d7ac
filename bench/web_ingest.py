"""WARC ingest with HTML extraction, against the extractor called in a plain loop.

    bench/corpora.sh python-doc
    .venv/bin/python bench/web_ingest.py [--files 8] [--copies 2] [--repeat 1]

The crawl: the Python 3.11 documentation's HTML pages (python3.11-doc), each page `--copies`
times under distinct URLs, written by warcio as gzipped WARC files of `--files` parts (one gzip
member per record, as Common Crawl writes them), with one 404 and one image response per 50 pages.

Three figures, measured in the same run, in records per second and in MB of WARC file per second:
- extractor: trafilatura's `bare_extraction` over the pages' HTML (decoded beforehand) in a plain
  Python loop on one core: the peer, the least work any WARC-to-text ingest must do;
- readers: brickyard's WARC reader (`brickyard.pipelines.sources.web.read_warc`: gzip, WARC and HTTP parsing,
  charset, URL normalization and registered domain, extraction) in the same plain loop on one core;
- spark: the whole `ingest` job over the folder on local Spark with every core, on a fresh
  lakehouse (listing, Python workers, the Arrow hand-off, conservation, the Delta commits).
It prints readers / extractor, and spark / (extractor x cores), whole and beyond the fixed cost of
a run (the same job over one small file). Spark start-up and a warm-up ingest are not counted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.ingest_throughput import best_of  # noqa: E402

HTML = REPO / ".cache/corpora/python-doc/usr/share/doc/python3.11/html"


def build_crawl(out: Path, pages: list[Path], files: int, copies: int) -> tuple[int, int]:
    """Write the crawl; (records that are pages, total records)."""
    from tests.helpers import warc_bytes

    records = []
    for c in range(copies):
        for i, p in enumerate(pages):
            url = f"https://docs.bench{c}.example/3/{p.relative_to(HTML).as_posix()}"
            records.append((url, "200 OK", "text/html; charset=utf-8", p.read_bytes(), "response"))
            if i % 50 == 0:
                records.append((url + ".missing", "404 Not Found", "text/html", b"<html><p>no such page</p></html>", "response"))
                records.append((url + ".png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n" + bytes(2000), "response"))
    out.mkdir(parents=True)
    for k in range(files):
        (out / f"crawl-{k:03d}.warc.gz").write_bytes(warc_bytes(records[k::files]))
    return len(pages) * copies, len(records)


def extractor_loop(htmls: list[str]) -> int:
    from brickyard.pipelines.sources.web import extract_text

    return sum(len(extract_text(h, None)[1]) for h in htmls)


def readers_loop(units, max_doc_bytes: int) -> int:
    from brickyard.pipelines.sources.readers import read_unit

    return sum(1 for u in units for _ in read_unit(u, max_doc_bytes, 1 << 40))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=8, help="WARC files the crawl is split into")
    ap.add_argument("--copies", type=int, default=1, help="times each page is in the crawl (distinct URLs)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each plain loop; the best counts")
    args = ap.parse_args()
    if not HTML.is_dir():
        print(f"no HTML pages at {HTML}; run bench/corpora.sh python-doc first", file=sys.stderr)
        return 2

    from brickyard.pipelines.config import PipelineConfig, SourceConfig, SparkSettings
    from brickyard.pipelines.lake.session import get_spark
    from brickyard.pipelines.sources.listing import list_units
    from brickyard.pipelines.stages.ingest import ingest

    pages = sorted(p for p in HTML.rglob("*.html") if "_sources" not in p.parts)
    workdir = Path(tempfile.mkdtemp(prefix="brickyard-bench-web-"))
    try:
        crawl = workdir / "crawl"
        n_pages, n_records = build_crawl(crawl, pages, args.files, args.copies)
        warc_mb = sum(f.stat().st_size for f in crawl.iterdir()) / 1e6
        source = SourceConfig(name="crawl", kind="warc", path=str(crawl), domain="web")
        cfg = PipelineConfig(sources=[source], spark=SparkSettings(ui=False, progress=False))
        units = list_units(cfg, source)

        htmls = [p.read_text(encoding="utf-8") for p in pages] * args.copies
        t_ext, _ = best_of(args.repeat, lambda: extractor_loop(htmls))
        t_read, n_read = best_of(args.repeat, lambda: readers_loop(units, cfg.ingest.max_doc_bytes))
        assert n_read == n_records, (n_read, n_records)

        spark = get_spark(workdir / "lakehouse", cfg.spark, app_name="bench-web")
        warm = workdir / "warm"
        build_crawl(warm, pages[:20], 2, 1)
        ingest(spark, PipelineConfig(sources=[SourceConfig(name="warmup", kind="warc", path=str(warm), domain="web")]))
        t0 = time.perf_counter()
        result = ingest(spark, cfg)
        t_spark = time.perf_counter() - t0
        # the fixed cost of a run (listing, Delta commits, lineage): the same job over one small file
        one = workdir / "one"
        build_crawl(one, pages[:1], 1, 1)
        t0 = time.perf_counter()
        ingest(spark, PipelineConfig(sources=[SourceConfig(name="one", kind="warc", path=str(one), domain="web")]))
        t_fixed = time.perf_counter() - t0
        cores = spark.sparkContext.defaultParallelism
        spark.stop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    ext_rps = n_pages / t_ext
    ext_mbps = warc_mb * n_pages / n_records / t_ext  # the WARC bytes of the pages alone, roughly
    print(f"crawl: {len(pages)} HTML pages x {args.copies} = {n_pages} pages, {n_records} records in {args.files} "
          f"gzipped WARC files, {warc_mb:.1f} MB; {os.cpu_count()} cores here, Spark uses {cores}")
    print(f"ingest: {result.rows_out} documents, {result.rows_quarantined} quarantined "
          f"({result.rows_in} records in = documents + quarantined)")
    print(f"extractor (trafilatura, plain loop, 1 core)  {ext_rps:8.1f} pages/s   {ext_mbps:6.2f} MB/s of WARC   {t_ext:.1f} s")
    print(f"readers   (read_warc, plain loop, 1 core)    {n_records / t_read:8.1f} records/s {warc_mb / t_read:6.2f} MB/s of WARC"
          f"   {t_read:.1f} s")
    print(f"spark     (ingest job, {cores} cores)              {n_records / t_spark:8.1f} records/s {warc_mb / t_spark:6.2f} MB/s of WARC"
          f"   {t_spark:.1f} s")
    print(f"          of which the fixed cost of any run (one small file): {t_fixed:.1f} s")
    print(f"ratio readers / extractor (1 core, pages/s):                 {t_ext / t_read:.2f}")
    print(f"ratio spark / (extractor x {cores} cores) (pages/s):              {t_ext / t_spark / cores:.2f}")
    print(f"ratio spark beyond the fixed cost / (extractor x {cores} cores):  {t_ext / max(t_spark - t_fixed, 1e-9) / cores:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
