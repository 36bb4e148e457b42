"""Indirect Object Identification (Wang et al. 2023) as a contrastive dataset.

Clean "When Mary and John went to the store, John gave a drink to" → " Mary" (IO), wrong answer " John" (S).
Corruptions: `s2-io` (S2 takes the IO name) and `abc` (Wang et al.: three fresh names at IO, S1, S2).
"""

import random
from dataclasses import dataclass
from enum import Enum

from transformers import PreTrainedTokenizerBase

from rcid_tl.errors import InputError
from rcid_tl.tasks import lexicon
from rcid_tl.tasks.base import ContrastiveDataset, Example
from rcid_tl.tasks.tokens import fill, pad_id, single_tokens, tokenize_many

POSITIONS = ("io", "s1", "s1+1", "s2", "end")


class Corruption(str, Enum):
    S2_IO = "s2-io"
    ABC = "abc"


@dataclass(frozen=True)
class IOIConfig:
    """How to sample IOI examples. Orders alternate ABBA/BABA so both are balanced."""

    n: int = 100
    seed: int = 0
    corruption: Corruption = Corruption.S2_IO
    prepend_bos: bool = True
    names: tuple[str, ...] = lexicon.NAMES
    places: tuple[str, ...] = lexicon.PLACES
    objects: tuple[str, ...] = lexicon.OBJECTS
    templates: tuple[str, ...] = lexicon.IOI_TEMPLATES

    def __post_init__(self) -> None:
        if self.n < 1:
            raise InputError(f"--n must be ≥ 1, got {self.n}")
        if len(set(self.names)) < 5:
            raise InputError("IOI needs at least 5 distinct names (IO, S and three for the ABC corruption)")
        object.__setattr__(self, "corruption", Corruption(self.corruption))


def abba(template: str) -> str:
    """The ABBA form of a BABA template: swap the first [B] and the first [A]."""
    return template.replace("[B]", "[X]", 1).replace("[A]", "[B]", 1).replace("[X]", "[A]", 1)


def build_ioi(config: IOIConfig, tokenizer: PreTrainedTokenizerBase) -> ContrastiveDataset:
    """Sample `config.n` IOI examples, each validated against `tokenizer` (every name one token)."""
    name_ids = dict(zip(config.names, single_tokens(tokenizer, [" " + name for name in config.names], "name")))
    rng = random.Random(config.seed)
    drawn = [_draw(config, rng, i) for i in range(config.n)]
    tokenized = tokenize_many(tokenizer, [text for d in drawn for text in (d["clean"], d["corrupt"])],
                              config.prepend_bos)
    examples = [_example(d, *tokenized[2 * i], tokenized[2 * i + 1][0], name_ids) for i, d in enumerate(drawn)]
    return ContrastiveDataset(
        task="ioi", examples=tuple(examples), position_names=POSITIONS, metric_name="logit_diff",
        config={"task": "ioi", "n": config.n, "seed": config.seed, "corruption": config.corruption.value,
                "prepend_bos": config.prepend_bos},
        pad_id=pad_id(tokenizer),
    )


def _draw(config: IOIConfig, rng: random.Random, index: int) -> dict:
    """Example `index`'s template, names, place and object, and its clean and corrupt texts (with their slots)."""
    t = rng.randrange(len(config.templates))
    template = config.templates[t] if index % 2 else abba(config.templates[t])
    io, s, *fresh = rng.sample(config.names, 5)
    place, obj = rng.choice(config.places), rng.choice(config.objects)
    clean = _render(template, {"A": io, "B": s}, s, place, obj)
    if config.corruption is Corruption.S2_IO:
        corrupt = _render(template, {"A": io, "B": s}, io, place, obj)
    else:  # Wang et al.'s p_ABC: IO, S1 and S2 each replaced by unrelated names
        corrupt = _render(template, {"A": fresh[0], "B": fresh[1]}, fresh[2], place, obj)
    # ABBA and BABA forms count as distinct templates (30 in all), as in Wang et al.'s per-template means
    return {"clean": clean, "corrupt": corrupt, "io": io, "s": s, "baba": bool(index % 2),
            "template": t if index % 2 else t + len(config.templates)}


def _example(drawn: dict, clean_ids: tuple[int, ...], named: dict[str, int], corrupt_ids: tuple[int, ...],
             name_ids: dict[str, int]) -> Example:
    end = len(clean_ids) - 1
    positions = {"io": named["A"], "s1": named["B"], "s1+1": named["B"] + 1, "s2": named["S2"], "end": end}
    return Example(
        clean_ids=clean_ids, corrupt_ids=corrupt_ids, answer_pos=end,
        correct_id=name_ids[drawn["io"]], wrong_id=name_ids[drawn["s"]],
        positions=positions, template=drawn["template"], clean_text=drawn["clean"][0],
        corrupt_text=drawn["corrupt"][0], extra={"order": "BABA" if drawn["baba"] else "ABBA"},
    )


def _render(template: str, first: dict[str, str], s2: str, place: str, obj: str) -> tuple[str, list]:
    # The second clause's [B] is S2; name it separately so the corruption can change it alone.
    marked = template.replace("[B]", "[S2]").replace("[S2]", "[B]", 1)
    return fill(marked, {"A": first["A"], "B": first["B"], "S2": s2, "PLACE": place, "OBJECT": obj})
