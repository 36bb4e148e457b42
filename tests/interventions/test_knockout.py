"""Head knockout against plain Hugging Face copies (zeroed output-projection slices, hand-written hooks) and against
identities (mean or resample over identical examples changes nothing).

Tolerance 1e-5 absolute on the metric (logit differences are O(1)): the references run one whole batch per forward
while knockout runs (ablation, example) rows, so the two agree to float32 rounding, not bitwise.
"""

import copy
import dataclasses

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head
from rcid_tl.interventions.knockout import MIN_GROUP, Ablation, Method, Reference, knockout
from rcid_tl.interventions.write import Engine
from rcid_tl.metrics import metric_for
from rcid_tl.tasks import IOIConfig, PairsConfig, build_ioi, build_pairs
from tests import hf_reference as ref

ATOL = 1e-5  # see module docstring


def _score(hf_logits, batch):
    return ref.logit_diff(hf_logits, batch.answer_pos, batch.correct, batch.wrong)


@pytest.fixture(scope="module")
def one_template(gpt2_tokenizer):
    """Three IOI examples sharing one template (so they share length and positions, as mean ablation assumes)."""
    full = build_ioi(IOIConfig(n=90, seed=3), gpt2_tokenizer)
    templates = [e.template for e in full.examples]
    common = max(set(templates), key=templates.count)
    group = dataclasses.replace(full, examples=tuple(e for e in full.examples if e.template == common)[:3])
    assert len(group) == 3
    return group


@pytest.fixture(scope="module")
def pairs(stories_pairs, stories):
    return build_pairs(PairsConfig(stories_pairs), stories.tokenizer)


@pytest.fixture(params=["gpt2", "stories"])
def case(request):
    if request.param == "gpt2":
        return (request.getfixturevalue("tiny_gpt2"), request.getfixturevalue("tiny_gpt2_hf"),
                request.getfixturevalue("one_template"))
    return request.getfixturevalue("stories"), request.getfixturevalue("stories_hf"), request.getfixturevalue("pairs")


def test_zero_ablation_equals_zeroed_output_projection(case):
    model, hf, dataset = case
    last = model.cfg.n_layers - 1
    # stories260K has 8 query heads over 4 KV heads: heads 5 and 6 sit in different KV groups
    heads = [Head(0, 1), Head(last, model.cfg.n_heads - 2), Head(last, model.cfg.n_heads - 3)]
    ablations = [Ablation((h,)) for h in heads] + [Ablation(tuple(heads))]
    batch = dataset.batch()
    ours, runs, _ = knockout(model, batch, ablations, metric_for(dataset), Method.ZERO)
    for row, ablation in enumerate(ablations):
        edited = copy.deepcopy(hf)
        for h in ablation.heads:
            ref.zero_head_weights(edited, h.layer, h.head)
        with torch.no_grad():
            theirs = _score(edited(batch.clean).logits, batch)
        torch.testing.assert_close(ours[row], theirs, atol=ATOL, rtol=0)
    assert (ours - runs.clean).abs().max() > 1e-2  # the ablations did something


def test_zero_ablation_at_end_only_matches_hf_hook(case):
    model, hf, dataset = case
    head = Head(0, 1)  # in layer 0 its outputs at earlier positions reach `end` through later layers
    batch = dataset.batch()
    ours, runs, _ = knockout(model, batch, [Ablation((head,), ("end",))], metric_for(dataset), Method.ZERO)
    zeros = torch.zeros(*batch.clean.shape, ref.head_dim(hf))
    theirs = _score(ref.replaced_head_logits(hf, batch.clean, head.layer, head.head, zeros, batch.answer_pos), batch)
    torch.testing.assert_close(ours[0], theirs, atol=ATOL, rtol=0)
    everywhere, _, _ = knockout(model, batch, [Ablation((head,))], metric_for(dataset), Method.ZERO)
    assert not torch.allclose(everywhere[0], ours[0], atol=1e-4)  # restricting the positions mattered


