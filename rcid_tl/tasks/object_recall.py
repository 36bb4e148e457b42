"""Object recall within a short TinyStories-style passage: "One day, Lily found a kite. She picked up the" → the
kite's first token, wrong: the first token of the object the corrupt prompt names instead ("▁k" over "▁b" for kite
over bike in the TinyStories Llamas' 512-token vocabulary, where no object is one token).

Corrupt prompts swap the object for another of the same token length whose first token differs, so the answer
flips while every other token stays in place. Named positions: the object's first and last token (`object_first`,
`object`) and the last prompt token (`end`). Splits as in `rcid_tl.tasks.pronoun`: a fixed third of each token-length
group of objects and of the frames held out (`heldout` pairs held-out objects in held-out frames).
"""

from collections import defaultdict
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from rcid_tl.errors import InputError
from rcid_tl.tasks.base import ContrastiveDataset, Example
from rcid_tl.tasks.pronoun import SPLIT_SEED, Split, split_items, take, tokenize_slot
from rcid_tl.tasks.tokens import pad_id

TASK = "tinystories-object"
POSITIONS = ("object_first", "object", "end")

OBJECTS = ("ball", "dog", "cat", "toy", "tree", "box", "car", "cake", "bird", "doll", "book", "hat", "bear", "fish",
           "boat", "flower", "house", "apple", "kite", "bike", "cookie", "rock", "shell", "bag", "cup", "frog", "duck",
           "truck", "train", "star")
# The first four were chosen by measurement on stories260K over every object pair (each ≥ 0.79 accuracy; a fifth,
# "Lily wanted a [OBJECT]. Her mom gave her a" at 0.54, was dropped); the last two were added unmeasured and kept
# as they came (see docs/tasks-tinystories.md).
FRAMES = (
    "Lily had a [OBJECT]. She loved her",
    "Tim saw a big [OBJECT]. He looked at the",
    "One day, Lily found a [OBJECT]. She picked up the",
    "Tim had a red [OBJECT]. He played with his",
    "Lily saw a [OBJECT] in the park. She ran to the",
    "Tim got a new [OBJECT]. He showed his mom the",
)


@dataclass(frozen=True)
class ObjectRecallConfig:
    """`n` None: every prompt of the split, in an order shuffled by `seed`; else the first `n` (`pronoun.take`)."""

    n: int | None = None
    seed: int = 0
    split: Split = Split.HELDOUT
    prepend_bos: bool = True
    objects: tuple[str, ...] = OBJECTS
    frames: tuple[str, ...] = FRAMES

    def __post_init__(self) -> None:
        if self.n is not None and self.n < 1:
            raise InputError(f"--n must be ≥ 1, got {self.n}")
        if any(f.count("[OBJECT]") != 1 for f in self.frames):
            raise InputError("every object-recall frame needs exactly one [OBJECT] slot")
        object.__setattr__(self, "split", Split(self.split))


def build_object_recall(config: ObjectRecallConfig, tokenizer: PreTrainedTokenizerBase) -> ContrastiveDataset:
    """The split's ordered (clean, corrupt) object pairs of equal token length and different first tokens."""
    spelled = {o: tuple(tokenizer.encode(" " + o, add_special_tokens=False)) for o in config.objects}
    by_length: dict[int, list[str]] = defaultdict(list)
    for obj, ids in spelled.items():
        by_length[len(ids)].append(obj)
    chosen = [o for length in sorted(by_length) for o in split_items(by_length[length], config.split)]
    pairs = [(a, b) for a in chosen for b in chosen
             if a != b and len(spelled[a]) == len(spelled[b]) and spelled[a][0] != spelled[b][0]]
    examples = []
    for t in split_items(list(range(len(config.frames))), config.split):
        for clean, corrupt in pairs:
            example = _example(tokenizer, config, t, clean, corrupt)
            if example is not None:
                examples.append(example)
    if not examples:
        raise InputError(f"no {config.split.value} object pairs: no two objects of equal token length with "
                         "different first tokens")
    examples = take(examples, config.n, config.seed)
    return ContrastiveDataset(
        task=TASK if config.split is Split.HELDOUT else f"{TASK}:{config.split.value}", examples=tuple(examples),
        position_names=POSITIONS, metric_name="logit_diff",
        config={"task": TASK, "split": config.split.value, "n": config.n, "seed": config.seed,
                "split_seed": SPLIT_SEED, "prepend_bos": config.prepend_bos},
        pad_id=pad_id(tokenizer),
    )


def _example(tokenizer, config: ObjectRecallConfig, template: int, clean: str, corrupt: str) -> Example | None:
    """The pair in frame `template` (None where the objects do not occupy the same tokens there); the answers are
    each object's first token as the object itself is spelled in the prompt."""
    frame = config.frames[template]
    clean_ids, span = tokenize_slot(tokenizer, frame, "[OBJECT]", clean, config.prepend_bos)
    corrupt_ids, corrupt_span = tokenize_slot(tokenizer, frame, "[OBJECT]", corrupt, config.prepend_bos)
    if span != corrupt_span or len(clean_ids) != len(corrupt_ids) or clean_ids[span[0]] == corrupt_ids[span[0]]:
        return None
    end = len(clean_ids) - 1
    return Example(
        clean_ids=clean_ids, corrupt_ids=corrupt_ids, answer_pos=end, correct_id=clean_ids[span[0]],
        wrong_id=corrupt_ids[span[0]], positions={"object_first": span[0], "object": span[1], "end": end},
        template=template, clean_text=frame.replace("[OBJECT]", clean),
        corrupt_text=frame.replace("[OBJECT]", corrupt), extra={"object": clean, "corrupt_object": corrupt},
    )
