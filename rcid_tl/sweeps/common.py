"""What every sweep result records: the config, the exact token ids, per-example clean/corrupt metrics, the version."""

from dataclasses import dataclass
from typing import Any

import torch
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.checks import check_device
from rcid_tl.errors import InputError
from rcid_tl.metrics import RunMetrics
from rcid_tl.models.loading import load_model, parse_dtype
from rcid_tl.progress import stage
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.registry import TaskSpec, build_task


@dataclass(frozen=True)
class ModelSpec:
    """Which model to load, where and in what precision."""

    name: str
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        # checked here, before loading anything, so a missing GPU fails at once rather than after a model load
        parse_dtype(self.dtype)
        check_device(self.device)

    def load(self) -> TransformerBridge:
        return load_model(self.name, device=self.device, dtype=parse_dtype(self.dtype))


def prepare(model: ModelSpec | TransformerBridge, task: TaskSpec) -> tuple[TransformerBridge, ContrastiveDataset]:
    """Load the model (unless given one) and build the task with its tokenizer."""
    bridge = model.load() if isinstance(model, ModelSpec) else model
    torch.manual_seed(task.seed)
    with stage(f"building the {task.name} examples"):
        return bridge, build_task(task, bridge.tokenizer, bridge.cfg.n_ctx)


def parse_layers(text: str, n_layers: int) -> tuple[int, ...]:
    """`all` or a comma list like `0,3`, each checked against the model's depth."""
    if text.strip() == "all":
        return tuple(range(n_layers))
    try:
        layers = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise InputError(f"bad layer list {text!r}; write 'all' or comma-separated integers like 0,3") from None
    for layer in layers:
        if not 0 <= layer < n_layers:
            raise InputError(f"layer {layer} is out of range; this model has layers 0..{n_layers - 1}")
    return layers


def parse_positions(text: str, dataset: ContrastiveDataset) -> tuple[str, ...]:
    """`all` (every named position of the task) or a comma list of position names."""
    if text.strip() == "all":
        return dataset.position_names
    return tuple(dataset.check_positions([p.strip() for p in text.split(",")]))


def result_header(model_name: str, dataset: ContrastiveDataset, seed: int, metric: str,
                  metrics: RunMetrics) -> dict[str, Any]:
    """The keys both patch.json and knockout.json start with (see the README's JSON contract)."""
    return {
        "rcid_tl_version": __version__,
        "model": model_name,
        "task": dataset.task,
        "seed": seed,
        "metric": metric,
        "task_config": dict(dataset.config),
        "examples": [e.to_json() for e in dataset.examples],
        "metric_clean": metrics.clean.tolist(),
        "metric_corrupt": metrics.corrupt.tolist(),
    }
