"""Student ← teacher layer maps for KV caches (seed 004 stages 2–3) as [L_s, L_t] weight matrices: by relative depth
(ratio), or each student layer's two most CKA-similar teacher layers weighted by their CKA, precomputed once on
held-out text and saved as JSON so every run of a study reads the same map."""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.cka import linear_cka
from rcid_tl.alignment.layers import cka_matrix
from rcid_tl.artifacts import write_json
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.models.loading import namer


@dataclass(frozen=True)
class LayerMap:
    """weights[l_s][l_t]: how much student layer l_s reads teacher layer l_t; rows are non-negative and sum to 1."""

    kind: str
    weights: tuple[tuple[float, ...], ...]

    def __post_init__(self) -> None:
        w = torch.tensor(self.weights, dtype=torch.float64)
        rows_sum_to_one = w.dim() == 2 and torch.allclose(w.sum(1), torch.ones(len(w), dtype=w.dtype))
        if w.dim() != 2 or w.numel() == 0 or (w < 0).any() or not rows_sum_to_one:
            raise InputError(f"a {self.kind} layer map needs a [student, teacher] matrix of non-negative weights "
                             f"with rows summing to 1, got {self.weights}")

    @property
    def n_student(self) -> int:
        return len(self.weights)

    @property
    def n_teacher(self) -> int:
        return len(self.weights[0])

    def matrix(self) -> Float[Tensor, "layer_s layer_t"]:
        return torch.tensor(self.weights, dtype=torch.float32)

    def check(self, n_teacher: int, n_student: int, teacher: str = "the teacher") -> "LayerMap":
        """This map if it fits the models' depths, else an InputError naming both shapes."""
        if (self.n_student, self.n_teacher) != (n_student, n_teacher):
            raise InputError(f"layer map for {teacher} is {self.n_student} student × {self.n_teacher} teacher layers; "
                             f"the models have {n_student} student and {n_teacher} teacher layers")
        return self

    def save(self, path: str | Path) -> Path:
        write_json(Path(path), {"kind": self.kind, "weights": [list(row) for row in self.weights]})
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "LayerMap":
        try:
            data = json.loads(Path(path).read_text())
            return cls(data["kind"], tuple(tuple(float(x) for x in row) for row in data["weights"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise InputError(f"layer map {str(path)!r} cannot be read ({err}); write one with the CKA precompute") \
                from None


def ratio_layer_map(n_teacher: int, n_student: int) -> LayerMap:
    """Student layer l reads teacher layer ⌈(l+1)·L_t/L_s⌉ − 1, the last teacher layer at the same relative depth
    (6 → 2: layers 2 and 5), so the last layers correspond."""
    if n_teacher < 1 or n_student < 1:
        raise InputError(f"layer counts must be ≥ 1, got teacher {n_teacher}, student {n_student}")
    rows = []
    for layer in range(n_student):
        source = -(-(layer + 1) * n_teacher // n_student) - 1
        rows.append(tuple(1.0 if t == source else 0.0 for t in range(n_teacher)))
    return LayerMap("ratio", tuple(rows))


def top_k_layer_map(similarity: Float[Tensor, "layer_s layer_t"], k: int = 2) -> LayerMap:
    """Each student layer reads its k most similar teacher layers, weighted in proportion to the (non-negative part
    of the) similarity; a row with no positive similarity falls back to its single most similar layer."""
    if similarity.dim() != 2 or not 1 <= k:
        raise InputError(f"need a [student, teacher] similarity matrix and k ≥ 1, got {tuple(similarity.shape)}, {k}")
    k = min(k, similarity.shape[1])
    top = similarity.double().topk(k, dim=1)
    weights = torch.zeros_like(similarity, dtype=torch.float64)
    weights.scatter_(1, top.indices, top.values.clamp(min=0))
    empty = weights.sum(1) == 0
    weights[empty] = torch.nn.functional.one_hot(top.indices[empty, 0], similarity.shape[1]).double()
    weights = weights / weights.sum(1, keepdim=True)
    return LayerMap(f"cka-top{k}", tuple(tuple(row) for row in weights.tolist()))


@torch.no_grad()
def resid_by_layer(model: TransformerBridge, tokens: Tensor, mask: Tensor) -> list[Tensor]:
    """Per layer, the residual stream after the block at the `mask`ed positions of `tokens`, as (n, d_model) rows."""
    names = [namer(model).name(Site.RESID_POST, layer) for layer in range(model.cfg.n_layers)]
    _, cache = model.run_with_cache(tokens.to(model.cfg.device), names_filter=names)
    return [cache[name][mask].float().cpu() for name in names]


def cka_layer_map(teacher: TransformerBridge, student: TransformerBridge, teacher_tokens: Tensor,
                  student_tokens: Tensor, alignment: Tensor, student_mask: Tensor, k: int = 2) -> LayerMap:
    """The CKA top-k map from both models' residual streams on the same texts; the teacher's are first read at the
    student's positions through `alignment` ([batch, t_s, t_t], see tokens.py / warp.py) so rows pair up."""
    t_acts = resid_by_layer(teacher, teacher_tokens, torch.ones_like(teacher_tokens, dtype=torch.bool))
    t_full = [a.view(*teacher_tokens.shape, -1) for a in t_acts]
    t_rows = [torch.einsum("bst,btd->bsd", alignment, a)[student_mask] for a in t_full]
    s_rows = resid_by_layer(student, student_tokens, student_mask)
    return top_k_layer_map(cka_matrix(s_rows, t_rows, linear_cka), k)


def apply_layer_map(cache: Float[Tensor, "batch layer_t head time d_head"], layer_map: LayerMap
                    ) -> Float[Tensor, "batch layer_s head time d_head"]:
    """The teacher cache as seen from each student layer: the layer map's weighted sum over teacher layers."""
    if cache.dim() != 5 or cache.shape[1] != layer_map.n_teacher:
        raise InputError(f"layer map has {layer_map.n_teacher} teacher layers; the cache is {tuple(cache.shape)} "
                         f"([batch, layer, head, time, d_head])")
    return torch.einsum("st,bthpd->bshpd", layer_map.matrix().to(cache), cache)
