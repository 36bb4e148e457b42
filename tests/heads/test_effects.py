"""Causal head scores: direct logit attribution against the exact decomposition of the logit difference, the
S-inhibition grid against plain path patching, compensation's identities, and class thresholds on synthetic scores.

Tolerance 1e-4 absolute on sums of O(10) logits in fp32 (the decomposition adds ~30 terms computed in another order)."""

import dataclasses

import pytest
import torch

from rcid_tl.heads.classes import HeadThresholds, assign_classes
from rcid_tl.heads.effects import compensation, direct_logit_attribution, s_inhibition
from rcid_tl.hooks.names import FINAL_NORM_SCALE, Head, Site, hook_name
from rcid_tl.interventions.path_patching import PathPatch, Receiver, path_patch
from rcid_tl.metrics import logit_diff
from rcid_tl.models import load_model
from rcid_tl.errors import InputError
from rcid_tl.sweeps.common import prepare
from rcid_tl.tasks.registry import TaskSpec

ATOL = 1e-4  # see module docstring


@pytest.fixture(scope="module")
def qwen():
    model = load_model("world-qwen2")
    return model, prepare(model, TaskSpec("ioi", n=6, corruption="abc"))[1].batch()


@pytest.fixture(scope="module")
def gpt2(tiny_gpt2, gpt2_tokenizer):
    return tiny_gpt2, prepare(tiny_gpt2, TaskSpec("ioi", n=6, corruption="abc"))[1].batch()


@pytest.mark.parametrize("case", ["gpt2", "qwen"])  # LayerNorm and RMSNorm
def test_head_attributions_complete_the_logit_difference(case, request):
    model, batch = request.getfixturevalue(case)
    dla = direct_logit_attribution(model, batch)
    last = model.cfg.n_layers - 1
    names = [hook_name(Site.Z, layer) for layer in range(model.cfg.n_layers)]
    with torch.no_grad():
        logits, cache = model.run_with_cache(batch.clean, names_filter=names + [FINAL_NORM_SCALE,
                                                                               hook_name(Site.RESID_POST, last)])
    rows, end = torch.arange(len(batch)), batch.position("end")
    heads = sum(torch.einsum("bhd,hdm->bm", cache[n][rows, end], model.W_O[layer]) for layer, n in enumerate(names))
    rest = cache[hook_name(Site.RESID_POST, last)][rows, end] - heads  # embeddings, MLPs, output biases
    if model.cfg.normalization_type == "LN":
        rest = rest - rest.mean(-1, keepdim=True)
    final = rest / cache[FINAL_NORM_SCALE][rows, end] * model.ln_final.w
    if model.cfg.normalization_type == "LN":
        final = final + model.ln_final.b
    direction = (model.W_U[:, batch.correct] - model.W_U[:, batch.wrong]).T
    rest_ld = (final * direction).sum(-1).mean()
    expected = logit_diff(logits[rows, end], batch).mean()
    assert (dla.sum() + rest_ld).item() == pytest.approx(expected.item(), abs=ATOL)


def test_s_inhibition_is_path_patching_into_mover_queries(qwen):
    model, batch = qwen
    movers = [Head(2, 2), Head(3, 1)]
    grid = s_inhibition(model, batch, logit_diff, movers, rows_per_forward=7)
    assert grid[:2].isfinite().all() and grid[2:].isnan().all()  # only heads upstream of every mover
    receivers = (Receiver(Site.Q, 2, 2), Receiver(Site.Q, 3, 1))
    direct, _ = path_patch(model, batch, [PathPatch((Head(1, 3),), receivers)], logit_diff,
                           receiver_positions=("end",))
    assert grid[1, 3].item() == pytest.approx(direct.mean().item(), abs=1e-5)
    assert s_inhibition(model, batch, logit_diff, []).isnan().all()


def test_compensation_identities(qwen):
    model, batch = qwen
    clean, ablated = compensation(model, batch, [Head(2, 2)])
    assert (ablated[2, 2] - clean[2, 2]).abs() > 1e-3  # the ablated head's own attribution changes
    # every template occurs once here, so with the clean run as "corrupt" each mean is the example's own z
    assert len(batch.template.unique()) == len(batch)
    clean, ablated = compensation(model, dataclasses.replace(batch, corrupt=batch.clean), [Head(2, 2)])
    torch.testing.assert_close(ablated, clean, atol=1e-5, rtol=0)
    same, again = compensation(model, batch, [])
    torch.testing.assert_close(same, again)


def _scores(**overrides):
    grid = {name: torch.zeros(2, 2) for name in ("previous_token", "duplicate_token", "induction", "end_to_io",
                                                 "copy", "negative_copy", "direct_effect", "compensation")}
    grid["s_inhibition"] = torch.full((2, 2), float("nan"))
    for name, ((layer, head), value) in overrides.items():
        grid[name][layer, head] = value
    return grid


def test_classes_follow_the_thresholds():
    scores = _scores(previous_token=((0, 0), 0.9), induction=((0, 1), 0.5), end_to_io=((1, 0), 0.6),
                     copy=((1, 0), 0.97), direct_effect=((1, 0), 1.0), compensation=((1, 1), 0.4),
                     s_inhibition=((0, 1), 0.3))
    classes = assign_classes(scores, baseline=2.0, t=HeadThresholds())
    assert classes["previous-token"] == [Head(0, 0)] and classes["induction"] == [Head(0, 1)]
    assert classes["name-mover"] == [Head(1, 0)] and classes["backup-name-mover"] == [Head(1, 1)]
    assert classes["s-inhibition"] == [Head(0, 1)] and classes["negative-name-mover"] == []
    # below the direct-effect threshold (5% of the baseline) the same head is no name mover
    weak = assign_classes({**scores, "direct_effect": scores["direct_effect"] * 0.04}, 2.0, HeadThresholds())
    assert weak["name-mover"] == []
    scores["negative_copy"][1, 0], scores["direct_effect"][1, 0] = 0.98, -1.0
    assert assign_classes(scores, 2.0, HeadThresholds())["negative-name-mover"] == [Head(1, 0)]


def test_thresholds_are_checked():
    with pytest.raises(InputError, match=r"threshold copy must be a finite number in \[0, 1\], got nan"):
        HeadThresholds(copy=float("nan"))
