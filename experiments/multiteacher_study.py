"""Multi-teacher KV distillation study on the chain-of-thought task (issue 25): a digit-tokenizer GPT-2 teacher and a
word-tokenizer GQA Qwen2 teacher, so the character alignment does work; CE alone, each teacher alone, and the ablation
matrix around a two-teacher baseline (routing fixed / similarity / learned; K-only / V-only / K+V; soft vs hard
alignment; flat vs structured × shared / per-head × uniform / random init; ratio vs CKA layer map; shallow vs full
layer coverage). Every arm at the same steps, examples and tokens (asserted) on the same data streams (hash
asserted). Hyper-parameters are selected on the validation stream and scores reported on the test stream: first the
KV weight, from `--kv-weights` on the baseline at `--select-seed` (best final validation accuracy), then every KV
arm at that weight. Test-split accuracy and perplexity with bootstrap CIs and Welch tests against the baseline and
CE alone; validation accuracy beside them. Writes figures/<name>.{json,md,html}.

    OMP_NUM_THREADS=1 python experiments/multiteacher_study.py --out runs/multiteacher_study

Selection runs first, then the arms seed-major in priority order (every arm gets seed 1 before any gets seed 2).
Each run is an ordinary multi-teacher run in OUT/<arm>-kv<weight>-<seed> (OUT/ce-only-<seed>); finished runs are
reused, an interrupted one resumes. `--runs-only` trains without reporting (several processes may share OUT),
`--finished-only` reports what has finished (selection among the finished selection runs).
"""

import argparse
import json
import logging
import shlex
import sys
from dataclasses import replace
from pathlib import Path

import torch

from rcid_tl import __version__
from rcid_tl.artifacts import write_figure, write_json, write_text
from rcid_tl.distill.config import OptimConfig
from rcid_tl.kv.curves import read_log
from rcid_tl.kv.run import TEST_SPLITS
from rcid_tl.models.loading import load_model
from rcid_tl.multiteacher.ablation import Arm
from rcid_tl.multiteacher.controls import Compute, check_equal_compute, compare_arms, learning_curve_figure
from rcid_tl.multiteacher.data import encode_with_spans, student_examples
from rcid_tl.multiteacher.loss import StructuralWeights
from rcid_tl.multiteacher.run import MultiTeacherRunConfig, run_multiteacher
from rcid_tl.multiteacher.tokens import off_diagonal_share
from rcid_tl.world.cot import CoTSplit
from rcid_tl.world.cot_streams import test_examples

BASELINE, CE = "baseline", "ce-only"


def study_arms(digits: str, qwen2: str) -> tuple[list[Arm], dict[str, dict]]:
    """The arms in priority order, and the run-config overrides of those that differ outside the Arm."""
    base = Arm(BASELINE, (digits, qwen2))
    arms = [
        # CE alone reads one teacher (its KV weight is 0, so the teacher is irrelevant; same steps, problems and
        # student tokens as every arm, asserted) to spend less CPU on forwards whose output is unused
        replace(base, name=CE, teachers=(qwen2,)), base,
        replace(base, name="single-digits", teachers=(digits,)), replace(base, name="single-qwen2", teachers=(qwen2,)),
        replace(base, name="routing-learned", fusion="learned"),
        replace(base, name="routing-similarity", fusion="similarity"),
        replace(base, name="k-only", alphas=StructuralWeights(k=1.0, v=0.0, attn=0.0)),
        replace(base, name="v-only", alphas=StructuralWeights(k=0.0, v=1.0, attn=0.0)),
        replace(base, name="k+v", alphas=StructuralWeights(k=1.0, v=1.0, attn=0.0)),
        replace(base, name="hard-alignment", soft_alignment=False),
        replace(base, name="flat", projection="flat"),
        replace(base, name="layer-map-cka"), replace(base, name="shallow-layers"),
        replace(base, name="shared-random-init", init_uniform=False),
        replace(base, name="per-head-uniform-init", share_dim=False),
        replace(base, name="per-head-random-init", share_dim=False, init_uniform=False),
    ]
    overrides = {CE: {"kv_weight": 0.0}, "layer-map-cka": {"layer_map": "cka"},
                 "shallow-layers": {"layer_coverage": "shallow"}}
    return arms, overrides


