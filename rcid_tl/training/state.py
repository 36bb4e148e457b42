"""Resumable runs: what a state file holds, reading one back (as data, never code) for a run with the same settings,
the one settings diff (`optim.steps: 600 → 800`), and trimming a JSONL log back to the step a run resumes from."""

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rcid_tl.artifacts import read_torch, write_text
from rcid_tl.errors import InputError


@dataclass(frozen=True)
class StateLayout:
    """How one kind of run names the parts of its state file. Fixed per kind of run, so that states saved by earlier
    versions resume; the error texts name what the user can do."""

    fields: tuple[str, ...]  # in the file's order; a state missing any of them is refused
    weights: str  # the field holding the trained modules' state_dict
    settings: str  # the field holding the settings JSON
    kind: str  # "training state", "checkpoint": what the refusal calls the file
    remedy: str  # what to do with a file that cannot be read
    other_run: str  # where a run with other settings lives ("{dir}": the state's folder)
    other_remedy: str  # what to do about it


# The state of runs writing into --out (distillation, KV, multi-teacher): the phase and data order it belongs to and
# the RNG states, so a killed and resumed run ends with the same weights as one that went straight through.
RUN_STATE = StateLayout(
    fields=("phase", "step", "modules", "opt", "sched", "order", "torch_rng", "python_rng", "settings"),
    weights="modules", settings="settings", kind="training state", remedy="delete it or choose another --out",
    other_run="--out {dir}", other_remedy="use another --out or delete it")


def settings_json(config: Mapping[str, Any], changeable: Iterable[str] = (), *,
                  later_defaults: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
                  default: Callable[[Any], Any] | None = None) -> str:
    """The settings a resumed run must share with the run that saved the state, as JSON: `config` (a config's
    `to_dict()`) without the `changeable` keys (dotted for nested ones: `train.log_every`), which cannot change the
    trained weights, and without `later_defaults` keys still at their default (settings added after runs were saved,
    so those runs still resume), plus `extra`. `default` serializes what JSON cannot."""
    later = later_defaults or {}
    kept = {k: v for k, v in _without(config, changeable).items() if not (k in later and v == later[k])}
    return json.dumps(kept | dict(extra or {}), sort_keys=True, default=default)


def _without(config: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    keys = list(keys)
    nested: dict[str, list[str]] = {}
    for key in keys:
        if "." in key:
            head, rest = key.split(".", 1)
            nested.setdefault(head, []).append(rest)
    return {k: _without(v, nested[k]) if k in nested and isinstance(v, Mapping) else v
            for k, v in config.items() if k not in keys}


def read_state(path: Path, settings: str, layout: StateLayout = RUN_STATE) -> dict | None:
    """The state saved at `path` (None if there is none), read without running code, after checking that it holds
    `layout`'s fields and that the run it belongs to had these `settings` (JSON). Anything else is an InputError:
    a damaged file or another kind of file, or a run with other settings (naming each setting that differs)."""
    if not path.exists():
        return None
    state = read_torch(path, remedy=layout.remedy)
    if not isinstance(state, dict) or not set(layout.fields) <= state.keys() or not isinstance(
            state[layout.settings], str):
        raise InputError(f"{path} is not a {layout.kind} this rcid-tl can resume; {layout.remedy}")
    changes = setting_changes(json.loads(state[layout.settings]), json.loads(settings))
    if changes:
        raise InputError(f"{layout.other_run.format(dir=path.parent)} holds a run with different settings "
                         f"({', '.join(changes)}); {layout.other_remedy}")
    return state


def setting_changes(saved: dict, now: dict, prefix: str = "") -> list[str]:
    """`key: saved → now` for each setting that differs, nested keys dotted (`optim.steps: 600 → 800`)."""
    changes = []
    for key in dict.fromkeys([*saved, *now]):
        a, b = saved.get(key, _UNSET), now.get(key, _UNSET)
        if isinstance(a, dict) and isinstance(b, dict):
            changes += setting_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            changes.append(f"{prefix}{key}: {_show(a)} → {_show(b)}")
    return changes


_UNSET = object()


def _show(value) -> str:
    return "(unset)" if value is _UNSET else json.dumps(value, ensure_ascii=False)


def trim_log(path: Path, step: int, phase: str | None = None) -> None:
    """Drop the log records written after the state a run resumes from: those of `phase` after `step`, and those of
    any phase after it (records without a phase count as one phase). A line cut short by a kill mid-write goes too:
    it is after the state anyway."""
    if not path.exists():
        return
    records = [(line, r) for line in path.read_text().splitlines()
               if isinstance(r := _record(line), dict) and "step" in r]
    phases = list(dict.fromkeys(r.get("phase") for _, r in records))
    later = set(phases[phases.index(phase) + 1 :]) if phase in phases else set()
    keep = [line for line, r in records
            if r.get("phase") not in later and not (r.get("phase") == phase and r["step"] > step)]
    write_text(path, "".join(line + "\n" for line in keep))


def _record(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:  # empty, or cut short by a kill mid-write
        return None
