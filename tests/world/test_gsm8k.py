"""Tests for the GSM8K-format JSONL loader: local files through `datasets`, segments as in the world task."""

import json

import pytest

from rcid_tl.errors import InputError
from rcid_tl.world.cot import Segment, encode_example
from rcid_tl.world.gsm8k import gsm8k_example, load_gsm8k
from tests.conftest import GPT2_TOKENIZER, require

ROWS = [
    {"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
                 "How many clips did Natalia sell altogether in April and May?",
     "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n"
               "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"},
    {"question": "A shop sells 1,000 pens a day. How many in 3 days?",
     "answer": "1,000 * 3 = <<1000*3=3000>>3,000\n#### 3,000"},
]


def _jsonl(tmp_path, rows) -> str:
    path = tmp_path / "gsm8k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_local_jsonl_maps_to_prompt_reasoning_and_answer(tmp_path) -> None:
    examples = load_gsm8k(_jsonl(tmp_path, ROWS))
    first, second = examples
    assert first.prompt == f"Q: {ROWS[0]['question']} A:"
    assert first.reasoning == (" Natalia sold 48/2 = 24 clips in May. Natalia sold 48+24 = 72 clips altogether in "
                               "April and May. The answer is")
    assert (first.answer, first.n_steps) == ("72", 2)
    assert (second.answer, second.reasoning) == ("3000", " 1,000 * 3 = 3,000 The answer is")
    assert load_gsm8k(_jsonl(tmp_path, ROWS), n=1) == [first]


def test_gsm8k_segments_with_a_bpe_tokenizer() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(require(GPT2_TOKENIZER))
    example = gsm8k_example(ROWS[0]["question"], ROWS[0]["answer"])
    ids, segments = encode_example(tok, example)
    answer = [t for t, s in zip(ids, segments) if s == Segment.ANSWER]
    assert tok.decode(answer[:-1]) == " 72" and answer[-1] == tok.eos_token_id
    assert tok.decode([t for t, s in zip(ids, segments) if s == Segment.REASONING]).endswith("The answer is")


def test_bad_gsm8k_input_names_the_problem(tmp_path) -> None:
    with pytest.raises(InputError, match="must end with '#### <number>'"):
        gsm8k_example("q", "no final line")
    with pytest.raises(InputError, match="lacks column"):
        load_gsm8k(_jsonl(tmp_path, [{"question": "q", "solution": "#### 1"}]))
    with pytest.raises(InputError, match="neither a JSONL file nor the hub id"):
        load_gsm8k(tmp_path / "missing.jsonl")
