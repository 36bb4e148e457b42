"""Circuit-level comparison (rcid_tl.study.circuits): each student's own mean-ablation circuit curve, the teacher's
order mapped into it, CPR/CMD and the random floor, with known-answer controls first (the teacher itself, its heads
relabelled, fresh random weights; built by `rcid-tl validate`).

    rcid-tl validate --teacher world-gpt2 --out runs/validate   # the control students
    python experiments/circuit_comparison.py --runs runs/distill_study --controls runs/validate/students

writes figures/circuit_comparison.{json,md}.
"""

import argparse
import time
from pathlib import Path

import torch

import rcid_tl
from rcid_tl.artifacts import write_json, write_text
from rcid_tl.models.loading import load_model
from rcid_tl.progress import set_progress
from rcid_tl.study.circuits import MIN_SCALE, TARGET, comparison_row, compare_circuits, measure_side

CONTROLS = {"teacher": "itself", "permuted": "heads relabelled", "random": "fresh random weights"}
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", default="world-gpt2")
    parser.add_argument("--runs", type=Path, default=Path("runs/distill_study"))
    parser.add_argument("--controls", type=Path, default=Path("runs/validate/students"))
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--fit-n", type=int, default=100)
    parser.add_argument("--n-random", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "figures" / "circuit_comparison")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_progress(False)
    start = time.time()
    kw = {"n": args.n, "fit_n": args.fit_n, "n_random": args.n_random}
    teacher = measure_side(load_model(args.teacher), **kw)
    students = [(f"control: {CONTROLS[name]}", args.controls / name) for name in CONTROLS]
    students += [(p.parent.name, p) for p in sorted(args.runs.glob("*/student"))]
    rows, results = [], {}
    for name, path in students:
        if not path.is_dir():
            print(f"skipped {name}: {path} not found")
            continue
        side = measure_side(load_model(str(path)), **kw)
        result = compare_circuits(teacher, side)
        rows.append(comparison_row(name, result))
        results[name] = {"path": str(path), **result.to_json()}
        print(f"{name}: mapped CPR {result.mapped.cpr:.3f}, own {result.student.cpr:.3f}", flush=True)
    payload = {"rcid_tl_version": rcid_tl.__version__, "teacher": args.teacher, "config": {**vars(args), **kw},
               "scored_clean_ids": [list(e.clean_ids) for e in teacher.task.dataset.examples],
               "rows": rows, "results": results, "seconds": time.time() - start}
    payload["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in payload["config"].items()}
    write_json(args.out.with_suffix(".json"), payload)
    write_text(args.out.with_suffix(".md"), table(payload))


def table(payload: dict) -> str:
    first = next(iter(payload["results"].values()))["config"]
    lines = [f"# Circuit comparison: {payload['teacher']}, IOI n = {first['n']} scored, map fitted on "
             f"{first['fit_n']} others, mean ablation ({first['reference_n']} reference prompts)", "",
             f"CPR = area under faithfulness over circuit size (higher: few heads do the work), CMD = area under "
             f"|1 − faithfulness| (lower: closer to the whole model); random = mean CPR of {first['n_random']} random "
             f"orders. Circuit = shortest prefix reaching faithfulness {TARGET}. Scale = the student's clean − "
             f"all-ablated logit difference over the teacher's; below {MIN_SCALE} the curves divide by almost "
             "nothing (a student at chance) and are undefined (–).", "",
             "| student | scale | student's own CPR / CMD | teacher's order mapped: CPR / CMD | random CPR "
             "(student) | student's circuit | teacher's circuit mapped |", "|---|---|---|---|---|---|---|"]
    teacher = payload["rows"][0]
    lines.insert(4, f"Teacher: CPR {teacher['teacher_cpr']:.3f}, CMD {teacher['teacher_cmd']:.3f}, random CPR "
                    f"{teacher['random_cpr_teacher']:.3f}, circuit {', '.join(teacher['teacher_circuit'])}.\n")
    for row in payload["rows"]:
        mapped = payload["results"][row["student"]]["mapping"]
        teacher_circuit = ", ".join(f"{h}→{mapped[h]}" for h in row["teacher_circuit"])
        pair = lambda a, b: f"{row[a]:.3f} / {row[b]:.3f}" if row["defined"] else "–"  # noqa: E731
        floor = f"{row['random_cpr_student']:.3f}" if row["defined"] else "–"
        lines.append(f"| {row['student']} | {row['scale']:.2f} | {pair('student_cpr', 'student_cmd')} | "
                     f"{pair('mapped_cpr', 'mapped_cmd')} | {floor} | {', '.join(row['student_circuit'])} | "
                     f"{teacher_circuit} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
