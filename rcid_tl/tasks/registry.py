"""Build a task from its name (`ioi`, `greater-than`, `tinystories-pronoun[:SPLIT]`, `tinystories-object[:SPLIT]` or
`pairs:FILE`) for a model or a tokenizer; world models get
the world's own word lists."""

from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from rcid_tl.task_defaults import DEFAULT_N
from rcid_tl.checks import MAX_EXAMPLES, check_count
from rcid_tl.errors import InputError
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.greater_than import GreaterThanConfig, build_greater_than
from rcid_tl.tasks.ioi import Corruption, IOIConfig, build_ioi
from rcid_tl.tasks.object_recall import TASK as OBJECT, ObjectRecallConfig, build_object_recall
from rcid_tl.tasks.pairs import PairsConfig, build_pairs
from rcid_tl.tasks.pronoun import TASK as PRONOUN, PronounConfig, Split, build_pronoun
from rcid_tl.world import tasks as world_tasks

TASKS = ("ioi", "greater-than", PRONOUN, f"{PRONOUN}:train", f"{PRONOUN}:all", OBJECT, f"{OBJECT}:train",
         f"{OBJECT}:all", "pairs:FILE")
# the TinyStories tasks: their held-out split by default, `NAME:SPLIT` for another
SPLIT_TASKS = {PRONOUN: (PronounConfig, build_pronoun), OBJECT: (ObjectRecallConfig, build_object_recall)}
BUILT_IN = ("ioi", "greater-than", *(f"{t}{suffix}" for t in SPLIT_TASKS for suffix in
                                     ("", *(f":{s.value}" for s in Split))))


@dataclass(frozen=True)
class TaskSpec:
    """A task as the user names it, plus the sampling options shared by all tasks."""

    name: str
    n: int | None = None  # None: DEFAULT_N sampled examples, every row of a pairs file, every pronoun prompt
    seed: int = 0
    prepend_bos: bool = True
    corruption: str = Corruption.S2_IO.value  # IOI only

    def __post_init__(self) -> None:
        check_count(self.n, "--n", maximum=MAX_EXAMPLES)
        if self.name not in BUILT_IN and not self.name.startswith("pairs:"):
            raise InputError(f"unknown task {self.name!r}; allowed: {', '.join(TASKS)}")
        if self.corruption not in {c.value for c in Corruption}:
            allowed = ", ".join(c.value for c in Corruption)
            raise InputError(f"unknown corruption {self.corruption!r}; allowed: {allowed}")


def build_task(
    spec: object, task: PreTrainedTokenizerBase | str, n_ctx: int | None = None, **options
) -> ContrastiveDataset:
    """The task's examples, checked to fit the model's context; a world-tokenizer model gets the world's own word
    lists (the general lists are mostly unknown words to it, and score at chance).

    Two call forms: `build_task(model, "ioi", n=50, seed=0, corruption="abc")` for a hooked model (its tokenizer and
    context length are used; `options` are TaskSpec's fields), and `build_task(TaskSpec(...), tokenizer, n_ctx)`."""
    if isinstance(spec, TaskSpec):
        if options:
            raise TypeError(f"build_task(TaskSpec, tokenizer) takes no task options; got {', '.join(options)}")
        dataset = _build(spec, task)
    else:
        if not isinstance(task, str):
            raise TypeError("build_task(model, task_name, ...) needs the task's name, such as 'ioi'")
        dataset = _build(TaskSpec(task, **options), spec.tokenizer)
        n_ctx = spec.cfg.n_ctx if n_ctx is None else n_ctx
    if n_ctx is not None:
        dataset.check_context(n_ctx)
    return dataset


def _build(spec: TaskSpec, tokenizer: PreTrainedTokenizerBase) -> ContrastiveDataset:
    on_world = world_tasks.is_world_tokenizer(tokenizer)
    if spec.name == "ioi":
        lists = world_tasks.ioi_lists() if on_world else {}
        return build_ioi(IOIConfig(n=spec.n or DEFAULT_N, seed=spec.seed, corruption=Corruption(spec.corruption),
                                   prepend_bos=spec.prepend_bos, **lists), tokenizer)
    if spec.name == "greater-than":
        lists = world_tasks.greater_than_lists() if on_world else {}
        config = GreaterThanConfig(n=spec.n or DEFAULT_N, seed=spec.seed, prepend_bos=spec.prepend_bos, **lists)
        return build_greater_than(config, tokenizer)
    task, _, split = spec.name.partition(":")
    if task in SPLIT_TASKS:  # the held-out split unless a suffix names another
        config, build = SPLIT_TASKS[task]
        return build(config(n=spec.n, seed=spec.seed, split=Split(split or Split.HELDOUT.value),
                            prepend_bos=spec.prepend_bos), tokenizer)
    path = Path(spec.name.removeprefix("pairs:"))
    return build_pairs(PairsConfig(path=path, n=spec.n, prepend_bos=spec.prepend_bos), tokenizer)
