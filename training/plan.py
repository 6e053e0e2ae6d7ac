"""Will it fit? Memory per device of a training configuration, from the model's shapes alone.

    brickyard model plan dbrx-moe-a --gpus 8 --gpu-memory 80GB --seq-len 4096 --micro-batch 1

What one device holds, under the parallelism of `brickyard.training.parallel` (FSDP2 over every device,
experts optionally over an expert-parallel dimension of the same devices):
  parameters   fp32 master weights, 1/gpus of them (FSDP2 shards every parameter over every device;
               with expert parallelism the experts are split over `ep` devices and sharded over
               the other gpus/ep, which is again 1/gpus of them)
  gradients    fp32, sharded the same way
  optimizer    AdamW's two fp32 moments, sharded the same way
  activations  what autograd keeps for backward in one micro-batch (counted tensor by tensor from
               the model's code below; with activation checkpointing only each block's input, plus
               one block recomputed in backward)
  working      FSDP2's gathered parameters (the root's embedding and head, the block in compute and
               the one prefetched, in the compute dtype) and one block's unsharded fp32 gradient;
               the logits (the model's output holds them) and their gradient at the start of
               backward (fp32, then the compute dtype); with expert parallelism the all-to-all buffers
Compute dtype: bf16 on GPUs (mixed precision), fp32 on CPU. A configuration fits when the total is
within USABLE (90%) of the device's memory: the rest is for the CUDA context, NCCL's buffers and
the caching allocator's fragmentation, which no shape predicts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model (and torch) load only when a plan is computed: `brickyard --help` stays fast
    from ..model.moe import ModelConfig

USABLE = 0.9  # share of device memory a plan may fill


@dataclass
class MemoryPlan:
    gpus: int
    ep: int
    seq_len: int
    micro_batch: int
    activation_checkpointing: bool
    compute_bytes: int  # bytes per activation element: 2 (bf16) on GPU, 4 on CPU
    parameters: int  # bytes on one device
    gradients: int
    optimizer: int
    activations: int
    working: int
    device_memory: int | None  # bytes of one device; None: not said

    @property
    def total(self) -> int:
        return self.parameters + self.gradients + self.optimizer + self.activations + self.working

    @property
    def fits(self) -> bool | None:
        return None if self.device_memory is None else self.total <= USABLE * self.device_memory

    def rows(self) -> list[tuple[str, str]]:
        out = [(k, gib(getattr(self, k))) for k in ("parameters", "gradients", "optimizer", "activations", "working")]
        out.append(("total", gib(self.total)))
        if self.device_memory is not None:
            out.append(("device", f"{gib(self.device_memory)} ({gib(USABLE * self.device_memory)} usable)"))
            out.append(("fits", "yes" if self.fits else "no"))
        return out


def gib(n: float) -> str:
    return f"{n / 2**30:,.2f} GiB"


def parse_bytes(text: str) -> int:
    """'80GB' (10^9), '80GiB' (2^30), '512MB', '24g', or a plain number of bytes."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmgt]?)(i?)(b?)\s*", text.lower())
    if not m:
        raise ValueError(f"cannot read {text!r} as a size; write it like 80GB or 141GiB")
    value, unit, binary = float(m.group(1)), m.group(2), m.group(3)
    power = "_kmgt".index(unit) if unit else 0
    return int(value * (1024 if binary or (unit and not m.group(4)) else 1000) ** power)


def activation_bytes_per_token(cfg: ModelConfig, a: int) -> dict[str, float]:
    """Bytes autograd saves per token, per layer and after the last layer; `a` bytes per activation.

    Counted from model/moe.py (D model, Q = D + 2*K*Hd the qkv width, k top_k, F expert_ffn):
    attention: norm_1's input and its mean/rstd, Wqkv's input, the clamp's input (Q), SDPA's q, k, v,
    output and log-sum-exp, out_proj's input; MoE: norm_2's input, the router's fp32 input, softmax
    probabilities, log-sum-exp input, top-k ids and weights; per assignment (k per token) the
    sorted tokens (D), the GLU's four F-wide tensors, the expert output (D), its gate, and two
    int64 indices. After the blocks: norm_f's and lm_head's inputs and the fp32 log-softmax (vocab).
    """
    D, k, Fh, E, H = cfg.d_model, cfg.top_k, cfg.expert_ffn, cfg.n_experts, cfg.n_heads
    kv = 2 * cfg.n_kv_heads * cfg.head_dim
    Q = D + kv
    attn = a * (D + D + (Q if cfg.clip_qkv is not None else 0) + D + kv + D + D) + 8 + 4 * H
    router = a * D + 4 * D + 8 * E + 12 * k + 20
    experts = k * (a * (2 * D + 4 * Fh + 1) + 16)
    layer = attn + router + experts
    final = 2 * a * D + 8 + 4 * cfg.vocab_size + 16  # + embedding and target ids
    return {"layer": layer, "block_input": a * D, "final": final}


