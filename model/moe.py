"""A DBRX-style mixture-of-experts transformer, at any size. Pure PyTorch: no distributed code, no I/O.

Read top to bottom: config, norms, rotary embedding, attention, router, experts, block, model.
Module and parameter names follow DBRX's own layout (Wqkv, out_proj, norm_1/norm_2, router.layer,
experts w1/v1/w2), so a state dict maps one-to-one onto Hugging Face's `DbrxForCausalLM`.

Shapes: B batch, T time, D d_model, H query heads, K kv heads, Hd head dim, E experts,
k experts per token (top_k), F expert hidden size, N = B*T tokens.

Packed documents: a sample may hold several documents back to back. Given `doc_ids` (B, T), the
document index of each token, attention is block-causal (a token sees only the earlier tokens of
its own document) and rotary positions restart at 0 with each document, so a document is computed
exactly as it would be alone at the start of a sample, which is also how it is seen at inference.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class ModelConfig:
    vocab_size: int = 100352  # cl100k_base (100,277 ids) padded to a multiple of 128
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 8
    n_kv_heads: int = 2
    max_seq_len: int = 2048
    rope_theta: float = 5e5
    clip_qkv: float | None = 8.0  # clamp Wqkv's output to [-c, c] (DBRX's training stabilizer)
    n_experts: int = 16
    top_k: int = 4
    expert_ffn: int = 512  # hidden size of each GLU expert
    norm: str = "layernorm"  # "layernorm" (no bias, DBRX) or "rmsnorm"
    norm_eps: float = 1e-5
    lb_loss_coef: float = 0.05  # Switch load-balancing loss, per layer, summed over layers
    z_loss_coef: float = 0.0  # router z-loss (ST-MoE); 0 turns it off
    init_std: float = 0.02
    extra: dict = field(default_factory=dict)  # free-form notes (e.g. the preset's source)

    def __post_init__(self):
        problems = []
        if self.d_model % self.n_heads:
            problems.append(f"d_model {self.d_model} is not a multiple of n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            problems.append(f"n_heads {self.n_heads} is not a multiple of n_kv_heads {self.n_kv_heads}")
        if not 1 <= self.top_k <= self.n_experts:
            problems.append(f"top_k {self.top_k} must be between 1 and n_experts {self.n_experts}")
        if self.norm not in ("layernorm", "rmsnorm"):
            problems.append(f"norm {self.norm!r} must be 'layernorm' or 'rmsnorm'")
        if (self.d_model // max(self.n_heads, 1)) % 2:
            problems.append("the head dimension must be even for rotary embeddings")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


def make_norm(cfg: ModelConfig) -> nn.Module:
    if cfg.norm == "rmsnorm":
        return nn.RMSNorm(cfg.d_model, eps=cfg.norm_eps)
    return nn.LayerNorm(cfg.d_model, eps=cfg.norm_eps, bias=False)


# -- rotary position embedding ----------------------------------------------------------------


def rope_cos_sin(positions: torch.Tensor, head_dim: int, theta: float, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin for `positions` (T,) or (B, T), each (..., T, Hd). In fp32: bf16 loses long positions."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    freqs = positions.float()[..., None] * inv_freq  # (..., T, Hd/2)
    emb = torch.cat([freqs, freqs], dim=-1)  # the "rotate half" layout, as in DBRX / Llama
    return emb.cos().to(dtype), emb.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: (B, heads, T, Hd), cos/sin (T, Hd) or (B, T, Hd). Rotates each pair (i, i + Hd/2) by its position's angle."""
    if cos.dim() == 3:  # per-sample positions (packed documents): broadcast over heads
        cos, sin = cos[:, None], sin[:, None]
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


# -- packed documents -------------------------------------------------------------------------


def document_positions(doc_ids: torch.Tensor) -> torch.Tensor:
    """(B, T) document index of each token -> (B, T) position within its document (0 at each start)."""
    T = doc_ids.shape[1]
    t = torch.arange(T, device=doc_ids.device).expand_as(doc_ids)
    starts = torch.ones_like(doc_ids, dtype=torch.bool)
    starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    first = torch.where(starts, t, 0).cummax(dim=1).values  # index of the first token of each token's document
    return t - first


