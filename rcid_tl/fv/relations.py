"""Relation input: (input, output) word pairs per relation `q_id`, from a relation CSV, the Todd
et al. 2024 dataset format (a directory of `{"input", "output"}` JSON lists, `q_id` = file stem), or the synthetic
world."""

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from rcid_tl.artifacts import write_csv
from rcid_tl.errors import InputError
from rcid_tl.world.relations import RELATIONS

WORLD = "world"  # the built-in source: the relations the embedded world teachers were trained on

Pair = tuple[str, str]


@dataclass(frozen=True)
class RelationSet:
    """Ordered pairs per relation; `source` says where they came from (recorded in every snapshot)."""

    source: str
    pairs: dict[str, tuple[Pair, ...]]

    @property
    def qids(self) -> tuple[str, ...]:
        return tuple(self.pairs)

    def select(self, qids: list[str] | None) -> "RelationSet":
        """Only `qids` (in the order given), or everything when None; unknown ids are an InputError."""
        if qids is None:
            return self
        unknown = [q for q in qids if q not in self.pairs]
        if unknown:
            raise InputError(f"unknown q_id {unknown[0]!r} in {self.source}; it has: {', '.join(self.qids)}")
        return RelationSet(self.source, {q: self.pairs[q] for q in dict.fromkeys(qids)})


def read_relation_csv(
    path: Path, input_col: str = "input", output_col: str = "output", qid_col: str = "q_id"
) -> RelationSet:
    """A CSV with one row per pair: `qid_col`, `input_col`, `output_col` (other columns are ignored)."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in (qid_col, input_col, output_col) if c not in header]
        if missing:
            raise InputError(f"relation CSV {path} lacks column(s) {', '.join(map(repr, missing))}; "
                             f"it has: {', '.join(header) or 'no header'}")
        pairs: dict[str, list[Pair]] = {}
        for line, row in enumerate(reader, start=2):
            qid, x, y = (row[c] for c in (qid_col, input_col, output_col))
            if not qid or not x or not y or not x.strip() or not y.strip():
                raise InputError(f"relation CSV {path}, line {line}: empty {qid_col}, {input_col} or {output_col}")
            pairs.setdefault(qid.strip(), []).append((x.strip(), y.strip()))
    if not pairs:
        raise InputError(f"relation CSV {path} has no rows")
    return RelationSet(str(path), {q: tuple(p) for q, p in pairs.items()})


def read_todd_dataset(path: Path) -> RelationSet:
    """Todd et al.'s `dataset_files/<kind>/<q_id>.json` lists of {"input", "output"}: a directory or one file."""
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise InputError(f"relation directory {path} holds no .json files")
    pairs: dict[str, tuple[Pair, ...]] = {}
    for file in files:
        try:
            rows = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise InputError(f"relation file {file} is not valid JSON: {err}") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InputError(f"relation file {file} must be a JSON list of {{\"input\", \"output\"}} objects")
        bad = next((i for i, r in enumerate(rows) if not _is_text_pair(r)), None)
        if bad is not None:
            raise InputError(f"relation file {file}, item {bad}: needs non-empty text fields 'input' and 'output'")
        pairs[file.stem] = tuple((str(r["input"]).strip(), str(r["output"]).strip()) for r in rows)
    return RelationSet(str(path), pairs)


def _is_text_pair(row: dict) -> bool:
    return all(isinstance(row.get(k), str) and row[k].strip() for k in ("input", "output"))


def world_relation_set() -> RelationSet:
    """The synthetic world's relations (`rcid_tl.world.relations`), every pair, in their fixed order."""
    return RelationSet(WORLD, {q: tuple(p) for q, p in RELATIONS.items()})


def load_relations(
    spec: str | Path, input_col: str = "input", output_col: str = "output", qids: list[str] | None = None
) -> RelationSet:
    """`world`, a relation CSV, or a Todd-format JSON file/directory; optionally only the relations `qids`."""
    if str(spec) == WORLD:
        return world_relation_set().select(qids)
    path = Path(spec)
    if not path.exists():
        raise InputError(f"relation input {str(spec)!r} does not exist; give a CSV, a Todd-format directory, or "
                         f"'{WORLD}'")
    if path.is_file() and path.suffix.lower() == ".csv":
        return read_relation_csv(path, input_col, output_col).select(qids)
    return read_todd_dataset(path).select(qids)


def write_relation_csv(path: Path, relations: RelationSet) -> Path:
    """The relations as a `q_id,input,output` CSV (what `read_relation_csv` reads back)."""
    rows = [(q, x, y) for q, pairs in relations.pairs.items() for x, y in pairs]
    return write_csv(path, ("q_id", "input", "output"), rows)


def parse_qids(text: str | None) -> list[str] | None:
    """A comma list of q_ids, or None for all."""
    if text is None or not text.strip() or text.strip() == "all":
        return None
    return [q.strip() for q in text.split(",") if q.strip()]
