"""Attention-pattern scores per head: previous-token, duplicate-token and induction scores on repeated random tokens
(Olsson et al. 2022; Wang et al. 2023 App. C), and where END attends on IOI prompts (Wang et al. 2023 §3.1)."""

from collections.abc import Sequence

import torch
from jaxtyping import Float, Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.models.loading import namer
from rcid_tl.tasks.base import Batch

REPEAT_SCORES = ("previous_token", "duplicate_token", "induction")


def repeated_tokens(
    vocabulary: Sequence[int], n: int, length: int, seed: int, bos: int | None
) -> Int[Tensor, "batch pos"]:
    """`n` sequences of `length` distinct random tokens from `vocabulary`, each followed by its exact repeat (BOS
    first when given). Distinct tokens make "the earlier copy" of every second-half token unique."""
    if length > len(vocabulary):
        raise InputError(f"repeat length {length} exceeds the {len(vocabulary)} ordinary tokens of this vocabulary")
    generator = torch.Generator().manual_seed(seed)
    pool = torch.tensor(list(vocabulary))
    halves = torch.stack([pool[torch.randperm(len(pool), generator=generator)[:length]] for _ in range(n)])
    tokens = torch.cat([halves, halves], dim=1)
    return tokens if bos is None else torch.cat([torch.full((n, 1), bos), tokens], dim=1)


def patterns(model: TransformerBridge, tokens: Int[Tensor, "batch pos"]) -> Float[Tensor, "layer batch head pos pos"]:
    """Every layer's attention pattern (query_pos × key_pos) on `tokens`."""
    names = [namer(model).name(Site.PATTERN, layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=names)
    return torch.stack([cache[name].float().cpu() for name in names])


def repeat_scores(model: TransformerBridge, tokens: Int[Tensor, "batch pos"], length: int) -> dict[str, Tensor]:
    """(layer, head) scores, each a mean attention weight over queries and sequences:
    previous_token: every query (after the first token) to the token just before it;
    duplicate_token: each second-half query to the earlier copy of its own token;
    induction: each second-half query to the token after that earlier copy."""
    attn = patterns(model, tokens)  # (layer, batch, head, query, key)
    width = tokens.shape[1]
    second = torch.arange(width - length, width)  # queries in the repeated half
    previous = torch.arange(1, width)
    return {
        "previous_token": attn[..., previous, previous - 1].mean(dim=(1, 3)),
        "duplicate_token": attn[..., second, second - length].mean(dim=(1, 3)),
        "induction": attn[..., second, second - length + 1].mean(dim=(1, 3)),
    }


def end_attention(model: TransformerBridge, batch: Batch, to: Sequence[str]) -> dict[str, Tensor]:
    """(layer, head) mean attention from each clean prompt's END to its named positions `to` (e.g. io, s2)."""
    attn = patterns(model, batch.clean).permute(1, 3, 4, 0, 2)  # (batch, query, key, layer, head)
    rows = torch.arange(len(batch))
    end = batch.position("end")
    return {name: attn[rows, end, batch.position(name)].mean(dim=0) for name in to}
