"""Separating mechanism from behaviour in causal consistency.

Noising a point that carries the whole answer (e.g. the residual stream at the answer position) moves the output to
the corrupt run's, so Δ there equals the output difference clean − corrupt: Pearson(Δ_T, Δ_S) at such a point is just
the correlation of the two models' behaviour. Three quantities say how much of r is mechanism:

- r_out: Pearson of the teacher's and the student's output differences (the behavioural baseline);
- the saturation ratio mean Δ / mean(clean − corrupt) (1: the point carries the whole effect);
- the partial correlation of Δ_T and Δ_S controlling for both output differences: what the two effects share beyond
  what each model's behaviour explains (residuals of least squares on [1, o_T, o_S], correlated; rank-revealing, so identical outputs are one
  covariate, not a singular pair).
"""

import math
import warnings

import numpy as np
from scipy import stats

from rcid_tl.stats import percentile_ci, residuals, rowwise_pearson

SATURATED = 0.9  # teacher saturation ratio at or above which a checkpoint measures behaviour, not mechanism
FLAT_TOL = 1e-5  # relative spread below which a vector is float noise (float32 patching noise is ~1e-7)


def saturation_ratio(delta: np.ndarray, output_diff: np.ndarray) -> float:
    """mean Δ / mean(clean − corrupt); nan when the model's mean output difference is zero."""
    denominator = float(np.mean(output_diff))
    return float(np.mean(delta)) / denominator if denominator != 0 else math.nan


def flat(v: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray | np.bool_:
    """Whether `v` is constant over its last axis up to float noise, relative to the size of `scale` (default `v`):
    an inert patch's Δ, a resample of copies of one example, or a residual the outputs explain entirely."""
    return np.ptp(v, axis=-1) <= FLAT_TOL * (1.0 + np.abs(v if scale is None else scale).max(axis=-1))


def partial_correlation(x: np.ndarray, y: np.ndarray, covariates: np.ndarray) -> tuple[float, float]:
    """Partial Pearson r of x and y given `covariates` (n, k), and its two-sided p (t test, n − 2 − k degrees of
    freedom, k the covariates' numerical rank); (nan, nan) when x or y is fully explained by the covariates."""
    (rx, rank), (ry, _) = residuals(x, covariates), residuals(y, covariates)
    if flat(rx, x) or flat(ry, y):
        return math.nan, math.nan
    r = float(np.clip(stats.pearsonr(rx, ry)[0], -1.0, 1.0))
    dof = len(x) - 2 - int(rank)
    if dof < 1:
        return r, math.nan
    t = r * math.sqrt(dof / max(1e-300, 1 - r * r))
    return r, float(2 * stats.t.sf(abs(t), dof))


def bootstrap_partial(dt: np.ndarray, ds: np.ndarray, covariates: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Partial r per (checkpoint, resample): dt, ds (checkpoint, n), covariates (n, k), idx (boot, n) example
    indices; nan where a resample leaves a residual constant."""
    cov = covariates[idx]  # (boot, n, k)
    out = np.full((dt.shape[0], idx.shape[0]), np.nan)
    for k in range(dt.shape[0]):
        x, y = dt[k][idx], ds[k][idx]  # (boot, n)
        (rx, _), (ry, _) = residuals(x, cov), residuals(y, cov)
        out[k] = np.where(flat(rx, x) | flat(ry, y), np.nan, rowwise_pearson(rx, ry))
    return out


def mean_ci(r: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile CI of the mean over checkpoints of r (checkpoint, resample), undefined (nan) entries left out of
    each resample's mean; (nan, nan) without checkpoints."""
    if not len(r):
        return math.nan, math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a resample where r is undefined at every checkpoint
        return percentile_ci(np.nanmean(np.where(np.isfinite(r), r, np.nan), axis=0), confidence)
