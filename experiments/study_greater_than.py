"""The method comparison's generalisation runs: the four methods × seed 42 on Greater-Than with the study's settings
(rcid_tl.study.train.FULL with task greater-than), one run at a time.

    python experiments/study_greater_than.py --out runs/study_gt
"""

import argparse
import dataclasses
from pathlib import Path

from rcid_tl.study.runs import METHODS
from rcid_tl.study.train import FULL, train_students

GT_RECIPE = dataclasses.replace(FULL, task="greater-than")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="world-gpt2")
    parser.add_argument("--out", type=Path, default=Path("runs/study_gt"))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each on one thread)")
    args = parser.parse_args()
    train_students(METHODS, (args.seed,), args.teacher, args.out, GT_RECIPE, jobs=args.jobs,
                   progress=lambda run: print(f"{run.label}: done", flush=True))


if __name__ == "__main__":
    main()
