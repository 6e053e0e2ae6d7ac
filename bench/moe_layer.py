"""The MoE model's speed and memory against its peers, measured in the same run.

    .venv/bin/python bench/moe_layer.py [--device cpu|cuda] [--preset small]

1. forward + backward of the MoE model against a dense model with the same active parameters
   (one GLU expert top_k times as wide: the same FLOPs per token) on the same batch; prints
   moe / dense (goal on GPU: at most 1.3).
2. the dropless expert paths (tokens sorted by expert): grouped matmuls (`F.grouped_mm`, one
   kernel for all experts, where the device has it: bf16 on CUDA, compute capability 8.0 or more)
   and one matmul per expert (the loop, everywhere), against the naive loop over tokens; forward
   and forward + backward. Where the grouped path is not available it says so.
3. activation memory of one MoE layer as the token count grows: bytes saved for backward per
   token, which stays flat when nothing scales with tokens x experts. On CUDA the allocator's
   peak is printed too.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from brickyard.model.moe import MoEFFN, MoETransformer, glu, grouped_mm_supported  # noqa: E402
from brickyard.model.presets import get_preset, param_counts  # noqa: E402


def timed(fn, device, repeat=5, warmup=2) -> float:
    for _ in range(warmup):
        fn()
    if device == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def naive_loop(ffn: MoEFFN, x: torch.Tensor) -> torch.Tensor:
    cfg = ffn.router.cfg
    route = ffn.router(x)
    w1, v1, w2 = ffn.experts.weights()
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(cfg.top_k):
            e = int(route.top_experts[t, j])
            out[t] += route.top_weights[t, j].to(x.dtype) * glu(x[t:t + 1], w1[e], v1[e], w2[e])[0]
    return out


def saved_bytes(fn, module) -> int:
    """Bytes of distinct activations autograd keeps for backward while running fn (weights excluded)."""
    weights = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            seen[(t.data_ptr(), t.numel())] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(seen.values())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    args = ap.parse_args()
    dev = args.device
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    torch.manual_seed(0)

    moe_cfg = get_preset(args.preset)
    dense_cfg = replace(moe_cfg, n_experts=1, top_k=1, expert_ffn=moe_cfg.top_k * moe_cfg.expert_ffn)
    pm, pd = param_counts(moe_cfg), param_counts(dense_cfg)
    print(f"device {dev} ({dtype}), preset {args.preset}: MoE {pm['total'] / 1e6:.1f}M total / {pm['active'] / 1e6:.1f}M active; "
          f"dense {pd['total'] / 1e6:.1f}M; batch {args.batch} x {args.seq}")

    idx = torch.randint(0, moe_cfg.vocab_size, (args.batch, args.seq + 1), device=dev)
    results = {}
    for name, cfg in (("moe", moe_cfg), ("dense", dense_cfg)):
        model = MoETransformer(cfg).to(dev, dtype)

        def step(model=model):
            out = model(idx[:, :-1], idx[:, 1:])
            out.loss.backward()
            model.zero_grad(set_to_none=True)

        results[name] = timed(step, dev)
        del model
    tokens = args.batch * args.seq
    print(f"1. forward+backward: moe {results['moe'] * 1e3:.1f} ms ({tokens / results['moe']:.0f} tok/s), "
          f"dense {results['dense'] * 1e3:.1f} ms; ratio moe / dense = {results['moe'] / results['dense']:.2f}")

    layer_cfg = replace(moe_cfg)
    ffn = MoEFFN(layer_cfg).to(dev, dtype)
    for p in ffn.parameters():
        torch.nn.init.normal_(p, 0, 0.02)
    n = 512
    x = torch.randn(n, layer_cfg.d_model, device=dev, dtype=dtype)
    route = ffn.router(x)
    order = torch.argsort(route.top_experts.flatten(), stable=True)
    x_sorted = x[order // layer_cfg.top_k]
    counts = torch.bincount(route.top_experts.flatten(), minlength=layer_cfg.n_experts)
    ex = ffn.experts
    with torch.no_grad():
        slow = timed(lambda: naive_loop(ffn, x), dev, repeat=2, warmup=1)
        looped = timed(lambda: ex.looped_glu(x_sorted, counts), dev)
        ref = ex.looped_glu(x_sorted, counts)
    print(f"2. expert compute, {n} tokens x top-{layer_cfg.top_k} ({dtype}): naive token loop {slow * 1e3:.1f} ms")
    w = x_sorted.detach().requires_grad_()

    def train_step(fn):
        fn(w, counts).float().sum().backward()

    looped_train = timed(lambda: train_step(ex.looped_glu), dev)
    print(f"   per-expert loop:   forward {looped * 1e3:8.2f} ms, forward+backward {looped_train * 1e3:8.2f} ms "
          f"(speedup over the token loop {slow / looped:.0f}x)")
    if grouped_mm_supported(x_sorted):
        with torch.no_grad():
            grouped = timed(lambda: ex.grouped_glu(x_sorted, counts), dev)
            err = (ex.grouped_glu(x_sorted, counts).float() - ref.float()).abs().max().item()
        grouped_train = timed(lambda: train_step(ex.grouped_glu), dev)
        print(f"   grouped_mm:        forward {grouped * 1e3:8.2f} ms, forward+backward {grouped_train * 1e3:8.2f} ms "
              f"(loop / grouped: {looped / grouped:.2f}x forward, {looped_train / grouped_train:.2f}x with backward; "
              f"max difference {err:.1e})")
    else:
        print(f"   grouped_mm:        SKIPPED on {dev} {dtype}: its kernels are bf16 on CUDA (compute capability 8.0+); "
              "training here uses the per-expert loop")

    print("3. one MoE layer, activation memory saved for backward:")
    for n in (256, 1024, 4096, 16384):
        x = torch.randn(n, layer_cfg.d_model, device=dev, dtype=dtype, requires_grad=True)
        if dev == "cuda":
            torch.cuda.reset_peak_memory_stats()
        b = saved_bytes(lambda x=x: ffn(x[None])[0].sum(), ffn)
        peak = f", CUDA peak {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB" if dev == "cuda" else ""
        print(f"   {n:6d} tokens: {b / 2**20:8.2f} MiB, {b / n:8.0f} bytes per token{peak}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
