"""Find an embedded teacher's IOI circuit by mean-ablation knockout and report every head's effect on IOI,
Greater-Than and 5-shot relations (see `rcid_tl.heads.circuit`).

    python experiments/ioi_circuit.py --model world-gpt2 --out rcid_tl/embedded/world-gpt2/circuit.json

The figure goes to `figures/circuit_<model>.html` (and .png), beside the one plotly.js bundle the repository keeps,
so the installed package carries no figures.
"""

import argparse
import json
from pathlib import Path

import plotly.graph_objects as go
import torch

import rcid_tl
from rcid_tl.artifacts import write_figure, write_json
from rcid_tl.heads.circuit import TASKS, search_circuit
from rcid_tl.models.loading import load_model
from rcid_tl.progress import set_progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="world-gpt2")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-heads", type=int, default=6)
    parser.add_argument("--reference-n", type=int, default=None,
                        help="reference examples per task (default: ≥ 50 per template and answer position)")
    parser.add_argument("--out", type=Path, required=True, help="circuit JSON")
    parser.add_argument("--figures", type=Path, default=Path(__file__).resolve().parents[1] / "figures",
                        help="where circuit_<model>.html goes (default: the repository's figures/)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    set_progress(False)
    report = search_circuit(load_model(args.model), n=args.n, seed=args.seed, max_heads=args.max_heads,
                            reference_n=args.reference_n)
    write_json(args.out, {"rcid_tl_version": rcid_tl.__version__, "model": args.model, **report.to_dict()})
    heads = list(report.head_effects)
    figure = go.Figure(go.Heatmap(
        z=[[report.head_effects[h][t] for h in heads] for t in TASKS], x=heads, y=list(TASKS), colorscale="RdBu",
        zmid=0, colorbar={"title": "relative change"}))
    figure.update_layout(title=f"{args.model}: mean ablation of each head (circuit {', '.join(report.circuit)})",
                         xaxis_title="head (layer.head)")
    write_figure(args.figures / f"circuit_{args.model}", figure)
    print(json.dumps({"circuit": report.circuit, "effects": report.circuit_effects, "baselines": report.baselines,
                      "meets_criteria": report.meets_criteria,
                      "min_reference_group": {t: g["min_group_size"] for t, g in report.reference_groups.items()}}))


if __name__ == "__main__":
    main()
