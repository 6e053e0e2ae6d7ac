"""DBRX's two headline claims, tested at toy scale on real data, start to finish in one command.

    bench/corpora.sh scale                                    once: the corpora (see bench/scale.py)
    .venv/bin/python bench/experiments/dbrx_claims.py         about an hour on 2 cores
    .venv/bin/python bench/experiments/dbrx_claims.py --smoke a few steps on the sample's files

DBRX's authors say (1) their curated data was at least twice as good token for token as their
earlier data, and (2) their fine-grained MoE (16 experts, top-4) was about twice as FLOP-efficient
as dense models. This experiment asks both questions of brickyard's own pipeline.

Data. A deterministic selection (by a hash of each path) of the scale benchmark's pool, about
`--mb` MB: text (the kernel's docs, twice over as two byte-identical sources; the Python docs; man
pages in 12 languages; Shakespeare and Milton) and code (Go, Rust, npm bundles, the Python standard
library and installed packages). A further `HOLDOUT` share of the files of the high-quality sources
(`VALIDATION_SOURCES`) is held out of training. Two lakehouses are built from the training files:
- curated: ingest, curate (language, licence, heuristic rules, PII), dedup, tokenize, export;
- raw: ingest, tokenize (`tokenize.table: bronze.documents`), export: no curation, no dedup.
Both export the same curriculum (`claims`: one stream of every training source, one phase) at the
same token budget, so both runs read the same number of tokens in samples of seq_len + 1.
The held-out files go through the curated lakehouse as sources of their own (`heldout_*`), so they
are curated and deduplicated with everything else but never exported for training. The validation
set is made of those that survive curation and dedup, minus any that is an exact (normalized text)
or MinHash-LSH near duplicate (shares a band at the dedup threshold's banding) of any raw or
curated training document; half its samples are text and half code, each document giving at most
one sample's worth of its first tokens.

Runs (`brickyard train`, one process each, the same seeds, steps and batch):
- moe-curated: the MoE on the curated export    claim 1 and claim 2
- moe-raw: the same MoE on the raw export       claim 1
- dense-active: a dense GLU model with the MoE's active parameters, on the curated export
- dense-total: a dense GLU model with the MoE's total parameters, on the curated export
Each logs `val_loss` and `train_flops` (6 x active parameters + attention, per token) at fixed
steps to MLflow (`<workdir>/mlflow.db`, experiment `dbrx-claims`).

Ratios (per seed, then mean and spread over the seeds):
- claim 1: tokens the curated run needs to reach the raw run's final validation loss / the raw
  run's tokens (linear interpolation between validations; DBRX's claim reads as 0.5 or less);
- claim 2: training FLOPs the MoE needs to reach a dense model's final validation loss / that
  dense model's FLOPs (DBRX's claim reads as about 0.5).
Both are a cost ratio at equal loss. When the run being measured never comes down to the
baseline's final loss, the ratio is read the other way round: all it spent over what the baseline
spent to reach the measured run's final loss (a ratio above 1: the baseline was the cheaper).
Neither reaching the other's end gives no ratio ("not reached").

Output in the workdir: results.md (the table, the settings, the table versions, the limits),
results.json, claim1.png, claim2.png, and an MLflow run `summary` holding all of them. Rerunning
reuses what exists: the lakehouses are incremental, and a finished training run is not repeated.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from scale import Part, link_file, pool, pool_files, taken  # noqa: E402

EXPERIMENT = "dbrx-claims"
HOLDOUT = 0.05  # share of the validation sources' files held out of training
VALIDATION_SOURCES = {"text": ("python_doc", "linux_doc", "shakespeare"), "code": ("python_stdlib", "go", "rust")}
TEXT_SHARE = 0.55  # of --mb; the rest is code, split evenly over the code parts


@dataclass(frozen=True)
class Setup:
    """Everything that sizes the experiment (the full run, or the smoke run's few steps)."""

    mb: float
    seq_len: int
    steps: int
    global_batch: int
    micro_batch: int
    eval_every: int
    val_samples: int
    seeds: tuple[int, ...]
    lr: float
    d_model: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    expert_ffn: int  # each of the MoE's 16 experts; the dense models are 4x (active) and 16x (total) this wide
    holdout: float = HOLDOUT


FULL = Setup(mb=200, seq_len=256, steps=48, global_batch=16, micro_batch=8, eval_every=8, val_samples=64, seeds=(0, 1),
             lr=3e-3, d_model=128, n_layers=4, n_heads=4, n_kv_heads=2, expert_ffn=128)
SMOKE = Setup(mb=3, seq_len=64, steps=4, global_batch=4, micro_batch=4, eval_every=2, val_samples=8, seeds=(0,),
              lr=3e-3, d_model=32, n_layers=1, n_heads=2, n_kv_heads=1, expert_ffn=16, holdout=0.3)

ARMS = {  # name: (export, n_experts, top_k, expert_ffn as a multiple of Setup.expert_ffn)
    "moe-curated": ("curated", 16, 4, 1),
    "moe-raw": ("raw", 16, 4, 1),
    "dense-active": ("curated", 1, 1, 4),
    "dense-total": ("curated", 1, 1, 16),
}


def smoke_pool() -> list[Part]:
    """The built-in sample's own roots: the standard library (code) and installed packages'
    READMEs (text), so the smoke run needs no download."""
    paths = sysconfig.get_paths()
    return [
        Part("package_docs", "text", "docs", Path(paths["purelib"]), ("*.dist-info/METADATA",)),
        Part("python_stdlib", "code", "code", Path(paths["stdlib"]), ("*.py",), "PSF-2.0", ("site-packages/*",)),
    ]


def say(*a) -> None:
    print(*a, flush=True)


# ---------------------------------------------------------------------------------------------
# Corpus and configs
# ---------------------------------------------------------------------------------------------

def fractions(parts: list[Part], listing: dict[str, list[tuple[str, int]]], mb: float) -> dict[str, float]:
    """Per part, the share of its files taken: text parts alike up to TEXT_SHARE of `mb`, the
    code parts an even split of the rest (all of a part smaller than its split)."""
    size = {p.name: sum(b for _, b in listing[p.name]) for p in parts}
    text = [p.name for p in parts if p.kind == "text"]
    code = [p.name for p in parts if p.kind == "code"]
    out = {}
    text_total = sum(size[n] for n in text)
    for n in text:
        out[n] = min(1.0, TEXT_SHARE * mb * 1e6 / max(text_total, 1))
    for n in code:
        out[n] = min(1.0, (1 - TEXT_SHARE) * mb * 1e6 / len(code) / max(size[n], 1))
    return out


def stage_corpus(parts: list[Part], setup: Setup, out: Path, validation_sources: set[str]) -> dict:
    """Hard-link the selection under out/train/<part>/ and out/heldout/<part>/ (once). Returns the
    megabytes staged per part and side."""
    from brickyard.pipelines.sources.readers import LICENSE_FILE

    done = out / "staged.json"
    if done.exists():
        staged = json.loads(done.read_text())
        if (staged.get("mb"), staged.get("holdout")) != (setup.mb, setup.holdout):
            raise SystemExit(f"{out.parent} holds a corpus of {staged.get('mb')} MB (held out: {staged.get('holdout')}); "
                             f"pass another --workdir for {setup.mb} MB")
        return staged
    shutil.rmtree(out, ignore_errors=True)
    listing = {p.name: pool_files(p) for p in parts if p.root.is_dir()}
    parts = [p for p in parts if p.name in listing]
    frac = fractions(parts, listing, setup.mb)
    staged: dict = {"mb": setup.mb, "holdout": setup.holdout, "train": {}, "heldout": {}}
    for p in parts:
        licences = [str(f.relative_to(p.root)) for f in p.root.rglob("*") if LICENSE_FILE.match(f.name) and f.is_file()] \
            if p.kind == "code" else []
        for rel, n in listing[p.name]:
            if not taken(p.name, rel, frac[p.name]):
                continue
            side = "heldout" if p.name in validation_sources and taken("heldout/" + p.name, rel, setup.holdout) else "train"
            link_file(p.root / rel, out / side / p.name / rel)
            staged[side][p.name] = staged[side].get(p.name, 0) + n / 1e6
        for side in ("train", "heldout"):
            if (out / side / p.name).is_dir():
                for rel in licences:
                    link_file(p.root / rel, out / side / p.name / rel)
    done.write_text(json.dumps(staged, indent=1))
    return staged


def write_yaml(path: Path, data: dict) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def pipeline_configs(work: Path, parts: list[Part], setup: Setup) -> tuple[Path, Path]:
    """The curated and the raw lakehouse's pipeline configs, and the curriculum both export."""
    from brickyard.pipelines.config import PERMISSIVE_LICENSES

    corpus = work / "corpus"
    train_names = [p.name for p in parts if (corpus / "train" / p.name).is_dir()]

    def sources(side: str, prefix: str = "") -> list[dict]:
        return [{"name": prefix + p.name, "kind": p.kind, "domain": p.domain, "path": str(corpus / side / p.name),
                 "include": list(p.include), "exclude": list(p.exclude)} | ({"license": p.license} if p.license else {})
                for p in parts if (corpus / side / p.name).is_dir()]

    write_yaml(work / "curriculum.yaml", {
        "name": "claims", "seq_len": setup.seq_len, "tokens": setup.steps * setup.global_batch * setup.seq_len, "seed": 17,
        "streams": {"train": {"sources": train_names}},
        "phases": [{"name": "all", "share": 1.0, "mix": {"train": 1.0}}],
    })
    common = {
        "spark": {"ui": False, "progress": False, "driver_memory": "4g"},
        # most site-packages trees keep their licence in a dist-info folder beside the code
        "curate": {"licenses": PERMISSIVE_LICENSES + ["NOASSERTION", "LicenseRef-unknown"]},
        "export": {"curriculum": str(work / "curriculum.yaml")},
    }
    curated = write_yaml(work / "curated.yaml", {"lakehouse": str(work / "curated"), **common,
                                                 "sources": sources("train") + sources("heldout", "heldout_")})
    raw = write_yaml(work / "raw.yaml", {"lakehouse": str(work / "raw"), **common, "tokenize": {"table": "bronze.documents"},
                                         "sources": sources("train")})
    return curated, raw


def brickyard(*args: str, env: dict) -> None:
    cmd = [sys.executable, "-m", "brickyard", *args]
    say("$ brickyard " + " ".join(args))
    t = time.time()
    r = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = "\n".join(r.stdout.splitlines()[-12:])
    if r.returncode:
        raise SystemExit(f"brickyard {' '.join(args)} failed (exit {r.returncode}):\n{r.stdout[-4000:]}")
    say(f"  done in {time.time() - t:.0f}s; last lines:\n    " + tail.replace("\n", "\n    "))


def newest_export(lakehouse: Path) -> Path:
    link = lakehouse / "exports" / "claims"
    if not link.exists():
        raise SystemExit(f"{lakehouse} has no export of curriculum claims")
    return link.resolve()


# ---------------------------------------------------------------------------------------------
# Validation set
# ---------------------------------------------------------------------------------------------

def normalized_sha(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()


def band_rows(texts: list[str], threshold: float, num_perm: int = 128, ngram: int = 5) -> list[list[bytes] | None]:
    """Per text, its LSH band values (the dedup stage's shingles, signatures and banding at
    `threshold`): two texts that share one are near-duplicate candidates. None for a text with no
    shingle (no words)."""
    import numpy as np
    from brickyard.pipelines.text.minhash import batch_shingle_hashes, lsh_params, signatures

    bands, rows = lsh_params(threshold, num_perm)
    out: list[list[bytes] | None] = []
    for i in range(0, len(texts), 2000):
        hashes = batch_shingle_hashes(texts[i:i + 2000], ngram)
        keep = [h for h in hashes if len(h)]
        sig = np.ascontiguousarray(signatures(keep, num_perm)) if keep else None
        j = 0
        for h in hashes:
            if not len(h):
                out.append(None)
                continue
            out.append([sig[j, b * rows:(b + 1) * rows].tobytes() for b in range(bands)])
            j += 1
    return out


def build_validation(work: Path, setup: Setup, threshold: float, sources: dict[str, tuple[str, ...]]) -> dict:
    """val.npy (samples, seq_len + 1) and val.json (what is in it, what was dropped and why)."""
    import numpy as np
    from brickyard.pipelines.lake.lakeview import Lakeview

    out = work / "val.npy"
    made_for = {"seq_len": setup.seq_len, "val_samples": setup.val_samples, "micro_batch": setup.micro_batch}
    if out.exists() and (work / "val.json").exists():
        info = json.loads((work / "val.json").read_text())
        if info.get("made_for") == made_for:  # the lakehouses only grow; the held-out files are fixed
            return info
    cur, raw = Lakeview(work / "curated"), Lakeview(work / "raw")
    wanted = [f"heldout_{s}" for kind in sources.values() for s in kind]
    names = ", ".join(f"'{s}'" for s in wanted)
    held = cur.sql(f"SELECT t.doc_id, t.source, t.domain, t.tokens, d.text FROM gold.tokens t JOIN gold.documents d "
                   f"ON t.doc_id = d.doc_id WHERE t.source IN ({names}) ORDER BY t.doc_id")
    train_texts = cur.sql("SELECT text FROM gold.documents WHERE source NOT LIKE 'heldout\\_%'")["text"].tolist()
    raw_texts = raw.sql("SELECT text FROM bronze.documents")["text"].tolist()
    say(f"validation: {len(held)} held-out documents survived curation and dedup; checking them against "
        f"{len(raw_texts):,} raw and {len(train_texts):,} curated training documents")
    seen_sha = {normalized_sha(t) for t in raw_texts} | {normalized_sha(t) for t in train_texts}
    seen_bands: list[set[bytes]] = []
    for keys in band_rows(raw_texts + train_texts, threshold):
        for b, key in enumerate(keys or ()):
            if b == len(seen_bands):
                seen_bands.append(set())
            seen_bands[b].add(key)
    del raw_texts, train_texts
    dropped = {"exact": 0, "near": 0}
    keep_rows = []
    for (_, row), keys in zip(held.iterrows(), band_rows(held["text"].tolist(), threshold), strict=True):
        if normalized_sha(row["text"]) in seen_sha:
            dropped["exact"] += 1
        elif keys and any(key in seen_bands[b] for b, key in enumerate(keys) if b < len(seen_bands)):
            dropped["near"] += 1
        else:
            keep_rows.append(row)
    # half text, half code; documents in a fixed order (doc_id is a hash); each gives at most one
    # sample's worth of its first tokens, so the set spreads over many documents
    width = setup.seq_len + 1
    per_kind = setup.val_samples // 2
    samples, composition = [], {}
    for srcs in sources.values():
        stream: list[int] = []
        for row in keep_rows:
            if row["source"].removeprefix("heldout_") not in srcs:
                continue
            if len(stream) >= per_kind * width:
                break
            piece = list(row["tokens"][:width])
            stream.extend(piece)
            composition.setdefault(row["source"], {"documents": 0, "tokens": 0})
            composition[row["source"]]["documents"] += 1
            composition[row["source"]]["tokens"] += len(piece)
        n = min(per_kind, len(stream) // width)
        samples.extend(np.asarray(stream[:n * width], dtype=np.int32).reshape(n, width))
    samples = samples[:len(samples) // setup.micro_batch * setup.micro_batch]  # whole micro-batches: all are scored
    if not samples:
        raise SystemExit("validation: too few held-out documents are left for one micro-batch; raise --mb or HOLDOUT")
    arr = np.stack(samples)
    np.save(out, arr)
    info = {"samples": int(arr.shape[0]), "tokens": int(arr.size), "held_out_documents": int(len(held)),
            "dropped_duplicates": dropped, "composition": composition, "threshold": threshold, "made_for": made_for}
    (work / "val.json").write_text(json.dumps(info, indent=1))
    say(f"validation: {arr.shape[0]} samples of {width} tokens from {sum(c['documents'] for c in composition.values())} "
        f"documents; dropped {dropped['exact']} exact and {dropped['near']} near duplicates of training documents")
    return info


# ---------------------------------------------------------------------------------------------
# Training runs
# ---------------------------------------------------------------------------------------------

def model_overrides(setup: Setup, arm: str) -> dict:
    _, experts, top_k, width = ARMS[arm]
    return {"d_model": setup.d_model, "n_layers": setup.n_layers, "n_heads": setup.n_heads, "n_kv_heads": setup.n_kv_heads,
            "max_seq_len": setup.seq_len, "n_experts": experts, "top_k": top_k, "expert_ffn": setup.expert_ffn * width,
            # one expert: the balance loss is a constant; leave it out of the loss
            "lb_loss_coef": 0.05 if experts > 1 else 0.0}


def setup_id(setup: Setup) -> str:
    """Names the settings a run was made with, so a rerun with other settings never mixes runs."""
    return hashlib.sha256(json.dumps(setup.__dict__, sort_keys=True, default=list).encode()).hexdigest()[:12]


def train_config(work: Path, setup: Setup, arm: str, seed: int, exports: dict[str, Path]) -> Path:
    name = f"{arm}-s{seed}"
    side = ARMS[arm][0]
    (work / "runs").mkdir(exist_ok=True)
    return write_yaml(work / "runs" / f"{name}.yaml", {
        "name": name,
        "lakehouse": str(work / side),
        "data": {"export": str(exports[side]), "cache": str(work / "cache" / side)},
        "model": {"preset": "tiny", "overrides": model_overrides(setup, arm)},
        "global_batch_size": setup.global_batch,
        "micro_batch_size": setup.micro_batch,
        "seed": seed,
        "optim": {"lr": setup.lr, "min_lr": setup.lr / 10, "warmup_steps": max(1, setup.steps // 8)},
        "checkpoint": {"keep": 1},  # <lakehouse>/checkpoints/<name>-<config identity>: other settings, other folder
        "eval": {"data": str(work / "val.npy"), "every_steps": setup.eval_every},
        "tracking": {"experiment": EXPERIMENT, "run_name": name, "log_every": max(1, setup.steps // 16),
                     "tags": {"arm": arm, "seed": str(seed), "export": side, "setup": setup_id(setup)}},
    })


def run_training(config: Path, env: dict) -> None:
    brickyard("train", "--config", str(config), env=env)


def curves(tracking_uri: str, setup: Setup) -> dict[str, dict]:
    """{run name: {tokens: [...], flops: [...], val_loss: [...], run_id}} from MLflow: the newest
    finished run of each name made with these settings."""
    import mlflow
    from brickyard.model.presets import flops_per_token, get_preset

    client = mlflow.MlflowClient(tracking_uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    out = {}
    for arm in ARMS:
        fpt = flops_per_token(get_preset("tiny", **model_overrides(setup, arm)), setup.seq_len)
        for seed in setup.seeds:
            name = f"{arm}-s{seed}"
            runs = client.search_runs([exp.experiment_id], f"attributes.run_name = '{name}' AND attributes.status = 'FINISHED' "
                                      f"AND tags.setup = '{setup_id(setup)}'", order_by=["attributes.start_time DESC"], max_results=1)
            if not runs:
                raise SystemExit(f"no finished MLflow run named {name} in experiment {EXPERIMENT}")
            hist = sorted(client.get_metric_history(runs[0].info.run_id, "val_loss"), key=lambda m: m.step)
            by_step = {m.step: m.value for m in hist}  # a resumed run may log a step twice: the last wins
            steps = sorted(by_step)
            tokens = [s * setup.global_batch * setup.seq_len for s in steps]
            out[name] = {"arm": arm, "seed": seed, "run_id": runs[0].info.run_id, "steps": steps, "tokens": tokens,
                         "flops": [t * fpt for t in tokens], "val_loss": [by_step[s] for s in steps], "flops_per_token": fpt}
    return out


def reach(xs: list[float], losses: list[float], target: float) -> float | None:
    """The first x at which the curve (linear between points) comes down to `target`; None if never."""
    for i, (x, loss) in enumerate(zip(xs, losses, strict=True)):
        if loss <= target:
            if i == 0:
                return x
            x0, l0 = xs[i - 1], losses[i - 1]
            return x0 + (x - x0) * (l0 - target) / (l0 - loss)
    return None


def ratio(curve: dict, baseline: dict, axis: str) -> float | None:
    """`curve`'s cost over `baseline`'s at equal validation loss, along `axis` (tokens or FLOPs):
    what `curve` spends to reach the baseline's final loss over what the baseline spent; when
    `curve` never gets there, what `curve` spent in all over what the baseline spent to reach
    `curve`'s final loss (then above 1). None when neither curve reaches the other's end."""
    at = reach(curve[axis], curve["val_loss"], baseline["val_loss"][-1])
    if at is not None:
        return at / baseline[axis][-1]
    back = reach(baseline[axis], baseline["val_loss"], curve["val_loss"][-1])
    return None if not back else curve[axis][-1] / back


def spread(values: list[float | None]) -> dict:
    got = [v for v in values if v is not None]
    return {"per_seed": values, "mean": sum(got) / len(got) if got else None, "min": min(got) if got else None,
            "max": max(got) if got else None, "reached": f"{len(got)}/{len(values)}"}


def fmt(v: float | None, digits: int = 3) -> str:
    return "not reached" if v is None else f"{v:.{digits}f}"


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def plots(work: Path, runs: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colours = {"moe-curated": "tab:blue", "moe-raw": "tab:red", "dense-active": "tab:orange", "dense-total": "tab:green"}
    made = []
    for fname, arms, axis, label in (("claim1.png", ("moe-curated", "moe-raw"), "tokens", "tokens seen"),
                                     ("claim2.png", ("moe-curated", "dense-active", "dense-total"), "flops", "training FLOPs")):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for c in runs.values():
            if c["arm"] in arms:
                ax.plot(c[axis], c["val_loss"], color=colours[c["arm"]], marker="o", markersize=3,
                        linestyle="-" if c["seed"] == min(r["seed"] for r in runs.values()) else "--",
                        label=f"{c['arm']} (seed {c['seed']})")
        ax.set_xlabel(label)
        ax.set_ylabel("validation loss (nats/token)")
        ax.set_title("Claim 1: curated vs raw data" if fname == "claim1.png" else "Claim 2: MoE vs dense")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(work / fname, dpi=120)
        plt.close(fig)
        made.append(work / fname)
    return made


def report(work: Path, setup: Setup, runs: dict, val: dict, staged: dict, exports: dict[str, Path], seconds: float) -> dict:
    from brickyard.model.presets import get_preset, param_counts

    claim1 = spread([ratio(runs[f"moe-curated-s{s}"], runs[f"moe-raw-s{s}"], "tokens") for s in setup.seeds])
    claim2 = {dense: spread([ratio(runs[f"moe-curated-s{s}"], runs[f"{dense}-s{s}"], "flops") for s in setup.seeds])
              for dense in ("dense-active", "dense-total")}
    manifests = {side: json.loads((p / "manifest.json").read_text()) for side, p in exports.items()}
    params = {arm: param_counts(get_preset("tiny", **model_overrides(setup, arm))) for arm in ARMS}
    results = {"setup": setup.__dict__ | {"seeds": list(setup.seeds)}, "claim1_token_ratio": claim1, "claim2_flop_ratio": claim2,
               "runs": runs, "validation": val, "staged_mb": staged, "params": params, "seconds": round(seconds),
               "exports": {side: {"export_id": m["export_id"], "tables": m.get("tables"), "path": exports[side].name}
                           for side, m in manifests.items()}}
    (work / "results.json").write_text(json.dumps(results, indent=1, default=str))

    def final(arm: str) -> str:
        vals = [runs[f"{arm}-s{s}"]["val_loss"][-1] for s in setup.seeds]
        return " / ".join(f"{v:.3f}" for v in vals)

    tokens = setup.steps * setup.global_batch * setup.seq_len
    scored = val["samples"] // setup.micro_batch * setup.micro_batch  # the trainer scores whole micro-batches
    lines = [
        "# DBRX's claims at toy scale: results",
        "",
        f"Seeds {', '.join(map(str, setup.seeds))}; {setup.steps} steps of {setup.global_batch} x {setup.seq_len} tokens "
        f"({tokens:,} training tokens per run); validation on {scored} held-out samples "
        f"({scored * (setup.seq_len + 1):,} tokens). Whole experiment: {seconds / 60:.1f} min." + ("" if seconds else " (Report redone from MLflow.)"),
        "Ratios are cost at equal validation loss (below 1: the MoE, or curated data, is the cheaper; above 1: read the "
        "other way round, see the module doc).",
        "",
        "| comparison | ratio per seed | mean | spread (min-max) | DBRX's claim |",
        "|---|---|---|---|---|",
        f"| claim 1: curated tokens to reach raw's final loss / raw tokens | {' / '.join(fmt(v) for v in claim1['per_seed'])} "
        f"| {fmt(claim1['mean'])} | {fmt(claim1['min'])}-{fmt(claim1['max'])} | <= 0.5 |",
    ]
    for dense, r in claim2.items():
        lines.append(f"| claim 2: MoE FLOPs to reach {dense}'s final loss / {dense} FLOPs | "
                     f"{' / '.join(fmt(v) for v in r['per_seed'])} | {fmt(r['mean'])} | {fmt(r['min'])}-{fmt(r['max'])} | about 0.5 |")
    lines += ["", "| run | export | experts (top-k) | expert FFN | params total / active | FLOPs per token | final val loss per seed |",
              "|---|---|---|---|---|---|---|"]
    for arm, (side, e, k, w) in ARMS.items():
        p = params[arm]
        lines.append(f"| {arm} | {side} | {e} ({k}) | {setup.expert_ffn * w} | {p['total'] / 1e6:.2f}M / {p['active'] / 1e6:.2f}M "
                     f"| {runs[f'{arm}-s{setup.seeds[0]}']['flops_per_token'] / 1e6:.1f}M | {final(arm)} |")
    lines += [
        "",
        "Data: " + ", ".join(f"{k} {v:.1f} MB" for k, v in sorted(staged["train"].items())) + " for training; held out: "
        + ", ".join(f"{k} {v:.2f} MB" for k, v in sorted(staged["heldout"].items())) + ".",
        f"Validation: {json.dumps(val['composition'])}; dropped as duplicates of training documents: "
        f"{val['dropped_duplicates']}.",
        "Exports: " + "; ".join(f"{side}: `{m['export_id']}` (tables {json.dumps(m.get('tables'))})" for side, m in manifests.items()) + ".",
        "",
        "## Limits of this scale",
        "- The models are tiny (see the table) and see a few hundred thousand tokens each, far short of",
        "  compute-optimal training; DBRX's claims were measured on billions of parameters and trillions of tokens.",
        "- The 100k-entry vocabulary's embedding and output head hold most parameters and most of each",
        "  token's FLOPs, so the FFN, the only part an MoE changes, is a small share of the compute here.",
        "- The validation set is held-out text and code of the sources judged high quality; a model trained on",
        "  curated data is closer to it by construction. That is the question claim 1 asks, but it is one",
        "  validation set, not a benchmark suite.",
        "- Two seeds vary the initial weights only; the exports and the sample order are fixed.",
        "",
        "Plots: claim1.png (validation loss over tokens), claim2.png (validation loss over training FLOPs).",
    ]
    (work / "results.md").write_text("\n".join(lines) + "\n")
    return results


def log_summary(tracking_uri: str, work: Path, results: dict, files: list[Path]) -> str:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name="summary") as run:
        mlflow.set_tags({"kind": "summary"})
        mlflow.log_params({k: v for k, v in results["setup"].items()})
        metrics = {}
        for key, r in (("claim1_token_ratio", results["claim1_token_ratio"]),
                       *((f"claim2_flop_ratio_vs_{d}", r) for d, r in results["claim2_flop_ratio"].items())):
            for stat in ("mean", "min", "max"):
                if r[stat] is not None:
                    metrics[f"{key}_{stat}"] = r[stat]
        mlflow.log_metrics(metrics)
        for f in files:
            mlflow.log_artifact(str(f))
        return run.info.run_id


# ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", help="where everything goes (default .cache/experiments/dbrx-claims, or -smoke)")
    ap.add_argument("--smoke", action="store_true", help="a few steps on the sample's files (what make test runs)")
    ap.add_argument("--mb", type=float, help="megabytes of source text (default 200)")
    ap.add_argument("--steps", type=int, help="training steps per run (default 48)")
    ap.add_argument("--seeds", help="comma-separated seeds (default 0,1)")
    ap.add_argument("--report-only", action="store_true", help="only redo the ratios, the tables and the plots from the "
                    "workdir's MLflow runs")
    args = ap.parse_args(argv)
    setup = SMOKE if args.smoke else FULL
    if args.mb:
        setup = replace(setup, mb=args.mb)
    if args.steps:
        setup = replace(setup, steps=args.steps)
    if args.seeds:
        setup = replace(setup, seeds=tuple(int(s) for s in args.seeds.split(",")))
    if setup.steps < 1 or setup.mb <= 0 or not setup.seeds:
        ap.error("--steps and --mb must be positive and --seeds must name at least one seed")
    work = Path(args.workdir or REPO / ".cache" / "experiments" / (EXPERIMENT + ("-smoke" if args.smoke else ""))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    parts = smoke_pool() if args.smoke else pool()
    missing = [p.name for p in parts if not p.root.is_dir()]
    if missing and not args.smoke:
        raise SystemExit(f"corpora missing ({', '.join(missing)}); fetch them with bench/corpora.sh scale")
    # the smoke run's pool has one text part, the packages' READMEs: it stands in for the high-quality text
    val_sources = {"text": ("package_docs",), "code": ("python_stdlib",)} if args.smoke else VALIDATION_SOURCES
    staged = stage_corpus(parts, setup, work / "corpus", {s for kind in val_sources.values() for s in kind})
    say(f"corpus: {sum(staged['train'].values()):.1f} MB for training, {sum(staged['heldout'].values()):.2f} MB held out")
    curated_cfg, raw_cfg = pipeline_configs(work, parts, setup)

    tracking_uri = f"sqlite:///{work / 'mlflow.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BRICKYARD_"))}
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    if not args.report_only:
        brickyard("run", "--config", str(curated_cfg), "--until", "export", env=env)
        brickyard("run", "--config", str(raw_cfg), "--until", "export", env=env)
    exports = {"curated": newest_export(work / "curated"), "raw": newest_export(work / "raw")}

    from brickyard.pipelines.config import load_config

    val = build_validation(work, setup, load_config(curated_cfg).dedup.threshold, val_sources)
    if not args.report_only:
        for seed in setup.seeds:
            for arm in ARMS:
                run_training(train_config(work, setup, arm, seed, exports), env)
    runs = curves(tracking_uri, setup)
    results = report(work, setup, runs, val, staged, exports, 0 if args.report_only else time.time() - t0)
    files = plots(work, runs)
    summary = log_summary(tracking_uri, work, results, [work / "results.md", work / "results.json", *files])
    say("\n" + (work / "results.md").read_text())
    say(f"results: {work / 'results.md'}; MLflow: {tracking_uri}, experiment {EXPERIMENT}, summary run {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
