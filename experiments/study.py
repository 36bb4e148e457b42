"""Seed 000 experiments 1–5 on the distillation study's students (experiments/distill_study.py): each subcommand
composes one rcid_tl.study function and writes figures/study_expN.{json,md,html,png}.

    python experiments/study.py exp1      # circuit preservation (head-checkpoint consistency; measured if missing)
    python experiments/study.py exp2      # 4 methods × 3 seeds, factor decomposition, Greater-Than runs
    python experiments/study.py exp3      # consistency vs OOD robustness
    python experiments/study.py exp4      # component retention
    python experiments/study.py exp5      # information purity probes
    python experiments/study.py replot    # every table and figure again from the saved JSON
"""

import argparse
from pathlib import Path

import torch

from rcid_tl.study import comparison, preservation, probes, report, retention, robustness
from rcid_tl.study.runs import find_runs


def exp1(args) -> dict:
    runs = find_runs(args.runs, methods=("standard-kd", "fitnets", "informed-fitnets"))
    return preservation.circuit_preservation(runs, args.teacher, n=200, seed=999)


def exp2(args) -> dict:
    rows = [comparison.run_row(r, r.consistency()) for r in find_runs(args.runs)]
    gt_runs = [r for r in (find_runs(args.gt_runs, seeds=(42,)) if args.gt_runs.is_dir() else [])
               if (r.path / "metrics.json").is_file()]
    return {"ioi": {"rows": rows, **comparison.compare_methods(rows)},
            "greater_than": [comparison.run_row(r, None) for r in gt_runs],
            "config": {"runs": str(args.runs), "gt_runs": str(args.gt_runs),
                       "consistency": "IOI: head checkpoints (z, top 8, n = 200); Greater-Than: rcid-tl distill's own"}}


def _students(runs) -> list[dict]:
    """Label, model directory and consistency (head checkpoints where measured, else distill's own)."""
    out = []
    for run in runs:
        c = run.consistency() or run.metrics()["causal_consistency"]
        out.append({"label": run.label, "model_dir": str(run.model_dir), "mean_r": c["mean_r"],
                    "mechanistic_r": c.get("mechanistic_r")})
    return out


def exp3(args) -> dict:
    result = robustness.consistency_vs_robustness(_students(find_runs(args.runs)), args.teacher, n=args.n)
    gt_runs = [r for r in (find_runs(args.gt_runs, seeds=(42,)) if args.gt_runs.is_dir() else [])
               if (r.path / "metrics.json").is_file()]
    if len(gt_runs) >= 3:  # held-out formats exist only for Greater-Than students
        result["greater_than"] = robustness.consistency_vs_robustness(_students(gt_runs), args.teacher,
                                                                      task="greater-than", n=args.n)
    return result


def exp4(args) -> dict:
    from rcid_tl.models.loading import load_model

    students = [(r.label, load_model(str(r.model_dir))) for r in find_runs(args.runs)]
    return retention.component_retention(load_model(args.teacher), args.teacher, students, n=100)


def exp5(args) -> dict:
    from rcid_tl.models.loading import load_model
    from rcid_tl.tasks.registry import TaskSpec, build_task

    teacher = load_model(args.teacher)
    dataset = build_task(TaskSpec("ioi", n=args.n, seed=7), teacher.tokenizer, teacher.cfg.n_ctx)
    students = [(r.method, r.label, load_model(str(r.model_dir))) for r in find_runs(args.runs)]
    return probes.information_purity(teacher, students, dataset)


EXPERIMENTS = {"exp1": (1, exp1), "exp2": (2, exp2), "exp3": (3, exp3), "exp4": (4, exp4), "exp5": (5, exp5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=[*EXPERIMENTS, "replot"])
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
    number, experiment = EXPERIMENTS[args.command]
    written = report.save_experiment(args.results / f"study_exp{number}", number, experiment(args))
    print(", ".join(map(str, written)))
    print(written[1].read_text())


if __name__ == "__main__":
    main()
