"""Tests for the disjoint CoT data streams: separate generators, no shared questions, recorded hashes, the digit
tokenizer that gives a teacher another segmentation."""

import pytest

from rcid_tl.errors import InputError
from rcid_tl.world.cot import CoTSplit, cot_examples, encode_example
from rcid_tl.world.cot_streams import (
    CoTStream, STREAM_SOURCES, check_no_overlap, examples_hash, record_or_check_streams, stream_examples,
)
from rcid_tl.world.cot_training import CoTTokenizer, CoTTrainConfig
from rcid_tl.world.tokenizer import build_cot_digit_tokenizer, build_cot_tokenizer


def test_every_stream_has_its_own_generator_and_extends_as_a_prefix() -> None:
    assert len(set(STREAM_SOURCES.values())) == len(CoTStream)
    first = [e.text for e in stream_examples(CoTStream.STUDENT, 30)]
    assert [e.text for e in stream_examples(CoTStream.STUDENT, 10)] == first[:10]
    assert first != [e.text for e in stream_examples(CoTStream.VALIDATION, 30)]


def test_excluded_questions_are_skipped_and_overlap_is_refused() -> None:
    plain = stream_examples(CoTStream.STUDENT, 12)
    kept = stream_examples(CoTStream.STUDENT, 12, exclude={plain[3].prompt, plain[5].prompt})
    assert len(kept) == 12 and {plain[3].prompt, plain[5].prompt}.isdisjoint(e.prompt for e in kept)
    check_no_overlap({"student": kept, "test": [plain[3]]})
    with pytest.raises(InputError, match="'student' and 'test' share 1 questions"):
        check_no_overlap({"student": plain, "test": [plain[3]]})


def test_recorded_hashes_are_checked_on_resume(tmp_path) -> None:
    hashes = {"student": examples_hash(stream_examples(CoTStream.STUDENT, 4)), "test": "t"}
    record_or_check_streams(tmp_path, hashes)
    record_or_check_streams(tmp_path, hashes)  # the same data resumes
    with pytest.raises(InputError, match=r"other data for streams \['student'\]"):
        record_or_check_streams(tmp_path, hashes | {"student": examples_hash(stream_examples(CoTStream.STUDENT, 5))})


def test_digit_tokenizer_keeps_the_ids_and_splits_every_number_into_digits() -> None:
    words, digits = build_cot_tokenizer(), build_cot_digit_tokenizer()
    assert words.get_vocab() == digits.get_vocab()
    assert digits.tokenize(" 23 + 4 = 27 .") == [" 2", "3", " +", " 4", " =", " 2", "7", " ."]
    for example in cot_examples(CoTSplit.ID, 20, seed=3):
        ids, _ = encode_example(digits, example)
        assert digits.decode(ids[1:-1]) == " " + example.text  # lossless (the normaliser adds the leading space)
        n_numbers = sum(len(w) for w in example.text.split() if w.isdigit())
        assert sum(digits.convert_ids_to_tokens(i).strip().isdigit() for i in ids) == n_numbers


def test_digit_teacher_config_records_its_tokenizer() -> None:
    cfg = CoTTrainConfig(parent="world-gpt2-cot", tokenizer="digits")
    assert cfg.tokenizer is CoTTokenizer.DIGITS and cfg.to_dict()["tokenizer"] == "digits"
    assert "tokenizer" not in CoTTrainConfig().to_dict()  # the word-level teachers' records are unchanged
    with pytest.raises(InputError, match="unknown tokenizer 'bytes'"):
        CoTTrainConfig(tokenizer="bytes")
