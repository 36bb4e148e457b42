"""What each kind of saved result JSON must hold for `load_result` to rebuild it: a file that lacks a field, or holds
one of the wrong type, is an InputError naming the file and the field (e.g. `effects[3].per_example[0]`)."""

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rcid_tl.errors import InputError

Check = Callable[[Any, str, Path], None]  # (value, where it sits, the file) → None, or an InputError


def _fail(path: Path, where: str, wanted: str, value: Any) -> InputError:
    got = "null" if value is None else type(value).__name__
    return InputError(f"result file {str(path)!r}: field {where} must be {wanted}, got {got}")


def _kind_of(test: Callable[[Any], bool], wanted: str) -> Check:
    def check(value: Any, where: str, path: Path) -> None:
        if not test(value):
            raise _fail(path, where, wanted, value)
    return check


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


TEXT = _kind_of(lambda v: isinstance(v, str), "a string")
INDEX = _kind_of(lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1_000_000,
                 "a layer or head index (an integer ≥ 0)")
NUMBER = _kind_of(_number, "a number")
MAYBE_NUMBER = _kind_of(lambda v: v is None or _number(v), "a number or null")
MAYBE_INDEX = _kind_of(lambda v: v is None or isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1_000_000,
                      "a head index (an integer ≥ 0) or null")
FLAG = _kind_of(lambda v: isinstance(v, bool), "true or false")
OBJECT = _kind_of(lambda v: isinstance(v, dict), "an object")
ANY: Check = lambda value, where, path: None  # noqa: E731


def HEAD(value: Any, where: str, path: Path) -> None:  # noqa: N802  (a check, named like the other constants)
    TEXT(value, where, path)
    parts = value.split(".")
    if len(parts) != 2 or not all(p.isascii() and p.isdigit() for p in parts):
        raise InputError(f"result file {str(path)!r}: field {where} must be a head as LAYER.HEAD, got {value!r}")


def list_of(item: Check, length: int | None = None, *, nonempty: bool = False) -> Check:
    wanted = f"a list of {length}" if length is not None else "a non-empty list" if nonempty else "a list"

    def check(value: Any, where: str, path: Path) -> None:
        if not isinstance(value, list) or length is not None and len(value) != length or nonempty and not value:
            raise _fail(path, where, wanted, value)
        for i, x in enumerate(value):
            item(x, f"{where}[{i}]", path)
    return check


def either(*checks: Check, wanted: str) -> Check:
    def check(value: Any, where: str, path: Path) -> None:
        for one in checks:
            try:
                one(value, where, path)
                return
            except InputError:
                continue
        raise _fail(path, where, wanted, value)
    return check


def record(required: dict[str, Check], optional: dict[str, Check] | None = None, *, closed: bool = False) -> Check:
    """An object with `required` fields and maybe `optional` ones (no others when `closed`)."""
    optional = optional or {}

    def check(value: Any, where: str, path: Path) -> None:
        OBJECT(value, where or "(top level)", path)
        prefix = f"{where}." if where else ""
        for key, field in required.items():
            if key not in value:
                raise InputError(f"result file {str(path)!r}: field {prefix}{key} is missing")
            field(value[key], prefix + key, path)
        for key, field in optional.items():
            if key in value:
                field(value[key], prefix + key, path)
        extra = sorted(set(value) - set(required) - set(optional))
        if closed and extra:
            raise InputError(f"result file {str(path)!r}: field {prefix}{extra[0]} is not one this result has")
    return check


NUMBERS = list_of(MAYBE_NUMBER)
PAIR = list_of(MAYBE_NUMBER, length=2)
# the run facts every result's frame reads (rcid_tl.frames.frame_attrs)
HEADER = {"examples": list_of(ANY), "task_config": OBJECT}

SCHEMAS: dict[str, Check] = {
    "patch": record({"direction": TEXT, "effects": list_of(record(
        {"site": TEXT, "layer": INDEX, "position": TEXT, "per_example": NUMBERS}, {"head": INDEX, "mean": MAYBE_NUMBER}),
        nonempty=True)},
        HEADER),
    "knockout": record({"method": TEXT, "ablations": list_of(record(
        {"heads": list_of(HEAD, nonempty=True),
         "positions": either(TEXT, list_of(TEXT), wanted="'all' or a list of positions"),
         "metric": NUMBERS, "delta": NUMBERS}, {"mean": MAYBE_NUMBER}), nonempty=True)},
        {"n_layers": INDEX, "n_heads": INDEX, **HEADER}),
    "consistency": record({"checkpoints": list_of(record(
        {"teacher_layer": INDEX, "student_layer": INDEX, "site": TEXT, "position": TEXT, "modified": FLAG,
         "pearson_r": MAYBE_NUMBER, "delta_teacher": NUMBERS, "delta_student": NUMBERS})), "mean_r": MAYBE_NUMBER,
        "mean_r_ci": PAIR},
        {"r_out": MAYBE_NUMBER, "mechanistic_r": MAYBE_NUMBER, "mechanistic_r_ci": PAIR,
         "mechanistic_r_weighted": MAYBE_NUMBER, **HEADER}),
    "checkpoints": record({"checkpoints": list_of(record(
        {"layer": INDEX, "position": TEXT, "site": TEXT, "mean_norm": NUMBER, "modified": FLAG},
        {"head": MAYBE_INDEX, "saturation": MAYBE_NUMBER, "spread": MAYBE_NUMBER}, closed=True))}),
}
# a student's scores: `rcid-tl evaluate` writes them under "consistency", `rcid-tl distill` under "causal_consistency"
STUDENT_CONSISTENCY = record({"checkpoints": list_of(record({}, {"pearson_r": MAYBE_NUMBER})), "mean_r": MAYBE_NUMBER,
                              "mean_r_ci": list_of(MAYBE_NUMBER)})
STUDENT = record({}, {"task_config": OBJECT})


def check_result(kind: str, payload: dict[str, Any], path: Path) -> None:
    """An InputError naming `path` and the first field of `payload` that a `kind` result cannot be rebuilt from."""
    if kind in SCHEMAS:
        SCHEMAS[kind](payload, "", path)
        return
    STUDENT(payload, "", path)
    key = "consistency" if payload.get("consistency") else "causal_consistency"
    if key not in payload:
        raise InputError(f"result file {str(path)!r}: field consistency (or causal_consistency) is missing")
    STUDENT_CONSISTENCY(payload[key], key, path)
