"""Partial correlation and saturation on synthetic effects whose answers are known, and against independent
formulas: the precision-matrix form of partial r and the OLS coefficient t test (identical p by theory)."""

import math

import numpy as np
import pytest
from scipy import stats

from rcid_tl.consistency.saturation import bootstrap_partial, partial_correlation, saturation_ratio
from rcid_tl.stats import rowwise_pearson


def _outputs(rng, n, rho=0.8):
    o_t = rng.normal(10, 2, n)
    o_s = rho * (o_t - 10) + math.sqrt(1 - rho**2) * 2 * rng.normal(size=n) + 10
    return o_t, o_s


def test_partial_r_matches_the_precision_matrix_and_the_ols_t_test():
    rng = np.random.default_rng(0)
    n = 40
    o_t, o_s = _outputs(rng, n)
    x = 0.5 * o_t + rng.normal(size=n)
    y = 0.3 * o_s + 0.4 * x + rng.normal(size=n)
    r, p = partial_correlation(x, y, np.stack([o_t, o_s], 1))
    precision = np.linalg.inv(np.corrcoef(np.stack([x, y, o_t, o_s])))
    assert r == pytest.approx(-precision[0, 1] / math.sqrt(precision[0, 0] * precision[1, 1]), abs=1e-10)
    design = np.column_stack([np.ones(n), x, o_t, o_s])  # y ~ x + covariates: x's coefficient t test
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    sigma2 = resid @ resid / (n - design.shape[1])
    se = math.sqrt(sigma2 * np.linalg.inv(design.T @ design)[1, 1])
    assert p == pytest.approx(2 * stats.t.sf(abs(coef[1] / se), n - design.shape[1]), rel=1e-8)


def test_saturated_effects_are_output_agreement_not_mechanism():
    """Δ = clean − corrupt exactly (the point carries the whole answer): saturation 1, plain r equals r_out, and
    the partial r is undefined — nothing is left once behaviour is accounted for."""
    rng = np.random.default_rng(1)
    o_t, o_s = _outputs(rng, 200)
    assert saturation_ratio(o_t, o_t) == pytest.approx(1.0)
    delta_t, delta_s = o_t.copy(), o_s.copy()  # saturated: each Δ is its model's output difference
    # plain r, as the package computes it (row-wise Pearson, used for every bootstrap r), against scipy's r_out
    assert float(rowwise_pearson(delta_t, delta_s)) == pytest.approx(stats.pearsonr(o_t, o_s)[0], abs=1e-12)
    r, p = partial_correlation(o_t, o_s, np.stack([o_t, o_s], 1))
    assert math.isnan(r) and math.isnan(p)


def test_shared_mechanism_is_found_and_shared_behaviour_is_not():
    rng = np.random.default_rng(2)
    n = 5000
    o_t, o_s = _outputs(rng, n, rho=0.9)
    covariates = np.stack([o_t, o_s], 1)
    shared = rng.normal(size=n)  # a component both models' effects carry, independent of their outputs
    r, _ = partial_correlation(0.2 * o_t + shared, 0.2 * o_s + shared, covariates)
    assert r == pytest.approx(1.0, abs=1e-9)
    d_t, d_s = 0.2 * o_t + rng.normal(size=n), 0.2 * o_s + rng.normal(size=n)  # behaviour only
    assert stats.pearsonr(d_t, d_s)[0] > 0.1  # plain r sees the shared behaviour…
    r, p = partial_correlation(d_t, d_s, covariates)
    assert abs(r) < 0.05 and p > 0.001  # …the partial r does not
    assert saturation_ratio(d_t, o_t) == pytest.approx(0.2, abs=0.01)


def test_bootstrap_partial_on_the_identity_resample_equals_the_point_estimate():
    rng = np.random.default_rng(3)
    n = 30
    o_t, o_s = _outputs(rng, n)
    dt = np.stack([o_t * 0.1 + rng.normal(size=n), o_t])  # the second checkpoint is saturated
    ds = np.stack([o_s * 0.1 + rng.normal(size=n), o_s])
    covariates = np.stack([o_t, o_s], 1)
    boot = bootstrap_partial(dt, ds, covariates, np.arange(n)[None])
    assert boot[0, 0] == pytest.approx(partial_correlation(dt[0], ds[0], covariates)[0], abs=1e-10)
    assert math.isnan(boot[1, 0])


def test_partial_r_when_the_outputs_are_identical_up_to_float_noise():
    """A student whose outputs equal the teacher's: [1, o_T, o_S] is singular up to float noise. The rank-revealing
    regression must give what regressing on [1, o_T] alone gives (numpy's lstsq on the reduced design, an
    independent solver), whatever the noise is."""
    rng = np.random.default_rng(0)
    o_t = rng.normal(size=200)
    x, y = o_t + rng.normal(size=200), 0.5 * o_t + rng.normal(size=200)
    design = np.stack([np.ones(200), o_t], 1)
    resid = lambda v: v - design @ np.linalg.lstsq(design, v, rcond=None)[0]  # noqa: E731
    expected = stats.pearsonr(resid(x), resid(y))[0]
    for scale in (1e-12, 1e-9, 1e-6):
        o_s = o_t + scale * rng.normal(size=200)
        r, p = partial_correlation(x, y, np.stack([o_t, o_s], 1))
        # the kept direction is the pair's common one, (o_T + o_S)/2 up to the noise, so r moves by O(scale) only:
        # the reduced regression, not a fit of the noise (which a plain solve gives: r off in the 3rd decimal)
        assert r == pytest.approx(expected, abs=max(1e-9, 0.1 * scale))
        # one covariate dropped: n − 2 − 1 degrees of freedom, as for the reduced design
        t = expected * np.sqrt(197 / (1 - expected**2))
        assert p == pytest.approx(2 * stats.t.sf(abs(t), 197), rel=1e-6)
