"""Hugging Face interop: brickyard's MoE as `transformers.DbrxForCausalLM`, in memory.

brickyard keeps DBRX's parameter layout, so the conversion is a renaming of state-dict keys plus a
`DbrxConfig`. Saving is the caller's business (`save_pretrained`); nothing here touches files.
Only the LayerNorm variant exists in DBRX; an RMSNorm config cannot be exported.
"""

from __future__ import annotations

import torch

from .moe import ModelConfig, MoETransformer

_BLOCK_KEYS = {
    "norm_1.weight": "norm_attn_norm.norm_1.weight",
    "attn.Wqkv.weight": "norm_attn_norm.attn.Wqkv.weight",
    "attn.out_proj.weight": "norm_attn_norm.attn.out_proj.weight",
    "norm_2.weight": "norm_attn_norm.norm_2.weight",
    "ffn.router.layer.weight": "ffn.router.layer.weight",
    "ffn.experts.w1": "ffn.experts.mlp.w1",
    "ffn.experts.v1": "ffn.experts.mlp.v1",
    "ffn.experts.w2": "ffn.experts.mlp.w2",
}


def hf_config(cfg: ModelConfig):
    from transformers import DbrxConfig

    if cfg.norm != "layernorm":
        raise ValueError("DbrxForCausalLM has LayerNorm only; a model with norm='rmsnorm' cannot be exported")
    return DbrxConfig(
        d_model=cfg.d_model, n_heads=cfg.n_heads, n_layers=cfg.n_layers, max_seq_len=cfg.max_seq_len,
        vocab_size=cfg.vocab_size, resid_pdrop=0.0, emb_pdrop=0.0, tie_word_embeddings=False,
        attn_config={"kv_n_heads": cfg.n_kv_heads, "rope_theta": cfg.rope_theta, "clip_qkv": cfg.clip_qkv, "attn_pdrop": 0.0},
        ffn_config={
            "ffn_hidden_size": cfg.expert_ffn, "moe_num_experts": cfg.n_experts, "moe_top_k": cfg.top_k,
            "moe_normalize_expert_weights": 1.0,  # L1: the top-k weights sum to 1, as brickyard's router
            "moe_loss_weight": cfg.lb_loss_coef, "moe_jitter_eps": None, "ffn_act_fn": {"name": "silu"},
        },
    )


def to_hf_state_dict(model: MoETransformer) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("blocks."):
            _, i, rest = key.split(".", 2)
            out[f"transformer.blocks.{i}.{_BLOCK_KEYS[rest]}"] = value
        elif key == "lm_head.weight":
            out[key] = value
        else:  # wte.weight, norm_f.weight
            out[f"transformer.{key}"] = value
    return out


def to_hf(model: MoETransformer):
    """A `DbrxForCausalLM` holding the same weights (fp32, eval mode)."""
    from transformers import DbrxForCausalLM

    hf = DbrxForCausalLM(hf_config(model.cfg))
    missing, unexpected = hf.load_state_dict(to_hf_state_dict(model), strict=False)
    missing = [k for k in missing if "rotary_emb" not in k]
    if missing or unexpected:
        raise RuntimeError(f"state dict mismatch: missing {missing}, unexpected {unexpected}")
    return hf.eval()
