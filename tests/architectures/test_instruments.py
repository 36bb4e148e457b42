"""Every instrument besides patching on every bridged architecture, each against an independent reference or a known
answer: knockout (a plain HF copy with the head's input to the output projection zeroed), consistency (a model against
itself scores r = 1), head scores (attention patterns against HF's own), attribution patching (a finite difference of
real patches), path patching (through the whole downstream residual it is activation patching), one RCID
distillation step, and KV capture (HF's own key/value cache).

Tolerance 1e-5 absolute on metrics and activations (fp32, values O(0.1)–O(10)): the two sides compute the same
function with other batch shapes or arithmetic order, so they agree to float32 rounding, not bitwise (measured
≤ 5e-6).
"""

import pytest
import torch

from rcid_tl.consistency.causal import causal_consistency
from rcid_tl.consistency.checkpoints import Checkpoint
from rcid_tl.distill.methods import Method as DistillMethod
from rcid_tl.distill.methods import Objective, pairings_for
from rcid_tl.distill.targets import fit_maps, precompute_targets
from rcid_tl.heads.attention import patterns, repeat_scores, repeated_tokens
from rcid_tl.hooks.names import Head, Site, hook_name
from rcid_tl.interventions.attribution import attribution_patch
from rcid_tl.interventions.engine import reference_run
from rcid_tl.interventions.knockout import Ablation, Method, knockout
from rcid_tl.interventions.path_patching import PathPatch, Receiver, path_patch
from rcid_tl.interventions.write import Direction, Engine, PatchSite, patch_together
from rcid_tl.kv.capture import kv_heads, read_kv
from rcid_tl.metrics import metric_for
from rcid_tl.models.architectures import sliding_window
from tests.architectures.conftest import build_bridge

ATOL = 1e-5  # see module docstring
HEADS = (Head(0, 1), Head(1, 2))


def _hf_layers(hf):
    base = hf.base_model
    return base.h if hasattr(base, "h") else base.layers


def _out_projection(layer):
    """The attention's output projection, whose input is the heads' z concatenated (batch, pos, head·d_head)."""
    attn = getattr(layer, "attn", None) or getattr(layer, "self_attn", None) or layer.attention
    return next(getattr(attn, n) for n in ("c_proj", "o_proj", "dense") if hasattr(attn, n))


def test_knockout_equals_a_zeroed_head_in_plain_transformers(model, hf_copy, ioi):
    """Zero-ablating a head (resumed engine) equals the HF model with that head's z slice zeroed at the input of its
    output projection (sliding-window masks and the final soft-cap rebuilt on resumed rows)."""
    batch, metric = ioi.batch(), metric_for(ioi)
    ablations = [Ablation((h,)) for h in HEADS] + [Ablation(HEADS)]
    ours, runs, _ = knockout(model, batch, ablations, metric, Method.ZERO)
    d_head = model.cfg.d_head
    for row, ablation in enumerate(ablations):
        handles = []
        for h in ablation.heads:
            def zero(module, args, head=h.head):
                z = args[0].clone()
                z[..., head * d_head:(head + 1) * d_head] = 0
                return (z, *args[1:])
            handles.append(_out_projection(_hf_layers(hf_copy)[h.layer]).register_forward_pre_hook(zero))
        try:
            with torch.no_grad():
                logits = hf_copy(batch.clean).logits
        finally:
            for handle in handles:
                handle.remove()
        theirs = metric(logits[torch.arange(len(batch)), batch.answer_pos], batch)
        torch.testing.assert_close(ours[row], theirs, atol=ATOL, rtol=0)
    assert (ours - runs.clean).abs().max() > 1e-3


def test_knockout_engines_agree(model, ioi):
    """The resumed engine against whole forwards, every architecture resuming (no fallback)."""
    batch, metric = ioi.batch(), metric_for(ioi)
    assert reference_run(model, batch.clean, batch.answer_pos).reproduces_head  # it resumes, no fallback
    ablations = [Ablation((h,)) for h in HEADS]
    fast, _, _ = knockout(model, batch, ablations, metric, Method.MEAN)
    full, _, _ = knockout(model, batch, ablations, metric, Method.MEAN, engine=Engine.FULL)
    torch.testing.assert_close(fast, full, atol=ATOL, rtol=0)


