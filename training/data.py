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

from dataclasses import dataclass
from pathlib import Path

from ..pipelines.errors import ConfigError


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
    from streaming import StreamingDataLoader, StreamingDataset

    from ..pipelines.manifest import phase_streams

    spec = manifest["phases"][phase.index]
    root = Path(cache) / Path(export_dir).name
    dataset = StreamingDataset(streams=phase_streams(export_dir, manifest, spec, root), shuffle=True,
                               shuffle_seed=manifest["curriculum"]["seed"], batch_size=rank_batch,
                               num_canonical_nodes=num_canonical_nodes)
    return StreamingDataLoader(dataset, batch_size=rank_batch, collate_fn=collate, num_workers=num_workers,
                               drop_last=True, persistent_workers=False)
