"""Experiment 1 of the RCID study: do students whose accuracy is close to the teacher's share its mechanism? Accuracy
next to mean r and mechanistic r (the partial r at unsaturated checkpoints) per student and per checkpoint, under
the validated default (checkpoints by effect, the causal map) with the earlier index-map default beside it."""

from typing import Any

import numpy as np

from rcid_tl.consistency.checkpoints import Ranking
from rcid_tl.consistency.run import (
    DEFAULT_HEAD_MAP, ConsistencyConfig, HeadMapping, SelectionConfig, run_consistency,
)
from rcid_tl.hooks.names import Site
from rcid_tl.stats import bootstrap_mean_ci
from rcid_tl.study.runs import StudentRun
from rcid_tl.sweeps.common import ModelSpec
from rcid_tl.tasks.registry import TaskSpec

CLOSE_ACCURACY = 0.05  # a student within this of the teacher's accuracy counts as "accuracy close"


def head_consistency(run: StudentRun, teacher: str, n: int = 200, seed: int = 999, top_k: int = 8,
                     n_bootstrap: int = 1000, index_map: bool = False) -> dict[str, Any]:
    """The run's saved head-checkpoint consistency, measured (and saved) first when missing: `rcid-tl consistency
    --site z --top-k 8` on `n` IOI examples of task seed `seed` — under the validated default (checkpoints by
    effect, the causal map fitted on other examples), or with `index_map` the earlier default (checkpoints by
    imprint, student head by relative index), which a relabelled copy of the teacher fails (rcid-tl validate)."""
    saved = run.consistency(index_map)
    if saved is not None:
        return saved
    ranking, head_map = (Ranking.IMPRINT, HeadMapping.PROPORTIONAL) if index_map else (Ranking.EFFECT, DEFAULT_HEAD_MAP)
    config = ConsistencyConfig(teacher=ModelSpec(teacher), student=ModelSpec(str(run.model_dir)),
                               task=TaskSpec("ioi", n=n, seed=seed), n_bootstrap=n_bootstrap,
                               bootstrap_seed=seed, head_map=head_map,
                               selection=SelectionConfig(top_k=top_k, site=Site.Z, ranking=ranking))
    result = run_consistency(config)
    result.save(run.consistency_dir(index_map))
    return result.to_json()


def student_row(run: StudentRun, consistency: dict[str, Any], index_map: dict[str, Any] | None = None
                ) -> dict[str, Any]:
    """Accuracy and logit difference of teacher and student on the consistency examples, and the consistency (and
    beside it, when given, the same under the earlier index-map default)."""
    teacher, student = np.asarray(consistency["metric_clean"]), np.asarray(consistency["student_metric_clean"])
    checkpoints = [{
        "checkpoint": f"{c['teacher_layer']}.{c['head']}@{c['position']}" if c.get("head") is not None
        else f"L{c['teacher_layer']}@{c['position']}",
        "student_site": f"{c['student_layer']}.{c['student_head']}" if c.get("student_head") is not None
        else f"L{c['student_layer']}",
        "saturated": c["saturated"], "pearson_r": c["pearson_r"], "partial_r": c["partial_r"],
        "partial_r_ci": c["partial_r_ci"]} for c in consistency["checkpoints"]]
    return {
        "method": run.method, "seed": run.seed, "n_examples": len(student),
        "teacher_accuracy": float((teacher > 0).mean()), "accuracy": float((student > 0).mean()),
        "teacher_logit_diff": float(teacher.mean()), "logit_diff": float(student.mean()),
        "mean_r": consistency["mean_r"], "mean_r_ci": consistency["mean_r_ci"], "r_out": consistency["r_out"],
        "mechanistic_r": consistency["mechanistic_r"], "mechanistic_r_ci": consistency["mechanistic_r_ci"],
        "n_mechanistic": consistency["n_checkpoints_mechanistic"], "checkpoints": checkpoints,
        "mechanistic_r_weighted": consistency.get("mechanistic_r_weighted"),
        "carried_share": consistency.get("carried_share"),
        "index_map": None if index_map is None else {
            "mechanistic_r": index_map["mechanistic_r"], "mechanistic_r_ci": index_map["mechanistic_r_ci"],
            "mean_r": index_map["mean_r"], "carried_share": index_map.get("carried_share")},
    }


def verdict(row: dict[str, Any]) -> dict[str, bool]:
    """'Accuracy close' (within CLOSE_ACCURACY of the teacher) and 'mechanism shared' (mechanistic r's CI above 0)."""
    low = row["mechanistic_r_ci"][0]
    return {"accuracy_close": row["teacher_accuracy"] - row["accuracy"] <= CLOSE_ACCURACY,
            "mechanism_shared": low is not None and low > 0}


def summarise_preservation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per method: accuracy gap to the teacher and mechanistic/mean r over seeds (bootstrap CIs over seeds); over all
    'accuracy close' students: how many share the mechanism."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    per_method = {}
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        per_method[method] = {
            "accuracy_gap": bootstrap_mean_ci([r["teacher_accuracy"] - r["accuracy"] for r in mine]).to_dict(),
            "mechanistic_r": bootstrap_mean_ci([r["mechanistic_r"] for r in mine]).to_dict(),
            "mean_r": bootstrap_mean_ci([r["mean_r"] for r in mine]).to_dict(),
        }
    close = [r for r in rows if verdict(r)["accuracy_close"]]
    return {
        "per_method": per_method,
        "accuracy_close": [f"{r['method']}-{r['seed']}" for r in close],
        "accuracy_close_and_mechanism_shared": [f"{r['method']}-{r['seed']}" for r in close
                                                if verdict(r)["mechanism_shared"]],
        "mechanistic_r_of_close": bootstrap_mean_ci([r["mechanistic_r"] for r in close]).to_dict(),
        "mean_r_of_close": bootstrap_mean_ci([r["mean_r"] for r in close]).to_dict(),
        "r_out_of_close": bootstrap_mean_ci([r["r_out"] for r in close]).to_dict(),
    }


def circuit_preservation(runs: list[StudentRun], teacher: str, n: int = 200, seed: int = 999,
                         top_k: int = 8, n_bootstrap: int = 1000) -> dict[str, Any]:
    """Experiment 1 over `runs`: one row per student (measuring consistency where it is missing) and the summary."""
    sizes = dict(n=n, seed=seed, top_k=top_k, n_bootstrap=n_bootstrap)
    rows = [student_row(run, head_consistency(run, teacher, **sizes),
                        head_consistency(run, teacher, **sizes, index_map=True)) for run in runs]
    return {"rows": rows, "summary": summarise_preservation(rows),
            "config": {"teacher": teacher, "n": n, "task_seed": seed, "top_k": top_k, "site": "z",
                       "close_accuracy": CLOSE_ACCURACY, "checkpoints": "by effect", "map": DEFAULT_HEAD_MAP.value,
                       "index_map": "checkpoints by imprint, student head by relative index (the earlier default)"}}
