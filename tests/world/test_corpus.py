"""Tests for the synthetic-world corpus generator: determinism, splits, and the shape of each document kind."""

import random
import re

import pytest

from rcid_tl.world import (
    GT_HELD_OUT_FORMATS,
    HELD_OUT_NAMES,
    IOI_HELD_OUT_TEMPLATES,
    IOI_NAMES,
    IOI_TRAIN_TEMPLATES,
    DocKind,
    IOIOrder,
    Split,
    WorldConfig,
    generate_corpus,
    fill_ioi,
    generate_document,
    sample_ioi,
)


def test_same_seed_same_corpus() -> None:
    cfg = WorldConfig(seed=3)
    assert generate_corpus(cfg, "train", 300) == generate_corpus(WorldConfig(seed=3), Split.TRAIN, 300)


def test_seed_and_split_change_the_corpus() -> None:
    base = generate_corpus(WorldConfig(seed=0), "train", 100)
    assert base != generate_corpus(WorldConfig(seed=1), "train", 100)
    assert base != generate_corpus(WorldConfig(seed=0), "validation", 100)


def test_slices_match_the_full_stream() -> None:
    # resuming training regenerates a slice; it must equal the same documents generated in one go
    cfg = WorldConfig()
    full = generate_corpus(cfg, "train", 50)
    assert generate_corpus(cfg, "train", 20, start=30) == full[30:]


def test_every_kind_appears() -> None:
    kinds = {generate_document(WorldConfig(), Split.TRAIN, i)[0] for i in range(400)}
    assert kinds == set(DocKind)


def test_weights_select_kinds() -> None:
    cfg = WorldConfig(weights=((DocKind.COUNTING, 1.0),))
    assert all("counted" in d for d in generate_corpus(cfg, "train", 30))


@pytest.mark.parametrize("weights", [(), ((DocKind.IOI, -1.0),), ((DocKind.IOI, 1.0), (DocKind.IOI, 2.0))])
def test_bad_weights_are_rejected(weights: tuple) -> None:
    with pytest.raises(ValueError):
        WorldConfig(weights=weights)


def _ioi_text(split: Split, n: int) -> str:
    return " ".join(generate_corpus(WorldConfig(weights=((DocKind.IOI, 1.0),)), split, n))


def _template_regex(template: str) -> re.Pattern:
    return re.compile(re.sub(r"\\{[A-Z0-9]+\\}", r"[A-Za-z]+", re.escape(template)))


def test_train_ioi_never_uses_held_out_names_or_templates() -> None:
    text = _ioi_text(Split.TRAIN, 400)
    assert not set(re.findall(r"[A-Za-z]+", text)) & set(HELD_OUT_NAMES)
    assert not any(_template_regex(t).search(text) for t in IOI_HELD_OUT_TEMPLATES)
    assert all(_template_regex(t).search(text) for t in IOI_TRAIN_TEMPLATES)  # the regexes do match


def test_ood_ioi_uses_only_held_out_names_and_templates() -> None:
    text = _ioi_text(Split.OOD, 200)
    assert not set(re.findall(r"[A-Za-z]+", text)) & set(IOI_NAMES)
    assert not any(_template_regex(t).search(text) for t in IOI_TRAIN_TEMPLATES)
    assert all(_template_regex(t).search(text) for t in IOI_HELD_OUT_TEMPLATES)


@pytest.mark.parametrize("order", list(IOIOrder))
def test_ioi_prompt_roles(order: IOIOrder) -> None:
    rng = random.Random(0)
    for template in IOI_TRAIN_TEMPLATES + IOI_HELD_OUT_TEMPLATES:
        p = fill_ioi(template, "Mary", "John", order, "store", "drink")
        words = re.findall(r"[A-Za-z]+", p.text)
        assert words.count("Mary") == 1 and words.count("John") == 2 and p.text.endswith(" to")
        assert (words.index("Mary") < words.index("John")) == (order is IOIOrder.ABBA)
        assert p.sentence == p.text + " Mary."
    sampled = sample_ioi(rng, ("Anna", "Paul"), IOI_TRAIN_TEMPLATES, obj="drink")
    assert {sampled.io, sampled.s} == {"Anna", "Paul"} and sampled.obj == "drink"


def test_template_lists_are_disjoint() -> None:
    assert not set(IOI_TRAIN_TEMPLATES) & set(IOI_HELD_OUT_TEMPLATES)


def test_held_out_template_words_occur_in_training_text() -> None:
    # a held-out template must be a new recombination, not a carrier of never-trained tokens
    train_words = set(re.findall(r"[A-Za-z]+", " ".join(generate_corpus(WorldConfig(), "train", 3000))))
    for template in IOI_HELD_OUT_TEMPLATES + GT_HELD_OUT_FORMATS:
        words = set(re.findall(r"[A-Za-z]+", re.sub(r"\{[^}]*\}", " ", template)))
        assert words <= train_words, words - train_words
