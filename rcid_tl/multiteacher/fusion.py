"""Fusion of several teachers' aligned caches: fixed weights, similarity routing (softmax of the
cosine between the student's query and each teacher's prototype) or a learnable router (a small MLP on the student's
query). Weights are per example, sum to 1 over teachers, and are logged per step so their course can be plotted."""

from collections.abc import Sequence
from enum import Enum

import plotly.graph_objects as go
import torch
from jaxtyping import Float
from torch import Tensor, nn

from rcid_tl.errors import InputError, parse_choice


class Fusion(str, Enum):
    FIXED = "fixed"
    SIMILARITY = "similarity"
    LEARNED = "learned"


def parse_fusion(value: str) -> Fusion:
    return parse_choice(Fusion, value, "fusion")


def check_fixed_weights(weights: Sequence[float], n_teachers: int) -> tuple[float, ...]:
    """One non-negative weight per teacher, not all 0, normalised to sum to 1."""
    if len(weights) != n_teachers:
        raise InputError(f"got {len(weights)} teacher weights for {n_teachers} teachers; give one per teacher")
    bad = [w for w in weights if not (w >= 0 and w < float("inf"))]
    if bad or sum(weights) == 0:
        raise InputError(f"teacher weights must be finite, ≥ 0 and not all 0, got {list(weights)}")
    return tuple(w / sum(weights) for w in weights)


def fixed_weights(weights: Sequence[float], batch: int) -> Float[Tensor, "batch teacher"]:
    return torch.tensor(check_fixed_weights(weights, len(weights))).expand(batch, -1)


def similarity_weights(query: Float[Tensor, "batch d"], prototypes: Float[Tensor, "batch teacher d"],
                       temperature: float = 0.1) -> Float[Tensor, "batch teacher"]:
    """softmax_n(cos(query, prototype_n) / τ): teachers whose (aligned) queries point where the student's does get
    more weight. No parameters; the prototypes are detached, so no gradient flows into them."""
    if temperature <= 0:
        raise InputError(f"similarity temperature must be > 0, got {temperature}")
    cos = nn.functional.cosine_similarity(query[:, None], prototypes.detach(), dim=-1, eps=1e-8)
    return (cos / temperature).softmax(-1)


class LearnedRouter(nn.Module):
    """A small MLP (d → hidden → n_teachers, softmax) on the student's pooled query; it starts at equal weights
    (zero output layer) so training, not the initialisation, decides any preference."""

    def __init__(self, d_query: int, n_teachers: int, hidden: int = 32) -> None:
        super().__init__()
        if n_teachers < 1 or d_query < 1:
            raise InputError(f"a router needs ≥ 1 teacher and a query width ≥ 1, got {n_teachers}, {d_query}")
        self.net = nn.Sequential(nn.Linear(d_query, hidden), nn.GELU(), nn.Linear(hidden, n_teachers))
        nn.init.zeros_(self.net[-1].weight)
        nn.init.zeros_(self.net[-1].bias)

    def forward(self, query: Float[Tensor, "batch d"]) -> Float[Tensor, "batch teacher"]:
        return self.net(query).softmax(-1)


def pooled_query(q: Float[Tensor, "batch layer head time d_head"], valid: Tensor) -> Float[Tensor, "batch d"]:
    """One vector per example from a query cache: the last layer's queries, heads concatenated, averaged over the
    valid positions (the router's input and the similarity routing's query and prototypes)."""
    last = q[:, -1].permute(0, 2, 1, 3).flatten(2)  # (B, T, H·D)
    w = valid.to(last.dtype)[..., None]
    return (last * w).sum(1) / w.sum(1).clamp(min=1)


def fuse(caches: Sequence[Tensor], weights: Float[Tensor, "batch teacher"]) -> Tensor:
    """Σ_n w[b, n]·cache_n[b]: one fused teacher cache, each cache already aligned to the student's shape."""
    if len(caches) != weights.shape[1] or len({tuple(c.shape) for c in caches}) != 1:
        raise InputError(f"fusion needs {weights.shape[1]} aligned caches of one shape, got "
                         f"{[tuple(c.shape) for c in caches]}")
    stacked = torch.stack(list(caches), 1)  # (B, N, L, H, T, D)
    return torch.einsum("bn,bn...->b...", weights.to(stacked), stacked)


class RoutingLog:
    """Per logged step, each teacher's weight averaged over the batches of that log window (the objective logs
    `w_<teacher>` with every step's parts, and the trainer averages them): the record the study plots and saves."""

    def __init__(self, teachers: Sequence[str], records: Sequence[dict]) -> None:
        self.teachers = list(teachers)
        # records without weights (CE alone, KV weight 0: no teacher is read) give no rows
        self.rows = [{"step": r["step"], **{f"w_{n}": r[f"w_{n}"] for n in self.teachers}} for r in records
                     if all(f"w_{n}" in r for n in self.teachers)]

    def figure(self, title: str):
        fig = go.Figure()
        steps = [row["step"] for row in self.rows]
        for name in self.teachers:
            fig.add_scatter(x=steps, y=[row[f"w_{name}"] for row in self.rows], mode="lines", name=name)
        fig.update_layout(title=title, xaxis_title="step", yaxis_title="mean routing weight", yaxis_range=[0, 1])
        return fig
