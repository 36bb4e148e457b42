"""The three numbers of the method comparison for any student: task accuracy and metric, perplexity on held-out
general text, and causal consistency with the teacher at the causal checkpoints."""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from jaxtyping import Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.alignment.layers import proportional_layer_map
from rcid_tl.artifacts import write_json
from rcid_tl.checks import check_count, check_device
from rcid_tl.consistency.causal import causal_consistency, check_same_tokenizer
from rcid_tl.hooks.names import Site
from rcid_tl.consistency.checkpoints import Checkpoint, load_checkpoints, select_checkpoints
from rcid_tl.distill.config import check_sources
from rcid_tl.distill.data import PPL_LEN, PPL_ROWS, resolve_text
from rcid_tl.interventions.read import answer_forward
from rcid_tl.metrics import metric_for
from rcid_tl.models.loading import load_model
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.registry import TaskSpec, build_task


@torch.no_grad()
def task_scores(model: TransformerBridge, dataset: ContrastiveDataset, batch_size: int = 64) -> dict[str, Any]:
    """Accuracy (metric > 0: the correct answer beats the wrong one) and the mean task metric on clean inputs."""
    metric = metric_for(dataset)
    values = []
    for chunk in torch.arange(len(dataset)).split(batch_size):
        batch = dataset.batch(chunk.tolist())
        values.append(metric(answer_forward(model, batch.clean, batch.answer_pos), batch).float().cpu())
    v = torch.cat(values)
    return {"accuracy": (v > 0).float().mean().item(), "metric": dataset.metric_name, "metric_mean": v.mean().item(),
            "metric_std": v.std().item() if len(v) > 1 else 0.0}


@torch.no_grad()
def perplexity(model: TransformerBridge, rows: Int[Tensor, "row len"], batch_size: int = 16) -> float:
    """exp(mean next-token cross-entropy) over every token of `rows` (held-out general text)."""
    total, count = 0.0, 0
    for chunk in rows.split(batch_size):
        chunk = chunk.to(model.cfg.device)
        logits = model(chunk)[:, :-1].float()  # (batch, len-1, d_vocab)
        total += F.cross_entropy(logits.flatten(0, 1), chunk[:, 1:].flatten(), reduction="sum").item()
        count += chunk[:, 1:].numel()
    return math.exp(total / count)


def evaluate_student(
    teacher: TransformerBridge,
    student: TransformerBridge,
    dataset: ContrastiveDataset,
    checkpoints: Sequence[Checkpoint],
    layer_map: Mapping[int, int],
    text_rows: Tensor | None,
    *,
    batch_size: int = 64,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Task scores and perplexity of the student (and of the teacher, for reference) and the causal consistency
    of the student with the teacher: mean Pearson r over checkpoints, the behavioural baseline r_out and the
    mechanistic r (mean partial r over unsaturated checkpoints), each with its bootstrap CI, and r per checkpoint."""
    teacher.eval()
    student.eval()
    ppl = (lambda m: perplexity(m, text_rows)) if text_rows is not None else (lambda m: None)  # noqa: E731
    cc = causal_consistency(teacher, student, dataset, checkpoints, layer_map, batch_size=batch_size,
                            n_bootstrap=n_bootstrap, seed=seed)
    finite = lambda x: x if x is not None and math.isfinite(x) else None  # noqa: E731
    return {
        "student": {**task_scores(student, dataset, batch_size), "perplexity": ppl(student)},
        "teacher": {**task_scores(teacher, dataset, batch_size), "perplexity": ppl(teacher)},
        "consistency": {
            "mean_r": finite(cc.mean_r), "mean_r_ci": [finite(x) for x in cc.mean_r_ci],
            "mechanistic_r": finite(cc.mechanistic_r), "mechanistic_r_ci": [finite(x) for x in cc.mechanistic_r_ci],
            "n_checkpoints_mechanistic": cc.n_mechanistic, "r_out": finite(cc.r_out),
            "checkpoints": [{k: c[k] for k in ("teacher_layer", "student_layer", "site", "position", "head",
                                                "student_head", "modified", "pearson_r", "p_value",
                                                "saturation_teacher", "saturated", "partial_r", "partial_p")}
                            for c in cc.checkpoints],
        },
        "n_examples": len(dataset),
    }


@dataclass(frozen=True)
class EvalConfig:
    """Which student to evaluate against which teacher, on which held-out examples and text."""

    teacher: str
    student: str
    task: TaskSpec
    checkpoints: str = "auto"  # auto: selected on the teacher over these examples; or a checkpoints file
    top_k: int = 8
    text: str = "auto"
    batch_size: int = 64
    n_bootstrap: int = 1000
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_count(self.top_k, "--top-k")
        check_count(self.batch_size, "--batch-size")
        check_count(self.n_bootstrap, "--n-bootstrap")
        check_device(self.device)
        check_sources(self.checkpoints, self.text)


def run_evaluate(config: EvalConfig, out: str | Path) -> dict[str, Any]:
    """Load, validate, evaluate, and write `out/evaluation.json` (nothing is written on bad input)."""
    teacher = load_model(config.teacher, device=config.device)
    student = load_model(config.student, device=config.device)
    check_same_tokenizer(teacher, student)
    dataset = build_task(config.task, teacher.tokenizer, min(teacher.cfg.n_ctx, student.cfg.n_ctx))
    text = resolve_text(config.text, teacher)
    rows = text.rows(teacher.tokenizer, PPL_ROWS, PPL_LEN, held_out=True) if text else None
    if config.checkpoints == "auto":
        checkpoints = select_checkpoints(teacher, dataset, top_k=config.top_k, batch_size=config.batch_size,
                                         site=Site.Z)  # as rcid-tl distill selects them
    else:
        checkpoints = load_checkpoints(config.checkpoints, teacher.cfg.n_layers, dataset.position_names,
                                       teacher.cfg.n_heads)
    layer_map = proportional_layer_map(teacher.cfg.n_layers, student.cfg.n_layers)
    result = evaluate_student(teacher, student, dataset, checkpoints, layer_map, rows, batch_size=config.batch_size,
                              n_bootstrap=config.n_bootstrap, seed=config.task.seed)
    payload = {"rcid_tl_version": __version__, "teacher": config.teacher, "student": config.student,
               "task": config.task.name, "task_config": dict(dataset.config), **result,
               "checkpoints_used": [c.to_dict() for c in checkpoints],
               "layer_map": {str(k): v for k, v in layer_map.items()}}
    write_json(Path(out) / "evaluation.json", payload)
    return payload
