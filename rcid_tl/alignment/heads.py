"""Teacher→student head maps for per-head checkpoints: the head at the same relative index (default), or the
student head (in the mapped layer) whose attention pattern on the task's clean prompts is most like the teacher
head's."""

from collections.abc import Mapping

import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import cache_hooks
from rcid_tl.models.loading import namer
from rcid_tl.tasks.base import ContrastiveDataset

HeadMap = dict[tuple[int, int], int]  # (teacher layer, teacher head) -> student head in the mapped layer


def proportional_head_map(n_teacher_heads: int, n_student_heads: int, layers: Mapping[int, int]) -> HeadMap:
    """Head h of a teacher layer → student head ⌊h·H_S/H_T⌋ of its mapped layer (equal runs of teacher heads
    share a student head when the student has fewer)."""
    if n_teacher_heads < 1 or n_student_heads < 1:
        raise InputError(f"head counts must be ≥ 1, got teacher {n_teacher_heads}, student {n_student_heads}")
    return {(layer, h): h * n_student_heads // n_teacher_heads for layer in layers for h in range(n_teacher_heads)}


@torch.no_grad()
def attention_head_map(teacher: TransformerBridge, student: TransformerBridge, dataset: ContrastiveDataset,
                       layers: Mapping[int, int], n_examples: int = 64) -> HeadMap:
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
        for h, best in enumerate(similarity.argmax(-1).tolist()):
            head_map[layer, h] = best
    return head_map
