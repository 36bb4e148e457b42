"""What each head of a found circuit does on a task: where it attends from the answer position (the task's named
word, the previous token, the first token, itself), where its ablation matters (at the word or at the answer
position) and its direct effect on the metric."""

from collections.abc import Sequence

import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.heads.attention import patterns
from rcid_tl.heads.circuit import ROWS, CircuitTask
from rcid_tl.heads.effects import direct_effects, direct_logit_attribution
from rcid_tl.hooks.names import Head
from rcid_tl.interventions.knockout import Ablation, Method, knockout_prepared, prepare_knockout

WORDS = {"name": ("name_first", "name"), "object": ("object_first", "object")}  # a task's word span, by last position


def word_span(position_names: Sequence[str]) -> tuple[str, str]:
    """The (first, last) token positions of the task's word (the pronoun task's name, the object task's object)."""
    for last, span in WORDS.items():
        if last in position_names:
            return span
    raise ValueError(f"no word span among positions {list(position_names)}")


def head_roles(model: TransformerBridge, task: CircuitTask, circuit: Sequence[Head]) -> dict[str, dict[str, float]]:
    """Per circuit head ("L.H"), on `task`'s clean prompts, means over examples of:
    attention from the answer position (`end`) to the word's tokens (summed), to the token before `end`, to the
    first token (BOS), and to `end` itself; attention from the word's last token to the token before it, to the
    word's earlier tokens (summed; the pieces of a multi-token name), to the first token and to itself; the relative change of the mean metric when the head is mean-ablated
    only at the word's last token (`ablate_at_word`), only at `end` (`ablate_at_end`) and everywhere; the
    path-patched direct effect on the metric (the head's clean → corrupt output into the final residual at `end`)
    and its direct logit attribution."""
    batch = task.dataset.batch()
    first, last = word_span(task.dataset.position_names)
    attn = patterns(model, batch.clean)  # (layer, batch, head, query, key)
    rows, end = torch.arange(len(batch)), batch.position("end")
    keys = torch.arange(batch.clean.shape[1])
    in_word = (keys[None] >= batch.position(first)[:, None]) & (keys[None] <= batch.position(last)[:, None])
    word_end = batch.position(last)
    before = (keys[None] >= batch.position(first)[:, None]) & (keys[None] < word_end[:, None])  # earlier word tokens
    ready = prepare_knockout(model, batch, task.metric, Method.MEAN, task.reference, rows_per_forward=ROWS,
                             reference_batch=task.reference_dataset.batch())
    ablations = [Ablation((h,), positions) for h in circuit for positions in ((last,), ("end",), None)]
    ablated = knockout_prepared(model, batch, ablations, task.metric, ready, rows_per_forward=ROWS).mean(1)
    clean = ready.metrics.clean.mean().item()
    direct, _ = direct_effects(model, batch, task.metric, ROWS)
    dla = direct_logit_attribution(model, batch)
    roles = {}
    for k, h in enumerate(circuit):
        from_end = attn[h.layer, rows, h.head, end]  # (batch, key)
        from_word = attn[h.layer, rows, h.head, word_end]
        roles[str(h)] = {
            "attn_word_to_previous": from_word[rows, word_end - 1].mean().item(),
            "attn_word_to_word_start": (from_word * before).sum(-1).mean().item(),
            "attn_word_to_first": from_word[:, 0].mean().item(),
            "attn_word_to_self": from_word[rows, word_end].mean().item(),
            "attn_end_to_word": (from_end * in_word).sum(-1).mean().item(),
            "attn_end_to_previous": from_end[rows, end - 1].mean().item(),
            "attn_end_to_first": from_end[:, 0].mean().item(),
            "attn_end_to_self": from_end[rows, end].mean().item(),
            "ablate_at_word": ablated[3 * k].item() / clean - 1,
            "ablate_at_end": ablated[3 * k + 1].item() / clean - 1,
            "ablate_everywhere": ablated[3 * k + 2].item() / clean - 1,
            "direct_effect": direct[h.layer, h.head].item(),
            "direct_logit_attribution": dla[h.layer, h.head].item(),
        }
    return roles


def role_of(role: dict[str, float]) -> str:
    """A one-phrase reading of `head_roles`' numbers: where the head acts and what it attends to from there."""
    if abs(role["ablate_at_word"]) > abs(role["ablate_at_end"]):
        where, targets = "the word's last token", {
            "the previous token": role["attn_word_to_previous"], "the word's earlier tokens":
            role["attn_word_to_word_start"], "the first token": role["attn_word_to_first"],
            "itself": role["attn_word_to_self"]}
    else:
        where, targets = "the answer position", {
            "the word": role["attn_end_to_word"], "the previous token": role["attn_end_to_previous"],
            "the first token": role["attn_end_to_first"], "itself": role["attn_end_to_self"]}
    top = max(targets, key=targets.get)
    return f"acts at {where}, attending mostly to {top} ({targets[top]:.2f}) from there"
