"""A functional head taxonomy that exists on any model: each head is placed by what it does on the IOI prompts, not
by whether it meets Wang et al.'s GPT-2-small criteria (which small models trained elsewhere rarely do, leaving
those classes empty and every comparison built on them undefined).

A head that writes the answer directly (|path-patched direct effect| ≥ `DIRECT` of the clean logit difference) is
placed by where END attends most (IO, S1, S2 or END itself) and the sign of that effect, e.g. `IO+` (a name mover's
signature, whatever its copy score) or `S2−`; a head that does not is a previous-token head when it attends to the
previous token (on repeated random tokens) at least `PREVIOUS`, else `IO·`, `S1·`, `S2·` or `END·` (indirect: it
moves information that later heads use) by the same attention. The classes partition the heads; each head's copy
score is recorded beside its class."""

from collections.abc import Mapping

from torch import Tensor

from rcid_tl.hooks.names import Head

TARGETS = ("io", "s1", "s2", "end")  # where END can attend on an IOI prompt
DIRECT = 0.05  # a head writes the answer directly when |direct effect| ≥ 5% of the mean clean logit difference
PREVIOUS = 0.4  # the previous-token threshold of `HeadThresholds`


def functional_class(attention: Mapping[str, float], direct_effect: float, previous_token: float,
                     baseline: float) -> str:
    """The class of one head from its END attention to each target, its direct effect and previous-token score."""
    target = max(TARGETS, key=lambda t: attention[t]).upper()
    if abs(direct_effect) >= DIRECT * abs(baseline):
        return f"{target}{'+' if direct_effect > 0 else '−'}"
    if previous_token >= PREVIOUS:
        return "previous-token"
    return f"{target}·"


def functional_classes(scores: Mapping[str, Tensor], attention: Mapping[str, Tensor], baseline: float
                       ) -> dict[str, list[Head]]:
    """Every head's class (`functional_class`), as class → heads, classes in first-seen order."""
    classes: dict[str, list[Head]] = {}
    n_layers, n_heads = scores["direct_effect"].shape
    for layer in range(n_layers):
        for head in range(n_heads):
            name = functional_class({t: float(attention[t][layer, head]) for t in TARGETS},
                                    float(scores["direct_effect"][layer, head]),
                                    float(scores["previous_token"][layer, head]), baseline)
            classes.setdefault(name, []).append(Head(layer, head))
    return classes
