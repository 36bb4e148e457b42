"""training.json and TRAINING.md of a CoT-fine-tuned world teacher: CoT scores and world scores before and after."""

import json
import platform
from pathlib import Path

import torch

from rcid_tl.artifacts import write_text


def relative_changes(after: dict, before: dict) -> dict[str, float]:
    """(after - before) / |before| for every scalar score both records have (before != 0)."""
    return {k: (after[k] - v) / abs(v) for k, v in before.items()
            if isinstance(v, float) and isinstance(after.get(k), float) and v != 0}


def write_cot_training_record(
    model_dir: Path, config: dict, scores: dict, cot: dict, parent_scores: dict, command: str, wall_s: float,
    n_params: int, tokens: int,
) -> None:
    """Write both files; `scores` (world tasks) keeps the parent's keys so `rcid-tl models` reads it unchanged."""
    t = config["train"]
    record = {
        "command": command, "parent": config["parent"], "seed": t["seed"], "steps": t["steps"], "tokens": tokens,
        "wall_time_s": round(wall_s, 1), "n_params": n_params, "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "config": config, "scores": scores,
        "cot_scores": cot, "parent_scores": parent_scores,
        "relative_change_vs_parent": relative_changes(scores, parent_scores),
    }
    write_text(model_dir / "training.json", json.dumps(record, indent=2) + "\n")
    shape = t["shape"]
    lines = [
        f"# World teacher with chain-of-thought arithmetic ({shape['arch']}, {shape['n_layer']} layers, "
        f"d_model {shape['d_model']})",
        "",
        f"Fine-tuned from `{config['parent']}` on `rcid_tl.world.cot` problems mixed with the world corpus "
        f"({config['cot_fraction']:.0%} of documents are CoT problems). The tokenizer is the world tokenizer with "
        "the CoT tokens appended (`build_cot_tokenizer()`); every world token keeps its id, new embedding rows "
        "started at the mean embedding, and the number tokens \" N\" the world never writes (all but \" 11\"..\" 19\"; "
        "their rows had collapsed onto one vector) started as copies of the trained year-suffix tokens \"NN\".",
        *([] if config.get("tokenizer", "words") == "words" else [
            "", "Digit tokenizer (`build_cot_digit_tokenizer()`): the same vocabulary and ids as its parent's, but every "
            "number is split into single digits (\" 23\" is \" 2\" + \"3\"), so its segmentation differs from the "
            "word-level students' and a multi-teacher student reads it through the character alignment. The parent "
            "already had the CoT vocabulary, so no embedding row was added or reset."]),
        "",
        f"- command: `{command}`",
        f"- seed: {t['seed']} (world seed {t['world']['seed']}, CoT seed {config['cot_seed']})",
        f"- steps: {t['steps']} x {t['batch_size']} x {t['seq_len']} tokens = {tokens:,} tokens, peak lr {t['lr']}",
        f"- parameters: {n_params:,}",
        f"- wall time: {wall_s / 60:.1f} min on {torch.get_num_threads()} CPU thread(s)",
        "",
        "## Chain-of-thought scores (greedy generation, exact answer; fresh problems, seed 12345)",
        "",
        "| split | n | accuracy | perplexity (reasoning + answer) |",
        "|---|---|---|---|",
    ]
    lines += [f"| {s} | {v['n']} | {v['accuracy']:.3f} | {v['perplexity']:.3f} |" for s, v in cot.items()]
    lines += ["", f"## World task scores: parent `{config['parent']}` and this model (same prompts)", "",
              "| metric | parent | this model | change |", "|---|---|---|---|"]
    change = record["relative_change_vs_parent"]
    lines += [f"| {k} | {parent_scores[k]:.4g} | {v:.4g} | {change[k]:+.1%} |" for k, v in scores.items()
              if k in change]
    lines += ["", "Per-relation accuracies and the full config are in `training.json`.", ""]
    if shape["arch"] == "qwen2":
        lines += ["Load the tokenizer with `rcid_tl.world.load_tokenizer(dir)`: transformers 5 makes `AutoTokenizer` "
                  "build its own byte-level Qwen2Tokenizer for model_type qwen2.", ""]
    write_text(model_dir / "TRAINING.md", "\n".join(lines))