def document_mask(doc_ids: torch.Tensor, flex: bool | None = None):
    """Block-causal attention within each document, in the form the device's kernel takes.

    CUDA: a FlexAttention `BlockMask` (blocks of 128 x 128 that lie wholly outside every document
    are skipped, so packing costs no compute). Elsewhere: a boolean SDPA mask (B, 1, T, T), true
    where a query may attend (same document, not in the future); SDPA on CPU has no document kernel.
    `flex` forces the choice (FlexAttention also runs on CPU, compiled by inductor: tests use it).
    """
    B, T = doc_ids.shape
    if doc_ids.is_cuda if flex is None else flex:
        from torch.nn.attention.flex_attention import create_block_mask

        def same_document_causal(b, h, q, kv):
            return (doc_ids[b, q] == doc_ids[b, kv]) & (q >= kv)

        return create_block_mask(same_document_causal, B, None, T, T, device=doc_ids.device)
    causal = torch.ones(T, T, dtype=torch.bool, device=doc_ids.device).tril()
    return ((doc_ids[:, :, None] == doc_ids[:, None, :]) & causal)[:, None]


_flex_attention = None


def flex_attention(q, k, v, block_mask, enable_gqa):
    """FlexAttention, compiled once (uncompiled it runs a slow reference that builds the scores)."""
    global _flex_attention
    if _flex_attention is None:
        from torch.nn.attention.flex_attention import flex_attention as flex

        _flex_attention = torch.compile(flex, dynamic=False)
    return _flex_attention(q, k, v, block_mask=block_mask, enable_gqa=enable_gqa)


# -- attention --------------------------------------------------------------------------------


