"""Seed 000 experiments 1–5 on the distillation study's students (experiments/distill_study.py): each subcommand
runs one experiment of rcid_tl.study.pipeline and writes figures/study_expN.{json,md,html,png}.

    python experiments/study.py exp1      # circuit preservation (head-checkpoint consistency; measured if missing)
    python experiments/study.py exp2      # 4 methods × 3 seeds, factor decomposition, Greater-Than runs
    python experiments/study.py exp3      # consistency vs OOD robustness
    python experiments/study.py exp4      # component retention
    python experiments/study.py exp5      # information purity probes
    python experiments/study.py all       # experiments 1–5 in turn
    python experiments/study.py replot    # every table and figure again from the saved JSON
"""

import argparse
import dataclasses
from pathlib import Path

import torch

from rcid_tl.study import pipeline, report
from rcid_tl.study.runs import find_runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=[*(f"exp{n}" for n in range(1, 6)), "all", "replot"])
    parser.add_argument("--teacher", default="world-gpt2")
    parser.add_argument("--runs", type=Path, default=Path("runs/distill_study"))
    parser.add_argument("--gt-runs", type=Path, default=Path("runs/study_gt"))
    parser.add_argument("--n", type=int, default=400, help="examples per split (exp3) or probe examples (exp5)")
    parser.add_argument("--results", type=Path, default=Path("figures"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.command == "replot":
        for number in range(1, 6):
            if (args.results / f"study_exp{number}.json").is_file():
                print(", ".join(map(str, report.render(args.results / f"study_exp{number}"))))
        return
    sizes = dataclasses.replace(pipeline.Sizes(), robustness=args.n, probes=args.n)
    runs = find_runs(args.runs)
    gt_runs = find_runs(args.gt_runs, seeds=(42,)) if args.gt_runs.is_dir() else []
    numbers = range(1, 6) if args.command == "all" else [int(args.command[3:])]
    for number in numbers:
        written = pipeline.run_experiments(runs, args.teacher, sizes, args.results, gt_runs, only=(number,))
        print(written[number].with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
