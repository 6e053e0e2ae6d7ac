"""A training run's settings: YAML in (`configs/train/*.yaml`), validated dataclasses out.

The same checks as the pipeline config (`brickyard.pipelines.config.from_dict`): an unknown key gets a
"did you mean", a wrong type or an out-of-range value one sentence naming where it is.

Batch sizes count samples of seq_len + 1 tokens (one sample = seq_len trained tokens):
`global_batch_size` samples make one optimizer step over all ranks; each rank takes
global_batch_size / world of them and runs them `micro_batch_size` at a time, accumulating
gradients. The defaults of `optim` are TinyLlama's recipe.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..pipelines.config import _did_you_mean, _positive, config_hash, from_dict, read_yaml, to_dict
from ..pipelines.errors import ConfigError


@dataclass
class ModelSettings:
    preset: str = "tiny"  # a name from brickyard.model.presets (`brickyard model info` lists them)
    overrides: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields to change, e.g. {n_layers: 4}

    def validate(self, where: str) -> None:
        import dataclasses

        from ..model.moe import ModelConfig
        from ..model.presets import PRESETS

        if self.preset not in PRESETS:
            raise ConfigError(f"{where}.preset: unknown model preset {self.preset!r}{_did_you_mean(self.preset, list(PRESETS))}; "
                              f"presets: {', '.join(PRESETS)}")
        names = [f.name for f in dataclasses.fields(ModelConfig) if f.name != "extra"]
        for k in self.overrides:
            if k not in names:
                raise ConfigError(f"{where}.overrides: unknown model setting {k!r}{_did_you_mean(k, names)}")

    def build(self):
        from ..model.presets import get_preset

        try:
            return get_preset(self.preset, **self.overrides)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model: {e}") from None


@dataclass
class DataSettings:
    export: str | None = None  # an export folder (holding manifest.json) or a curriculum's link; relative: to the lakehouse
    cache: str | None = None  # where streaming copies and unpacks shards; default <lakehouse>/cache/streaming
    num_workers: int = 0  # DataLoader worker processes per rank
    num_canonical_nodes: int | None = None  # streaming's shuffle layout; keep it fixed to resume on another world size
    document_masking: bool = False  # attention within each packed document only (needs an export with doc_boundaries)

    def validate(self, where: str) -> None:
        if self.num_workers < 0:
            raise ConfigError(f"{where}.num_workers: must be 0 or more, got {self.num_workers}")
        _positive(where, "num_canonical_nodes", self.num_canonical_nodes)


@dataclass
class OptimSettings:
    """AdamW with linear warmup to `lr`, then a cosine down to `min_lr` at the last step."""

    lr: float = 4e-4
    min_lr: float = 4e-5
    warmup_steps: int = 2000
    weight_decay: float = 0.1  # on matrices only; norms are not decayed
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    grad_clip: float = 1.0  # on the global gradient norm over every shard; 0 turns clipping off

    def validate(self, where: str) -> None:
        _positive(where, "lr", self.lr)
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"{where}.min_lr: must be between 0 and lr ({self.lr}), got {self.min_lr}")
        if self.warmup_steps < 0:
            raise ConfigError(f"{where}.warmup_steps: must be 0 or more, got {self.warmup_steps}")
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise ConfigError(f"{where}: weight_decay and grad_clip must be 0 or more")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"{where}.betas: expected two numbers in [0, 1), got {self.betas}")


@dataclass
class ParallelSettings:
    """How the model is spread: FSDP2 over every rank, or HSDP (replicate across groups, shard within);
    with `ep` > 1 the experts are also split over ep ranks (expert parallelism, training/expert_parallel.py)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when present
    dp_replicate: int = 1  # HSDP: replica groups (usually the number of nodes); 1 = plain FSDP
    mixed_precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 params with fp32 reductions on GPU, fp32 on CPU
    activation_checkpointing: bool = False  # recompute each block in backward: less memory, ~1/3 more compute
    compile: bool = False  # torch.compile each block (inductor: on GPU, and on CPU with a C compiler)
    ep: int = 1  # expert parallelism: experts split over this many ranks, tokens sent to them with all-to-all

    def validate(self, where: str) -> None:
        _positive(where, "dp_replicate", self.dp_replicate)
        _positive(where, "ep", self.ep)


@dataclass
class CheckpointSettings:
    dir: str | None = None  # default <lakehouse>/checkpoints/<name>-<hash of the config>
    every_steps: int = 0  # also save every N steps (0: only at the end and at phase ends)
    keep: int = 2  # how many recent checkpoints stay on disk

    def validate(self, where: str) -> None:
        if self.every_steps < 0:
            raise ConfigError(f"{where}.every_steps: must be 0 or more, got {self.every_steps}")
        _positive(where, "keep", self.keep)


@dataclass
class EvalSettings:
    """Validation loss on held-out samples, logged as `val_loss` (and `train_flops` beside it).

    `data` is a NumPy file of token ids shaped (samples, seq_len + 1), the export's sample layout:
    the loss is the mean cross-entropy of every next token in it, the MoE's auxiliary losses left
    out. Each rank scores its own slice, so the sample count is cut to a multiple of
    world size x micro_batch_size."""

    data: str | None = None  # a .npy file; relative to the config file; none: no validation
    every_steps: int = 0  # also validate every N steps (always at step 0 and at the end); 0: only those
    max_samples: int | None = None  # use only the first N samples

    def validate(self, where: str) -> None:
        if self.every_steps < 0:
            raise ConfigError(f"{where}.every_steps: must be 0 or more, got {self.every_steps}")
        _positive(where, "max_samples", self.max_samples)
        if self.data is not None and not str(self.data).endswith(".npy"):
            raise ConfigError(f"{where}.data: expected a .npy file of token samples, got {self.data!r}")


