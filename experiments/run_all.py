"""The whole study, from trained students to every figure in figures/: the RCID study's five experiments and the RCID
investigation, the KV-distillation study and the multi-teacher study. Each step is one of the experiment scripts;
every one of them reuses finished runs and resumes interrupted ones, so running this again continues where it
stopped, and `--replot` only redraws the tables and figures from the saved JSON.

    python experiments/run_all.py              # everything (about 4 hours on 2 CPU cores)
    python experiments/run_all.py --dry-run    # the commands, in order
    python experiments/run_all.py --replot     # figures/ again from the saved results only
"""

import argparse
import os
import subprocess
import sys
import time

PY = sys.executable
RCID_VARIANTS = ("lam0.1", "lam0.01", "saturated", "per-layer", "refit100", "pretrain1000", "kd-pretrain1000",
                 "width128")  # experiments/rcid_investigation.py --run NAME, each on seeds 42, 123 and 456
STEPS = [
    # the method comparison's students (4 methods × 3 seeds on IOI), their table, and the consistency report
    [PY, "experiments/distill_study.py", "--out", "runs/distill_study", "--results", "figures/distill_study"],
    [PY, "experiments/distill_study.py", "--out", "runs/distill_study", "--results", "figures/distill_study",
     "--consistency-report"],
    [PY, "experiments/study_greater_than.py", "--out", "runs/study_gt"],  # the Greater-Than generalisation runs
    [PY, "experiments/study.py", "all"],  # the five experiments: preservation ... purity
    [PY, "experiments/rcid_diagnosis.py", "--seed", "123"],
    *([PY, "experiments/rcid_investigation.py", "--run", name, "--seed", str(seed)]
      for name in RCID_VARIANTS for seed in (42, 123, 456)),
    [PY, "experiments/rcid_investigation.py", "--consistency"],
    [PY, "experiments/rcid_investigation.py"],
    [PY, "experiments/kv_study.py", "--teacher", "world-gpt2-cot", "--out", "runs/kv_study_cot600", "--steps", "600",
     "--eval-n", "50"],
    [PY, "experiments/kv_study.py", "--teacher", "world-gpt2-cot", "--out", "runs/kv_study_cot", "--steps", "100",
     "--eval-n", "50", "--name", "kv_study_100steps"],
    [PY, "experiments/multiteacher_study.py", "--out", "runs/multiteacher_study_v2"],  # KV weight chosen, then 16 arms
]
REPLOT = [
    [PY, "experiments/distill_study.py", "--results", "figures/distill_study", "--replot"],
    [PY, "experiments/study.py", "replot"],
    [PY, "experiments/rcid_investigation.py"],
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="print the commands only")
    parser.add_argument("--replot", action="store_true", help="only redraw tables and figures from saved results")
    args = parser.parse_args()
    steps = REPLOT if args.replot else STEPS
    for i, command in enumerate(steps, 1):
        shown = " ".join(["OMP_NUM_THREADS=1 python", *command[1:]])
        print(f"[{i}/{len(steps)}] {shown}", flush=True)
        if args.dry_run:
            continue
        t0 = time.time()
        code = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode
        if code:
            sys.exit(f"step {i} failed (exit {code}): {shown}")
        print(f"[{i}/{len(steps)}] done in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