def run_config(args, arm: Arm, seed: int, overrides: dict, kv_weight: float) -> MultiTeacherRunConfig:
    log_every = max(1, args.curve_every // 5)
    settings = dict(seed=seed, student_from=args.student_from, reasoning=args.reasoning, kv_weight=kv_weight,
                    student_shape=json.loads(args.student_shape), n_train=args.n_train, batch_size=args.batch_size,
                    eval_n=args.eval_n, curve_n=args.curve_n, eval_every=args.curve_every,
                    checkpoint_every=args.curve_every, log_every=log_every)
    optim = OptimConfig(steps=args.steps, lr=args.lr, warmup=max(1, args.steps // 20))
    return MultiTeacherRunConfig(arm, optim, **(settings | overrides.get(arm.name, {})))


def run_dir(args, arm: str, seed: int, kv_weight: float) -> Path:
    """OUT/<arm>-kv<weight>-<seed>; CE alone (no KV term) is OUT/ce-only-<seed> whatever the selected weight."""
    return args.out / (f"{arm}-{seed}" if arm == CE else f"{arm}-kv{kv_weight:g}-{seed}")


def finished(path: Path) -> dict | None:
    path = path / "metrics.json"
    return json.loads(path.read_text()) if path.is_file() else None


def train(args, arm: Arm, seed: int, overrides: dict, kv_weight: float, command: str) -> dict | None:
    """The run's metrics: a finished run's, else (unless --finished-only) trained now (resuming), else None."""
    path = run_dir(args, arm.name, seed, kv_weight)
    if (metrics := finished(path)) is not None or args.finished_only:
        return metrics
    return run_multiteacher(run_config(args, arm, seed, overrides, kv_weight), path, command=command)


def select_kv_weight(args, arm: Arm, overrides: dict, command: str) -> dict:
    """The KV weight every KV arm uses, chosen on the validation stream only: `arm` (the baseline) at seed
    `--select-seed` for each weight of `--kv-weights`; the best final validation accuracy wins (ties: the lower
    validation perplexity, then the smaller weight). Test scores play no part. The chosen weight's run is the
    baseline's run at that seed (same directory), so selection costs the grid's other weights only."""
    grid = sorted(set(args.kv_weights))
    scores = {w: m["scores"]["validation"] for w in grid
              if (m := train(args, arm, args.select_seed, overrides, w, command)) is not None}
    if not scores:
        raise SystemExit(f"no selection run has finished in {args.out} (--finished-only): run without it first")
    chosen = max(scores, key=lambda w: (scores[w]["accuracy"], -scores[w]["perplexity"], -w))
    return {"parameter": "kv_weight", "arm": arm.name, "seed": args.select_seed, "grid": grid,
            "finished": sorted(scores), "validation": {f"{w:g}": v for w, v in scores.items()}, "chosen": chosen}


def summarise(runs: dict[str, dict[int, dict]]) -> dict:
    """Per split and measure: arm means with CIs, differences to the baseline and to CE alone (bootstrap CI, Welch)."""
    out = {}
    for split in ["validation", *(s.value for s in TEST_SPLITS)]:
        for key in ("accuracy", "perplexity"):
            scores = {arm: [m["scores"][split][key] for m in per.values()] for arm, per in runs.items()}
            reference = BASELINE if BASELINE in scores else next(iter(scores))
            table = compare_arms(scores, reference)
            if reference != BASELINE:  # a partial report: no baseline run has finished yet
                table = {arm: {k: v for k, v in row.items() if k != "vs_baseline"} for arm, row in table.items()}
            if CE in scores:
                for arm, row in compare_arms(scores, CE).items():
                    if arm != CE:
                        table[arm]["vs_ce"] = row["vs_baseline"]
            out[f"{split} {key}"] = table
    return out


def check_controls(runs: dict[str, dict[int, dict]]) -> dict:
    """One data-stream hash for every run, and equal compute across the arms at each seed (InputError otherwise)."""
    hashes = {m["split_hash"] for per in runs.values() for m in per.values()}
    if len(hashes) != 1:
        raise AssertionError(f"runs used {len(hashes)} different data streams")
    seeds = sorted({s for per in runs.values() for s in per})
    compute = {s: check_equal_compute({f"{a}/seed {s}": Compute(**per[s]["compute"]) for a, per in runs.items()
                                       if s in per}).to_dict() for s in seeds}
    return {"split_hash": hashes.pop(), "compute": compute}


def alignment_shift(student_from: str, teachers: list[str], n: int) -> dict[str, dict]:
    """Per teacher, on n ID test problems: the mean share of a student token's characters the character alignment
    sends off the diagonal (to teacher tokens with another span), over all student tokens and over number tokens."""
    student_tok = load_model(student_from).tokenizer
    examples = test_examples(CoTSplit.ID, n)
    out = {}
    for name in teachers:
        tok = load_model(name).tokenizer
        shares, numbers = [], []
        for e in examples:
            ids, _, s_spans = encode_with_spans(student_tok, e)
            _, _, t_spans = encode_with_spans(tok, e)
            share = off_diagonal_share(s_spans, t_spans).tolist()
            shares += share
            numbers += [x for x, i in zip(share, ids) if student_tok.convert_ids_to_tokens(i).strip().isdigit()]
        out[name] = {"tokens": len(shares), "mean_off_diagonal": sum(shares) / len(shares),
                     "tokens_moved": sum(x > 0 for x in shares) / len(shares),
                     "number_tokens": len(numbers), "mean_off_diagonal_numbers": sum(numbers) / max(1, len(numbers))}
    return out


def _selection_text(selection: dict | None) -> str:
    if selection is None:
        return "no KV arm"
    scores = ", ".join(f"{w} → {v['accuracy']:.3f} (ppl {v['perplexity']:.2f})"
                       for w, v in selection["validation"].items())
    missing = [w for w in selection["grid"] if w not in selection["finished"]]
    return (f"{selection['arm']} at seed {selection['seed']}, validation accuracy {scores}"
            + (f"; not finished: {missing}" if missing else ""))


def _cell(row: dict, key: str = "mean", digits: int = 3) -> str:
    m = row[key]
    if m["low"] != m["low"]:  # one seed: no interval
        return f"{m['estimate']:.{digits}f}"
    return f"{m['estimate']:.{digits}f} [{m['low']:.{digits}f}, {m['high']:.{digits}f}]"


def _vs(row: dict, key: str) -> str:
    if key not in row:
        return "—"
    d, w = row[key]["diff"], row[key]["welch"]
    p = "n/a" if w["p"] != w["p"] else f"{w['p']:.2g}"
    return f"{d['estimate']:+.3f} (p = {p})"


def markdown(summary: dict, shift: dict, teachers: dict, header: str) -> str:
    acc, ppl, val = summary["id accuracy"], summary["id perplexity"], summary["validation accuracy"]
    lines = [header, "", "| arm | seeds | validation acc | ID test acc per seed | ID test acc [95% CI] | vs CE-only "
             "(Welch p) | vs baseline (Welch p) | ID ppl [95% CI] | OOD-longer acc | OOD-pairs acc |",
             "|---|" + "---|" * 9]
    for arm, row in acc.items():
        per_seed = ", ".join(f"{v:.2f}" for v in row["values"])
        lines.append(f"| {arm} | {len(row['values'])} | {val[arm]['mean']['estimate']:.3f} | {per_seed} | "
                     f"{_cell(row)} | {_vs(row, 'vs_ce')} | {_vs(row, 'vs_baseline')} | {_cell(ppl[arm], digits=2)} | "
                     f"{summary['ood-longer accuracy'][arm]['mean']['estimate']:.3f} | "
                     f"{summary['ood-pairs accuracy'][arm]['mean']['estimate']:.3f} |")
    for name, scores in teachers.items():
        lines.append(f"| teacher {name} | | | | {scores['id']['accuracy']:.3f} | | | "
                     f"{scores['id']['perplexity']:.2f} | {scores['ood-longer']['accuracy']:.3f} | "
                     f"{scores['ood-pairs']['accuracy']:.3f} |")
    lines += ["", "Character alignment, student tokenizer → each teacher's (ID test problems): share of a student "
              "token's characters read from teacher tokens with another span.", "",
              "| teacher | student tokens | mean off-diagonal share | tokens moved | number tokens | "
              "their mean share |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {k} | {v['tokens']} | {v['mean_off_diagonal']:.3f} | {v['tokens_moved']:.3f} | {v['number_tokens']} "
              f"| {v['mean_off_diagonal_numbers']:.3f} |" for k, v in shift.items()]
    return "\n".join(lines + [""])


def figure(summary: dict):
    import plotly.graph_objects as go

    table = summary["id accuracy"]
    cis = [table[arm]["mean"] for arm in table]
    fig = go.Figure(go.Bar(x=list(table), y=[c["estimate"] for c in cis], error_y={
        "type": "data", "symmetric": False, "array": [c["high"] - c["estimate"] for c in cis],
        "arrayminus": [c["estimate"] - c["low"] for c in cis]}))
    fig.update_layout(title="Multi-teacher KV distillation: ID test accuracy per arm (mean over seeds, 95% CI)",
                      height=520)
    return fig


def teacher_scores(args) -> dict:
    from rcid_tl.world.cot_eval import evaluate_cot

    path = args.out / f"teacher_scores_{args.eval_n}.json"
    if not path.is_file():
        scores = {}
        for name in (args.digits, args.qwen2):
            model = load_model(name)
            scores[name] = {s.value: evaluate_cot(model, model.tokenizer, test_examples(s, args.eval_n)).to_dict()
                            for s in TEST_SPLITS}
        write_json(path, scores)
    return json.loads(path.read_text())


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", default="world-gpt2-cot-digits", help="MHA teacher with the digit tokenizer")
    p.add_argument("--qwen2", default="world-qwen2-cot", help="GQA teacher with the word tokenizer")
    p.add_argument("--student-from", default="world-gpt2-cot",
                   help="the model whose default student shape and (word) tokenizer every arm's student takes")
    p.add_argument("--student-shape", default="{}", help="JSON overrides of the student shape")
    p.add_argument("--reasoning", default="full", choices=["full", "compressed"])
    p.add_argument("--out", type=Path, default=Path("runs/multiteacher_study"))
    p.add_argument("--figures", type=Path, default=Path("figures"))
    p.add_argument("--name", default="multiteacher_study")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--arms", nargs="+", help="only these arms")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--kv-weights", type=float, nargs="+", default=[0.1, 0.3, 1.0],
                   help="the KV weights selection tries (one value: no selection)")
    p.add_argument("--select-seed", type=int, default=1, help="the seed of the selection runs")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--n-train", type=int, default=1024)
    p.add_argument("--eval-n", type=int, default=50)
    p.add_argument("--curve-n", type=int, default=32, help="validation problems (learning curve and final score)")
    p.add_argument("--curve-every", type=int, default=100)
    p.add_argument("--runs-only", action="store_true")
    p.add_argument("--finished-only", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    command = shlex.join(["python", "experiments/multiteacher_study.py", *argv])
    all_arms, overrides = study_arms(args.digits, args.qwen2)
    arms = [a for a in all_arms if not args.arms or a.name in args.arms]
    # CE alone has no KV term: a run of CE arms only selects nothing
    selection = select_kv_weight(args, next(a for a in all_arms if a.name == BASELINE), overrides, command) \
        if any(a.name != CE for a in arms) else None
    kv_weight = selection["chosen"] if selection else 0.0
    runs: dict[str, dict[int, dict]] = {}
    for seed in args.seeds:  # seed-major: every arm gets seed 1 before any gets seed 2
        for arm in arms:
            if (m := train(args, arm, seed, overrides, kv_weight, command)) is not None:
                runs.setdefault(arm.name, {})[seed] = m
    if args.runs_only:
        return
    runs = {a.name: runs[a.name] for a in arms if a.name in runs}
    controls = check_controls(runs)
    summary = summarise(runs)
    teachers = teacher_scores(args)
    shift = alignment_shift(args.student_from, [args.digits, args.qwen2], args.eval_n)
    routers = {s: m["routing"][-1] for s, m in runs.get("routing-learned", {}).items()}
    header = (f"# Multi-teacher KV distillation study\n\nTeachers {args.digits} (MHA, digit tokenizer) and "
              f"{args.qwen2} (GQA, word tokenizer); student: {args.student_from}'s default shape "
              f"{args.student_shape}, {args.reasoning} reasoning; {args.steps} steps of batch {args.batch_size}, "
              f"lr {args.lr}, KV weight {kv_weight:g} (selected on validation: {_selection_text(selection)}); "
              f"compute per seed, equal across arms: {controls['compute']}; "
              f"data streams {controls['split_hash'][:12]}; {args.curve_n} validation and {args.eval_n} test "
              f"problems per split. `{command}` (rcid_tl {__version__}).")
    name = args.figures / args.name
    write_json(name.with_suffix(".json"), {
        "rcid_tl_version": __version__, "command": command, "args": vars(args) | {
            "out": str(args.out), "figures": str(args.figures)}, "selection": selection, "controls": controls,
        "summary": summary,
        "teachers": teachers, "alignment_shift": shift, "router": routers,
        "runs": {arm: {seed: {k: m[k] for k in ("scores", "routing", "compute", "split_hash", "config", "layer_maps",
                                                 "data", "wall_s")} for seed, m in per.items()}
                 for arm, per in runs.items()}})
    write_text(name.with_suffix(".md"), markdown(summary, shift, teachers, header))
    write_figure(name.with_suffix(".html"), figure(summary))
    first = {arm: per[min(per)] for arm, per in runs.items()}
    curves = {arm: [{k: r[k] for k in ("step", "curve_accuracy") if k in r} for r in read_log(
        run_dir(args, arm, m["seed"], kv_weight) / "train_log.jsonl")] for arm, m in first.items()}
    write_figure(args.figures / f"{args.name}_curve_accuracy", learning_curve_figure(
        curves, "curve_accuracy", "validation accuracy during training, first seed"))


if __name__ == "__main__":
    main(sys.argv[1:])
