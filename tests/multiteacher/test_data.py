"""CoT batches for several teachers: compressed student reasoning, token spans, composed alignments."""

import torch

from rcid_tl.multiteacher.data import Reasoning, compress, encode_side, encode_with_spans, student_examples, \
    teacher_alignment
from rcid_tl.world.cot import CoTSplit, Segment, cot_examples, encode_example
from rcid_tl.world.tokenizer import build_cot_tokenizer

EXAMPLES = cot_examples(CoTSplit.TRAIN, 6, seed=5)


def test_compressed_reasoning_keeps_only_results():
    ex = EXAMPLES[0]
    short = compress(ex)
    assert short.prompt == ex.prompt and short.answer == ex.answer
    assert "=" not in short.reasoning and short.reasoning.endswith("The answer is")
    assert short.reasoning.split()[-5:] == [ex.answer, ".", "The", "answer", "is"]  # the last result is the answer


def test_spans_follow_encode_example_and_the_text():
    tok = build_cot_tokenizer()
    for ex in EXAMPLES:
        ids, segments, spans = encode_with_spans(tok, ex)
        assert (ids, segments) == encode_example(tok, ex)
        for token, (a, b) in zip(ids[1:-1], spans[1:-1]):
            assert ex.text[a:b].strip() == tok.decode([token]).strip()


def test_same_tokenizer_full_reasoning_aligns_to_the_identity():
    tok = build_cot_tokenizer()
    side = encode_side(tok, EXAMPLES)
    a = teacher_alignment(tok, tok, EXAMPLES, EXAMPLES, *side.tokens.shape[1:] * 2, soft=True)
    for b in range(len(EXAMPLES)):
        n = int(side.real[b].sum())
        assert torch.equal(a[b, :n, :n], torch.eye(n))


def test_gpt2_teacher_on_compressed_student_rows_sum_to_one(gpt2_tokenizer):
    """A teacher with the GPT-2 tokenizer and full reasoning, a student with the CoT tokenizer and compressed
    reasoning: every real student row is a distribution over real teacher tokens, padding rows are empty, and the
    student's reasoning reads the teacher's reasoning only."""
    tok = build_cot_tokenizer()
    short = student_examples(EXAMPLES, Reasoning.COMPRESSED)
    student = encode_side(tok, short)
    teacher = encode_side(gpt2_tokenizer, EXAMPLES)
    for soft in (True, False):
        a = teacher_alignment(tok, gpt2_tokenizer, short, EXAMPLES, student.tokens.shape[1], teacher.tokens.shape[1],
                              soft=soft)
        real = student.real
        assert torch.allclose(a[real].sum(-1), torch.ones(int(real.sum())), atol=1e-5)  # float32 products
        assert a[~real].abs().sum() == 0
        assert a[:, :, :][~teacher.real[:, None, :].expand_as(a)].abs().sum() == 0  # no teacher padding read
        s_reason = student.segments == Segment.REASONING
        t_reason = teacher.segments == Segment.REASONING
        for b in range(len(EXAMPLES)):
            assert a[b][s_reason[b]][:, ~t_reason[b]].abs().sum() == 0
