"""The multi-teacher ablation matrix (controls, A/B table) as named arms, and a runner that trains every
arm for every seed through one callable, asserts equal compute and one data split across all runs, and compares
each arm with the baseline."""

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from rcid_tl.errors import InputError
from rcid_tl.multiteacher.aligner import Projection, parse_projection
from rcid_tl.multiteacher.controls import Compute, check_equal_compute, compare_arms
from rcid_tl.multiteacher.fusion import Fusion, check_fixed_weights, parse_fusion
from rcid_tl.multiteacher.loss import StructuralWeights


@dataclass(frozen=True)
class Arm:
    """One training configuration of the multi-teacher study."""

    name: str
    teachers: tuple[str, ...]
    fusion: Fusion | str = Fusion.FIXED
    fixed_weights: tuple[float, ...] | None = None  # None: equal weights
    projection: Projection | str = Projection.STRUCTURED
    share_dim: bool = True
    init_uniform: bool = True
    soft_alignment: bool = True
    alphas: StructuralWeights = StructuralWeights()

    def __post_init__(self) -> None:
        if not self.teachers:
            raise InputError(f"arm {self.name!r} has no teachers")
        object.__setattr__(self, "fusion", parse_fusion(self.fusion))
        object.__setattr__(self, "projection", parse_projection(self.projection))
        if self.fixed_weights is not None and self.fusion is not Fusion.FIXED:
            raise InputError(f"teacher weights apply to fixed fusion only, not {self.fusion.value}")
        if self.fixed_weights is not None:
            object.__setattr__(self, "fixed_weights", check_fixed_weights(self.fixed_weights, len(self.teachers)))

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(fusion=self.fusion.value, projection=self.projection.value)
        return d


@dataclass(frozen=True)
class RunResult:
    """One arm at one seed: its score, what it spent, the data split it used, and its logs."""

    score: float
    compute: Compute
    split_hash: str
    extra: dict


def seed_matrix(teachers: Sequence[str]) -> list[Arm]:
    """The ablations around a two-teacher, fixed-weight, structured, soft-aligned K+V+attention baseline:
    routing (fixed / similarity / learned), K-only / V-only / K+V, hard vs soft alignment, flat vs structured ×
    shared / per-head dimension projection × uniform / random head-mixing init, and each teacher alone."""
    base = Arm("baseline", tuple(teachers))
    arms = [base]
    arms += [replace(base, name=f"routing-{f.value}", fusion=f) for f in (Fusion.SIMILARITY, Fusion.LEARNED)]
    arms += [replace(base, name="k-only", alphas=StructuralWeights(k=1.0, v=0.0, attn=0.0)),
             replace(base, name="v-only", alphas=StructuralWeights(k=0.0, v=1.0, attn=0.0)),
             replace(base, name="k+v", alphas=StructuralWeights(k=1.0, v=1.0, attn=0.0)),
             replace(base, name="hard-alignment", soft_alignment=False),
             replace(base, name="flat", projection=Projection.FLAT),
             replace(base, name="structured-shared-random", init_uniform=False),
             replace(base, name="structured-per-head-uniform", share_dim=False)]
    arms += [replace(base, name=f"single-{t}", teachers=(t,)) for t in teachers]
    return arms


def run_ablation(arms: Sequence[Arm], seeds: Sequence[int], run_arm: Callable[[Arm, int], RunResult],
                 baseline: str = "baseline", on_result: Callable[[Arm, int, RunResult], None] | None = None) -> dict:
    """Every arm × seed through `run_arm`, then: one data split for all runs (hash), equal compute (steps, examples,
    tokens) across the arms at each seed, and per arm the mean score with a CI and its difference from `baseline`
    (CI and Welch test)."""
    names = [arm.name for arm in arms]
    if len(set(names)) != len(names) or baseline not in names:
        raise InputError(f"arm names must be unique and include the baseline {baseline!r}, got {names}")
    if len(seeds) < 1 or len(set(seeds)) != len(seeds):
        raise InputError(f"need distinct seeds, got {list(seeds)}")
    results: dict[str, dict[int, RunResult]] = {}
    for arm in arms:
        for seed in seeds:
            result = run_arm(arm, seed)
            results.setdefault(arm.name, {})[seed] = result
            if on_result is not None:
                on_result(arm, seed, result)
    hashes = {r.split_hash for per_seed in results.values() for r in per_seed.values()}
    if len(hashes) != 1:
        raise InputError(f"runs used {len(hashes)} different data splits; every arm must see the same split")
    # equal compute across arms at each seed (a seed fixes the data order, hence the token count)
    compute = {s: check_equal_compute({f"{a}/seed {s}": per[s].compute for a, per in results.items()}).to_dict()
               for s in seeds}
    scores = {arm: [per[s].score for s in seeds] for arm, per in results.items()}
    return {"arms": [arm.to_dict() for arm in arms], "seeds": list(seeds), "split_hash": hashes.pop(),
            "compute": {str(s): c for s, c in compute.items()}, "comparison": compare_arms(scores, baseline),
            "runs": {arm: {str(s): {"score": r.score, **r.extra} for s, r in per.items()}
                     for arm, per in results.items()}}
