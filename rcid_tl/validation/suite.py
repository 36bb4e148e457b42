"""The known-answer suite behind `rcid-tl validate`: before a consistency score means anything on a distilled
student, each instrument (a way of pairing teacher and student components) must give the known verdict on students
whose relation to the teacher is known by construction (`rcid_tl.validation.known`, `.finetune`).

Every instrument measures causal consistency at the same teacher checkpoints (chosen by effect, at per-head `z`) on
the same examples; the causal maps are fitted on other examples. The default instrument of `rcid-tl consistency` is
the first that passes every case (`DEFAULT_HEAD_MAP` there; this suite is what justifies it)."""

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from transformers import AutoModelForCausalLM

from rcid_tl import __version__
from rcid_tl.artifacts import write_csv, write_figure, write_json, write_text
from rcid_tl.consistency.checkpoints import save_checkpoints
from rcid_tl.consistency.run import (
    Assignment, ConsistencyConfig, HeadMapping, SelectionConfig, run_consistency,
)
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.models.loading import load_model, load_tokenizer, resolve_model_path
from rcid_tl.progress import track
from rcid_tl.sweeps.common import ModelSpec, prepare
from rcid_tl.tasks.registry import TaskSpec
from rcid_tl.validation.finetune import ablation_finetuned, circuit_heads
from rcid_tl.validation.known import DEFAULT_MERGES, known_students, merged_student
from rcid_tl.validation.measure import HeadPair
from rcid_tl.validation.students import KnownStudent, save_student
from rcid_tl.validation.verdicts import judge


@dataclass(frozen=True)
class Instrument:
    """One way of pairing teacher and student components for causal consistency."""

    name: str
    head_map: HeadMapping
    assignment: Assignment = Assignment.MANY_TO_ONE


INSTRUMENTS = (
    Instrument("proportional", HeadMapping.PROPORTIONAL),
    Instrument("attention", HeadMapping.ATTENTION),
    Instrument("activation", HeadMapping.ACTIVATION),
    Instrument("causal", HeadMapping.CAUSAL),
    Instrument("causal-1:1", HeadMapping.CAUSAL, Assignment.ONE_TO_ONE),
)


@dataclass(frozen=True)
class ValidateConfig:
    teacher: str = "world-gpt2"
    n: int = 200  # task examples consistency is measured on
    task_seed: int = 999
    task: str = "ioi"  # any task `build_task` knows; the ablation-finetuned case is IOI's alone
    fit_task: str | None = None  # the causal maps' fit examples come from this task (None: `task`, another seed)
    top_k: int = 8
    fit_n: int = 100
    n_bootstrap: int = 200
    sigmas: tuple[float, ...] = (0.02, 0.1, 0.3, 1.0)
    seed: int = 0  # permutations, rotations, noise, random init, fine-tuning
    finetune_steps: int = 150  # 0 leaves the ablation-finetuned case out
    instruments: tuple[Instrument, ...] = INSTRUMENTS

    def __post_init__(self) -> None:
        if self.n < 20:
            raise InputError(f"--n must be ≥ 20 for a correlation worth a verdict, got {self.n}")
        if self.fit_n < 3:
            raise InputError(f"--fit-n must be ≥ 3, got {self.fit_n}")
        if sorted(self.sigmas) != list(self.sigmas) or not all(s > 0 for s in self.sigmas):
            raise InputError(f"--sigmas must be increasing and > 0, got {list(self.sigmas)}")
        if self.finetune_steps < 0:
            raise InputError(f"--finetune-steps must be ≥ 0, got {self.finetune_steps}")
        if self.finetune_steps and self.task != "ioi":
            raise InputError(f"--finetune-steps {self.finetune_steps}: the ablation-finetuned student is fine-tuned "
                             f"on IOI; on --task {self.task} give --finetune-steps 0")
        TaskSpec(self.task)  # an unknown task name is an InputError here, before any model loads
        if self.fit_task is not None:
            TaskSpec(self.fit_task)

    @property
    def task_label(self) -> str:
        return "IOI" if self.task == "ioi" else self.task
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["instruments"] = [f"{i.head_map.value}/{i.assignment.value}" for i in self.instruments]
        return out


