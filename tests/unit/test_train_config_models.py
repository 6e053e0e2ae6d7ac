"""The training config's sections as pydantic models: hashes and checkpoint identities of the
shipped configs do not move, several broken rules give the sentence the dataclasses gave, rules
wait while code builds a config, and code keeps building sections as it did."""

from __future__ import annotations

from pathlib import Path

import pytest
from brickyard.pipelines.config import ConfigModel, config_hash, from_dict, to_dict
from brickyard.pipelines.errors import ConfigError
from brickyard.training.config import (
    CheckpointSettings,
    DataSettings,
    EvalSettings,
    ModelSettings,
    OptimSettings,
    ParallelSettings,
    TrackingSettings,
    TrainConfig,
    load_train_config,
)
from pydantic import ValidationError

REPO = Path(__file__).resolve().parents[2]

# Taken with the dataclass implementation, before the move to pydantic. `identity` names the
# checkpoint folder (<name>-<first 8>) and must match for --resume; the whole config's hash
# includes base_dir, so it is taken with base_dir set to ".".
PINNED = {
    "demo": {"hash": "b343de8255ba429b", "identity": "5cb46db307697e13"},
    "small": {"hash": "c9c34e32973f2338", "identity": "623c1db8df8faa82"},
}
DEFAULT_HASH, DEFAULT_IDENTITY = "2755610e5772129d", "5c3a0ae7e8970a70"

SECTIONS = [TrainConfig, ModelSettings, DataSettings, OptimSettings, ParallelSettings, CheckpointSettings,
            EvalSettings, TrackingSettings]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_the_shipped_training_configs_hash_as_before(name, monkeypatch, tmp_path):
    monkeypatch.setenv("BRICKYARD_LAKEHOUSE", str(tmp_path))
    cfg = load_train_config(REPO / "configs" / "train" / f"{name}.yaml", base_dir=".")
    assert config_hash(cfg) == PINNED[name]["hash"]
    assert cfg.identity() == PINNED[name]["identity"]
    assert cfg.checkpoint_dir().name == f"{name}-{PINNED[name]['identity'][:8]}"
    assert load_train_config(REPO / "configs" / "train" / f"{name}.yaml").identity() == PINNED[name]["identity"]


def test_the_default_config_hashes_as_before_and_to_dict_keeps_the_field_order():
    cfg = TrainConfig()
    assert (config_hash(cfg), cfg.identity()) == (DEFAULT_HASH, DEFAULT_IDENTITY)
    d = to_dict(cfg)
    assert list(d) == list(TrainConfig.model_fields)
    assert list(d["optim"]) == ["lr", "min_lr", "warmup_steps", "weight_decay", "betas", "eps", "grad_clip"]
    assert config_hash(cfg) == config_hash(d)


def test_every_section_is_a_config_model():
    for cls in SECTIONS:
        assert issubclass(cls, ConfigModel), cls


