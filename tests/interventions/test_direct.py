"""Direct forwards (the HF modules called one after another, hooks fired by name) against the bridge: every fired
hook point and the logits, resumed sweeps and knockouts with and without them, attribution, and the cases that must
fall back to the bridge (a hook attached to the model, a hook point the direct forward does not fire, training mode).

The direct forward computes the bridge's function with fused kernels where the bridge takes several ops: LayerNorm
and RMSNorm in one kernel (the bridge normalizes step by step in Python), GPT-2's q/k/v in one matmul, GPT-2's GELU as
x·sigmoid(2u) (the same formula as HF's tanh form), and the last block at the answer positions only (when no hook asks
for more). So in float32 one forward agrees to float32 rounding: `ATOL` absolute plus `RTOL` relative. Sweeps batch
their rows differently on the two paths too (direct forwards take rows of every layer into one forward), and a
float32 matmul's rounding depends on the batch it is in: the bridge path run one row per forward differs from itself
run in chunks by up to 2.4e-6 on these logit differences. Rounding then scales with the logits: sweeps compare to
`ATOL_BATCHED` times the largest |Δ| (at least 10): a few float32 ulps of it (≤ 1.6e-5 seen where |Δ| reaches 25, whose
ulp is 1.9e-6). In float64 every hook point, the logits and every sweep must agree to 1e-10, which shows the two paths
compute the same function.
"""

import pytest
import torch

from rcid_tl.hooks.names import Head, Site, hook_name
from rcid_tl.interventions import direct
from rcid_tl.interventions.attribution import attribution_patch
from rcid_tl.interventions.knockout import knockout_added, prepare_knockout
from rcid_tl.interventions.read import cache_hooks
from rcid_tl.interventions.write import PATCHABLE, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model
from rcid_tl.tasks import build_task

ATOL, RTOL = 1e-5, 1e-5  # one float32 forward: rounding (fused kernels), see module docstring
ATOL_BATCHED = 1e-6  # float32 sweeps batched differently: rounding, relative to the largest |Δ|, see module docstring


@pytest.fixture(scope="module", params=["world-gpt2", "world-qwen2"])
def model(request):
    return load_model(request.param)


def _close_batched(fast, slow) -> None:
    torch.testing.assert_close(fast, slow, atol=ATOL_BATCHED * max(10.0, float(slow.abs().max())), rtol=0)


def _noop(act, hook):
    return act


def _bridge(monkeypatch):
    monkeypatch.setattr(direct, "enabled", False)


def _every_hook_point_and_the_logits(model, atol: float, rtol: float) -> None:
    dataset = build_task(model, "ioi", n=6, seed=3)
    batch = dataset.batch()
    names = [hook_name(site, layer) for layer in range(model.cfg.n_layers) for site in direct.FIRED]
    assert direct.usable(model, [(name, _noop) for name in names])
    logits, acts = cache_hooks(model, batch.clean, names, batch.answer_pos)
    mine_logits, mine = direct.cache(model, batch.clean, names, batch.answer_pos)
    torch.testing.assert_close(mine_logits, logits, atol=atol, rtol=rtol)
    for name in names:
        torch.testing.assert_close(mine[name], acts[name], atol=atol, rtol=rtol, msg=name)
    # the last block at the answer positions only, when no hook asks for more of it
    torch.testing.assert_close(direct.answer_forward(model, batch.clean, batch.answer_pos), logits, atol=atol,
                               rtol=rtol)


def test_every_fired_hook_point_and_the_logits_equal_the_bridge(model):
    _every_hook_point_and_the_logits(model, ATOL, RTOL)


@pytest.mark.parametrize("name", ["world-gpt2", "world-qwen2"])
def test_every_fired_hook_point_and_the_logits_equal_the_bridge_in_float64(name):
    """The same function: in float64 only rounding separates the paths."""
    model = load_model(name)
    model.to(torch.float64)
    _every_hook_point_and_the_logits(model, 1e-10, 0)


def test_resumed_sweeps_equal_the_bridge_path(model, monkeypatch):
    """Every patchable site kind at two positions, resumed rows with and without direct forwards."""
    dataset = build_task(model, "ioi", n=4, seed=1)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(site, layer, position, 1 if site.per_head else None)
             for site in PATCHABLE for layer in (0, model.cfg.n_layers - 1) for position in ("s2", "end")]
    fast, fast_runs = patch_sites(model, batch, sites, metric)
    _bridge(monkeypatch)
    slow, slow_runs = patch_sites(model, batch, sites, metric)
    _close_batched(fast, slow)
    torch.testing.assert_close(fast_runs.clean, slow_runs.clean, atol=ATOL, rtol=RTOL)
    assert fast.abs().max() > 1e-2


