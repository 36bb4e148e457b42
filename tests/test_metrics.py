"""Metrics are pure per-example functions of answer-position logits, written out by hand here on small tensors."""

import jaxtyping
import pytest
import torch

from rcid_tl.metrics import answer_logits, cutoff_sharpness, logit_diff, prob_diff
from rcid_tl.tasks.base import Batch


def _batch(correct, wrong, threshold=None) -> Batch:
    n = len(correct)
    long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
    return Batch(clean=torch.zeros(n, 3, dtype=torch.long), corrupt=torch.zeros(n, 3, dtype=torch.long),
                 answer_pos=long([2] * n), correct=long(correct), wrong=long(wrong), positions={},
                 template=long([0] * n), threshold=None if threshold is None else long(threshold))


def test_logit_diff_per_example():
    logits = torch.tensor([[1.0, 3.0, -2.0], [0.5, 0.0, 4.0]])
    torch.testing.assert_close(logit_diff(logits, _batch([1, 2], [2, 0])), torch.tensor([5.0, 3.5]))


def test_answer_logits_picks_each_rows_position():
    logits = torch.arange(2 * 3 * 4, dtype=torch.float).view(2, 3, 4)
    torch.testing.assert_close(answer_logits(logits, torch.tensor([2, 0])), torch.stack([logits[0, 2], logits[1, 0]]))


def test_prob_diff_and_cutoff_sharpness_on_a_three_year_vocabulary():
    year_ids = torch.arange(100)  # the vocabulary is the 100 years, in order
    logits = torch.full((1, 100), -1e9)
    logits[0, [40, 41, 60]] = torch.log(torch.tensor([0.2, 0.3, 0.5]))  # p(40)=.2, p(41)=.3, p(60)=.5
    batch = _batch([41], [39], threshold=[40])
    torch.testing.assert_close(prob_diff(logits, batch, year_ids), torch.tensor([0.8 - 0.2]))  # y>40 vs y≤40
    torch.testing.assert_close(cutoff_sharpness(logits, batch, year_ids), torch.tensor([0.3 - 0.0]))


def test_prob_diff_needs_a_threshold():
    with pytest.raises(ValueError, match="needs Greater-Than examples"):
        prob_diff(torch.zeros(1, 100), _batch([0], [1]), torch.arange(100))


def test_shapes_are_checked_at_runtime():
    """The suite runs the library under jaxtyping + beartype: a batch-size mismatch is caught at the call."""
    with pytest.raises(jaxtyping.TypeCheckError):
        answer_logits(torch.zeros(2, 3, 4), torch.tensor([0, 1, 2]))
