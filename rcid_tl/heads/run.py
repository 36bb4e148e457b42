"""`rcid-tl heads`: score every head and sort the heads into Wang et al. 2023's IOI classes, on any model."""

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
from rcid_tl.heads.effects import compensation, direct_effects, s_inhibition
from rcid_tl.metrics import logit_diff
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


@dataclass(frozen=True)
class HeadsConfig:
    """What to score on: the IOI task (Wang et al.'s ABC corruption by default) and `repeat_n` sequences of
    `repeat_length` random tokens repeated once."""

    model: ModelSpec
    task: TaskSpec
    repeat_n: int = 20
    repeat_length: int = 20
    thresholds: HeadThresholds = field(default_factory=HeadThresholds)
    rows_per_forward: int = 64

    def __post_init__(self) -> None:
        if self.task.name != "ioi":
            raise InputError(f"head classes are defined on the IOI task; got --task {self.task.name!r}, allowed: ioi")
        check_count(self.repeat_n, "--repeat-n")
        check_count(self.repeat_length, "--repeat-length", minimum=2)
        check_count(self.rows_per_forward, "--batch-size")


@dataclass(frozen=True)
class HeadsResult:
    header: dict[str, Any]
    scores: dict[str, list[list[float | None]]]  # score name → (layer, head) grid; None where undefined
    classes: dict[str, list[str]]
    baseline: float  # mean clean logit difference: the unit of the effect thresholds
    functional: dict[str, list[str]] = field(default_factory=dict)  # `rcid_tl.heads.functional`: on any model

    def to_json(self) -> dict[str, Any]:
        return {**self.header, "baseline_logit_diff": self.baseline, "classes": self.classes,
                "functional_classes": self.functional, "scores": self.scores}

    def save(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        grid = self.scores[SCORES[0]]
        rows = [(layer, head, *(self.scores[s][layer][head] for s in SCORES),
                 " ".join(c for c in CLASS_NAMES if f"{layer}.{head}" in self.classes[c]))
                for layer in range(len(grid)) for head in range(len(grid[0]))]
        title = f"{self.header['model']} · IOI head scores"
        return [
            write_json(out / "heads.json", self.to_json()),
            write_csv(out / "heads.csv", ("layer", "head", *SCORES, "classes"), rows),
            *write_figure(out / "heads_attention", faceted_heatmaps(self._panels(ATTENTION_SCORES),
                                                                     f"{title} (attention, copy: 0..1)", "score")),
            *write_figure(out / "heads_effects", faceted_heatmaps(self._panels(EFFECT_SCORES),
                                                                   f"{title} (effects, logit difference)", "Δ")),
        ]

    def _panels(self, names) -> dict[str, np.ndarray]:
        return {n: np.array([[np.nan if v is None else v for v in row] for row in self.scores[n]]) for n in names}


def find_head_classes(config: HeadsConfig, model: TransformerBridge | None = None) -> HeadsResult:
    """Every head's scores on the model and the classes they put it in (see `rcid_tl.heads.classes`)."""
    bridge, dataset = prepare(model or config.model, config.task)
    batch = dataset.batch()
    tokenizer = bridge.tokenizer
    special = set(tokenizer.all_special_ids)
    vocabulary = [i for i in range(min(len(tokenizer), bridge.cfg.d_vocab)) if i not in special]
    bos = tokenizer.bos_token_id if config.task.prepend_bos else None
    if 2 * config.repeat_length + (bos is not None) > bridge.cfg.n_ctx:
        raise InputError(f"--repeat-length {config.repeat_length} makes sequences longer than the model's context "
                         f"of {bridge.cfg.n_ctx} tokens (twice the length, plus BOS)")
    tokens = repeated_tokens(vocabulary, config.repeat_n, config.repeat_length, config.task.seed, bos)
    scores = repeat_scores(bridge, tokens, config.repeat_length)
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
    functional = functional_classes(scores, attention, baseline)
    header = result_header(model_label(bridge), dataset, config.task.seed, "logit_diff", metrics)
    header["config"] = {"repeat_n": config.repeat_n, "repeat_length": config.repeat_length,
                        "repeated_tokens": tokens.tolist(), "thresholds": vars(config.thresholds),
                        "corruption": config.task.corruption, "rows_per_forward": config.rows_per_forward,
                        "path_patching": "other heads frozen at clean z, MLPs and norms recomputed",
                        "device": config.model.device, "dtype": config.model.dtype}
    return HeadsResult(
        header=header,
        scores={s: [[None if v != v else float(v) for v in row] for row in scores[s].tolist()] for s in SCORES},
        classes={c: [str(h) for h in classes[c]] for c in CLASS_NAMES},
        baseline=baseline,
        functional={c: [str(h) for h in heads] for c, heads in functional.items()},
    )
