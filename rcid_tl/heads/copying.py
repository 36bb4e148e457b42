"""Copy scores (Wang et al. 2023 §3.1): does a head's OV circuit, applied to a name token's residual stream after
the first MLP layer, write that same name? A name mover copies (copy score > 95% in GPT-2 small, against < 20% for
an average head); a negative name mover writes the name's opposite (the same test with −OV)."""

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.path_patching import kv_head_of
from rcid_tl.models.loading import namer


def early_residual(
    model: TransformerBridge, tokens: Int[Tensor, "batch pos"], positions: Int[Tensor, "batch k"]
) -> tuple[Float[Tensor, "m d_model"], Int[Tensor, " m"]]:
    """The residual stream after block 0 (embedding + first attention + first MLP) at each named position, and the
    token there."""
    name = namer(model).name(Site.RESID_POST, 0)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=[name])
    rows = torch.arange(len(tokens))[:, None].expand_as(positions)
    return cache[name][rows.flatten(), positions.flatten()], tokens[rows.flatten(), positions.flatten()]


def _value_bias(model: TransformerBridge, layer: int) -> Tensor:
    try:
        return model.b_V[layer]  # (kv_head, d_head)
    except AttributeError:  # bias-free projections (e.g. Llama): the bridge exposes no b_V
        return torch.zeros(model.W_V.shape[1], model.W_V.shape[-1], device=model.cfg.device)


def copy_scores(
    model: TransformerBridge, residual: Float[Tensor, "m d_model"], token_ids: Int[Tensor, " m"], top_k: int = 5
) -> tuple[Float[Tensor, "layer head"], Float[Tensor, "layer head"]]:
    """(copy, negative copy) per head: the fraction of names whose own token is among the top-k unembedded logits of
    OV(LN(residual)) (the head as if it attended only to that name; final norm then W_U, no unembedding bias), and
    the same for −OV. On GQA models a head uses its key/value group's W_V."""
    copy = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    negative = torch.zeros_like(copy)
    ids = token_ids.to(model.cfg.device)[:, None]
    with torch.no_grad():
        for layer in range(model.cfg.n_layers):
            normed = model.blocks[layer].ln1(residual[None])[0]  # (m, d_model): the head's own input norm
            bias = _value_bias(model, layer)
            for head in range(model.cfg.n_heads):
                kv = kv_head_of(model, head)
                out = (normed @ model.W_V[layer, kv] + bias[kv]) @ model.W_O[layer, head]  # (m, d_model)
                for sign, scores in ((1.0, copy), (-1.0, negative)):
                    logits = model.ln_final((sign * out)[None])[0] @ model.W_U
                    scores[layer, head] = (logits.topk(top_k, dim=-1).indices == ids).any(-1).float().mean()
    return copy, negative
