"""Rigorous controls for comparing training arms: disjoint teacher / student / validation
splits, a hash of the data split recorded with every run and checked on resume, equal compute (same steps and
tokens) asserted across arms, several seeds, and arm-vs-baseline statistics from rcid_tl.stats."""

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import plotly.graph_objects as go
import torch
from torch import Tensor

from rcid_tl.artifacts import write_json
from rcid_tl.errors import InputError
from rcid_tl.stats import bootstrap_diff_ci, bootstrap_mean_ci, welch_test

SPLITS = ("teacher", "student", "validation")


def disjoint_splits(n: int, fractions: Sequence[float] = (0.7, 0.2, 0.1), seed: int = 0) -> dict[str, Tensor]:
    """A seeded permutation of range(n) cut into the teacher's, the student's and the validation examples: no index
    is in two splits (the teacher never saw the student's or the validation data, the student never saw validation)."""
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or sum(fractions) > 1 + 1e-9:
        raise InputError(f"split fractions must be three positive numbers summing to ≤ 1, got {list(fractions)}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    sizes = [int(f * n) for f in fractions]
    if min(sizes) == 0:
        raise InputError(f"{n} examples are too few for split fractions {list(fractions)}: a split would be empty")
    bounds = [0, sizes[0], sizes[0] + sizes[1], sum(sizes)]
    return {name: order[bounds[i] : bounds[i + 1]].sort().values for i, name in enumerate(SPLITS)}


def check_disjoint(splits: Mapping[str, Tensor]) -> None:
    """An InputError naming the first two splits that share an example."""
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = set(splits[a].tolist()) & set(splits[b].tolist())
            if shared:
                raise InputError(f"splits {a!r} and {b!r} share {len(shared)} examples (e.g. {min(shared)})")


def split_hash(splits: Mapping[str, Tensor], tokens: Tensor | None = None) -> str:
    """sha256 over each split's indices (and, when given, the token ids of the whole data set): equal hashes mean
    the same examples in the same splits, so two runs or a run and its resume trained and validated alike."""
    digest = hashlib.sha256()
    for name in sorted(splits):
        digest.update(name.encode())
        digest.update(splits[name].to(torch.int64).contiguous().numpy().tobytes())
    if tokens is not None:
        digest.update(tokens.to(torch.int64).contiguous().numpy().tobytes())
    return digest.hexdigest()


def record_or_check_split(run_dir: Path, digest: str) -> None:
    """Write `run_dir/split.json` on a fresh run; on a resume, raise unless the recorded hash is `digest`."""
    path = Path(run_dir) / "split.json"
    if path.is_file():
        saved = json.loads(path.read_text()).get("split_hash")
        if saved != digest:
            raise InputError(f"{path} records data split {saved}, this run's is {digest}: resuming would train on "
                             f"other examples; use another output directory")
        return
    write_json(path, {"split_hash": digest})


@dataclass(frozen=True)
class Compute:
    """What an arm spent: optimizer steps, examples and (non-padding) student tokens seen."""

    steps: int
    examples: int
    tokens: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def check_equal_compute(runs: Mapping[str, Compute]) -> Compute:
    """The common budget of all arms, or an InputError naming an arm that trained for more or less."""
    if not runs:
        raise InputError("no runs to compare")
    (first_name, first), *rest = runs.items()
    for name, compute in rest:
        if compute != first:
            raise InputError(f"unequal compute: {name} used {compute.to_dict()}, {first_name} used {first.to_dict()}")
    return first


def compare_arms(scores: Mapping[str, Sequence[float]], baseline: str, seed: int = 0) -> dict[str, dict]:
    """Per arm: its mean with a bootstrap CI over seeds, and against `baseline` the difference of means with a
    bootstrap CI and Welch's t-test (shared rcid_tl.stats, seeded)."""
    if baseline not in scores:
        raise InputError(f"baseline arm {baseline!r} is not among the arms {sorted(scores)}")
    out = {}
    for arm, values in scores.items():
        row = {"mean": bootstrap_mean_ci(values, seed=seed).to_dict(), "values": list(values)}
        if arm != baseline:
            row["vs_baseline"] = {"diff": bootstrap_diff_ci(values, scores[baseline], seed=seed).to_dict(),
                                  "welch": welch_test(values, scores[baseline]).to_dict()}
        out[arm] = row
    return out


def learning_curve_figure(curves: Mapping[str, Sequence[Mapping[str, float | int]]], key: str, title: str):
    """One line per run of `key` against step, from train-log rows ({"step": ..., key: ...})."""
    fig = go.Figure()
    for name, rows in curves.items():
        kept = [row for row in rows if key in row]
        fig.add_scatter(x=[row["step"] for row in kept], y=[row[key] for row in kept], mode="lines", name=name)
    fig.update_layout(title=title, xaxis_title="step", yaxis_title=key)
    return fig
