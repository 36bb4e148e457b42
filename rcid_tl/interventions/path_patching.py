"""Path patching (Wang et al. 2023, §3.1 and App. B): the effect of sender heads through chosen receivers only.

Pass 1 caches the clean and corrupt runs. Pass 2 runs the clean prompt with the senders' z from the corrupt run and
every other head's z frozen at its clean value, and records the receivers' inputs. MLPs and norms recompute, as in the
paper (it takes heads as the circuit's nodes, so a sender → MLP → receiver path counts as direct); `freeze_mlps`
freezes every MLP's output at its clean value too, keeping only paths through the residual stream. Pass 3 runs the
clean prompt with only those receiver inputs replaced, and reads the metric. The effect is Δ = metric(clean) −
metric(pass 3). Many (patch, example) pairs share a forward, one per batch row, as in `patch_sites`.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head, Site
from rcid_tl.interventions.hook_fns import masked_replace_hook, position_mask, record_hook, replace_hook
from rcid_tl.interventions.read import answer_forward, cache_hooks
from rcid_tl.metrics import Metric, RunMetrics
from rcid_tl.models.loading import namer
from rcid_tl.progress import track
from rcid_tl.tasks.base import Batch

RECEIVER_SITES = (Site.Q, Site.K, Site.V, Site.RESID_PRE, Site.RESID_POST)


@dataclass(frozen=True)
class Receiver:
    """A receiver input: a head's queries, keys or values, or the residual stream before/after a block.

    `head` indexes the hooked tensor's head axis: a query head for `q`, a key/value head for `k` and `v`. On a
    grouped-query (GQA) model one key/value head serves n_heads / n_kv_heads query heads and there is no separate
    per-query-head key or value to patch, so a `k`/`v` receiver reaches every query head of its group
    (see `kv_head_of`)."""

    site: Site
    layer: int
    head: int | None = None

    def __post_init__(self) -> None:
        if Site(self.site) not in RECEIVER_SITES:
            raise InputError(f"site {Site(self.site).value!r} cannot be a path-patching receiver; allowed: "
                             f"{', '.join(s.value for s in RECEIVER_SITES)}")
        if (self.head is None) == Site(self.site).per_head:
            raise InputError(f"receiver site {Site(self.site).value} "
                             f"{'needs' if Site(self.site).per_head else 'takes no'} head index")

    def reads_from(self, sender: Head) -> bool:
        """Whether the sender's output can reach this input: heads read the residual before their block."""
        return self.layer >= sender.layer if self.site is Site.RESID_POST else self.layer > sender.layer


@dataclass(frozen=True)
class PathPatch:
    """Senders patched together (their z from the corrupt run) and the receiver inputs their effect is read through."""

    senders: tuple[Head, ...]
    receivers: tuple[Receiver, ...]


def kv_head_of(model: TransformerBridge, head: int) -> int:
    """The key/value head a query head reads on a GQA model (itself on a plain multi-head model)."""
    n_kv = getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads
    return head // (model.cfg.n_heads // n_kv)


def path_patch(
    model: TransformerBridge,
    batch: Batch,
    patches: Sequence[PathPatch],
    metric: Metric,
    sender_positions: tuple[str, ...] | None = None,
    receiver_positions: tuple[str, ...] | None = None,
    freeze_mlps: bool = False,
    rows_per_forward: int = 64,
) -> tuple[Float[Tensor, "patch batch"], RunMetrics]:
    """Δ per (patch, example) and the clean/corrupt metrics. Senders are patched at `sender_positions` and receivers
    at `receiver_positions` (None: every position). MLPs recompute (Wang et al.) unless `freeze_mlps`, which cuts
    the paths through them. Exact: each row is one unbatched three-pass run."""
    _check(model, batch, patches, sender_positions, receiver_positions)
    names = namer(model)
    z_names = [names.name(Site.Z, layer) for layer in range(model.cfg.n_layers)]
    mlp_names = [names.name(Site.MLP_OUT, layer) for layer in range(model.cfg.n_layers)] if freeze_mlps else []
    clean_logits, clean = cache_hooks(model, batch.clean, z_names + mlp_names, batch.answer_pos)
    corrupt_logits, corrupt = cache_hooks(model, batch.corrupt, z_names, batch.answer_pos)
    metrics = RunMetrics(clean=metric(clean_logits, batch).cpu(), corrupt=metric(corrupt_logits, batch).cpu())

    n = len(batch)
    rows = torch.arange(len(patches) * n)  # row r runs patch r // n on example r % n
    patched = torch.empty(len(rows))
    for chunk in track(rows.split(rows_per_forward), "path patching"):
        patch_of, example_of = chunk // n, chunk % n
        sub = batch.take(example_of)
        chosen = [patches[int(p)] for p in patch_of]
        send = _sender_hooks(model, sub, chosen, sender_positions, example_of, clean, corrupt, z_names)
        freeze = [(name, replace_hook(clean[name][example_of.to(clean[name].device)])) for name in mlp_names]
        recorded = _record(model, sub, chosen, send + freeze)
        with torch.no_grad(), model.hooks(fwd_hooks=_receiver_hooks(model, sub, chosen, receiver_positions, recorded)):
            patched[chunk] = metric(answer_forward(model, sub.clean, sub.answer_pos), sub).cpu()
    return metrics.clean[None, :] - patched.view(len(patches), n), metrics


