"""Training settings and the trainer's pure parts: config errors in one sentence, the learning-rate
schedule, phase plans from a manifest, expert-load statistics."""

from __future__ import annotations

import math

import pytest
import torch
from brickyard.pipelines.errors import ConfigError
from brickyard.training.config import TrainConfig, load_train_config
from brickyard.training.data import phase_at, plan
from brickyard.training.train import expert_stats, lr_factor


def write(tmp_path, text: str):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, message", [
    ("optim: {lr: -1}", "run.yaml.optim.lr: must be greater than 0, got -1"),
    ("optim: {lr: 1.0e-3, min_lr: 1.0e-2}", "run.yaml.optim.min_lr: must be between 0 and lr"),
    ("global_batch_size: 10\nmicro_batch_size: 4", "run.yaml.global_batch_size: 10 is not a multiple of micro_batch_size 4"),
    ("model: {preset: tinny}", "unknown model preset 'tinny' (did you mean 'tiny'?)"),
    ("model: {preset: tiny, overrides: {n_layer: 3}}", "unknown model setting 'n_layer' (did you mean 'n_layers'?)"),
    ("optimizer: {lr: 1}", "unknown key 'optimizer' (did you mean 'optim'?)"),
    ("parallel: {mixed_precision: fp16}", "expected one of 'auto', 'bf16', 'fp32', got 'fp16'"),
    ("optim: {betas: [0.9]}", "run.yaml.optim.betas: expected two numbers in [0, 1)"),
    ("eval: {data: val.bin}", "run.yaml.eval.data: expected a .npy file of token samples, got 'val.bin'"),
    ("eval: {data: val.npy, every_steps: -1}", "run.yaml.eval.every_steps: must be 0 or more, got -1"),
    ("eval: {data: val.npy, max_samples: 0}", "run.yaml.eval.max_samples: must be greater than 0, got 0"),
])
def test_bad_config_values_get_one_clear_sentence(tmp_path, text, message):
    with pytest.raises(ConfigError) as e:
        load_train_config(write(tmp_path, text))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_batch_that_does_not_split_over_the_ranks_is_refused_by_name():
    cfg = TrainConfig(global_batch_size=8, micro_batch_size=4)
    assert cfg.accumulation(1) == 2 and cfg.accumulation(2) == 1
    with pytest.raises(ConfigError, match="does not split into 4 ranks"):
        cfg.accumulation(4)


def test_missing_export_is_one_sentence(tmp_path):
    from brickyard.training.train import train

    cfg = load_train_config(write(tmp_path, f"data: {{export: {tmp_path / 'nowhere'}}}"))
    with pytest.raises(ConfigError, match="does not exist; make one with `brickyard export"):
        train(cfg)


def test_the_checkpoint_identity_ignores_logging_but_not_the_math():
    a, b = TrainConfig(), TrainConfig()
    b.tracking.log_every, b.checkpoint.every_steps, b.data.num_workers = 50, 10, 4
    b.eval.data, b.eval.every_steps = "val.npy", 5  # validation reads the model, it never changes it
    assert a.identity() == b.identity()
    b.optim.lr = 1e-3
    assert a.identity() != b.identity()


def test_schedule_warms_up_linearly_then_follows_a_cosine_to_min_lr():
    f = [lr_factor(s, warmup=10, total=110, lr=4e-4, min_lr=4e-5) for s in range(120)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)
    assert f[60] == pytest.approx((4e-5 + (4e-4 - 4e-5) * 0.5) / 4e-4)  # halfway down the cosine
    assert f[110] == pytest.approx(0.1) and f[119] == pytest.approx(0.1)  # stays at min_lr past the end
    assert all(x >= y for x, y in zip(f[10:], f[11:], strict=False))


def test_phases_become_step_ranges_of_whole_global_batches():
    manifest = {"seq_len": 256, "phases": [{"name": "broad", "samples": 307}, {"name": "anneal", "samples": 77}]}
    broad, anneal = plan(manifest, 8)
    assert (broad.first_step, broad.steps, broad.dropped) == (0, 38, 3)
    assert (anneal.first_step, anneal.steps, anneal.last_step) == (38, 9, 47)
    assert broad.tokens == 38 * 8 * 256
    assert phase_at([broad, anneal], 37) is broad and phase_at([broad, anneal], 38) is anneal
    with pytest.raises(ConfigError, match="larger than every phase"):
        plan(manifest, 512)


def test_expert_stats_are_one_for_even_load_and_show_the_largest_share():
    even = torch.full((1, 8), 1 / 8)
    skew = torch.tensor([[0.65] + [0.05] * 7])
    assert expert_stats(even)["expert_entropy/layer0"] == pytest.approx(1.0)
    s = expert_stats(skew)
    assert s["expert_max_share/layer0"] == pytest.approx(0.65)
    assert s["expert_entropy/layer0"] == pytest.approx(-(0.65 * math.log(0.65) + 7 * 0.05 * math.log(0.05)) / math.log(8))


