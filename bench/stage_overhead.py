"""What a stage costs beyond its work, before and after a change, on the same machine in the same run.

    python bench/stage_overhead.py                 # this checkout against the commit before the stage frame
    python bench/stage_overhead.py --before REF    # against any other commit (checked out in a worktree)

For each side, in its own processes (the other side's code never loaded):
1. the data stages of `make demo` from an empty lakehouse: `brickyard run --until export` on the
   demo's sources in a fresh process, timed whole and per stage (from the stage lines it prints);
2. in one warm driver on that lakehouse: each stage once more with nothing new (a no-op), after a
   first no-op pass that warms the session (Python workers, the encoder, the classifier);
3. in the same driver: one new document in a source, then each stage on that increment;
4. then the same document changed (a paragraph added), and each stage again: dedup withdraws the
   placed text and places the new one.

It prints one table: seconds per stage and side, and after / before. The goals of the stage-frame
work: a no-op stage under 2 s, a one-document increment under 8 s per stage, the demo's data stages
under 60 s. The machines are shared and noisy: compare the two sides of one run, not runs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ["ingest", "curate", "decontaminate", "quality", "dedup", "tokenize", "export"]  # a side without a stage shows "-"
LINE = re.compile(r"^(\w+): (?:done|succeeded|noop|skipped)\b.*? in (\d+(?:\.\d+)?)s", re.M)


def pipeline_yaml(tree: Path, work: Path) -> str:
    """The demo's pipeline (its sample parts, rules and curriculum) plus a one-file text source."""
    import yaml

    cfg = yaml.safe_load((tree / "configs" / "demo.yaml").read_text())
    cfg["lakehouse"] = str(work / "lh")
    cfg["spark"] = {"master": "local[*]", "driver_memory": "2g", "ui": False}
    cfg["export"]["curriculum"] = str(tree / "configs" / "curriculum" / "demo.yaml")
    cfg.pop("train", None)
    cfg["sources"].append({"name": "increment", "kind": "text", "path": str(work / "increment"), "domain": "docs"})
    return yaml.safe_dump(cfg, sort_keys=False)


def document(n: int) -> str:
    """A real English paragraph (the interpreter's own licence text), made distinct by `n`."""
    import sysconfig

    text = (Path(sysconfig.get_paths()["stdlib"]) / "LICENSE.txt").read_text()
    return f"Note {n} on the licence history.\n\n" + text[1000 * n: 1000 * n + 3000]


# ---------------------------------------------------------------------------------------------
# One side, in its own processes
# ---------------------------------------------------------------------------------------------


def flat(tree: Path) -> bool:
    """The layout before the stage frame: top-level `pipelines` with one module per stage. (Decided
    by the tree, not by trying imports: the installed package maps `brickyard.pipelines` to this
    checkout, so an import attempt could load the other side's code.)"""
    return (tree / "pipelines" / "ingest.py").exists()


def stage_functions(tree: Path):
    """The stage entry points of the tree's version: (name -> callable(spark, cfg))."""
    decontaminate = None
    if flat(tree):
        from pipelines import curate, dedup, export, ingest, quality, tokenize
        from pipelines.curriculum import load_curriculum
    else:
        from brickyard.pipelines.curriculum import load_curriculum
        from brickyard.pipelines.stages import curate, dedup, export, ingest, quality, tokenize
        if (tree / "pipelines" / "stages" / "decontaminate.py").exists():
            from brickyard.pipelines.stages import decontaminate

    if flat(tree):  # the old functions print unless told to be quiet, and quality takes the lakehouse
        q = {"quiet": True}
        train = lambda s, c: quality.train(s, c, Path(c.lakehouse), quiet=True)  # noqa: E731
    else:  # the stage frame logs through `logging`, silent unless a handler is set
        q = {}
        train = lambda s, c: quality.train(s, c)  # noqa: E731
        import brickyard.pipelines as pipelines_package

        assert Path(pipelines_package.__file__).resolve().parent.parent == tree.resolve(), "timing another checkout's code"
    out = {
        "ingest": lambda s, c: ingest.ingest(s, c, **q),
        "curate": lambda s, c: curate.curate(s, c, **q),
        "decontaminate": decontaminate and (lambda s, c: decontaminate.decontaminate(s, c)),
        "quality": train,
        "dedup": lambda s, c: dedup.dedup(s, c, **q),
        "tokenize": lambda s, c: tokenize.tokenize(s, c, **q),
        "export": lambda s, c: export.export(s, c, load_curriculum(c.resolve(c.export.curriculum)), **q),
    }
    return {k: f for k, f in out.items() if f is not None}


def status_of(result) -> str:
    if hasattr(result, "status"):
        return result.status
    return result[1] if isinstance(result, tuple) else "?"


def drive(tree: Path, work: Path) -> dict:
    if flat(tree):
        from pipelines.session import get_spark

        from pipelines.config import load_config
    else:
        from brickyard.pipelines.config import load_config
        from brickyard.pipelines.lake.session import get_spark

    cfg_path = work / "pipeline.yaml"
    cfg = load_config(cfg_path)
    cfg.lakehouse = str(work / "lh")
    spark = get_spark(Path(cfg.lakehouse), cfg.spark)
    stages = stage_functions(tree)
    out: dict = {"noop": {}, "increment": {}, "change": {}, "status": {}}
    for fn in stages.values():  # warm-up pass: the first no-op of each stage in this driver
        fn(spark, cfg)
    for name, fn in stages.items():
        t = time.perf_counter()
        r = fn(spark, cfg)
        out["noop"][name] = time.perf_counter() - t
        out["status"][f"noop.{name}"] = status_of(r)
    for key, text in (("increment", document(2)), ("change", document(2) + "\n\nA closing paragraph added later.\n")):
        (work / "increment" / "b.txt").write_text(text)
        for name, fn in stages.items():
            t = time.perf_counter()
            r = fn(spark, cfg)
            out[key][name] = time.perf_counter() - t
            out["status"][f"{key}.{name}"] = status_of(r)
    spark.stop()
    return out


