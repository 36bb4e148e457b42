"""Narrative text: short stories in which a small cast of names recurs, and filler sentences about the world.

Stories are where the model learns to copy a name from context, the skill IOI builds on.
"""

import random

from rcid_tl.world.lexicon import FILLER_TIMES, FILLER_VERBS, FILLER_WEATHER, NAMES, OBJECTS, PLACES
from rcid_tl.world.relations import ADJECTIVES, ANIMALS, RELATIONS

STORY_OPENINGS: tuple[str, ...] = (
    "{A} and {B} were friends.",
    "This is a story about {A} and {B}.",
    "{A} and {B} lived near the {P}.",
)

# {A} and {B} are two distinct cast members, redrawn for every sentence.
STORY_SENTENCES: tuple[str, ...] = (
    "{A} lived near the {P}.",
    "One day {A} met {B} at the {P}.",
    "{A} had a {O}.",
    "{A} showed the {O} to {B}.",
    "{B} asked {A} for the {O}.",
    "{A} gave the {O} to {B}.",
    "{B} thanked {A}.",
    "{A} and {B} walked to the {P}.",
    "{A} told {B} about the {J} {N}.",
    "Later, {A} called {B}.",
    "{A} smiled at {B}.",
    "{B} waited for {A} at the {P}.",
    "Then {A} found a {O} and gave it to {B}.",
)

FILLER_SENTENCES: tuple[str, ...] = (
    "The {J} {N} {V} near the {P}.",
    "It was a {J} {T}.",
    "In the {T}, the {W} came.",
    "Yesterday, {A} {V} at the {P}.",
    "Before the {W}, the {N} {V}.",
    "As the {W} came, {A} {V}.",
    "{A} liked the {J} {O}.",
    "The {O} was {J}.",
    "There was a {O} in the {P}.",
    "Many {M} lived near the {P}.",
)

_PLURALS: tuple[str, ...] = tuple(y for _, y in RELATIONS["plural"])


def _fill(rng: random.Random, template: str, a: str, b: str) -> str:
    return template.format(
        A=a, B=b, P=rng.choice(PLACES), O=rng.choice(OBJECTS), J=rng.choice(ADJECTIVES), N=rng.choice(ANIMALS),
        V=rng.choice(FILLER_VERBS), T=rng.choice(FILLER_TIMES), W=rng.choice(FILLER_WEATHER), M=rng.choice(_PLURALS),
    )


def story_document(rng: random.Random) -> str:
    """A cast of two or three names (any name, held-out ones included) and 4-7 sentences about them."""
    cast = rng.sample(NAMES, rng.randint(2, 3))
    sentences = [_fill(rng, rng.choice(STORY_OPENINGS), cast[0], cast[1])]
    for _ in range(rng.randint(3, 6)):
        a, b = rng.sample(cast, 2)
        sentences.append(_fill(rng, rng.choice(STORY_SENTENCES), a, b))
    return " ".join(sentences)


def filler_document(rng: random.Random) -> str:
    """Three to five unrelated sentences about the world."""
    return " ".join(
        _fill(rng, rng.choice(FILLER_SENTENCES), rng.choice(NAMES), rng.choice(NAMES))
        for _ in range(rng.randint(3, 5))
    )