@pytest.mark.parametrize("name", ["world-gpt2", "world-qwen2"])
def test_resumed_sweeps_equal_the_bridge_path_in_float64(name, monkeypatch):
    """The same function on both paths: in float64 the rows' other batching changes nothing above 1e-10."""
    model = load_model(name)
    model.to(torch.float64)
    dataset = build_task(model, "ioi", n=4, seed=1)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(site, layer, position, 1 if site.per_head else None)
             for site in PATCHABLE for layer in (0, model.cfg.n_layers - 1) for position in ("s2", "end")]
    fast, _ = patch_sites(model, batch, sites, metric)
    _bridge(monkeypatch)
    slow, _ = patch_sites(model, batch, sites, metric)
    assert fast.dtype == torch.float64
    torch.testing.assert_close(fast, slow, atol=1e-10, rtol=0)


def test_knockout_from_an_ablated_run_equals_the_bridge_path(model, monkeypatch):
    """The circuit search's step: the run with a base circuit mean-ablated, each added head resumed from it."""
    dataset = build_task(model, "ioi", n=5, seed=2)
    batch, metric = dataset.batch(), metric_for(dataset)
    prepared = prepare_knockout(model, batch, metric)
    base, added = [Head(1, 0)], [Head(layer, 1) for layer in range(model.cfg.n_layers)]
    fast = knockout_added(model, batch, base, added, metric, prepared)
    _bridge(monkeypatch)
    slow = knockout_added(model, batch, base, added, metric, prepare_knockout(model, batch, metric))
    _close_batched(fast, slow)


def test_attribution_equals_the_bridge_path(model, monkeypatch):
    dataset = build_task(model, "ioi", n=4, seed=0)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(Site.Z, layer, "end", h) for layer in range(model.cfg.n_layers) for h in range(2)]
    sites += [PatchSite(Site.RESID_PRE, 1, "s2")]
    fast, _ = attribution_patch(model, batch, sites, metric)
    _bridge(monkeypatch)
    slow, _ = attribution_patch(model, batch, sites, metric)
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=0)  # gradients: autograd's order of sums may differ


def test_a_hook_on_the_model_runs_the_bridge_and_fires(model):
    """A user's hook attached to the model always fires: the sweep then runs on the bridge, with the same Δ."""
    dataset = build_task(model, "ioi", n=3, seed=4)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(Site.Z, layer, "end", 0) for layer in range(model.cfg.n_layers)]
    plain, _ = patch_sites(model, batch, sites, metric)
    calls = []
    watched = hook_name(Site.MLP_OUT, model.cfg.n_layers - 1)
    with model.hooks(fwd_hooks=[(watched, lambda act, hook: calls.append(act.shape) and None)]):
        assert not direct.usable(model)
        watched_run, _ = patch_sites(model, batch, sites, metric)
    assert len(calls) >= 3  # the reference run, the source run and each chunk of rows
    _close_batched(watched_run, plain)
    assert direct.usable(model)


def test_hook_points_it_does_not_fire_and_training_mode_fall_back(model):
    assert not direct.usable(model, [(hook_name(Site.PATTERN, 0), _noop)])
    model.train()
    try:
        assert not direct.usable(model)
    finally:
        model.eval()
    assert direct.usable(model, [(hook_name(Site.Z, 0), _noop)])


def test_a_hook_may_edit_in_place_only_alone_and_without_gradients():
    """A direct forward's activations are its own, so a lone hook may edit one in place (the patch hooks then skip
    their copy); not when another hook at the site may have kept it, nor when autograd needs it."""
    seen = []

    def note(act, hook):
        seen.append(hook.edit_in_place)

    act, key = torch.zeros(2, 3), (0, Site.Z)
    with torch.no_grad():
        direct._fire({key: [("a", note)]}, 0, Site.Z, act)
        direct._fire({key: [("a", note), ("b", note)]}, 0, Site.Z, act)
    direct._fire({key: [("a", note)]}, 0, Site.Z, act)
    assert seen == [True, False, False, False]
