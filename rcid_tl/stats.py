"""The package's one statistics module: percentile (bootstrap) CIs of a mean and of a difference of means, Welch's
t-test, Pearson r row by row, Spearman's rho (average ranks for ties) and its bootstrap CI, and least-squares
residuals. Every function is seeded, so a study's numbers reproduce exactly.

Empty or too-small inputs give nan rather than raising: a study with one seed in an arm still tabulates.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

N_BOOT = 10_000
# Covariate directions whose singular value is below this share of the largest are treated as absent: two output
# differences that agree to 0.1% carry no separate information (float32 patching noise is ~1e-7 of the signal, so
# the cut sits far above noise and far below any real behavioural difference between two models).
RANK_TOL = 1e-3


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile interval, and the sample size it came from."""

    estimate: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "n": self.n}


@dataclass(frozen=True)
class Welch:
    """Welch's unequal-variance t-test of mean(a) − mean(b)."""

    diff: float
    t: float
    df: float
    p: float
    n_a: int
    n_b: int

    def to_dict(self) -> dict[str, float | int]:
        return {"diff": self.diff, "t": self.t, "df": self.df, "p": self.p, "n_a": self.n_a, "n_b": self.n_b}


def _finite(values) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    return v[np.isfinite(v)]


def percentile_ci(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval of the finite samples (e.g. bootstrap replicates); (nan, nan) when there are none."""
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if not len(samples):
        return float("nan"), float("nan")
    tail = 50 * (1 - confidence)
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean_ci(values, confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """Mean of the finite values with a percentile bootstrap CI (nan bounds for fewer than 2 values)."""
    v = _finite(values)
    if len(v) == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    if len(v) < 2:
        return Interval(float(v.mean()), float("nan"), float("nan"), 1)
    idx = np.random.default_rng(seed).integers(0, len(v), size=(n_boot, len(v)))
    return Interval(float(v.mean()), *percentile_ci(v[idx].mean(axis=1), confidence), len(v))


def bootstrap_diff_ci(a, b, confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> Interval:
    """mean(a) − mean(b), each side resampled independently; n is the smaller side's size."""
    a, b = _finite(a), _finite(b)
    n = min(len(a), len(b))
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0)
    diff = float(a.mean() - b.mean())
    if n < 2:
        return Interval(diff, float("nan"), float("nan"), n)
    rng = np.random.default_rng(seed)
    boot = (a[rng.integers(0, len(a), size=(n_boot, len(a)))].mean(axis=1)
            - b[rng.integers(0, len(b), size=(n_boot, len(b)))].mean(axis=1))
    return Interval(diff, *percentile_ci(boot, confidence), n)


def welch_test(a, b) -> Welch:
    """Two-sided Welch t-test; t, df and p are nan when a side has fewer than 2 values or both have zero variance."""
    a, b = _finite(a), _finite(b)
    diff = float(a.mean() - b.mean()) if len(a) and len(b) else float("nan")
    va = a.var(ddof=1) / len(a) if len(a) > 1 else float("nan")
    vb = b.var(ddof=1) / len(b) if len(b) > 1 else float("nan")
    se2 = va + vb
    if not np.isfinite(se2) or se2 == 0:
        return Welch(diff, float("nan"), float("nan"), float("nan"), len(a), len(b))
    t = diff / np.sqrt(se2)
    df = se2 ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return Welch(diff, float(t), float(df), float(2 * sps.t.sf(abs(t), df)), len(a), len(b))


def spearman_ci(x, y, confidence: float = 0.95, n_boot: int = N_BOOT, seed: int = 0) -> tuple[Interval, float]:
    """Spearman's rho over the pairs where both are finite, a bootstrap CI over pairs, and the rho's p-value."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3:
        return Interval(float("nan"), float("nan"), float("nan"), len(x)), float("nan")
    rho, p = sps.spearmanr(x, y)
    idx = np.random.default_rng(seed).integers(0, len(x), size=(n_boot, len(x)))
    boot = rowwise_pearson(sps.rankdata(x[idx], axis=1), sps.rankdata(y[idx], axis=1))  # nan: a constant resample
    return Interval(float(rho), *percentile_ci(boot, confidence), len(x)), float(p)


def rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r over the last axis for every leading index (nan where a side has zero variance)."""
    x, y = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(-1) / np.sqrt((x * x).sum(-1) * (y * y).sum(-1))


def spearman(x, y) -> float:
    """Spearman's rank correlation: Pearson r of the ranks, tied values sharing their average rank (as
    `scipy.stats.spearmanr`). Where scipy is undefined (a side constant) this is 0, so saved results stay finite."""
    rx, ry = (sps.rankdata(np.asarray(v, dtype=float).ravel()) for v in (x, y))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    return float((rx * ry).sum() / max(float(np.linalg.norm(rx) * np.linalg.norm(ry)), 1e-12))


def residuals(y: np.ndarray, covariates: np.ndarray) -> tuple[np.ndarray, np.ndarray | np.integer]:
    """y minus its least-squares fit on [1, covariates] over the last axis, and the covariates' numerical rank;
    y (..., n), covariates (..., n, k).

    Rank-revealing: the centred covariates are decomposed by SVD and only directions whose singular value is above
    `RANK_TOL` of the largest are projected out. When a student's outputs equal the teacher's, [1, o_T, o_S] is
    singular up to float noise; a plain solve then fits that noise and two solvers disagree in the third decimal,
    while dropping the direction gives the regression on [1, o_T] that the data actually supports."""
    yc = y - y.mean(-1, keepdims=True)
    xc = covariates - covariates.mean(-2, keepdims=True)
    u, s, _ = np.linalg.svd(xc, full_matrices=False)  # u (..., n, k), s (..., k), descending
    keep = s > RANK_TOL * s[..., :1]  # (..., k); none when the covariates are constant
    u = u * keep[..., None, :]
    fitted = (u @ (np.swapaxes(u, -1, -2) @ yc[..., None]))[..., 0]
    return yc - fitted, keep.sum(-1)
