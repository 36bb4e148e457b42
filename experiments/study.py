"""The study's five experiments on the distillation study's students (experiments/distill_study.py): each
subcommand runs one experiment of rcid_tl.study.pipeline and writes figures/study_expN.{json,md,html,png}, N the
experiment's number (rcid_tl.study.experiments.Experiment).

    python experiments/study.py preservation  # 1: circuit preservation (head-checkpoint consistency, measured once)
    python experiments/study.py comparison    # 2: 4 methods × 3 seeds, factor decomposition, Greater-Than runs
    python experiments/study.py robustness    # 3: consistency vs OOD robustness
    python experiments/study.py retention     # 4: component retention
    python experiments/study.py purity        # 5: information purity probes
    python experiments/study.py all           # all five in turn
    python experiments/study.py replot        # every table and figure again from the saved JSON
"""

import argparse
import dataclasses
from pathlib import Path

import torch

from rcid_tl.study import pipeline, report
from rcid_tl.study.experiments import Experiment
from rcid_tl.study.runs import find_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=[*(e.name.lower() for e in Experiment), "all", "replot"])
    parser.add_argument("--teacher", default="world-gpt2")
    parser.add_argument("--runs", type=Path, default=Path("runs/distill_study"))
    parser.add_argument("--gt-runs", type=Path, default=Path("runs/study_gt"))
    parser.add_argument("--n", type=int, default=400, help="examples per split (robustness) or probe examples (purity)")
    parser.add_argument("--results", type=Path, default=Path("figures"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "replot":
        for experiment in Experiment:
            if (args.results / f"study_exp{int(experiment)}.json").is_file():
                print(", ".join(map(str, report.render(args.results / f"study_exp{int(experiment)}"))))
        return
    sizes = dataclasses.replace(pipeline.Sizes(), robustness=args.n, probes=args.n)
    runs = find_runs(args.runs)
    gt_runs = find_runs(args.gt_runs, seeds=(42,)) if args.gt_runs.is_dir() else []
    experiments = list(Experiment) if args.command == "all" else [Experiment[args.command.upper()]]
    for experiment in experiments:
        written = pipeline.run_experiments(runs, args.teacher, sizes, args.results, gt_runs, only=(experiment,))
        print(written[experiment].with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
