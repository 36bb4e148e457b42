"""Teacher↔student layer maps, the package's one home for them. Two shapes, because two questions are asked:
a correspondence `dict[int, int]` (teacher layer → the one student layer compared with it: proportional depth or the
most CKA-similar), and a `LayerMap` mixture (student layer ← a weighted sum of teacher layers, for KV caches); and
the per-layer activations such maps (and Procrustes fits) are computed from."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from jaxtyping import Float
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.cka import debiased_linear_cka, linear_cka
from rcid_tl.artifacts import write_json
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


def deepest_teacher_layers(layer_map: dict[int, int]) -> dict[int, int]:
    """Student layer → the deepest teacher layer a correspondence sends to it (FitNets' hint layers); student layers
    no teacher layer is sent to are left out."""
    return {s: max(t for t, s2 in layer_map.items() if s2 == s) for s in sorted(set(layer_map.values()))}


def cka_argmax_layer_map(
    teacher_acts: Sequence[Float[Tensor, "n d_t"]],
    student_acts: Sequence[Float[Tensor, "n d_s"]],
    *,
    debiased: bool = False,
) -> dict[int, int]:
    """Teacher layer l → the one student layer whose activations (same n inputs) have the highest linear CKA with
    layer l's (debiased CKA with `debiased=True`, better when n is small relative to the widths). For a weighted
    map over several teacher layers see `top_k_layer_map`."""
    if not teacher_acts or not student_acts:
        raise InputError("a CKA layer map needs activations for at least one teacher and one student layer")
    cka = debiased_linear_cka if debiased else linear_cka
    scores = cka_matrix(teacher_acts, student_acts, cka)
    return {layer: int(scores[layer].argmax()) for layer in range(len(teacher_acts))}


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
    (6 → 2: layers 2 and 5), so the last layers correspond. Not `deepest_teacher_layers(proportional_layer_map(..))`,
    which rounds the other way (5 → 2: teacher layers 1 and 4, here 2 and 4) and skips student layers no teacher
    layer is sent to; each keeps the numbers of the runs made with it."""
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


def apply_layer_map(cache: Float[Tensor, "batch layer_t head time d_head"], layer_map: LayerMap
                    ) -> Float[Tensor, "batch layer_s head time d_head"]:
    """The teacher cache as seen from each student layer: the layer map's weighted sum over teacher layers."""
    if cache.dim() != 5 or cache.shape[1] != layer_map.n_teacher:
        raise InputError(f"layer map has {layer_map.n_teacher} teacher layers; the cache is {tuple(cache.shape)} "
                         f"([batch, layer, head, time, d_head])")
    return torch.einsum("st,bthpd->bshpd", layer_map.matrix().to(cache), cache)


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
