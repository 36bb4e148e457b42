"""The reference distribution of mean and resample ablation: a separate sample of the same task, big enough that
every (template, answer position) group of the evaluated examples has `MIN_GROUP` members (Wang et al. 2023 take
means over thousands of ABC prompts; the evaluated examples alone give 1–9 per group)."""

from collections import Counter
from dataclasses import replace

from transformers import PreTrainedTokenizerBase

from rcid_tl.checks import MAX_EXAMPLES, check_count
from rcid_tl.errors import InputError
from rcid_tl.interventions.knockout import MIN_GROUP
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.registry import TaskSpec, build_task

SEED_OFFSET = 1_000_003  # reference seed = task seed + this, unless given: never the evaluated examples' seed
_GROWTH, _TRIES = 1.5, 6


def reference_seed(spec: TaskSpec, seed: int | None) -> int:
    return spec.seed + SEED_OFFSET if seed is None else seed


def reference_distribution(spec: TaskSpec, tokenizer: PreTrainedTokenizerBase, evaluated: ContrastiveDataset,
                           n: int | None = None, seed: int | None = None, n_ctx: int | None = None
                           ) -> ContrastiveDataset:
    """`n` examples of `spec`'s task drawn with another seed; with `n` None, the smallest sample (growing by half
    from `MIN_GROUP` × 1.4 per evaluated group) in which every evaluated group has ≥ `MIN_GROUP` members. A pairs
    file has no distribution to draw from: its own rows are the reference."""
    check_count(n, "--reference-n", maximum=MAX_EXAMPLES)
    if spec.name.startswith("pairs:"):
        return evaluated
    seed = reference_seed(spec, seed)
    if seed == spec.seed:
        raise InputError(f"--reference-seed {seed} equals the task seed; the reference must be a separate sample")
    if n is not None:
        return build_task(replace(spec, n=n, seed=seed), tokenizer, n_ctx)
    wanted = {(e.template, e.answer_pos) for e in evaluated.examples}
    size = int(MIN_GROUP * 1.4 * len(wanted))
    for _ in range(_TRIES):
        reference = build_task(replace(spec, n=min(size, MAX_EXAMPLES), seed=seed), tokenizer, n_ctx)
        counts = Counter((e.template, e.answer_pos) for e in reference.examples)
        if all(counts[g] >= MIN_GROUP for g in wanted) or size >= MAX_EXAMPLES:
            return reference
        size = int(size * _GROWTH)
    return reference
