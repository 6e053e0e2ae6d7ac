"""The training loop: an export in, checkpoints and an MLflow run out.

    brickyard train --config configs/train/demo.yaml            one process (CPU or one GPU)
    torchrun --nproc_per_node 8 -m brickyard.training.train --config ...  many processes, the same code

Every step (`train_step`): each rank takes its share of the global batch from the phase's loader,
runs it in micro-batches (inputs = sample[:-1], labels = sample[1:]), with gradient sync only on the
last one; the gradient norm is taken over all shards and clipped; AdamW steps; the schedule steps.
The loop around it reads batches, logs (`log_step`), validates (`validate`) and saves
(`save_checkpoint`). Before the model is built, a run the memory plan (`brickyard.training.plan`) says cannot
fit on its device is refused.
The loss is cross-entropy plus the MoE's auxiliary losses at their coefficients
(`lb_loss_coef`, `z_loss_coef` in the model config), each logged on its own.

Checkpoints and runs: a checkpoint folder belongs to one config (its `identity`). With an
unfinished checkpoint of the same config there, `--resume` continues it exactly; a finished one
makes the run a no-op; anything else is refused until `--fresh` (which deletes the folder).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
import torch.distributed as dist

from ..pipelines.errors import BrickyardError, ConfigError
from ..pipelines.manifest import stream_registration
from . import checkpoint, tracking
from .config import TrainConfig, add_arguments, config_from_args
from .data import StreamCache, open_export, phase_at, phase_loader, plan
from .parallel import World, all_mean, build_model, clip_grad_norm_, init_distributed

# dense bf16 peak of one device, in TFLOP/s (datasheet figures, without sparsity)
PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "H800": 989.0, "A100": 312.0, "A800": 312.0,
               "L40S": 362.0, "L4": 121.0, "A10G": 125.0}

Resume = Literal["no", "yes", "auto"]


@dataclass
class Result:
    status: str  # succeeded | noop
    run_id: str | None
    steps: int
    tokens: int
    losses: list[float]  # ce loss of each step this process trained
    checkpoint: Path | None
    evals: list[tuple[int, int, float]] = field(default_factory=list)  # (step, tokens, val_loss) of each validation


def peak_flops(device: torch.device, override: float | None) -> float | None:
    if override:
        return override * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_TFLOPS.items():  # the longer names first (H100 PCIe before H100)
        if key in name:
            return tflops * 1e12
    return None


def lr_factor(step: int, warmup: int, total: int, lr: float, min_lr: float) -> float:
    """The schedule as a factor of the peak lr at 0-based `step`: linear warmup, then cosine to min_lr."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return (min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * progress))) / lr


def build_optimizer(model: torch.nn.Module, cfg: TrainConfig, total_steps: int):
    o = cfg.optim
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]  # norm weights
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": o.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                                  lr=o.lr, betas=tuple(o.betas), eps=o.eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, o.warmup_steps, total_steps, o.lr, o.min_lr))
    return optimizer, scheduler


def load_eval_samples(cfg: TrainConfig, seq_len: int, world: World) -> torch.Tensor | None:
    """This rank's slice of the validation samples (see EvalSettings), or None without eval.data."""
    import numpy as np

    if not cfg.eval.data:
        return None
    path = cfg.resolve(cfg.eval.data)
    try:
        samples = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as e:
        raise ConfigError(f"eval.data: cannot read {path} as a NumPy array ({e})") from None
    if samples.ndim != 2 or samples.shape[1] != seq_len + 1:
        raise ConfigError(f"eval.data: {path} holds an array shaped {samples.shape}; expected (samples, {seq_len + 1}) "
                          f"for the export's seq_len {seq_len}")
    unit = world.size * cfg.micro_batch_size
    n = min(len(samples), cfg.eval.max_samples or len(samples)) // unit * unit
    if n == 0:
        raise ConfigError(f"eval.data: {path} has {len(samples)} samples, fewer than one micro-batch per rank ({unit})")
    per_rank = n // world.size
    mine = np.asarray(samples[world.rank * per_rank:(world.rank + 1) * per_rank], dtype=np.int64)
    return torch.from_numpy(mine)


