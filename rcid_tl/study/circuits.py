"""Circuit-level comparison of a student with its teacher, MIB-style (Mueller et al. 2025).

Each model's heads are ranked by the same search: mean-ablate one head at a time (to the task's reference means, as
`heads.circuit` does) and order the heads by the metric they remove. A *faithfulness curve* keeps the first k heads
of an order and mean-ablates every other head, for k = 0 … N: f_k = (m(C_k) − m(∅)) / (m(M) − m(∅)), 0 with every
head ablated, 1 with none. Over circuit size x = k / N:

- CPR (circuit performance ratio) = ∫ f dx — higher: a few heads already do the model's work;
- CMD (circuit–model distance) = ∫ |1 − f| dx — lower: the circuits stay close to the whole model.

Three curves per student: the teacher's order in the teacher, the student's own order in the student, and the
**teacher's order mapped into the student** — each teacher head replaced by the student head whose per-example
ablation profile matches its unique role best (`alignment.correspondence.match_profiles`), fitted on examples other
than the scored ones (cross-fitting; heads are nodes here, not edges as in MIB). The mapped curve lying on the
student's own curve means the teacher's ranking of components transfers; random orders are the floor. Known answers:
the teacher against itself or a relabelled copy gives the mapped curve equal to the teacher's (exact).
"""

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.correspondence import match_profiles
from rcid_tl.errors import InputError
from rcid_tl.heads.circuit import ROWS, CircuitTask, ioi_task, tinystories_task
from rcid_tl.hooks.names import Head
from rcid_tl.interventions.knockout import Ablation, Method, Prepared, knockout_prepared, prepare_knockout

TARGET = 0.8  # a circuit: the shortest prefix of an order whose faithfulness reaches this
# IOI reference prompts per model: ~20 per (template, answer position) group; the search's default (≥ 50 per group,
# ~3,000 prompts) costs a minute per model here and moves these curves little
REFERENCE_N = 600
MIN_SCALE = 0.1  # curves of a student whose clean − all-ablated metric is below this share of the teacher's: undefined


@dataclass(frozen=True)
class Curve:
    """Faithfulness of the first k heads of `order` (k = 0 … N), with CPR and CMD over x = k / N."""

    order: list[str]
    faithfulness: list[float]
    clean: float  # the mean metric with nothing ablated, m(M)
    none: float  # with every head ablated, m(∅): the curve's scale is clean − none

    @property
    def cpr(self) -> float:
        return area(self.faithfulness)

    @property
    def cmd(self) -> float:
        return area([abs(1 - f) for f in self.faithfulness])

    def circuit(self, target: float = TARGET) -> list[str]:
        """The shortest prefix whose faithfulness reaches `target` (the whole order if none does)."""
        k = next((k for k, f in enumerate(self.faithfulness) if f >= target), len(self.order))
        return self.order[:k]

    def to_json(self) -> dict[str, Any]:
        return {"order": self.order, "faithfulness": self.faithfulness, "cpr": self.cpr, "cmd": self.cmd,
                "circuit": self.circuit(), "clean": self.clean, "none": self.none}


@dataclass(frozen=True)
class CircuitComparison:
    teacher: Curve
    student: Curve
    mapped: Curve  # the teacher's order, each head replaced by its student counterpart, in the student
    mapping: dict[str, str]  # teacher head -> student head (fitted on `fit_n` other examples)
    mapping_fit_r: dict[str, float]  # the unique-role r of each pairing on the fit examples
    random_cpr: dict[str, list[float]]  # "teacher"/"student": CPR of random orders (the floor)
    config: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"teacher": self.teacher.to_json(), "student": self.student.to_json(),
                "mapped": self.mapped.to_json(), "mapping": self.mapping, "mapping_fit_r": self.mapping_fit_r,
                "random_cpr": {k: {"mean": float(np.mean(v)), "values": v} for k, v in self.random_cpr.items()},
                "config": self.config}


def area(values: Sequence[float]) -> float:
    """Trapezoid area under values taken at x = 0, 1/N, …, 1."""
    y = np.asarray(values, float)
    return float(((y[1:] + y[:-1]) / 2).sum() / (len(y) - 1))


