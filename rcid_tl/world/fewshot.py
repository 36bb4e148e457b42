"""Relation text: few-shot blocks ("hot: cold\\nbig: small\\n..."), sentence facts, and counting lists.

Few-shot blocks in train/validation use only non-held-out pairs; facts state every pair, so held-out pairs are known
facts that the model has never seen in the few-shot format.
"""

import random
from dataclasses import dataclass

from rcid_tl.world.lexicon import NAMES
from rcid_tl.world.relations import FACT_TEMPLATES, NUMBER_WORDS, RELATIONS
from rcid_tl.world.splits import Split, relation_pairs

COUNTING_TEMPLATES: tuple[str, ...] = ("{name} counted: {seq}.", "{name} counted down: {seq}.")


@dataclass(frozen=True)
class RelationPrompt:
    """A k-shot relation prompt; `text` ends with "{query}:" and the answer is " {answer}"."""

    text: str
    relation: str
    query: str
    answer: str
    shots: int


def format_block(pairs: list[tuple[str, str]]) -> str:
    """Lines "x: y" joined by newlines."""
    return "\n".join(f"{x}: {y}" for x, y in pairs)


def relation_prompt(
    rng: random.Random, relation: str, query: tuple[str, str], shots: int
) -> RelationPrompt:
    """`shots` demonstrations of `relation` drawn from training pairs (never the query's input), then the query."""
    pool = [p for p in relation_pairs(relation, held_out=False) if p[0] != query[0]]
    demos = rng.sample(pool, shots)
    head = format_block(demos) + "\n" if demos else ""
    return RelationPrompt(
        text=f"{head}{query[0]}:", relation=relation, query=query[0], answer=query[1], shots=shots
    )


def fewshot_document(rng: random.Random, split: Split) -> str:
    """A block of 3-10 pairs of one relation; OOD blocks end with a held-out pair."""
    relation = rng.choice(sorted(RELATIONS))
    train_pairs = relation_pairs(relation, held_out=False)
    k = rng.randint(3, 10)
    pairs = rng.sample(train_pairs, min(k, len(train_pairs)))
    if split is Split.OOD:
        pairs[-1] = rng.choice(relation_pairs(relation, held_out=True))
    return format_block(pairs)


def fact_document(rng: random.Random) -> str:
    """Two to four facts, each from any relation and any pair (held-out ones included)."""
    facts = []
    for _ in range(rng.randint(2, 4)):
        relation = rng.choice(sorted(RELATIONS))
        x, y = rng.choice(RELATIONS[relation])
        facts.append(rng.choice(FACT_TEMPLATES[relation]).format(x=x, y=y))
    return " ".join(facts)


def counting_document(rng: random.Random) -> str:
    """A run of 3-8 consecutive number words, up or down."""
    n = rng.randint(3, 8)
    start = rng.randint(0, len(NUMBER_WORDS) - n)
    seq = list(NUMBER_WORDS[start : start + n])
    template = rng.choice(COUNTING_TEMPLATES)
    if "down" in template:
        seq.reverse()
    return template.format(name=rng.choice(NAMES), seq=", ".join(seq))
