"""Interchange interventions for IIT (Geiger et al. 2022): a model's answer logits on one prompt with an activation
replaced by the same model's activation on another prompt, several interchanges batched into one forward. The
values keep their gradients, so a student trains through both the patched run and the run that produced them."""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import answer_forward
from rcid_tl.models.loading import namer


@dataclass(frozen=True)
class Interchange:
    """At hook point (`site`, `layer`), each example's activation at its own `position` — only `head`'s d_head slice
    at per-head sites — becomes `value` (batch, d_model) or (batch, d_head)."""

    site: Site
    layer: int
    position: Int[Tensor, " batch"]
    value: Tensor
    head: int | None = None


def _replace_hook(edits: Sequence[tuple[Tensor, Interchange]], in_place: bool):
    """One hook for every interchange at one hook point; `edits` pairs each with the forward's rows it owns."""

    def hook(act: Tensor, hook) -> Tensor:
        if not in_place:
            act = act.clone()  # never edit the bridge's own tensor (resid_mid must be: `Site.patch_in_place`)
        for rows, x in edits:
            pos = x.position.to(act.device)
            index = (rows.to(act.device), pos) if x.head is None else (rows.to(act.device), pos, x.head)
            act[index] = x.value.to(act.device, act.dtype)
        return act

    return hook


def interchange_logits(
    model: TransformerBridge,
    tokens: Int[Tensor, "batch pos"],
    answer_pos: Int[Tensor, " batch"],
    interchanges: Sequence[Interchange],
) -> Float[Tensor, "batch interchange d_vocab"]:
    """Answer-position logits of `tokens` under each interchange alone: one forward of len(interchanges)·batch rows,
    row k·batch + i running example i with interchange k. Gradients flow wherever the caller's grad mode allows,
    into the weights of this forward and into each `value`."""
    n, names = len(tokens), namer(model)
    by_name: dict[str, list[tuple[Tensor, Interchange]]] = {}
    in_place: dict[str, bool] = {}
    for k, x in enumerate(interchanges):
        name = names.name(x.site, x.layer)
        by_name.setdefault(name, []).append((torch.arange(k * n, (k + 1) * n), x))
        in_place[name] = Site(x.site).patch_in_place
    hooks = [(name, _replace_hook(edits, in_place[name])) for name, edits in by_name.items()]
    k = len(interchanges)
    with model.hooks(fwd_hooks=hooks):
        logits = answer_forward(model, tokens.repeat(k, 1), answer_pos.repeat(k))  # (k·batch, d_vocab)
    return logits.view(k, n, -1).transpose(0, 1)
