"""Hook names: every Site spelled as TransformerLens spells it and present on real bridges; range and parse errors."""

import pytest

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import FINAL_NORM_SCALE, Head, HookNamer, Site, hook_name, parse_site
from rcid_tl.models import namer

EXPECTED = {
    Site.RESID_PRE: "blocks.3.hook_resid_pre",
    Site.RESID_MID: "blocks.3.hook_resid_mid",
    Site.RESID_POST: "blocks.3.hook_resid_post",
    Site.Z: "blocks.3.attn.hook_z",
    Site.RESULT: "blocks.3.attn.hook_result",
    Site.PATTERN: "blocks.3.attn.hook_pattern",
    Site.Q: "blocks.3.attn.hook_q",
    Site.K: "blocks.3.attn.hook_k",
    Site.V: "blocks.3.attn.hook_v",
    Site.ATTN_OUT: "blocks.3.hook_attn_out",
    Site.MLP_OUT: "blocks.3.hook_mlp_out",
}


def test_every_site_has_its_transformer_lens_name():
    assert set(EXPECTED) == set(Site)
    for site, name in EXPECTED.items():
        assert hook_name(site, 3) == name
        assert hook_name(site.value, 3) == name  # the plain string works too
        assert parse_site(site.value) is site


@pytest.mark.parametrize("model", ["tiny_gpt2", "stories"])
def test_every_site_exists_on_the_bridge(request, model):
    bridge = request.getfixturevalue(model)
    for layer in range(bridge.cfg.n_layers):
        for site in Site:
            assert hook_name(site, layer) in bridge.hook_dict, (site, layer)
    assert FINAL_NORM_SCALE in bridge.hook_dict


def test_per_head_sites():
    assert {s for s in Site if s.per_head} == {Site.Z, Site.RESULT, Site.PATTERN, Site.Q, Site.K, Site.V}


def test_namer_checks_layer_and_head_ranges(tiny_gpt2):
    names = namer(tiny_gpt2)
    assert names == HookNamer(2, 4)
    assert names.name(Site.Z, 1) == "blocks.1.attn.hook_z"
    for layer in (-1, 2):
        with pytest.raises(InputError, match=rf"layer {layer} is out of range; this model has layers 0\.\.1"):
            names.name(Site.RESID_PRE, layer)
    with pytest.raises(InputError, match=r"head 1\.4 is out of range; this model has heads 0\.\.3"):
        names.check_head(Head(1, 4))
    with pytest.raises(InputError, match="layer 5 is out of range"):
        names.check_head(Head(5, 0))
    assert names.all_heads() == [Head(layer, h) for layer in range(2) for h in range(4)]


def test_head_parse_and_str():
    assert Head.parse(" 9.9") == Head(9, 9) and str(Head(10, 7)) == "10.7"
    for bad in ("9", "9.9.9", "a.b", "-1.2", ""):
        with pytest.raises(InputError, match="write heads as LAYER.HEAD"):
            Head.parse(bad)


def test_unknown_site_lists_the_allowed_names():
    with pytest.raises(InputError, match="unknown site 'resid'; allowed: resid_pre, resid_mid"):
        parse_site("resid")
