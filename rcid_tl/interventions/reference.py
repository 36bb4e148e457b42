"""The reference distribution of mean and resample ablation: a separate sample of the same task, big enough that
every (template, answer position) group of the evaluated examples has `MIN_GROUP` members (Wang et al. 2023 take
means over thousands of ABC prompts; the evaluated examples alone give 1–9 per group)."""

import math
from collections import Counter
from dataclasses import replace

from transformers import PreTrainedTokenizerBase

from rcid_tl.checks import MAX_EXAMPLES, check_count
from rcid_tl.errors import InputError
from rcid_tl.interventions.knockout import MIN_GROUP
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.registry import TaskSpec, build_task

SEED_OFFSET = 1_000_003  # reference seed = task seed + this, unless given: never the evaluated examples' seed
_PILOT, _MARGIN, _GROWTH, _TRIES = 300, 1.3, 1.3, 6  # size from a pilot sample's group shares, grown if short


def reference_seed(spec: TaskSpec, seed: int | None) -> int:
    return spec.seed + SEED_OFFSET if seed is None else seed


def reference_distribution(spec: TaskSpec, tokenizer: PreTrainedTokenizerBase, evaluated: ContrastiveDataset,
                           n: int | None = None, seed: int | None = None, n_ctx: int | None = None
                           ) -> ContrastiveDataset:
    """`n` examples of `spec`'s task drawn with another seed; with `n` None, a sample in which every evaluated
    group has ≥ `MIN_GROUP` members (sized from the rarest group's share in a pilot sample, with a 30% margin, and
    grown while a group is short). A pairs file has no distribution to draw from: its own rows are the reference."""
    check_count(n, "--reference-n", maximum=MAX_EXAMPLES)
    if spec.name.startswith("pairs:"):
        return evaluated
    seed = reference_seed(spec, seed)
    if seed == spec.seed:
        raise InputError(f"--reference-seed {seed} equals the task seed; the reference must be a separate sample")
    if n is not None:
        return build_task(replace(spec, n=n, seed=seed), tokenizer, n_ctx)
    wanted = {(e.template, e.answer_pos) for e in evaluated.examples}
    pilot = build_task(replace(spec, n=_PILOT, seed=seed), tokenizer, n_ctx)
    seen = Counter((e.template, e.answer_pos) for e in pilot.examples)
    rarest = min(max(seen[g], 1) for g in wanted) / _PILOT  # the smallest evaluated group's share of the task
    size = math.ceil(MIN_GROUP / rarest * _MARGIN)
    for _ in range(_TRIES):
        reference = build_task(replace(spec, n=min(size, MAX_EXAMPLES), seed=seed), tokenizer, n_ctx)
        counts = Counter((e.template, e.answer_pos) for e in reference.examples)
        if all(counts[g] >= MIN_GROUP for g in wanted) or size >= MAX_EXAMPLES:
            return reference
        size = math.ceil(size * _GROWTH)
    return reference