OVERLAY = """import os
import brickyard  # the tree's own (first on the path)
# the tree's pipelines/, model/ and training/ as brickyard's subpackages, found before the
# installed package's mapping (which points at the checkout it was installed from)
brickyard.__path__.append(os.environ["BENCH_TREE"])
"""


def overlay(work: Path) -> Path:
    """A folder whose sitecustomize makes `brickyard.*` this side's tree, in every process of the side."""
    folder = work / "overlay"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(OVERLAY)
    return folder


def side(tree: Path, work: Path) -> dict:
    """Build from empty in a fresh `brickyard run`, then the warm-driver timings; for one tree."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "increment").mkdir(parents=True)
    (work / "increment" / "a.txt").write_text(document(1))
    (work / "pipeline.yaml").write_text(pipeline_yaml(tree, work))
    env = {**os.environ, "PYTHONPATH": f"{overlay(work)}{os.pathsep}{tree}", "BENCH_TREE": str(tree)}
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "brickyard", "run", "--config", str(work / "pipeline.yaml"), "--until", "export"],
                       cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    whole = time.perf_counter() - t
    if r.returncode != 0:
        raise SystemExit(f"`brickyard run` failed in {tree}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}")
    build: dict[str, float] = {}  # a stage that runs twice (curate again after a new classifier) adds up
    for m in LINE.finditer(r.stdout):
        if m.group(1) in STAGES:
            build[m.group(1)] = build.get(m.group(1), 0.0) + float(m.group(2))
    d = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--drive", "--tree", str(tree), "--work", str(work)],
                       cwd=tree, env=env, capture_output=True, text=True, timeout=3600)
    if d.returncode != 0:
        raise SystemExit(f"the warm driver failed in {tree}:\n{d.stdout[-3000:]}\n{d.stderr[-3000:]}")
    warm = json.loads(d.stdout.strip().splitlines()[-1])
    return {"build_whole": whole, "build": build, **warm}


def before_tree(ref: str | None, root: Path) -> Path:
    if ref is None:  # the commit before the one that moved the flat pipelines/ into stages/
        moved = subprocess.check_output(["git", "rev-list", "-1", "HEAD", "--", "pipelines/ingest.py"], cwd=REPO, text=True).strip()
        ref = f"{moved}^"
    sha = subprocess.check_output(["git", "rev-parse", ref], cwd=REPO, text=True).strip()
    tree = root / f"tree-{sha[:10]}"
    if not tree.exists():
        subprocess.run(["git", "worktree", "prune"], cwd=REPO, check=True)
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=REPO, check=True, capture_output=True)
    return tree


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", help="the commit to compare with (default: the one before the stage frame)")
    p.add_argument("--workdir", default=str(REPO / ".cache" / "bench" / "stage_overhead"))
    p.add_argument("--drive", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tree", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.drive:
        print(json.dumps(drive(Path(args.tree), Path(args.work))))
        return 0
    root = Path(args.workdir)
    root.mkdir(parents=True, exist_ok=True)
    old_tree = before_tree(args.before, root)
    results = {"before": side(old_tree, root / "before"), "after": side(REPO, root / "after")}
    (root / "results.json").write_text(json.dumps(results, indent=2))
    b, a = results["before"], results["after"]
    rows = [("stage", "no-op before", "no-op after", "ratio", "1 doc before", "1 doc after", "ratio",
             "changed before", "changed after", "ratio", "demo build before", "demo build after")]
    def ratio(k: str, s: str) -> str:
        return f"{a[k][s] / b[k][s]:.2f}" if b[k].get(s) and a[k].get(s) else "-"

    timed = ("noop", "increment", "change")
    for s in STAGES:
        rows.append((s, *[c for k in timed for c in (fmt(b[k].get(s)), fmt(a[k].get(s)), ratio(k, s))],
                     fmt(b["build"].get(s)), fmt(a["build"].get(s))))
    # totals over the stages both sides have, so that the ratio compares like with like
    total = lambda r, k: sum(v for s, v in r[k].items() if s in b[k] and s in a[k])  # noqa: E731
    rows.append(("stages of both", *[c for k in timed for c in (fmt(total(b, k)), fmt(total(a, k)), f"{total(a, k) / total(b, k):.2f}")],
                 fmt(sum(b["build"].values())), fmt(sum(a["build"].values()))))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True))))
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"\ndemo data stages from an empty lakehouse, whole `brickyard run --until export` (JVM start included): "
          f"before {b['build_whole']:.1f}s, after {a['build_whole']:.1f}s ({a['build_whole'] / b['build_whole']:.2f})")
    print(f"outcomes after: {a['status']}")
    print(f"goals: no-op < 2 s per stage: {'met' if max(a['noop'].values()) < 2 else 'not met'}; one-document increment "
          f"< 8 s per stage: {'met' if max(a['increment'].values()) < 8 else 'not met'}; demo data stages < 60 s: "
          f"{'met' if sum(a['build'].values()) < 60 else 'not met'}")
    print(f"results: {root / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