@pytest.mark.parametrize("reference", list(Reference))
def test_mean_ablation_matches_hf_template_mean(tiny_gpt2, tiny_gpt2_hf, one_template, reference):
    """Wang et al.'s mean ablation: the head's z replaced by its mean over the reference run's same-template
    examples, at every position."""
    batch, head = one_template.batch(), Head(1, 2)
    ours, _, _ = knockout(tiny_gpt2, batch, [Ablation((head,))], metric_for(one_template), Method.MEAN, reference)
    source = batch.clean if reference is Reference.CLEAN else batch.corrupt
    _, z = ref.record(tiny_gpt2_hf, source, "z", head.layer)
    mean = z[:, :, head.head].mean(0, keepdim=True).expand(len(batch), -1, -1)  # (batch, pos, d_head)
    theirs = _score(ref.replaced_head_logits(tiny_gpt2_hf, batch.clean, head.layer, head.head, mean), batch)
    torch.testing.assert_close(ours[0], theirs, atol=ATOL, rtol=0)


@pytest.mark.parametrize("method", [Method.MEAN, Method.RESAMPLE])
def test_mean_and_resample_over_identical_examples_change_nothing(tiny_gpt2, one_template, method):
    copies = dataclasses.replace(one_template, examples=(one_template.examples[0],) * 4)
    heads = [Ablation((Head(0, 0),)), Ablation((Head(1, 3), Head(0, 2)), ("s2", "end"))]
    ablated, runs, _ = knockout(tiny_gpt2, copies.batch(), heads, metric_for(copies), method, Reference.CLEAN)
    # the clean mean of four equal vectors is that vector up to one rounding of the sum
    torch.testing.assert_close(ablated, runs.clean.expand_as(ablated), atol=1e-5, rtol=0)


def test_resample_is_deterministic_for_a_seed(tiny_gpt2, gpt2_tokenizer):
    full = build_ioi(IOIConfig(n=120, seed=0), gpt2_tokenizer)
    templates = [e.template for e in full.examples]
    common = max(set(templates), key=templates.count)
    group = dataclasses.replace(full, examples=tuple(e for e in full.examples if e.template == common)[:4])
    assert len(group) == 4
    run = lambda seed: knockout(  # noqa: E731
        tiny_gpt2, group.batch(), [Ablation((Head(1, 0), Head(1, 1)))], metric_for(group), Method.RESAMPLE,
        Reference.CLEAN, seed=seed)[0]
    assert torch.equal(run(0), run(0))
    assert any(not torch.allclose(run(0), run(seed)) for seed in (1, 2, 3))


def test_out_of_range_heads_and_unknown_positions_are_input_errors(tiny_gpt2, one_template):
    batch, metric = one_template.batch(), metric_for(one_template)
    with pytest.raises(InputError, match="head 0.4 is out of range"):
        knockout(tiny_gpt2, batch, [Ablation((Head(0, 4),))], metric, Method.ZERO)
    with pytest.raises(InputError, match="layer 2 is out of range"):
        knockout(tiny_gpt2, batch, [Ablation((Head(2, 0),))], metric, Method.ZERO)
    with pytest.raises(InputError, match="unknown position 'diff'"):
        knockout(tiny_gpt2, batch, [Ablation((Head(0, 0),), ("diff",))], metric, Method.ZERO)


def test_mean_and_resample_group_rows_by_length_not_only_template(stories, pairs):
    """Pairs rows all have template 0 but differ in length: the third row (longer) has no partner, so its mean and
    resample replacements are itself and ablation leaves it unchanged, instead of averaging it with padding."""
    batch = pairs.batch()
    assert len(set(batch.answer_pos.tolist())) == 2  # two rows of one length, one longer
    ablation = Ablation((Head(0, 0), Head(1, 3)))
    for method in (Method.MEAN, Method.RESAMPLE):
        ablated, metrics, _ = knockout(stories, batch, [ablation], metric_for(pairs), method, Reference.CLEAN)
        assert float(ablated[0, 2]) == pytest.approx(float(metrics.clean[2]), abs=ATOL)


