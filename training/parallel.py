"""Parallelism, applied to the model from outside (model/ never imports torch.distributed).

One code path for every scale: a single process is a world of one (its own process group on
127.0.0.1), torchrun gives many. The model is built where it will live (`build_model`): constructed
on the meta device (shapes only, no memory), wrapped, then each rank materializes and initializes
only its own shards, so no rank ever holds the whole model. The model is wrapped, innermost first:
  1. activation checkpointing per block (optional): the block's activations are recomputed in
     backward instead of kept;
  2. torch.compile per block (optional; inductor on GPU, and on CPU where a C compiler is installed):
     blocks are identical, so one compiled graph serves all;
  3. FSDP2 `fully_shard` per block, then on the root (embedding, final norm, head), over a device
     mesh: 1-D (every rank holds a shard) or 2-D for HSDP (replicate across `dp_replicate` groups,
     usually nodes, and shard within a group, so the all-gathers stay on the fast links).
Mixed precision on GPU keeps bf16 parameters for compute and reduces gradients in fp32; on CPU
everything is fp32. NCCL on GPU, gloo on CPU.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..pipelines.errors import ConfigError
from .config import ParallelSettings


@dataclass
class World:
    rank: int
    size: int
    local_rank: int
    device: torch.device

    @property
    def leader(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def init_distributed(settings: ParallelSettings) -> World:
    """Join torchrun's process group, or make a world of one; pick the device and backend."""
    if "RANK" not in os.environ:  # a plain process: a world of one, so the code path is the same
        os.environ.update({"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "LOCAL_WORLD_SIZE": "1",
                           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())})
    rank, size, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0))
    want = settings.device
    if want == "auto":
        want = "cuda" if torch.cuda.is_available() else "cpu"
    if want == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("parallel.device: cuda was asked for, but torch sees no GPU here; use cpu or auto")
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    if settings.ep > 1 and (size % settings.ep or settings.dp_replicate > 1):
        raise ConfigError(f"parallel.ep: {settings.ep} must divide the {size} ranks, and works with dp_replicate 1 only")
    if size % settings.dp_replicate:
        raise ConfigError(f"parallel.dp_replicate: {settings.dp_replicate} replica groups do not divide {size} ranks")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", device_id=device if device.type == "cuda" else None)
    return World(rank, size, local, device)


