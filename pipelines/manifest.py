"""An export's manifest: what export writes beside its MDS shards, and what training reads.

The manifest (`manifest.json`, format `brickyard-mds/1`) names the curriculum, the table versions
read, every stream with its shards and checksums, and every phase with the samples it takes from
each stream. This module reads and checks it without Spark: the trainer imports it, never a stage.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import tempfile
import threading
import types
from pathlib import Path

from .errors import BrickyardError

MANIFEST = "manifest.json"
INDEX = "index.json"  # a stream's MDS index
FORMAT = "brickyard-mds/1"


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_manifest(folder: Path, manifest: dict) -> None:
    (Path(folder) / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))


def read_manifest(path: str | Path) -> dict:
    p = Path(path) / MANIFEST
    try:
        return json.loads(p.read_text())
    except FileNotFoundError:
        raise BrickyardError(f"{path} is not an export: it has no {MANIFEST}") from None
    except json.JSONDecodeError as e:
        raise BrickyardError(f"{p} is not valid JSON ({e.msg} at line {e.lineno})") from None


def link_newest(dest: Path, name: str) -> None:
    """Point `<exports root>/<curriculum name>` at `dest`, so a training config can name the newest
    export of a curriculum without its version and hash (replaced atomically)."""
    link = dest.parent / name
    tmp = dest.parent / f".{name}.link-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(dest.name)
    os.replace(tmp, link)


# streaming's package imports its dataset zoo (C4, CIFAR-10, LLaVA ...) on import, and the zoo
# imports transformers, scikit-learn, pandas and torchvision: 3.4 of the 5 s `import streaming` takes
# beside torch, paid by every training rank, export worker and check. brickyard uses none of it.
ZOO = ("text", "vision", "multimodal")


_DEFERRED_LOCK = threading.RLock()


class _Deferred(types.ModuleType):
    """Stands in `sys.modules` for one of streaming's zoo packages until something reads from it;
    then the real package is imported, replaces this one, and answers."""

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__") and attr != "__all__":  # inspection (inspect, pickle) is not a use
            raise AttributeError(attr)
        name = self.__name__
        with _DEFERRED_LOCK:
            if sys.modules.get(name) is self:
                del sys.modules[name]
            real = importlib.import_module(name)
            # a submodule imported before (`import streaming.text.c4`) was bound on the stand-in
            for key, value in vars(self).items():
                if not key.startswith("__") and not hasattr(real, key):
                    setattr(real, key, value)
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, real)
        return getattr(real, attr)


def import_streaming() -> types.ModuleType:
    """The `streaming` package, with its dataset zoo imported only if used (`ZOO`). Import streaming
    through this, before any `from streaming import ...`; once streaming is imported it changes nothing."""
    if "streaming" not in sys.modules:
        spec = importlib.util.find_spec("streaming")  # finds the package without running it
        for sub in ZOO:
            name = f"streaming.{sub}"
            found = importlib.machinery.PathFinder.find_spec(name, spec.submodule_search_locations) if spec else None
            if found is not None and name not in sys.modules:
                stand_in = _Deferred(name)
                stand_in.__spec__, stand_in.__path__ = found, list(found.submodule_search_locations or [])
                sys.modules[name] = stand_in
    return importlib.import_module("streaming")


def phase_streams(export_dir: str | Path, manifest: dict, phase: dict, cache: str | Path) -> list:
    """The `streaming.Stream`s of one phase: each stream of the export choosing the phase's samples."""
    Stream = import_streaming().Stream

    out = []
    for name, s in phase["streams"].items():
        if s["samples"]:
            out.append(Stream(remote=str(Path(export_dir) / manifest["streams"][name]["path"]),
                              local=str(Path(cache) / phase["name"] / name), choose=s["samples"]))
    return out


