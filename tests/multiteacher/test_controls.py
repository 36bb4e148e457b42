"""Controls: disjoint splits, split hash checked on resume, equal compute, arm statistics, the ablation runner."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.multiteacher.ablation import Arm, RunResult, run_ablation, seed_matrix
from rcid_tl.multiteacher.controls import (
    Compute, check_disjoint, check_equal_compute, compare_arms, disjoint_splits, learning_curve_figure,
    record_or_check_split, split_hash,
)
from rcid_tl.stats import welch_test


def test_splits_are_disjoint_cover_their_fractions_and_hash_stably():
    splits = disjoint_splits(100, (0.6, 0.3, 0.1), seed=3)
    assert [len(splits[k]) for k in ("teacher", "student", "validation")] == [60, 30, 10]
    check_disjoint(splits)
    assert split_hash(splits) == split_hash(disjoint_splits(100, (0.6, 0.3, 0.1), seed=3))
    assert split_hash(splits) != split_hash(disjoint_splits(100, (0.6, 0.3, 0.1), seed=4))
    with pytest.raises(InputError, match="splits 'a' and 'b' share 1 examples"):
        check_disjoint({"a": torch.tensor([1, 2]), "b": torch.tensor([2, 3])})


def test_resume_with_another_split_is_refused(tmp_path):
    record_or_check_split(tmp_path, "abc")
    record_or_check_split(tmp_path, "abc")  # same split: fine
    with pytest.raises(InputError, match="records data split abc, this run's is xyz"):
        record_or_check_split(tmp_path, "xyz")


def test_unequal_compute_is_named():
    same = Compute(10, 160, 5000)
    assert check_equal_compute({"a": same, "b": same}) == same
    with pytest.raises(InputError, match="unequal compute: b used"):
        check_equal_compute({"a": same, "b": Compute(10, 160, 4999)})


def test_compare_arms_uses_the_shared_welch_test():
    scores = {"baseline": [0.1, 0.2, 0.15], "x": [0.3, 0.35, 0.4]}
    out = compare_arms(scores, "baseline")
    assert out["x"]["vs_baseline"]["welch"] == welch_test(scores["x"], scores["baseline"]).to_dict()
    assert out["x"]["vs_baseline"]["diff"]["estimate"] == pytest.approx(0.2)
    assert "vs_baseline" not in out["baseline"]


def test_seed_matrix_and_runner():
    arms = seed_matrix(["t1", "t2"])
    names = [a.name for a in arms]
    assert {"baseline", "routing-learned", "routing-similarity", "k-only", "v-only", "k+v", "hard-alignment", "flat",
            "structured-per-head-uniform", "structured-shared-random", "single-t1", "single-t2"} == set(names)
    small = [a for a in arms if a.name in ("baseline", "flat")]
    result = run_ablation(small, [0, 1], lambda arm, seed: RunResult(seed / 10, Compute(5, 80, 900 + seed), "h", {}))
    assert result["compute"] == {"0": {"steps": 5, "examples": 80, "tokens": 900},
                                 "1": {"steps": 5, "examples": 80, "tokens": 901}}  # seeds order the data apart
    assert result["comparison"]["flat"]["mean"]["estimate"] == pytest.approx(0.05)
    with pytest.raises(InputError, match="unequal compute"):
        run_ablation(small, [0, 1], lambda arm, seed: RunResult(0.0, Compute(5, 80, 900 + (arm.name == "flat")),
                                                              "h", {}))
    with pytest.raises(InputError, match="different data splits"):
        run_ablation(small, [0], lambda arm, seed: RunResult(0.0, Compute(5, 80, 900), arm.name, {}))


def test_arm_rejects_bad_settings():
    with pytest.raises(InputError, match="unknown fusion 'mean'; allowed: fixed, similarity, learned"):
        Arm("x", ("a",), fusion="mean")
    with pytest.raises(InputError, match="got 1 teacher weights for 2 teachers"):
        Arm("x", ("a", "b"), fixed_weights=(1.0,))
    with pytest.raises(InputError, match="teacher weights apply to fixed fusion only, not learned"):
        Arm("x", ("a", "b"), fusion="learned", fixed_weights=(1.0, 2.0))


def test_learning_curves_skip_rows_without_the_key():
    curves = {"a": [{"step": 1, "ce": 2.0}, {"step": 2}], "b": [{"step": 1, "ce": 1.5}, {"step": 2, "ce": 1.0}]}
    fig = learning_curve_figure(curves, "ce", "ce")
    assert [(list(t.x), list(t.y)) for t in fig.data] == [([1], [2.0]), ([1, 2], [1.5, 1.0])]
