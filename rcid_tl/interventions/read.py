"""Read: cache chosen hook points without changing the model, and the causal imprint
d = h_clean − h_corrupt at (layer, per-example position). `capture` keeps gradients for training losses."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.hooks.names import Site
from rcid_tl.models.loading import namer
from rcid_tl.tasks.base import Batch


def _kept_positions(answer_pos: Int[Tensor, " batch"]) -> tuple[Tensor, Tensor]:
    # Unembedding every position costs d_model·d_vocab per token (a third of GPT-2 small's forward); we only ever
    # score the answer positions, so ask HF for logits there alone (`logits_to_keep`).
    keep, slot = torch.unique(answer_pos, return_inverse=True)
    return keep, slot


def answer_forward(
    model: TransformerBridge, tokens: Int[Tensor, "batch pos"], answer_pos: Int[Tensor, " batch"]
) -> Float[Tensor, "batch d_vocab"]:
    """Logits at each row's answer position, computing the unembedding only where needed."""
    keep, slot = _kept_positions(answer_pos.cpu())
    logits = model(tokens.to(model.cfg.device), logits_to_keep=keep.to(model.cfg.device))
    answer = logits[torch.arange(len(slot)), slot.to(logits.device)]
    return answer.to(torch.promote_types(answer.dtype, torch.float32))  # float32 at least under autocast


def cache_hooks(
    model: TransformerBridge, tokens: Int[Tensor, "batch pos"], names: Sequence[str],
    answer_pos: Int[Tensor, " batch"],
) -> tuple[Float[Tensor, "batch d_vocab"], dict[str, Tensor]]:
    """Answer-position logits and the activations at exactly `names` (detached; only those hooks are cached)."""
    keep, slot = _kept_positions(answer_pos.cpu())
    with torch.no_grad():
        logits, cache = model.run_with_cache(
            tokens.to(model.cfg.device), names_filter=list(names), logits_to_keep=keep.to(model.cfg.device)
        )
    return logits[torch.arange(len(slot)), slot.to(logits.device)], {name: cache[name] for name in names}


def at_positions(acts: Tensor, positions: Int[Tensor, " batch"]) -> Tensor:
    """Each example's activation at its own position: (batch, pos, ...) → (batch, ...)."""
    return acts[torch.arange(acts.shape[0], device=acts.device), positions.to(acts.device)]


def read_site(
    model: TransformerBridge, batch: Batch, site: Site, layer: int, position: str
) -> tuple[Tensor, Tensor]:
    """(clean, corrupt) activations of `site` at `layer`, each example at its own named position."""
    name = namer(model).name(site, layer)
    pos = batch.position(position)
    _, clean = cache_hooks(model, batch.clean, [name], batch.answer_pos)
    _, corrupt = cache_hooks(model, batch.corrupt, [name], batch.answer_pos)
    return at_positions(clean[name], pos), at_positions(corrupt[name], pos)


def causal_imprint(
    model: TransformerBridge, batch: Batch, layer: int, position: str, site: Site = Site.RESID_POST
) -> Float[Tensor, "batch *d"]:
    """d = h_clean − h_corrupt: what the corruption changed at that point ((batch, head, d_head) at
    per-head sites)."""
    clean, corrupt = read_site(model, batch, site, layer, position)
    return clean - corrupt


@contextmanager
def capture(model: TransformerBridge, names: Sequence[str]) -> Iterator[dict[str, Tensor]]:
    """Within the block, forwards store activations at `names` *with* gradients (run_with_cache detaches).

    Keys are the requested names (inside a hook, `hook.name` is the bridge's canonical name, not the alias)."""
    store: dict[str, Tensor] = {}

    def keeper(name: str):
        def hook(act: Tensor, hook) -> Tensor:
            store[name] = act
            return act

        return hook

    with model.hooks(fwd_hooks=[(name, keeper(name)) for name in names]):
        yield store
