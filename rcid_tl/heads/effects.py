"""Causal scores per head on IOI (Wang et al. 2023 §3): direct effect on the logits and S-inhibition, both by path
patching from the ABC-corrupt run, and compensation, the rise in a head's direct logit attribution when the name
movers are mean-ablated (what makes a backup name mover)."""

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import FINAL_NORM_SCALE, Head, Site
from rcid_tl.interventions.hook_fns import masked_replace_hook
from rcid_tl.interventions.path_patching import PathPatch, Receiver, path_patch
from rcid_tl.metrics import Metric, RunMetrics
from rcid_tl.models.loading import namer
from rcid_tl.tasks.base import Batch


def direct_effects(
    model: TransformerBridge, batch: Batch, metric: Metric, rows_per_forward: int = 64
) -> tuple[Float[Tensor, "layer head"], RunMetrics]:
    """Mean Δ per head by path patching each head (all positions) into the final residual stream at END: the part of
    the head's effect that reaches the logits without passing through another head (MLPs recompute, as in Wang et
    al.). Positive: the head's clean output favours the IO."""
    heads = namer(model).all_heads()
    final = (Receiver(Site.RESID_POST, model.cfg.n_layers - 1),)
    delta, metrics = path_patch(model, batch, [PathPatch((h,), final) for h in heads], metric,
                                receiver_positions=("end",), rows_per_forward=rows_per_forward)
    return delta.mean(1).view(model.cfg.n_layers, model.cfg.n_heads), metrics


def s_inhibition(
    model: TransformerBridge, batch: Batch, metric: Metric, name_movers: Sequence[Head], rows_per_forward: int = 64
) -> Float[Tensor, "layer head"]:
    """Mean Δ per head by path patching it into the name movers' queries at END (NaN for heads that are not upstream
    of every name mover, or when there are no name movers)."""
    grid = torch.full((model.cfg.n_layers, model.cfg.n_heads), float("nan"))
    if not name_movers:
        return grid
    receivers = tuple(Receiver(Site.Q, h.layer, h.head) for h in name_movers)
    senders = [h for h in namer(model).all_heads() if h.layer < min(m.layer for m in name_movers)]
    if senders:
        delta, _ = path_patch(model, batch, [PathPatch((s,), receivers) for s in senders], metric,
                              receiver_positions=("end",), rows_per_forward=rows_per_forward)
        for sender, value in zip(senders, delta.mean(1)):
            grid[sender.layer, sender.head] = value
    return grid


def direct_logit_attribution(
    model: TransformerBridge, batch: Batch, hooks: Sequence = ()
) -> Float[Tensor, "layer head"]:
    """Mean over examples of each head's output at END, through the final norm with its scale frozen at the run's
    value, projected on W_U[correct] − W_U[wrong]; `hooks` run during the forward (e.g. an ablation)."""
    names = [namer(model).name(Site.Z, layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad(), model.hooks(fwd_hooks=list(hooks)):
        _, cache = model.run_with_cache(batch.clean.to(model.cfg.device), names_filter=names + [FINAL_NORM_SCALE])
    rows, end = torch.arange(len(batch)), batch.position("end")
    direction = (model.W_U[:, batch.correct.to(model.cfg.device)] - model.W_U[:, batch.wrong.to(model.cfg.device)]).T
    scale = cache[FINAL_NORM_SCALE][rows, end]  # (batch, 1)
    out = torch.zeros(model.cfg.n_layers, model.cfg.n_heads)
    with torch.no_grad():
        for layer, name in enumerate(names):
            result = torch.einsum("bhd,hdm->bhm", cache[name][rows, end], model.W_O[layer])  # (batch, head, d_model)
            if model.cfg.normalization_type == "LN":  # LayerNorm centres; RMSNorm does not
                result = result - result.mean(-1, keepdim=True)
            logit = (result / scale[:, None] * model.ln_final.w) @ direction.T  # (batch, head, batch)
            out[layer] = logit[rows, :, rows].mean(0).cpu()
    return out


def compensation(
    model: TransformerBridge, batch: Batch, name_movers: Sequence[Head]
) -> tuple[Float[Tensor, "layer head"], Float[Tensor, "layer head"]]:
    """Direct logit attribution per head on the clean run and with the name movers mean-ablated (their z replaced,
    at every position, by its mean over the corrupt run's examples of the same template and answer position)."""
    clean = direct_logit_attribution(model, batch)
    if not name_movers:
        return clean, clean.clone()
    names = namer(model)
    layers = sorted({h.layer for h in name_movers})
    with torch.no_grad():
        _, corrupt = model.run_with_cache(batch.corrupt.to(model.cfg.device),
                                          names_filter=[names.name(Site.Z, layer) for layer in layers])
    hooks = []
    for layer in layers:
        heads = [h.head for h in name_movers if h.layer == layer]
        means = _group_means(corrupt[names.name(Site.Z, layer)], batch)
        chosen = torch.zeros(model.cfg.n_heads, dtype=torch.bool)
        chosen[heads] = True  # broadcasts over (batch, pos) on z (batch, pos, head, d_head)
        hooks.append((names.name(Site.Z, layer), masked_replace_hook(chosen, means)))
    return clean, direct_logit_attribution(model, batch, hooks)


def _group_means(z: Tensor, batch: Batch) -> Tensor:
    """Per example, the mean of z over the examples sharing its template and answer position (so positions align)."""
    group = batch.template * (int(batch.answer_pos.max()) + 1) + batch.answer_pos
    out = torch.empty_like(z)
    for key in group.unique():
        members = (group == key).nonzero().flatten().to(z.device)
        out[members] = z[members].mean(0, keepdim=True)
    return out
