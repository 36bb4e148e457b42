"""Pronoun agreement in TinyStories-style text: "One day, Lily found a big ball. Then" → " she", wrong " he".

The corrupt prompt swaps the name for one of the other gender with the same number of tokens, so the answer flips
(" he" over " she") while every other token stays in place. Names are often several tokens in a small vocabulary
(" Mary" is [" M", "ar", "y"] for the TinyStories Llamas); the named positions are the name's first and last token
(`name_first`, `name`) and the last prompt token (`end`).

Splits: the names of each (gender, token length) group and the frames are each divided once by a fixed seed (one
third held out, independent of `--seed`); `heldout` pairs held-out names in held-out frames, `train` the rest of
the names in the rest of the frames (no name or frame in both), `all` every pair in every frame.
"""

import random
from collections import defaultdict
from dataclasses import dataclass
from enum import Enum

from transformers import PreTrainedTokenizerBase

from rcid_tl.errors import InputError
from rcid_tl.tasks.base import ContrastiveDataset, Example
from rcid_tl.tasks.tokens import pad_id, single_token

TASK = "tinystories-pronoun"
POSITIONS = ("name_first", "name", "end")
SPLIT_SEED = 0  # fixes the held-out names and frames whatever --seed samples

FEMALE = ("Lily", "Sue", "Mia", "Sara", "Amy", "Mary", "Lisa", "Sally", "Lucy", "Jane", "Kate", "Ella", "Zoe",
          "Rose", "Molly", "Kitty", "Anna", "Emma", "Daisy", "Ellie", "Jenny")
MALE = ("Tim", "Timmy", "Tom", "Ben", "Sam", "Ted", "Max", "Leo", "Bob", "Jim", "Mark", "Mike", "Dan", "Jack", "Joe",
        "Billy", "Jake", "Fred", "John", "Paul")
# Frames chosen by measurement on stories260K (accuracy ≥ 0.85 over all names each, see docs/tasks-tinystories.md),
# plus the first frame ("went to the park. Then", 0.62: the model leans to " she" after "Then").
FRAMES = (
    "[NAME] went to the park. Then",
    "One day, [NAME] found a big ball. Then",
    "[NAME] wanted to play outside, so",
    "Once upon a time, there was a kid named [NAME]. One day,",
    "[NAME] was sad because",
    "[NAME] liked to play with the ball. One day,",
    "[NAME] had a red ball. Every day,",
    "[NAME] was hungry, so",
)
PRONOUNS = {"female": " she", "male": " he"}


class Split(str, Enum):
    HELDOUT = "heldout"
    TRAIN = "train"
    ALL = "all"


@dataclass(frozen=True)
class PronounConfig:
    """`n` None: every prompt of the split, in an order shuffled by `seed`; else the first `n` (`take`)."""

    n: int | None = None
    seed: int = 0
    split: Split = Split.HELDOUT
    prepend_bos: bool = True
    female: tuple[str, ...] = FEMALE
    male: tuple[str, ...] = MALE
    frames: tuple[str, ...] = FRAMES

    def __post_init__(self) -> None:
        if self.n is not None and self.n < 1:
            raise InputError(f"--n must be ≥ 1, got {self.n}")
        if any(f.count("[NAME]") != 1 for f in self.frames):
            raise InputError("every pronoun frame needs exactly one [NAME] slot")
        object.__setattr__(self, "split", Split(self.split))


def build_pronoun(config: PronounConfig, tokenizer: PreTrainedTokenizerBase) -> ContrastiveDataset:
    """The split's clean/corrupt pairs (both directions: female→male and male→female), validated against
    `tokenizer`; names whose token length has no partner of the other gender are left out."""
    answer = {g: single_token(tokenizer, p, "pronoun") for g, p in PRONOUNS.items()}
    frames = split_items(list(range(len(config.frames))), config.split)
    groups = _name_groups(config, tokenizer)
    examples = []
    for t in frames:
        for female, male in _pairs(groups, config.split):
            for gender, (clean_name, corrupt_name) in (("female", (female, male)), ("male", (male, female))):
                other = "male" if gender == "female" else "female"
                example = _example(tokenizer, config, t, clean_name, corrupt_name, answer[gender], answer[other],
                                   gender)
                if example is not None:
                    examples.append(example)
    if not examples:
        raise InputError(f"no {config.split.value} pronoun pairs: no female and male names of equal token length")
    examples = take(examples, config.n, config.seed)
    return ContrastiveDataset(
        task=TASK if config.split is Split.HELDOUT else f"{TASK}:{config.split.value}", examples=tuple(examples),
        position_names=POSITIONS, metric_name="logit_diff",
        config={"task": TASK, "split": config.split.value, "n": config.n, "seed": config.seed,
                "split_seed": SPLIT_SEED, "prepend_bos": config.prepend_bos},
        pad_id=pad_id(tokenizer),
    )


