"""Configs and runners behind `rcid-tl checkpoints` and `rcid-tl consistency`: load, validate everything, compute."""

from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.alignment.correspondence import causal_correspondence, fit_examples
from rcid_tl.alignment.heads import HeadMap, activation_head_map, attention_head_map, proportional_head_map
from rcid_tl.alignment.layers import cka_argmax_layer_map, layer_activations, proportional_layer_map
from rcid_tl.artifacts import write_csv
from rcid_tl.consistency.causal import ConsistencyResult, causal_consistency, check_same_tokenizer
from rcid_tl.consistency.checkpoints import (
    CHECKPOINT_SITES, MIN_EFFECT, Checkpoint, Ranking, carried_share, load_checkpoints, save_checkpoints, select_checkpoints,
)
from rcid_tl.consistency.saturation import SATURATED
from rcid_tl.checks import check_count
from rcid_tl.errors import InputError, parse_choice
from rcid_tl.frames import checkpoints_frame
from rcid_tl.hooks.names import Site
from rcid_tl.metrics import RunMetrics
from rcid_tl.models.loading import model_label
from rcid_tl.plotting.heatmaps import bar_chart
from rcid_tl.sweeps.common import ModelSpec, prepare
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.registry import TaskSpec

AUTO = "auto"


class LayerMap(str, Enum):
    PROPORTIONAL = "proportional"
    CKA = "cka"


class HeadMapping(str, Enum):
    """Which student component stands for each teacher checkpoint (see `rcid_tl.alignment`)."""

    CAUSAL = "causal"  # most similar per-example effect profile, any student layer/head, fitted on held-out examples
    PROPORTIONAL = "proportional"  # same relative head index in the mapped layer (the naive baseline)
    ATTENTION = "attention"  # most similar attention pattern on the task's clean prompts
    ACTIVATION = "activation"  # highest linear CKA of the heads' z activations


class Assignment(str, Enum):
    MANY_TO_ONE = "many-to-one"  # each teacher component its best student component
    ONE_TO_ONE = "one-to-one"  # Hungarian assignment
    ONE_TO_MANY = "one-to-many"  # a teacher component ↔ a set of student components noised together (causal only)


DEFAULT_HEAD_MAP = HeadMapping.CAUSAL  # the map that passes the known-answer suite (rcid-tl validate)


@dataclass(frozen=True)
class SelectionConfig:
    """How checkpoints are chosen automatically."""

    top_k: int = 8
    min_unmodified: int | None = None  # None: half of top_k
    site: Site = Site.Z  # per head: on the embedded teachers no resid_post point carries a partial effect
    batch_size: int = 64
    max_saturation: float | None = SATURATED  # skip points at or above it (None: saturation not measured)
    ranking: Ranking | str = Ranking.EFFECT  # a str is checked and converted

    def __post_init__(self) -> None:
        if self.max_saturation is not None and not self.max_saturation > 0:
            raise InputError(f"--max-saturation must be > 0 (inf keeps saturated points), got {self.max_saturation}")
        if self.top_k < 1:
            raise InputError(f"--top-k must be ≥ 1, got {self.top_k}")
        if self.min_unmodified is not None and not 0 <= self.min_unmodified <= self.top_k:
            raise InputError(f"--min-unmodified must be between 0 and --top-k ({self.top_k}), "
                             f"got {self.min_unmodified}")
        if Site(self.site) not in CHECKPOINT_SITES:
            allowed = ", ".join(s.value for s in CHECKPOINT_SITES)
            raise InputError(f"site {Site(self.site).value!r} cannot be a checkpoint site; allowed: {allowed}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be ≥ 1, got {self.batch_size}")
        object.__setattr__(self, "ranking", parse_choice(Ranking, self.ranking, "--ranking"))

    def meta(self) -> dict[str, Any]:
        return {"top_k": self.top_k, "min_unmodified": self.top_k // 2 if self.min_unmodified is None
                else self.min_unmodified, "site": Site(self.site).value,
                "max_saturation": None if self.max_saturation is None or self.max_saturation == float("inf")
                else self.max_saturation, "ranking": self.ranking.value}

    def select(self, model: TransformerBridge, dataset: ContrastiveDataset) -> list[Checkpoint]:
        return select_checkpoints(model, dataset, top_k=self.top_k, site=Site(self.site),
                                  min_unmodified=self.min_unmodified, batch_size=self.batch_size,
                                  max_saturation=self.max_saturation, ranking=self.ranking)


