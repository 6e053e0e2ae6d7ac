"""The memory plan against memory measured on CPU: parameters, gradients and AdamW state to the
byte, activations within 20% of what autograd really saves."""

from __future__ import annotations

import pytest
import torch
from brickyard.model.moe import MoETransformer
from brickyard.model.presets import get_preset
from brickyard.training.plan import parse_bytes, plan_memory

CONFIGS = {
    "tiny": get_preset("tiny", vocab_size=4096),
    "wider": get_preset("tiny", vocab_size=2048, d_model=128, n_layers=3, n_heads=4, n_kv_heads=1, n_experts=4,
                        top_k=2, expert_ffn=256),
}


def storage_bytes(tensors) -> int:
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


def saved_activation_bytes(model, idx) -> int:
    """Bytes of distinct tensors autograd keeps for backward in one forward pass, weights excluded."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen = {}

    def pack(t):
        if t.untyped_storage().data_ptr() not in weights:
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(idx[:, :-1], idx[:, 1:])
    return sum(seen.values()), out


@pytest.mark.parametrize("name", list(CONFIGS))
def test_plan_matches_memory_measured_on_cpu(name):
    cfg = CONFIGS[name]
    seq_len, micro = 64, 2
    torch.manual_seed(0)
    model = MoETransformer(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    idx = torch.randint(0, cfg.vocab_size, (micro, seq_len + 1))
    activations, out = saved_activation_bytes(model, idx)
    out.loss.backward()
    opt.step()
    plan = plan_memory(cfg, gpus=1, seq_len=seq_len, micro_batch=micro, compute_bytes=4)
    assert plan.parameters == storage_bytes(model.parameters())
    assert plan.gradients == storage_bytes(p.grad for p in model.parameters())
    assert plan.optimizer == storage_bytes(v for s in opt.state.values() for v in s.values() if v.dim() > 0)
    assert plan.activations == pytest.approx(activations, rel=0.2), (plan.activations, activations)


def test_sizes_and_fits():
    assert parse_bytes("80GB") == 80 * 10**9 and parse_bytes("141GiB") == 141 * 2**30 and parse_bytes("24g") == 24 * 2**30
    with pytest.raises(ValueError, match="write it like 80GB"):
        parse_bytes("eighty")
    dbrx = get_preset("dbrx")
    assert not plan_memory(dbrx, gpus=8, seq_len=4096, micro_batch=1, device_memory=parse_bytes("80GB")).fits
    assert plan_memory(dbrx, gpus=64, seq_len=4096, micro_batch=1, activation_checkpointing=True,
                       device_memory=parse_bytes("80GB")).fits
