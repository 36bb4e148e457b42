"""Character-overlap tokenizer alignment on the real GPT-2 tokenizer and the world tokenizer."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.multiteacher.tokens import (
    align_time, batch_char_alignment, char_alignment, hard_alignment, token_spans,
)
from rcid_tl.world import build_tokenizer

TEXTS = [
    "Q: Mary has 3 apples and buys 14. A: 3 + 14 = 17. The answer is 17",
    "When Mary and John went to the store,\nJohn gave a drink to Mary",
    "The war lasted from the year 1732 to the year 1789.",
    "Mary counted 12345 stones, unbelievably",
]


@pytest.fixture(scope="module")
def world_tokenizer():
    return build_tokenizer()


def brute_force(student, teacher):
    """The same matrix by enumerating characters as Python sets (no interval arithmetic)."""
    def owned(spans):
        taken, out = set(), []
        for start, stop in spans:
            chars = set(range(start, stop)) - taken
            taken |= chars
            out.append(chars)
        return out

    s, t = owned(student), owned(teacher)
    return torch.tensor([[len(a & b) / len(a) for b in t] for a in s])


@pytest.mark.parametrize("text", TEXTS)
def test_gpt2_vs_world_rows_sum_to_one_and_match_characters(gpt2_tokenizer, world_tokenizer, text):
    student, teacher = token_spans(world_tokenizer, text), token_spans(gpt2_tokenizer, text)
    a = char_alignment(student, teacher)
    assert a.shape == (len(student), len(teacher))
    assert torch.allclose(a.sum(1), torch.ones(len(student)), atol=1e-6)  # float32 rounding of fractions
    assert (a >= 0).all()
    # every world token owns characters here, so the brute-force character count is an independent reference
    assert torch.allclose(a, brute_force(student, teacher), atol=1e-6)


def test_tokenizers_really_differ(gpt2_tokenizer, world_tokenizer):
    """The pair is a real test: long numbers and unknown words split differently (" 12" "34" "5" vs " 123" "45")."""
    text = TEXTS[3]
    assert token_spans(world_tokenizer, text) != token_spans(gpt2_tokenizer, text)
    a = char_alignment(token_spans(world_tokenizer, text), token_spans(gpt2_tokenizer, text))
    assert not torch.equal(a, torch.eye(*a.shape))


@pytest.mark.parametrize("which", ["gpt2", "world"])
@pytest.mark.parametrize("text", TEXTS)
def test_identical_tokenizations_give_identity(gpt2_tokenizer, world_tokenizer, which, text):
    tok = gpt2_tokenizer if which == "gpt2" else world_tokenizer
    spans = token_spans(tok, text)
    assert torch.equal(char_alignment(spans, spans), torch.eye(len(spans)))


def test_empty_spans_match_special_tokens():
    bos = (0, 0)
    a = char_alignment([bos, (0, 4), (4, 9)], [bos, (0, 2), (2, 4), (4, 9)])
    assert a[0].tolist() == [1, 0, 0, 0]  # BOS ↔ BOS
    assert a[1].tolist() == [0, 0.5, 0.5, 0]
    assert a[2].tolist() == [0, 0, 0, 1]


def test_hard_alignment_is_one_hot_and_keeps_padding():
    soft = torch.tensor([[[0.2, 0.8, 0.0], [0.6, 0.4, 0.0], [0.0, 0.0, 0.0]]])
    hard = hard_alignment(soft)
    assert hard.tolist() == [[[0, 1, 0], [1, 0, 0], [0, 0, 0]]]


def test_batch_alignment_pads_and_align_time_matches_a_loop(gpt2_tokenizer, world_tokenizer):
    a = batch_char_alignment(world_tokenizer, gpt2_tokenizer, TEXTS, t_s=30, t_t=30)
    n_s = [len(token_spans(world_tokenizer, t)) for t in TEXTS]
    for b, n in enumerate(n_s):
        assert torch.allclose(a[b, :n].sum(1), torch.ones(n), atol=1e-6)
        assert a[b, n:].abs().sum() == 0  # padding rows receive nothing
    cache = torch.randn(len(TEXTS), 2, 3, 30, 5)
    out = align_time(cache, a)
    for b in range(len(TEXTS)):
        for s in range(30):
            expected = sum(a[b, s, t] * cache[b, :, :, t] for t in range(30))
            assert torch.allclose(out[b, :, :, s], expected, atol=1e-5)  # float32 sums in another order


def test_bad_inputs_are_one_line(gpt2_tokenizer, world_tokenizer):
    with pytest.raises(InputError, match="more than"):
        batch_char_alignment(world_tokenizer, gpt2_tokenizer, TEXTS, t_s=3, t_t=30)
    with pytest.raises(InputError, match="tokens on both sides"):
        char_alignment([], [(0, 1)])
