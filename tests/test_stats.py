"""The study statistics against scipy's own implementations and cases with known answers."""

import numpy as np
import pytest
from scipy import stats as sps

from rcid_tl.stats import (
    bootstrap_diff_ci, bootstrap_mean_ci, percentile_ci, rowwise_pearson, spearman, spearman_ci, welch_test,
)


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


def test_spearman_uses_average_ranks_like_scipy():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=25), rng.normal(size=25)
    assert spearman(x, y) == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)  # no ties
    tied_x, tied_y = np.round(x), np.round(y * 2) / 2  # many ties on both sides
    assert spearman(tied_x, tied_y) == pytest.approx(sps.spearmanr(tied_x, tied_y).statistic, abs=1e-12)
    # a design with no association: ties broken by order would rank it 0,1,2,3 vs 0,2,1,3 and report 0.8
    assert spearman([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    assert spearman([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]) == 0.0  # scipy: nan; kept finite for saved results


def test_percentile_ci_and_rowwise_pearson_against_numpy():
    samples = np.array([np.nan, *np.arange(101.0), np.inf])
    assert percentile_ci(samples, 0.9) == pytest.approx((5.0, 95.0))  # closed form: the 5th and 95th of 0..100
    assert all(np.isnan(percentile_ci(np.array([np.nan]), 0.95)))
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(3, 40)), rng.normal(size=(3, 40))
    assert rowwise_pearson(x, y) == pytest.approx([sps.pearsonr(a, b)[0] for a, b in zip(x, y)], abs=1e-12)
