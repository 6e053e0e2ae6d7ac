"""A training run's settings: YAML in (`configs/train/*.yaml`), validated pydantic models out.

Each section is a `ConfigModel`, the pipeline config's base (`brickyard.pipelines.config`), so the
checks are the same: an unknown key gets a "did you mean", a wrong type or an out-of-range value
one sentence naming where it is. A section's rules are its `check` method, run by one model
validator after the section's fields (and nested sections) are in: one method keeps the rules in a
fixed order, so a file that breaks several gets the sentence of the first. They run when the config
is read from data (`load_train_config`, `from_dict`, `model_validate`). A config built or changed
in code (`TrainConfig(micro_batch_size=4)`, `cfg.data.export = ...`) gets its types checked at once
and its rules when the code calls `validate(where)`. Sections also take their fields positionally,
in declaration order, as the dataclasses they replace did (`ModelSettings("small")`).

Batch sizes count samples of seq_len + 1 tokens (one sample = seq_len trained tokens):
`global_batch_size` samples make one optimizer step over all ranks; each rank takes
global_batch_size / world of them and runs them `micro_batch_size` at a time, accumulating
gradients. The defaults of `optim` are TinyLlama's recipe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from ..pipelines.config import (
    ConfigModel,
    Invalid,
    _did_you_mean,
    config_hash,
    from_dict,
    read_yaml,
    rules_apply,
    to_dict,
)
from ..pipelines.errors import ConfigError


def _positive(name: str, value: int | float | None) -> None:
    """The rule that `name` is above 0 (None, unset, passes), for a section's `check`."""
    if value is not None and value <= 0:
        raise Invalid(f"must be greater than 0, got {value!r}", at=f".{name}")


def _not_negative(name: str, value: int) -> None:
    if value < 0:
        raise Invalid(f"must be 0 or more, got {value}", at=f".{name}")


class Settings(ConfigModel):
    """A training config section. Positional arguments fill the fields in declaration order."""

    def __init__(self, /, *args: Any, **data: Any) -> None:
        names = list(type(self).model_fields)
        if len(args) > len(names):
            raise TypeError(f"{type(self).__name__}() takes at most {len(names)} positional arguments, got {len(args)}")
        for name, value in zip(names, args, strict=False):
            if name in data:
                raise TypeError(f"{type(self).__name__}() got multiple values for argument {name!r}")
            data[name] = value
        super().__init__(**data)

    # Validation from data (nested sections, model_validate) builds the model without calling
    # __init__, with the rules' context, as for any pydantic model: this __init__ only adds
    # positional arguments for code. (Without the mark pydantic would validate nested sections
    # through it, losing that context; RootModel marks its own positional __init__ the same way.)
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    def check(self) -> None:
        """This section's own rules (raising `Invalid`), the nested sections' left to them."""

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Any:
        if rules_apply(info):
            self.check()
        return self


class ModelSettings(Settings):
    preset: str = "tiny"  # a name from brickyard.model.presets (`brickyard model info` lists them)
    overrides: dict[str, Any] = Field(default_factory=dict)  # ModelConfig fields to change, e.g. {n_layers: 4}

    def check(self) -> None:
        import dataclasses

        from ..model.moe import ModelConfig
        from ..model.presets import PRESETS

        if self.preset not in PRESETS:
            raise Invalid(f"unknown model preset {self.preset!r}{_did_you_mean(self.preset, list(PRESETS))}; "
                          f"presets: {', '.join(PRESETS)}", at=".preset")
        names = [f.name for f in dataclasses.fields(ModelConfig) if f.name != "extra"]
        for k in self.overrides:
            if k not in names:
                raise Invalid(f"unknown model setting {k!r}{_did_you_mean(k, names)}", at=".overrides")

    def build(self):
        from ..model.presets import get_preset

        try:
            return get_preset(self.preset, **self.overrides)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model: {e}") from None


class DataSettings(Settings):
    export: str | None = None  # an export folder (holding manifest.json) or a curriculum's link; relative: to the lakehouse
    cache: str | None = None  # where streaming copies and unpacks shards; default <lakehouse>/cache/streaming
    num_workers: int = 0  # DataLoader worker processes per rank
    num_canonical_nodes: int | None = None  # streaming's shuffle layout; keep it fixed to resume on another world size
    document_masking: bool = False  # attention within each packed document only (needs an export with doc_boundaries)

    def check(self) -> None:
        _not_negative("num_workers", self.num_workers)
        _positive("num_canonical_nodes", self.num_canonical_nodes)


