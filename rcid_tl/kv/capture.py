"""K/V (and Q) caches, attention maps and hidden states read from named hook points on any bridged model, stacked in
the 5-D layout [batch, layer, head, time, d_head]; the student's keep gradients, the teacher's are detached."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import capture
from rcid_tl.models.loading import namer


@dataclass
class KVStates:
    """One forward's logits and the states the KV objective reads. `keys`/`values` are (batch, layer, kv_head,
    time, d_head) over `layers` (n_key_value_heads heads on GQA models; keys as TransformerLens's hook_k gives them,
    before any rotary embedding, so on rotary models they equal HF's cached keys only at position 0 and in norm,
    values equal HF's cache everywhere: tests/architectures), `attention` the (batch, head, query, key)
    pattern of `attention_layer` (None when not asked for), `hidden` the resid_post (batch, time, d_model) by
    layer."""

    logits: Float[Tensor, "batch time d_vocab"]
    keys: Float[Tensor, "batch layer kv_head time d_head"]
    values: Float[Tensor, "batch layer kv_head time d_head"]
    attention: Float[Tensor, "batch head time time"] | None
    hidden: dict[int, Float[Tensor, "batch time d_model"]]


def kv_heads(model: TransformerBridge) -> int:
    """The number of K/V heads: n_key_value_heads on grouped-query models, n_heads otherwise."""
    return getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads


def read_kv(
    model: TransformerBridge, tokens: Int[Tensor, "batch time"], layers: Sequence[int], *,
    attention_layer: int | None = None, hidden_layers: Sequence[int] = (), grad: bool = True,
) -> KVStates:
    """A forward capturing hook_k/hook_v at `layers`, hook_pattern at `attention_layer` and resid_post at
    `hidden_layers` (layers range-checked against the model). With `grad=False` (the teacher) nothing keeps a
    graph; with `grad=True` the tensors carry gradients into the model (run_with_cache would detach them)."""
    names = namer(model)
    k_names = [names.name(Site.K, layer) for layer in layers]
    v_names = [names.name(Site.V, layer) for layer in layers]
    h_names = {layer: names.name(Site.RESID_POST, layer) for layer in hidden_layers}
    a_name = None if attention_layer is None else names.name(Site.PATTERN, attention_layer)
    wanted = sorted(set(k_names + v_names + list(h_names.values()) + ([a_name] if a_name else [])))
    with torch.set_grad_enabled(grad and torch.is_grad_enabled()), capture(model, wanted) as acts:
        logits = model(tokens.to(model.cfg.device))

    def stack(ns: list[str]) -> Tensor:  # layers × (batch, time, head, d_head) → (batch, layer, head, time, d_head)
        return torch.stack([acts[n] for n in ns], 1).transpose(2, 3)

    return KVStates(logits, stack(k_names), stack(v_names), acts[a_name] if a_name else None,
                    {layer: acts[n] for layer, n in h_names.items()})
