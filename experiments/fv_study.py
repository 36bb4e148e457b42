"""Function-vector study (Todd et al. 2024, end to end): `rcid-tl fv run`'s pipeline on one model and relation set, then a
summary — top heads, clean/corrupted ICL accuracy, and how much α·FV injection raises 0-shot accuracy per relation
and layer — into figures/fv_<name>.json and a (layer × relation) heatmap figures/fv_<name>.html.

    python experiments/fv_study.py --name world-gpt2 --model world-gpt2 --relations world --k 3
    python experiments/fv_study.py --name stories260K --model ../shared/data/checkpoints/stories260K/hf \
        --relations ../shared/data/function_vectors/dataset_files/abstractive \
        --qids antonym,present-past,singular-plural,country-capital --k 4
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from rcid_tl.artifacts import write_figure, write_json
from rcid_tl.fv.layout import RunLayout
from rcid_tl.fv.pipeline import FVRun, run_fv
from rcid_tl.fv.relations import WORLD, parse_qids
from rcid_tl.fv.injection_sweep import InjectionSweepConfig
from rcid_tl.fv.cie_sweep import CIESweepConfig
from rcid_tl.fv.extraction import ExtractionConfig
from rcid_tl.fv.trials import PromptFormat, SamplingConfig
from rcid_tl.plotting.heatmaps import layer_heatmap
from rcid_tl.progress import set_progress
from rcid_tl.sweeps.common import ModelSpec

FIGURES = Path(__file__).resolve().parents[1] / "figures"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--model", default="world-gpt2")
    parser.add_argument("--relations", default=WORLD)
    parser.add_argument("--qids", default=None)
    parser.add_argument("--n-trials", type=int, default=16)
    parser.add_argument("--n-demos", type=int, default=5)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--alphas", default="1")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out-root", type=Path, default=Path("results_fv/relation"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_progress(False)
    qids = parse_qids(args.qids)
    model = ModelSpec(args.model)
    base = RunLayout.for_run(f"study_{args.name}_k{args.k}", args.out_root).base
    fmt = PromptFormat.COLON if args.relations == WORLD else PromptFormat.QA
    alphas = tuple(float(a) for a in args.alphas.split(","))
    run = FVRun(
        CIESweepConfig(model, base, args.relations, tuple(qids) if qids else None,
                    sampling=SamplingConfig(args.n_trials, args.n_demos, args.seed, fmt)),
        ExtractionConfig(model, base, k=args.k),
        InjectionSweepConfig(model, base, alphas=alphas),
    )
    start = time.perf_counter()
    sweep, top, summary = run_fv(run)
    wall = time.perf_counter() - start
    write_summary(args, base, sweep, top, summary, wall)


def write_summary(args, base: Path, sweep, top, summary: dict, wall: float) -> None:
    qids = list(sweep.snapshot.qids)
    entries = [e for e in summary["entries"] if e["alpha"] == float(args.alphas.split(",")[0])]
    layers = sorted({e["layer"] for e in entries})
    grid = np.array([[next(e["accuracy_delta"] for e in entries if e["eval_qid"] == q and e["layer"] == layer)
                      for q in qids] for layer in layers])
    relations = {}
    for q in qids:
        r = sweep.results[q]
        mine = [e for e in summary["entries"] if e["eval_qid"] == q]
        best = max(mine, key=lambda e: (e["accuracy_delta"], e["mean_delta_logprob"]))
        relations[q] = {
            "clean_icl_accuracy": float(r.clean.top1.mean()), "corrupted_icl_accuracy": float(r.corrupted.top1.mean()),
            "top_heads": [f"{s.layer}.{s.head}" for s in top["by_qid"][q]],
            "zero_shot_accuracy": mine[0]["baseline_accuracy"],
            "best_layer": best["layer"], "best_alpha": best["alpha"], "injected_accuracy": best["injected_accuracy"],
            "accuracy_delta": best["accuracy_delta"], "mean_delta_logprob": best["mean_delta_logprob"],
            "accuracy_delta_by_layer": {str(e["layer"]): e["accuracy_delta"] for e in mine
                                        if e["alpha"] == best["alpha"]},
            "mean_delta_logprob_by_layer": {str(e["layer"]): e["mean_delta_logprob"] for e in mine
                                            if e["alpha"] == best["alpha"]},
        }
    payload = {"name": args.name, "model": args.model, "relations": args.relations, "n_trials": args.n_trials,
               "n_demos": args.n_demos, "k": args.k, "alphas": args.alphas, "seed": args.seed, "wall_s": round(wall, 1),
               "run_base": str(base), "global_top_heads": [f"{s.layer}.{s.head}" for s in top["global"]],
               "relations_summary": relations}
    write_json(FIGURES / f"fv_{args.name}.json", payload)
    title = f"{args.name}: 0-shot accuracy gain from α·FV after layer ℓ (k={args.k}, α={args.alphas.split(',')[0]})"
    write_figure(FIGURES / f"fv_{args.name}", layer_heatmap(grid, qids, title, "Δ accuracy", "relation"))
    print(json.dumps(payload, indent=1))


if __name__ == "__main__":
    main()
