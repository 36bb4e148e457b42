"""`rcid-tl heads`: score every head on any model and task. The task-free scores (previous-token, duplicate-token,
induction, on repeated random tokens) always run; Wang et al. 2023's IOI scores and classes only on the IOI task;
on any other task, each head's path-patched direct effect on the task's metric and its direct logit attribution."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.artifacts import write_csv, write_figure, write_json
from rcid_tl.checks import check_count
from rcid_tl.errors import InputError
from rcid_tl.heads.attention import end_attention, repeat_scores, repeated_tokens
from rcid_tl.heads.classes import CLASS_NAMES, HeadThresholds, assign_classes, movers
from rcid_tl.heads.copying import copy_scores, early_residual
from rcid_tl.heads.functional import TARGETS, functional_classes
from rcid_tl.hooks.names import Head
from rcid_tl.heads.effects import compensation, direct_effects, direct_logit_attribution, s_inhibition
from rcid_tl.metrics import logit_diff, metric_for
from rcid_tl.models.loading import model_label
from rcid_tl.plotting.heatmaps import faceted_heatmaps
from rcid_tl.sweeps.common import ModelSpec, prepare, result_header
from rcid_tl.tasks.registry import TaskSpec

ATTENTION_SCORES = ("previous_token", "duplicate_token", "induction", "end_to_io", "end_to_s2", "copy",
                    "negative_copy")  # fractions, 0..1
# logit-difference units; direct_logit_attribution (final-norm scale frozen) beside the path-patched direct effect,
# which also carries the final norm's rescaling of every other component
EFFECT_SCORES = ("direct_effect", "direct_logit_attribution", "s_inhibition", "compensation")
SCORES = ATTENTION_SCORES + EFFECT_SCORES
TASK_FREE = ("previous_token", "duplicate_token", "induction")  # on repeated random tokens: any model, any task
TASK_EFFECTS = ("direct_effect", "direct_logit_attribution")  # on any task with an `end` position
TASK_FREE_CLASSES = ("induction", "duplicate-token", "previous-token")


@dataclass(frozen=True)
class HeadsConfig:
    """What to score on: a task (IOI with Wang et al.'s ABC corruption gives every score and the IOI classes; any
    other task the task-free scores and each head's direct effect on its metric) and `repeat_n` sequences of
    `repeat_length` random tokens repeated once."""

    model: ModelSpec
    task: TaskSpec
    repeat_n: int = 20
    repeat_length: int = 20
    thresholds: HeadThresholds = field(default_factory=HeadThresholds)
    rows_per_forward: int = 64

    def __post_init__(self) -> None:
        check_count(self.repeat_n, "--repeat-n")
        check_count(self.repeat_length, "--repeat-length", minimum=2)
        check_count(self.rows_per_forward, "--batch-size")


@dataclass(frozen=True)
class HeadsResult:
    header: dict[str, Any]
    scores: dict[str, list[list[float | None]]]  # score name → (layer, head) grid; None where undefined
    classes: dict[str, list[str]]
    baseline: float  # mean clean task metric (logit difference on IOI): the unit of the effect thresholds
    functional: dict[str, list[str]] = field(default_factory=dict)  # `rcid_tl.heads.functional`: IOI, any model
    skipped: dict[str, str] = field(default_factory=dict)  # score or class → why it was not computed

    def to_json(self) -> dict[str, Any]:
        return {**self.header, f"baseline_{self.header['metric']}": self.baseline, "classes": self.classes,
                "functional_classes": self.functional, "skipped": self.skipped, "scores": self.scores}

    def top(self, score: str, k: int = 3) -> list[tuple[str, float]]:
        """The `k` heads with the largest |score| (`layer.head`, value), largest first; undefined scores left out."""
        grid = self.scores[score]
        values = [(f"{layer}.{head}", v) for layer, row in enumerate(grid) for head, v in enumerate(row)
                  if v is not None]
        return sorted(values, key=lambda hv: -abs(hv[1]))[:k]

    def save(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        grid = self.scores[SCORES[0]]
        rows = [(layer, head, *(self.scores[s][layer][head] for s in SCORES),
                 " ".join(c for c in CLASS_NAMES if f"{layer}.{head}" in self.classes.get(c, ())))
                for layer in range(len(grid)) for head in range(len(grid[0]))]
        title = f"{self.header['model']} · {self.header['task']} head scores"
        return [
            write_json(out / "heads.json", self.to_json()),
            write_csv(out / "heads.csv", ("layer", "head", *SCORES, "classes"), rows),
            *write_figure(out / "heads_attention", faceted_heatmaps(self._panels(ATTENTION_SCORES),
                                                                     f"{title} (attention, copy: 0..1)", "score")),
            *write_figure(out / "heads_effects", faceted_heatmaps(self._panels(EFFECT_SCORES),
                                                                   f"{title} (effects, {self.header['metric']})",
                                                                   "Δ")),
        ]

    def _panels(self, names) -> dict[str, np.ndarray]:
        return {n: np.array([[np.nan if v is None else v for v in row] for row in self.scores[n]]) for n in names}


def find_head_classes(config: HeadsConfig, model: TransformerBridge | None = None) -> HeadsResult:
    """Every head's scores on the model and the classes they put it in (see `rcid_tl.heads.classes`): all of them
    on IOI; on another task the task-free scores and classes and the task's direct effects (the rest None, and
    listed in `skipped`)."""
    bridge, dataset = prepare(model or config.model, config.task)
    batch = dataset.batch()
    tokens = _repeated_tokens(bridge, config)
    scores = repeat_scores(bridge, tokens, config.repeat_length)
    if config.task.name == "ioi":
        metric_name, metrics, classes, functional = _ioi_scores(bridge, batch, config, scores)
        skipped = {}
    else:
        metric_name, metrics, classes = _task_scores(bridge, dataset, batch, config, scores)
        functional = {}
        why = "IOI only: they need the io/s1/s2 positions and name movers; run with --task ioi"
        skipped = {s: why for s in SCORES if s not in scores}
        skipped |= {c: why for c in CLASS_NAMES if c not in classes} | {"functional_classes": why}
    header = result_header(model_label(bridge), dataset, config.task.seed, metric_name, metrics)
    header["config"] = {"repeat_n": config.repeat_n, "repeat_length": config.repeat_length,
                        "repeated_tokens": tokens.tolist(), "thresholds": vars(config.thresholds),
                        "corruption": config.task.corruption, "rows_per_forward": config.rows_per_forward,
                        "path_patching": "other heads frozen at clean z, MLPs and norms recomputed",
                        "device": config.model.device, "dtype": config.model.dtype}
    nan = torch.full((bridge.cfg.n_layers, bridge.cfg.n_heads), float("nan"))
    return HeadsResult(
        header=header,
        scores={s: [[None if v != v else float(v) for v in row] for row in scores.get(s, nan).tolist()]
                for s in SCORES},
        classes={c: [str(h) for h in classes[c]] for c in CLASS_NAMES if c in classes},
        baseline=float(metrics.clean.mean()),
        functional={c: [str(h) for h in heads] for c, heads in functional.items()},
        skipped=skipped,
    )


def _repeated_tokens(bridge: TransformerBridge, config: HeadsConfig) -> torch.Tensor:
    tokenizer = bridge.tokenizer
    special = set(tokenizer.all_special_ids)
    vocabulary = [i for i in range(min(len(tokenizer), bridge.cfg.d_vocab)) if i not in special]
    bos = tokenizer.bos_token_id if config.task.prepend_bos else None
    if 2 * config.repeat_length + (bos is not None) > bridge.cfg.n_ctx:
        raise InputError(f"--repeat-length {config.repeat_length} makes sequences longer than the model's context "
                         f"of {bridge.cfg.n_ctx} tokens (twice the length, plus BOS)")
    return repeated_tokens(vocabulary, config.repeat_n, config.repeat_length, config.task.seed, bos)


def _ioi_scores(bridge, batch, config: HeadsConfig, scores: dict) -> tuple:
    """Wang et al.'s scores, added to `scores`: END attention, copy, direct effect, S-inhibition, compensation;
    and the seven IOI classes and the functional classes they imply."""
    attention = end_attention(bridge, batch, TARGETS)
    scores |= {"end_to_io": attention["io"], "end_to_s2": attention["s2"]}
    residual, ids = early_residual(bridge, batch.clean, torch.stack([batch.position("io"), batch.position("s1")], 1))
    scores["copy"], scores["negative_copy"] = copy_scores(bridge, residual, ids)
    scores["direct_effect"], metrics = direct_effects(bridge, batch, logit_diff, config.rows_per_forward)
    baseline = float(metrics.clean.mean())
    name_movers, _ = movers(scores, baseline, config.thresholds)
    scores["s_inhibition"] = s_inhibition(bridge, batch, logit_diff, name_movers, config.rows_per_forward)
    clean_dla, ablated_dla = compensation(bridge, batch, name_movers)
    scores["direct_logit_attribution"], scores["compensation"] = clean_dla, ablated_dla - clean_dla
    classes = assign_classes(scores, baseline, config.thresholds)
    return "logit_diff", metrics, classes, functional_classes(scores, attention, baseline)


def _task_scores(bridge, dataset, batch, config: HeadsConfig, scores: dict) -> tuple:
    """On a task other than IOI, added to `scores`: each head's path-patched direct effect on the task's own metric
    and its direct logit attribution (correct − wrong); the task-free classes."""
    if "end" not in dataset.position_names:
        raise InputError(f"task {dataset.task} has no 'end' position, which the direct effect patches into")
    metric = metric_for(dataset)
    scores["direct_effect"], metrics = direct_effects(bridge, batch, metric, config.rows_per_forward)
    scores["direct_logit_attribution"] = direct_logit_attribution(bridge, batch)
    t = config.thresholds
    classes = {"induction": _over(scores["induction"], t.induction),
               "duplicate-token": _over(scores["duplicate_token"], t.duplicate_token),
               "previous-token": _over(scores["previous_token"], t.previous_token)}
    return dataset.metric_name, metrics, classes


def _over(score: torch.Tensor, threshold: float) -> list[Head]:
    return [Head(int(layer), int(head)) for layer, head in (score >= threshold).nonzero().tolist()]
