"""Build a task from its command-line spec: `ioi`, `greater-than`, or `pairs:FILE`."""

from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from rcid_tl.checks import MAX_EXAMPLES, check_count
from rcid_tl.errors import InputError
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.greater_than import GreaterThanConfig, build_greater_than
from rcid_tl.tasks.ioi import Corruption, IOIConfig, build_ioi
from rcid_tl.tasks.pairs import PairsConfig, build_pairs

TASKS = ("ioi", "greater-than", "pairs:FILE")
DEFAULT_N = 100  # examples sampled for ioi and greater-than when no count is given


@dataclass(frozen=True)
class TaskSpec:
    """A task as the user names it, plus the sampling options shared by all tasks."""

    name: str
    n: int | None = None  # None: 100 sampled examples, or every row of a pairs file
    seed: int = 0
    prepend_bos: bool = True
    corruption: str = Corruption.S2_IO.value  # IOI only

    def __post_init__(self) -> None:
        check_count(self.n, "--n", maximum=MAX_EXAMPLES)
        if self.name not in ("ioi", "greater-than") and not self.name.startswith("pairs:"):
            raise InputError(f"unknown task {self.name!r}; allowed: {', '.join(TASKS)}")
        if self.corruption not in {c.value for c in Corruption}:
            allowed = ", ".join(c.value for c in Corruption)
            raise InputError(f"unknown corruption {self.corruption!r}; allowed: {allowed}")


def build_task(spec: TaskSpec, tokenizer: PreTrainedTokenizerBase, n_ctx: int | None = None) -> ContrastiveDataset:
    """The task's examples for `tokenizer`; a world-tokenizer model gets the world's own word lists. With `n_ctx`
    (the model's context length), every example is checked to fit it."""
    dataset = _build(spec, tokenizer)
    if n_ctx is not None:
        dataset.check_context(n_ctx)
    return dataset


def _build(spec: TaskSpec, tokenizer: PreTrainedTokenizerBase) -> ContrastiveDataset:
    from rcid_tl.world import tasks as world_tasks  # deferred: the world package builds its vocabulary on import

    on_world = world_tasks.is_world_tokenizer(tokenizer)
    if spec.name == "ioi":
        lists = world_tasks.ioi_lists() if on_world else {}
        return build_ioi(IOIConfig(n=spec.n or DEFAULT_N, seed=spec.seed, corruption=Corruption(spec.corruption),
                                   prepend_bos=spec.prepend_bos, **lists), tokenizer)
    if spec.name == "greater-than":
        lists = world_tasks.greater_than_lists() if on_world else {}
        config = GreaterThanConfig(n=spec.n or DEFAULT_N, seed=spec.seed, prepend_bos=spec.prepend_bos, **lists)
        return build_greater_than(config, tokenizer)
    path = Path(spec.name.removeprefix("pairs:"))
    return build_pairs(PairsConfig(path=path, n=spec.n, prepend_bos=spec.prepend_bos), tokenizer)