def circuit_task(model: TransformerBridge, task: str, n: int, seed: int, reference_n: int = REFERENCE_N
                 ) -> CircuitTask:
    """IOI (means over `reference_n` ABC prompts of another seed, as the circuit search) or a TinyStories task (its
    `all` split's clean means)."""
    if task == "ioi":
        return ioi_task(model, n, seed, reference_n)
    if task.startswith("tinystories-"):
        return tinystories_task(model, task, n, seed)
    raise InputError(f"circuit comparison task must be ioi or a TinyStories task, got {task!r}")


def all_heads(model: TransformerBridge) -> list[Head]:
    return [Head(layer, head) for layer in range(model.cfg.n_layers) for head in range(model.cfg.n_heads)]


def _prepare(model: TransformerBridge, task: CircuitTask) -> Prepared:
    return prepare_knockout(model, task.dataset.batch(), task.metric, Method.MEAN, task.reference, rows_per_forward=ROWS,
                            reference_batch=task.reference_dataset.batch())


def single_head_profiles(model: TransformerBridge, task: CircuitTask, prepared: Prepared | None = None
                         ) -> np.ndarray:
    """Per head (N, examples): the metric each example loses when that head alone is mean-ablated."""
    prepared = prepared or _prepare(model, task)
    ablated = knockout_prepared(model, task.dataset.batch(), [Ablation((h,)) for h in all_heads(model)], task.metric,
                                prepared, rows_per_forward=ROWS)
    return (prepared.metrics.clean[None] - ablated).double().numpy()


def faithfulness_curve(model: TransformerBridge, task: CircuitTask, order: Sequence[Head],
                       prepared: Prepared) -> Curve:
    """f_k for the first k heads of `order` kept and every other head mean-ablated, k = 0 … N."""
    heads = all_heads(model)
    if sorted(map(str, order)) != sorted(map(str, heads)):
        raise ValueError("an order must hold every head of the model once")
    batch = task.dataset.batch()
    ablations = [Ablation(tuple(h for h in heads if h not in order[:k])) for k in range(len(order))]
    kept = knockout_prepared(model, batch, ablations, task.metric, prepared, rows_per_forward=ROWS).mean(1)
    clean = prepared.metrics.clean.mean().item()
    none = kept[0].item()
    if abs(clean - none) < 1e-9:
        raise InputError("ablating every head leaves the metric unchanged: no circuit to measure")
    faithfulness = [(v - none) / (clean - none) for v in [*kept.tolist(), clean]]
    return Curve([str(h) for h in order], faithfulness, clean, none)


def own_order(model: TransformerBridge, profiles: np.ndarray) -> list[Head]:
    """Heads by the mean metric their ablation removes, largest first (ties by index)."""
    heads = all_heads(model)
    drop = profiles.mean(1)
    return [heads[i] for i in sorted(range(len(heads)), key=lambda i: (-drop[i], i))]


@dataclass(frozen=True)
class Side:
    """One model's half of a comparison: its scored task and runs, its own order and curve, the single-head ablation
    profiles on the fit examples, and the random floor. A teacher's side is computed once for all its students."""

    model: TransformerBridge
    task: CircuitTask
    ready: Prepared
    curve: Curve
    fit_profiles: np.ndarray  # (heads, fit examples)
    fit_n: int
    random_cpr: list[float]

    @property
    def heads(self) -> list[Head]:
        return all_heads(self.model)

    @property
    def order(self) -> list[Head]:
        return [Head(*map(int, h.split("."))) for h in self.curve.order]


