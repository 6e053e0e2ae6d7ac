"""The MoE model against references: naive per-token MoE, dense GLU, MHA, RoPE's algebra."""

from __future__ import annotations

import pytest
import torch
from brickyard.model.moe import (
    Attention,
    Experts,
    ModelConfig,
    MoEFFN,
    MoETransformer,
    apply_rope,
    glu,
    rope_cos_sin,
)
from brickyard.model.presets import PRESETS, get_preset, param_counts

torch.manual_seed(0)


def small_cfg(**kw):
    base = dict(vocab_size=256, d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=64,
                n_experts=6, top_k=2, expert_ffn=24)
    base.update(kw)
    return ModelConfig(**base)


def naive_moe(ffn: MoEFFN, x: torch.Tensor) -> torch.Tensor:
    """One token at a time, in plain Python: softmax, top-k, renormalize, weighted GLU experts."""
    cfg = ffn.router.cfg
    w1, v1, w2 = ffn.experts.weights()
    out = []
    for t in x.reshape(-1, cfg.d_model):
        probs = (ffn.router.layer.weight.float() @ t.float()).softmax(-1)
        wts, ids = probs.topk(cfg.top_k)
        wts = wts / wts.sum()
        out.append(sum(w * glu(t[None], w1[e], v1[e], w2[e])[0] for w, e in zip(wts, ids.tolist(), strict=True)))
    return torch.stack(out).view_as(x)


def init(m):
    for p in m.parameters():
        torch.nn.init.normal_(p, 0, 0.3)
    return m


def test_moe_output_and_gradients_equal_the_naive_per_token_reference():
    cfg = small_cfg()
    ffn = init(MoEFFN(cfg)).double()
    x = torch.randn(3, 5, cfg.d_model, dtype=torch.float64, requires_grad=True)
    y, _ = ffn(x)
    ref = naive_moe(ffn, x)
    torch.testing.assert_close(y, ref.to(y.dtype), rtol=1e-6, atol=1e-6)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, *ffn.experts.parameters()], g)
    grads_ref = torch.autograd.grad(ref.to(y.dtype), [x, *ffn.experts.parameters()], g)
    for a, b in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_experts_never_build_a_tokens_by_experts_by_hidden_tensor():
    cfg = small_cfg(n_experts=16, top_k=4, d_model=64, expert_ffn=32)
    ffn = init(MoEFFN(cfg))
    x = torch.randn(1, 256, cfg.d_model)
    biggest = []

    def track(mod, args, out):
        biggest.append(max((a.numel() for a in [*args, out] if torch.is_tensor(a)), default=0))

    ffn.experts.register_forward_hook(track)
    ffn(x)
    assert biggest[0] <= 256 * 4 * max(cfg.d_model, cfg.expert_ffn)  # N*k*D at most, never N*E*D


def test_one_expert_with_top1_is_a_dense_glu_ffn():
    cfg = small_cfg(n_experts=1, top_k=1)
    ffn = init(MoEFFN(cfg))
    x = torch.randn(2, 7, cfg.d_model)
    y, route = ffn(x)
    w1, v1, w2 = ffn.experts.weights()
    torch.testing.assert_close(y, glu(x, w1[0], v1[0], w2[0]), rtol=1e-5, atol=1e-5)
    assert torch.allclose(route.top_weights, torch.ones_like(route.top_weights))


def test_router_weights_renormalize_and_losses_are_reported():
    cfg = small_cfg()
    ffn = init(MoEFFN(cfg))
    route = ffn.router(torch.randn(50, cfg.d_model))
    torch.testing.assert_close(route.top_weights.sum(-1), torch.ones(50))
    assert route.top_weights.dtype == torch.float32
    assert route.lb_loss.item() >= 1.0 - 1e-5  # 1 exactly at perfect balance, more otherwise
    assert route.z_loss.item() > 0
    torch.testing.assert_close(route.load.sum(), torch.tensor(1.0))