def take(examples: list[Example], n: int | None, seed: int) -> list[Example]:
    """Every example (n None) or the first `n`, in an order shuffled by `seed`; beyond the split's size the split
    repeats, each pass in a fresh order (so a command that draws a large sample, such as a mean-ablation reference,
    still gets one)."""
    rng, out = random.Random(seed), []
    while not out or (n is not None and len(out) < n):
        order = list(examples)
        rng.shuffle(order)
        out += order
    return out if n is None else out[:n]


def split_items(items: list, split: Split) -> list:  # also the split of `rcid_tl.tasks.object_recall`
    """A fixed third of `items` (at least one when there are two or more) held out; the rest for training."""
    if split is Split.ALL:
        return items
    order = list(items)
    random.Random(SPLIT_SEED).shuffle(order)
    k = max(1, round(len(order) / 3)) if len(order) >= 2 else 0
    held = set(order[:k])
    return [x for x in items if (x in held) == (split is Split.HELDOUT)]


def _name_groups(config: PronounConfig, tokenizer) -> dict[int, dict[str, list[str]]]:
    """Names by token length, then gender (the split taken within each group, so each length keeps both)."""
    groups: dict[int, dict[str, list[str]]] = defaultdict(lambda: {"female": [], "male": []})
    for gender, names in (("female", config.female), ("male", config.male)):
        for name in names:
            groups[len(tokenizer.encode(" " + name, add_special_tokens=False))][gender].append(name)
    return dict(groups)


def _pairs(groups: dict[int, dict[str, list[str]]], split: Split) -> list[tuple[str, str]]:
    pairs = []
    for length in sorted(groups):
        female, male = split_items(groups[length]["female"], split), split_items(groups[length]["male"], split)
        pairs += [(f, m) for f in female for m in male]
    return pairs


def _example(tokenizer, config: PronounConfig, template: int, clean_name: str, corrupt_name: str, correct: int,
             wrong: int, gender: str) -> Example | None:
    """The pair in frame `template`, or None where the two names do not occupy the same tokens there (a tokenizer
    that spells a name differently at the start of a text)."""
    frame = config.frames[template]
    clean_ids, span = tokenize_slot(tokenizer, frame, "[NAME]", clean_name, config.prepend_bos)
    corrupt_ids, corrupt_span = tokenize_slot(tokenizer, frame, "[NAME]", corrupt_name, config.prepend_bos)
    if span != corrupt_span or len(clean_ids) != len(corrupt_ids):
        return None
    end = len(clean_ids) - 1
    return Example(
        clean_ids=clean_ids, corrupt_ids=corrupt_ids, answer_pos=end, correct_id=correct, wrong_id=wrong,
        positions={"name_first": span[0], "name": span[1], "end": end}, template=template,
        clean_text=frame.replace("[NAME]", clean_name), corrupt_text=frame.replace("[NAME]", corrupt_name),
        extra={"gender": gender, "name": clean_name, "corrupt_name": corrupt_name},
    )


def tokenize_slot(tokenizer, frame: str, slot: str, name: str, prepend_bos: bool
                  ) -> tuple[tuple[int, ...], tuple[int, int]]:
    """Ids of `frame` with `slot` filled by `name` and the (first, last) token index of the filled word, which must
    tokenise inside the text as the text before it followed by the word's own tokens."""
    before, after = frame.split(slot)
    text = before + name + after
    start = len(before) - 1 if before.endswith(" ") else len(before)  # the name's first token carries its space
    prefix = tokenizer.encode(text[:start], add_special_tokens=False) if start else []
    through = tokenizer.encode(text[: len(before) + len(name)], add_special_tokens=False)
    ids = tokenizer.encode(text, add_special_tokens=False)
    if through[: len(prefix)] != prefix or ids[: len(through)] != through or len(through) == len(prefix):
        raise InputError(f"the word {name!r} does not tokenise on its own inside {text!r} for this tokenizer")
    offset = 0
    if prepend_bos:
        if tokenizer.bos_token_id is None:
            raise InputError("this tokenizer has no BOS token; build the task without BOS")
        ids, offset = [tokenizer.bos_token_id, *ids], 1
    return tuple(ids), (len(prefix) + offset, len(through) - 1 + offset)
