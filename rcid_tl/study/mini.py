"""The mini-study behind `rcid-tl study`: the four methods' students trained with fewer steps and examples and one
seed, then the study's experiments (preservation, comparison, robustness, retention, purity) over them at smaller
sizes, and a `summary.md` that puts each experiment's table beside its controls. The full study
(experiments/run_all.py) runs the same code with the full sizes."""

import json
import time
from threading import Lock
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rcid_tl import __version__
from rcid_tl.artifacts import write_json, write_text
from rcid_tl.progress import track
from rcid_tl.study import pipeline
from rcid_tl.study.experiments import Experiment
from rcid_tl.study.runs import METHODS
from rcid_tl.study.train import MINI, Recipe, train_students

MINI_SIZES = pipeline.Sizes(consistency=100, n_bootstrap=500, robustness=100, retention=50, probes=200)


@dataclass(frozen=True)
class StudyConfig:
    teacher: str = "world-gpt2"
    seed: int = 42
    methods: tuple[str, ...] = METHODS
    recipe: Recipe = MINI  # how each student is distilled
    sizes: pipeline.Sizes = field(default_factory=lambda: MINI_SIZES)
    jobs: int = 2

    def to_dict(self) -> dict[str, Any]:
        """The config as summary.json records it; `run_args`: the recipe as `rcid-tl distill` options."""
        return {**asdict(self), "run_args": list(self.recipe.args())}


def run_study(config: StudyConfig, out: str | Path) -> Path:
    """Train the students into `out/students`, run the experiments into `out/expN.*` (N: the experiment's number),
    write `out/summary.{md,json}`; re-running reuses finished students and re-measures nothing already saved.
    Returns the summary's path."""
    out = Path(out)
    t0 = time.perf_counter()
    students = out / "students"
    steps = len(config.methods) + len(Experiment)
    description = f"study: {len(config.methods)} students, then {len(Experiment)} experiments"
    bar, lock = iter(track(range(steps + 1), description)), Lock()

    def advance(_) -> None:
        with lock:
            next(bar, None)

    advance(None)  # start the bar
    runs = train_students(config.methods, (config.seed,), config.teacher, students, config.recipe, jobs=config.jobs,
                          progress=advance)
    trained_s = time.perf_counter() - t0
    saved = pipeline.run_experiments(runs, config.teacher, config.sizes, out, prefix="exp", progress=advance)
    advance(None)  # end it
    walls = {"train_s": round(trained_s, 1), "total_s": round(time.perf_counter() - t0, 1)}
    summary = {"rcid_tl_version": __version__, "config": config.to_dict(), "wall": walls,
               "students": {r.label: str(r.path) for r in runs},
               "experiments": {n: str(p) for n, p in saved.items()}}
    write_json(out / "summary.json", summary)
    return write_text(out / "summary.md", summary_markdown(config, runs, saved, walls))


def summary_markdown(config: StudyConfig, runs, saved: dict[Experiment, Path], walls: dict[str, float]) -> str:
    lines = [f"# Mini-study on {config.teacher} (seed {config.seed}, rcid_tl {__version__})", "",
             f"Students: {', '.join(r.label for r in runs)}, trained with `rcid-tl distill "
             f"{' '.join(config.recipe.args())}` ({walls['train_s']:.0f} s); the whole study took "
             f"{walls['total_s']:.0f} s.",
             "One seed per method: the Welch tests between methods are undefined (they need 2 or more per arm), and "
             "every CI below is over examples or checkpoints, not over seeds. `python experiments/run_all.py` runs "
             f"the full study (3 seeds). Examples per measurement: {json.dumps(config.sizes.to_dict())}.", ""]
    for experiment, path in saved.items():
        lines += [f"## Experiment {int(experiment)}: {experiment.title}", "",
                  path.with_suffix(".md").read_text().strip(), "",
                  f"Figure: `{path.with_suffix('.html').name}`; data: `{path.name}`.", ""]
    return "\n".join(lines)