def device_mesh(world: World, settings: ParallelSettings):
    from torch.distributed.device_mesh import init_device_mesh

    if settings.dp_replicate > 1:  # HSDP
        return init_device_mesh(world.device.type, (settings.dp_replicate, world.size // settings.dp_replicate),
                                mesh_dim_names=("replicate", "shard"))
    return init_device_mesh(world.device.type, (world.size,), mesh_dim_names=("shard",))


def param_dtype(world: World, settings: ParallelSettings) -> torch.dtype:
    if settings.mixed_precision == "bf16" or (settings.mixed_precision == "auto" and world.device.type == "cuda"):
        return torch.bfloat16
    return torch.float32


def parallelize(model: torch.nn.Module, world: World, settings: ParallelSettings) -> torch.nn.Module:
    """Wrap `model` (on the meta device, or built identically on every rank) for training on `world`; in place."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = device_mesh(world, settings)
    mp = MixedPrecisionPolicy(param_dtype=param_dtype(world, settings), reduce_dtype=torch.float32)
    if settings.ep > 1:  # experts split over "ep", then sharded by FSDP2 over "dp" (the other ranks)
        from torch.distributed.device_mesh import init_device_mesh

        from .expert_parallel import shard_experts

        ep_mesh = init_device_mesh(world.device.type, (world.size // settings.ep, settings.ep), mesh_dim_names=("dp", "ep"))
        shard_experts(model, ep_mesh["ep"])
        for block in model.blocks:
            fully_shard(block.ffn.experts, mesh=ep_mesh["dp"], mp_policy=mp)
    blocks = model.blocks
    for i, block in enumerate(blocks):
        if settings.activation_checkpointing:
            from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import (
                checkpoint_wrapper,
            )

            block = checkpoint_wrapper(block, preserve_rng_state=False)
        if settings.compile:
            block = torch.compile(block)
        # the last block's parameters are needed again at once by the root's backward: keep them
        fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=i < len(blocks) - 1)
        blocks[i] = block
    fully_shard(model, mesh=mesh, mp_policy=mp)
    return model


def all_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean of `values` over ranks (for logging)."""
    if dist.get_world_size() > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= dist.get_world_size()
    return values


def local_shard(full: torch.Tensor, param: torch.Tensor) -> torch.Tensor:
    """This rank's piece of `full` for a parameter that may be a DTensor: on each mesh dimension a
    Shard(d) placement takes this rank's torch.chunk along d (DTensor's own split), Replicate keeps it all."""
    from torch.distributed.tensor import DTensor, Shard

    if not isinstance(param, DTensor):
        return full
    coordinate = param.device_mesh.get_coordinate()
    dims = list(enumerate(param.placements))
    shards = [hasattr(p, "dim") for p in param.placements]  # Shard, and _StridedShard (not a Shard subclass)
    if any(s and not isinstance(p, Shard) for s, p in zip(shards, param.placements, strict=True)):
        # a strided shard: FSDP2 over expert parallelism, split by "ep" (right) first, then by "dp" within
        dims.reverse()
    for mesh_dim, placement in dims:
        if hasattr(placement, "dim"):
            chunks = full.chunk(param.device_mesh.size(mesh_dim), dim=placement.dim)
            i = coordinate[mesh_dim]
            full = chunks[i] if i < len(chunks) else full.narrow(placement.dim, 0, 0)
    return full


@torch.no_grad()
def init_weights(model: torch.nn.Module, seed: int) -> None:
    """Initialize a materialized (possibly sharded) model: every rank writes its shards of the values
    eager construction gives after torch.manual_seed(seed), drawn one parameter at a time on the CPU,
    so the weights do not depend on the number of ranks."""
    from torch.distributed.tensor import DTensor

    generator = torch.Generator().manual_seed(seed)
    for param, full in model.initial_values(generator):
        local = param.to_local() if isinstance(param, DTensor) else param
        local.copy_(local_shard(full, param))


def build_model(model_cfg, world: World, settings: ParallelSettings, seed: int) -> torch.nn.Module:
    """The model for training on `world`: built on the meta device, parallelized, then each rank's
    shards materialized on its device and initialized (the same weights as a one-process run)."""
    from ..model.moe import MoETransformer

    with torch.device("meta"):
        model = MoETransformer(model_cfg)
    parallelize(model, world, settings)
    model.to_empty(device=world.device)
    init_weights(model, seed)
    return model


def clip_grad_norm_(parameters, max_norm: float) -> torch.Tensor:
    """torch's clip_grad_norm_ over parameters that may live on several device meshes (expert
    parallelism puts the experts on their own): the norm of each mesh's gradients in full, then
    the total over all of them; returns the total norm before clipping."""
    from torch.distributed.tensor import DTensor

    params = [p for p in parameters if p.grad is not None]
    groups: dict = {}
    for p in params:
        groups.setdefault(id(p.device_mesh) if isinstance(p, DTensor) else None, []).append(p)
    if len(groups) <= 1:
        return torch.nn.utils.clip_grad_norm_(params, max_norm)
    norms = []
    for group in groups.values():
        n = torch.nn.utils.get_total_norm([p.grad for p in group])
        norms.append(n.full_tensor() if isinstance(n, DTensor) else n)
    total = torch.linalg.vector_norm(torch.stack(norms))
    coef = min(1.0, max_norm / (float(total) + 1e-6))  # as torch's clip_grads_with_norm_
    if coef < 1.0:
        for p in params:
            (p.grad.to_local() if isinstance(p.grad, DTensor) else p.grad).mul_(coef)
    return total