@contextlib.contextmanager
def stream_registration(leader: bool = True, barrier=None):
    """Create `StreamingDataset`s inside this: one job on the machine at a time.

    Each new dataset picks the first free number for its shared memory, and each of a job's ranks
    scans for it on its own; a dataset another job registers in between makes the ranks disagree
    (streaming stops with "shared memory registered does not match local leader"), as two trainings,
    or a training and an export check, starting on one machine do. `leader` (the node's first rank)
    holds a file lock in the temporary folder; `barrier` (a process group's) keeps the other ranks
    from scanning until it holds the lock, and until every rank is done."""
    import fcntl

    fd = None
    if leader:
        # opened for reading: a lock file another user created (their umask) still locks for this one
        fd = os.open(Path(tempfile.gettempdir()) / "brickyard-streaming.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        if barrier is not None:
            barrier()
        yield
        if barrier is not None:
            barrier()
    finally:
        if fd is not None:
            os.close(fd)


def verify(export_dir: str | Path, tolerance: float = 0.01, quiet: bool = False) -> list[str]:
    """Check an export against its manifest; returns the problems found (empty: it verifies).

    Every shard's sha256; each stream read through `StreamingDataset` has the manifest's sample
    count, and every sample has seq_len + 1 tokens; each phase, read as training reads it, has its
    samples and each stream's token share within `tolerance` of the spec."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    root = Path(export_dir)
    m = read_manifest(root)
    problems = []
    for name, s in m["streams"].items():
        for f in s["shards"]:
            p = root / f["file"]
            if not p.exists():
                problems.append(f"stream {name}: shard {f['file']} is missing")
            elif p.stat().st_size != f["bytes"] or file_sha256(p) != f["sha256"]:
                problems.append(f"stream {name}: shard {f['file']} does not match its checksum (corrupted or changed)")
    if problems:
        return problems
    # (streaming's machine-wide clean-up of shared memory is not called: it would break a training
    # or check reading beside this one; these datasets' folders are new, so no leftover names them)
    with tempfile.TemporaryDirectory(prefix="brickyard-verify-") as cache:
        problems += _read_back(root, m, Path(cache), tolerance, say)
    return problems


def _read_back(root: Path, m: dict, cache: Path, tolerance: float, say) -> list[str]:
    """Each stream and each phase of the export read through `StreamingDataset`, as training reads them."""
    streaming = import_streaming()
    Stream, StreamingDataset = streaming.Stream, streaming.StreamingDataset

    # Read ahead by the whole stream: with streaming's default (8 samples per batch of 1) its ready
    # thread stops every 8 samples and the reading loop waits a 7 ms tick for it each time, which
    # made a check of 11,000 samples take 10 s instead of 0.5
    problems, L = [], m["sample_tokens"]
    for name, s in m["streams"].items():
        if not s["samples"]:
            continue
        with stream_registration():
            ds = StreamingDataset(streams=[Stream(remote=str(root / s["path"]), local=str(Path(cache) / "streams" / name))],
                                  shuffle=False, batch_size=1, predownload=max(1, s["samples"]))
        n = bad = 0
        for sample in ds:
            n += 1
            bad += sample["tokens"].shape != (L,) or sample["stream"] != name
        if n != s["samples"] or bad:
            problems.append(f"stream {name}: read {n} samples ({bad} malformed), the manifest says {s['samples']}")
        say(f"verify: stream {name}: {n:,} samples of {L} tokens")
        del ds
    for phase in m["phases"]:
        with stream_registration():
            ds = StreamingDataset(streams=phase_streams(root, m, phase, Path(cache) / "phases"), shuffle=True,
                                  shuffle_seed=m["curriculum"]["seed"], batch_size=1, predownload=max(1, phase["samples"]))
        seen: dict[str, int] = {}
        for sample in ds:
            seen[sample["stream"]] = seen.get(sample["stream"], 0) + 1
        total = sum(seen.values())
        if total != phase["samples"]:
            problems.append(f"phase {phase['name']}: read {total} samples, the manifest says {phase['samples']}")
        for name, p in phase["streams"].items():
            share = seen.get(name, 0) / total if total else 0.0
            if abs(share - p["share"]) > tolerance:
                problems.append(f"phase {phase['name']}: stream {name} is {share:.2%} of the tokens, the spec asks {p['share']:.2%}")
        say(f"verify: phase {phase['name']}: {total:,} samples, " + ", ".join(
            f"{n} {seen.get(n, 0) / max(total, 1):.2%} (spec {p['share']:.0%})" for n, p in phase["streams"].items()))
        del ds
    return problems
