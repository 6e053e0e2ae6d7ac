"""The model built where it lives: constructed on the meta device, parallelized, materialized and
initialized shard by shard, with the weights of an eager one-process construction."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist

from model.moe import MoETransformer
from model.presets import get_preset
from training.config import ParallelSettings
from training.parallel import World, build_model, init_weights


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
