"""Training data for distillation: the task's examples in a seeded order, and general text (the embedded world
corpus or any local text file) cut into token rows for mixing, student pre-training and perplexity."""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from jaxtyping import Int
from torch import Tensor
from transformer_lens.model_bridge import TransformerBridge
from transformers import PreTrainedTokenizerBase

from rcid_tl.distill.teacher_text import TEACHER_TEXT, Generation, TeacherText
from rcid_tl.errors import InputError
from rcid_tl.world import Split, WorldConfig, build_tokenizer
from rcid_tl.world.stream import token_rows
from rcid_tl.world.tasks import is_world_tokenizer

WORLD = "world"  # the embedded teachers' synthetic corpus (`rcid_tl.world`)
PPL_ROWS, PPL_LEN = 64, 128  # held-out text for perplexity: 8,192 tokens by default


@dataclass(frozen=True)
class TextSource:
    """General text: `world` (train split for training, validation split for perplexity) or a local text file
    (one document per line; the first 90% of lines train, the last 10% are held out)."""

    spec: str

    def __post_init__(self) -> None:
        if self.spec != WORLD and not Path(self.spec).is_file():
            raise InputError(f"text source {self.spec!r} is neither 'world' nor an existing text file")

    def rows(self, tokenizer: PreTrainedTokenizerBase, n_rows: int, row_len: int, held_out: bool = False) -> Tensor:
        if n_rows == 0:
            return torch.zeros(0, row_len, dtype=torch.long)
        if self.spec == WORLD:
            return _world_rows(tokenizer, n_rows, row_len, held_out)
        return _file_rows(Path(self.spec), tokenizer, n_rows, row_len, held_out)


def resolve_text(spec: str, teacher: TransformerBridge, generation: Generation | None = None
                 ) -> TextSource | TeacherText | None:
    """The general text `spec` names: none, `auto` (the world corpus for a world-tokenizer teacher, else none),
    `world` / a local text file, or `teacher-text` (sampled from `teacher` as `generation` says)."""
    if spec == "none":
        return None
    if spec == TEACHER_TEXT:
        if generation is None:
            raise InputError("--text teacher-text is sampled by the teacher during `rcid-tl distill`; here give "
                             "world, none or a text file")
        return TeacherText(teacher, generation)
    if spec == "auto":
        return TextSource(WORLD) if is_world_tokenizer(teacher.tokenizer) else None
    return TextSource(spec)


def _world_rows(tokenizer: PreTrainedTokenizerBase, n_rows: int, row_len: int, held_out: bool) -> Tensor:
    if not is_world_tokenizer(tokenizer):
        raise InputError("text source 'world' needs a world-tokenizer teacher; give a local text file instead")
    return _cached_world_rows(n_rows, row_len, held_out).clone()


@cache
def _cached_world_rows(n_rows: int, row_len: int, held_out: bool) -> Tensor:
    # Every world tokenizer has the same vocabulary (checked above), so rows depend only on these arguments;
    # generating a corpus shard takes seconds, and one process (a study, the tests) asks for the same rows often.
    split = Split.VALIDATION if held_out else Split.TRAIN
    return token_rows(WorldConfig(seed=0), split, build_tokenizer(), n_rows, row_len)


def _read_lines(path: Path) -> list[str]:
    # Plain reading: every line is tokenised into memory anyway, and `datasets`' text loader would add an Arrow
    # cache under the user's home and a progress bar for no gain.
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"text file {str(path)!r} is not UTF-8 text (offset {err.start}); save it as UTF-8") from None
    return [line for line in text.splitlines() if line.strip()]


def _file_rows(
    path: Path, tokenizer: PreTrainedTokenizerBase, n_rows: int, row_len: int, held_out: bool
) -> Int[Tensor, "row row_len"]:
    lines = _read_lines(path)
    cut = max(1, int(0.9 * len(lines)))
    lines = lines[cut:] if held_out else lines[:cut]
    sep = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
    prefix = [sep] if sep is not None else []
    flat = [t for line in lines for t in prefix + tokenizer.encode(line, add_special_tokens=False)]
    have = len(flat) // row_len
    if have < 1:
        part = "held-out" if held_out else "training"
        raise InputError(f"text file {str(path)!r} has fewer than {row_len} tokens in its {part} part")
    rows = torch.tensor(flat[: have * row_len]).view(have, row_len)
    return rows[torch.arange(n_rows) % have]  # cycle when the file is short


def data_order(n_examples: int, steps: int, batch_size: int, seed: int) -> Int[Tensor, " rows"]:
    """Example indices for `steps` batches: one seeded permutation per epoch, concatenated, so batch t is
    order[t·bs:(t+1)·bs] and a resumed run sees exactly the batches an uninterrupted one would."""
    generator = torch.Generator().manual_seed(seed)
    needed = steps * batch_size
    epochs = -(-needed // n_examples)
    return torch.cat([torch.randperm(n_examples, generator=generator) for _ in range(epochs)])[:needed]
