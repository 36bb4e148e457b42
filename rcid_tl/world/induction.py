"""Induction documents: a random list of names or nouns, then the same list again.

Repeated lists make copying "what followed this token last time" pay off, which the feasibility run found IOI needs.
"""

import random

from rcid_tl.world.lexicon import NAMES, OBJECTS, PLACES
from rcid_tl.world.relations import ANIMALS

INDUCTION_FRAMES: tuple[str, ...] = (
    "{A} wrote a list: {L}. {B} read it again: {L}.",
    "List: {L}. Again: {L}.",
    "{A} said {L}, and then {B} said {L}.",
)

_POOLS: tuple[tuple[str, ...], ...] = (NAMES, OBJECTS, ANIMALS, PLACES, NAMES + OBJECTS + ANIMALS)


def induction_document(rng: random.Random) -> str:
    """One frame with a 3-8 item list of distinct words repeated verbatim."""
    items = rng.sample(rng.choice(_POOLS), rng.randint(3, 8))
    a, b = rng.sample(NAMES, 2)
    return rng.choice(INDUCTION_FRAMES).format(A=a, B=b, L=", ".join(items))
