"""The mini-study behind `rcid-tl study`: the four methods' students trained with fewer steps and examples and one
seed, then experiments 1–5 over them at smaller sizes, and a `summary.md` that puts each experiment's table beside
its controls. The full study (experiments/run_all.py) runs the same code with the full sizes."""

import json
import time
from threading import Lock
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rcid_tl import __version__
from rcid_tl.artifacts import write_json, write_text
from rcid_tl.progress import track
from rcid_tl.study import pipeline, train
from rcid_tl.study.runs import METHODS

TITLES = {1: "Circuit preservation", 2: "Four methods and the factor decomposition",
          3: "Consistency vs out-of-distribution robustness", 4: "Component retention", 5: "Information purity"}
MINI_SIZES = pipeline.Sizes(consistency=100, n_bootstrap=500, robustness=100, retention=50, probes=200)


@dataclass(frozen=True)
class StudyConfig:
    teacher: str = "world-gpt2"
    seed: int = 42
    methods: tuple[str, ...] = METHODS
    run_args: tuple[str, ...] = train.MINI_ARGS
    sizes: pipeline.Sizes = field(default_factory=lambda: MINI_SIZES)
    jobs: int = 2

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_study(config: StudyConfig, out: str | Path) -> Path:
    """Train the students into `out/students`, run experiments 1–5 into `out/expN.*`, write `out/summary.{md,json}`;
    re-running reuses finished students and re-measures nothing already saved. Returns the summary's path."""
    out = Path(out)
    t0 = time.perf_counter()
    students = out / "students"
    steps = len(config.methods) + 5
    bar, lock = iter(track(range(steps + 1), f"study: {len(config.methods)} students, then experiments 1-5")), Lock()

    def advance(_) -> None:  # called from the training threads too
        with lock:
            next(bar, None)

    advance(None)  # start the bar
    runs = train.train_students(config.methods, (config.seed,), config.teacher, students, config.run_args,
                                jobs=config.jobs, progress=advance)
    trained_s = time.perf_counter() - t0
    saved = pipeline.run_experiments(runs, config.teacher, config.sizes, out, prefix="exp", progress=advance)
    advance(None)  # end it
    walls = {"train_s": round(trained_s, 1), "total_s": round(time.perf_counter() - t0, 1)}
    summary = {"rcid_tl_version": __version__, "config": config.to_dict(), "wall": walls,
               "students": {r.label: str(r.path) for r in runs},
               "experiments": {n: str(p) for n, p in saved.items()}}
    write_json(out / "summary.json", summary)
    return write_text(out / "summary.md", summary_markdown(config, runs, saved, walls))


def summary_markdown(config: StudyConfig, runs, saved: dict[int, Path], walls: dict[str, float]) -> str:
    lines = [f"# Mini-study on {config.teacher} (seed {config.seed}, rcid_tl {__version__})", "",
             f"Students: {', '.join(r.label for r in runs)}, trained with `rcid-tl distill "
             f"{' '.join(config.run_args)}` ({walls['train_s']:.0f} s); the whole study took {walls['total_s']:.0f} s.",
             "One seed per method: the Welch tests between methods are undefined (they need 2 or more per arm), and "
             "every CI below is over examples or checkpoints, not over seeds. `python experiments/run_all.py` runs "
             f"the full study (3 seeds). Examples per measurement: {json.dumps(config.sizes.to_dict())}.", ""]
    for number, path in saved.items():
        lines += [f"## Experiment {number}: {TITLES[number]}", "", path.with_suffix(".md").read_text().strip(), "",
                  f"Figure: `{path.with_suffix('.html').name}`; data: `{path.name}`.", ""]
    return "\n".join(lines)
