"""Teacher→student head maps for per-head checkpoints, within mapped layers: the head at the same relative index
(the naive baseline), the student head whose attention pattern on the task's clean prompts is most like the teacher
head's, or whose per-head activations (z at the task's positions) have the highest linear CKA with the teacher
head's. Each similarity map picks the best student head per teacher head (many-to-one) or, with `one_to_one`, the
Hungarian assignment. The causal-role map, across layers and fitted on held-out examples, is
`rcid_tl.alignment.correspondence`."""

from collections.abc import Mapping

import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.cka import linear_cka
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import at_positions, cache_hooks
from rcid_tl.models.loading import namer
from rcid_tl.tasks.base import ContrastiveDataset

HeadMap = dict[tuple[int, int], int]  # (teacher layer, teacher head) -> student head in the mapped layer


def proportional_head_map(n_teacher_heads: int, n_student_heads: int, layers: Mapping[int, int]) -> HeadMap:
    """Head h of a teacher layer → student head ⌊h·H_S/H_T⌋ of its mapped layer (equal runs of teacher heads
    share a student head when the student has fewer)."""
    if n_teacher_heads < 1 or n_student_heads < 1:
        raise InputError(f"head counts must be ≥ 1, got teacher {n_teacher_heads}, student {n_student_heads}")
    return {(layer, h): h * n_student_heads // n_teacher_heads for layer in layers for h in range(n_teacher_heads)}


def assign_heads(similarity: Tensor, one_to_one: bool = False) -> list[int]:
    """Per teacher head (rows of `similarity`, (H_T, H_S)), the chosen student head: the most similar, or the
    Hungarian assignment maximising the summed similarity (teacher heads left over when H_S < H_T take their most
    similar)."""
    best = similarity.argmax(-1).tolist()
    if one_to_one:
        rows, cols = linear_sum_assignment(similarity.double().numpy(), maximize=True)
        for i, j in zip(rows.tolist(), cols.tolist()):
            best[i] = j
    return best


@torch.no_grad()
def activation_head_map(teacher: TransformerBridge, student: TransformerBridge, dataset: ContrastiveDataset,
                        layers: Mapping[int, int], n_examples: int = 64, one_to_one: bool = False) -> HeadMap:
    """Head h of teacher layer l → the head of student layer `layers[l]` whose z activations (clean prompts, rows:
    examples × the task's named positions) have the highest linear CKA with head h's (CKA is invariant to rotating
    or rescaling a head's value space, so it sees through those reparametrisations)."""
    batch = dataset.batch(list(range(min(n_examples, len(dataset)))))

    def per_head(model: TransformerBridge, wanted: set[int]) -> dict[int, Tensor]:
        names = {layer: namer(model).name(Site.Z, layer) for layer in sorted(wanted)}
        _, cache = cache_hooks(model, batch.clean, list(names.values()), batch.answer_pos)
        rows = lambda z: torch.cat([at_positions(z, batch.position(p)) for p in dataset.position_names])  # noqa: E731
        return {layer: rows(cache[name].float().cpu()) for layer, name in names.items()}  # (rows, head, d_head)

    t_z, s_z = per_head(teacher, set(layers)), per_head(student, set(layers.values()))
    head_map: HeadMap = {}
    for layer, s_layer in layers.items():
        t, s = t_z[layer], s_z[s_layer]
        similarity = torch.tensor([[linear_cka(t[:, i], s[:, j]) for j in range(s.shape[1])]
                                   for i in range(t.shape[1])])
        for h, best in enumerate(assign_heads(similarity, one_to_one)):
            head_map[layer, h] = best
    return head_map


@torch.no_grad()
def attention_head_map(teacher: TransformerBridge, student: TransformerBridge, dataset: ContrastiveDataset,
                       layers: Mapping[int, int], n_examples: int = 64, one_to_one: bool = False) -> HeadMap:
    """Head h of teacher layer l → the head of student layer `layers[l]` with the most similar attention pattern:
    the highest mean cosine, over the first `n_examples` clean prompts, between the two heads' patterns restricted
    to real query and key positions (up to each prompt's answer position)."""
    batch = dataset.batch(list(range(min(n_examples, len(dataset)))))
    width = batch.clean.shape[1]
    real = torch.arange(width)[None, :] <= batch.answer_pos[:, None]  # (batch, pos)
    mask = (real[:, :, None] & real[:, None, :]).float()[:, None]  # (batch, 1, query, key)

    def patterns(model: TransformerBridge, wanted: set[int]) -> dict[int, torch.Tensor]:
        names = {layer: namer(model).name(Site.PATTERN, layer) for layer in sorted(wanted)}
        _, cache = cache_hooks(model, batch.clean, list(names.values()), batch.answer_pos)
        return {layer: (cache[name].float().cpu() * mask).flatten(2) for layer, name in names.items()}

    t_patterns, s_patterns = patterns(teacher, set(layers)), patterns(student, set(layers.values()))
    head_map: HeadMap = {}
    for layer, s_layer in layers.items():
        t = torch.nn.functional.normalize(t_patterns[layer], dim=-1)  # (batch, H_T, q·k)
        s = torch.nn.functional.normalize(s_patterns[s_layer], dim=-1)  # (batch, H_S, q·k)
        similarity = torch.einsum("bik,bjk->ij", t, s) / len(t)  # (H_T, H_S): mean cosine over prompts
        for h, best in enumerate(assign_heads(similarity, one_to_one)):
            head_map[layer, h] = best
    return head_map
