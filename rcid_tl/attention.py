"""Attention views for notebooks: one head's attention pattern on a prompt, drawn with CircuitsVis when it is
installed and as a plotly heatmap otherwise."""

from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.plotting.heatmaps import attention_heatmap

Renderer = Literal["auto", "circuitsvis", "plotly"]


def attention_pattern(
    model: TransformerBridge, prompt: str, layer: int, head: int, prepend_bos: bool = True
) -> tuple[list[str], Float[Tensor, "query_pos key_pos"]]:
    """The prompt's tokens and head (layer, head)'s attention weights: row q is how query position q spreads its
    attention over key positions 0..q (each row sums to 1; the causal mask zeroes the upper triangle)."""
    if not 0 <= layer < model.cfg.n_layers:
        raise InputError(f"layer {layer} is out of range; this model has layers 0..{model.cfg.n_layers - 1}")
    if not 0 <= head < model.cfg.n_heads:
        raise InputError(f"head {head} is out of range; this model has heads 0..{model.cfg.n_heads - 1}")
    tokens = model.to_tokens(prompt, prepend_bos=prepend_bos)
    name = hook_name(Site.PATTERN, layer)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=[name])
    labels = [model.tokenizer.decode([int(t)]) for t in tokens[0]]
    return labels, cache[name][0, head].float().cpu()


def show_attention(
    model: TransformerBridge, prompt: str, layer: int, head: int, renderer: Renderer = "auto",
    prepend_bos: bool = True,
):
    """A view of head (layer, head)'s attention on `prompt`: CircuitsVis's interactive pattern (renderer
    "circuitsvis", or "auto" when circuitsvis is installed), else a plotly Figure (query × key heatmap)."""
    if renderer not in ("auto", "circuitsvis", "plotly"):
        raise InputError(f"unknown renderer {renderer!r}; allowed: auto, circuitsvis, plotly")
    labels, pattern = attention_pattern(model, prompt, layer, head, prepend_bos)
    if renderer != "plotly":
        try:
            import circuitsvis as cv  # optional, not a dependency: plotly draws the pattern without it
        except ImportError:
            if renderer == "circuitsvis":
                raise InputError("renderer 'circuitsvis' needs the circuitsvis package (pip install circuitsvis)") from None
        else:
            return cv.attention.attention_pattern(tokens=labels, attention=pattern)
    title = f"{getattr(model.cfg, 'model_name', 'model')} head {layer}.{head} attention"
    return attention_heatmap(pattern.numpy(), labels, title)
