"""The output layout of a function-vector run (`results_fv/relation/<run_id>/...`) and the per-stage run logs.

Every path any stage reads or writes is named here once; logs go to `<base>/logs/` and the injection sweep's folder.
The on-disk names (`stepD_mean_acts/`, `stepE_eval.json`, `step6/`) are kept so that earlier runs stay readable.
"""

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RESULTS_ROOT = Path("results_fv") / "relation"
LOGGER = "rcid_tl.fv"


def slug(text: str) -> str:
    """A file-name-safe form of a model or relation name (the last path component, odd characters → '-')."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(text).rstrip("/")).name or str(text)).strip("-") or "model"


@dataclass(frozen=True)
class RunLayout:
    """Paths under one run's base directory `<out_base>` = `results_fv/relation/<run_id>`."""

    base: Path

    @classmethod
    def for_run(cls, run_id: str, root: Path = RESULTS_ROOT) -> "RunLayout":
        return cls(Path(root) / run_id)

    @property
    def artifacts(self) -> Path:
        return self.base / "artifacts"

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    # the CIE sweep
    @property
    def sampled_trials(self) -> Path:
        return self.artifacts / "sampled_trials.json"

    @property
    def trial_split(self) -> Path:
        return self.artifacts / "trial_split.json"

    @property
    def cie_scores(self) -> Path:
        return self.artifacts / "cie_scores.csv"

    @property
    def aie_scores(self) -> Path:
        return self.artifacts / "aie_scores.csv"

    @property
    def trial_metrics(self) -> Path:
        return self.artifacts / "trial_metrics.jsonl"

    @property
    def mean_acts(self) -> Path:
        return self.artifacts / "stepD_mean_acts"

    def qid_clean_mean(self, qid: str) -> Path:
        return self.mean_acts / f"qid_{slug(qid)}_clean_mean.pt"

    @property
    def global_clean_mean(self) -> Path:
        return self.mean_acts / "global_clean_mean.pt"

    @property
    def legacy_mean_activations(self) -> Path:
        return self.mean_acts / "mean_activations.pt"

    @property
    def cie_log(self) -> Path:
        return self.logs / "stepD_aie.log"

    # function-vector extraction
    @property
    def top_heads(self) -> Path:
        return self.artifacts / "top_heads.json"

    @property
    def fv_by_layer(self) -> Path:
        return self.artifacts / "fv_by_layer.pt"

    @property
    def fv_global(self) -> Path:
        return self.artifacts / "fv_global_resid.pt"

    @property
    def fv_global_meta(self) -> Path:
        return self.artifacts / "fv_global_resid_meta.json"

    @property
    def quick_eval(self) -> Path:
        return self.artifacts / "stepE_eval.json"

    @property
    def extraction_log(self) -> Path:
        return self.logs / "stepE.log"

    # AIE packages over a chosen relation subset
    def aie_package(self, aie_id: str) -> Path:
        return self.artifacts / "aie" / aie_id

    # the injection sweep
    @property
    def injection_dir(self) -> Path:
        return self.artifacts / "step6"

    @property
    def injection_log(self) -> Path:
        return self.injection_dir / "step6.log"

    def injection_layer_results(self, model: str, layer: int, n: int) -> Path:
        return self.injection_dir / f"step6_results_{slug(model)}_layer{layer}_n{n}.json"

    def injection_layer_metadata(self, model: str, layer: int, n: int) -> Path:
        return self.injection_dir / f"metadata_step6_{slug(model)}_layer{layer}_n{n}.json"


@contextmanager
def step_log(path: Path) -> Iterator[logging.Logger]:
    """Within the block, the `rcid_tl.fv` logger also writes to `path` (appending: a re-run keeps its history)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger(LOGGER)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    previous = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield logger
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
        handler.close()