def test_router_runs_in_fp32_under_bf16_inputs():
    cfg = small_cfg()
    ffn = init(MoEFFN(cfg)).to(torch.bfloat16)
    y, route = ffn(torch.randn(2, 4, cfg.d_model, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and route.top_weights.dtype == torch.float32


def test_changing_future_tokens_does_not_change_earlier_logits():
    model = MoETransformer(small_cfg()).eval()
    idx = torch.randint(0, 256, (2, 16))
    changed = idx.clone()
    changed[:, 10:] = torch.randint(0, 256, (2, 6))
    a, b = model(idx).logits, model(changed).logits
    torch.testing.assert_close(a[:, :10], b[:, :10])
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_gqa_equals_multi_head_attention_with_repeated_keys_and_values():
    cfg = small_cfg(clip_qkv=None)
    attn = init(Attention(cfg))
    x = torch.randn(2, 9, cfg.d_model)
    pos = torch.arange(9)
    y = attn(x, pos)
    # the same computation spelled out with K and V repeated to every query head
    q, k, v = attn.Wqkv(x).split([cfg.d_model, cfg.n_kv_heads * cfg.head_dim, cfg.n_kv_heads * cfg.head_dim], -1)
    B, T = 2, 9
    q = q.view(B, T, cfg.n_heads, cfg.head_dim).transpose(1, 2)
    k = k.view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
    v = v.view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
    cos, sin = rope_cos_sin(pos, cfg.head_dim, cfg.rope_theta, q.dtype)
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
    rep = cfg.n_heads // cfg.n_kv_heads
    k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    scores = (q @ k.transpose(-1, -2)) / cfg.head_dim**0.5
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    ref = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, T, cfg.d_model)
    torch.testing.assert_close(y, attn.out_proj(ref), rtol=1e-5, atol=1e-5)


def test_rope_scores_depend_only_on_relative_position():
    hd = 16
    q, k = torch.randn(hd), torch.randn(hd)

    def score(m, n):
        cos, sin = rope_cos_sin(torch.tensor([m, n]), hd, 5e5, torch.float64)
        qm = apply_rope(q.double()[None, None, None], cos[0], sin[0])
        kn = apply_rope(k.double()[None, None, None], cos[1], sin[1])
        return (qm * kn).sum().item()

    # angles are computed in fp32 (as in training), so equal up to fp32 rounding of the angle
    assert score(3, 1) == pytest.approx(score(103, 101), rel=1e-5)
    assert score(50, 7) == pytest.approx(score(1050, 1007), rel=1e-5)
    assert score(3, 1) != pytest.approx(score(3, 2), rel=1e-3)


def test_qkv_clipping_clamps_the_projections_before_attention():
    cfg = small_cfg(clip_qkv=0.5)
    clipped = Attention(cfg)
    torch.nn.init.normal_(clipped.Wqkv.weight, 0, 5.0)
    unclipped = Attention(small_cfg(clip_qkv=None))
    unclipped.load_state_dict(clipped.state_dict())
    x, pos = torch.randn(1, 4, cfg.d_model), torch.arange(4)
    assert unclipped.Wqkv(x).abs().max() > 0.5  # the clamp has something to do
    raw = unclipped.Wqkv
    unclipped.Wqkv = Clamped(raw, 0.5)
    torch.testing.assert_close(clipped(x, pos), unclipped(x, pos))
    unclipped.Wqkv = raw
    assert not torch.allclose(clipped(x, pos), unclipped(x, pos))


class Clamped(torch.nn.Module):
    def __init__(self, inner, c):
        super().__init__()
        self.inner, self.c = inner, c

    def forward(self, t):
        return self.inner(t).clamp(-self.c, self.c)


def test_kv_cache_decoding_matches_full_recompute():
    model = MoETransformer(small_cfg()).eval()
    prompt = torch.randint(0, 256, (2, 5))
    out = model.generate(prompt, 8)
    seq = prompt
    for _ in range(8):  # no cache: recompute the whole sequence each step
        seq = torch.cat([seq, model(seq).logits[:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(out, seq)


def test_tiny_model_overfits_one_batch():
    torch.manual_seed(1)
    model = MoETransformer(get_preset("tiny", vocab_size=512))
    idx = torch.randint(0, 512, (4, 33))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        out = model(idx[:, :-1], idx[:, 1:])
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.ce_loss.item())
    assert losses[-1] < 0.2 * losses[0]


@pytest.mark.parametrize("name", list(PRESETS))
def test_parameter_count_formula_matches_the_module(name):
    with torch.device("meta"):
        model = MoETransformer(PRESETS[name])
    assert model.num_params() == param_counts(PRESETS[name])["total"]


@pytest.mark.parametrize("name,total,active,tol", [
    ("dbrx", 132e9, 36e9, 0.01), ("dbrx-moe-a", 7.7e9, 2.2e9, 0.03), ("dbrx-moe-b", 23.5e9, 6.6e9, 0.03),
])
def test_published_sizes(name, total, active, tol):
    c = param_counts(PRESETS[name])
    assert c["total"] == pytest.approx(total, rel=tol) and c["active"] == pytest.approx(active, rel=tol)


def test_dbrx_and_tinyllama_shapes():
    d = PRESETS["dbrx"]
    assert (d.n_layers, d.d_model, d.n_heads, d.n_kv_heads, d.n_experts, d.top_k, d.expert_ffn, d.vocab_size,
            d.rope_theta, d.clip_qkv, d.max_seq_len) == (40, 6144, 48, 8, 16, 4, 10752, 100352, 5e5, 8.0, 32768)
    t = PRESETS["tinyllama"]
    assert (t.n_layers, t.d_model, t.n_heads, t.n_kv_heads, t.expert_ffn, t.n_experts) == (22, 2048, 32, 4, 5632, 1)
    assert 100e6 <= param_counts(PRESETS["small"])["total"] <= 150e6


def test_bad_shapes_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="n_heads 6 is not a multiple of n_kv_heads 4"):
        small_cfg(n_heads=6, n_kv_heads=4, d_model=48)
    with pytest.raises(ValueError, match="top_k 9 must be between 1 and n_experts 6"):
        small_cfg(top_k=9)


def test_experts_module_alone_matches_per_expert_matmuls():
    cfg = small_cfg()
    ex = init(Experts(cfg))
    x = torch.randn(10, cfg.d_model)
    route = init(MoEFFN(cfg)).router(x)
    y = ex(x, route)
    w1, v1, w2 = ex.weights()
    ref = torch.zeros_like(x)
    for j in range(cfg.top_k):
        for t in range(10):
            e = route.top_experts[t, j].item()
            ref[t] += route.top_weights[t, j] * glu(x[t:t + 1], w1[e], v1[e], w2[e])[0]
    torch.testing.assert_close(y, ref, rtol=1e-5, atol=1e-5)


def test_model_package_stays_pure_pytorch():
    from pathlib import Path

    for f in (Path(__file__).resolve().parents[2] / "model").glob("*.py"):
        src = f.read_text()
        for banned in ("torch.distributed", "import pipelines", "from pipelines", "import training", "from training"):
            assert banned not in src, f"{f.name} uses {banned}"


# -- grouped expert matmuls ---------------------------------------------------------------------


def _sorted_tokens(cfg, n=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    counts = torch.bincount(torch.randint(0, cfg.n_experts, (n,), generator=g), minlength=cfg.n_experts)
    counts[1] = 0  # an expert with no tokens
    return torch.randn(int(counts.sum()), cfg.d_model, generator=g), counts


def test_grouped_expert_matmuls_equal_the_per_expert_loop():
    # torch's grouped_mm has a CPU forward (its CPU backward fails, so training on CPU loops)
    cfg = small_cfg()
    ex = init(Experts(cfg))
    x, counts = _sorted_tokens(cfg)
    with torch.no_grad():
        torch.testing.assert_close(ex.grouped_glu(x, counts), ex.looped_glu(x, counts), rtol=1e-5, atol=1e-5)


def test_the_expert_path_is_chosen_by_device_and_dtype():
    from brickyard.model.moe import grouped_mm_supported

    assert not grouped_mm_supported(torch.zeros(2, 2))  # CPU: the loop
    assert not grouped_mm_supported(torch.zeros(2, 2, dtype=torch.bfloat16))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="grouped_mm kernels are CUDA-only")
def test_grouped_path_on_gpu_matches_the_loop_without_host_syncs():
    cfg = small_cfg(d_model=64, expert_ffn=128)
    ffn = init(MoEFFN(cfg)).cuda().to(torch.bfloat16)
    x = torch.randn(4, 64, cfg.d_model, device="cuda", dtype=torch.bfloat16)
    ffn.experts.grouped = False
    ref = ffn(x)[0]
    ffn.experts.grouped = None
    torch.cuda.set_sync_debug_mode("error")  # a .tolist() / .item() on this path raises
    try:
        y = ffn(x)[0]
        y.float().sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    torch.testing.assert_close(y, ref, rtol=2e-2, atol=2e-2)  # bf16 accumulation order


# -- packed documents ---------------------------------------------------------------------------


def test_positions_restart_at_each_document():
    from brickyard.model.moe import document_positions

    doc_ids = torch.tensor([[0, 0, 0, 1, 1, 2], [0, 1, 1, 1, 1, 1]])
    assert document_positions(doc_ids).tolist() == [[0, 1, 2, 0, 1, 0], [0, 0, 1, 2, 3, 4]]


def test_with_document_masking_a_document_ignores_the_one_packed_before_it():
    model = MoETransformer(small_cfg()).eval()
    idx = torch.randint(0, 256, (2, 16))
    doc_ids = torch.tensor([[0] * 6 + [1] * 10, [0] * 9 + [1] * 7])
    changed = idx.clone()
    changed[0, :6] = torch.randint(0, 256, (6,))  # the earlier document of each sample
    changed[1, :9] = torch.randint(0, 256, (9,))
    with torch.no_grad():
        masked, masked_changed = model(idx, doc_ids=doc_ids).logits, model(changed, doc_ids=doc_ids).logits
        plain, plain_changed = model(idx).logits, model(changed).logits
        alone = model(idx[:1, 6:]).logits  # the later document on its own, from position 0
    # equal up to float rounding (the experts' matmuls group other tokens when the earlier document changes)
    torch.testing.assert_close(masked[0, 6:], masked_changed[0, 6:], rtol=0, atol=1e-6)
    torch.testing.assert_close(masked[1, 9:], masked_changed[1, 9:], rtol=0, atol=1e-6)
    assert (plain[0, 6:] - plain_changed[0, 6:]).abs().max() > 1e-3  # without masking it leaks
    torch.testing.assert_close(masked[0, 6:], alone[0], rtol=1e-5, atol=1e-5)  # as if it were alone


def test_one_document_per_sample_is_plain_causal_attention():
    model = MoETransformer(small_cfg()).eval()
    idx = torch.randint(0, 256, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(model(idx, doc_ids=torch.zeros_like(idx)).logits, model(idx).logits, rtol=1e-5, atol=1e-5)


def test_flex_attention_block_mask_equals_the_sdpa_document_mask():
    # the GPU path (FlexAttention, compiled) run on CPU through inductor, against the CPU path
    from brickyard.model.moe import document_mask, document_positions

    cfg = small_cfg(d_model=64, n_heads=4, n_kv_heads=2)
    attn = init(Attention(cfg))
    doc_ids = torch.tensor([[0] * 100 + [1] * 156, [0] * 30 + [1] * 170 + [2] * 56])
    x = torch.randn(2, 256, cfg.d_model)
    pos = document_positions(doc_ids)
    with torch.no_grad():
        flex = attn(x, pos, doc_mask=document_mask(doc_ids, flex=True))
        sdpa = attn(x, pos, doc_mask=document_mask(doc_ids))
    assert not isinstance(document_mask(doc_ids, flex=True), torch.Tensor)
    torch.testing.assert_close(flex, sdpa, rtol=1e-5, atol=1e-5)
