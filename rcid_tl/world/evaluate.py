"""Task scores of a world teacher on freshly generated held-out prompts: IOI, Greater-Than, relations, perplexity.

Metrics follow the anchors: IOI logit difference logit(IO) - logit(S) and accuracy IO > S (Wang et al. 2023);
Greater-Than probability difference and cutoff sharpness over the 100 two-digit tokens (Hanna et al. 2023);
top-1 relation accuracy at k = 5 and k = 0 shots (Todd et al. 2024).
"""

import math
import random
from dataclasses import asdict, dataclass

import torch
from jaxtyping import Float
from torch import Tensor
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from rcid_tl.scores import logit_diff_of, prob_diff_of, sharpness_of, year_probs
from rcid_tl.world.corpus import WorldConfig
from rcid_tl.world.fewshot import relation_prompt
from rcid_tl.world.ioi import IOI_HELD_OUT_TEMPLATES, IOI_TRAIN_TEMPLATES, IOIPrompt, sample_ioi
from rcid_tl.world.lexicon import EVENT_NOUNS
from rcid_tl.world.relations import RELATIONS
from rcid_tl.world.splits import HELD_OUT_NAMES, IOI_NAMES, Split, relation_pairs
from rcid_tl.world.stream import token_rows
from rcid_tl.world.tokenizer import TWO_DIGITS
from rcid_tl.world.years import CENTURIES, GT_HELD_OUT_FORMATS, GT_TRAIN_FORMATS, YearSpanPrompt, year_span_prompt


@dataclass(frozen=True)
class TeacherScores:
    """Scores of one model; `ioi_*` use names held out of IOI sentences, `ioi_seen_*` training names."""

    ioi_acc: float
    ioi_logit_diff: float
    ioi_seen_acc: float
    ioi_seen_logit_diff: float
    ioi_ood_template_acc: float
    ioi_ood_template_logit_diff: float
    gt_prob_diff: float
    gt_sharpness: float
    gt_ood_format_prob_diff: float
    gt_ood_format_sharpness: float
    relation_5shot_acc: float
    relation_0shot_acc: float
    relation_5shot_by_relation: dict[str, float]
    relation_0shot_by_relation: dict[str, float]
    val_perplexity: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def last_logits(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, texts: list[str], batch_size: int = 64
) -> Float[Tensor, "batch d_vocab"]:
    """Logits at the last token of each `<|endoftext|>` + text (right-padded, so causal positions are untouched)."""
    out = []
    for i in range(0, len(texts), batch_size):
        ids = [tokenizer(tokenizer.eos_token + t)["input_ids"] for t in texts[i : i + batch_size]]
        width = max(map(len, ids))
        batch = torch.full((len(ids), width), tokenizer.eos_token_id, dtype=torch.long)
        for row, seq in enumerate(ids):
            batch[row, : len(seq)] = torch.tensor(seq)
        logits = model(batch).logits.float()
        out.append(logits[torch.arange(len(ids)), torch.tensor([len(s) - 1 for s in ids])])
    return torch.cat(out)


