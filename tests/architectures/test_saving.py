"""Saving a trained model back to Hugging Face on every bridged architecture: after its weights move (as a
distillation step moves them), `save_hf_model` writes a directory that plain `transformers` loads with the same
logits. GPT-NeoX is the case that needed work: the bridge runs q, k and v copies of its fused `query_key_value`.

Tolerance 1e-5 absolute on logits (fp32, O(1)–O(10)): the bridge's attention arithmetic against HF's own, float32
rounding (measured ≤ 4e-6)."""

import torch
from transformers import AutoModelForCausalLM

from rcid_tl.models import save_hf_model
from tests.architectures.conftest import build_bridge

ATOL = 1e-5  # see module docstring


def test_a_trained_model_saves_to_transformers(arch, world_tokenizer, ioi, tmp_path):
    model = build_bridge(arch, world_tokenizer, seed=2)
    torch.manual_seed(0)
    with torch.no_grad():  # every weight the bridge runs moves, as training moves it
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    tokens = ioi.batch().clean
    reloaded = AutoModelForCausalLM.from_pretrained(save_hf_model(model, tmp_path / arch.name),
                                                    attn_implementation="eager").eval()
    fresh = build_bridge(arch, world_tokenizer, seed=2)
    with torch.no_grad():
        ours, theirs, before = model(tokens), reloaded(tokens).logits, fresh(tokens)
    torch.testing.assert_close(theirs, ours, atol=ATOL, rtol=0)
    assert (ours - before).abs().max() > 1e-2  # the moved weights were saved, not the ones from boot
