"""The trained students a study analyses: one run directory per (method, seed), holding `student/` (a Hugging Face
directory), `metrics.json` (from `rcid-tl distill`) and, once measured, `consistency-z-causal/consistency.json`
(head-checkpoint consistency under the validated default: checkpoints by effect, the causal map) and
`consistency-z-index/consistency.json` (the earlier default: checkpoints by imprint, heads by index), kept beside
it so that the two can be compared."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcid_tl.errors import InputError

METHODS = ("standard-kd", "fitnets", "informed-fitnets", "rcid")
SEEDS = (42, 123, 456)
HEAD_CONSISTENCY = "consistency-z-causal"  # sub-directory of a run with the head-checkpoint consistency
INDEX_CONSISTENCY = "consistency-z-index"  # the same under the earlier default (imprint checkpoints, index map)


@dataclass(frozen=True)
class StudentRun:
    """One distilled student and where its saved results are."""

    method: str
    seed: int
    path: Path  # the run directory

    @property
    def label(self) -> str:
        return f"{self.method}-{self.seed}"

    @property
    def model_dir(self) -> Path:
        return self.path / "student"

    def consistency_dir(self, index_map: bool = False) -> Path:
        return self.path / (INDEX_CONSISTENCY if index_map else HEAD_CONSISTENCY)

    def metrics(self) -> dict[str, Any]:
        return _read(self.path / "metrics.json")

    def consistency(self, index_map: bool = False) -> dict[str, Any] | None:
        """The saved head-checkpoint consistency (`index_map`: under the earlier default), or None when it has not
        been measured."""
        path = self.consistency_dir(index_map) / "consistency.json"
        return _read(path) if path.is_file() else None


def find_runs(root: str | Path, methods=METHODS, seeds=SEEDS) -> list[StudentRun]:
    """The finished runs `root/<method>-<seed>` (a student directory present), in method then seed order."""
    root = Path(root)
    runs = [StudentRun(m, s, root / f"{m}-{s}") for m in methods for s in seeds]
    found = [r for r in runs if (r.model_dir / "config.json").is_file()]
    if not found:
        raise InputError(f"no trained students under {str(root)!r} (expected <method>-<seed>/student)")
    return found


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())
