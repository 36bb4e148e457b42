"""Loading by path: the hooked model computes exactly what plain `transformers` computes; bad paths are InputErrors."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.errors import InputError
from rcid_tl.models import load_model, model_label, namer, parse_dtype


@pytest.mark.parametrize("which", ["tiny_gpt2", "stories"])
def test_load_by_path_matches_plain_transformers(request, which):
    bridge = request.getfixturevalue(which)
    path = request.getfixturevalue(f"{which}_dir")
    hf = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    tokens = torch.tensor([[1, 317, 269, 326, 263, 377, 267, 265, 282], [1, 326, 269, 317, 263, 377, 267, 265, 282]])
    with torch.no_grad():
        ours, theirs = bridge(tokens), hf(tokens).logits
    if which == "stories":
        assert torch.equal(ours, theirs)  # the bridge runs Llama's own HF modules: bitwise identical
    else:
        # GPT-2's fused qkv projection is split into three matmuls by the bridge, so sums round differently:
        # agreement to float32 rounding of O(1)-O(10) logits rather than bitwise
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-6)
    assert model_label(bridge) == str(path)


def test_shapes_of_the_loaded_models(tiny_gpt2, stories):
    assert (tiny_gpt2.cfg.n_layers, tiny_gpt2.cfg.n_heads, tiny_gpt2.cfg.d_model, tiny_gpt2.cfg.d_vocab) == (
        2, 4, 64, 50257)
    assert (stories.cfg.n_layers, stories.cfg.n_heads, stories.cfg.d_model, stories.cfg.d_vocab) == (5, 8, 64, 512)
    assert namer(stories).n_heads == 8


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="is not a directory with a Hugging Face model"):
        load_model(str(tmp_path / "nope"))


def test_directory_without_config_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="has no config.json"):
        load_model(str(tmp_path))


def test_parse_dtype():
    assert parse_dtype("bfloat16") is torch.bfloat16
    with pytest.raises(InputError, match="unknown dtype 'fp8'; allowed: float32, bfloat16, float16"):
        parse_dtype("fp8")
