"""Activation patching on every bridged architecture: the bridge against plain `transformers`, whole forwards against
`transformer_lens.patching`, and the resumed engine against whole forwards at every patchable site, both directions.

Tolerances (fp32, logit differences O(0.1)–O(1) on these models): 1e-5 absolute between the bridge and HF and
between engines, the engine tests' bound (tests/interventions/test_engine.py): both sides compute the same function
but with other matmul shapes (fewer positions and rows per forward, the bridge's own attention arithmetic), so they
agree to float32 rounding (measured ≤ 5e-6), not bitwise. A missing sliding-window mask or soft-cap moves Δ by
O(0.1)–O(1), five orders above it.
"""

import pandas as pd
import pytest
import torch
from transformer_lens import patching

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions.engine import reference_run
from rcid_tl.interventions.write import PATCHABLE, Direction, Engine, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models.architectures import absent_sites, check_resumable, resume_refusal
from rcid_tl.models.loading import namer

ATOL = 1e-5  # see module docstring
POSITIONS = ("io", "s2", "end")


def _sites(model, site: Site) -> list[PatchSite]:
    heads = range(model.cfg.n_heads) if site.per_head else (None,)
    return [PatchSite(site, layer, p, h) for layer in range(model.cfg.n_layers) for p in POSITIONS for h in heads]


def _patchable(model) -> list[Site]:
    return [s for s in PATCHABLE if s not in absent_sites(model)]


def test_bridge_equals_plain_transformers(model, hf_copy, ioi):
    """The bridge runs the HF forward (sliding masks, soft-caps, partial rotary included): same logits."""
    tokens = ioi.batch().clean
    with torch.no_grad():
        ours, theirs = model(tokens), hf_copy(tokens).logits
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)


def _transformer_lens_agreement(model, ioi, per_head: bool) -> None:
    batch, metric = ioi.batch([0]), metric_for(ioi)
    names = [hook_name(Site.RESID_PRE, layer) for layer in range(2)] + [hook_name(Site.Z, layer) for layer in range(2)]
    with torch.no_grad():
        clean_logits, cache = model.run_with_cache(batch.clean, names_filter=names)

    def tl_metric(logits):
        return metric(logits[:, batch.answer_pos[0]], batch)[0]

    clean = tl_metric(clean_logits)
    positions = {name: int(p[0]) for name, p in batch.positions.items() if name in POSITIONS}
    index = pd.DataFrame([(layer, p) for layer in range(2) for p in positions.values()], columns=["layer", "pos"])
    theirs = clean - patching.get_act_patch_resid_pre(model, batch.corrupt, cache, tl_metric,
                                                      index_axis_names=None, index_df=index)
    sites = [PatchSite(Site.RESID_PRE, layer, name) for layer in range(2) for name in positions]
    if per_head:
        heads = range(model.cfg.n_heads)
        index = pd.DataFrame([(layer, p, h) for layer in range(2) for p in positions.values() for h in heads],
                             columns=["layer", "pos", "head"])
        z = patching.get_act_patch_attn_head_out_by_pos(model, batch.corrupt, cache, tl_metric,
                                                        index_axis_names=None, index_df=index)
        theirs = torch.cat([theirs, clean - z])
        sites += [PatchSite(Site.Z, layer, name, h) for layer in range(2) for name in positions for h in heads]
    ours, _ = patch_sites(model, batch, sites, metric, Direction.DENOISING, engine=Engine.FULL)
    torch.testing.assert_close(ours[:, 0], theirs.float(), atol=ATOL, rtol=0)
    assert theirs.abs().max() > 1e-2


def test_whole_forwards_equal_transformer_lens_patching(model, ioi):
    """The whole-forward engine (denoising: clean value into the corrupt run) against TL's own looped patching of
    resid_pre at the named positions of one prompt (TL patches a position across the whole batch). The direct forward
    (interventions/direct.py) builds only the causal mask, so a Qwen2 with a sliding window is left to the bridge."""
    _transformer_lens_agreement(model, ioi, per_head=False)


@pytest.mark.slow
def test_whole_forwards_equal_transformer_lens_head_patching(model, ioi):
    """As above, with every head's z at every named position as well (TL runs one forward per head)."""
    _transformer_lens_agreement(model, ioi, per_head=True)


def _resumed_error(model, ioi, direction: Direction) -> float:
    """Max |Δ_resumed − Δ_whole| over every patchable site this model has (all kinds in one sweep per engine)."""
    batch, metric = ioi.batch(), metric_for(ioi)
    sites = [s for site in _patchable(model) for s in _sites(model, site)]
    full, full_runs = patch_sites(model, batch, sites, metric, direction, engine=Engine.FULL)
    fast, fast_runs = patch_sites(model, batch, sites, metric, direction, engine=Engine.RESUME)
    assert full.abs().max() > 1e-3  # real effects, not an agreement of zeros
    torch.testing.assert_close(fast_runs.clean, full_runs.clean, atol=ATOL, rtol=0)
    torch.testing.assert_close(fast_runs.corrupt, full_runs.corrupt, atol=ATOL, rtol=0)
    return float((fast - full).abs().max())


def test_resumed_rows_equal_whole_forwards(model, arch, ioi):
    """Exact at every site on every architecture, resuming (no fallback): a resumed row on a sliding layer gets the
    window's mask (rcid_tl.models.architectures.resumed_attention_mask; without it, Δ is off by O(1) on Mistral and
    Gemma 2) and Gemma 2's logits the final soft-cap."""
    batch = ioi.batch()
    assert reference_run(model, batch.clean, batch.answer_pos).reproduces_head
    assert _resumed_error(model, ioi, Direction.NOISING) <= ATOL


@pytest.mark.slow
def test_resumed_rows_equal_whole_forwards_denoising(model, ioi):
    """Denoising as well, on every architecture."""
    assert _resumed_error(model, ioi, Direction.DENOISING) <= ATOL


def test_parallel_blocks_refuse_resid_mid_in_one_line(model, arch, ioi):
    """GPT-NeoX and Phi add attention and MLP to one residual: resid_mid is refused by name, every other model has
    it."""
    if not arch.parallel:
        assert Site.RESID_MID not in absent_sites(model)
        namer(model).name(Site.RESID_MID, 1)
        return
    with pytest.raises(InputError) as err:
        patch_sites(model, ioi.batch(), [PatchSite(Site.RESID_MID, 0, "end")], metric_for(ioi))
    message = str(err.value)
    assert "\n" not in message and "'resid_mid'" in message and "in parallel" in message
    assert "allowed: resid_pre, resid_post" in message


def test_an_attention_kind_a_row_cannot_rebuild_is_refused(model, monkeypatch):
    """Every matrix architecture is resumable; a chunked-attention layer (Llama 4) is refused in one line."""
    assert resume_refusal(model) is None
    config = model.original_model.config
    monkeypatch.setattr(config, "layer_types", ["full_attention", "chunked_attention"], raising=False)
    with pytest.raises(InputError, match=r"has chunked_attention layers, which a resumed row cannot rebuild") as err:
        check_resumable(model)
    assert "\n" not in str(err.value) and "engine 'full'" in str(err.value)
