"""The character alignment between the word-level and the digit tokenizer against an independent character count,
and the off-diagonal share the study reports; the shallow layer-coverage map."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.multiteacher.ablation import Arm
from rcid_tl.multiteacher.data import encode_with_spans
from rcid_tl.multiteacher.layers import shallow_layer_map
from rcid_tl.multiteacher.run import MultiTeacherRunConfig
from rcid_tl.multiteacher.tokens import char_alignment, off_diagonal_share
from rcid_tl.distill.config import OptimConfig
from rcid_tl.world.cot import CoTSplit, cot_examples
from rcid_tl.world.tokenizer import build_cot_digit_tokenizer, build_cot_tokenizer

WORDS, DIGITS = build_cot_tokenizer(), build_cot_digit_tokenizer()


def _owner(spans, n_chars):
    # independent count: which token owns each character (spans of one tokenization never overlap here)
    owner = [None] * n_chars
    for j, (a, b) in enumerate(spans):
        for c in range(a, b):
            owner[c] = j
    return owner


@pytest.mark.parametrize("example", cot_examples(CoTSplit.ID, 5, seed=11))
def test_word_to_digit_alignment_is_the_character_count(example) -> None:
    _, _, s_spans = encode_with_spans(WORDS, example)
    _, _, t_spans = encode_with_spans(DIGITS, example)
    a = char_alignment(s_spans, t_spans)
    owner = _owner(t_spans, len(example.text))
    for i, (start, stop) in enumerate(s_spans):
        if stop == start:
            continue  # <|endoftext|>: matched to the teacher's, not counted
        counts = torch.zeros(len(t_spans))
        for c in range(start, stop):
            counts[owner[c]] += 1
        # float32 division of small integers: exact to a few ulps
        assert torch.allclose(a[i], counts / (stop - start), atol=1e-6)


def test_off_diagonal_share_moves_exactly_the_two_digit_numbers() -> None:
    example = cot_examples(CoTSplit.ID, 1, seed=11)[0]
    ids, _, s_spans = encode_with_spans(WORDS, example)
    _, _, t_spans = encode_with_spans(DIGITS, example)
    share = off_diagonal_share(s_spans, t_spans)
    two_digit = torch.tensor([len(WORDS.convert_ids_to_tokens(i).strip()) == 2 and
                              WORDS.convert_ids_to_tokens(i).strip().isdigit() for i in ids])
    assert torch.equal(share > 0.5, two_digit) and torch.allclose(share[two_digit], torch.ones(int(two_digit.sum())))
    assert torch.allclose(share[~two_digit], torch.zeros(int((~two_digit).sum())), atol=1e-6)
    assert torch.allclose(off_diagonal_share(s_spans, s_spans), torch.zeros(len(s_spans)), atol=1e-6)


def test_shallow_coverage_reads_only_the_first_half_of_the_teacher() -> None:
    m = shallow_layer_map(6, 2).matrix()
    assert torch.equal(m[:, 3:], torch.zeros(2, 3)) and torch.equal(m.sum(1), torch.ones(2))
    assert m[1].argmax() == 2  # the last student layer reads the deepest layer of the shallow half
    with pytest.raises(InputError, match="use --layer-map ratio with it"):
        MultiTeacherRunConfig(Arm("a", ("world-gpt2-cot",)), OptimConfig(steps=2), layer_map="cka",
                              layer_coverage="shallow")