class Attention(nn.Module):
    """Grouped-query attention: H query heads share K key/value heads (H/K queries per kv head)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        kv_dim = cfg.n_kv_heads * cfg.head_dim
        self.Wqkv = nn.Linear(cfg.d_model, cfg.d_model + 2 * kv_dim, bias=False)
        self.out_proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor, cache: KVCache | None = None, layer: int = 0,
                doc_mask=None) -> torch.Tensor:
        """positions: (T,) or (B, T); doc_mask: from `document_mask` (packed documents), else plain causal."""
        cfg = self.cfg
        B, T, D = x.shape
        qkv = self.Wqkv(x)  # (B, T, D + 2*K*Hd)
        if cfg.clip_qkv is not None:
            qkv = qkv.clamp(min=-cfg.clip_qkv, max=cfg.clip_qkv)
        kv_dim = cfg.n_kv_heads * cfg.head_dim
        q, k, v = qkv.split([D, kv_dim, kv_dim], dim=-1)
        q = q.view(B, T, cfg.n_heads, cfg.head_dim).transpose(1, 2)  # (B, H, T, Hd)
        k = k.view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)  # (B, K, T, Hd)
        v = v.view(B, T, cfg.n_kv_heads, cfg.head_dim).transpose(1, 2)
        cos, sin = rope_cos_sin(positions, cfg.head_dim, cfg.rope_theta, q.dtype)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        gqa = cfg.n_kv_heads != cfg.n_heads
        if doc_mask is not None:
            if isinstance(doc_mask, torch.Tensor):
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=doc_mask, enable_gqa=gqa)
            else:
                y = flex_attention(q, k, v, doc_mask, gqa)
            return self.out_proj(y.transpose(1, 2).reshape(B, T, D))
        past = 0
        if cache is not None:
            past = cache.length(layer)
            k, v = cache.append(layer, k, v)  # (B, K, past + T, Hd)
        if past == 0:
            mask, causal = None, True
        elif T == 1:
            mask, causal = None, False  # one new token sees everything before it
        else:  # several new tokens after a cached prefix: causal within the new ones
            S = past + T
            mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=past)
            causal = False
        # enable_gqa lets SDPA (flash / memory-efficient kernels on GPU) share kv heads without copies
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, enable_gqa=gqa)
        y = y.transpose(1, 2).reshape(B, T, D)
        return self.out_proj(y)


class KVCache:
    """Keys and values of the tokens seen so far, per layer, for greedy decoding."""

    def __init__(self, n_layers: int):
        self.k: list[torch.Tensor | None] = [None] * n_layers
        self.v: list[torch.Tensor | None] = [None] * n_layers

    def length(self, layer: int) -> int:
        return 0 if self.k[layer] is None else self.k[layer].shape[2]

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        if self.k[layer] is not None:
            k = torch.cat([self.k[layer], k], dim=2)
            v = torch.cat([self.v[layer], v], dim=2)
        self.k[layer], self.v[layer] = k, v
        return k, v


# -- mixture of experts -----------------------------------------------------------------------


@dataclass
class RouterOutput:
    top_weights: torch.Tensor  # (N, k) renormalized weights, fp32
    top_experts: torch.Tensor  # (N, k) expert ids
    lb_loss: torch.Tensor  # scalar, Switch load-balancing loss of this layer
    z_loss: torch.Tensor  # scalar, router z-loss of this layer
    load: torch.Tensor  # (E,) share of the N*k assignments each expert got


class Router(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.layer = nn.Linear(cfg.d_model, cfg.n_experts, bias=False)

    def forward(self, x: torch.Tensor) -> RouterOutput:
        cfg = self.cfg
        # fp32: in bf16 the softmax over experts rounds near-ties, which flips top-k choices
        # from step to step and makes routing (and the balance loss) noisy
        logits = F.linear(x.float(), self.layer.weight.float())  # (N, E)
        probs = logits.softmax(dim=-1)
        top_weights, top_experts = probs.topk(cfg.top_k, dim=-1)  # (N, k)
        # renormalize so a token's k expert weights sum to 1 whatever mass the others held
        top_weights = top_weights / top_weights.sum(dim=-1, keepdim=True)
        counts = torch.bincount(top_experts.flatten(), minlength=cfg.n_experts).to(probs.dtype)
        load = counts / counts.sum()  # f_e: share of assignments
        importance = probs.mean(dim=0)  # P_e: mean router probability
        lb_loss = cfg.n_experts * (load * importance).sum()  # 1.0 when perfectly balanced
        z_loss = torch.logsumexp(logits, dim=-1).square().mean()
        return RouterOutput(top_weights, top_experts, lb_loss, z_loss, load.detach())


def glu(x: torch.Tensor, w1: torch.Tensor, v1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """GLU expert: (silu(x W1^T) * x V1^T) W2, with w1, v1, w2 each (F, D) as DBRX stores them."""
    return (F.silu(x @ w1.t()) * (x @ v1.t())) @ w2


_GROUPED_MM_DEVICES: dict[torch.device, bool] = {}


def grouped_mm_supported(x: torch.Tensor) -> bool:
    """Whether `F.grouped_mm` has a kernel for x: bf16 on a CUDA GPU of compute capability 8.0 or more.

    (torch also answers on CPU, but only forward: its CPU backward fails, so training loops there.)
    """
    if not (x.is_cuda and x.dtype == torch.bfloat16 and hasattr(F, "grouped_mm")):
        return False
    if x.device not in _GROUPED_MM_DEVICES:
        _GROUPED_MM_DEVICES[x.device] = torch.cuda.get_device_capability(x.device) >= (8, 0)
    return _GROUPED_MM_DEVICES[x.device]


class Experts(nn.Module):
    """E GLU experts, stored stacked as (E*F, D) like DBRX's checkpoints."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        shape = (cfg.n_experts * cfg.expert_ffn, cfg.d_model)
        self.w1 = nn.Parameter(torch.empty(shape))
        self.v1 = nn.Parameter(torch.empty(shape))
        self.w2 = nn.Parameter(torch.empty(shape))
        self.grouped: bool | None = None  # None: grouped matmuls where the device has them, else the loop

    def weights(self):
        E, Fh, D = self.cfg.n_experts, self.cfg.expert_ffn, self.cfg.d_model
        return self.w1.view(E, Fh, D), self.v1.view(E, Fh, D), self.w2.view(E, Fh, D)

    def forward(self, x: torch.Tensor, route: RouterOutput) -> torch.Tensor:
        """Dropless: every (token, expert) assignment is computed, none is dropped for capacity.

        The N*k assignments are sorted by expert so each expert's tokens sit in one contiguous
        slice. Peak extra memory is O(N*k*(D + F)); no (N, E, D) tensor is ever built.
        """
        k = self.cfg.top_k
        flat_experts = route.top_experts.flatten()  # (N*k,)
        order = torch.argsort(flat_experts, stable=True)
        token_of = order // k  # which token each sorted assignment belongs to
        counts = torch.bincount(flat_experts, minlength=self.cfg.n_experts)  # (E,) on x's device
        y = self.compute(x[token_of], counts)  # (N*k, D)
        gate = route.top_weights.flatten()[order].to(y.dtype)  # (N*k,)
        return torch.zeros_like(x).index_add_(0, token_of, y * gate[:, None])

    def compute(self, x_sorted: torch.Tensor, counts: torch.Tensor, weights=None) -> torch.Tensor:
        """Every expert's GLU on its slice of `x_sorted` (N*k, D), sorted by expert; `counts` (E,) per expert.
        `weights`: (w1, v1, w2), each (E, F, D), when the experts are held elsewhere (expert
        parallelism hands in this rank's share); default: this module's."""
        grouped = grouped_mm_supported(x_sorted) if self.grouped is None else self.grouped
        return self.grouped_glu(x_sorted, counts, weights) if grouped else self.looped_glu(x_sorted, counts, weights)

    def grouped_glu(self, x_sorted: torch.Tensor, counts: torch.Tensor, weights=None) -> torch.Tensor:
        """Three grouped matmuls over all experts at once. The slice ends are a cumsum on the device:
        no host sync, so the GPU never waits for the CPU to learn the counts."""
        w1, v1, w2 = weights or self.weights()  # (E, F, D) each
        offs = counts.cumsum(0).to(torch.int32)
        h = F.silu(F.grouped_mm(x_sorted, w1.transpose(-2, -1), offs=offs)) * F.grouped_mm(x_sorted, v1.transpose(-2, -1), offs=offs)
        return F.grouped_mm(h, w2, offs=offs)  # (N*k, D)

    @torch.compiler.disable  # data-dependent split sizes: compiled, every new set of counts would recompile
    def looped_glu(self, x_sorted: torch.Tensor, counts: torch.Tensor, weights=None) -> torch.Tensor:
        """One matmul per expert (a loop over experts, never over tokens); the reference, and the CPU path.
        The split sizes must be known on the host (.tolist() syncs with the device)."""
        w1, v1, w2 = weights or self.weights()
        outs = [glu(xs, w1[e], v1[e], w2[e]) for e, xs in enumerate(x_sorted.split(counts.tolist())) if xs.shape[0]]
        return torch.cat(outs) if outs else x_sorted


