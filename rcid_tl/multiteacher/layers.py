"""The CKA layer map of a multi-teacher run: each student layer's two most CKA-similar teacher
layers weighted by their CKA, from both models' residual streams on the same texts read through the token alignment;
precomputed once on held-out text and saved as JSON so every run of a study reads the same map. The `LayerMap` type
and the ratio map live with the other layer maps in `rcid_tl.alignment.layers`."""

import torch
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.cka import linear_cka
from rcid_tl.alignment.layers import LayerMap, cka_matrix, ratio_layer_map, top_k_layer_map
from rcid_tl.hooks.names import Site
from rcid_tl.models.loading import namer

# LayerMap and ratio_layer_map are re-exported: the multi-teacher run imports its three layer-map names from here
__all__ = ["LayerMap", "cka_layer_map", "ratio_layer_map", "resid_by_layer", "shallow_layer_map"]


def shallow_layer_map(n_teacher: int, n_student: int) -> LayerMap:
    """The ratio map over the teacher's first ⌈L_t/2⌉ layers (zero weight on the deeper half): the shallow-coverage
    arm, which asks whether the deep teacher layers carry what the student needs."""
    half = ratio_layer_map(-(-n_teacher // 2), n_student)
    pad = (0.0,) * (n_teacher - half.n_teacher)
    return LayerMap("ratio-shallow", tuple(row + pad for row in half.weights))


@torch.no_grad()
def resid_by_layer(model: TransformerBridge, tokens: Tensor, mask: Tensor) -> list[Tensor]:
    """Per layer, the residual stream after the block at the `mask`ed positions of `tokens`, as (n, d_model) rows."""
    names = [namer(model).name(Site.RESID_POST, layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=names)
    return [cache[name][mask].float().cpu() for name in names]


def cka_layer_map(teacher: TransformerBridge, student: TransformerBridge, teacher_tokens: Tensor,
                  student_tokens: Tensor, alignment: Tensor, student_mask: Tensor, k: int = 2) -> LayerMap:
    """Student layer ← its k most CKA-similar teacher layers, CKA-weighted (`top_k_layer_map`; contrast
    `alignment.layers.cka_argmax_layer_map`, one student layer per teacher layer), from both models' residual streams
    on the same texts; the teacher's are first read at the student's positions through `alignment`
    ([batch, t_s, t_t], see tokens.py / warp.py) so rows pair up."""
    t_acts = resid_by_layer(teacher, teacher_tokens, torch.ones_like(teacher_tokens, dtype=torch.bool))
    t_full = [a.view(*teacher_tokens.shape, -1) for a in t_acts]
    t_rows = [torch.einsum("bst,btd->bsd", alignment, a)[student_mask] for a in t_full]
    s_rows = resid_by_layer(student, student_tokens, student_mask)
    return top_k_layer_map(cka_matrix(s_rows, t_rows, linear_cka), k)
