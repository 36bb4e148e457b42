"""Disjoint chain-of-thought data for distillation runs: teacher fine-tuning, student training, validation and test
each come from their own generator stream (split salt and seed), no student or validation problem repeats a test
question, and a hash of every stream's problems is recorded with a run and checked when it resumes."""

import hashlib
import json
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path

from rcid_tl.artifacts import write_json
from rcid_tl.errors import InputError
from rcid_tl.world.cot import CoTExample, CoTSplit, cot_examples


class CoTStream(str, Enum):
    TEACHER = "teacher"  # what the CoT teachers were fine-tuned on (cot_training's TRAIN stream, CoT seed 0)
    STUDENT = "student"  # distillation training problems
    VALIDATION = "validation"  # learning curves and hyper-parameter choice
    TEST = "test"  # the reported numbers (ID here; the OOD splits' own streams at the same seed)


# (split, seed) of each stream: different split salts or seeds give independent random streams (cot_examples).
STREAM_SOURCES: dict[CoTStream, tuple[CoTSplit, int]] = {
    CoTStream.TEACHER: (CoTSplit.TRAIN, 0),
    CoTStream.STUDENT: (CoTSplit.TRAIN, 1),
    CoTStream.VALIDATION: (CoTSplit.ID, 2),
    CoTStream.TEST: (CoTSplit.ID, 1),
}
TEST_SEED = STREAM_SOURCES[CoTStream.TEST][1]


def stream_examples(stream: CoTStream | str, n: int, exclude: Iterable[str] = ()) -> list[CoTExample]:
    """The first `n` problems of `stream` whose question is not in `exclude` (prompts): a stream with duplicates of
    another stream's questions removed, still a deterministic prefix-extending sequence."""
    split, seed = STREAM_SOURCES[CoTStream(stream)]
    blocked, out, start = set(exclude), [], 0
    while len(out) < n:
        chunk = cot_examples(split, max(n - len(out), 16), seed=seed, start=start)
        out += [e for e in chunk if e.prompt not in blocked][: n - len(out)]
        start += len(chunk)
    return out


def test_examples(split: CoTSplit, n: int) -> list[CoTExample]:
    """The test stream of `split` (ID or an OOD split), at the test seed."""
    return cot_examples(split, n, seed=TEST_SEED)


def examples_hash(examples: Iterable[CoTExample]) -> str:
    """sha256 over the problems' full texts, in order."""
    digest = hashlib.sha256()
    for e in examples:
        digest.update(e.text.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def combined_hash(hashes: Mapping[str, str]) -> str:
    """One hash for a run's streams (equal across the arms of a study that all see the same data)."""
    return hashlib.sha256(json.dumps(dict(sorted(hashes.items()))).encode()).hexdigest()


def check_no_overlap(streams: Mapping[str, list[CoTExample]]) -> None:
    """An InputError naming the first two streams that share a question."""
    names = list(streams)
    for i, a in enumerate(names):
        prompts = {e.prompt for e in streams[a]}
        for b in names[i + 1:]:
            shared = prompts & {e.prompt for e in streams[b]}
            if shared:
                raise InputError(f"data streams {a!r} and {b!r} share {len(shared)} questions")


def record_or_check_streams(run_dir: Path, hashes: Mapping[str, str]) -> None:
    """Write `run_dir/data_streams.json` on a fresh run; on a resume, raise unless every recorded hash matches."""
    path = Path(run_dir) / "data_streams.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved != dict(hashes):
            changed = sorted(k for k in set(saved) | set(hashes) if saved.get(k) != hashes.get(k))
            raise InputError(f"{path} records other data for streams {changed}: resuming would train or score on "
                             "other problems; use another output directory")
        return
    write_json(path, dict(hashes))
