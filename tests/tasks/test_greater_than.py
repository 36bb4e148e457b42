"""The Greater-Than builder on the real GPT-2 tokenizer, checked against Hanna et al. 2023's reference lists, and its
probability-difference metric against a direct numpy computation."""

import numpy as np
import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.metrics import metric_for
from rcid_tl.tasks import GreaterThanConfig, build_greater_than
from rcid_tl.tasks.greater_than import valid_years, year_token_ids
from rcid_tl.tasks.lexicon import GT_CENTURIES, GT_NOUNS


@pytest.fixture(scope="module")
def gt(gpt2_tokenizer):
    return build_greater_than(GreaterThanConfig(n=40, seed=0), gpt2_tokenizer)


def test_positions_decode_and_only_yy_is_modified(gt, gpt2_tokenizer):
    decode = lambda i: gpt2_tokenizer.decode([i])  # noqa: E731
    for e in gt.examples:
        yy, p = e.extra["yy"], e.positions
        noun = decode(e.clean_ids[p["noun"]])
        assert noun.strip() in GT_NOUNS and e.clean_text.startswith(f"The{noun} lasted")
        assert decode(e.clean_ids[p["yy"]]) == f"{yy:02d}" and decode(e.corrupt_ids[p["yy"]]) == "01"
        century = decode(e.clean_ids[p["yy"] - 1])
        assert decode(e.clean_ids[p["end"]]) == century and p["end"] == e.answer_pos == len(e.clean_ids) - 1
        assert e.modified == {"noun": False, "yy": True, "end": False}
        assert e.correct_id == gt.year_ids[yy + 1] and e.wrong_id == gt.year_ids[yy - 1]
        assert e.corrupt_text == e.clean_text.replace(f"{century.strip()}{yy:02d}", f"{century.strip()}01", 1)


def test_year_ids_are_the_100_two_digit_tokens(gt, gpt2_tokenizer, gt_reference):
    assert len(set(gt.year_ids)) == 100
    assert [gpt2_tokenizer.decode([i]) for i in gt.year_ids] == [f"{y:02d}" for y in range(100)]
    assert list(year_token_ids(gpt2_tokenizer)) == gt_reference["yy_token_ids"]


def test_valid_years_follow_the_reference_rule(gpt2_tokenizer, gt_reference):
    """Our years are Hanna et al.'s valid years (" XXYY" → [" XX", "YY"]) in our centuries with YY in 02..98,
    without each century's first and last, and only for centuries where XX01 (the corruption) also splits."""
    reference = set(gt_reference["valid_years"])
    expected = set()
    for xx in GT_CENTURIES:
        if xx * 100 + 1 in reference:
            yys = sorted(y % 100 for y in reference if y // 100 == xx and 2 <= y % 100 <= 98)
            expected |= {(xx, yy) for yy in yys[1:-1]}
    assert set(valid_years(gpt2_tokenizer, GT_CENTURIES)) == expected


def test_nouns_are_single_tokens_and_reference_nouns_pass_validation(gpt2_tokenizer, gt_reference):
    assert [n for n in GT_NOUNS if len(gpt2_tokenizer.encode(" " + n)) != 1] == []
    dataset = build_greater_than(GreaterThanConfig(n=20, nouns=tuple(gt_reference["nouns"])), gpt2_tokenizer)
    assert {gpt2_tokenizer.decode([e.clean_ids[e.positions["noun"]]]).strip() for e in dataset.examples} <= set(
        gt_reference["nouns"])


def test_prob_diff_is_hannas_definition(gt, tiny_gpt2):
    batch = gt.batch()
    with torch.no_grad():
        logits = tiny_gpt2(batch.clean)[torch.arange(len(batch)), batch.answer_pos]
    ours = metric_for(gt)(logits, batch)
    # Σ_{y > YY} p(y) − Σ_{y ≤ YY} p(y), p a softmax over the full vocabulary, in float64 numpy
    x = logits.double().numpy()
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    years = p[:, list(gt.year_ids)]
    yy = np.array([e.extra["yy"] for e in gt.examples])
    greater = np.arange(100)[None, :] > yy[:, None]
    expected = (years * greater).sum(-1) - (years * ~greater).sum(-1)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6)  # float32 softmax vs float64: ~1e-7


def test_same_seed_same_examples(gpt2_tokenizer, gt):
    assert build_greater_than(GreaterThanConfig(n=40, seed=0), gpt2_tokenizer).examples == gt.examples


def test_n_must_be_positive():
    with pytest.raises(InputError, match="--n must be ≥ 1, got 0"):
        GreaterThanConfig(n=0)
