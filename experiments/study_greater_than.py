"""Seed 000 experiment 2's generalisation runs: the four methods × seed 42 on Greater-Than with the study's settings
(experiments/distill_study.py RUN_ARGS, `--task greater-than`), one run at a time on one thread.

    python experiments/study_greater_than.py --out runs/study_gt
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import distill_study  # noqa: E402

GT_ARGS = [a if a != "ioi" else "greater-than" for a in distill_study.RUN_ARGS]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="world-gpt2")
    parser.add_argument("--out", type=Path, default=Path("runs/study_gt"))
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    distill_study.RUN_ARGS = GT_ARGS
    args.extra = []
    for method in distill_study.METHODS:
        distill_study.run_one(method, args.seed, args)


if __name__ == "__main__":
    main()
