"""Expert parallelism: each rank of an `ep` group holds E/ep of every layer's experts, and tokens
travel to the rank that owns their expert and back with all-to-all (as in torchtitan, MegaBlocks).

Applied from outside the model (model/ stays free of torch.distributed):
  - each `Experts` module's w1/v1/w2 (E*F, D) become DTensors sharded by rows over the "ep" mesh
    dimension, so rank c holds experts [c*E/ep, (c+1)*E/ep); FSDP2 then shards them further over
    the "dp" dimension (the other world/ep ranks), as it shards every other parameter over all ranks;
  - the module's forward is replaced by `dispatch`: route locally, send each assignment to its
    expert's rank (all_to_all_single over the ep group), compute the local experts, send the
    results back, combine with the router's weights. The router, its load-balancing and z losses
    and the expert load statistics are unchanged: they are computed where the tokens are.

Gradients: an expert's gradient holds the contributions of the tokens of every rank of its ep
group, and FSDP2 averages it over the dp dimension only (world/ep ranks), where the dense
parameters are averaged over all world ranks; so the experts' gradient is scaled by 1/ep on the
way back (`scale_grad`), which makes every gradient the mean over all ranks, as without ep.

all_to_all_single runs on gloo (CPU) as on NCCL; the split sizes must be known on the host, so the
dispatch reads the per-rank counts back once per layer (.tolist()), as every all-to-all MoE does.
"""

from __future__ import annotations

import types

import torch
import torch.distributed as dist
from torch import nn


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_grad(x: torch.Tensor, scale: float) -> torch.Tensor:
    """x in forward; its gradient times `scale` in backward."""
    return _ScaleGrad.apply(x, scale)


def dispatch(experts: nn.Module, x: torch.Tensor, route, group, ep: int) -> torch.Tensor:
    """The forward of an expert-parallel `Experts` module: x (N, D) local tokens -> (N, D)."""
    from torch.distributed._functional_collectives import all_to_all_single_autograd
    from torch.distributed.tensor import DTensor

    cfg = experts.cfg
    E, k = cfg.n_experts, cfg.top_k
    local_E = E // ep
    flat = route.top_experts.flatten()  # (N*k,) global expert ids
    order = torch.argsort(flat, stable=True)  # by expert, hence by owning rank (experts are contiguous per rank)
    token_of = order // k
    counts = torch.bincount(flat, minlength=E)  # (E,) assignments this rank sends to each expert
    received = torch.empty_like(counts)  # (ep * local_E,): from each source rank, per local expert
    dist.all_to_all_single(received, counts, group=group)
    send_splits = counts.view(ep, local_E).sum(1).tolist()
    recv_splits = received.view(ep, local_E).sum(1).tolist()
    x_in = all_to_all_single_autograd(x[token_of], recv_splits, send_splits, group)  # (M, D), grouped by source rank
    # within each source's rows, sorted by local expert: regroup all rows by local expert
    local_expert = torch.repeat_interleave(torch.arange(local_E, device=x.device).repeat(ep), received)
    by_expert = torch.argsort(local_expert, stable=True)
    weights = []
    for w in (experts.w1, experts.v1, experts.w2):  # FSDP2 has gathered them over dp: this rank's experts
        local = w.to_local() if isinstance(w, DTensor) else w
        weights.append(scale_grad(local, 1.0 / ep).view(local_E, cfg.expert_ffn, cfg.d_model))
    y = experts.compute(x_in[by_expert], received.view(ep, local_E).sum(0), weights=tuple(weights))
    y = torch.empty_like(y).index_copy(0, by_expert, y)  # back to arrival order
    y = all_to_all_single_autograd(y, send_splits, recv_splits, group)  # (N*k, D), sorted by expert as sent
    gate = route.top_weights.flatten()[order].to(y.dtype)
    return torch.zeros_like(x).index_add_(0, token_of, y * gate[:, None])


def shard_experts(model: nn.Module, ep_mesh) -> None:
    """Split every `Experts` module's weights over `ep_mesh` by rows (whole experts) and route its
    forward through `dispatch`. The model may be on the meta device (shapes only) or real."""
    from torch.distributed.tensor import DTensor, Shard

    from ..model.moe import Experts

    ep = ep_mesh.size()
    rank = ep_mesh.get_local_rank()
    group = ep_mesh.get_group()
    for module in model.modules():
        if not isinstance(module, Experts):
            continue
        if module.cfg.n_experts % ep:
            raise ValueError(f"parallel.ep: {ep} does not divide n_experts {module.cfg.n_experts}")
        for name in ("w1", "v1", "w2"):
            full = getattr(module, name)
            rows = full.shape[0] // ep
            local = full.detach()[rank * rows:(rank + 1) * rows].clone()
            setattr(module, name, nn.Parameter(DTensor.from_local(local, ep_mesh, [Shard(0)], run_check=False)))
        module.forward = types.MethodType(lambda self, x, route: dispatch(self, x, route, group, ep), module)
