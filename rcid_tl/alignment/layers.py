"""Teacher→student layer maps: proportional depth by default, or the student layer most CKA-similar to each teacher
layer; and the per-layer activations such maps (and Procrustes fits) are computed from."""

from collections.abc import Sequence

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.cka import debiased_linear_cka, linear_cka
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import at_positions, cache_hooks
from rcid_tl.models.loading import namer
from rcid_tl.progress import track
from rcid_tl.tasks.base import ContrastiveDataset


def proportional_layer_map(n_teacher: int, n_student: int) -> dict[int, int]:
    """Teacher layer l → the student layer at the same relative depth: ⌈(l+1)·n_S/n_T⌉ − 1, so each student block
    covers an equal run of teacher blocks and the last layers correspond (12 → 4: 0,0,0,1,1,1,2,2,2,3,3,3)."""
    if n_teacher < 1 or n_student < 1:
        raise InputError(f"layer counts must be ≥ 1, got teacher {n_teacher}, student {n_student}")
    return {layer: -(-(layer + 1) * n_student // n_teacher) - 1 for layer in range(n_teacher)}


def cka_layer_map(
    teacher_acts: Sequence[Float[Tensor, "n d_t"]],
    student_acts: Sequence[Float[Tensor, "n d_s"]],
    *,
    debiased: bool = False,
) -> dict[int, int]:
    """Teacher layer l → the student layer whose activations (same n inputs) have the highest linear CKA with
    layer l's (debiased CKA with `debiased=True`, better when n is small relative to the widths)."""
    if not teacher_acts or not student_acts:
        raise InputError("a CKA layer map needs activations for at least one teacher and one student layer")
    cka = debiased_linear_cka if debiased else linear_cka
    scores = cka_matrix(teacher_acts, student_acts, cka)
    return {layer: int(scores[layer].argmax()) for layer in range(len(teacher_acts))}


def cka_matrix(teacher_acts: Sequence[Tensor], student_acts: Sequence[Tensor], cka=linear_cka
               ) -> Float[Tensor, "layer_t layer_s"]:
    """CKA between every teacher layer and every student layer."""
    return torch.tensor([[cka(t, s) for s in student_acts] for t in teacher_acts])


def layer_activations(
    model: TransformerBridge,
    dataset: ContrastiveDataset,
    *,
    site: Site = Site.RESID_POST,
    positions: Sequence[str] | None = None,
    corrupt: bool = False,
    batch_size: int = 64,
) -> list[Float[Tensor, "n *d"]]:
    """Per layer, the clean (or corrupt) activations at `site` at each example's named `positions` (all by default),
    stacked as rows example-major: row e·P + p is example e at position p. Same rows for any model on `dataset`."""
    positions = dataset.check_positions(positions or dataset.position_names)
    names = [namer(model).name(site, layer) for layer in range(model.cfg.n_layers)]
    per_layer: list[list[Tensor]] = [[] for _ in names]
    for chunk in track(torch.arange(len(dataset)).split(batch_size), "activations"):
        batch = dataset.batch(chunk.tolist())
        _, cache = cache_hooks(model, batch.corrupt if corrupt else batch.clean, names, batch.answer_pos)
        for i, name in enumerate(names):
            rows = [at_positions(cache[name], batch.position(p)) for p in positions]  # P × (batch, d_model)
            per_layer[i].append(torch.stack(rows, 1).flatten(0, 1).cpu())
    return [torch.cat(chunks) for chunks in per_layer]
