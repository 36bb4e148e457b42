"""Experiment 4 of the RCID study: which IOI components survive distillation. Each of Wang et al.'s seven head classes,
found on each model by the discovery tool (`rcid_tl.heads`), is mean-ablated (per-template means of a separate
ABC-corrupted reference sample) in the teacher and in the student; retention = student effect / teacher effect, the
effect being the drop of the mean logit difference. A class with no heads on either model leaves the cell undefined
— on the embedded teachers every Wang et al. class is empty — so the same is done for the functional classes
(`rcid_tl.heads.functional`: where END attends, and the sign of the direct effect), which exist on any model.

Beside it, a different quantity: the teacher's circuit heads (its embedded circuit.json) and the student heads they
map to (proportional layer and head maps), each knocked out alone and all together."""

import json
from pathlib import Path
from typing import Any

from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.heads import proportional_head_map
from rcid_tl.alignment.layers import proportional_layer_map
from rcid_tl.heads.classes import CLASS_NAMES
from rcid_tl.heads.run import HeadsConfig, find_head_classes
from rcid_tl.hooks.names import Head
from rcid_tl.interventions.knockout import Ablation, Method, Reference, knockout
from rcid_tl.interventions.reference import reference_distribution
from rcid_tl.metrics import logit_diff
from rcid_tl.models.loading import resolve_model_path
from rcid_tl.sweeps.common import ModelSpec
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.registry import TaskSpec, build_task

MIN_TEACHER_EFFECT = 0.1  # logit-difference units (1% of world-gpt2's ~9.9): below it a ratio is noise over noise


def ratio(student_effect: float | None, teacher_effect: float | None) -> tuple[float | None, str | None]:
    """student / teacher effect, or None and the reason it is undefined."""
    if teacher_effect is None:
        return None, "no heads of this class on the teacher"
    if student_effect is None:
        return None, "no heads of this class on the student"
    if abs(teacher_effect) < MIN_TEACHER_EFFECT:
        return None, f"teacher effect {teacher_effect:+.3f} below {MIN_TEACHER_EFFECT}"
    return student_effect / teacher_effect, None


def knockout_effects(model: TransformerBridge, dataset: ContrastiveDataset, reference: ContrastiveDataset,
                     head_sets: dict[str, list[Head]]) -> dict[str, Any]:
    """Mean-ablate each non-empty head set (means of `reference`'s corrupt run) on `dataset`: the drop of the mean
    logit difference (clean − ablated) and that drop as a fraction of the clean mean; None for an empty set."""
    named = {k: v for k, v in head_sets.items() if v}
    effects: dict[str, Any] = {k: None for k in head_sets}
    if not named:
        return {"effects": effects, "clean_logit_diff": None, "reference": None}
    ablated, metrics, groups = knockout(model, dataset.batch(), [Ablation(tuple(v)) for v in named.values()],
                                        logit_diff, method=Method.MEAN, reference=Reference.CORRUPT,
                                        reference_batch=reference.batch())
    clean = float(metrics.clean.mean())
    for row, name in enumerate(named):
        drop = clean - float(ablated[row].mean())
        effects[name] = {"effect": drop, "relative": drop / clean if clean else None,
                         "heads": [str(h) for h in named[name]]}
    return {"effects": effects, "clean_logit_diff": clean, "reference": groups.to_json() if groups else None}


def discovered_classes(model: TransformerBridge, spec: TaskSpec) -> tuple[dict[str, list[Head]],
                                                                         dict[str, list[Head]]]:
    """The discovery tool's seven Wang et al. classes on `model` (default thresholds), and its functional classes
    (`rcid_tl.heads.functional`), which exist on any model."""
    found = find_head_classes(HeadsConfig(model=ModelSpec("given"), task=spec), model=model)
    wang = {c: [Head.parse(h) for h in found.classes[c]] for c in CLASS_NAMES}
    return wang, {c: [Head.parse(h) for h in heads] for c, heads in found.functional.items()}


def _retention(t_effects: dict[str, Any], s_effects: dict[str, Any], names) -> dict[str, dict[str, Any]]:
    out = {}
    for c in names:
        t, s = t_effects["effects"].get(c), s_effects["effects"].get(c)
        value, why = ratio(s and s["effect"], t and t["effect"])
        out[c] = {"retention": value, "undefined": why}
    return out


