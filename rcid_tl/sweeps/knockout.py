"""`rcid-tl knockout`: ablate heads (a set, an IOI class, or every head singly) and record the metric change."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.artifacts import write_csv, write_figure, write_json
from rcid_tl.checks import MAX_EXAMPLES, check_count
from rcid_tl.errors import InputError
from rcid_tl.frames import knockout_frame
from rcid_tl.hooks.names import Head
from rcid_tl.interventions.head_classes import heads_of_class
from rcid_tl.interventions.knockout import Ablation, Method, Reference, knockout
from rcid_tl.interventions.reference import reference_distribution
from rcid_tl.metrics import TASK_METRIC, check_metric_name, metric_named, metric_readout
from rcid_tl.models.loading import model_label, namer
from rcid_tl.plotting.heatmaps import bar_chart, layer_heatmap
from rcid_tl.plotting.titles import titled
from rcid_tl.sweeps.common import ModelSpec, parse_positions, prepare, result_header
from rcid_tl.tasks.registry import TaskSpec


@dataclass(frozen=True)
class KnockoutConfig:
    """Exactly one of `heads` ("9.9,10.0"), `head_class` ("name-mover") or `all_heads` chooses the ablations."""

    model: ModelSpec
    task: TaskSpec
    heads: str | None = None
    head_class: str | None = None
    all_heads: bool = False
    method: Method = Method.MEAN
    reference: Reference = Reference.CORRUPT
    positions: str = "all"
    rows_per_forward: int = 64
    metric: str = TASK_METRIC  # or an OvR metric (CausalQwen), see rcid_tl.metrics
    reference_n: int | None = None  # mean/resample reference size; None: ≥ MIN_GROUP per group (interventions.reference)
    reference_seed: int | None = None  # None: the task seed + interventions.reference.SEED_OFFSET
    classes_file: Path | None = None  # a heads.json from `rcid-tl heads`: where `head_class` is looked up

    def __post_init__(self) -> None:
        check_metric_name(self.metric)
        chosen = sum([self.heads is not None, self.head_class is not None, self.all_heads])
        if chosen != 1:
            raise InputError("choose exactly one of --heads, --class or --all-heads")
        if self.rows_per_forward < 1:
            raise InputError(f"--batch-size must be ≥ 1, got {self.rows_per_forward}")
        check_count(self.reference_n, "--reference-n", maximum=MAX_EXAMPLES)
        object.__setattr__(self, "method", Method(self.method))
        object.__setattr__(self, "reference", Reference(self.reference))


@dataclass(frozen=True)
class KnockoutResult:
    header: dict[str, Any]
    method: str
    ablations: list[dict[str, Any]] = field(default_factory=list)
    n_layers: int = 0
    n_heads: int = 0

    def to_json(self) -> dict[str, Any]:
        return {**self.header, "kind": "knockout", "method": self.method, "ablations": self.ablations,
                "n_layers": self.n_layers, "n_heads": self.n_heads}

    def to_frame(self):
        """A tidy pandas DataFrame, one row per (ablated head set, example) (rcid_tl.frames)."""
        return knockout_frame(self)

    def save(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        rows = [(" ".join(a["heads"]), a["positions"] if a["positions"] == "all" else " ".join(a["positions"]), i,
                 m, d) for a in self.ablations for i, (m, d) in enumerate(zip(a["metric"], a["delta"]))]
        return [
            write_json(out / "knockout.json", self.to_json()),
            write_csv(out / "knockout.csv", ("heads", "positions", "example", "metric", "delta"), rows),
            *write_figure(out / "knockout", self.figure()),
        ]

    def figure(self):
        title = titled(f"Head knockout ({self.method} ablation)", self.header,
                       "mean Δ = metric(clean) − metric(ablated); positive: the ablation lowered the metric")
        if all(len(a["heads"]) == 1 for a in self.ablations) and len(self.ablations) > 1:
            grid = np.zeros((self.n_layers, self.n_heads))
            for a in self.ablations:
                head = Head.parse(a["heads"][0])
                grid[head.layer, head.head] = a["mean"]
            return layer_heatmap(grid, [str(h) for h in range(self.n_heads)], title, "mean Δ", "head")
        return bar_chart([",".join(a["heads"]) for a in self.ablations], [a["mean"] for a in self.ablations],
                         title, "mean Δ")


def choose_ablations(config: KnockoutConfig, bridge: TransformerBridge, positions) -> list[Ablation]:
    names = namer(bridge)
    if config.all_heads:
        return [Ablation((h,), positions) for h in names.all_heads()]
    if config.head_class is not None:
        heads = heads_of_class(config.head_class, bridge.cfg.n_layers, bridge.cfg.n_heads, config.classes_file)
    else:
        heads = tuple(names.check_head(Head.parse(h)) for h in config.heads.split(",") if h.strip())
        if not heads:
            raise InputError("--heads is empty; write heads as LAYER.HEAD, e.g. 9.9,10.0")
    return [Ablation(heads, positions)]


def run_knockout(config: KnockoutConfig, model: TransformerBridge | None = None) -> KnockoutResult:
    """Ablate the chosen heads on the task's clean prompts; delta = metric(clean) − metric(ablated) per example."""
    bridge, dataset = prepare(model or config.model, config.task)
    positions = None if config.positions.strip() == "all" else parse_positions(config.positions, dataset)
    ablations = choose_ablations(config, bridge, positions)
    metric, metric_name = metric_named(config.metric, dataset)
    reference = None
    if config.method is not Method.ZERO:
        reference = reference_distribution(config.task, bridge.tokenizer, dataset, config.reference_n,
                                           config.reference_seed, bridge.cfg.n_ctx)
    with metric_readout(bridge, config.metric):
        ablated, metrics, groups = knockout(
            bridge, dataset.batch(), ablations, metric, config.method, config.reference, config.task.seed,
            config.rows_per_forward, reference_batch=None if reference is None else reference.batch())
    entries = []
    for ablation, values in zip(ablations, ablated):
        delta = metrics.clean - values
        entries.append({"heads": [str(h) for h in ablation.heads],
                        "positions": "all" if ablation.positions is None else list(ablation.positions),
                        "metric": values.tolist(), "delta": delta.tolist(), "mean": float(delta.mean())})
    header = result_header(model_label(bridge), dataset, config.task.seed, metric_name, metrics)
    header["config"] = {"method": config.method.value, "reference": config.reference.value,
                        "heads": config.heads, "class": config.head_class, "all_heads": config.all_heads,
                        "classes_file": None if config.classes_file is None else str(config.classes_file),
                        "positions": config.positions, "rows_per_forward": config.rows_per_forward,
                        "device": config.model.device, "dtype": config.model.dtype}
    if groups is not None:
        header["reference_distribution"] = {
            "task_config": dict(reference.config), "run": config.reference.value, **groups.to_json(),
            "same_as_evaluated": reference is dataset}
    return KnockoutResult(header, config.method.value, entries, bridge.cfg.n_layers, bridge.cfg.n_heads)