def _check(model, batch, patches, sender_positions, receiver_positions) -> None:
    names = namer(model)
    n_kv = getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads
    for position in (sender_positions or ()) + (receiver_positions or ()):
        batch.position(position)
    for patch in patches:
        if not patch.senders or not patch.receivers:
            raise InputError("a path patch needs at least one sender and one receiver")
        for sender in patch.senders:
            names.check_head(sender)
        for receiver in patch.receivers:
            names.check_layer(receiver.layer)
            limit = n_kv if receiver.site in (Site.K, Site.V) else model.cfg.n_heads
            if receiver.head is not None and not 0 <= receiver.head < limit:
                raise InputError(f"receiver head {receiver.head} of {receiver.site.value} is out of range; this "
                                 f"model has {limit} such heads per layer")
            late = [str(s) for s in patch.senders if not receiver.reads_from(s)]
            if late:
                raise InputError(f"receiver {receiver.site.value} at layer {receiver.layer} cannot read sender "
                                 f"{late[0]}; receivers must be downstream of every sender")


def _sender_hooks(model, sub, chosen, positions, example_of, clean, corrupt, z_names) -> list:
    """Pass 2's z hooks: every head frozen at its clean value, except each row's senders, which get corrupt z."""
    where = position_mask(sub, positions)  # (row, pos)
    hooks = []
    for layer, name in enumerate(z_names):
        mask = torch.zeros(len(chosen), sub.clean.shape[1], model.cfg.n_heads, dtype=torch.bool)  # (row, pos, head)
        for r, patch in enumerate(chosen):
            for head in (s.head for s in patch.senders if s.layer == layer):
                mask[r, :, head] = where[r]
        rows = example_of.to(clean[name].device)
        clean_z, corrupt_z = clean[name][rows], corrupt[name][rows]
        hooks.append((name, replace_hook(torch.where(mask.to(clean_z.device)[..., None], corrupt_z, clean_z))))
    return hooks


def _record(model, sub, chosen, hooks) -> dict[str, Tensor]:
    """Pass 2: run the clean prompts under `hooks` and keep every receiver hook's activation."""
    names = namer(model)
    wanted = sorted({names.name(r.site, r.layer) for patch in chosen for r in patch.receivers})
    store: dict[str, Tensor] = {}
    with torch.no_grad(), model.hooks(fwd_hooks=hooks + [(name, record_hook(store, name)) for name in wanted]):
        answer_forward(model, sub.clean, sub.answer_pos)
    return store


def _receiver_hooks(model, sub, chosen, positions, recorded) -> list:
    """Pass 3's hooks: each row's receiver inputs replaced by their pass-2 values, nothing else touched."""
    names = namer(model)
    where = position_mask(sub, positions)  # (row, pos)
    hooks = []
    for name, values in recorded.items():
        mask = torch.zeros(values.shape[:-1], dtype=torch.bool)  # (row, pos) or (row, pos, head)
        for r, patch in enumerate(chosen):
            for receiver in (x for x in patch.receivers if names.name(x.site, x.layer) == name):
                if receiver.head is None:
                    mask[r] = where[r]
                else:
                    mask[r, :, receiver.head] = where[r]
        hooks.append((name, masked_replace_hook(mask, values)))
    return hooks
