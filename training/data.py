"""Batches from an export: one `StreamingDataset` per curriculum phase, switched at its token boundary.

An export (`brickyard export`) holds one MDS stream per selection of gold.tokens and a manifest
whose phases say how many samples each stream gives each phase. Samples are fixed-length
(seq_len + 1 tokens), so sample counts are token counts, and a phase of S samples is
floor(S / global_batch_size) optimizer steps: the switch to the next phase happens at that step,
within one global batch of the phase's token share (the remainder, under one batch, is not
trained and the plan says so).

Each phase is read by its own `StreamingDataset` over the export's streams with `choose` set to
the phase's sample counts, shuffled with the export's seed. streaming partitions the samples
across ranks (it reads RANK / WORLD_SIZE / LOCAL_WORLD_SIZE, which torchrun sets) so that a
global batch holds the same samples whatever the number of ranks, and its `StreamingDataLoader`
state (the position within the phase) is what a checkpoint stores. Shards are copied and
unpacked into a local cache (`data.cache`), never into the export itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..pipelines.errors import ConfigError
from ..pipelines.lake.markers import alive


@dataclass(frozen=True)
class Phase:
    index: int
    name: str
    samples: int  # samples the export holds for the phase
    steps: int  # optimizer steps it gets: samples // global_batch_size
    first_step: int  # the step (0-based) it starts at
    seq_len: int
    global_batch_size: int

    @property
    def last_step(self) -> int:  # exclusive
        return self.first_step + self.steps

    @property
    def tokens(self) -> int:
        """Tokens trained in this phase (inputs, seq_len per sample)."""
        return self.steps * self.global_batch_size * self.seq_len

    @property
    def dropped(self) -> int:
        return self.samples - self.steps * self.global_batch_size


def open_export(path: str | Path) -> tuple[Path, dict]:
    """The export folder `path` points at (following a curriculum link) and its manifest."""
    from ..pipelines.manifest import read_manifest

    p = Path(path)
    if not p.exists():
        raise ConfigError(f"data.export: {p} does not exist; make one with `brickyard export --curriculum SPEC`")
    root = p.resolve()
    return root, read_manifest(root)


def plan(manifest: dict, global_batch_size: int) -> list[Phase]:
    """The phases of an export as step ranges for a global batch size."""
    out, step = [], 0
    seq_len = manifest["seq_len"]
    for i, ph in enumerate(manifest["phases"]):
        steps = ph["samples"] // global_batch_size
        out.append(Phase(i, ph["name"], ph["samples"], steps, step, seq_len, global_batch_size))
        step += steps
    if step == 0:
        sizes = ", ".join(f"{p['name']}: {p['samples']} samples" for p in manifest["phases"])
        raise ConfigError(f"global_batch_size {global_batch_size} is larger than every phase of the export "
                          f"({sizes}); "
                          "lower it or export a larger token budget")
    return out


def phase_at(phases: list[Phase], step: int) -> Phase:
    for ph in phases:
        if step < ph.last_step:
            return ph
    return phases[-1]


def doc_ids(doc_starts, length: int):
    """A sample's document starts (the export's `doc_starts`, 0 first) -> each token's document index (length,)."""
    import numpy as np

    ids = np.zeros(length, dtype=np.int32)
    starts = np.asarray(doc_starts, dtype=np.int64)
    np.add.at(ids, starts[(starts > 0) & (starts < length)], 1)
    return np.cumsum(ids, dtype=np.int32)


def collate(samples: list[dict]) -> dict:
    """Samples of seq_len + 1 uint32 ids -> one int64 tensor (b, seq_len + 1) and their stream names;
    with the export's document boundaries also `doc_ids` (b, seq_len + 1), each token's document index."""
    import numpy as np
    import torch

    tokens = torch.from_numpy(np.stack([s["tokens"] for s in samples]).astype(np.int64))
    out = {"tokens": tokens, "streams": [s["stream"] for s in samples]}
    if samples and "doc_starts" in samples[0]:
        L = tokens.shape[1]
        out["doc_ids"] = torch.from_numpy(np.stack([doc_ids(s["doc_starts"], L) for s in samples]))
    return out


def phase_loader(export_dir: Path, manifest: dict, phase: Phase, cache: Path, rank_batch: int, num_workers: int = 0,
                 num_canonical_nodes: int | None = None):
    """A `StreamingDataLoader` over one phase, yielding batches of `rank_batch` samples for this rank."""
    from ..pipelines.manifest import import_streaming, phase_streams

    streaming = import_streaming()
    StreamingDataLoader, StreamingDataset = streaming.StreamingDataLoader, streaming.StreamingDataset

    spec = manifest["phases"][phase.index]
    root = Path(cache) / Path(export_dir).name
    dataset = StreamingDataset(streams=phase_streams(export_dir, manifest, spec, root), shuffle=True,
                               shuffle_seed=manifest["curriculum"]["seed"], batch_size=rank_batch,
                               num_canonical_nodes=num_canonical_nodes)
    return StreamingDataLoader(dataset, batch_size=rank_batch, collate_fn=collate, num_workers=num_workers,
                               drop_last=True, persistent_workers=False)


