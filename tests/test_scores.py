"""The answer scores by token id, on hand-made logits whose answers are known."""

import torch

from rcid_tl.scores import logit_diff_of, prob_diff_of, sharpness_of, year_probs


def test_logit_diff_reads_each_rows_own_tokens():
    logits = torch.tensor([[0.0, 1.0, 3.0], [2.0, 0.5, 0.0]])
    assert torch.equal(logit_diff_of(logits, torch.tensor([2, 0]), torch.tensor([1, 1])), torch.tensor([2.0, 1.5]))


def test_year_scores_of_a_point_mass_and_a_uniform_distribution():
    years = torch.zeros(2, 100)
    years[0, 60] = 1.0  # all mass on 60: above a threshold of 40, below one of 80
    years[1] = 0.01  # uniform over the 100 years
    threshold = torch.tensor([40, 49])
    torch.testing.assert_close(prob_diff_of(years, threshold), torch.tensor([1.0, 0.0]))  # 50 above, 50 at or below
    assert torch.equal(sharpness_of(years, torch.tensor([59, 0])), torch.tensor([1.0, 0.0]))  # YY−1 clamps to 00


def test_year_probs_are_the_full_vocabulary_softmax_at_the_year_ids():
    logits = torch.randn(3, 120, generator=torch.Generator().manual_seed(0))
    ids = torch.arange(20, 120)
    torch.testing.assert_close(year_probs(logits, ids), logits.softmax(-1)[:, 20:], atol=0, rtol=0)