def test_a_model_is_causally_consistent_with_itself(model, ioi):
    """r = 1 at every checkpoint where it is defined (on the sliding-window models a far position cannot reach the
    answer: Δ is constant there and r undefined, which is reported, not averaged)."""
    checkpoints = [Checkpoint(layer, p, "resid_post", 1.0, False) for layer in (0, 1) for p in ("s2", "end")]
    result = causal_consistency(model, model, ioi, checkpoints, {0: 0, 1: 1}, n_bootstrap=20)
    assert result.n_defined >= 1
    assert all(e["pearson_r"] == pytest.approx(1.0, abs=1e-9) for e in result.checkpoints
               if e["pearson_r"] is not None)  # identical Δ vectors
    assert result.mean_r == pytest.approx(1.0, abs=1e-9)


def test_head_patterns_equal_transformers_attentions(model, arch, hf_copy):
    """Head scores read hook_pattern: equal to HF's own attention weights (soft-capped, windowed), and zero outside
    the window on sliding layers."""
    length, bos = 8, model.tokenizer.bos_token_id
    tokens = repeated_tokens(range(4, model.cfg.d_vocab), 2, length, seed=0, bos=bos)
    ours = patterns(model, tokens)  # (layer, batch, head, query, key)
    with torch.no_grad():
        theirs = hf_copy(tokens, output_attentions=True).attentions
    for layer in range(model.cfg.n_layers):
        torch.testing.assert_close(ours[layer], theirs[layer], atol=ATOL, rtol=0)
        window = sliding_window(model, layer)
        if window is not None:
            q, k = torch.meshgrid(torch.arange(tokens.shape[1]), torch.arange(tokens.shape[1]), indexing="ij")
            assert ours[layer][..., k <= q - window].abs().max() == 0
    assert any(sliding_window(model, layer) for layer in range(model.cfg.n_layers)) == arch.sliding
    scores = repeat_scores(model, tokens, length)
    assert all(s.shape == (2, model.cfg.n_heads) and 0 <= s.min() and s.max() <= 1 for s in scores.values())


def test_attribution_matches_a_finite_difference(arch, world_tokenizer, ioi):
    """AtP's estimate is the first-order change of the metric when a site moves toward its corrupt value: the slope of
    real patches moved a fraction ±h, ±2h of the way (fourth-order central difference, h = 0.01, truncation O(h⁴)),
    in float64. Tolerance 2e-4 absolute + 1e-3 relative: HF keeps RMSNorm and rotary tables in float32 even in a
    float64 model, so the metric (O(1)–O(10)) is rounded to ~1e-6 and the stencil divides that by ~h."""
    model = build_bridge(arch, world_tokenizer)
    model.original_model.double()
    batch, metric = ioi.batch(), metric_for(ioi)
    # sites within reach of the answer on the sliding-window models too (two layers of window 4 see 6 tokens back)
    sites = [PatchSite(Site.RESID_PRE, 0, "s2"), PatchSite(Site.Z, 1, "end", 1), PatchSite(Site.MLP_OUT, 1, "end")]
    estimates, _ = attribution_patch(model, batch, sites, metric, Direction.NOISING)
    rows, eps = torch.arange(len(batch)), 1e-2
    for site, estimate in zip(sites, estimates):
        name, pos = hook_name(site.site, site.layer), batch.position(site.position)
        with torch.no_grad():
            _, cache = model.run_with_cache(batch.corrupt, names_filter=[name])
        source = cache[name][rows, pos] if site.head is None else cache[name][rows, pos, site.head]

        def moved(step):
            def hook(act, hook):
                act = act.clone()
                index = (rows, pos) if site.head is None else (rows, pos, site.head)
                act[index] = act[index] + step * (source - act[index])
                return act
            with torch.no_grad(), model.hooks(fwd_hooks=[(name, hook)]):
                return metric(model(batch.clean)[rows, batch.answer_pos], batch)

        # d metric / d step at 0; AtP's Δ is −slope
        slope = (8 * (moved(eps) - moved(-eps)) - (moved(2 * eps) - moved(-2 * eps))) / (12 * eps)
        torch.testing.assert_close(estimate.double(), -slope, atol=2e-4, rtol=1e-3)
    assert estimates.abs().max() > 1e-2  # twenty times the tolerance: the check can fail


