"""What a teacher run leaves behind for readers: a plotly loss curve and training.json / TRAINING.md."""

import json
import platform
from pathlib import Path

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from rcid_tl.artifacts import write_figure, write_text

_CURVE_METRICS = ("ioi_acc", "ioi_logit_diff", "gt_prob_diff", "relation_5shot_acc")


def write_loss_curve(metrics_path: Path, html_path: Path) -> None:
    """Training loss and the periodic task scores against tokens seen, as HTML that opens offline (and a PNG beside
    it when a browser engine is available)."""
    records = [json.loads(ln) for ln in metrics_path.read_text().splitlines() if ln]
    losses = [r for r in records if "loss" in r]
    evals = [r for r in records if "eval" in r]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "held-out task scores"))
    fig.add_trace(go.Scatter(x=[r["tokens"] for r in losses], y=[r["loss"] for r in losses], name="loss"), 1, 1)
    for key in _CURVE_METRICS:
        fig.add_trace(
            go.Scatter(x=[r["tokens"] for r in evals], y=[r["eval"][key] for r in evals], name=key,
                       mode="lines+markers"),
            1, 2,
        )
    fig.update_xaxes(title_text="tokens")
    fig.update_layout(title=f"Teacher training: {metrics_path.parent.name}")
    write_figure(html_path, fig)


def write_training_record(
    model_dir: Path, config: dict, scores: dict, command: str, wall_s: float, n_params: int, tokens: int
) -> None:
    """training.json (machine-readable) and TRAINING.md (for people) next to the model weights."""
    record = {
        "command": command, "seed": config["seed"], "steps": config["steps"], "tokens": tokens,
        "wall_time_s": round(wall_s, 1), "n_params": n_params, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "config": config, "scores": scores,
    }
    write_text(model_dir / "training.json", json.dumps(record, indent=2) + "\n")
    shape = config["shape"]
    lines = [
        f"# World teacher ({shape['arch']}, {shape['n_layer']} layers, d_model {shape['d_model']})",
        "",
        "Trained from scratch on the synthetic world corpus of `rcid_tl.world` (word-level tokenizer).",
        "",
        f"- command: `{command}`",
        f"- seed: {config['seed']} (world seed {config['world']['seed']})",
        f"- steps: {config['steps']} x {config['batch_size']} x {config['seq_len']} tokens = {tokens:,} tokens",
        f"- parameters: {n_params:,}",
        f"- wall time: {wall_s / 60:.1f} min on {torch.get_num_threads()} CPU thread(s)",
        "",
        "## Held-out scores",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4g} |" for k, v in scores.items() if isinstance(v, float)]
    lines += ["", "Per-relation accuracies and the full config are in `training.json`.", ""]
    if shape["arch"] == "qwen2":
        lines += [
            "Load the tokenizer with `PreTrainedTokenizerFast.from_pretrained(dir)` (or "
            "`rcid_tl.world.load_tokenizer`):",
            "transformers 5 makes `AutoTokenizer` build its own byte-level Qwen2Tokenizer for model_type qwen2.",
            "",
        ]
    write_text(model_dir / "TRAINING.md", "\n".join(lines))
