"""The standard known-answer students of one teacher, each with its ground-truth head correspondence and the
verdict a sound comparison instrument should reach on it."""

from collections.abc import Sequence

from transformers import PreTrainedModel

from rcid_tl.validation.measure import HeadPair
from rcid_tl.validation.students import (
    KnownStudent, add_weight_noise, editable_copy, identity_correspondence, merge_correspondence, merge_heads,
    permutation_correspondence, permute_heads, random_head_permutation, random_weights, rescale_value_heads,
    rotate_value_heads,
)

NOISE_SIGMAS = (0.01, 0.1, 0.5)

# Pairs whose merge keeps IOI behaviour, measured with `most_similar_heads` (patterns on 64 IOI prompts, task seed
# 0) and `task_score` (256 held-out prompts, task seed 1) on plain HF forwards.
DEFAULT_MERGES = {
    # the most alike pair of the whole model: IOI logit difference 9.572 → 9.482 (−0.090), accuracy 1.000 → 1.000
    "world-gpt2": HeadPair(layer=0, keep=2, drop=0, similarity=0.754),
    # the most alike pair (0.1 and 0.0, 0.683) loses IOI when merged (accuracy 0.363); this is the most alike pair of
    # the last layer, one KV group so the merged OV is exact: logit difference 8.966 → 8.961, accuracy 1.000 → 1.000
    "world-qwen2": HeadPair(layer=3, keep=3, drop=2, similarity=0.630),
}


def permuted_student(teacher: PreTrainedModel, seed: int) -> KnownStudent:
    perms = random_head_permutation(teacher.config, seed)
    return KnownStudent(
        name="permuted", description=f"the teacher with every layer's heads relabelled (seed {seed}: {perms})",
        model=permute_heads(teacher, perms), correspondence=permutation_correspondence(teacher.config, perms),
        expected="same mechanism under relabelled heads: an instrument that matches heads finds the permutation "
                 "and full agreement; one that compares heads by index reports disagreement on permuted layers",
    )


def rotated_student(teacher: PreTrainedModel, seed: int) -> KnownStudent:
    return KnownStudent(
        name="rotated", description=f"each value head turned by a random orthogonal map, undone in W_O (seed {seed})",
        model=rotate_value_heads(teacher, seed), correspondence=identity_correspondence(teacher.config),
        expected="the teacher's mechanism exactly: logits, patterns and head outputs equal; only raw value "
                 "activations differ by a rotation, so rotation-invariant comparisons report full agreement",
    )


def rescaled_student(teacher: PreTrainedModel, seed: int) -> KnownStudent:
    return KnownStudent(
        name="rescaled", description=f"each value head scaled by c in [1/4, 4], W_O by 1/c (seed {seed})",
        model=rescale_value_heads(teacher, seed), correspondence=identity_correspondence(teacher.config),
        expected="the teacher's mechanism exactly: logits and head outputs equal; only value norms change, so "
                 "scale-invariant comparisons report full agreement",
    )


def noisy_student(teacher: PreTrainedModel, sigma: float, seed: int) -> KnownStudent:
    return KnownStudent(
        name=f"noise-{sigma:g}",
        description=f"Gaussian weight noise, σ = {sigma:g} × each tensor's std (seed {seed})",
        model=add_weight_noise(teacher, sigma, seed), correspondence=identity_correspondence(teacher.config),
        expected="agreement that falls as σ grows (σ = 0 is the teacher itself): graded, monotone damage",
    )


def random_student(teacher: PreTrainedModel, seed: int) -> KnownStudent:
    return KnownStudent(
        name="random", description=f"the teacher's architecture with fresh initial weights (seed {seed})",
        model=random_weights(teacher, seed), correspondence=None,
        expected="no agreement beyond chance, behaviour at chance: the floor every score should sit on",
    )


def merged_student(teacher: PreTrainedModel, pair: HeadPair) -> KnownStudent:
    l, keep, drop = pair.layer, pair.keep, pair.drop
    return KnownStudent(
        name="merged", description=f"heads {l}.{keep} and {l}.{drop} merged into {l}.{keep} (rank-d_head OV); "
                                   f"{l}.{drop} writes nothing",
        model=merge_heads(teacher, l, keep, drop), correspondence=merge_correspondence(teacher.config, l, keep, drop),
        expected=f"many-to-one: teacher heads {l}.{keep} and {l}.{drop} both map to student head {l}.{keep}, "
                 f"student {l}.{drop} is silent; behaviour close to the teacher's",
    )


def known_students(teacher: PreTrainedModel, seed: int = 0, sigmas: Sequence[float] = NOISE_SIGMAS,
                   merge: HeadPair | None = None) -> tuple[KnownStudent, ...]:
    """The teacher itself, its exact relabellings and reparametrisations, graded noise, random weights, and (given
    a pair, e.g. `DEFAULT_MERGES[name]`) a merged student. The slow ablation-finetuned student is
    `rcid_tl.validation.finetune.ablation_finetuned`."""
    itself = KnownStudent(
        name="teacher", description="the teacher itself (an unedited copy)", model=editable_copy(teacher),
        correspondence=identity_correspondence(teacher.config), expected="perfect agreement on every score",
    )
    students = [itself, permuted_student(teacher, seed), rotated_student(teacher, seed),
                rescaled_student(teacher, seed), *(noisy_student(teacher, s, seed) for s in sigmas),
                random_student(teacher, seed)]
    return (*students, *([merged_student(teacher, merge)] if merge is not None else []))