def test_integers_become_floats_where_a_number_is_declared(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("optim: {lr: 1, min_lr: 0, betas: [0, 0.5]}\npeak_tflops: 100")
    cfg = load_train_config(p)
    assert isinstance(cfg.optim.lr, float) and isinstance(cfg.optim.min_lr, float) and isinstance(cfg.peak_tflops, float)
    assert cfg.optim.betas == [0.0, 0.5] and all(isinstance(b, float) for b in cfg.optim.betas)


@pytest.mark.parametrize("text, message", [
    # a section's rules in their fixed order, whatever else is broken after them
    ("optim: {lr: 1, min_lr: 2, warmup_steps: -1}", "run.yaml.optim.min_lr: must be between 0 and lr (1.0), got 2.0"),
    ("optim: {lr: -1, min_lr: 2, warmup_steps: -1}", "run.yaml.optim.lr: must be greater than 0, got -1.0"),
    ("optim: {warmup_steps: -1, weight_decay: -1}", "run.yaml.optim.warmup_steps: must be 0 or more, got -1"),
    ("optim: {weight_decay: -1}", "run.yaml.optim: weight_decay and grad_clip must be 0 or more"),
    ("parallel: {ep: 0, dp_replicate: 0}", "run.yaml.parallel.dp_replicate: must be greater than 0, got 0"),
    ("parallel: {ep: 0}", "run.yaml.parallel.ep: must be greater than 0, got 0"),
    ("checkpoint: {keep: 0, every_steps: -1}", "run.yaml.checkpoint.every_steps: must be 0 or more, got -1"),
    ("data: {num_workers: -1, num_canonical_nodes: 0}", "run.yaml.data.num_workers: must be 0 or more, got -1"),
    ("eval: {data: val.bin, every_steps: -1}", "run.yaml.eval.every_steps: must be 0 or more, got -1"),
    ("model: {preset: nope, overrides: {n_layer: 3}}", "run.yaml.model.preset: unknown model preset 'nope'; presets: "),
    ("tracking: {log_every: 0}", "run.yaml.tracking.log_every: must be greater than 0, got 0"),
    ("micro_batch_size: -2\nglobal_batch_size: 0", "run.yaml.global_batch_size: must be greater than 0, got 0"),
    ("max_steps: -3\nglobal_batch_size: 10", "run.yaml.max_steps: must be greater than 0, got -3"),
    ("peak_tflops: 0", "run.yaml.peak_tflops: must be greater than 0, got 0.0"),
    # a section is checked in full before the fields after it, and before the level's own rules
    ("global_batch_size: 10\nmicro_batch_size: 4\noptim: {lr: -1}", "run.yaml.optim.lr: must be greater than 0, got -1.0"),
    ("tracking: {log_every: 0}\noptim: {lr: -1}", "run.yaml.optim.lr: must be greater than 0, got -1.0"),
    ("optim: {foo: 2}\ndata: {num_workers: -1}", "run.yaml.data.num_workers: must be 0 or more, got -1"),
    # unknown keys first, then types, then rules
    ("foo: 1\noptim: {lr: -1}", "run.yaml: unknown key 'foo'; allowed: name, lakehouse, data, model, "),
    ("optim: {lr: -1}\nseed: x", "run.yaml.seed: expected an integer, got 'x'"),
    ("optim: {lr: -1, eps: x}", "run.yaml.optim.eps: expected a number, got 'x'"),
    ("data: {document_masking: 1}", "run.yaml.data.document_masking: expected true or false, got 1"),
    ("tracking: {tags: {a: 1}}", "run.yaml.tracking.tags.a: expected a string, got 1"),
    ("optim: {betas: [a, b]}", "run.yaml.optim.betas[0]: expected a number, got 'a'"),
    ("model: tiny", "run.yaml.model: expected a mapping, got 'tiny'"),
    ("checkpoint: {kep: 1}", "run.yaml.checkpoint: unknown key 'kep' (did you mean 'keep'?); allowed: dir, every_steps, keep"),
])
def test_the_first_problem_is_the_one_the_dataclasses_reported(tmp_path, text, message):
    p = tmp_path / "run.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_train_config(p)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_empty_sections_mean_the_defaults_and_override_keys_are_names():
    cfg = from_dict(TrainConfig, {"model": None, "data": None, "optim": {}}, "t")
    assert cfg.model == ModelSettings() and cfg.data == DataSettings() and cfg.optim == OptimSettings()
    with pytest.raises(ConfigError, match=r"^t.model.overrides: unknown model setting '1'$"):
        from_dict(TrainConfig, {"model": {"overrides": {1: 2}}}, "t")


def test_code_builds_and_adjusts_a_config_and_its_rules_wait_for_validate():
    cfg = TrainConfig(global_batch_size=10, micro_batch_size=4)  # types now, rules later
    with pytest.raises(ConfigError, match=r"^t.global_batch_size: 10 is not a multiple of micro_batch_size 4$"):
        cfg.validate("t")
    cfg.global_batch_size = 8
    cfg.validate("t")
    cfg.optim.lr = -1
    with pytest.raises(ConfigError, match=r"^t.optim.lr: must be greater than 0, got -1.0$"):
        cfg.validate("t")
    cfg.optim.lr = 1e-3
    cfg.model = ModelSettings(preset="tinny")
    with pytest.raises(ConfigError, match=r"^t.model.preset: unknown model preset 'tinny' \(did you mean 'tiny'\?\)"):
        cfg.validate("t")
    with pytest.raises(ValidationError):  # a wrong type set in code is a bug in that code, caught at once
        cfg.data.export = Path("exports/demo")
    with pytest.raises(ValidationError):
        ParallelSettings(device="gpu")


def test_pydantics_own_entry_point_applies_the_rules_of_nested_sections():
    with pytest.raises(ValidationError, match="must be greater than 0, got 0"):
        TrainConfig.model_validate({"checkpoint": {"keep": 0}})
    with pytest.raises(ValidationError, match="unknown model preset"):
        TrainConfig.model_validate({"model": {"preset": "nope"}})
    assert TrainConfig.model_validate({}) == TrainConfig()


def test_sections_take_their_fields_positionally_like_the_dataclasses_did():
    assert ModelSettings("small") == ModelSettings(preset="small")
    assert CheckpointSettings("ck", 5).every_steps == 5
    with pytest.raises(TypeError, match="multiple values for argument 'preset'"):
        ModelSettings("small", preset="tiny")
    with pytest.raises(TypeError, match="at most 2 positional arguments"):
        ModelSettings("small", {}, 3)
    cfg = TrainConfig(name="bench", data=DataSettings(export="/x"), model=ModelSettings("tiny"),
                      tracking=TrackingSettings(experiment="bench"))
    assert cfg.data.export == "/x" and cfg.model.preset == "tiny" and cfg.tracking.experiment == "bench"


def test_a_config_survives_pickling_and_copying():
    import copy
    import pickle

    cfg = TrainConfig(max_steps=3)
    cfg.tracking.tags = {"team": "pretrain"}
    assert pickle.loads(pickle.dumps(cfg)) == cfg == copy.deepcopy(cfg)
    again = copy.deepcopy(cfg)
    again.tracking.tags["team"] = "other"
    assert cfg.tracking.tags == {"team": "pretrain"}