def _world(rank: int = 0, size: int = 1):
    from brickyard.training.parallel import World

    return World(rank=rank, size=size, local_rank=rank, device=torch.device("cpu"))


def test_validation_samples_are_split_over_ranks_in_whole_micro_batches(tmp_path):
    import numpy as np
    from brickyard.training.train import load_eval_samples

    np.save(tmp_path / "val.npy", np.arange(11 * 9, dtype=np.int32).reshape(11, 9))
    cfg = load_train_config(write(tmp_path, "micro_batch_size: 2\nglobal_batch_size: 4\neval: {data: val.npy}"))
    one = load_eval_samples(cfg, 8, _world())
    assert one.shape == (10, 9) and one.dtype == torch.int64  # 11 cut to whole micro-batches
    a, b = load_eval_samples(cfg, 8, _world(0, 2)), load_eval_samples(cfg, 8, _world(1, 2))
    assert a.shape == b.shape == (4, 9)  # 11 cut to a multiple of 2 ranks x 2
    assert torch.equal(torch.cat([a, b]), one[:8])
    with pytest.raises(ConfigError, match=r"shaped \(11, 9\); expected \(samples, 17\) for the export's seq_len 16"):
        load_eval_samples(cfg, 16, _world())
    cfg.eval.data = "missing.npy"
    with pytest.raises(ConfigError, match="eval.data: cannot read"):
        load_eval_samples(cfg, 8, _world())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_validation_loss_is_the_mean_cross_entropy_without_the_aux_losses():
    import torch.distributed as dist
    import torch.nn.functional as F
    from brickyard.model.moe import MoETransformer
    from brickyard.model.presets import get_preset
    from brickyard.training.train import evaluate

    torch.manual_seed(0)
    model = MoETransformer(get_preset("tiny", d_model=32, n_layers=1, vocab_size=512, max_seq_len=16))
    samples = torch.randint(0, 512, (6, 17))
    with torch.no_grad():
        logits = model(samples[:, :-1]).logits
    expected = F.cross_entropy(logits.reshape(-1, 512), samples[:, 1:].reshape(-1)).item()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        got = evaluate(model, samples, micro=2, device=torch.device("cpu"))
    finally:
        dist.destroy_process_group()
    assert got == pytest.approx(expected, rel=1e-5)
    assert model.training  # left in training mode for the next step


def test_document_starts_become_each_tokens_document_index():
    import numpy as np
    from brickyard.training.data import collate, doc_ids

    assert doc_ids([0, 3, 5], 8).tolist() == [0, 0, 0, 1, 1, 2, 2, 2]
    assert doc_ids([0], 4).tolist() == [0, 0, 0, 0]  # one document (or the rest of one) fills the sample
    batch = collate([{"tokens": np.arange(6, dtype=np.uint32), "stream": "a", "doc_starts": np.array([0, 2], dtype=np.uint32)},
                     {"tokens": np.arange(6, dtype=np.uint32), "stream": "b", "doc_starts": np.array([0], dtype=np.uint32)}])
    assert batch["doc_ids"].tolist() == [[0, 0, 1, 1, 1, 1], [0] * 6]
    assert "doc_ids" not in collate([{"tokens": np.arange(6, dtype=np.uint32), "stream": "a"}])


def test_document_masking_is_off_by_default_and_leaves_old_identities_alone(tmp_path):
    cfg = load_train_config(write(tmp_path, "data: {document_masking: true}"))
    assert cfg.data.document_masking and not TrainConfig().data.document_masking
    assert cfg.identity() != TrainConfig().identity()
    from brickyard.pipelines.config import config_hash, to_dict

    # the identity before document_masking and ep existed: checkpoints of older runs still resume
    d = to_dict(TrainConfig())
    for k in ("tracking", "checkpoint", "eval", "base_dir", "lakehouse"):
        d.pop(k)
    for section, k in (("data", "num_workers"), ("data", "cache"), ("data", "document_masking"), ("parallel", "ep")):
        d[section].pop(k)
    assert config_hash(d) == TrainConfig().identity()


def test_a_run_that_cannot_fit_is_refused_in_one_sentence():
    from brickyard.training.train import check_fits

    cfg = TrainConfig(micro_batch_size=4)
    cfg.model.preset = "dbrx"
    with pytest.raises(ConfigError) as e:
        check_fits(cfg, cfg.model.build(), 2048, _world())
    text = str(e.value)
    assert "model: dbrx needs about" in text and "more than this machine's available memory" in text and "\n" not in text
    cfg.model.preset = "tiny"
    check_fits(cfg, cfg.model.build(), 64, _world())  # tiny fits anywhere