class MoEFFN(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.router = Router(cfg)
        self.experts = Experts(cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, RouterOutput]:
        B, T, D = x.shape
        flat = x.reshape(B * T, D)
        route = self.router(flat)
        return self.experts(flat, route).view(B, T, D), route


# -- block and model --------------------------------------------------------------------------


class Block(nn.Module):
    """Pre-norm: x + attn(norm_1(x)), then + moe(norm_2(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm_1 = make_norm(cfg)
        self.attn = Attention(cfg)
        self.norm_2 = make_norm(cfg)
        self.ffn = MoEFFN(cfg)

    def forward(self, x, positions, cache=None, layer=0, doc_mask=None):
        x = x + self.attn(self.norm_1(x), positions, cache, layer, doc_mask)
        y, route = self.ffn(self.norm_2(x))
        return x + y, route


@dataclass
class ModelOutput:
    logits: torch.Tensor  # (B, T, vocab)
    loss: torch.Tensor | None  # cross-entropy + aux losses (when targets are given)
    ce_loss: torch.Tensor | None
    lb_loss: torch.Tensor  # summed over layers, before its coefficient
    z_loss: torch.Tensor  # summed over layers, before its coefficient
    expert_load: torch.Tensor  # (n_layers, E) share of assignments per expert


class MoETransformer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm_f = make_norm(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.reset_parameters()

    def _init_(self, name: str, t: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """The initial value of parameter `name`, written into t."""
        std = self.cfg.init_std
        if t.dim() == 1:
            nn.init.ones_(t)  # norm weights
        elif name.endswith(("out_proj.weight", "experts.w2")):
            # residual outputs scaled down with depth (GPT-2) so the stream's variance stays put
            nn.init.normal_(t, 0.0, std / math.sqrt(2 * self.cfg.n_layers), generator=generator)
        else:
            nn.init.normal_(t, 0.0, std, generator=generator)

    @torch.no_grad()
    def reset_parameters(self) -> None:
        for name, p in self.named_parameters():
            self._init_(name, p)

    @torch.no_grad()
    def initial_values(self, generator: torch.Generator) -> Iterator[tuple[nn.Parameter, torch.Tensor]]:
        """Each parameter with its full initial value (fp32, CPU), one at a time: for a model built on
        the meta device and materialized elsewhere, shard by shard.

        The values are exactly those of eager construction after `torch.manual_seed(seed)` when
        `generator` is seeded with `seed`: eager construction first draws nn.Embedding's and
        nn.Linear's own default inits (then overwritten by reset_parameters), so those draws are
        made here too, in the same order, and dropped. Peak memory: one parameter.
        """
        for m in self.modules():  # construction order: each module builds its children in order
            if isinstance(m, nn.Embedding):
                nn.init.normal_(torch.empty(m.weight.shape), generator=generator)
            elif isinstance(m, nn.Linear):
                if m.bias is not None:
                    raise NotImplementedError("initial_values replays bias-free nn.Linear only")
                nn.init.kaiming_uniform_(torch.empty(m.weight.shape), a=math.sqrt(5), generator=generator)
        for name, p in self.named_parameters():
            value = torch.empty(p.shape)
            self._init_(name, value, generator)
            yield p, value

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None,
                doc_ids: torch.Tensor | None = None) -> ModelOutput:
        """idx, targets: (B, T); doc_ids: (B, T) document index of each token when documents are packed
        (attention stays within a document, positions restart per document; see the module doc)."""
        B, T = idx.shape
        doc_mask = None
        if doc_ids is not None:
            if cache is not None:
                raise ValueError("doc_ids (packed documents) is for training; decode one document with the KV cache")
            # positions restart at 0 in each document (a decision, not a necessity): a document then
            # gets the same rotary angles wherever packing put it, as it will at inference
            positions, doc_mask = document_positions(doc_ids), document_mask(doc_ids)
        else:
            start = cache.length(0) if cache is not None else 0
            positions = torch.arange(start, start + T, device=idx.device)
        x = self.wte(idx)
        lb = z = torch.zeros((), device=idx.device)
        loads = []
        for i, block in enumerate(self.blocks):
            x, route = block(x, positions, cache, i, doc_mask)
            lb, z = lb + route.lb_loss, z + route.z_loss
            loads.append(route.load)
        logits = self.lm_head(self.norm_f(x))
        loss = ce = None
        if targets is not None:
            ce = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
            loss = ce + self.cfg.lb_loss_coef * lb + self.cfg.z_loss_coef * z
        return ModelOutput(logits, loss, ce, lb, z, torch.stack(loads))

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding with a KV cache: the prompt once, then one token at a time."""
        cache = KVCache(self.cfg.n_layers)
        out = self(idx, cache=cache)
        tokens = [idx]
        for i in range(max_new_tokens):
            nxt = out.logits[:, -1].argmax(dim=-1, keepdim=True)
            tokens.append(nxt)
            if i + 1 < max_new_tokens:
                out = self(nxt, cache=cache)
        return torch.cat(tokens, dim=1)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
