"""Experiment 3 of the RCID study: out-of-distribution robustness of each student on the world's held-out splits (IOI
with held-out names, with held-out templates; Greater-Than with held-out formats), relative to in-distribution, and
its rank correlation with the student's causal consistency."""

from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.models.loading import load_tokenizer, resolve_model_path
from rcid_tl.stats import bootstrap_mean_ci, spearman_ci
from rcid_tl.world.evaluate import greater_than_scores, gt_eval_prompts, ioi_eval_prompts, ioi_scores
from rcid_tl.world.ioi import IOI_HELD_OUT_TEMPLATES, IOI_TRAIN_TEMPLATES
from rcid_tl.world.splits import HELD_OUT_NAMES, IOI_NAMES
from rcid_tl.world.years import GT_HELD_OUT_FORMATS, GT_TRAIN_FORMATS

IOI_SPLITS = {"in-distribution": (IOI_NAMES, IOI_TRAIN_TEMPLATES),
              "held-out names": (HELD_OUT_NAMES, IOI_TRAIN_TEMPLATES),
              "held-out templates": (IOI_NAMES, IOI_HELD_OUT_TEMPLATES)}
GT_SPLITS = {"in-distribution": GT_TRAIN_FORMATS, "held-out formats": GT_HELD_OUT_FORMATS}
CONSISTENCY = ("mechanistic_r", "mean_r")


def load_hf(spec: str | Path):
    """A plain Hugging Face model and its tokenizer from an embedded name or a model directory."""
    path = resolve_model_path(str(spec)) or Path(spec)
    model = AutoModelForCausalLM.from_pretrained(str(path), attn_implementation="eager").eval()
    return model, load_tokenizer(path)


def split_scores(model, tokenizer, task: str, n: int, seed: int) -> dict[str, dict[str, float]]:
    """Per split: accuracy (logit difference > 0; IOI) or none (Greater-Than), and the mean metric with its CI."""
    out = {}
    with torch.no_grad():
        if task == "ioi":
            for split, (names, templates) in IOI_SPLITS.items():
                ld = ioi_scores(model, tokenizer, ioi_eval_prompts(seed, f"study:{split}", names, templates, n))
                out[split] = {"accuracy": float((ld > 0).float().mean()),
                              "metric": bootstrap_mean_ci(ld.numpy()).to_dict()}
        else:
            for split, formats in GT_SPLITS.items():
                prompts = gt_eval_prompts(seed, f"study:{split}", formats, n)
                prob_diff, _ = greater_than_scores(model, tokenizer, prompts)
                out[split] = {"accuracy": float((prob_diff > 0).float().mean()),
                              "metric": bootstrap_mean_ci(prob_diff.numpy()).to_dict()}
    return out


def relative(scores: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per OOD split: accuracy ratio OOD / in-distribution, and the metric's change OOD − in-distribution (a ratio
    of logit differences is unbounded for students near 0)."""
    base = scores["in-distribution"]
    return {split: {"accuracy_ratio": s["accuracy"] / base["accuracy"] if base["accuracy"] else float("nan"),
                    "metric_change": s["metric"]["estimate"] - base["metric"]["estimate"]}
            for split, s in scores.items() if split != "in-distribution"}


def robustness_row(model_spec: str | Path, task: str, n: int, seed: int) -> dict[str, Any]:
    model, tokenizer = load_hf(model_spec)
    scores = split_scores(model, tokenizer, task, n, seed)
    return {"scores": scores, "relative": relative(scores)}


def correlate(rows: list[dict[str, Any]], consistency=CONSISTENCY) -> list[dict[str, Any]]:
    """Spearman (bootstrap CI over students) of every consistency measure with every robustness measure."""
    splits = list(rows[0]["relative"])
    out = []
    for c in consistency:
        x = np.array([np.nan if r.get(c) is None else r[c] for r in rows], dtype=float)
        for split in splits:
            for measure in ("accuracy_ratio", "metric_change"):
                y = [r["relative"][split][measure] for r in rows]
                rho, p = spearman_ci(x, y)
                out.append({"consistency": c, "split": split, "robustness": measure, "rho": rho.to_dict(), "p": p})
    return out


def consistency_vs_robustness(students: list[dict[str, Any]], teacher: str, task: str = "ioi", n: int = 400,
                              seed: int = 2024) -> dict[str, Any]:
    """Experiment 3: `students` are dicts with `label`, `model_dir` and the consistency measures; each gets its OOD
    scores on `n` prompts per split (stream `seed`, never a training stream), then the correlations over students."""
    rows = [{k: s[k] for k in ("label", *CONSISTENCY) if k in s} | robustness_row(s["model_dir"], task, n, seed)
            for s in students]
    return {"teacher": robustness_row(teacher, task, n, seed), "rows": rows, "correlations": correlate(rows),
            "config": {"teacher": teacher, "task": task, "n": n, "seed": seed}}
