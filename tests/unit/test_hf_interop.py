"""brickyard's tiny model exported as DbrxForCausalLM gives the same logits and greedy tokens."""

import pytest
import torch
from brickyard.model.hf import hf_config, to_hf
from brickyard.model.moe import MoETransformer
from brickyard.model.presets import get_preset
from transformers import AutoModelForCausalLM


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    model = MoETransformer(get_preset("tiny")).eval()
    with torch.no_grad():  # larger weights than the init: confident, well-separated logits
        for p in model.parameters():
            p.normal_(0.0, 0.15) if p.dim() > 1 else p.uniform_(0.5, 1.5)
    folder = tmp_path_factory.mktemp("hf-tiny")
    to_hf(model).save_pretrained(folder)
    hf = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()
    return model, hf


def test_export_loads_with_automodel_and_gives_the_same_logits(exported):
    model, hf = exported
    assert type(hf).__name__ == "DbrxForCausalLM"
    idx = torch.randint(0, model.cfg.vocab_size, (2, 24))
    with torch.no_grad():
        ours = model(idx).logits
        theirs = hf(idx).logits
    assert ours.std() > 1.0  # logits far from uniform, so a wrong mapping could not pass
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


def test_greedy_generation_with_kv_cache_gives_the_same_tokens(exported):
    model, hf = exported
    prompt = torch.randint(0, model.cfg.vocab_size, (1, 7))
    ours = model.generate(prompt, 12)
    theirs = hf.generate(prompt, max_new_tokens=12, do_sample=False, use_cache=True, attention_mask=torch.ones_like(prompt))
    assert torch.equal(ours, theirs)


def test_rmsnorm_models_are_refused_for_export():
    with pytest.raises(ValueError, match="LayerNorm only"):
        hf_config(get_preset("tinyllama"))
