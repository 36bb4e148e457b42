"""Attention views: the pattern equals Hugging Face's own attention weights, and the view is CircuitsVis's when it
is installed and a plotly heatmap otherwise."""

import sys
import types

import plotly.graph_objects as go
import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.attention import attention_pattern, show_attention
from rcid_tl.errors import InputError
from rcid_tl.models import load_model
from rcid_tl.models.embedded import embedded_path

PROMPT = "After Martha and Wanda left the farm, Wanda sent a wallet to"


@pytest.fixture(scope="module")
def world():
    return load_model("world-gpt2")


def test_pattern_equals_hugging_face_attention_weights(world):
    labels, pattern = attention_pattern(world, PROMPT, layer=2, head=1)
    ids = world.to_tokens(PROMPT)
    hf = AutoModelForCausalLM.from_pretrained(embedded_path("world-gpt2"), attn_implementation="eager")
    with torch.no_grad():
        reference = hf(ids, output_attentions=True).attentions[2][0, 1]
    assert len(labels) == ids.shape[1] and pattern.shape == reference.shape
    torch.testing.assert_close(pattern, reference, atol=1e-5, rtol=1e-5)  # float32 softmax, two implementations
    assert torch.allclose(pattern.sum(-1), torch.ones(len(labels)))
    assert torch.count_nonzero(torch.triu(pattern, diagonal=1)) == 0  # causal: no query sees a later key


def test_without_circuitsvis_the_view_is_a_plotly_heatmap(world, monkeypatch):
    monkeypatch.setitem(sys.modules, "circuitsvis", None)
    figure = show_attention(world, PROMPT, 0, 0)
    assert isinstance(figure, go.Figure) and "head 0.0" in figure.layout.title.text
    with pytest.raises(InputError, match="needs the circuitsvis package"):
        show_attention(world, PROMPT, 0, 0, renderer="circuitsvis")


def test_with_circuitsvis_the_view_is_circuitsvis(world, monkeypatch):
    calls = {}
    fake = types.SimpleNamespace(attention=types.SimpleNamespace(
        attention_pattern=lambda tokens, attention: calls.setdefault("args", (tokens, attention))))
    monkeypatch.setitem(sys.modules, "circuitsvis", fake)
    tokens, attention = show_attention(world, PROMPT, 1, 3)
    assert tokens == attention_pattern(world, PROMPT, 1, 3)[0] and attention.shape == (len(tokens), len(tokens))
    assert isinstance(show_attention(world, PROMPT, 1, 3, renderer="plotly"), go.Figure)


@pytest.mark.parametrize("layer, head, message", [(6, 0, "layer 6 is out of range"), (0, 4, "head 4 is out")])
def test_bad_layer_or_head_is_an_input_error(world, layer, head, message):
    with pytest.raises(InputError, match=message):
        attention_pattern(world, PROMPT, layer, head)
