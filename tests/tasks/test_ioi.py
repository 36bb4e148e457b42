"""The IOI builder on the real GPT-2 tokenizer: tokens, named positions, corruptions, balance, determinism, and the
reference name list of Wang et al. 2023."""

import pytest

from rcid_tl.errors import InputError
from rcid_tl.tasks import Corruption, IOIConfig, build_ioi
from rcid_tl.tasks.ioi import abba
from rcid_tl.tasks.lexicon import IOI_TEMPLATES, NAMES


@pytest.fixture(scope="module")
def s2_io(gpt2_tokenizer):
    return build_ioi(IOIConfig(n=60, seed=0), gpt2_tokenizer)


@pytest.fixture(scope="module")
def abc(gpt2_tokenizer):
    return build_ioi(IOIConfig(n=60, seed=0, corruption=Corruption.ABC), gpt2_tokenizer)


def test_every_name_is_one_token(gpt2_tokenizer):
    assert [n for n in NAMES if len(gpt2_tokenizer.encode(" " + n)) != 1] == []


def test_texts_are_well_formed(s2_io, abc, gpt2_tokenizer):
    for e in s2_io.examples + abc.examples:
        for text, ids in ((e.clean_text, e.clean_ids), (e.corrupt_text, e.corrupt_ids)):
            assert "  " not in text and text == text.strip() and " ," not in text and " ." not in text
            assert ids[0] == gpt2_tokenizer.bos_token_id
            assert list(ids[1:]) == gpt2_tokenizer.encode(text)  # the ids are exactly the text's tokens


def test_positions_decode_to_the_expected_tokens(s2_io, abc, gpt2_tokenizer):
    decode = lambda i: gpt2_tokenizer.decode([i])  # noqa: E731
    for e in s2_io.examples + abc.examples:
        io, s = decode(e.correct_id), decode(e.wrong_id)
        p = e.positions
        assert io.startswith(" ") and io.strip() in NAMES and s.strip() in NAMES and io != s
        assert decode(e.clean_ids[p["io"]]) == io
        assert decode(e.clean_ids[p["s1"]]) == s and decode(e.clean_ids[p["s2"]]) == s
        assert p["s1+1"] == p["s1"] + 1 < p["s2"]
        assert p["io"] < p["s2"] and p["s1"] < p["s2"]
        assert p["end"] == e.answer_pos == len(e.clean_ids) - 1
        assert decode(e.clean_ids[p["end"]]) == " to"  # every template ends "... to" before the answer


def test_s2_io_corruption_changes_only_s2_to_the_io_name(s2_io):
    for e in s2_io.examples:
        assert e.modified == {"io": False, "s1": False, "s1+1": False, "s2": True, "end": False}
        assert e.corrupt_ids[e.positions["s2"]] == e.correct_id
        assert sum(a != b for a, b in zip(e.clean_ids, e.corrupt_ids)) == 1


def test_abc_corruption_changes_io_s1_and_s2_to_fresh_names(abc):
    for e in abc.examples:
        assert e.modified == {"io": True, "s1": True, "s1+1": False, "s2": True, "end": False}
        fresh = {e.corrupt_ids[e.positions[n]] for n in ("io", "s1", "s2")}
        assert len(fresh) == 3 and not fresh & {e.correct_id, e.wrong_id}


def test_abba_and_baba_both_present_and_balanced(s2_io):
    orders = [e.extra["order"] for e in s2_io.examples]
    assert orders.count("ABBA") == orders.count("BABA") == 30
    for e in s2_io.examples:  # ABBA: IO before S1; BABA: S1 before IO
        assert (e.positions["io"] < e.positions["s1"]) == (e.extra["order"] == "ABBA")
        assert (e.template >= len(IOI_TEMPLATES)) == (e.extra["order"] == "ABBA")


def test_abba_swaps_the_first_clause_names():
    assert abba("When [B] and [A] went, [B] gave to") == "When [A] and [B] went, [B] gave to"


def test_same_seed_same_examples(gpt2_tokenizer, s2_io):
    assert build_ioi(IOIConfig(n=60, seed=0), gpt2_tokenizer).examples == s2_io.examples
    assert build_ioi(IOIConfig(n=60, seed=1), gpt2_tokenizer).examples != s2_io.examples


def test_multi_token_name_is_an_input_error_naming_it(gpt2_tokenizer):
    with pytest.raises(InputError, match="name ' Zebedeeqx' is .* tokens"):
        build_ioi(IOIConfig(n=2, names=NAMES[:6] + ("Zebedeeqx",)), gpt2_tokenizer)


@pytest.mark.parametrize("bad, message", [(dict(n=0), "--n must be ≥ 1, got 0"),
                                          (dict(names=("Mary", "John", "Tom", "Mary")), "at least 5 distinct names")])
def test_invalid_configs(bad, message):
    with pytest.raises(InputError, match=message):
        IOIConfig(**bad)


def test_reference_word_lists_pass_our_validation(gpt2_tokenizer, ioi_reference):
    """Wang et al.'s names, places and objects are single tokens, so our builder accepts them as they are."""
    config = IOIConfig(n=30, seed=0, names=tuple(ioi_reference["NAMES"]), places=tuple(ioi_reference["PLACES"]),
                       objects=tuple(ioi_reference["OBJECTS"]))
    dataset = build_ioi(config, gpt2_tokenizer)
    used = {gpt2_tokenizer.decode([e.correct_id]).strip() for e in dataset.examples}
    assert used <= set(ioi_reference["NAMES"])
    assert len(set(NAMES) & set(ioi_reference["NAMES"])) >= 20  # our list overlaps theirs without copying it