def measure_side(model: TransformerBridge, task: str = "ioi", n: int = 100, seed: int = 0, fit_n: int = 100,
                 n_random: int = 10, reference_n: int = REFERENCE_N) -> Side:
    """`n` scored examples (seed `seed`), `fit_n` fit examples (seed `seed` + 1, none among the scored ones),
    `n_random` random orders, IOI means over `reference_n` prompts."""
    scored = circuit_task(model, task, n, seed, reference_n)
    fit = circuit_task(model, task, fit_n, seed + 1, reference_n)
    fit = _without(fit, {e.clean_ids for e in scored.dataset.examples})
    ready = _prepare(model, scored)
    order = own_order(model, single_head_profiles(model, scored, ready))
    heads, rng = all_heads(model), np.random.default_rng(seed)
    random_cpr = [faithfulness_curve(model, scored, [heads[i] for i in rng.permutation(len(heads))], ready).cpr
                  for _ in range(n_random)]
    return Side(model, scored, ready, faithfulness_curve(model, scored, order, ready),
                single_head_profiles(model, fit), len(fit.dataset), random_cpr)


def compare_circuits(teacher: Side, student: Side) -> CircuitComparison:
    """The teacher's order mapped into the student — each teacher head replaced by the student head whose ablation
    profile on the fit examples matches its unique role best (heads already taken are skipped, the student's own
    order fills the rest) — and its curve in the student, beside both models' own curves."""
    dt, ds = teacher.fit_profiles, student.fit_profiles
    if dt.shape[1] != ds.shape[1]:
        raise InputError("teacher and student sides were fitted on different examples")
    best, r = match_profiles(dt, ds, unique=len(dt) < dt.shape[1] // 2)
    t_heads, s_heads = teacher.heads, student.heads
    mapping = {str(t): str(s_heads[j]) for t, j in zip(t_heads, best)}
    fit_r = {str(t): float(r[i, j]) for i, (t, j) in enumerate(zip(t_heads, best))}
    mapped = list(dict.fromkeys(s_heads[best[t_heads.index(t)]] for t in teacher.order))
    mapped += [h for h in student.order if h not in mapped]
    config = {"task": teacher.task.dataset.task, "n": len(teacher.task.dataset),
              "seed": teacher.task.dataset.config.get("seed"), "fit_n": teacher.fit_n,
              "n_random": len(teacher.random_cpr), "target": TARGET, "method": "mean ablation",
              "mapping": "unique-role r of single-head ablation profiles, fitted on the fit examples",
              "reference_n": len(teacher.task.reference_dataset),
              "min_reference_group": {"teacher": teacher.ready.groups.smallest if teacher.ready.groups else None,
                                      "student": student.ready.groups.smallest if student.ready.groups else None}}
    return CircuitComparison(teacher.curve, student.curve,
                             faithfulness_curve(student.model, student.task, mapped, student.ready), mapping, fit_r,
                             {"teacher": teacher.random_cpr, "student": student.random_cpr}, config)


def _without(task: CircuitTask, clean_ids: set) -> CircuitTask:
    kept = tuple(e for e in task.dataset.examples if e.clean_ids not in clean_ids)
    if len(kept) < 3:
        raise InputError("the fit examples all occur among the scored ones; use another seed")
    return replace(task, dataset=replace(task.dataset, examples=kept))


def comparison_row(name: str, result: CircuitComparison) -> dict[str, Any]:
    """One table row: CPR/CMD of the three curves, the random floor, and the circuits at `TARGET`. `defined`: the
    student's clean − all-ablated metric is at least `MIN_SCALE` of the teacher's (a student at chance has almost
    nothing to keep, and its normalised faithfulness divides by nearly 0)."""
    scale = (result.student.clean - result.student.none) / (result.teacher.clean - result.teacher.none)
    return {"student": name, "defined": bool(scale >= MIN_SCALE), "scale": scale,
            "teacher_cpr": result.teacher.cpr, "teacher_cmd": result.teacher.cmd,
            "student_cpr": result.student.cpr, "student_cmd": result.student.cmd,
            "mapped_cpr": result.mapped.cpr, "mapped_cmd": result.mapped.cmd,
            "random_cpr_teacher": float(np.mean(result.random_cpr["teacher"])),
            "random_cpr_student": float(np.mean(result.random_cpr["student"])),
            "teacher_circuit": result.teacher.circuit(), "student_circuit": result.student.circuit(),
            "mapped_circuit": result.mapped.circuit()}
