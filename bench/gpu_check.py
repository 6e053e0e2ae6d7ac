"""The GPU-only checks, one at a time: `bench/gpu_check.sh` runs each in its own process.

    .venv/bin/python bench/gpu_check.py CHECK        CHECK: one of CHECKS below

Each prints one last line `PASS <check>: ...`, `FAIL <check>: ...` or `SKIP <check>: ...` (no GPU,
or no kernel for it on this GPU). Worlds are single-GPU (a process group of one over NCCL), so
one GPU runs everything.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

CHECKS = ["bf16", "compile", "fsdp_nccl", "grouped_mm", "flex_masking", "throughput_small", "throughput_largest"]


class Skip(Exception):
    pass


def world_of_one(**parallel):
    from brickyard.training.config import ParallelSettings
    from brickyard.training.parallel import init_distributed

    os.environ.setdefault("TORCHINDUCTOR_FX_GRAPH_CACHE", "1")
    settings = ParallelSettings(device="cuda", **parallel)
    return init_distributed(settings), settings


def steps(model, batches, lr=1e-3) -> list[float]:
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for b in batches:
        out = model(b[:, :-1], b[:, 1:])
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(out.ce_loss.item())
    return losses


def tiny_batches(n=3, vocab=4096):
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, vocab, (4, 129), generator=g).cuda() for _ in range(n)]


def check_bf16() -> str:
    from brickyard.model.presets import get_preset
    from brickyard.training.parallel import build_model, param_dtype

    world, settings = world_of_one(mixed_precision="bf16")
    cfg = get_preset("tiny", vocab_size=4096)
    assert param_dtype(world, settings) == torch.bfloat16
    bf16 = steps(build_model(cfg, world, settings, seed=0), tiny_batches())
    from brickyard.training.config import ParallelSettings

    fp32 = steps(build_model(cfg, world, ParallelSettings(device="cuda", mixed_precision="fp32"), seed=0), tiny_batches())
    worst = max(abs(a - b) / b for a, b in zip(bf16, fp32, strict=True))
    assert worst < 0.02, (bf16, fp32)
    return f"FSDP2 bf16 params / fp32 reduce: 3 steps' losses within {worst:.2%} of fp32 ({bf16[-1]:.4f} vs {fp32[-1]:.4f})"


def check_compile() -> str:
    from brickyard.model.presets import get_preset
    from brickyard.training.parallel import build_model

    world, settings = world_of_one(compile=True, mixed_precision="fp32")
    cfg = get_preset("tiny", vocab_size=4096)
    t = time.perf_counter()
    compiled = steps(build_model(cfg, world, settings, seed=0), tiny_batches())
    seconds = time.perf_counter() - t
    from brickyard.training.config import ParallelSettings

    eager = steps(build_model(cfg, world, ParallelSettings(device="cuda", mixed_precision="fp32"), seed=0), tiny_batches())
    worst = max(abs(a - b) / b for a, b in zip(compiled, eager, strict=True))
    assert worst < 1e-3, (compiled, eager)
    return f"torch.compile per block: 3 steps within {worst:.1e} of eager (compile + steps {seconds:.0f} s)"


def check_fsdp_nccl() -> str:
    import torch.distributed as dist
    from brickyard.model.presets import get_preset
    from brickyard.training.parallel import build_model
    from torch.distributed.tensor import DTensor

    world, settings = world_of_one()
    assert dist.get_backend() == "nccl", dist.get_backend()
    model = build_model(get_preset("tiny", vocab_size=4096), world, settings, seed=0)
    assert all(isinstance(p, DTensor) and p.is_cuda for p in model.parameters())
    losses = steps(model, tiny_batches(5), lr=3e-3)
    assert losses[-1] < losses[0], losses
    return f"FSDP2 over NCCL, world of one: loss {losses[0]:.3f} -> {losses[-1]:.3f} in 5 steps"


def check_grouped_mm() -> str:
    from brickyard.model.moe import Experts, ModelConfig, grouped_mm_supported

    x = torch.zeros(8, 64, device="cuda", dtype=torch.bfloat16)
    if not grouped_mm_supported(x):
        raise Skip(f"no grouped_mm kernel on {torch.cuda.get_device_name()} (needs bf16, compute capability 8.0+)")
    cfg = ModelConfig(vocab_size=256, d_model=256, n_layers=1, n_heads=4, n_kv_heads=2, n_experts=8, top_k=2, expert_ffn=512)
    ex = Experts(cfg).cuda()
    for p in ex.parameters():
        torch.nn.init.normal_(p, 0, 0.02)
    ex = ex.to(torch.bfloat16)
    counts = torch.tensor([300, 0, 17, 1000, 5, 64, 128, 2], device="cuda")
    xs = torch.randn(int(counts.sum()), 256, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    ref = ex.looped_glu(xs, counts)
    torch.cuda.set_sync_debug_mode("error")  # the grouped path must not wait for the host
    try:
        y = ex.grouped_glu(xs, counts)
        y.float().sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    err = (y.float() - ref.float()).abs().max().item()
    assert err < 2e-2, err
    return f"F.grouped_mm forward+backward without host syncs, max difference to the loop {err:.1e}"


def check_flex_masking() -> str:
    from brickyard.model.moe import Attention, MoETransformer, document_mask, document_positions
    from brickyard.model.presets import get_preset

    torch.manual_seed(0)
    cfg = get_preset("tiny", vocab_size=4096)
    idx = torch.randint(0, 4096, (2, 256), device="cuda")
    doc_ids = torch.zeros_like(idx)
    doc_ids[:, 100:] = 1
    doc_ids[1, 200:] = 2
    assert not isinstance(document_mask(doc_ids), torch.Tensor)  # a FlexAttention BlockMask on CUDA
    # attention alone: FlexAttention's block mask against SDPA with the boolean mask, same GPU
    attn = Attention(cfg).cuda()
    x = torch.randn(2, 256, cfg.d_model, device="cuda")
    pos = document_positions(doc_ids)
    with torch.no_grad():
        vs_sdpa = (attn(x, pos, doc_mask=document_mask(doc_ids)) - attn(x, pos, doc_mask=document_mask(doc_ids, flex=False))).abs().max().item()
    # the whole model: a later document does not see the one before it
    model = MoETransformer(cfg).cuda().eval()
    changed = idx.clone()
    changed[:, :100] = torch.randint(0, 4096, (2, 100), device="cuda")
    with torch.no_grad():
        a, b = model(idx, doc_ids=doc_ids).logits, model(changed, doc_ids=doc_ids).logits
    leak = (a[:, 100:] - b[:, 100:]).abs().max().item()
    assert leak < 1e-4 and vs_sdpa < 1e-4, (leak, vs_sdpa)
    return f"FlexAttention block mask equals the SDPA boolean mask ({vs_sdpa:.1e}); later documents unchanged by earlier ones ({leak:.1e})"


def throughput(preset: str, seq_len: int, micro: int, checkpointing: bool, n_steps: int = 8) -> str:
    from brickyard.model.presets import flops_per_token, get_preset
    from brickyard.training.parallel import build_model
    from brickyard.training.train import peak_flops

    world, settings = world_of_one(activation_checkpointing=checkpointing)
    cfg = get_preset(preset)
    model = build_model(cfg, world, settings, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = torch.randint(0, cfg.vocab_size, (micro, seq_len + 1), device="cuda")  # synthetic tokens
    times = []
    for _ in range(n_steps):
        t = time.perf_counter()
        model(batch[:, :-1], batch[:, 1:]).loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    tok_s = micro * seq_len / statistics.median(times[2:])
    peak = peak_flops(world.device, None)
    mfu = f", MFU {flops_per_token(cfg, seq_len) * tok_s / peak:.1%} of {peak / 1e12:.0f} TFLOP/s" if peak else ""
    mem = torch.cuda.max_memory_allocated() / 2**30
    return (f"{preset}, {micro} x {seq_len} tokens, activation checkpointing {'on' if checkpointing else 'off'}: "
            f"{tok_s:,.0f} tokens/s{mfu}, peak {mem:.1f} GiB")


def check_throughput_small() -> str:
    return throughput("small", 2048, 8, False)


def check_throughput_largest() -> str:
    """The largest preset the memory plan says fits this GPU (with activation checkpointing)."""
    from brickyard.model.presets import PRESETS, param_counts
    from brickyard.training.plan import available_memory, plan_memory

    memory = available_memory(torch.device("cuda", 0))
    fitting = [n for n in PRESETS if plan_memory(PRESETS[n], 1, 2048, 1, activation_checkpointing=True,
                                                 device_memory=memory).fits]
    best = max(fitting, key=lambda n: param_counts(PRESETS[n])["total"])
    return throughput(best, 2048, 1, True, n_steps=6)


def main(name: str) -> int:
    if name not in CHECKS:
        print(f"FAIL {name}: unknown check; checks: {', '.join(CHECKS)}")
        return 1
    if not torch.cuda.is_available():
        print(f"SKIP {name}: no GPU here")
        return 0
    try:
        line = f"PASS {name}: {globals()['check_' + name]()}"
    except Skip as e:
        line = f"SKIP {name}: {e}"
    except Exception as e:  # a check that breaks is a failed check, with its reason on one line
        line = f"FAIL {name}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
    finally:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()
    print(line, flush=True)
    return 1 if line.startswith("FAIL") else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ""))
