"""Each experiment's analysis on small hand-made results whose answers are known, checked against scipy where it
has the same statistic."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from rcid_tl.study.comparison import compare_methods
from rcid_tl.study.preservation import summarise_preservation, verdict
from rcid_tl.study.probes import fold_accuracies, pool_seeds, selectivity
from rcid_tl.study.retention import MIN_TEACHER_EFFECT, ratio
from rcid_tl.study.robustness import correlate, relative


def test_retention_ratio_and_its_undefined_cells():
    assert ratio(1.5, 3.0) == (0.5, None)
    assert ratio(-2.0, 4.0) == (-0.5, None)
    assert ratio(None, 3.0)[0] is None and "student" in ratio(None, 3.0)[1]
    assert ratio(1.0, None)[0] is None and "teacher" in ratio(1.0, None)[1]
    tiny = ratio(1.0, MIN_TEACHER_EFFECT / 2)
    assert tiny[0] is None and "below" in tiny[1]


def test_selectivity_is_task_minus_control_per_fold():
    s = selectivity([0.9, 0.8, 1.0], [0.5, 0.6, 0.4])
    assert s["estimate"] == pytest.approx(0.4)
    assert s["low"] <= 0.4 <= s["high"] and s["n"] == 3


def test_pooling_over_seeds_and_a_single_seed_keeps_its_fold_intervals():
    def model(task: float) -> dict:
        interval = {"estimate": task, "low": task - 0.1, "high": task + 0.1, "n": 5}
        return {"layers": {"h:0": {"task": interval, "control": interval, "shuffled": interval,
                                   "selectivity": {**interval, "estimate": task - 0.1}}}}

    pooled = pool_seeds([model(0.6), model(0.8)])["h:0"]
    assert pooled["task"]["estimate"] == pytest.approx(0.7) and pooled["task"]["n"] == 2
    assert pooled["selectivity"]["estimate"] == pytest.approx(0.6)
    single = pool_seeds([model(0.6)])["h:0"]
    assert single["task"] == {"estimate": 0.6, "low": 0.5, "high": 0.7, "n": 5}  # over its 5 folds, not undefined


def test_probe_reads_a_linear_label_and_not_an_absent_one():
    rng = np.random.default_rng(0)
    task = rng.integers(0, 2, 200)
    control = rng.integers(0, 4, 200)  # not in the features
    x = rng.normal(size=(200, 8))
    x[:, 0] += 4 * (2 * task - 1)
    assert fold_accuracies(x, task, 4, 0).mean() > 0.95
    assert fold_accuracies(x, control, 4, 0).mean() < 0.45  # chance is about 0.25–0.3


def test_relative_robustness():
    scores = {"in-distribution": {"accuracy": 0.8, "metric": {"estimate": 5.0}},
              "held-out names": {"accuracy": 0.4, "metric": {"estimate": 2.0}}}
    out = relative(scores)["held-out names"]
    assert out["accuracy_ratio"] == pytest.approx(0.5)
    assert out["metric_change"] == pytest.approx(-3.0)


def test_correlation_matches_scipy_and_a_monotone_relation_gives_one():
    rng = np.random.default_rng(1)
    mech = rng.normal(size=12)
    noisy = mech + rng.normal(size=12)
    rows = [{"mechanistic_r": m, "mean_r": -m, "relative": {"split": {"accuracy_ratio": m ** 3, "metric_change": v}}}
            for m, v in zip(mech, noisy)]
    found = {(c["consistency"], c["robustness"]): c for c in correlate(rows)}
    assert found["mechanistic_r", "accuracy_ratio"]["rho"]["estimate"] == pytest.approx(1.0)
    assert found["mean_r", "accuracy_ratio"]["rho"]["estimate"] == pytest.approx(-1.0)
    rho, p = sps.spearmanr(mech, noisy)
    assert found["mechanistic_r", "metric_change"]["rho"]["estimate"] == pytest.approx(rho)
    assert found["mechanistic_r", "metric_change"]["p"] == pytest.approx(p)
    assert found["mechanistic_r", "metric_change"]["rho"]["n"] == 12


def test_method_comparison_and_factor_steps():
    values = {"fitnets": [0.9, 1.0, 0.95], "informed-fitnets": [0.6, 0.8, 0.7], "rcid": [0.5, 0.5, 0.6]}
    rows = [{"method": m, "seed": i, "accuracy": v} for m, vs in values.items() for i, v in enumerate(vs)]
    out = compare_methods(rows, measures=("accuracy",))
    assert out["per_method"]["rcid"]["accuracy"]["estimate"] == pytest.approx(16 / 30)
    where = out["factors"]["choosing where"]["accuracy"]
    assert where["diff_ci"]["estimate"] == pytest.approx(0.7 - 0.95)
    t, p = sps.ttest_ind(values["informed-fitnets"], values["fitnets"], equal_var=False)
    assert where["welch"]["t"] == pytest.approx(t) and where["welch"]["p"] == pytest.approx(p)
    assert out["factors"]["matching what"]["accuracy"]["diff_ci"]["estimate"] == pytest.approx(16 / 30 - 0.7)
    assert set(out["pairs"]) == {"informed-fitnets − fitnets", "rcid − fitnets", "rcid − informed-fitnets"}


def test_preservation_verdicts():
    def row(method, acc, mech, low):
        return {"method": method, "seed": 0, "accuracy": acc, "teacher_accuracy": 1.0, "mechanistic_r": mech,
                "mechanistic_r_ci": [low, low + 0.2], "mean_r": mech, "r_out": 0.9}

    close_shared, close_not, far = row("a", 0.99, 0.5, 0.3), row("b", 0.97, 0.0, -0.1), row("c", 0.5, 0.0, -0.1)
    assert verdict(close_shared) == {"accuracy_close": True, "mechanism_shared": True}
    assert verdict(close_not) == {"accuracy_close": True, "mechanism_shared": False}
    summary = summarise_preservation([close_shared, close_not, far])
    assert summary["accuracy_close"] == ["a-0", "b-0"]
    assert summary["accuracy_close_and_mechanism_shared"] == ["a-0"]
    assert summary["mechanistic_r_of_close"]["estimate"] == pytest.approx(0.25)
    assert math.isnan(summary["per_method"]["c"]["accuracy_gap"]["low"])  # one seed: no interval
