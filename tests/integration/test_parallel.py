"""Sharded training on CPU with real processes: `torchrun` with 2 ranks over gloo, against 1.

Each test launches this file as the ranks' program (the `__main__` part below); every rank writes
what it measured to a JSON file, and the test compares the worlds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1].parent

pytestmark = pytest.mark.slow

# a model of a few hundred MB: 87M parameters (350 MB in fp32), most of them in the experts and embeddings
MEMORY_MODEL = dict(vocab_size=32768, d_model=512, n_layers=4, n_heads=8, n_kv_heads=2, max_seq_len=64,
                    n_experts=8, top_k=2, expert_ffn=1024)


def launch(ranks: int, mode: str, out: Path) -> list[dict]:
    """Run this file's `mode` on `ranks` processes; each rank's measurements."""
    from tests.helpers import clean_env

    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
           __file__, mode, str(out)]
    env = dict(clean_env(), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return [json.loads((out / f"{mode}-{ranks}-{rank}.json").read_text()) for rank in range(ranks)]


def test_two_ranks_each_hold_half_the_parameters_and_optimizer_state(tmp_path):
    one, = launch(1, "memory", tmp_path)
    two = launch(2, "memory", tmp_path)
    assert one["model_bytes"] > 300e6  # the whole model, fp32
    for rank in two:
        # parameters and AdamW's two moments, exactly: the local shards' storage
        assert rank["param_bytes"] == pytest.approx(one["param_bytes"] / 2, rel=0.02)
        assert rank["optim_bytes"] == pytest.approx(one["optim_bytes"] / 2, rel=0.02)
        # the process as a whole: built on the meta device, a rank never holds the whole model
        assert rank["rss_growth"] < 0.6 * one["rss_growth"], (rank, one)


# EP=2 against EP=1 on the same 2 ranks, weights and tokens: the same math, but each expert's tokens
# arrive in another order and the matmuls group them differently, so float32 rounding apart only
# (measured on torch 2.14: logits equal, gradients within 4e-10, losses equal over 3 steps)
TOL_EP = 1e-5


def test_expert_parallel_gives_the_outputs_gradients_and_losses_of_plain_fsdp(tmp_path):
    ranks = launch(2, "ep", tmp_path)
    for r in ranks:
        assert r["logits_diff"] < TOL_EP, r
        assert r["grad_diff"] < TOL_EP, r
        assert r["local_experts"] == [2, 4]  # half of the experts each, the full count seen by the model
        assert r["losses_ep2"] == pytest.approx(r["losses_ep1"], rel=TOL_EP)
        assert r["losses_ep1"][-1] < r["losses_ep1"][0]
        assert r["checkpoint_equal"]


# -- the ranks' program -------------------------------------------------------------------------


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def _storage_bytes(tensors) -> int:
    from torch.distributed.tensor import DTensor

    seen = {}
    for t in tensors:
        t = t.to_local() if isinstance(t, DTensor) else t
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
    return sum(seen.values())


def memory(world, out: Path) -> dict:
    import torch
    from brickyard.model.moe import ModelConfig
    from brickyard.training.config import ParallelSettings
    from brickyard.training.parallel import build_model

    before = _rss()
    model = build_model(ModelConfig(**MEMORY_MODEL), world, ParallelSettings(device="cpu"), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    for p in model.parameters():  # AdamW makes its moments at the first step; zero gradients, no forward pass
        p.grad = torch.zeros_like(p)
    opt.step()
    opt.zero_grad(set_to_none=True)
    states = [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.dim() > 0]
    return {"param_bytes": _storage_bytes(model.parameters()), "optim_bytes": _storage_bytes(states),
            "model_bytes": 4 * model.num_params(), "rss_growth": _rss() - before}


def expert_parallel(world, out: Path) -> dict:
    import torch
    from brickyard.model.moe import ModelConfig
    from brickyard.training.config import ParallelSettings, TrainConfig
    from brickyard.training.parallel import build_model
    from brickyard.training.train import build_optimizer, train_step
    from torch.distributed.tensor import DTensor

    cfg = ModelConfig(vocab_size=512, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=32,
                      n_experts=4, top_k=2, expert_ffn=32)
    tokens = torch.randint(0, 512, (4, 17), generator=torch.Generator().manual_seed(world.rank))  # each rank its own
    tcfg = TrainConfig(global_batch_size=8, micro_batch_size=2)
    tcfg.optim.warmup_steps, tcfg.optim.lr = 0, 3e-3
    result = {}
    runs = {}
    for ep in (1, 2):
        model = build_model(cfg, world, ParallelSettings(device="cpu", ep=ep), seed=0)
        first = model(tokens[:, :-1], tokens[:, 1:])
        first.loss.backward()
        grads = {n: p.grad.full_tensor() for n, p in model.named_parameters()}
        model.zero_grad(set_to_none=True)
        optimizer, scheduler = build_optimizer(model, tcfg, total_steps=3)
        losses = [train_step(model, {"tokens": tokens}, optimizer, scheduler, 2, 1.0).ce_loss for _ in range(3)]
        runs[ep] = (first.logits.detach(), grads, losses)
        if ep == 2:
            w1 = model.blocks[0].ffn.experts.w1
            assert isinstance(w1, DTensor)
            result["local_experts"] = [w1.to_local().shape[0] // cfg.expert_ffn, w1.shape[0] // cfg.expert_ffn]
            # a checkpoint of the expert-parallel model holds every expert once and loads back
            from brickyard.training import checkpoint

            path = checkpoint.save(out / "ckpt", 3, model, optimizer, {"step": 3}, world, keep=1)
            again = build_model(cfg, world, ParallelSettings(device="cpu", ep=2), seed=1)
            checkpoint.load(path, again, build_optimizer(again, tcfg, total_steps=3)[0], world)
            result["checkpoint_equal"] = all(torch.equal(a.full_tensor(), b.full_tensor())
                                             for a, b in zip(model.parameters(), again.parameters(), strict=True))
    (l1, g1, s1), (l2, g2, s2) = runs[1], runs[2]
    result["logits_diff"] = (l1 - l2).abs().max().item()
    result["grad_diff"] = max((g1[n] - g2[n]).abs().max().item() for n in g1)
    result["losses_ep1"], result["losses_ep2"] = s1, s2
    return result


def main(mode: str, out: str) -> None:
    import torch.distributed as dist
    from brickyard.training.config import ParallelSettings
    from brickyard.training.parallel import init_distributed

    world = init_distributed(ParallelSettings(device="cpu"))
    try:
        result = {"memory": memory, "ep": expert_parallel}[mode](world, Path(out))
        (Path(out) / f"{mode}-{world.size}-{world.rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    os.chdir(REPO)
    main(*sys.argv[1:])