def plan_memory(cfg: ModelConfig, gpus: int, seq_len: int, micro_batch: int, ep: int = 1,
                activation_checkpointing: bool = False, device_memory: int | None = None,
                compute_bytes: int = 2) -> MemoryPlan:
    """The per-device memory of training `cfg` on `gpus` devices (see the module doc)."""
    if gpus < 1 or ep < 1 or gpus % ep or cfg.n_experts % ep:
        raise ValueError(f"ep {ep} must divide both the device count {gpus} and the expert count {cfg.n_experts}")
    from ..model.presets import param_counts

    counts = param_counts(cfg)
    P = counts["total"]
    per_device = -(-P // gpus)  # FSDP2 pads each parameter to a multiple of the shard count; negligible here
    a = compute_bytes
    D = cfg.d_model
    experts_per_layer = 3 * cfg.n_experts * cfg.expert_ffn * D
    block = (P - counts["embedding"] - D) // cfg.n_layers  # one block's parameters
    block_gathered = block - experts_per_layer + experts_per_layer // ep  # EP: only the local experts are gathered
    root = counts["embedding"] + D

    n = seq_len * micro_batch
    act = activation_bytes_per_token(cfg, a)
    if activation_checkpointing:  # each block keeps its input; backward recomputes one block at a time
        activations = n * (cfg.n_layers * act["block_input"] + act["layer"] + act["final"])
    else:
        activations = n * (cfg.n_layers * act["layer"] + act["final"])
    logits = n * cfg.vocab_size * (a + 4 + a)  # held by the output; their gradient in fp32, then in the compute dtype
    dispatch = 2 * n * cfg.top_k * D * a if ep > 1 else 0  # tokens out and back, one layer at a time
    working = a * (root + 2 * block_gathered) + 4 * block_gathered + logits + dispatch
    return MemoryPlan(gpus, ep, seq_len, micro_batch, activation_checkpointing, a, parameters=4 * per_device,
                      gradients=4 * per_device, optimizer=8 * per_device, activations=int(activations),
                      working=int(working), device_memory=device_memory)


def render(preset: str, p: MemoryPlan) -> str:
    head = (f"{preset} on {p.gpus} device(s), seq_len {p.seq_len}, micro-batch {p.micro_batch}, ep {p.ep}, "
            f"activation checkpointing {'on' if p.activation_checkpointing else 'off'}, "
            f"{'bf16' if p.compute_bytes == 2 else 'fp32'} compute; per device:")
    width = max(len(k) for k, _ in p.rows())
    return "\n".join([head] + [f"  {k:<{width}}  {v}" for k, v in p.rows()])


def available_memory(device) -> int:
    """Bytes the run may use on `device`: the GPU's memory, or on CPU the memory the OS calls available."""
    import torch

    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    from pathlib import Path

    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def add_arguments(p) -> None:
    """The options of `brickyard model plan`."""
    p.add_argument("preset", help="a model preset (brickyard model info lists them)")
    p.add_argument("--gpus", type=int, default=1, help="devices the model is sharded over (default 1)")
    p.add_argument("--gpu-memory", default="80GB", help="memory of one device, e.g. 80GB or 141GiB (default 80GB)")
    p.add_argument("--seq-len", type=int, help="tokens per sample (default: the preset's max_seq_len, at most 4096)")
    p.add_argument("--micro-batch", type=int, default=1, help="samples per forward pass on one device (default 1)")
    p.add_argument("--ep", type=int, default=1, help="expert-parallel degree: experts split over this many devices")
    p.add_argument("--activation-checkpointing", action="store_true", help="recompute each block in backward")


def run(args) -> int:
    """`brickyard model plan`: print the per-device memory of a preset and whether it fits."""
    from ..model.presets import PRESETS, get_preset
    from ..pipelines.errors import ConfigError

    if args.preset not in PRESETS:
        raise ConfigError(f"unknown model preset {args.preset!r}; presets: {', '.join(PRESETS)}")
    cfg = get_preset(args.preset)
    try:
        memory = parse_bytes(args.gpu_memory)
        p = plan_memory(cfg, args.gpus, args.seq_len or min(cfg.max_seq_len, 4096), args.micro_batch, args.ep,
                        args.activation_checkpointing, memory)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    print(render(args.preset, p))
    return 0
