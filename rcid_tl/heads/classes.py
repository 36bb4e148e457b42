"""Thresholds that turn per-head scores into Wang et al. 2023's seven IOI head classes."""

import math
from dataclasses import dataclass, fields

from torch import Tensor

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head

CLASS_NAMES = ("name-mover", "negative-name-mover", "backup-name-mover", "s-inhibition", "induction",
               "duplicate-token", "previous-token")


@dataclass(frozen=True)
class HeadThresholds:
    """Attention scores are mean attention weights (0..1); copy scores are fractions of names (0..1); effects are
    fractions of the mean clean logit difference, so one setting fits models of any scale."""

    previous_token: float = 0.4
    duplicate_token: float = 0.3
    induction: float = 0.3
    end_to_io: float = 0.2  # name movers (and negative ones) attend from END to the IO
    copy: float = 0.5  # Wang et al.: > 95% for GPT-2 small's name movers, < 20% for an average head
    direct_effect: float = 0.05  # |path-patching effect on the logits| for (negative) name movers
    s_inhibition: float = 0.05  # effect through the name movers' queries
    backup_rise: float = 0.05  # rise in direct logit attribution when the name movers are ablated

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not (math.isfinite(value) and 0 <= value <= 1):
                raise InputError(f"threshold {f.name} must be a finite number in [0, 1], got {value}")


def movers(scores: dict[str, Tensor], baseline: float, t: HeadThresholds) -> tuple[list[Head], list[Head]]:
    """(name movers, negative name movers): attend END→IO, copy (or anti-copy) the name, and push the logit
    difference up (or down) directly."""
    attends = scores["end_to_io"] >= t.end_to_io
    positive = attends & (scores["copy"] >= t.copy) & (scores["direct_effect"] >= t.direct_effect * baseline)
    negative = attends & (scores["negative_copy"] >= t.copy) & (scores["direct_effect"] <= -t.direct_effect * baseline)
    return _heads(positive), _heads(negative)


def assign_classes(scores: dict[str, Tensor], baseline: float, t: HeadThresholds) -> dict[str, list[Head]]:
    """Every class's heads (a head may fall in more than one class). `baseline` is the mean clean logit difference."""
    name_movers, negative = movers(scores, baseline, t)
    is_mover = scores["copy"] != scores["copy"]  # all False, same shape
    for head in name_movers + negative:
        is_mover[head.layer, head.head] = True
    s_inh = scores["s_inhibition"]
    return {
        "name-mover": name_movers,
        "negative-name-mover": negative,
        "backup-name-mover": _heads(~is_mover & (scores["compensation"] >= t.backup_rise * baseline)),
        "s-inhibition": _heads((s_inh == s_inh) & (s_inh >= t.s_inhibition * baseline)),  # NaN: not upstream
        "induction": _heads(scores["induction"] >= t.induction),
        "duplicate-token": _heads(scores["duplicate_token"] >= t.duplicate_token),
        "previous-token": _heads(scores["previous_token"] >= t.previous_token),
    }


def _heads(mask: Tensor) -> list[Head]:
    return [Head(int(layer), int(head)) for layer, head in mask.nonzero().tolist()]
