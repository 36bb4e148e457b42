"""The verdict each known-answer student demands of an instrument, and whether the instrument gave it."""

from collections.abc import Sequence
from typing import Any

from rcid_tl.validation.students import KnownStudent

EXACT_MIN = 0.95  # an exact relabelling or reparametrisation must score at least this
CHANCE_MAX = 0.1  # fresh random weights must score within ±0.1 (one r at n = 200 has standard error ~0.07; the
#                   mean over several checkpoints less)
DROP_MARGIN = 0.3  # the ablated heads' agreement must sit this far below the intact teacher's (1 at those heads)

KNOWN = {
    "teacher": "r = 1 (itself)",
    "permuted": "r = 1 (heads relabelled, same function)",
    "rotated": "r = 1 (value spaces rotated, same function)",
    "rescaled": "r = 1 (value heads rescaled, same function)",
    "random": f"r ≈ 0 (|r| ≤ {CHANCE_MAX})",
    "merged": "the silent head stands for nothing, the kept head for itself",
    "ablation-finetuned": f"r at the ablated heads ≤ teacher's − {DROP_MARGIN}",
}


def judge(config, students: Sequence[KnownStudent], measurements: dict[str, dict[str, dict[str, Any]]],
          checkpoints, ablated: Sequence[tuple[int, int]]) -> tuple[list[dict[str, Any]], dict[str, dict]]:
    """Per case its known answer, and per case and instrument {value, shown, passed, why}."""
    cases, verdicts = [], {}
    ladder = ["teacher", *(s.name for s in students if s.name.startswith("noise-"))]
    for student in students:
        name = student.name
        known = KNOWN.get(name, "falls as σ grows (monotone)" if name.startswith("noise-") else student.expected)
        cases.append({"name": name, "known": known, "description": student.description})
        verdicts[name] = {i.name: _verdict(name, i.name, measurements, ladder, student, ablated)
                          for i in config.instruments}
    return cases, verdicts


def _verdict(case: str, instrument: str, measurements, ladder: list[str], student: KnownStudent,
             ablated: Sequence[tuple[int, int]]) -> dict[str, Any]:
    m = measurements[case][instrument]
    r = m["mechanistic_r"]
    if case in ("teacher", "permuted", "rotated", "rescaled"):
        return _result(r, r is not None and r >= EXACT_MIN, f"mechanistic r ≥ {EXACT_MIN}")
    if case == "random":
        return _result(r, r is not None and abs(r) <= CHANCE_MAX, f"|mechanistic r| ≤ {CHANCE_MAX}")
    if case.startswith("noise-"):
        previous = measurements[ladder[ladder.index(case) - 1]][instrument]["mechanistic_r"]
        ok = r is not None and previous is not None and r <= previous
        return _result(r, ok, f"mechanistic r ≤ the previous rung's ({_fmt(previous)})")
    if case == "merged":
        return _merged(m, student)
    if case == "ablation-finetuned":
        return _ablated(m, measurements["teacher"][instrument], ablated)
    return _result(r, True, "no verdict defined: reported only")


def _merged(m: dict[str, Any], student: KnownStudent) -> dict[str, Any]:
    """Two heads merged into the kept one, the dropped head silent: no teacher checkpoint may be read at the silent
    head (it carries nothing), and the kept head's own teacher checkpoint must be read at the kept head. (The
    rank-d_head merge keeps the dropped head's OV but not its attention pattern, and on world-gpt2 the kept head's
    effect profile turns out to be its own alone, so where the dropped head's role went is not known and not
    asked.)"""
    truth = student.correspondence or {}
    silent = {head for head, to in truth.items() if to and to[0] != head}  # the dropped heads
    kept = {to[0] for head, to in truth.items() if head in silent}
    read = {c["teacher"]: [_head(s) for s in c["student"]] for c in m["checkpoints"]}
    on_silent = [t for t, heads in read.items() if set(heads) & silent]
    own = [t for t in read if _head(t) in kept]
    kept_right = all(read[t] == [_head(t)] for t in own)
    passed = not on_silent and bool(own) and kept_right
    shown = f"silent head used {len(on_silent)}×, kept {'✓' if kept_right and own else '✗'}"
    return {"value": float(passed), "shown": shown, "passed": passed,
            "why": "no checkpoint read at the silent head; the kept head's checkpoint read at the kept head"}


def _ablated(m: dict[str, Any], teacher: dict[str, Any], ablated: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """The mean partial r at checkpoints on ablated heads (an inert student component counts as 0) must fall
    `DROP_MARGIN` below the intact teacher's at the same checkpoints."""
    on = lambda rows: [c for c in rows if _head(c["teacher"]) in set(ablated)]  # noqa: E731
    mine, reference = on(m["checkpoints"]), on(teacher["checkpoints"])
    if not mine:
        return _result(None, False, "no checkpoint lies on an ablated head")
    value = sum(c["partial_r"] or 0.0 for c in mine) / len(mine)
    base = sum(c["partial_r"] or 0.0 for c in reference) / len(reference)
    return _result(value, value <= base - DROP_MARGIN,
                   f"r at {len(mine)} ablated-head checkpoints ≤ teacher's ({base:.2f}) − {DROP_MARGIN}; student "
                   f"accuracy {m['student_accuracy']:.2f} vs teacher {m['teacher_accuracy']:.2f}")


def _head(label: str) -> tuple[int, int]:
    layer, head = label.split("@")[0].split(".")
    return int(layer), int(head)


def _result(value: float | None, passed: bool, why: str) -> dict[str, Any]:
    return {"value": value, "shown": _fmt(value), "passed": bool(passed), "why": why}


def _fmt(value: float | None) -> str:
    return "undef" if value is None else f"{value:+.2f}"
