"""Checkpoints that resume a run exactly, with `torch.distributed.checkpoint` (DCP).

    <checkpoint dir>/
      step-000120/        model and optimizer (DCP: each rank writes its own shards, in parallel)
        trainer.json      step, phase, tokens seen, the schedule's state, the data loader's position,
                          the MLflow run, the config identity
        rng-<rank>.pt     each rank's random number generator states
      latest              the name of the newest complete checkpoint (written last, atomically)

A checkpoint counts only once `latest` names it, so a process killed while saving leaves the
previous one in force. DCP reshards on load, so a run may resume on another number of ranks.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from .parallel import World


def latest(root: Path) -> Path | None:
    pointer = Path(root) / "latest"
    if not pointer.is_file():
        return None
    path = Path(root) / pointer.read_text().strip()
    return path if (path / "trainer.json").is_file() else None


def read_trainer_state(path: Path) -> dict:
    return json.loads((Path(path) / "trainer.json").read_text())


def _rng_state(world: World) -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate(), "numpy": np.random.get_state()}
    if world.device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(world.device)
    return state


def _set_rng_state(state: dict, world: World) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and world.device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], world.device)


def save(root: Path, step: int, model, optimizer, trainer: dict, world: World, keep: int) -> Path:
    """Write checkpoint `step` (every rank calls this); returns its folder."""
    root = Path(root)
    path = root / f"step-{step:06d}"
    if world.leader:
        shutil.rmtree(path, ignore_errors=True)  # a half-written one from a killed run
        path.mkdir(parents=True)
    dist.barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(path))
    torch.save(_rng_state(world), path / f"rng-{world.rank}.pt")
    dist.barrier()
    if world.leader:
        (path / "trainer.json").write_text(json.dumps(trainer, indent=1, sort_keys=True))
        tmp = root / "latest.tmp"
        tmp.write_text(path.name)
        os.replace(tmp, root / "latest")
        done = sorted(p for p in root.glob("step-*") if (p / "trainer.json").is_file())
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    dist.barrier()
    return path


def load(path: Path, model, optimizer, world: World) -> dict:
    """Restore model, optimizer and this rank's RNG from checkpoint `path`; returns its trainer state."""
    model_sd, optim_sd = get_state_dict(model, optimizer)
    state = {"model": model_sd, "optim": optim_sd}
    dcp.load(state, checkpoint_id=str(path))
    set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optim"])
    rng = Path(path) / f"rng-{world.rank}.pt"
    if rng.is_file():  # absent when resuming on more ranks than saved: the new ranks keep their seeds
        _set_rng_state(torch.load(rng, weights_only=False), world)
    return read_trainer_state(path)
