"""No intervention leaves a hook behind, even when it fails half-way; and the leak detector itself sees leaks."""

import pytest

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head, Site, hook_name
from rcid_tl.interventions import direct
from rcid_tl.interventions import knockout as knockout_module
from rcid_tl.interventions import read as read_module
from rcid_tl.interventions.knockout import Ablation, Method, knockout
from rcid_tl.interventions.write import Engine, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.tasks import IOIConfig, build_ioi
from tests.hook_leaks import hook_leaks, torch_hook_counts


@pytest.fixture(scope="module")
def ioi(gpt2_tokenizer):
    return build_ioi(IOIConfig(n=2, seed=0), gpt2_tokenizer)


def _attached(model) -> list[str]:
    return [name for name, hp in model.hook_dict.items() if hp.fwd_hooks or hp.bwd_hooks]


def test_detector_sees_hook_point_and_torch_hooks(tiny_gpt2):
    baseline = torch_hook_counts(tiny_gpt2)
    tiny_gpt2.add_hook(hook_name(Site.RESID_PRE, 0), lambda act, hook: act)
    handle = tiny_gpt2.blocks[1].register_forward_hook(lambda module, args, out: out)
    try:
        leaks = hook_leaks(tiny_gpt2, baseline)
        assert any("hook_in" in leak or "resid_pre" in leak for leak in leaks)
        assert any(leak.startswith("module blocks.1:") for leak in leaks)
    finally:
        tiny_gpt2.reset_hooks()
        handle.remove()
    assert hook_leaks(tiny_gpt2, baseline) == []


def test_raising_metric_leaves_no_hooks(tiny_gpt2, ioi):
    calls = {"n": 0}

    def metric(logits, batch):
        calls["n"] += 1
        if calls["n"] == 3:  # the first two calls score the clean and corrupt runs; the third a patched one
            raise RuntimeError("metric failed")
        return metric_for(ioi)(logits, batch)

    sites = [PatchSite(Site.RESID_PRE, 1, "end"), PatchSite(Site.Z, 0, "s2", 1)]
    with pytest.raises(RuntimeError, match="metric failed"):
        patch_sites(tiny_gpt2, ioi.batch(), sites, metric)
    assert _attached(tiny_gpt2) == []


@pytest.mark.parametrize("where", ["patch", "knockout"])
def test_forward_failing_under_hooks_leaves_no_hooks(tiny_gpt2, ioi, monkeypatch, where):
    """The patched forward itself raises while the intervention's hooks are attached. The whole-forward patch engine
    takes the direct forward (its hooks then never attach to the model) unless that is off; off, it runs the bridge's
    `read.answer_forward` with the hooks attached, which is what this test makes fail."""
    if where == "patch":
        monkeypatch.setattr(direct, "enabled", False)
    module = read_module if where == "patch" else knockout_module
    real = module.answer_forward
    seen = []

    def failing(model, tokens, answer_pos):
        seen.append(_attached(model))
        real(model, tokens, answer_pos)
        raise RuntimeError("forward failed")

    monkeypatch.setattr(module, "answer_forward", failing)
    with pytest.raises(RuntimeError, match="forward failed"):
        if where == "patch":
            # the whole-forward engine (the resumed one is covered in tests/interventions/test_engine.py)
            patch_sites(tiny_gpt2, ioi.batch(), [PatchSite(Site.RESID_POST, 0, "s2")], metric_for(ioi),
                        engine=Engine.FULL)
        else:
            knockout(tiny_gpt2, ioi.batch(), [Ablation((Head(1, 2),))], metric_for(ioi), Method.ZERO,
                     engine=Engine.FULL)
    assert seen and seen[0], "the intervention's hooks were attached during the failing forward"
    assert _attached(tiny_gpt2) == []


def test_input_errors_leave_no_hooks(tiny_gpt2, ioi):
    with pytest.raises(InputError):
        patch_sites(tiny_gpt2, ioi.batch(), [PatchSite(Site.RESID_PRE, 7, "end")], metric_for(ioi))
    with pytest.raises(InputError, match="unknown position 'diff'"):
        patch_sites(tiny_gpt2, ioi.batch(), [PatchSite(Site.RESID_PRE, 0, "diff")], metric_for(ioi))
    with pytest.raises(InputError, match="head 0.9 is out of range"):
        patch_sites(tiny_gpt2, ioi.batch(), [PatchSite(Site.Z, 0, "end", 9)], metric_for(ioi))
    assert _attached(tiny_gpt2) == []