def test_mean_over_a_reference_distribution_matches_a_brute_force_loop(tiny_gpt2, tiny_gpt2_hf, gpt2_tokenizer):
    """Each evaluated example's head output replaced by the mean of z over the reference examples with its template
    and answer position — computed here one example at a time with plain HF hooks."""
    evaluated = build_ioi(IOIConfig(n=6, seed=1), gpt2_tokenizer)
    reference = build_ioi(IOIConfig(n=240, seed=2), gpt2_tokenizer)
    head, batch, ref_batch = Head(1, 2), evaluated.batch(), reference.batch()
    ours, _, groups = knockout(tiny_gpt2, batch, [Ablation((head,))], metric_for(evaluated), Method.MEAN,
                               Reference.CORRUPT, reference_batch=ref_batch)
    for i, e in enumerate(evaluated.examples):
        members = [r for r in reference.examples if (r.template, r.answer_pos) == (e.template, e.answer_pos)]
        assert groups.sizes[f"{e.template}:{e.answer_pos}"] == len(members) >= 1
        zs = [ref.record(tiny_gpt2_hf, torch.tensor([r.corrupt_ids]), "z", head.layer)[1][0, : len(e.clean_ids)]
              for r in members]
        mean = torch.stack([z[:, head.head] for z in zs]).double().mean(0).float()[None]
        tokens = torch.tensor([e.clean_ids])
        logits = ref.replaced_head_logits(tiny_gpt2_hf, tokens, head.layer, head.head, mean)
        theirs = logits[0, e.answer_pos, e.correct_id] - logits[0, e.answer_pos, e.wrong_id]
        assert float(ours[0, i]) == pytest.approx(float(theirs), abs=ATOL)
    assert groups.n_reference == 240 and groups.smallest < MIN_GROUP  # 240 prompts over 30 templates: ~8 each


def test_a_reference_without_the_evaluated_group_is_an_input_error(tiny_gpt2, one_template, gpt2_tokenizer):
    full = build_ioi(IOIConfig(n=60, seed=9), gpt2_tokenizer)
    others = dataclasses.replace(full, examples=tuple(e for e in full.examples
                                                      if e.template != one_template.examples[0].template))
    with pytest.raises(InputError, match=r"no reference example has template .* \(--reference-n\)"):
        knockout(tiny_gpt2, one_template.batch(), [Ablation((Head(0, 0),))], metric_for(one_template), Method.MEAN,
                 reference_batch=others.batch())


@pytest.mark.parametrize("method", list(Method))
def test_resumed_rows_equal_whole_forwards(case, method):
    """Each row resumed at its ablation's lowest layer from the cached clean residual gives the whole forward's
    metric (float32 rounding: 1e-5), for single heads at every layer, a cross-layer set and named positions."""
    model, _, dataset = case
    last = model.cfg.n_layers - 1
    ablations = [Ablation((Head(layer, 1),)) for layer in range(model.cfg.n_layers)]
    ablations += [Ablation((Head(last, 0), Head(0, 2))), Ablation((Head(last, 1),), ("end",))]
    batch = dataset.batch()
    run = lambda engine: knockout(model, batch, ablations, metric_for(dataset), method, Reference.CLEAN,  # noqa: E731
                                  rows_per_forward=3, engine=engine)
    (resumed, runs, _), (full, full_runs, _) = run(Engine.RESUME), run(Engine.FULL)
    torch.testing.assert_close(resumed, full, atol=ATOL, rtol=0)
    torch.testing.assert_close(runs.clean, full_runs.clean, atol=ATOL, rtol=0)
    if method is Method.ZERO:
        assert (resumed - runs.clean).abs().max() > 1e-3  # the ablations did something