@torch.no_grad()
def evaluate(model: torch.nn.Module, samples: torch.Tensor, micro: int, device: torch.device) -> float:
    """Mean next-token cross-entropy over every rank's samples (each rank holds as many)."""
    model.eval()
    total = torch.zeros((), device=device)
    batches = samples.split(micro)
    for b in batches:
        b = b.to(device)
        total += model(b[:, :-1], b[:, 1:]).ce_loss.float()
    model.train()
    return float(all_mean((total / len(batches)).reshape(1)))


def expert_stats(load: torch.Tensor) -> dict[str, float]:
    """Per layer: entropy of the expert load (1.0 = perfectly even, normalized by log E) and the largest share."""
    out = {}
    E = load.shape[-1]
    for i, p in enumerate(load):
        ent = -(p * p.clamp_min(1e-12).log()).sum() / math.log(E) if E > 1 else torch.tensor(1.0)
        out[f"expert_entropy/layer{i}"] = float(ent)
        out[f"expert_max_share/layer{i}"] = float(p.max())
    return out


class Progress:
    """A live line on a terminal, a line every `every` steps otherwise (rank 0 only)."""

    def __init__(self, total_steps: int, every: int, enabled: bool):
        self.total, self.every, self.enabled = total_steps, every, enabled
        self.tty = sys.stdout.isatty()
        self.started = time.perf_counter()
        self.first_step: int | None = None

    def update(self, step: int, phase: str, tokens: int, loss: float, tok_s: float) -> None:
        if not self.enabled:
            return
        if self.first_step is None:
            self.first_step = step
        done = step - self.first_step + 1
        per_step = (time.perf_counter() - self.started) / done
        eta = int(per_step * (self.total - step - 1))
        line = (f"step {step + 1}/{self.total} | phase {phase} | {tokens:,} tokens | loss {loss:.4f} | "
                f"{tok_s:,.0f} tokens/s | ETA {eta // 3600}:{eta % 3600 // 60:02d}:{eta % 60:02d}")
        if self.tty:
            print("\r" + line, end="\n" if step + 1 == self.total else "", flush=True)
        elif (step + 1) % self.every == 0 or step + 1 == self.total:
            print(line, flush=True)

    def say(self, text: str) -> None:
        if self.enabled:
            print(("\n" if self.tty else "") + text, flush=True)


def _resume_point(cfg: TrainConfig, world: World, resume: Resume, fresh: bool, total_steps: int) -> Path | None:
    """The checkpoint to resume from (None: start at step 0), after the checks in the module doc."""
    root = cfg.checkpoint_dir()
    if fresh:
        if world.leader:
            shutil.rmtree(root, ignore_errors=True)
        dist.barrier()
        return None
    found = checkpoint.latest(root)
    if found is None:
        if resume == "yes":
            raise ConfigError(f"--resume: {root} holds no checkpoint to resume; run without --resume to start")
        return None
    state = checkpoint.read_trainer_state(found)
    if state["identity"] != cfg.identity():
        raise ConfigError(f"{root} holds checkpoints of another config (step {state['step']}); pass --fresh to delete "
                          "them and start over, or set checkpoint.dir to another folder")
    if state["step"] >= total_steps or resume != "no":
        return found
    raise ConfigError(f"{root} holds an unfinished run of this config (step {state['step']} of {total_steps}); pass "
                      "--resume to continue it, or --fresh to start over")


@dataclass
class StepStats:
    """One optimizer step on one rank, its figures already averaged over the ranks."""

    loss: float  # cross-entropy + the aux losses at their coefficients
    ce_loss: float
    lb_loss: float
    z_loss: float
    grad_norm: float  # before clipping, over every shard
    lr: float  # the rate this step used
    expert_load: torch.Tensor  # (n_layers, E) share of assignments per expert
    seconds: float


