"""The study's experiments (`Experiment`) over a folder of trained students, each composed from this package's
analyses with its sizes as parameters: the full study (experiments/study.py, experiments/run_all.py) and the
mini-study (`rcid-tl study`) run the same code and differ only in `Sizes`."""

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rcid_tl.models.loading import load_model
from rcid_tl.study import comparison, preservation, probes, retention, robustness
from rcid_tl.study.experiments import Experiment
from rcid_tl.study.report import save_experiment
from rcid_tl.study.runs import StudentRun
from rcid_tl.tasks.registry import TaskSpec, build_task

PRESERVATION_METHODS = ("standard-kd", "fitnets", "informed-fitnets")  # the seed's "StandardKD, FitNets and a third"


@dataclass(frozen=True)
class Sizes:
    """Examples per measurement; the defaults are the full study's."""

    consistency: int = 200  # IOI examples of the head-checkpoint consistency (preservation, comparison, robustness)
    consistency_seed: int = 999
    top_k: int = 8
    n_bootstrap: int = 1000
    robustness: int = 400  # examples per OOD split
    retention: int = 100  # knockout examples (retention)
    probes: int = 400  # probe examples (purity)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def measure_consistency(runs: list[StudentRun], teacher: str, sizes: Sizes) -> None:
    """The head-checkpoint consistency of every run, measured and saved where missing."""
    for run in runs:
        preservation.head_consistency(run, teacher, n=sizes.consistency, seed=sizes.consistency_seed,
                                      top_k=sizes.top_k, n_bootstrap=sizes.n_bootstrap)


def circuit_preservation(runs: list[StudentRun], teacher: str, sizes: Sizes) -> dict[str, Any]:
    chosen = [r for r in runs if r.method in PRESERVATION_METHODS]
    return preservation.circuit_preservation(chosen, teacher, n=sizes.consistency, seed=sizes.consistency_seed,
                                             top_k=sizes.top_k, n_bootstrap=sizes.n_bootstrap)


def method_comparison(runs: list[StudentRun], gt_runs: list[StudentRun], teacher: str, sizes: Sizes
                      ) -> dict[str, Any]:
    measure_consistency(runs, teacher, sizes)
    rows = [comparison.run_row(r, r.consistency()) for r in runs]
    return {"ioi": {"rows": rows, **comparison.compare_methods(rows)},
            "greater_than": [comparison.run_row(r, None) for r in gt_runs if (r.path / "metrics.json").is_file()],
            "config": {"teacher": teacher, "sizes": sizes.to_dict(),
                       "consistency": "IOI: head checkpoints (z); Greater-Than: rcid-tl distill's own"}}


def _students(runs: list[StudentRun]) -> list[dict[str, Any]]:
    """Label, model directory and consistency (head checkpoints where measured, else distill's own)."""
    out = []
    for run in runs:
        c = run.consistency() or run.metrics()["causal_consistency"]
        out.append({"label": run.label, "model_dir": str(run.model_dir), "mean_r": c["mean_r"],
                    "mechanistic_r": c.get("mechanistic_r")})
    return out


def consistency_vs_robustness(runs: list[StudentRun], gt_runs: list[StudentRun], teacher: str, sizes: Sizes
                              ) -> dict[str, Any]:
    measure_consistency(runs, teacher, sizes)
    result = robustness.consistency_vs_robustness(_students(runs), teacher, n=sizes.robustness)
    gt_runs = [r for r in gt_runs if (r.path / "metrics.json").is_file()]
    if len(gt_runs) >= 3:  # held-out formats exist only for Greater-Than students
        result["greater_than"] = robustness.consistency_vs_robustness(_students(gt_runs), teacher,
                                                                      task="greater-than", n=sizes.robustness)
    return result


def component_retention(runs: list[StudentRun], teacher: str, sizes: Sizes) -> dict[str, Any]:
    students = [(r.label, load_model(str(r.model_dir))) for r in runs]
    return retention.component_retention(load_model(teacher), teacher, students, n=sizes.retention)


def information_purity(runs: list[StudentRun], teacher: str, sizes: Sizes) -> dict[str, Any]:
    model = load_model(teacher)
    dataset = build_task(TaskSpec("ioi", n=sizes.probes, seed=7), model.tokenizer, model.cfg.n_ctx)
    students = [(r.method, r.label, load_model(str(r.model_dir))) for r in runs]
    return probes.information_purity(model, students, dataset)


def run_experiments(runs: list[StudentRun], teacher: str, sizes: Sizes, results: Path,
                    gt_runs: list[StudentRun] = (), prefix: str = "study_exp",
                    only: Sequence[Experiment | int] = tuple(Experiment),
                    progress: Callable[[Experiment], None] | None = None) -> dict[Experiment, Path]:
    """The experiments `only` over `runs`, each saved as `results/<prefix>N.{json,md,html}` (N: its number);
    returns experiment -> JSON path. `progress(experiment)` is called after each."""
    gt_runs = list(gt_runs)
    jobs = {Experiment.PRESERVATION: lambda: circuit_preservation(runs, teacher, sizes),
            Experiment.COMPARISON: lambda: method_comparison(runs, gt_runs, teacher, sizes),
            Experiment.ROBUSTNESS: lambda: consistency_vs_robustness(runs, gt_runs, teacher, sizes),
            Experiment.RETENTION: lambda: component_retention(runs, teacher, sizes),
            Experiment.PURITY: lambda: information_purity(runs, teacher, sizes)}
    saved = {}
    for experiment in map(Experiment, only):
        saved[experiment] = save_experiment(results / f"{prefix}{int(experiment)}", experiment, jobs[experiment]())[0]
        if progress is not None:
            progress(experiment)
    return saved