def circuit_head_sets(teacher_circuit: list[str], teacher: TransformerBridge,
                      student: TransformerBridge) -> tuple[dict[str, list[Head]], dict[str, list[Head]]]:
    """Each teacher circuit head alone and the whole circuit, on the teacher and mapped onto the student."""
    layers = proportional_layer_map(teacher.cfg.n_layers, student.cfg.n_layers)
    heads = proportional_head_map(teacher.cfg.n_heads, student.cfg.n_heads, layers)
    t_heads = [Head.parse(h) for h in teacher_circuit]
    mapped = {h: Head(layers[h.layer], heads[h.layer, h.head]) for h in t_heads}
    on_teacher = {str(h): [h] for h in t_heads} | {"circuit": t_heads}
    on_student = {str(h): [mapped[h]] for h in t_heads} | {"circuit": sorted(set(mapped.values()),
                                                                             key=lambda h: (h.layer, h.head))}
    return on_teacher, on_student


def teacher_circuit(teacher_spec: str) -> list[str]:
    """The heads of the teacher's embedded circuit.json ([] when it has none)."""
    path = (resolve_model_path(teacher_spec) or Path(teacher_spec)) / "circuit.json"
    return json.loads(path.read_text())["circuit"] if path.is_file() else []


def component_retention(teacher: TransformerBridge, teacher_spec: str, students: list[tuple[str, TransformerBridge]],
                        n: int = 100, seed: int = 0, reference_n: int | None = None) -> dict[str, Any]:
    """Experiment 4 over `students` (label, model): classes and circuit-head knockouts on the teacher and each
    student, with retention ratios per (class, student) and per (circuit head, student)."""
    spec = TaskSpec("ioi", n=n, seed=seed, corruption="abc")
    # students share the teacher's tokenizer (checked by the distillation), so one sample serves every model
    dataset = build_task(spec, teacher.tokenizer, teacher.cfg.n_ctx)
    reference = reference_distribution(spec, teacher.tokenizer, dataset, n=reference_n, n_ctx=teacher.cfg.n_ctx)
    t_classes, t_functional = discovered_classes(teacher, spec)
    t_class_effects = knockout_effects(teacher, dataset, reference, t_classes)
    t_functional_effects = knockout_effects(teacher, dataset, reference, t_functional)
    circuit = teacher_circuit(teacher_spec)
    rows = []
    t_circuit = None
    for label, student in students:
        s_classes, s_functional = discovered_classes(student, spec)
        s_class_effects = knockout_effects(student, dataset, reference, s_classes)
        # the student's heads of each of the teacher's functional classes (a class it lacks: no heads)
        s_functional = {c: s_functional.get(c, []) for c in t_functional}
        s_functional_effects = knockout_effects(student, dataset, reference, s_functional)
        row = {"student": label, "classes": {c: [str(h) for h in s_classes[c]] for c in CLASS_NAMES},
               "class_effects": s_class_effects, "circuit_retention": {},
               "class_retention": _retention(t_class_effects, s_class_effects, CLASS_NAMES),
               "functional_classes": {c: [str(h) for h in hs] for c, hs in s_functional.items()},
               "functional_effects": s_functional_effects,
               "functional_retention": _retention(t_functional_effects, s_functional_effects, t_functional)}
        if circuit:
            on_teacher, on_student = circuit_head_sets(circuit, teacher, student)
            t_circuit = t_circuit or knockout_effects(teacher, dataset, reference, on_teacher)
            s_circuit = knockout_effects(student, dataset, reference, on_student)
            row["circuit_effects"] = s_circuit
            for name in on_teacher:
                value, why = ratio(s_circuit["effects"][name]["effect"], t_circuit["effects"][name]["effect"])
                row["circuit_retention"][name] = {"retention": value, "undefined": why,
                                                  "student_heads": s_circuit["effects"][name]["heads"]}
        rows.append(row)
    return {"teacher": {"classes": {c: [str(h) for h in t_classes[c]] for c in CLASS_NAMES},
                        "class_effects": t_class_effects, "circuit": circuit, "circuit_effects": t_circuit,
                        "functional_classes": {c: [str(h) for h in hs] for c, hs in t_functional.items()},
                        "functional_effects": t_functional_effects},
            "rows": rows, "config": {"n": n, "seed": seed, "corruption": "abc", "reference_n": reference_n,
                                     "ablation": "mean over the reference's corrupt run, per template and answer "
                                                 "position", "min_teacher_effect": MIN_TEACHER_EFFECT}}