def _token_id(tokenizer: PreTrainedTokenizerBase, word: str) -> int:
    ids = tokenizer(" " + word, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise ValueError(f"{word!r} is not a single token")
    return ids[0]


def ioi_scores(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[IOIPrompt]) -> Tensor:
    """Per-prompt logit(IO) - logit(S) at the final "to"."""
    logits = last_logits(model, tokenizer, [p.text for p in prompts])
    io = torch.tensor([_token_id(tokenizer, p.io) for p in prompts])
    s = torch.tensor([_token_id(tokenizer, p.s) for p in prompts])
    return logit_diff_of(logits, io, s)


def greater_than_scores(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, prompts: list[YearSpanPrompt]
) -> tuple[Tensor, Tensor]:
    """Per-prompt probability difference and cutoff sharpness (softmax over the full vocabulary)."""
    yy_ids = torch.tensor(tokenizer.convert_tokens_to_ids(list(TWO_DIGITS)))
    years = year_probs(last_logits(model, tokenizer, [p.text for p in prompts]), yy_ids)  # (batch, 100)
    start = torch.tensor([p.start_yy for p in prompts])  # 02..97: YY−1 and YY+1 exist
    return prob_diff_of(years, start), sharpness_of(years, start)


def relation_accuracy(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, relation: str, shots: int, seed: int, draws: int
) -> float:
    """Top-1 accuracy on the held-out pairs of `relation`, `draws` demonstration sets per pair."""
    rng = random.Random(f"eval:{seed}:{relation}:{shots}")
    prompts = [
        relation_prompt(rng, relation, pair, shots)
        for pair in relation_pairs(relation, held_out=True)
        for _ in range(draws if shots else 1)
    ]
    top = last_logits(model, tokenizer, [p.text for p in prompts]).argmax(-1)
    answers = torch.tensor([_token_id(tokenizer, p.answer) for p in prompts])
    return (top == answers).float().mean().item()


@torch.no_grad()
def perplexity(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, seed: int, n_rows: int = 64) -> float:
    """exp(mean next-token loss) on validation-split text, in rows of up to 128 tokens."""
    n_ctx = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    rows = token_rows(WorldConfig(seed=seed), Split.VALIDATION, tokenizer, n_rows, min(128, n_ctx))
    losses = [model(rows[i : i + 32], labels=rows[i : i + 32]).loss.item() for i in range(0, n_rows, 32)]
    return math.exp(sum(losses) / len(losses))


def ioi_eval_prompts(
    seed: int, tag: str, names: tuple[str, ...], templates: tuple[str, ...], n: int
) -> list[IOIPrompt]:
    """`n` IOI prompts from their own seeded stream (never a training stream)."""
    rng = random.Random(f"eval:{seed}:{tag}")
    return [sample_ioi(rng, names, templates) for _ in range(n)]


def gt_eval_prompts(seed: int, tag: str, formats: tuple[str, ...], n: int) -> list[YearSpanPrompt]:
    """`n` Greater-Than prompts, start year 02..97 so that both YY-1 and YY+1 exist."""
    rng = random.Random(f"eval:{seed}:{tag}")
    return [
        year_span_prompt(rng.choice(formats), rng.choice(EVENT_NOUNS), rng.choice(CENTURIES), rng.randint(2, 97))
        for _ in range(n)
    ]


def evaluate_teacher(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, n: int = 400, seed: int = 12345, draws: int = 5
) -> TeacherScores:
    """All task scores on prompts generated from `seed` (independent of any training stream)."""
    was_training = model.training
    model.eval()
    ld = {
        tag: ioi_scores(model, tokenizer, ioi_eval_prompts(seed, tag, names, templates, n))
        for tag, names, templates in (
            ("held-out-names", HELD_OUT_NAMES, IOI_TRAIN_TEMPLATES),
            ("seen-names", IOI_NAMES, IOI_TRAIN_TEMPLATES),
            ("held-out-templates", IOI_NAMES, IOI_HELD_OUT_TEMPLATES),
        )
    }
    gt = greater_than_scores(model, tokenizer, gt_eval_prompts(seed, "gt", GT_TRAIN_FORMATS, n))
    gt_ood = greater_than_scores(model, tokenizer, gt_eval_prompts(seed, "gt-ood", GT_HELD_OUT_FORMATS, n))
    five = {r: relation_accuracy(model, tokenizer, r, 5, seed, draws) for r in sorted(RELATIONS)}
    zero = {r: relation_accuracy(model, tokenizer, r, 0, seed, draws) for r in sorted(RELATIONS)}
    scores = TeacherScores(
        ioi_acc=(ld["held-out-names"] > 0).float().mean().item(),
        ioi_logit_diff=ld["held-out-names"].mean().item(),
        ioi_seen_acc=(ld["seen-names"] > 0).float().mean().item(),
        ioi_seen_logit_diff=ld["seen-names"].mean().item(),
        ioi_ood_template_acc=(ld["held-out-templates"] > 0).float().mean().item(),
        ioi_ood_template_logit_diff=ld["held-out-templates"].mean().item(),
        gt_prob_diff=gt[0].mean().item(),
        gt_sharpness=gt[1].mean().item(),
        gt_ood_format_prob_diff=gt_ood[0].mean().item(),
        gt_ood_format_sharpness=gt_ood[1].mean().item(),
        relation_5shot_acc=sum(five.values()) / len(five),
        relation_0shot_acc=sum(zero.values()) / len(zero),
        relation_5shot_by_relation=five,
        relation_0shot_by_relation=zero,
        val_perplexity=perplexity(model, tokenizer, seed, n_rows=32 * max(1, n // 128)),
    )
    model.train(was_training)
    return scores