def test_path_patching_through_the_whole_residual_is_activation_patching(model, ioi):
    """With MLPs recomputed, the residual right after the sender's block carries every path from the sender, so path
    patching through it equals patching the sender's z (whole forwards, independent of the resumed engine)."""
    batch, metric = ioi.batch(), metric_for(ioi)
    patches = [PathPatch((Head(0, 1),), (Receiver(Site.RESID_PRE, 1),)),
               PathPatch((Head(1, 2),), (Receiver(Site.RESID_POST, 1),))]
    ours, _ = path_patch(model, batch, patches, metric, sender_positions=("s2", "end"))
    plain = [PatchSite(Site.Z, h.layer, p, h.head) for h in HEADS for p in ("s2", "end")]
    theirs = torch.stack([patch_together(model, batch, plain[:2], metric), patch_together(model, batch, plain[2:],
                                                                                           metric)])
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    assert theirs.abs().max() > 1e-3


def test_one_distillation_step(arch, model, world_tokenizer, ioi):
    """One RCID step (a student of the same architecture, another seed, matched at two residual checkpoints): a
    finite loss whose gradient reaches every student weight and none of the teacher's, and a small SGD step along
    it lowers the loss on that batch (first order: Δloss ≈ −lr·|grad|²)."""
    student = build_bridge(arch, world_tokenizer, seed=1)
    student.train()
    checkpoints = [Checkpoint(layer, "end", "resid_post", 1.0, False) for layer in (0, 1)]
    pairings = pairings_for(DistillMethod.RCID, checkpoints, {0: 0, 1: 1}, 2)
    maps = fit_maps(model, student, ioi, pairings, n_fit=len(ioi))
    objective = Objective(DistillMethod.RCID, pairings, maps, lam=1.0, temperature=2.0)
    targets = precompute_targets(model, ioi, pairings)
    rows = torch.arange(len(ioi))
    batch = ioi.batch(rows.tolist())
    step = targets.take(rows, batch.clean.shape[1])
    loss, parts = objective(student, batch, step)
    loss.backward()
    params = [p for name, p in student.original_model.named_parameters() if not _replaced(arch, name)]
    fed = {p.untyped_storage().data_ptr() for p in params if p.grad is not None and p.grad.abs().sum() > 0}
    assert torch.isfinite(loss) and "term" in parts
    assert all(p.untyped_storage().data_ptr() in fed for p in params)
    assert all(p.grad is None for p in model.parameters())
    lr = 1e-3 / sum(float(p.grad.square().sum()) for p in params if p.grad is not None) ** 0.5
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
        after, _ = objective(student, batch, step)
    assert after < loss


def _replaced(arch, name: str) -> bool:
    """GPT-NeoX's fused query_key_value: the bridge splits it into q, k and v copies (its per-head interleaved rows
    cannot be views) and runs those, so the fused weight is dead after boot (no gradient, and edits do nothing)."""
    return arch.name == "gpt-neox" and ".attention.qkv." in name


def test_kv_capture_equals_transformers_cache(model, arch, hf_copy, ioi):
    """read_kv's values equal HF's own KV cache (the positions a sliding layer keeps); its keys are TL's hook_k, taken
    before the rotary embedding: equal to the cache without one (GPT-2), and on rotary models equal at position 0
    (rotation by angle 0) and of equal norm at every position (a rotation keeps norms)."""
    tokens = ioi.batch().clean
    states = read_kv(model, tokens, [0, 1], attention_layer=1, hidden_layers=[0], grad=False)
    assert states.keys.shape == (len(tokens), 2, kv_heads(model), tokens.shape[1], model.cfg.d_head)
    with torch.no_grad():
        out = hf_copy(tokens, use_cache=True, output_attentions=True, output_hidden_states=True)
    for layer in range(2):
        cached = out.past_key_values.layers[layer]
        kept = cached.values.shape[-2]  # every position, or the last window − 1 on a sliding layer
        assert kept == tokens.shape[1] or sliding_window(model, layer) is not None
        torch.testing.assert_close(states.values[:, layer, :, -kept:], cached.values, atol=ATOL, rtol=0)
        keys = states.keys[:, layer, :, -kept:]
        if arch.name == "gpt2":
            torch.testing.assert_close(keys, cached.keys, atol=ATOL, rtol=0)
        else:
            torch.testing.assert_close(keys.norm(dim=-1), cached.keys.norm(dim=-1), atol=ATOL, rtol=1e-5)
            if kept == tokens.shape[1]:
                torch.testing.assert_close(keys[..., 0, :], cached.keys[..., 0, :], atol=ATOL, rtol=0)
                assert (keys - cached.keys).abs().max() > 1e-2  # the rotary embedding moved the others
    torch.testing.assert_close(states.attention, out.attentions[1], atol=ATOL, rtol=0)
    torch.testing.assert_close(states.hidden[0], out.hidden_states[1], atol=ATOL, rtol=0)  # block 0's output
