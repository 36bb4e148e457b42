"""Function vectors (Todd et al. 2024 §2.3): each selected head's mean last-token output put through its own slice of
the attention output projection, summed in the residual space (Todd et al. 2024: v_t = Σ_{(ℓ,j)∈A} out_proj_ℓ(ā_ℓj)).

The projection's bias is left out: it is no head's output. (Todd et al.'s code projects a zero-padded vector through
`out_proj`, which adds the bias once per head on models whose projection has one, such as GPT-2.)
"""

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Head


def head_outputs(
    model: TransformerBridge, mean_z: Float[Tensor, "layer head d_head"]
) -> Float[Tensor, "layer head d_model"]:
    """Every head's mean output in the residual space: ā_ℓh @ W_O[ℓ, h]."""
    w_o = model.W_O.detach().float().cpu()  # (layer, head, d_head, d_model)
    return torch.einsum("lhd,lhdm->lhm", mean_z.float(), w_o)


def function_vector_by_layer(
    model: TransformerBridge, heads: Sequence[Head], mean_z: Float[Tensor, "layer head d_head"]
) -> Float[Tensor, "layer d_model"]:
    """The function vector split by the layer its heads live in; summing over layers gives the FV."""
    outputs = head_outputs(model, mean_z)
    by_layer = torch.zeros(model.cfg.n_layers, model.cfg.d_model)
    for h in heads:
        by_layer[h.layer] += outputs[h.layer, h.head]
    return by_layer


def function_vector(
    model: TransformerBridge, heads: Sequence[Head], mean_z: Float[Tensor, "layer head d_head"]
) -> Float[Tensor, " d_model"]:
    return function_vector_by_layer(model, heads, mean_z).sum(0)
