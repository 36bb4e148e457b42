"""`rcid-tl patch`: activation patching over layers × named positions (× heads for `z`), saved with its inputs."""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl.artifacts import write_csv, write_figure, write_json
from rcid_tl.errors import InputError
from rcid_tl.frames import patch_frame
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import PATCHABLE, Direction, PatchSite
from rcid_tl.metrics import TASK_METRIC, check_metric_name, metric_named, metric_readout
from rcid_tl.models.loading import model_label
from rcid_tl.plotting.heatmaps import faceted_heatmaps, layer_heatmap
from rcid_tl.plotting.titles import titled
from rcid_tl.sweeps.common import ModelSpec, parse_layers, parse_positions, prepare, result_header
from rcid_tl.sweeps.prefilter import Method, sweep_effects
from rcid_tl.tasks.registry import TaskSpec


@dataclass(frozen=True)
class PatchConfig:
    model: ModelSpec
    task: TaskSpec
    site: Site = Site.RESID_POST
    layers: str = "all"
    positions: str = "all"
    direction: Direction = Direction.NOISING
    rows_per_forward: int | None = None  # None: as many rows per forward as fit in free memory
    metric: str = TASK_METRIC  # or an OvR metric (CausalQwen), see rcid_tl.metrics
    method: Method = Method.EXACT
    top: int = 10  # sites attribution+exact patches exactly

    def __post_init__(self) -> None:
        check_metric_name(self.metric)
        if Site(self.site) not in PATCHABLE:
            raise InputError(f"site {Site(self.site).value!r} cannot be patched; allowed: "
                             f"{', '.join(s.value for s in PATCHABLE)}")
        if self.rows_per_forward is not None and self.rows_per_forward < 1:
            raise InputError(f"--batch-size must be ≥ 1, got {self.rows_per_forward}")
        if self.top < 1:
            raise InputError(f"--top must be ≥ 1, got {self.top}")


@dataclass(frozen=True)
class PatchResult:
    """JSON-ready header plus one entry per patched site (Δ per example and its mean)."""

    header: dict[str, Any]
    direction: str
    effects: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.header, "kind": "patch", "direction": self.direction, "effects": self.effects}

    def to_frame(self):
        """A tidy pandas DataFrame, one row per (site, layer, [head,] position, example) (rcid_tl.frames)."""
        return patch_frame(self)

    def save(self, out_dir: str | Path) -> list[Path]:
        out = Path(out_dir)
        rows = [(e["site"], e["layer"], e.get("head", ""), e["position"], i, d)
                for e in self.effects for i, d in enumerate(e["per_example"])]
        return [
            write_json(out / "patch.json", self.to_json()),
            write_csv(out / "patch.csv", ("site", "layer", "head", "position", "example", "delta"), rows),
            *write_figure(out / "patch", self.figure()),
        ]

    def figure(self):
        layers = sorted({e["layer"] for e in self.effects})
        positions = list(dict.fromkeys(e["position"] for e in self.effects))
        title = titled(f"Activation patching ({self.direction}, {self.effects[0]['site']})", self.header,
                       "Δ = metric(clean) − metric(patched); positive (red): patching lowered the metric")
        if "head" not in self.effects[0]:
            grid = np.zeros((max(layers) + 1, len(positions)))
            for e in self.effects:
                grid[e["layer"], positions.index(e["position"])] = e["mean"]
            return layer_heatmap(grid, positions, title, "mean Δ", "position")
        n_heads = max(e["head"] for e in self.effects) + 1
        panels = {p: np.zeros((max(layers) + 1, n_heads)) for p in positions}
        for e in self.effects:
            panels[e["position"]][e["layer"], e["head"]] = e["mean"]
        return faceted_heatmaps(panels, title, "mean Δ")


def run_patch(config: PatchConfig, model: TransformerBridge | None = None) -> PatchResult:
    """Patch every requested (layer, position[, head]) site on the task; Δ = metric(clean) − metric(patched)."""
    bridge, dataset = prepare(model or config.model, config.task)
    layers = parse_layers(config.layers, bridge.cfg.n_layers)
    positions = parse_positions(config.positions, dataset)
    site = Site(config.site)
    heads = range(bridge.cfg.n_heads) if site.per_head else [None]
    sites = [PatchSite(site, layer, p, h) for layer in layers for p in positions for h in heads]
    metric, metric_name = metric_named(config.metric, dataset)
    with metric_readout(bridge, config.metric):
        found = sweep_effects(bridge, dataset.batch(), sites, metric, Direction(config.direction),
                              config.rows_per_forward, Method(config.method), config.top)
    delta, metrics = found.delta, found.metrics
    effects = []
    for k, (s, row) in enumerate(zip(sites, delta)):
        entry = {"layer": s.layer, "site": s.site.value, "position": s.position}
        if s.head is not None:
            entry["head"] = s.head
        if found.attribution is not None:  # Δ is exact where "exact" is true, else the attribution estimate
            entry |= {"exact": bool(found.exact[k]), "attribution_mean": float(found.attribution[k].mean())}
        effects.append({**entry, "per_example": row.tolist(), "mean": float(row.mean())})
    header = result_header(model_label(bridge), dataset, config.task.seed, metric_name, metrics)
    header["config"] = {"site": site.value, "layers": list(layers), "positions": list(positions),
                        "direction": Direction(config.direction).value, "rows_per_forward": config.rows_per_forward,
                        "device": config.model.device, "dtype": config.model.dtype,
                        "method": Method(config.method).value, "top": config.top}
    if found.agreement is not None:
        header["agreement"] = found.agreement
    return PatchResult(header, Direction(config.direction).value, effects)
