"""Hook-function factories: *what* an intervention does to the activation at one hook point, apart from *where*
(the hook name, which the caller gets from `rcid_tl.hooks.names`). Each returns `hook(act, hook) -> act` for
`model.hooks(fwd_hooks=...)`, and edits a copy of the activation unless told the site must be edited in place
(`Site.patch_in_place`) or the forward says it may be (`edit_in_place` on its hook point: direct forwards)."""

import torch
from jaxtyping import Bool, Int
from torch import Tensor

from rcid_tl.tasks.base import Batch


def position_mask(
    batch: Batch, positions: tuple[str, ...] | None, rows: Int[Tensor, " row"] | None = None
) -> Bool[Tensor, "row pos"]:
    """True where an intervention applies, for the examples `rows` of `batch` (None: every example, in order):
    at every position (`positions` None) or at each example's own named positions. Width: `batch.clean`'s."""
    rows = torch.arange(len(batch)) if rows is None else rows
    width = batch.clean.shape[1]
    if positions is None:
        return torch.ones(len(rows), width, dtype=torch.bool)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for name in positions:
        mask[torch.arange(len(rows)), batch.position(name)[rows]] = True
    return mask


def replace_hook(values: Tensor):
    """The whole activation becomes `values` (same shape): freezing a hook point at a cached run's value."""

    def hook(act: Tensor, hook) -> Tensor:
        return values.to(act.device, act.dtype)

    return hook


def masked_replace_hook(mask: Tensor, values: Tensor):
    """`values` where `mask` is True, the activation elsewhere; `mask` has the activation's shape without its last
    (feature) axis, or broadcasts to it, e.g. (row, pos) on (batch, pos, d_model), (row, pos, head) on z."""

    def hook(act: Tensor, hook) -> Tensor:
        return torch.where(mask.to(act.device)[..., None], values.to(act.device, act.dtype), act)

    return hook


def set_at_hook(rows: Tensor, pos: Tensor, values: Tensor, heads: Tensor | None = None, in_place: bool = False):
    """Row rows[i]'s activation at position pos[i] (and head heads[i], on a per-head site) becomes values[i]."""

    def hook(act: Tensor, hook) -> Tensor:
        # never edit the bridge's tensor unless the site needs it (`Site.patch_in_place`) or the forward allows it
        if not (in_place or getattr(hook, "edit_in_place", False)):
            act = act.clone()
        act[_index(act, rows, pos, heads)] = values.to(act.device, act.dtype)
        return act

    return hook


def add_at_hook(rows: Tensor, pos: Tensor, delta: Tensor, heads: Tensor | None = None):
    """Row rows[i]'s activation at position pos[i] (and head heads[i], on a per-head site) gains delta[i]."""

    def hook(act: Tensor, hook) -> Tensor:
        if not getattr(hook, "edit_in_place", False):  # never edit the bridge's tensor in place
            act = act.clone()
        act[_index(act, rows, pos, heads)] += delta.to(act.device, act.dtype)
        return act

    return hook


def _index(act: Tensor, rows: Tensor, pos: Tensor, heads: Tensor | None) -> tuple[Tensor, ...]:
    index = (rows.to(act.device), pos.to(act.device))
    return index if heads is None else (*index, heads.to(act.device))


def record_hook(store: dict[str, Tensor], name: str):
    """Keep a detached copy of the activation in `store[name]` and pass it on unchanged."""

    def hook(act: Tensor, hook) -> Tensor:
        store[name] = act.detach().clone()
        return act

    return hook


def keep_hook(store: dict[str, Tensor], name: str):
    """Keep the activation itself (gradients and all) in `store[name]` and pass it on unchanged."""

    def hook(act: Tensor, hook) -> Tensor:
        store[name] = act
        return act

    return hook


def leaf_hook(act: Tensor, hook) -> Tensor:
    """The activation as a fresh leaf that wants gradients, so a backward pass stops there and computes no
    parameter gradient (attribution patching differentiates the metric with respect to activations only)."""
    return act.detach().requires_grad_(True)
