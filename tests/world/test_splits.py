"""Tests for the held-out split definitions of the synthetic world."""

from rcid_tl.world import (
    GT_HELD_OUT_FORMATS,
    GT_TRAIN_FORMATS,
    HELD_OUT_NAMES,
    HELD_OUT_RELATION_INPUTS,
    IOI_NAMES,
    NAMES,
    RELATION_DOMAIN,
    RELATIONS,
    relation_pairs,
)
from rcid_tl.world.relations import Domain


def test_names_split_is_a_partition() -> None:
    assert not set(HELD_OUT_NAMES) & set(IOI_NAMES)
    assert set(HELD_OUT_NAMES) | set(IOI_NAMES) == set(NAMES)
    assert len(set(NAMES)) == len(NAMES)


def test_relation_pairs_split_is_a_partition() -> None:
    for relation, pairs in RELATIONS.items():
        train, held = relation_pairs(relation, held_out=False), relation_pairs(relation, held_out=True)
        assert not {x for x, _ in train} & {x for x, _ in held}
        assert set(train) | set(held) == set(pairs)
        assert len(held) >= 4 and len(train) >= 10, relation


def test_each_domain_is_shared_by_two_relations() -> None:
    for domain in Domain:
        relations = [r for r, d in RELATION_DOMAIN.items() if d is domain]
        assert len(relations) == 2
        inputs = [{x for x, _ in RELATIONS[r]} for r in relations]
        # most inputs of one relation are inputs of the other, so a 0-shot prompt is ambiguous
        assert len(inputs[0] & inputs[1]) >= 0.9 * min(map(len, inputs))


def test_held_out_inputs_belong_to_their_domain() -> None:
    for domain, held in HELD_OUT_RELATION_INPUTS.items():
        inputs = {x for r, d in RELATION_DOMAIN.items() if d is domain for x, _ in RELATIONS[r]}
        assert held <= inputs


def test_gt_formats_are_disjoint() -> None:
    assert not set(GT_TRAIN_FORMATS) & set(GT_HELD_OUT_FORMATS)
