"""CausalQwen under TransformerLens's bridge: backbone hooks plus the causal-head hook points, cached with the very
values the plain Hugging Face forward returns, and patchable."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.causalqwen.bridge import inference_mode
from rcid_tl.metrics import metric_readout
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import CausalSite, causal_hook_name, causal_hook_names, hook_name
from rcid_tl.models import load_model


@pytest.fixture(scope="module")
def bridge(causal_dir):
    return load_model(str(causal_dir))


@pytest.fixture(scope="module")
def hf(causal_dir):
    return AutoModelForCausalLM.from_pretrained(causal_dir, attn_implementation="eager").eval()


def test_hook_names_are_spelled_in_one_place():
    assert causal_hook_name(CausalSite.LOC_U) == "abduction.hook_loc_U"
    assert causal_hook_name("ovr_probs") == "ovr.hook_probs"
    with pytest.raises(InputError, match="unknown causal-head site 'loc_V'"):
        causal_hook_name("loc_V")


def test_cache_holds_the_causal_head_with_hf_values(bridge, hf, token_ids):
    with torch.no_grad():
        logits, cache = bridge.run_with_cache(token_ids)
        expected = hf(token_ids)
    assert all(name in bridge.hook_dict for name in causal_hook_names())
    assert hook_name("resid_post", 1) in cache and "hook_unembed" in cache  # the backbone hooks are still there
    # the bridge runs the same HF forward: identical tensors, not merely close
    assert torch.equal(logits, expected.logits)
    for site, field in [(CausalSite.LOC_U, "loc_U"), (CausalSite.SCALE_U, "scale_U"), (CausalSite.LOC_S, "loc_S"),
                        (CausalSite.SCALE_S, "scale_S"), (CausalSite.OVR_PROBS, "ovr_probs")]:
        assert torch.equal(cache[causal_hook_name(site)], getattr(expected, field)), site
    assert torch.equal(cache["hook_unembed"], expected.loc_S)  # the unembedding is the action network's W·U + b


def test_patching_loc_U_acts_through_the_action_network(bridge, token_ids):
    zero = lambda act, hook: torch.zeros_like(act)  # noqa: E731
    with torch.no_grad(), inference_mode(bridge, "compatible"):
        clean = bridge(token_ids)
        ablated = bridge.run_with_hooks(token_ids, fwd_hooks=[(causal_hook_name("loc_U"), zero)])
    assert not torch.allclose(clean, ablated)
    # loc_U = 0 leaves loc_S = W·0 + b = b, which starts at zero
    assert torch.equal(ablated, torch.zeros_like(ablated))


def test_patching_ovr_probabilities_sets_standard_logits(bridge, token_ids):
    quarter = lambda act, hook: torch.full_like(act, 0.25)  # noqa: E731
    with torch.no_grad():
        logits = bridge.run_with_hooks(token_ids, fwd_hooks=[(causal_hook_name("ovr_probs"), quarter)])
    torch.testing.assert_close(logits, torch.full_like(logits, 0.25).log())


def test_hooks_survive_a_rescan_and_the_head_is_reachable_through_original_model(bridge, token_ids):
    bridge.enable_compatibility_mode(disable_warnings=True, no_processing=True)  # clears and rescans the registry
    seen = {}
    keep = lambda act, hook: seen.setdefault(hook.name, act)  # noqa: E731
    with torch.no_grad(), bridge.hooks(fwd_hooks=[(causal_hook_name("scale_S"), keep)]):
        out = bridge.original_model(token_ids)
    assert torch.equal(seen["action.hook_scale_S"], out.scale_S)


def test_inference_mode_switch_is_scoped(bridge, token_ids):
    with torch.no_grad():
        with inference_mode(bridge, "compatible"):
            compatible = bridge(token_ids)
        standard = bridge(token_ids)
    assert bridge.original_model.config.inference_mode == "standard"
    assert (standard <= 0).all() and not torch.allclose(compatible, standard)


def test_ovr_metrics_need_causal_qwen(tiny_gpt2):
    with pytest.raises(InputError, match="only a CausalQwen model has"):
        metric_readout(tiny_gpt2, "ovr_prob_diff")
