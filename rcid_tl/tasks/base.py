"""Contrastive examples and datasets: the frozen, validated, tokenised form every task takes.

Strings become tokens exactly once, in a task builder. Each example carries its clean/corrupt ids (BOS included when
used), the answer position, correct/wrong answer ids, named positions with a modified flag each, and its template.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from jaxtyping import Int
from torch import Tensor

from rcid_tl.errors import InputError


@dataclass(frozen=True)
class Example:
    """One clean/corrupt pair. `positions` maps names (io, s2, end, ...) to token indices in both sequences."""

    clean_ids: tuple[int, ...]
    corrupt_ids: tuple[int, ...]
    answer_pos: int
    correct_id: int
    wrong_id: int
    positions: Mapping[str, int]
    template: int
    clean_text: str
    corrupt_text: str
    extra: Mapping[str, Any] = field(default_factory=dict)  # task-specific fields, e.g. Greater-Than's "yy"

    def __post_init__(self) -> None:
        if len(self.clean_ids) != len(self.corrupt_ids):
            raise InputError(
                f"clean and corrupt lengths differ ({len(self.clean_ids)} vs {len(self.corrupt_ids)} tokens) "
                f"for {self.clean_text!r} / {self.corrupt_text!r}; they must match token for token"
            )
        for name, pos in self.positions.items():
            if not 0 <= pos < len(self.clean_ids):
                raise InputError(f"position {name}={pos} is outside the {len(self.clean_ids)}-token example")

    @property
    def modified(self) -> dict[str, bool]:
        """Whether the corruption changed the token at each named position."""
        return {n: self.clean_ids[p] != self.corrupt_ids[p] for n, p in self.positions.items()}

    def to_json(self) -> dict[str, Any]:
        return {
            "clean_ids": list(self.clean_ids), "corrupt_ids": list(self.corrupt_ids), "answer_pos": self.answer_pos,
            "correct_id": self.correct_id, "wrong_id": self.wrong_id, "positions": dict(self.positions),
            "modified": self.modified, "template": self.template, "clean_text": self.clean_text,
            "corrupt_text": self.corrupt_text, **dict(self.extra),
        }


@dataclass(frozen=True)
class Batch:
    """Right-padded tensors for a slice of a dataset. Padding sits after `answer_pos`, so under causal attention it
    never influences any position we read, patch or score."""

    clean: Int[Tensor, "batch pos"]
    corrupt: Int[Tensor, "batch pos"]
    answer_pos: Int[Tensor, " batch"]
    correct: Int[Tensor, " batch"]
    wrong: Int[Tensor, " batch"]
    positions: Mapping[str, Int[Tensor, " batch"]]
    template: Int[Tensor, " batch"]
    threshold: Int[Tensor, " batch"] | None  # Greater-Than's YY; None for other tasks

    def position(self, name: str) -> Int[Tensor, " batch"]:
        if name not in self.positions:
            raise InputError(f"unknown position {name!r}; this task has: {', '.join(self.positions)}")
        return self.positions[name]

    def __len__(self) -> int:
        return len(self.clean)

    def take(self, rows: Int[Tensor, " rows"]) -> "Batch":
        """The rows `rows` (repeats allowed), e.g. one row per (site, example) pair of a batched sweep."""
        pick = lambda t: None if t is None else t[rows]  # noqa: E731
        return Batch(
            pick(self.clean), pick(self.corrupt), pick(self.answer_pos), pick(self.correct), pick(self.wrong),
            {k: pick(v) for k, v in self.positions.items()}, pick(self.template), pick(self.threshold),
        )


@dataclass(frozen=True)
class ContrastiveDataset:
    """A task's examples plus what is needed to score them. `config` records how they were built."""

    task: str
    examples: tuple[Example, ...]
    position_names: tuple[str, ...]
    metric_name: str
    config: Mapping[str, Any]
    pad_id: int
    year_ids: tuple[int, ...] | None = None  # Greater-Than: ids of "00".."99"

    def __post_init__(self) -> None:
        if not self.examples:
            raise InputError(f"task {self.task!r} produced no examples")

    def __len__(self) -> int:
        return len(self.examples)

    def check_context(self, n_ctx: int) -> None:
        """InputError unless every example fits a model whose context is `n_ctx` tokens (checked before a forward,
        where an over-long row would fail deep inside the position embedding)."""
        for i, e in enumerate(self.examples, start=1):
            if len(e.clean_ids) > n_ctx:
                what = f"row {i}" if self.task.startswith("pairs:") else f"example {i}"
                raise InputError(f"task {self.task}, {what} is {len(e.clean_ids)} tokens, more than the model's "
                                 f"context of {n_ctx}")

    def check_positions(self, names: Sequence[str]) -> list[str]:
        unknown = [n for n in names if n not in self.position_names]
        if unknown:
            raise InputError(f"unknown position {unknown[0]!r}; task {self.task} has: {', '.join(self.position_names)}")
        return list(names)

    def batch(self, rows: Sequence[int] | None = None) -> Batch:
        """Tensors for `rows` (all examples by default), right-padded with `pad_id`."""
        chosen = [self.examples[i] for i in (range(len(self)) if rows is None else rows)]
        width = max(len(e.clean_ids) for e in chosen)
        pad = lambda ids: list(ids) + [self.pad_id] * (width - len(ids))  # noqa: E731
        long = lambda xs: torch.tensor(xs, dtype=torch.long)  # noqa: E731
        threshold = None
        if all("yy" in e.extra for e in chosen):
            threshold = long([e.extra["yy"] for e in chosen])
        return Batch(
            clean=long([pad(e.clean_ids) for e in chosen]),
            corrupt=long([pad(e.corrupt_ids) for e in chosen]),
            answer_pos=long([e.answer_pos for e in chosen]),
            correct=long([e.correct_id for e in chosen]),
            wrong=long([e.wrong_id for e in chosen]),
            positions={n: long([e.positions[n] for e in chosen]) for n in self.position_names},
            template=long([e.template for e in chosen]),
            threshold=threshold,
        )
