"""Tests for the chain-of-thought arithmetic task: vocabulary, splits, segments, batches and scoring."""

import math
import re

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rcid_tl.errors import InputError
from rcid_tl.world.cot import (
    HELD_OUT_STEPS, IGNORE_INDEX, MAX_VALUE, CoTExample, CoTSplit, Segment, cot_batch, cot_examples, encode_example,
    positions_before_answer,
)
from rcid_tl.world.cot_eval import correct_answers, evaluate_cot, generate_answers, parse_answer
from rcid_tl.world.tokenizer import COT_TOKENS, build_cot_tokenizer, build_tokenizer, cot_vocab, world_vocab

TOK = build_cot_tokenizer()


def _steps(example: CoTExample) -> list[tuple[int, str, int, int]]:
    # read the worked steps back from the text, independently of the generator
    return [(int(x), op, int(b), int(r)) for x, op, b, r in re.findall(r"(\d+) ([+-]) (\d+) = (\d+)", example.reasoning)]


def _story_value(example: CoTExample) -> int:
    # recompute the answer from the question's sentences alone
    value = int(re.search(r"had (\d+)", example.prompt).group(1))
    for verb, b in re.findall(r"(found|got|gave) (\d+)", example.prompt):
        value += int(b) if verb in ("found", "got") else -int(b)
    return value


def test_cot_vocab_appends_tokens_and_keeps_every_world_id() -> None:
    world, cot = world_vocab(), cot_vocab()
    assert all(cot[token] == i for token, i in world.items())
    assert sorted(cot[t] for t in COT_TOKENS) == list(range(len(world), len(world) + len(COT_TOKENS)))
    assert len(TOK) == len(cot)


@pytest.mark.parametrize("split", list(CoTSplit))
def test_examples_are_correct_seeded_and_respect_their_split(split: CoTSplit) -> None:
    examples = cot_examples(split, 200, seed=3)
    assert cot_examples(split, 50, seed=3) == examples[:50]  # a larger n extends a smaller one
    assert cot_examples(split, 50, seed=4) != examples[:50]
    for ex in examples:
        steps = _steps(ex)
        assert len(steps) == ex.n_steps in ((3, 4) if split is CoTSplit.OOD_LONGER else (1, 2))
        assert all(r == (x + b if op == "+" else x - b) and 0 <= r <= MAX_VALUE for x, op, b, r in steps)
        assert int(ex.answer) == steps[-1][3] == _story_value(ex)
        held = [(x, op, b) in HELD_OUT_STEPS for x, op, b, _ in steps]
        assert all(held) if split is CoTSplit.OOD_PAIRS else not any(held)


def test_segments_tile_the_tokens_of_the_whole_text() -> None:
    ex = cot_examples("train", 1)[0]
    ids, segments = encode_example(TOK, ex)
    assert ids == [TOK.eos_token_id] + TOK(ex.text)["input_ids"] + [TOK.eos_token_id]
    assert segments == sorted(segments)  # prompt, then reasoning, then answer
    answer = [t for t, s in zip(ids, segments) if s == Segment.ANSWER]
    assert TOK.decode(answer[:-1]).strip() == ex.answer and answer[-1] == TOK.eos_token_id
    assert TOK.decode([t for t, s in zip(ids, segments) if s == Segment.PROMPT][1:]).strip().endswith("A:")


def test_batch_pads_labels_and_finds_the_token_before_the_answer() -> None:
    examples = cot_examples("ood-longer", 2) + cot_examples("train", 3)
    batch = cot_batch(TOK, examples)
    for row, ex in enumerate(examples):
        ids, segments = encode_example(TOK, ex)
        n = len(ids)
        assert batch.input_ids[row, :n].tolist() == ids and batch.segment_ids[row, :n].tolist() == segments
        assert (batch.segment_ids[row, n:] == Segment.PAD).all() and (batch.attention_mask[row, n:] == 0).all()
        predicted = [t if s in (Segment.REASONING, Segment.ANSWER) else IGNORE_INDEX for t, s in zip(ids, segments)]
        assert batch.labels[row, :n].tolist() == predicted and (batch.labels[row, n:] == IGNORE_INDEX).all()
    before = positions_before_answer(batch.segment_ids)
    assert TOK.convert_ids_to_tokens(batch.input_ids[torch.arange(5), before].tolist()) == [" is"] * 5


class _Replay(torch.nn.Module):
    """A fake LM that always predicts the next token of whichever reference sequence the input is a prefix of."""

    def __init__(self, sequences: list[list[int]], vocab: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))  # gives the model a device
        self.sequences, self.vocab = sequences, vocab

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(*input_ids.shape, self.vocab)
        for row, ids in enumerate(input_ids.tolist()):
            seq = next(s for s in self.sequences if s[: len(ids)] == ids)
            logits[row, -1, seq[len(ids)] if len(ids) < len(seq) else TOK.eos_token_id] = 1.0
        return logits


def test_greedy_generation_and_answer_parsing_score_a_replayed_solution() -> None:
    examples = cot_examples("id", 6) + cot_examples("ood-longer", 3)
    wrong = [CoTExample(ex.prompt, ex.reasoning, str(int(ex.answer) + 1), ex.n_steps) for ex in examples[:4]]
    replayed = [encode_example(TOK, ex)[0] for ex in wrong + examples[4:]]
    texts = generate_answers(_Replay(replayed, len(TOK)), TOK, examples, batch_size=2)
    assert [t.strip() for t in texts[4:]] == [(ex.reasoning + " " + ex.answer).strip() for ex in examples[4:]]
    assert correct_answers(texts, examples).tolist() == [0.0] * 4 + [1.0] * 5


def test_parse_answer() -> None:
    assert parse_answer(" 3 + 4 = 7 . The answer is 7") == "7"
    assert parse_answer("so the answer is 1,250 dollars") == "1250"
    assert parse_answer("7 + 3 = 10 .") is None


def test_perplexity_is_the_hf_loss_over_reasoning_and_answer_tokens() -> None:
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(TOK), n_positions=128, n_embd=32, n_layer=1, n_head=2)).eval()
    examples = cot_examples("train", 3)
    scores = evaluate_cot(model, TOK, examples, batch_size=2)
    total, count = 0.0, 0
    for ex in examples:  # one unpadded example at a time through Hugging Face's own shifted loss
        batch = cot_batch(TOK, [ex])
        n = int((batch.labels[0, 1:] != IGNORE_INDEX).sum())
        total += model(batch.input_ids, labels=batch.labels).loss.item() * n
        count += n
    assert scores.perplexity == pytest.approx(math.exp(total / count), rel=1e-5)  # float32 sums in another order
    assert scores.n == 3 and 0.0 <= scores.accuracy <= 1.0 and model.training is False


def test_bad_input_names_the_value() -> None:
    with pytest.raises(InputError, match="unknown CoT split 'test'"):
        cot_examples("test", 3)
    with pytest.raises(InputError, match="does not know every word"):  # the world tokenizer lacks " Q", " +"
        encode_example(build_tokenizer(), cot_examples("train", 1)[0])