@dataclass
class TrackingSettings:
    experiment: str = "brickyard-train"
    run_name: str | None = None  # default: the config's name
    tags: dict[str, str] = field(default_factory=dict)
    log_every: int = 1  # steps between metric logs (and progress lines when not on a terminal)

    def validate(self, where: str) -> None:
        _positive(where, "log_every", self.log_every)


@dataclass
class TrainConfig:
    name: str = "train"
    lakehouse: str = "lakehouse"  # where the default MLflow store, checkpoints and cache live
    data: DataSettings = field(default_factory=DataSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    global_batch_size: int = 32  # samples per optimizer step, over all ranks
    micro_batch_size: int = 4  # samples per forward pass on one rank
    max_steps: int | None = None  # stop early; default: the whole curriculum
    seed: int = 0  # model init and every other random choice (the sample order comes from the export's seed)
    optim: OptimSettings = field(default_factory=OptimSettings)
    parallel: ParallelSettings = field(default_factory=ParallelSettings)
    checkpoint: CheckpointSettings = field(default_factory=CheckpointSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    peak_tflops: float | None = None  # per device, for MFU; default: known GPUs' dense bf16 peak, none on CPU
    base_dir: str = "."  # where relative paths resolve; set by load_train_config to the file's folder

    def validate(self, where: str) -> None:
        _positive(where, "global_batch_size", self.global_batch_size)
        _positive(where, "micro_batch_size", self.micro_batch_size)
        _positive(where, "max_steps", self.max_steps)
        _positive(where, "peak_tflops", self.peak_tflops)
        if self.global_batch_size % self.micro_batch_size:
            raise ConfigError(f"{where}.global_batch_size: {self.global_batch_size} is not a multiple of "
                              f"micro_batch_size {self.micro_batch_size}")

    def resolve(self, path: str) -> Path:
        """A path from the config: absolute as given, else relative to the config file's folder."""
        p = Path(os.path.expanduser(path))
        return p if p.is_absolute() else (Path(self.base_dir) / p)

    def lakehouse_root(self) -> Path:
        from ..pipelines.lake.session import lakehouse_root

        return lakehouse_root(None, self.lakehouse)

    def export_dir(self) -> Path:
        p = Path(os.path.expanduser(self.data.export or ""))
        return p if p.is_absolute() else self.lakehouse_root() / p

    def checkpoint_dir(self) -> Path:
        """checkpoint.dir, or one folder per distinct config: <lakehouse>/checkpoints/<name>-<identity>."""
        if self.checkpoint.dir:
            return self.resolve(self.checkpoint.dir)
        return self.lakehouse_root() / "checkpoints" / f"{self.name}-{self.identity()[:8]}"

    def cache_dir(self) -> Path:
        return self.resolve(self.data.cache) if self.data.cache else self.lakehouse_root() / "cache" / "streaming"

    def accumulation(self, world: int) -> int:
        """Micro-batches per rank per step, or a clear error when the batch does not split over `world` ranks."""
        per_rank, rest = divmod(self.global_batch_size, world)
        if rest or per_rank % self.micro_batch_size:
            raise ConfigError(f"global_batch_size {self.global_batch_size} does not split into {world} ranks of "
                              f"micro-batches of {self.micro_batch_size}; make it a multiple of {world * self.micro_batch_size}")
        return per_rank // self.micro_batch_size

    def identity(self) -> str:
        """What a checkpoint must agree with to be resumed: everything that changes the math."""
        d = to_dict(self)
        for k in ("tracking", "checkpoint", "eval", "base_dir", "lakehouse"):
            d.pop(k)
        d["data"].pop("num_workers")
        d["data"].pop("cache")
        # settings added later leave the identity of configs that do not use them unchanged
        if not d["data"]["document_masking"]:
            d["data"].pop("document_masking")
        if d["parallel"]["ep"] == 1:
            d["parallel"].pop("ep")
        return config_hash(d)


def load_train_config(path: str | os.PathLike, **overrides) -> TrainConfig:
    """Read and validate a training YAML; `overrides` set top-level keys (None: keep the file's)."""
    p = Path(path)
    raw = read_yaml(p, "training config")
    raw.setdefault("base_dir", str(p.resolve().parent))
    raw.setdefault("name", p.stem)
    for k, v in overrides.items():
        if v is not None:
            raw[k] = v
    return from_dict(TrainConfig, raw, where=p.name)


def use_lakehouse(path: str | os.PathLike) -> None:
    """Train in this lakehouse whatever the config says: a --lakehouse flag, or the lakehouse
    `brickyard run` works in (through BRICKYARD_LAKEHOUSE, so torchrun's ranks see it too)."""
    os.environ["BRICKYARD_LAKEHOUSE"] = str(Path(path).resolve())


def add_arguments(p) -> None:
    """The options of `brickyard train` and `python -m brickyard.training.train` (the same ones)."""
    p.add_argument("--config", required=True, help="training YAML (configs/train/NAME.yaml)")
    p.add_argument("--export", help="the export to train on (overrides data.export)")
    p.add_argument("--lakehouse", help="lakehouse root for the MLflow store, checkpoints and cache (overrides lakehouse)")
    p.add_argument("--max-steps", type=int, help="stop after this many steps (overrides max_steps)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--resume", action="store_true", help="continue the unfinished run in the checkpoint folder, exactly")
    g.add_argument("--fresh", action="store_true", help="delete the checkpoint folder's contents and start over")


def config_from_args(args) -> TrainConfig:
    if args.lakehouse:
        use_lakehouse(args.lakehouse)
    cfg = load_train_config(args.config, max_steps=args.max_steps)
    if args.export:
        cfg.data.export = str(Path(args.export).resolve())
    return cfg
