"""Named model sizes, from a CPU toy to DBRX itself, and their parameter counts.

DBRX's published shape: 40 layers, d_model 6144, 48 heads (8 kv heads), 16 experts with top-4,
expert FFN 10752, vocabulary 100352, RoPE theta 5e5, clip_qkv 8, 32k context: 132B total,
36B active. The DBRX authors also name two smaller MoEs they trained for ablations, MoE-A
(7.7B total / 2.2B active) and MoE-B (23.5B / 6.6B), without publishing their shapes; the shapes
below are ours, chosen with DBRX's recipe (16 experts, top-4, GQA with 128-dim heads where it
fits) to land on those totals. `tinyllama` is a dense model of TinyLlama's shape for comparison
(one expert, top-1: the MoE layer reduces to a plain GLU FFN).
"""

from __future__ import annotations

from dataclasses import replace

from .moe import ModelConfig

PRESETS: dict[str, ModelConfig] = {
    "tiny": ModelConfig(
        vocab_size=100352, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=512,
        n_experts=8, top_k=2, expert_ffn=96,
    ),
    "small": ModelConfig(
        vocab_size=100352, d_model=384, n_layers=8, n_heads=6, n_kv_heads=2, max_seq_len=2048,
        n_experts=16, top_k=4, expert_ffn=256,
    ),
    "dbrx-moe-a": ModelConfig(
        vocab_size=100352, d_model=2048, n_layers=18, n_heads=16, n_kv_heads=8, max_seq_len=4096,
        n_experts=16, top_k=4, expert_ffn=3968,
    ),
    "dbrx-moe-b": ModelConfig(
        vocab_size=100352, d_model=3072, n_layers=28, n_heads=24, n_kv_heads=8, max_seq_len=4096,
        n_experts=16, top_k=4, expert_ffn=5376,
    ),
    "dbrx": ModelConfig(
        vocab_size=100352, d_model=6144, n_layers=40, n_heads=48, n_kv_heads=8, max_seq_len=32768,
        n_experts=16, top_k=4, expert_ffn=10752, rope_theta=5e5, clip_qkv=8.0,
    ),
    "tinyllama": ModelConfig(
        vocab_size=32000, d_model=2048, n_layers=22, n_heads=32, n_kv_heads=4, max_seq_len=2048,
        n_experts=1, top_k=1, expert_ffn=5632, norm="rmsnorm", rope_theta=1e4, clip_qkv=None,
        lb_loss_coef=0.0,
    ),
}


def get_preset(name: str, **overrides) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; presets: {', '.join(PRESETS)}")
    return replace(PRESETS[name], **overrides)


def param_counts(cfg: ModelConfig) -> dict[str, int]:
    """Total and active parameters, counted from the shapes.

    Active = what one token's computation touches: every dense weight, its top_k experts, and
    one row of the input embedding (a lookup, not a matmul). With that definition DBRX comes to
    131.6B total / 35.9B active against the published 132B / 36B.
    """
    d, hd = cfg.d_model, cfg.head_dim
    attn = d * (d + 2 * cfg.n_kv_heads * hd) + d * d  # Wqkv + out_proj
    expert = 3 * d * cfg.expert_ffn  # w1, v1, w2
    norms = 2 * d  # norm_1, norm_2 (RMSNorm and bias-free LayerNorm: one vector each)
    router = d * cfg.n_experts
    per_layer = attn + cfg.n_experts * expert + router + norms
    embed = 2 * cfg.vocab_size * d  # wte and lm_head (not tied)
    total = cfg.n_layers * per_layer + embed + d
    active = total - cfg.n_layers * (cfg.n_experts - cfg.top_k) * expert - (cfg.vocab_size - 1) * d
    return {"total": total, "active": active, "embedding": embed}


def flops_per_token(cfg: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token (forward + backward): 6 * active non-embedding params + attention."""
    c = param_counts(cfg)
    dense = 6 * c["active"]  # the lm_head matmul counts; the wte lookup is one row
    attention = 12 * cfg.n_layers * cfg.d_model * seq_len / 2  # causal: half the score matrix
    return dense + attention
