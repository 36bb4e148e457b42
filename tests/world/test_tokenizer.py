"""Tests for the world tokenizer: single-token words, year splitting, and offline loading via AutoTokenizer."""

from pathlib import Path

import pytest
from transformers import AutoTokenizer

from rcid_tl.world import (
    EOS_TOKEN,
    NAMES,
    RELATIONS,
    Split,
    WorldConfig,
    build_tokenizer,
    generate_corpus,
    save_tokenizer,
)
from rcid_tl.world.lexicon import EVENT_NOUNS, OBJECTS, PLACES
from rcid_tl.world.tokenizer import world_words


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def test_every_list_word_is_one_token(tok) -> None:
    relation_words = {w for pairs in RELATIONS.values() for pair in pairs for w in pair}
    for word in {*NAMES, *PLACES, *OBJECTS, *EVENT_NOUNS, *relation_words, *world_words()}:
        for text in (f" {word}", word):
            ids = tok(text)["input_ids"]
            assert len(ids) == 1 and ids[0] != tok.unk_token_id, word
            assert tok.convert_ids_to_tokens(ids) == [f" {word}"]


def test_years_split_into_century_and_two_digits(tok) -> None:
    toks = tok.convert_ids_to_tokens(tok("from the year 1732 to the year 17")["input_ids"])
    assert toks[3:5] == [" 17", "32"] and toks[-1] == " 17"
    for yy in range(100):
        assert len(tok(f"{yy:02d}", add_special_tokens=False)["input_ids"]) == 1


def test_line_starts_match_mid_sentence_tokens(tok) -> None:
    ids = tok("hot: cold\nbig: small")["input_ids"]
    assert tok.convert_ids_to_tokens(ids) == [" hot", ":", " cold", "\n", " big", ":", " small"]


def test_corpus_has_no_unknown_tokens(tok) -> None:
    for split in Split:
        docs = generate_corpus(WorldConfig(seed=1), split, 1500)
        assert all(tok.unk_token_id not in ids for ids in tok(docs)["input_ids"]), split


def test_saved_tokenizer_loads_offline(tmp_path: Path, tok) -> None:
    save_tokenizer(tmp_path)
    assert {"tokenizer.json", "tokenizer_config.json"} <= {p.name for p in tmp_path.iterdir()}
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    text = EOS_TOKEN + "When Mary and John went to the store, John gave a drink to"
    assert loaded(text)["input_ids"] == tok(text)["input_ids"]
    assert loaded.eos_token == loaded.bos_token == EOS_TOKEN
    assert len(loaded) == len(tok)