# -- streaming's shared memory ----------------------------------------------------------------------
# streaming keeps each dataset's bookkeeping (the epoch's sample ids, shard states, a barrier) in
# shared-memory blocks named `NNNNNN_<part>`, one number per dataset; its `NNNNNN_locals` block holds
# the dataset's local folders, and is emptied when the dataset is deleted. Blocks outlive a process
# killed together with its resource tracker (a process-group kill), and streaming refuses a new
# dataset whose folders a leftover names. Its own `clean_stale_shared_memory` removes every block on
# the machine, a live training's or export check's too (two jobs on one machine then break each
# other). A training here holds its cache folder for its whole run (a file lock) and removes only the
# blocks of its own killed runs: those naming folders under the cache, and those a run recorded in
# the cache (`STREAM_RECORD`: a phase's dataset, once deleted, no longer names its folders) whose
# process is gone.

SHM = Path("/dev/shm")  # where POSIX shared memory lives on Linux
STREAM_RECORD = "streaming-blocks.json"
STREAM_LOCK = "streaming.lock"


def _folders_of(n: int) -> list[str] | None:
    """The local folders the dataset numbered `n` recorded (empty once deleted), or None: no such block."""
    try:
        data = (SHM / f"{n:06}_locals").read_bytes()
    except OSError:  # gone, or another user's (mode 0600)
        return None
    size = int.from_bytes(data[:4], "little") if len(data) >= 4 else 0
    return data[4:size].decode("utf-8", "replace").split("\0")[:-1] if size > 4 else []


def _numbers() -> list[int]:
    return sorted({int(f[:6]) for f in os.listdir(SHM) if len(f) == 13 and f.endswith("_locals") and f[:6].isdigit()})


def _under(folders: list[str], root: str) -> bool:
    return any(f == root or f.startswith(root + os.sep) for f in folders)


def _remove(n: int) -> int:
    from ..pipelines.manifest import import_streaming

    import_streaming()
    from streaming.base.constant import BARRIER_FILELOCK, CACHE_FILELOCK, SHM_TO_CLEAN

    removed = 0
    for part in SHM_TO_CLEAN:
        try:
            os.unlink(SHM / f"{n:06}_{part}")
            removed += 1
        except OSError:  # not there, or not ours to remove
            pass
    for lock in (BARRIER_FILELOCK, CACHE_FILELOCK):
        with contextlib.suppress(OSError):
            Path(tempfile.gettempdir(), f"{n:06}_{lock}").unlink()
    return removed


class StreamCache:
    """One training's hold on its streaming cache folder (`<data.cache>/<export>`) on this node."""

    def __init__(self, root: Path):
        self.root = Path(os.path.abspath(root))
        self._fd: int | None = None

    def hold(self) -> int:
        """Lock the folder for this run (a clear error when another training holds it), then remove
        the shared memory that killed runs of its own left behind; returns how many blocks."""
        import fcntl

        from ..pipelines.errors import BrickyardError

        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / STREAM_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise BrickyardError(f"another training on this machine is reading through the cache folder {self.root}; "
                                 "wait for it, or give this one a folder of its own (data.cache)") from None
        self._fd = fd
        if not SHM.is_dir():  # elsewhere streaming's blocks are not files; a killed run's stay until restart
            return 0
        root, removed = str(self.root), 0
        for n in _numbers():
            folders = _folders_of(n)
            if folders and _under(folders, root):  # the folder is held: nobody else reads it
                removed += _remove(n)
        kept = []
        for entry in self._record():
            folders = _folders_of(entry["n"])
            if folders is None:
                continue
            if alive(entry["pid"]):
                kept.append(entry)
            elif not folders or _under(folders, root):  # emptied by our run, not taken by another job since
                removed += _remove(entry["n"])
        self._write(kept)
        return removed

    def note(self) -> None:
        """Record this process as the owner of the live datasets reading under the folder (call after
        creating one): should the run be killed, the next one removes their blocks even once emptied."""
        if not SHM.is_dir():
            return
        root = str(self.root)
        entries = {(e["n"], e["pid"]) for e in self._record()}
        entries |= {(n, os.getpid()) for n in _numbers() if _under(_folders_of(n) or [], root)}
        self._write([{"n": n, "pid": pid} for n, pid in sorted(entries)])

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # the lock goes with it
            self._fd = None

    def _record(self) -> list[dict]:
        try:
            return json.loads((self.root / STREAM_RECORD).read_text())
        except (OSError, ValueError):
            return []

    def _write(self, entries: list[dict]) -> None:
        tmp = self.root / f".{STREAM_RECORD}.{os.getpid()}"
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, self.root / STREAM_RECORD)

