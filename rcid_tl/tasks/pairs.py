"""User-supplied contrastive pairs from a JSONL or CSV file with fields clean, corrupt, answer, wrong.

Clean and corrupt must have the same number of tokens; answers must be single tokens (write the leading space,
e.g. " Mary"). Named positions: `diff` (first token where clean and corrupt differ) and `end` (the answer position).
"""

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from transformers import PreTrainedTokenizerBase

from rcid_tl.errors import InputError
from rcid_tl.tasks.base import ContrastiveDataset, Example
from rcid_tl.tasks.tokens import pad_id

POSITIONS = ("diff", "end")
FIELDS = ("clean", "corrupt", "answer", "wrong")


@dataclass(frozen=True)
class PairsConfig:
    path: Path
    n: int | None = None  # None: every row
    prepend_bos: bool = True

    def __post_init__(self) -> None:
        if self.n is not None and self.n < 1:
            raise InputError(f"--n must be ≥ 1, got {self.n}")


def read_rows(path: Path) -> list[dict[str, object]]:
    """Rows of a .jsonl/.json-lines or .csv file, each with the four required text fields (other fields, such as an
    integer or null `template`, keep their JSON types)."""
    if not path.is_file():
        raise InputError(f"pairs file {str(path)!r} does not exist")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise InputError(f"pairs file {path.name} is not UTF-8 text (byte {err.object[err.start]:#04x} at offset "
                         f"{err.start}); save it as UTF-8") from None
    if path.suffix.lower() == ".csv":
        try:
            rows = list(csv.DictReader(io.StringIO(text, newline="")))
        except csv.Error as err:  # e.g. a field over csv's size limit (128 KiB): no pair is that long
            raise InputError(f"pairs file {path.name} is not a CSV file rcid-tl reads ({err})") from None
    else:
        rows = []
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except (json.JSONDecodeError, RecursionError):  # RecursionError: nested deeper than the parser goes
                raise InputError(f"pairs file {path.name}, line {i}: not valid JSON") from None
    for i, row in enumerate(rows, start=1):
        missing = [f for f in FIELDS if not isinstance(row, dict) or not isinstance(row.get(f), str)]
        if missing:
            raise InputError(f"pairs file {path.name}, row {i}: missing or non-text field {missing[0]!r}; "
                             f"each row needs {', '.join(FIELDS)}")
    if not rows:
        raise InputError(f"pairs file {path.name} has no rows")
    return rows


def build_pairs(config: PairsConfig, tokenizer: PreTrainedTokenizerBase) -> ContrastiveDataset:
    rows = read_rows(config.path)
    if config.n is not None:
        if config.n > len(rows):
            raise InputError(f"--n {config.n} exceeds the {len(rows)} rows of {config.path.name}")
        rows = rows[: config.n]
    examples = tuple(_example(row, i, tokenizer, config) for i, row in enumerate(rows, start=1))
    return ContrastiveDataset(
        task=f"pairs:{config.path}", examples=examples, position_names=POSITIONS, metric_name="logit_diff",
        config={"task": "pairs", "path": str(config.path), "n": len(examples), "prepend_bos": config.prepend_bos},
        pad_id=pad_id(tokenizer),
    )


def _example(row: dict, index: int, tokenizer: PreTrainedTokenizerBase, config: PairsConfig) -> Example:
    where = f"pairs file {config.path.name}, row {index}"
    bos = [tokenizer.bos_token_id] if config.prepend_bos and tokenizer.bos_token_id is not None else []
    clean = bos + _encode(tokenizer, row, "clean", where)
    corrupt = bos + _encode(tokenizer, row, "corrupt", where)
    if len(clean) != len(corrupt):
        raise InputError(f"{where}: clean is {len(clean)} tokens but corrupt is {len(corrupt)}; they must match")
    answers = []
    for field in ("answer", "wrong"):
        ids = _encode(tokenizer, row, field, where)
        if len(ids) != 1:
            raise InputError(f"{where}: {field} {row[field]!r} is {len(ids)} tokens; it must be exactly one")
        answers.append(ids[0])
    differ = [i for i, (a, b) in enumerate(zip(clean, corrupt)) if a != b]
    if not differ:
        raise InputError(f"{where}: clean and corrupt are identical")
    end = len(clean) - 1
    return Example(
        clean_ids=tuple(clean), corrupt_ids=tuple(corrupt), answer_pos=end, correct_id=answers[0],
        wrong_id=answers[1], positions={"diff": differ[0], "end": end}, template=_template(row, where),
        clean_text=row["clean"], corrupt_text=row["corrupt"],
    )


def _encode(tokenizer: PreTrainedTokenizerBase, row: dict, field: str, where: str) -> list[int]:
    """Token ids of one field; text the tokenizer can only map to its unknown token is an error, not a silent
    `<unk>` that every unknown word would share."""
    ids = tokenizer.encode(row[field], add_special_tokens=False)
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id in ids:
        raise InputError(f"{where}: {field} {row[field]!r} contains text this tokenizer maps to its unknown token "
                         f"{tokenizer.unk_token!r}")
    return ids


def _template(row: dict, where: str) -> int:
    """The optional `template` field: an integer (mean ablation groups examples by it), 0 when absent."""
    value = row.get("template", 0)
    if value in (None, ""):
        return 0
    try:
        if isinstance(value, bool) or float(value) != int(float(value)):
            raise ValueError
        return int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where}: template {value!r} is not an integer") from None