@dataclass(frozen=True)
class CheckpointsConfig:
    model: ModelSpec
    task: TaskSpec
    selection: SelectionConfig = SelectionConfig()


@dataclass(frozen=True)
class CheckpointsResult:
    checkpoints: list[Checkpoint]
    meta: dict[str, Any]

    def save(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        rows = [(c.layer, "" if c.head is None else c.head, c.position, c.site, c.mean_norm, c.modified,
                 "" if c.saturation is None else c.saturation) for c in self.checkpoints]
        header = ("layer", "head", "position", "site", "mean_norm", "modified", "saturation")
        return [save_checkpoints(out / "checkpoints.json", self.checkpoints, self.meta),
                write_csv(out / "checkpoints.csv", header, rows)]

    def to_frame(self):
        """A pandas DataFrame, one row per selected checkpoint (rcid_tl.frames)."""
        return checkpoints_frame(self)

    def figure(self):
        """Mean ‖h_clean − h_corrupt‖ of each selected checkpoint (a plotly Figure)."""
        site = self.meta.get("selection", {}).get("site", "")
        title = (f"Causal checkpoints at {site}: {self.meta.get('model', '?')} · {self.meta.get('task', '?')}"
                 "<br><sub>mean norm of h_clean − h_corrupt; * modified position</sub>")
        labels = [f"L{c.layer} {c.position}{' *' if c.modified else ''}" for c in self.checkpoints]
        figure = bar_chart(labels, [c.mean_norm for c in self.checkpoints], title, "mean ‖d‖")
        figure.update_xaxes(title_text="checkpoint (layer, position)")
        return figure


def run_checkpoints(config: CheckpointsConfig, model: TransformerBridge | None = None) -> CheckpointsResult:
    """Select causal checkpoints on the model for the task."""
    bridge, dataset = prepare(model or config.model, config.task)
    checkpoints = config.selection.select(bridge, dataset)
    meta = {"model": model_label(bridge), "task": dataset.task, "task_config": dict(dataset.config),
            "n_layers": bridge.cfg.n_layers, "selection": config.selection.meta()}
    return CheckpointsResult(checkpoints, meta)


@dataclass(frozen=True)
class ConsistencyConfig:
    teacher: ModelSpec
    student: ModelSpec
    task: TaskSpec
    checkpoints: str = AUTO  # "auto" or the path of a checkpoints file
    selection: SelectionConfig = SelectionConfig()
    layer_map: LayerMap | str = LayerMap.PROPORTIONAL  # a str is checked and converted
    head_map: HeadMapping | str = DEFAULT_HEAD_MAP
    assignment: Assignment | str = Assignment.MANY_TO_ONE
    fit_n: int = 100  # examples the causal map is fitted on (another seed, none shared with the measured ones)
    # the task the causal map's fit examples are drawn from (None: `task` itself, another seed). A small held-out
    # split has no prompts left over to fit on, so e.g. `tinystories-pronoun` is fitted on `tinystories-pronoun:train`
    fit_task: TaskSpec | None = None
    batch_size: int = 64
    n_bootstrap: int = 1000
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        if self.checkpoints != AUTO and not Path(self.checkpoints).is_file():
            raise InputError(f"--checkpoints must be 'auto' or a checkpoints file; {self.checkpoints!r} not found")
        object.__setattr__(self, "layer_map", parse_choice(LayerMap, self.layer_map, "--layer-map"))
        object.__setattr__(self, "head_map", parse_choice(HeadMapping, self.head_map, "--head-map"))
        object.__setattr__(self, "assignment", parse_choice(Assignment, self.assignment, "--assignment"))
        if self.assignment is Assignment.ONE_TO_MANY and self.head_map is not HeadMapping.CAUSAL:
            raise InputError("--assignment one-to-many needs --head-map causal (a set of student components is "
                             "matched by its joint effect)")
        check_count(self.fit_n, "--fit-n")
        if self.fit_task is not None and self.head_map is not HeadMapping.CAUSAL:
            raise InputError(f"--fit-task is where the causal map is fitted; --head-map {self.head_map.value} fits "
                             "nothing")
        if self.head_map is HeadMapping.CAUSAL and self.fit_n < 3:
            raise InputError(f"--fit-n must be ≥ 3 for a causal map, got {self.fit_n}")
        check_count(self.batch_size, "--batch-size")
        check_count(self.n_bootstrap, "--n-bootstrap")


def run_consistency(
    config: ConsistencyConfig, teacher: TransformerBridge | None = None, student: TransformerBridge | None = None
) -> ConsistencyResult:
    """Causal consistency of the student with the teacher on the task (every input validated before computing)."""
    teacher, dataset = prepare(teacher or config.teacher, config.task)
    if config.checkpoints != AUTO:
        checkpoints = load_checkpoints(config.checkpoints, teacher.cfg.n_layers, dataset.position_names,
                                       teacher.cfg.n_heads)
    student = student or config.student.load()
    check_same_tokenizer(teacher, student)
    dataset.check_context(student.cfg.n_ctx)
    if config.checkpoints == AUTO:
        checkpoints = config.selection.select(teacher, dataset)
    if not checkpoints:
        raise InputError(f"no teacher point at {Site(config.selection.site).value} carries ≥ {MIN_EFFECT:.0%} of "
                         "the effect without saturating it: nothing to compare; try another --site (z: per head), "
                         "--ranking imprint or --max-saturation inf")
    layer_map = _layer_map(config, teacher, student, dataset)
    head_map = _head_map(config, teacher, student, dataset, layer_map, checkpoints)
    correspondence = None
    if config.head_map is HeadMapping.CAUSAL:
        fit = fit_examples(config.fit_task or config.task, dataset, config.fit_n, teacher.tokenizer,
                           min(teacher.cfg.n_ctx, student.cfg.n_ctx))
        correspondence = causal_correspondence(
            teacher, student, fit, [c.patch_site() for c in checkpoints], batch_size=config.batch_size,
            one_to_one=config.assignment is Assignment.ONE_TO_ONE,
            one_to_many=config.assignment is Assignment.ONE_TO_MANY)
    result = causal_consistency(teacher, student, dataset, checkpoints, layer_map, head_map=head_map,
                                correspondence=correspondence, batch_size=config.batch_size,
                                n_bootstrap=config.n_bootstrap, seed=config.bootstrap_seed)
    runs = RunMetrics(torch.tensor(result.header["metric_clean"]), torch.tensor(result.header["metric_corrupt"]))
    result.header["carried_share"] = carried_share(teacher, dataset, checkpoints, runs)
    result.header["config"].update({
        "checkpoints": config.checkpoints if config.checkpoints == AUTO else str(config.checkpoints),
        "selection": config.selection.meta() if config.checkpoints == AUTO else None,
        "layer_map_method": config.layer_map.value, "head_map_method": config.head_map.value,
        "assignment": config.assignment.value, "fit_n": config.fit_n if correspondence is not None else None,
        "fit_task": (config.fit_task or config.task).name if correspondence is not None else None,
        "device": config.teacher.device, "dtype": config.teacher.dtype,
    })
    return result


def _layer_map(config: ConsistencyConfig, teacher, student, dataset) -> dict[int, int]:
    if config.layer_map is LayerMap.PROPORTIONAL:
        return proportional_layer_map(teacher.cfg.n_layers, student.cfg.n_layers)
    site = Site(config.selection.site)
    acts = [[a.flatten(1) for a in layer_activations(m, dataset, site=site, batch_size=config.batch_size)]
            for m in (teacher, student)]  # a per-head site: the layer's heads side by side
    return cka_argmax_layer_map(*acts)


def _head_map(config: ConsistencyConfig, teacher, student, dataset, layer_map, checkpoints) -> HeadMap:
    layers = {c.layer: layer_map[c.layer] for c in checkpoints if c.head is not None and c.layer in layer_map}
    one_to_one = config.assignment is Assignment.ONE_TO_ONE
    if config.head_map is HeadMapping.ATTENTION and layers:
        return attention_head_map(teacher, student, dataset, layers, one_to_one=one_to_one)
    if config.head_map is HeadMapping.ACTIVATION and layers:
        return activation_head_map(teacher, student, dataset, layers, one_to_one=one_to_one)
    return proportional_head_map(teacher.cfg.n_heads, student.cfg.n_heads, layer_map)

