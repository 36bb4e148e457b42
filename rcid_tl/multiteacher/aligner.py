"""One aligner from a teacher's (Q, K, V) caches to the student's shapes (MapProjectionAligner):
layer map → time alignment → projection, with Q handled explicitly (its own head count on GQA models), in one of
two projection modes: `structured` (HeadwiseProjector, 5-D throughout) or `flat` (the single-teacher objective's
KVDimensionProjector: per layer, each token's heads × d_head flattened into one vector and mapped linearly; used
here in the teacher → student direction; the baseline the structured mode is compared with)."""

from dataclasses import dataclass
from enum import Enum

from jaxtyping import Float
from torch import Tensor, nn

from rcid_tl.errors import InputError, parse_choice
from rcid_tl.kv.projection import KVDimensionProjector
from rcid_tl.alignment.layers import LayerMap, apply_layer_map
from rcid_tl.multiteacher.projector import HeadwiseProjector
from rcid_tl.multiteacher.tokens import align_time

KINDS = ("q", "k", "v")


class Projection(str, Enum):
    STRUCTURED = "structured"
    FLAT = "flat"


def parse_projection(value: str) -> Projection:
    return parse_choice(Projection, value, "projection")


@dataclass(frozen=True)
class CacheShape:
    """A model's cache geometry: K/V have `n_kv_heads` heads (fewer than `n_heads` on GQA models), Q has n_heads."""

    n_layers: int
    n_heads: int
    n_kv_heads: int
    d_head: int

    @classmethod
    def of(cls, model) -> "CacheShape":
        cfg = model.cfg
        return cls(cfg.n_layers, cfg.n_heads, getattr(cfg, "n_key_value_heads", None) or cfg.n_heads, cfg.d_head)

    def heads(self, kind: str) -> int:
        return self.n_heads if kind == "q" else self.n_kv_heads


class MapProjectionAligner(nn.Module):
    """Teacher (Q, K, V) [B, L_t, H_t, T_t, D_t] → student-shaped [B, L_s, H_s, T_s, D_s], per kind:
    1. layer: the layer map's weighted sum over teacher layers (ratio or CKA top-2);
    2. time: a [B, T_s, T_t] alignment (character overlap and/or segment warping, soft or hard);
    3. projection: heads and width, structured or flat; one projector per kind, since Q and K/V have different
       head counts on GQA models (and Q is matched through attention, K/V by direction)."""

    def __init__(self, teacher: CacheShape, student: CacheShape, layer_map: LayerMap,
                 mode: Projection = Projection.STRUCTURED, *, share_dim: bool = True, init_uniform: bool = True,
                 teacher_name: str = "the teacher") -> None:
        super().__init__()
        self.layer_map = layer_map.check(teacher.n_layers, student.n_layers, teacher_name)
        self.mode = Projection(mode)
        self.teacher, self.student = teacher, student
        projectors = {}
        for kind in KINDS:
            h_t, h_s = teacher.heads(kind), student.heads(kind)
            if self.mode is Projection.STRUCTURED:
                projectors[kind] = HeadwiseProjector(h_t, teacher.d_head, h_s, student.d_head, share_dim=share_dim,
                                                     init_uniform=init_uniform)
            else:  # its arguments say student → teacher; here the teacher's layout is the input
                projectors[kind] = KVDimensionProjector(student.n_layers, h_t, teacher.d_head, h_s, student.d_head)
        self.projectors = nn.ModuleDict(projectors)

    def forward(self, q: Float[Tensor, "batch layer_t head_t t_t d_t"], k: Float[Tensor, "batch layer_t kv_t t_t d_t"],
                v: Float[Tensor, "batch layer_t kv_t t_t d_t"], alignment: Float[Tensor, "batch t_s t_t"]
                ) -> tuple[Tensor, Tensor, Tensor]:
        out = []
        for kind, cache in zip(KINDS, (q, k, v)):
            if cache.dim() != 5 or cache.shape[2] != self.teacher.heads(kind):
                raise InputError(f"teacher {kind.upper()} must be [batch, layer, {self.teacher.heads(kind)}, time, "
                                 f"{self.teacher.d_head}], got {tuple(cache.shape)}")
            x = apply_layer_map(cache, self.layer_map)
            x = align_time(x, alignment)
            out.append(self.projectors[kind](x))
        return out[0], out[1], out[2]
