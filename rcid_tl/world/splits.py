"""Train / validation / OOD splits of the synthetic world: which names, relation pairs and formats each may use.

Held-out items still occur in training *outside* the task they are held out of (held-out names in stories and lists,
held-out relation pairs as sentence facts), so an OOD score measures generalisation, not an untrained embedding.
"""

from enum import Enum

from rcid_tl.world.lexicon import NAMES
from rcid_tl.world.relations import RELATION_DOMAIN, RELATIONS, Domain


class Split(str, Enum):
    TRAIN = "train"
    VALIDATION = "validation"  # same distribution as train, independent random stream
    OOD = "ood"  # held-out names, templates, formats and relation pairs


# Every sixth name: never in an IOI sentence in train/validation, but present in stories and lists.
HELD_OUT_NAMES: tuple[str, ...] = NAMES[5::6]
IOI_NAMES: tuple[str, ...] = tuple(n for n in NAMES if n not in HELD_OUT_NAMES)

# Relation inputs never used in a few-shot block in train/validation (for either relation of their domain).
HELD_OUT_RELATION_INPUTS: dict[Domain, frozenset[str]] = {
    # whole antonym pairs, so neither direction leaks the other
    Domain.ADJECTIVE: frozenset({"fast", "slow", "rich", "poor", "thick", "thin", "open", "closed", "sweet", "sour",
                                 "first", "last"}),
    Domain.COUNTRY: frozenset({"Spain", "Greece", "Finland", "Korea", "Peru", "Canada", "Serbia", "Morocco"}),
    Domain.ANIMAL: frozenset({"cow", "owl", "frog", "goat", "bear", "cricket", "fox"}),
    Domain.NUMBER: frozenset({"four", "nine", "thirteen", "seventeen"}),
}


def relation_pairs(relation: str, held_out: bool) -> tuple[tuple[str, str], ...]:
    """The (input, output) pairs of `relation` whose input is (held_out=True) or is not held out."""
    blocked = HELD_OUT_RELATION_INPUTS[RELATION_DOMAIN[relation]]
    return tuple(p for p in RELATIONS[relation] if (p[0] in blocked) == held_out)


def ioi_names(split: Split) -> tuple[str, ...]:
    """Names that may fill IOI sentences in `split`."""
    return HELD_OUT_NAMES if split is Split.OOD else IOI_NAMES


def split_salt(split: Split) -> str:
    """A stable string mixed into every random seed, so splits draw independent streams (never Python's hash())."""
    return f"world-{split.value}"
