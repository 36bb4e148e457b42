"""Property-based tests: whatever a user hands them, the pairs-file parser, the option validators and load_result
either accept it or raise the project's one-line InputError, never another exception."""

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rcid_tl import checks
from rcid_tl.cli import options
from rcid_tl.errors import InputError, parse_choice
from rcid_tl.hooks.names import Site
from rcid_tl.out_lock import release_outs
from rcid_tl.results import load_result
from rcid_tl.tasks.pairs import FIELDS, PairsConfig, build_pairs
from tests.faults.test_load_result import CHECKPOINT, PATCH

# The default run draws the same examples every time (derandomize), so CI gates on a fixed search; set
# RCID_TL_FUZZ_EXPLORE=1 to draw new ones, and add what they find as an @example or a regression test.
FUZZ = settings(max_examples=150, deadline=None, database=None,  # nothing written into the checkout
                derandomize=not os.environ.get("RCID_TL_FUZZ_EXPLORE"),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])  # slow: a machine shared with other jobs

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)
WORDS = st.sampled_from([" Mary", " John", " gave", " a", " drink", " to", " the", " store", "When", " 17", " 32",
                         "", " ", "\n", "zzqx", "\u2028", "\x00", "é", "1e9", "nan"])
TEXT = st.lists(WORDS, max_size=6).map("".join) | st.text(max_size=12)


def _row():
    """A pairs row: mostly well-formed texts, sometimes a field missing or of another JSON type, maybe a template."""
    row = st.fixed_dictionaries({f: TEXT | TEXT | JSON for f in FIELDS}, optional={"template": JSON})
    dropped = st.sets(st.sampled_from(FIELDS), max_size=1)
    return st.tuples(row, dropped).map(lambda pair: {k: v for k, v in pair[0].items() if k not in pair[1]})


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=sorted({k for r in rows for k in r}), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: json.dumps(v) if not isinstance(v, str) else v for k, v in r.items()} for r in rows)
    return out.getvalue()


PAIRS_FILES = st.one_of(
    st.tuples(st.just(".jsonl"), st.lists(_row(), max_size=4).map(lambda rs: "\n".join(map(json.dumps, rs)))),
    st.tuples(st.just(".csv"), st.lists(_row(), min_size=1, max_size=4).map(_csv)),
    st.tuples(st.sampled_from([".jsonl", ".csv"]), st.text(max_size=80)),
    st.tuples(st.sampled_from([".jsonl", ".csv"]), st.binary(max_size=80)),
)


@FUZZ
@given(file=PAIRS_FILES, n=st.none() | st.integers(-2, 6), bos=st.booleans())
@example(file=(".jsonl", '{"clean": "a", "corrupt": "b", "answer": " a", "wrong": " b", "template": 1e400}'), n=None,
         bos=True)
@example(file=(".csv", "clean,corrupt,answer,wrong\n" + "x" * 200_000 + ",b,c,d\n"), n=None, bos=True)
@example(file=(".jsonl", "[" * 5000), n=None, bos=True)
def test_pairs_files_parse_or_say_why_in_one_line(gpt2_tokenizer, file, n, bos):
    suffix, content = file
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"pairs{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8", "surrogatepass"))
        try:
            dataset = build_pairs(PairsConfig(path, n=n, prepend_bos=bos), gpt2_tokenizer)
        except InputError as err:
            assert "\n" not in str(err)
            return
    for ex in dataset.examples:  # what it accepted is a usable contrastive pair
        assert len(ex.clean_ids) == len(ex.corrupt_ids) and ex.clean_ids != ex.corrupt_ids
        assert ex.positions["end"] == len(ex.clean_ids) - 1 and 0 <= ex.positions["diff"] <= ex.positions["end"]


