"""The model built where it lives: constructed on the meta device, parallelized, materialized and
initialized shard by shard, with the weights of an eager one-process construction."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
from brickyard.model.moe import MoETransformer
from brickyard.model.presets import get_preset
from brickyard.training.config import ParallelSettings
from brickyard.training.parallel import World, build_model, init_weights


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def world_of_one():
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        yield World(rank=0, size=1, local_rank=0, device=torch.device("cpu"))
    finally:
        dist.destroy_process_group()


def eager(cfg, seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return MoETransformer(cfg).state_dict()


def test_meta_build_then_init_gives_the_eager_weights_bit_for_bit():
    cfg = get_preset("tiny")
    with torch.device("meta"):
        model = MoETransformer(cfg)
    assert all(p.is_meta for p in model.parameters())
    model.to_empty(device="cpu")
    init_weights(model, seed=3)
    want = eager(cfg, 3)
    got = model.state_dict()
    assert list(got) == list(want)
    for k in want:
        assert torch.equal(got[k], want[k]), k
    assert not torch.equal(got["wte.weight"], eager(cfg, 4)["wte.weight"])  # the seed matters


def test_sharded_build_holds_the_eager_weights(world_of_one):
    from torch.distributed.tensor import DTensor

    cfg = get_preset("tiny", vocab_size=1024)
    model = build_model(cfg, world_of_one, ParallelSettings(device="cpu"), seed=5)
    want = eager(cfg, 5)
    for name, p in model.named_parameters():
        assert isinstance(p, DTensor) and p.device.type == "cpu"
        assert torch.equal(p.full_tensor(), want[name]), name
    out = model(torch.randint(0, 1024, (2, 9)), torch.randint(0, 1024, (2, 9)))
    out.loss.backward()  # a working FSDP2 model, not only the right numbers
    assert all(p.grad is not None for p in model.parameters())


def _steps(model, batches, cfg) -> list[float]:
    from brickyard.training.config import TrainConfig
    from brickyard.training.train import build_optimizer, train_step

    tcfg = TrainConfig(global_batch_size=4, micro_batch_size=2)
    tcfg.optim.warmup_steps, tcfg.optim.lr = 0, 3e-3
    optimizer, scheduler = build_optimizer(model, tcfg, total_steps=len(batches))
    return [train_step(model, {"tokens": b}, optimizer, scheduler, 2, 1.0).ce_loss for b in batches]


def test_compiled_tiny_on_cpu_follows_eager(world_of_one):
    import torch._inductor.config as inductor

    # inductor on CPU: the same math, fused and reordered, so float32 rounding apart at most
    # (measured: equal to the bit on torch 2.14); the tolerance leaves room for another version's fusions
    cfg = get_preset("tiny", vocab_size=512, n_layers=1)
    batches = [torch.randint(0, 512, (4, 17), generator=torch.Generator().manual_seed(0))] * 3
    eager_losses = _steps(build_model(cfg, world_of_one, ParallelSettings(device="cpu"), seed=0), batches, cfg)
    with inductor.patch(compile_threads=1):  # no pool of compile workers left running after the test
        compiled = build_model(cfg, world_of_one, ParallelSettings(device="cpu", compile=True), seed=0)
        compiled_losses = _steps(compiled, batches, cfg)
    assert isinstance(compiled.blocks[0], torch._dynamo.eval_frame.OptimizedModule)
    assert compiled_losses == pytest.approx(eager_losses, rel=1e-4)
    assert compiled_losses[-1] < compiled_losses[0]


def test_train_step_with_document_masking_keeps_documents_apart(world_of_one):
    from brickyard.training.config import TrainConfig
    from brickyard.training.train import build_optimizer, train_step

    cfg = get_preset("tiny", vocab_size=512)
    tokens = torch.randint(0, 512, (2, 17), generator=torch.Generator().manual_seed(0))
    doc_ids = torch.tensor([[0] * 8 + [1] * 9, [0] * 17])
    losses = []
    for masking in (False, True):
        model = build_model(cfg, world_of_one, ParallelSettings(device="cpu"), seed=0)
        optimizer, scheduler = build_optimizer(model, TrainConfig(global_batch_size=2, micro_batch_size=1), 1)
        stats = train_step(model, {"tokens": tokens, "doc_ids": doc_ids}, optimizer, scheduler, 1, 1.0, masking)
        losses.append(stats.ce_loss)
    assert losses[0] != losses[1]  # the masked step saw less context
