"""The study statistics against scipy's own implementations and cases with known answers."""

import numpy as np
import pytest
from scipy import stats as sps

from rcid_tl.stats import bootstrap_diff_ci, bootstrap_mean_ci, spearman_ci, welch_test


def test_welch_matches_scipy():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 7), rng.normal(0.8, 2.5, 11)
    ours = welch_test(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    assert ours.t == pytest.approx(ref.statistic, rel=1e-12)
    assert ours.p == pytest.approx(ref.pvalue, rel=1e-10)
    assert ours.df == pytest.approx(ref.df, rel=1e-12)


def test_welch_degenerate_is_nan():
    assert np.isnan(welch_test([1.0], [2.0, 3.0]).p)
    assert np.isnan(welch_test([1.0, 1.0], [1.0, 1.0]).t)


def test_mean_ci_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small = bootstrap_mean_ci(rng.normal(3, 1, 10))
    large = bootstrap_mean_ci(rng.normal(3, 1, 1000))
    assert small.low < small.estimate < small.high
    assert large.high - large.low < (small.high - small.low) / 5
    assert large.low < 3 < large.high
    assert bootstrap_mean_ci([np.nan, 2.0]).n == 1


def test_diff_ci_separates_shifted_samples():
    rng = np.random.default_rng(2)
    ci = bootstrap_diff_ci(rng.normal(1, 0.1, 50), rng.normal(0, 0.1, 40))
    assert ci.estimate == pytest.approx(1, abs=0.1) and ci.low > 0.9 and ci.n == 40


def test_spearman_matches_scipy_and_monotone_is_one():
    rng = np.random.default_rng(3)
    x = rng.normal(size=30)
    y = x + rng.normal(size=30)
    rho, p = spearman_ci(x, y)
    ref = sps.spearmanr(x, y)
    assert rho.estimate == pytest.approx(ref.statistic) and p == pytest.approx(ref.pvalue)
    assert rho.low < rho.estimate < rho.high
    assert spearman_ci(x, np.exp(x))[0].estimate == pytest.approx(1.0)