def _one_line_or_fine(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except InputError as err:
        assert "\n" not in str(err)
        return None


@FUZZ
@given(value=st.none() | st.integers(), minimum=st.integers(-3, 3), maximum=st.none() | st.integers(0, 10**6),
       real=st.floats(), signed=st.floats(), inclusive=st.booleans())
def test_number_validators(value, minimum, maximum, real, signed, inclusive):
    _one_line_or_fine(checks.check_count, value, "--n", minimum=minimum, maximum=maximum)
    try:
        checks.check_real(real, "--lr", minimum=0.0, inclusive=inclusive)
        assert math.isfinite(real) and real >= 0
    except InputError as err:
        assert "\n" not in str(err) and not (math.isfinite(real) and (real > 0 or real == 0 and inclusive))
    _one_line_or_fine(checks.check_finite, signed, "--alpha")


@FUZZ
@given(save=st.integers(-5, 10**6), old=st.none() | st.integers(-5, 100), every=st.none() | st.integers(-5, 10**6))
def test_training_interval_options(save, old, every):
    interval = _one_line_or_fine(options.log_every, options.save_every(save, old) if old is None else save,
                                 every=every)
    if interval is not None:
        assert interval >= 1 and save % interval == 0 and (every or save) % interval == 0


NAMES = st.text(max_size=300) | st.sampled_from(["", ".", "..", "-x", "a/b", "a\x00b", "x" * 300, "~", "~root/x",
                                                  "org/name", "./local", "cuda:99", "cpu", "mps", " cuda "])


@FUZZ
@given(text=NAMES)
def test_text_validators(text):
    name = _one_line_or_fine(checks.check_plain_name, text, "--run-id")
    if name is not None:  # a plain name is one path component that a directory listing shows
        assert "/" not in name and name not in {".", ".."} and not name.startswith((".", "-"))
    _one_line_or_fine(checks.check_model_path, text)
    _one_line_or_fine(checks.check_device, text)
    _one_line_or_fine(parse_choice, Site, text, "site")


@FUZZ
@given(relative=NAMES, kind=st.sampled_from(["directory", "file"]))
def test_out_paths(relative, kind):
    with tempfile.TemporaryDirectory() as tmp:
        try:
            _one_line_or_fine(checks.check_out, Path(tmp) / relative, "--out", kind=kind)
        finally:
            release_outs()


def _mutations(payload: dict):
    """A saved result with one field (at any depth) replaced by arbitrary JSON, or removed."""
    paths = []

    def walk(node, trail):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((*trail, k))
                walk(v, (*trail, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((*trail, i))
                walk(v, (*trail, i))
    walk(payload, ())

    def mutate(choice):
        where, replacement, remove = choice
        copy = json.loads(json.dumps(payload))
        node = copy
        for key in where[:-1]:
            node = node[key]
        if remove and isinstance(node, dict):
            del node[where[-1]]
        else:
            node[where[-1]] = replacement
        return copy
    return st.tuples(st.sampled_from(paths), JSON, st.booleans()).map(mutate)


CONSISTENCY = {"kind": "consistency", "model": "m", "examples": [{}, {}], "checkpoints": [CHECKPOINT], "mean_r": 0.9,
               "mean_r_ci": [0.8, 1.0], "r_out": None}
KNOCKOUT = {"kind": "knockout", "method": "zero", "n_layers": 2, "n_heads": 4, "task_config": {"corruption": "abc"},
            "ablations": [{"heads": ["1.2"], "positions": ["end"], "metric": [1.0, 2.0], "delta": [0.1, None]}]}
CHECKPOINTS = {"kind": "checkpoints", "model": "m", "checkpoints": [
    {"layer": 0, "position": "end", "site": "resid_post", "mean_norm": 1.0, "modified": True, "head": None}]}
DISTILL = {"kind": "distill", "method": "rcid", "causal_consistency": {
    "checkpoints": [{"teacher_layer": 0, "student_layer": 0, "pearson_r": 0.5}], "mean_r": 0.5, "mean_r_ci": [0, 1]}}
RESULTS = st.one_of(JSON, *(_mutations(p) for p in (PATCH, CONSISTENCY, KNOCKOUT, CHECKPOINTS, DISTILL)))


@FUZZ
@given(payload=RESULTS)
def test_load_result_loads_or_names_the_problem(payload):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "result.json"
        path.write_text(json.dumps(payload))
        result = _one_line_or_fine(load_result, path)
    if result is not None:
        result.to_frame()  # what loaded is usable
