"""The functional head taxonomy: classes by END attention target and direct-effect sign, a partition of the heads
that exists on any model (the embedded teachers, where every Wang et al. class is empty)."""

import torch

from rcid_tl.heads.functional import DIRECT, functional_class, functional_classes
from rcid_tl.hooks.names import Head


def test_rules():
    attends_io = {"io": 0.6, "s1": 0.1, "s2": 0.2, "end": 0.1}
    assert functional_class(attends_io, 1.0, 0.0, baseline=4.0) == "IO+"  # 25% of the logit difference, positive
    assert functional_class(attends_io, -1.0, 0.0, baseline=4.0) == "IO−"
    assert functional_class(attends_io, 0.9 * DIRECT * 4.0, 0.9, baseline=4.0) == "previous-token"
    assert functional_class(attends_io, 0.0, 0.1, baseline=4.0) == "IO·"
    assert functional_class({**attends_io, "end": 0.9}, 0.0, 0.1, baseline=-4.0) == "END·"


def test_every_head_gets_exactly_one_class():
    torch.manual_seed(0)
    attention = {t: torch.rand(3, 4) for t in ("io", "s1", "s2", "end")}
    scores = {"direct_effect": torch.randn(3, 4), "previous_token": torch.rand(3, 4)}
    classes = functional_classes(scores, attention, baseline=3.0)
    heads = [h for hs in classes.values() for h in hs]
    assert sorted(heads, key=lambda h: (h.layer, h.head)) == [Head(l, h) for l in range(3) for h in range(4)]
