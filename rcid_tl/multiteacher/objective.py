"""The multi-teacher KV objective: next-token CE on the student's chain of thought plus λ·structural KV loss between
the student's (Q, K, V) and the fusion of every teacher's aligned (Q, K, V); owns the aligners and the router."""

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.distill.losses import check_finite
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import capture
from rcid_tl.kv.objective import SegmentBatch, next_token_ce
from rcid_tl.models.loading import namer
from rcid_tl.models.rope import rotary_base
from rcid_tl.multiteacher.ablation import Arm
from rcid_tl.multiteacher.aligner import CacheShape, MapProjectionAligner
from rcid_tl.multiteacher.fusion import Fusion, LearnedRouter, fixed_weights, fuse, pooled_query, similarity_weights
from rcid_tl.alignment.layers import LayerMap, ratio_layer_map
from rcid_tl.multiteacher.loss import structural_kv_loss


QKV = tuple[Tensor, Tensor, Tensor]


@dataclass(frozen=True)
class TeacherView:
    """One teacher's tokens of the batch and its [batch, T_s, T_t] alignment to the student's positions; `qkv`: the
    teacher's (Q, K, V) caches of these tokens when already computed (a `TeacherCache`), else the objective runs the
    teacher."""

    tokens: Tensor
    alignment: Tensor
    qkv: QKV | None = None


def read_qkv(model: TransformerBridge, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Logits and the (Q, K, V) caches of every layer, [batch, layer, head, time, d_head] (K/V with the model's
    K/V heads), from hook_q/hook_k/hook_v (pre-rotary); with gradients when grad mode is on."""
    names = namer(model)
    per_kind = [[names.name(site, layer) for layer in range(model.cfg.n_layers)] for site in (Site.Q, Site.K, Site.V)]
    with capture(model, [n for kind in per_kind for n in kind]) as acts:
        logits = model(tokens.to(model.cfg.device))
    q, k, v = (torch.stack([acts[n] for n in kind], 1).transpose(2, 3) for kind in per_kind)
    return logits, q, k, v


class MultiTeacherKV(nn.Module):
    """CE + kv_weight·structural KV loss against the fused teachers (arm: fusion, projection, alignment, α's)."""

    def __init__(self, teachers: Mapping[str, TransformerBridge], student: TransformerBridge, arm: Arm,
                 kv_weight: float = 1.0, layer_maps: Mapping[str, LayerMap] | None = None,
                 similarity_temperature: float = 0.1) -> None:
        super().__init__()
        self.arm, self.kv_weight, self.temperature = arm, kv_weight, similarity_temperature
        self.names = list(teachers)
        s_shape = CacheShape.of(student)
        aligners = {}
        for i, (name, teacher) in enumerate(teachers.items()):
            t_shape = CacheShape.of(teacher)
            layer_map = (layer_maps or {}).get(name) or ratio_layer_map(t_shape.n_layers, s_shape.n_layers)
            aligners[str(i)] = MapProjectionAligner(t_shape, s_shape, layer_map, arm.projection,
                                                    share_dim=arm.share_dim, init_uniform=arm.init_uniform,
                                                    teacher_name=name)
        self.aligners = nn.ModuleDict(aligners)  # keyed by position: teacher names may contain dots
        self.router = LearnedRouter(s_shape.n_heads * s_shape.d_head, len(teachers)) \
            if arm.fusion is Fusion.LEARNED else None
        self.base = rotary_base(student)

    def weights(self, s_q: Tensor, aligned_q: list[Tensor], valid: Tensor) -> Tensor:
        """[batch, teacher] fusion weights for this batch (each row sums to 1)."""
        if self.arm.fusion is Fusion.FIXED:
            return fixed_weights(self.arm.fixed_weights or (1.0,) * len(self.names), s_q.shape[0]).to(s_q)
        query = pooled_query(s_q, valid).detach()  # the router reads the student; it does not steer it
        if self.arm.fusion is Fusion.SIMILARITY:
            prototypes = torch.stack([pooled_query(q, valid) for q in aligned_q], 1)
            return similarity_weights(query, prototypes, self.temperature)
        return self.router(query)

    def forward(self, teachers: Mapping[str, TransformerBridge], student: TransformerBridge, batch: SegmentBatch,
                views: Mapping[str, TeacherView]) -> tuple[Tensor, dict[str, float]]:
        logits, s_q, s_k, s_v = read_qkv(student, batch.tokens)
        ce = next_token_ce(logits, batch)
        if not self.kv_weight:
            # CE alone (the control arm): 0·KV adds exactly 0 to the loss and to every student gradient, so the
            # teachers are not read. The objective's own parameters still get their (zero) gradients: gradient
            # clipping then sums the norms of the same tensors in the same order, and the student trains bit for
            # bit as if the term were computed.
            untouched = sum(p.sum() for p in self.parameters()) * 0.0
            return check_finite("total", ce + untouched), {"ce": ce.item()}
        valid = batch.real.to(logits.device)
        aligned = []
        for i, name in enumerate(self.names):
            if views[name].qkv is not None:
                t_q, t_k, t_v = views[name].qkv
            else:
                with torch.no_grad():
                    _, t_q, t_k, t_v = read_qkv(teachers[name], views[name].tokens)
            device = logits.device
            aligned.append(self.aligners[str(i)](t_q.to(device), t_k.to(device), t_v.to(device),
                                                 views[name].alignment.to(device)))
        w = self.weights(s_q, [a[0] for a in aligned], valid)
        fused = tuple(fuse([a[j] for a in aligned], w) for j in range(3))
        kv, parts = structural_kv_loss((s_q, s_k, s_v), fused, valid, self.arm.alphas, self.base)
        loss = ce + self.kv_weight * kv
        means = w.detach().float().mean(0).tolist()
        return check_finite("total", loss), {"ce": ce.item(), "kv": kv.item(), **parts,
                                             **{f"w_{n}": m for n, m in zip(self.names, means)}}