@dataclass
class Validation:
    """Per case and instrument the consistency summary; per case and instrument the verdict; the default."""

    config: ValidateConfig
    cases: list[dict[str, Any]]
    measurements: dict[str, dict[str, dict[str, Any]]]  # case → instrument → numbers
    verdicts: dict[str, dict[str, dict[str, Any]]]  # case → instrument → {value, passed, why}
    checkpoints: list[dict[str, Any]]
    carried_share: float
    extra: dict[str, Any] = field(default_factory=dict)

    def passing(self) -> list[str]:
        """Instruments that pass every case, in the configured order."""
        names = [i.name for i in self.config.instruments]
        return [n for n in names if all(v[n]["passed"] for v in self.verdicts.values())]

    def to_json(self) -> dict[str, Any]:
        return {"rcid_tl_version": __version__, "kind": "validation", "config": self.config.to_dict(),
                "checkpoints": self.checkpoints, "carried_share": self.carried_share, "cases": self.cases,
                "measurements": self.measurements, "verdicts": self.verdicts, "passing": self.passing(), **self.extra}

    def save(self, out: str | Path) -> list[Path]:
        out = Path(out)
        rows = [(case, name, m.get("mechanistic_r"), m.get("mechanistic_r_weighted"), m.get("mean_r"), m.get("r_out"),
                 m.get("map_recovery"), self.verdicts[case][name]["passed"])
                for case, per in self.measurements.items() for name, m in per.items()]
        header = ("case", "instrument", "mechanistic_r", "mechanistic_r_weighted", "mean_r", "r_out", "map_recovery",
                  "passed")
        return [write_json(out / "validation.json", self.to_json()), write_csv(out / "validation.csv", header, rows),
                write_text(out / "validation.md", self.markdown()), *write_figure(out / "validation", self.figure())]

    def figure(self):
        """Mechanistic r per case (rows) and instrument (columns), each cell marked ✓ or ✗ (a plotly Figure)."""
        names = [i.name for i in self.config.instruments]
        cases = [c["name"] for c in self.cases]
        z = [[self.measurements[c][n]["mechanistic_r"] for n in names] for c in cases]
        text = [[_cell(self.verdicts[c][n]) for n in names] for c in cases]
        figure = go.Figure(go.Heatmap(z=z, x=names, y=cases, text=text, texttemplate="%{text}", zmin=-1, zmax=1,
                                      colorscale="RdBu", colorbar={"title": "mechanistic r"}))
        figure.update_layout(title=f"Known-answer suite: {self.config.teacher}, {self.config.task_label} n = {self.config.n}; passing "
                                   f"every case: {', '.join(self.passing()) or 'none'}",
                             yaxis={"autorange": "reversed"}, height=60 * len(cases) + 200, width=900)
        return figure

    def markdown(self) -> str:
        names = [i.name for i in self.config.instruments]
        lines = [f"# Known-answer suite: {self.config.teacher}, {self.config.task_label} n = {self.config.n} (task seed "
                 f"{self.config.task_seed}), {len(self.checkpoints)} head checkpoints carrying "
                 f"{self.carried_share:.2f} of the teacher's effect", "",
                 "Mechanistic r per instrument (✓ the known verdict, ✗ not); the causal maps are fitted on "
                 f"{self.config.fit_n} other examples.", "",
                 "| case | known answer | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
        for case in self.cases:
            cells = [_cell(self.verdicts[case["name"]][n]) for n in names]
            lines.append(f"| {case['name']} | {case['known']} | " + " | ".join(cells) + " |")
        passing = self.passing()
        lines += ["", f"Passing every case: {', '.join(passing) if passing else 'none'}."]
        return "\n".join(lines) + "\n"


def _cell(verdict: dict[str, Any]) -> str:
    mark = "✓" if verdict["passed"] else "✗"
    return f"{verdict['shown']} {mark}"


def run_validation(config: ValidateConfig, out: str | Path) -> Validation:
    """Build every known-answer student of `config.teacher`, measure each with every instrument, give verdicts."""
    out = Path(out)
    path = resolve_model_path(config.teacher)
    if path is None:
        raise InputError(f"--teacher {config.teacher!r} must be an embedded model or a local HF directory (the "
                         "suite edits its weights)")
    task = TaskSpec(config.task, n=config.n, seed=config.task_seed)
    fit_task = None if config.fit_task is None else TaskSpec(config.fit_task, seed=config.task_seed)
    teacher, dataset = prepare(ModelSpec(config.teacher), task)
    hf_teacher = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    tokenizer = load_tokenizer(path)
    selection = SelectionConfig(top_k=config.top_k, site=Site.Z)
    checkpoints = selection.select(teacher, dataset)
    ckpt_file = save_checkpoints(out / "checkpoints.json", checkpoints,
                                 {"model": config.teacher, "task": config.task, "selection": selection.meta()})
    students = list(known_students(hf_teacher, config.seed, config.sigmas))
    pair = DEFAULT_MERGES.get(config.teacher) or merge_pair(checkpoints)
    if pair is not None:
        students.append(merged_student(hf_teacher, pair))
    extra: dict[str, Any] = {}
    ablated: list[tuple[int, int]] = []
    if config.finetune_steps:
        ablated = _ablation_heads(path, checkpoints)
        tuned = ablation_finetuned(hf_teacher, ablated, config.finetune_steps, config.seed, tokenizer=tokenizer)
        students.append(tuned.student)
        extra["ablation_finetune"] = {"heads": [f"{l}.{h}" for l, h in ablated], "steps": config.finetune_steps,
                                      "before": asdict(tuned.before), "ablated": asdict(tuned.ablated),
                                      "finetuned": asdict(tuned.finetuned), "wall_s": round(tuned.wall_s, 1)}
    measurements: dict[str, dict[str, dict[str, Any]]] = {}
    for student in track(students, "known-answer students"):
        model = load_model(str(save_student(student, tokenizer, out / "students" / student.name)))
        measurements[student.name] = {
            i.name: _measure(config, i, teacher, model, ckpt_file, task, student, fit_task)
            for i in config.instruments}
    cases, verdicts = judge(config, students, measurements, checkpoints, ablated)
    carried = measurements["teacher"][config.instruments[0].name]["carried_share"]
    return Validation(config, cases, measurements, verdicts, [c.to_dict() for c in checkpoints], carried, extra)


def merge_pair(checkpoints) -> HeadPair | None:
    """For a teacher without a measured merge (`DEFAULT_MERGES`): the two checkpoint heads of one layer carrying
    the largest shares (merged, both must map to one head; behaviour may suffer, which the table shows)."""
    by_layer: dict[int, list] = {}
    for c in sorted(checkpoints, key=lambda c: -(c.effect or 0)):
        if c.head is not None and c.head not in [x.head for x in by_layer.get(c.layer, [])]:
            by_layer.setdefault(c.layer, []).append(c)
    pairs = [(cs[0], cs[1]) for cs in by_layer.values() if len(cs) >= 2]
    if not pairs:
        return None
    keep, drop = max(pairs, key=lambda p: (p[0].effect or 0) + (p[1].effect or 0))
    return HeadPair(layer=keep.layer, keep=keep.head, drop=drop.head, similarity=math.nan)


def _ablation_heads(path: Path, checkpoints) -> list[tuple[int, int]]:
    """The teacher's documented circuit (circuit.json) when it has one, else its checkpoint heads."""
    circuit = path / "circuit.json"
    if circuit.is_file():
        return circuit_heads(circuit)
    return sorted({(c.layer, c.head) for c in checkpoints if c.head is not None})


def _measure(config, instrument: Instrument, teacher, student, ckpt_file: Path, task: TaskSpec,
             known: KnownStudent, fit_task: TaskSpec | None = None) -> dict[str, Any]:
    causal = instrument.head_map is HeadMapping.CAUSAL
    consistency = ConsistencyConfig(
        teacher=ModelSpec(config.teacher), student=ModelSpec(known.name), task=task, checkpoints=str(ckpt_file),
        head_map=instrument.head_map, assignment=instrument.assignment, fit_n=config.fit_n,
        fit_task=fit_task if causal else None,
        n_bootstrap=config.n_bootstrap, bootstrap_seed=config.seed)
    result = run_consistency(consistency, teacher, student).to_json()
    per_checkpoint = [{"teacher": f"{c['teacher_layer']}.{c['head']}@{c['position']}",
                       "student": c["student_sites"], "partial_r": c["partial_r"], "pearson_r": c["pearson_r"],
                       "share": c["saturation_teacher"], "saturated": c["saturated"]} for c in result["checkpoints"]]
    return {"mechanistic_r": result["mechanistic_r"], "mechanistic_r_ci": result["mechanistic_r_ci"],
            "mechanistic_r_weighted": result["mechanistic_r_weighted"], "mean_r": result["mean_r"],
            "r_out": result["r_out"], "carried_share": result["carried_share"],
            "student_accuracy": _accuracy(result["student_metric_clean"]),
            "teacher_accuracy": _accuracy(result["metric_clean"]),
            "map_recovery": _recovery(result["checkpoints"], known.correspondence),
            "checkpoints": per_checkpoint}


def _accuracy(metric: Sequence[float]) -> float:
    return sum(m > 0 for m in metric) / len(metric)


def _recovery(checkpoints: list[dict[str, Any]], truth) -> float | None:
    """Share of checkpoints whose student component is the one construction put there (None: no ground truth)."""
    if not truth:
        return None
    known = [c for c in checkpoints if truth.get((c["teacher_layer"], c["head"]))]
    if not known:
        return None
    hits = [(c["student_layer"], c["student_head"]) in truth[c["teacher_layer"], c["head"]] for c in known]
    return sum(hits) / len(hits)