class OptimSettings(Settings):
    """AdamW with linear warmup to `lr`, then a cosine down to `min_lr` at the last step."""

    lr: float = 4e-4
    min_lr: float = 4e-5
    warmup_steps: int = 2000
    weight_decay: float = 0.1  # on matrices only; norms are not decayed
    betas: list[float] = Field(default_factory=lambda: [0.9, 0.95])
    eps: float = 1e-8
    grad_clip: float = 1.0  # on the global gradient norm over every shard; 0 turns clipping off

    def check(self) -> None:
        _positive("lr", self.lr)
        if not 0 <= self.min_lr <= self.lr:
            raise Invalid(f"must be between 0 and lr ({self.lr}), got {self.min_lr}", at=".min_lr")
        _not_negative("warmup_steps", self.warmup_steps)
        if self.weight_decay < 0 or self.grad_clip < 0:
            raise Invalid("weight_decay and grad_clip must be 0 or more")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise Invalid(f"expected two numbers in [0, 1), got {self.betas}", at=".betas")


class ParallelSettings(Settings):
    """How the model is spread: FSDP2 over every rank, or HSDP (replicate across groups, shard within);
    with `ep` > 1 the experts are also split over ep ranks (expert parallelism, training/expert_parallel.py)."""

    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: cuda when present
    dp_replicate: int = 1  # HSDP: replica groups (usually the number of nodes); 1 = plain FSDP
    mixed_precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 params with fp32 reductions on GPU, fp32 on CPU
    activation_checkpointing: bool = False  # recompute each block in backward: less memory, ~1/3 more compute
    compile: bool = False  # torch.compile each block (inductor: on GPU, and on CPU with a C compiler)
    ep: int = 1  # expert parallelism: experts split over this many ranks, tokens sent to them with all-to-all

    def check(self) -> None:
        _positive("dp_replicate", self.dp_replicate)
        _positive("ep", self.ep)


class CheckpointSettings(Settings):
    dir: str | None = None  # default <lakehouse>/checkpoints/<name>-<hash of the config>
    every_steps: int = 0  # also save every N steps (0: only at the end and at phase ends)
    keep: int = 2  # how many recent checkpoints stay on disk

    def check(self) -> None:
        _not_negative("every_steps", self.every_steps)
        _positive("keep", self.keep)


class EvalSettings(Settings):
    """Validation loss on held-out samples, logged as `val_loss` (and `train_flops` beside it).

    `data` is a NumPy file of token ids shaped (samples, seq_len + 1), the export's sample layout:
    the loss is the mean cross-entropy of every next token in it, the MoE's auxiliary losses left
    out. Each rank scores its own slice, so the sample count is cut to a multiple of
    world size x micro_batch_size."""

    data: str | None = None  # a .npy file; relative to the config file; none: no validation
    every_steps: int = 0  # also validate every N steps (always at step 0 and at the end); 0: only those
    max_samples: int | None = None  # use only the first N samples

    def check(self) -> None:
        _not_negative("every_steps", self.every_steps)
        _positive("max_samples", self.max_samples)
        if self.data is not None and not str(self.data).endswith(".npy"):
            raise Invalid(f"expected a .npy file of token samples, got {self.data!r}", at=".data")


class TrackingSettings(Settings):
    experiment: str = "brickyard-train"
    run_name: str | None = None  # default: the config's name
    tags: dict[str, str] = Field(default_factory=dict)
    log_every: int = 1  # steps between metric logs (and progress lines when not on a terminal)

    def check(self) -> None:
        _positive("log_every", self.log_every)


class TrainConfig(Settings):
    name: str = "train"
    lakehouse: str = "lakehouse"  # where the default MLflow store, checkpoints and cache live
    data: DataSettings = Field(default_factory=DataSettings)
    model: ModelSettings = Field(default_factory=ModelSettings)
    global_batch_size: int = 32  # samples per optimizer step, over all ranks
    micro_batch_size: int = 4  # samples per forward pass on one rank
    max_steps: int | None = None  # stop early; default: the whole curriculum
    seed: int = 0  # model init and every other random choice (the sample order comes from the export's seed)
    optim: OptimSettings = Field(default_factory=OptimSettings)
    parallel: ParallelSettings = Field(default_factory=ParallelSettings)
    checkpoint: CheckpointSettings = Field(default_factory=CheckpointSettings)
    eval: EvalSettings = Field(default_factory=EvalSettings)
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    peak_tflops: float | None = None  # per device, for MFU; default: known GPUs' dense bf16 peak, none on CPU
    base_dir: str = "."  # where relative paths resolve; set by load_train_config to the file's folder

    def check(self) -> None:
        _positive("global_batch_size", self.global_batch_size)
        _positive("micro_batch_size", self.micro_batch_size)
        _positive("max_steps", self.max_steps)
        _positive("peak_tflops", self.peak_tflops)
        if self.global_batch_size % self.micro_batch_size:
            raise Invalid(f"{self.global_batch_size} is not a multiple of micro_batch_size {self.micro_batch_size}",
                          at=".global_batch_size")

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
