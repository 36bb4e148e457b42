"""Causal-role correspondence: the selection step recovers a planted permutation (many-to-one and Hungarian),
cross-fitting removes the selection bias that in-sample matching has on pure noise, and on a real model the map
finds a relabelled copy's heads exactly."""

import numpy as np
import pytest

from rcid_tl.alignment.correspondence import match_profiles, profile_correlations, unique_role_correlations


def test_profile_correlations_match_numpy():
    rng = np.random.default_rng(1)
    t, s = rng.normal(size=(3, 50)), rng.normal(size=(5, 50))
    expected = np.corrcoef(np.vstack([t, s]))[:3, 3:]
    np.testing.assert_allclose(profile_correlations(t, s), expected, atol=1e-12)  # float64 sums of 50 terms
    assert (profile_correlations(t, np.zeros((1, 50))) == 0).all()  # an inert student site shares nothing


@pytest.mark.parametrize("one_to_one", [False, True])
def test_a_planted_permutation_is_recovered(one_to_one):
    rng = np.random.default_rng(2)
    teacher = rng.normal(size=(8, 100))
    perm = rng.permutation(8)
    student = np.empty_like(teacher)
    student[perm] = teacher + 0.3 * rng.normal(size=teacher.shape)  # teacher profile i lives at student perm[i]
    chosen, _ = match_profiles(teacher, student, one_to_one=one_to_one)
    assert chosen == perm.tolist()


def test_hungarian_keeps_the_map_one_to_one_where_argmax_does_not():
    # two teacher profiles both closest to student 0; student 1 is the second choice of teacher 1
    teacher = np.array([[1.0, 2, 3, 4, 5, 6], [1, 2, 3, 4, 6, 5]])
    student = np.array([[1.0, 2, 3, 4, 5, 6], [1, 2, 3, 5, 6, 4]])
    assert match_profiles(teacher, student, unique=False)[0] == [0, 0]  # many-to-one
    assert match_profiles(teacher, student, one_to_one=True, unique=False)[0] == [0, 1]


def test_allowed_pairs_are_respected():
    rng = np.random.default_rng(3)
    teacher, student = rng.normal(size=(2, 40)), rng.normal(size=(4, 40))
    student[3] = teacher[0]
    allowed = np.array([[True, True, False, False], [True, True, True, True]])
    assert match_profiles(teacher, student, allowed=allowed)[0][0] in (0, 1)


def test_cross_fitting_removes_the_selection_bias_on_pure_noise():
    """Teacher and 24 student candidates are independent noise: nothing is shared. Choosing the best candidate on
    the measured examples gives a clearly positive r (the maximum of 24 noisy correlations); choosing it on fit
    examples and measuring on others gives r ≈ 0."""
    rng = np.random.default_rng(4)
    trials, n, candidates = 300, 100, 24
    in_sample, cross_fitted = [], []
    for _ in range(trials):
        teacher, student = rng.normal(size=(1, 2 * n)), rng.normal(size=(candidates, 2 * n))
        fit, measured = slice(0, n), slice(n, 2 * n)
        best_in = match_profiles(teacher[:, measured], student[:, measured])[0][0]
        in_sample.append(profile_correlations(teacher[:, measured], student[best_in:best_in + 1, measured])[0, 0])
        best_fit = match_profiles(teacher[:, fit], student[:, fit])[0][0]
        cross_fitted.append(profile_correlations(teacher[:, measured], student[best_fit:best_fit + 1, measured])[0, 0])
    # the expected max of 24 correlations of n = 100 noise draws is about 0.2; a mean of 300 null r's has standard
    # error 0.1 / sqrt(300) ≈ 0.006, so ±0.03 is five standard errors
    assert np.mean(in_sample) > 0.15
    assert abs(np.mean(cross_fitted)) < 0.03


def test_two_teacher_components_merged_into_one_are_both_found_by_their_unique_role():
    """Student component 0 does the work of teacher components 0 and 1 (their effects add); teacher 0's effect is
    four times larger. Plain correlation sends teacher 1 to student 2, a noisy copy of it (r ≈ 0.45 against
    ≈ 0.24 for student 0, whose profile is mostly teacher 0's); net of the other teacher components both teacher
    components find student 0 (r ≈ 1 against 0.45)."""
    rng = np.random.default_rng(5)
    teacher = rng.normal(size=(3, 200)) * np.array([[4.0], [1.0], [1.0]])
    student = np.vstack([teacher[0] + teacher[1], teacher[2], teacher[1] + 2 * rng.normal(size=200),
                         rng.normal(size=200)])
    student = student + 0.05 * rng.normal(size=student.shape)
    assert match_profiles(teacher, student, unique=False)[0] == [0, 2, 1]
    assert match_profiles(teacher, student)[0] == [0, 0, 1]
    r = unique_role_correlations(teacher[:1], student)
    np.testing.assert_allclose(r, profile_correlations(teacher[:1], student), atol=1e-12)  # one profile: plain r