def train_step(model: torch.nn.Module, batch: dict, optimizer, scheduler, micro_batch_size: int, grad_clip: float,
               document_masking: bool = False) -> StepStats:
    """One optimizer step on this rank's share of the global batch (`batch["tokens"]`, (b, seq_len + 1)):
    micro-batches (inputs = sample[:-1], labels = sample[1:]) with gradient sync on the last only,
    the gradient norm over every shard, clipped; AdamW; the schedule. With `document_masking`,
    `batch["doc_ids"]` keeps attention within each packed document."""
    t0 = time.perf_counter()
    device = next(model.parameters()).device
    tokens = batch["tokens"].to(device, non_blocking=True)
    doc_ids = batch["doc_ids"].to(device, non_blocking=True) if document_masking else None
    micro = tokens.split(micro_batch_size)
    model.train()
    sums = torch.zeros(4, device=device)  # loss, ce, lb, z
    load = 0
    for i, m in enumerate(micro):
        model.set_requires_gradient_sync(i == len(micro) - 1)
        docs = doc_ids[i * micro_batch_size:(i + 1) * micro_batch_size, :-1] if doc_ids is not None else None
        out = model(m[:, :-1], m[:, 1:], doc_ids=docs)
        (out.loss / len(micro)).backward()
        sums += torch.stack([out.loss, out.ce_loss, out.lb_loss, out.z_loss]).detach().float()
        load = load + out.expert_load.float()
    norm = clip_grad_norm_(model.parameters(), grad_clip or float("inf"))
    norm = norm.full_tensor() if hasattr(norm, "full_tensor") else norm
    lr = optimizer.param_groups[0]["lr"]
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    stats = all_mean(torch.cat([sums / len(micro), (load / len(micro)).flatten()]))
    if device.type == "cuda":
        torch.cuda.synchronize()
    loss, ce, lb, z = (float(v) for v in stats[:4])
    return StepStats(loss, ce, lb, z, float(norm), lr, stats[4:].view(load.shape), time.perf_counter() - t0)


@dataclass
class Session:
    """What the loop's helpers share: the run's settings, where it trains, and what it logged."""

    cfg: TrainConfig
    world: World
    model_cfg: object
    export_dir: Path
    manifest: dict
    seq_len: int
    phases: list
    total_steps: int
    progress: Progress
    run_id: str | None = None
    flops_per_token: float = 0.0
    peak: float | None = None
    eval_samples: torch.Tensor | None = None
    evals: list[tuple[int, int, float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)


def log_step(s: Session, stats: StepStats, step: int, tokens: int, phase) -> None:
    """Metrics to MLflow (rank 0, every log_every steps) and the progress line."""
    tok_s = s.cfg.global_batch_size * s.seq_len / stats.seconds
    s.losses.append(stats.ce_loss)
    if s.world.leader and (step % s.cfg.tracking.log_every == 0 or step == s.total_steps):
        metrics = {"loss": stats.loss, "ce_loss": stats.ce_loss, "lb_loss": stats.lb_loss, "z_loss": stats.z_loss,
                   "lr": stats.lr, "grad_norm": stats.grad_norm, "tokens": tokens, "tokens_per_s": tok_s, "phase": phase.index}
        if s.peak:
            metrics["mfu"] = s.flops_per_token * tok_s / (s.peak * s.world.size)
        metrics |= expert_stats(stats.expert_load)
        tracking.log(metrics, step)
    s.progress.update(step - 1, phase.name, tokens, stats.ce_loss, tok_s)


def validate(s: Session, model: torch.nn.Module, step: int, tokens: int) -> None:
    """Validation loss on eval.data, logged beside the training FLOPs so far."""
    val = evaluate(model, s.eval_samples, s.cfg.micro_batch_size, s.world.device)
    s.evals.append((step, tokens, val))
    if s.world.leader:
        tracking.log({"val_loss": val, "train_flops": s.flops_per_token * tokens}, step)
    s.progress.say(f"validation: step {step}, {tokens:,} tokens: loss {val:.4f}")


def save_checkpoint(s: Session, model, optimizer, scheduler, loader, step: int, tokens: int, phase) -> Path:
    trainer = {"step": step, "tokens": tokens, "phase": phase.name, "loader": loader.state_dict() if s.world.leader else None,
               "scheduler": scheduler.state_dict(), "identity": s.cfg.identity(), "mlflow_run_id": s.run_id,
               "export": str(s.export_dir), "total_steps": s.total_steps}
    saved = checkpoint.save(s.cfg.checkpoint_dir(), step, model, optimizer, trainer, s.world, s.cfg.checkpoint.keep)
    s.progress.say(f"checkpoint: step {step} -> {saved}")
    return saved


def check_fits(cfg: TrainConfig, model_cfg, seq_len: int, world: World) -> None:
    """Refuse, in one sentence, a run the memory plan says cannot fit on this device."""
    from .parallel import param_dtype
    from .plan import available_memory, gib, plan_memory

    compute = 2 if param_dtype(world, cfg.parallel) == torch.bfloat16 else 4
    p = plan_memory(model_cfg, world.size, seq_len, cfg.micro_batch_size, cfg.parallel.ep,
                    cfg.parallel.activation_checkpointing, compute_bytes=compute)
    have = available_memory(world.device)
    need = p.total
    if world.device.type == "cpu":  # the ranks of a node share its memory
        need *= int(os.environ.get("LOCAL_WORLD_SIZE", 1))
        where = f"this machine's available memory ({gib(have)})"
    else:
        where = f"the GPU's {gib(have)}"
    if need > have:
        raise ConfigError(f"model: {cfg.model.preset} needs about {gib(need)} per {world.device.type} device at micro_batch_size "
                          f"{cfg.micro_batch_size} x seq_len {seq_len} on {world.size} rank(s), more than {where}; use more "
                          "devices, a smaller micro_batch_size or parallel.activation_checkpointing "
                          "(`brickyard model plan` shows the parts)")


def train(cfg: TrainConfig, resume: Resume = "no", fresh: bool = False) -> Result:
    """Run (or resume) the training `cfg` describes, in this process; every rank calls it."""
    from ..model.presets import flops_per_token

    if not cfg.data.export:
        raise ConfigError("data.export: name the export to train on (a folder made by `brickyard export`)")
    export_dir, manifest = open_export(cfg.export_dir())
    model_cfg = cfg.model.build()
    seq_len = manifest["seq_len"]
    if model_cfg.max_seq_len < seq_len:
        raise ConfigError(f"model: max_seq_len {model_cfg.max_seq_len} is shorter than the export's seq_len {seq_len}")
    if model_cfg.vocab_size <= manifest["eot_id"]:
        raise ConfigError(f"model: vocab_size {model_cfg.vocab_size} cannot hold the export's {manifest['encoding']} ids "
                          f"(end-of-text is {manifest['eot_id']})")
    if model_cfg.n_experts % cfg.parallel.ep:
        raise ConfigError(f"parallel.ep: {cfg.parallel.ep} does not divide the model's {model_cfg.n_experts} experts")
    if cfg.data.document_masking and "doc_starts" not in manifest.get("columns", {}):
        raise ConfigError(f"data.document_masking: the export {export_dir.name} has no document boundaries; export it "
                          "with doc_boundaries: true in the curriculum, or turn masking off")
    phases = plan(manifest, cfg.global_batch_size)
    total_steps = min(phases[-1].last_step, cfg.max_steps or phases[-1].last_step)

    world = init_distributed(cfg.parallel)
    cache = StreamCache(cfg.cache_dir() / export_dir.name)
    try:
        # the node's first rank holds the streaming cache folder for the run and removes the shared
        # memory a killed run of its own left there (see data.StreamCache); any refusal stops every rank
        refusal = None
        if world.local_rank == 0:
            try:
                cache.hold()
            except BrickyardError as e:
                refusal = e
        refused = torch.tensor([float(refusal is not None)], device=world.device)
        dist.all_reduce(refused)
        if refused.item():
            raise refusal or BrickyardError(f"another training holds the streaming cache folder {cache.root} on one of "
                                            "the nodes (its first rank says which); give this one its own data.cache")
        accum = cfg.accumulation(world.size)
        rank_batch = cfg.global_batch_size // world.size
        s = Session(cfg, world, model_cfg, export_dir, manifest, seq_len, phases, total_steps,
                    Progress(total_steps, cfg.tracking.log_every, world.leader))
        start = _resume_point(cfg, world, resume, fresh, total_steps)
        if start is not None and checkpoint.read_trainer_state(start)["step"] >= total_steps:
            state = checkpoint.read_trainer_state(start)
            s.progress.say(f"train: {cfg.name} is already trained ({state['step']} steps, checkpoint {start}); nothing to do")
            return Result("noop", state.get("mlflow_run_id"), state["step"], state["tokens"], [], start)
        check_fits(cfg, model_cfg, seq_len, world)

        torch.manual_seed(cfg.seed)
        model = build_model(model_cfg, world, cfg.parallel, cfg.seed)  # the same weights whatever the world size
        optimizer, scheduler = build_optimizer(model, cfg, total_steps)
        state = {"step": 0, "tokens": 0, "loader": None, "phase": None, "mlflow_run_id": None}
        if start is not None:
            state = checkpoint.load(start, model, optimizer, world)
            scheduler.load_state_dict(state["scheduler"])
            s.progress.say(f"train: resuming {cfg.name} at step {state['step']} from {start}")

        if world.leader:
            s.run_id = tracking.start(cfg, model_cfg, cfg.lakehouse_root(), export_dir, manifest, state["mlflow_run_id"])
        s.flops_per_token = flops_per_token(model_cfg, seq_len)
        s.peak = peak_flops(world.device, cfg.peak_tflops)
        s.progress.say(f"train: {cfg.name}: {cfg.model.preset} on {world.size} x {world.device.type}, {total_steps} steps of "
                       f"{cfg.global_batch_size} x {seq_len} tokens ({accum} micro-batches of {cfg.micro_batch_size} per rank); "
                       "phases " + ", ".join(f"{p.name} steps {p.first_step}-{p.last_step - 1}" for p in phases if p.steps)
                       + (f"; MLflow run {s.run_id}" if s.run_id else ""))

        s.eval_samples = load_eval_samples(cfg, seq_len, world)
        if s.eval_samples is not None and state["step"] == 0:
            validate(s, model, 0, 0)
        loader = it = current = None
        step, tokens = state["step"], state["tokens"]
        saved = start
        while step < total_steps:
            phase = phase_at(phases, step)
            if phase is not current:
                del it, loader
                with stream_registration(world.local_rank == 0, dist.barrier):  # one job at a time on the machine
                    loader = phase_loader(export_dir, manifest, phase, cfg.cache_dir(), rank_batch, cfg.data.num_workers,
                                          cfg.data.num_canonical_nodes)
                if world.local_rank == 0:
                    cache.note()  # its shared memory, should this run be killed
                if state["loader"] is not None and state["phase"] == phase.name:
                    loader.load_state_dict(state["loader"])
                it, current = iter(loader), phase
                if step == phase.first_step:
                    s.progress.say(f"train: phase {phase.name} starts at step {step}, after {tokens:,} tokens")
            stats = train_step(model, next(it), optimizer, scheduler, cfg.micro_batch_size, cfg.optim.grad_clip,
                               cfg.data.document_masking)
            step += 1
            tokens += cfg.global_batch_size * seq_len
            log_step(s, stats, step, tokens, phase)
            if s.eval_samples is not None and (step == total_steps or (cfg.eval.every_steps and step % cfg.eval.every_steps == 0)):
                validate(s, model, step, tokens)
            if step == phase.last_step or step == total_steps or (cfg.checkpoint.every_steps and step % cfg.checkpoint.every_steps == 0):
                saved = save_checkpoint(s, model, optimizer, scheduler, loader, step, tokens, phase)
        if world.leader:
            tracking.finish()
        s.progress.say(f"train: {cfg.name} done: {step} steps, {tokens:,} tokens"
                       + (f", loss {s.losses[0]:.3f} -> {s.losses[-1]:.3f}" if s.losses else "")
                       + (f"; MLflow run {s.run_id}" if s.run_id else ""))
        return Result("succeeded", s.run_id, step, tokens, s.losses, saved, s.evals)
    finally:
        cache.release()
        dist.destroy_process_group()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="brickyard.training.train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        train(config_from_args(args), resume="yes" if args.resume else "no", fresh=args.fresh)
    except BrickyardError as e:
        print(f"train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
