"""Checkpoints chosen by effect, on a model whose weights are set by hand: only two heads write to the residual
stream, so only they can carry the teacher's effect; the imprint rule still picks silent heads (their z differs
between clean and corrupt, but nothing reads it). Also: the share the chosen set carries, measured jointly."""

import copy

import pytest
import torch

from rcid_tl.consistency.checkpoints import MIN_EFFECT, Ranking, carried_share, select_checkpoints
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import Direction, patch_sites, patch_together
from rcid_tl.metrics import metric_for
from rcid_tl.models.loading import load_tokenizer, wrap_hf_model

ALIVE = {(0, 1), (1, 3)}  # the heads left writing; every other head's slice of c_proj is zeroed
TOL = 1e-5  # float32 forwards of a 2-layer model with O(1) logit differences; the same arithmetic both ways


@pytest.fixture(scope="module")
def two_heads(tiny_gpt2_hf, tiny_gpt2_dir):
    hf = copy.deepcopy(tiny_gpt2_hf)
    d_head = hf.config.n_embd // hf.config.n_head
    with torch.no_grad():
        for layer, block in enumerate(hf.transformer.h):
            for head in range(hf.config.n_head):
                if (layer, head) not in ALIVE:
                    block.attn.c_proj.weight[head * d_head:(head + 1) * d_head] = 0  # Conv1D rows: head's z slice
    return wrap_hf_model(hf, load_tokenizer(tiny_gpt2_dir), label="two-heads")


def test_effect_ranking_picks_only_heads_that_write(two_heads, ioi_abc):
    chosen = select_checkpoints(two_heads, ioi_abc, top_k=8, site=Site.Z, min_unmodified=0, max_saturation=None)
    assert chosen and {(c.layer, c.head) for c in chosen} <= ALIVE
    assert all(c.effect >= MIN_EFFECT for c in chosen)
    assert [c.effect for c in chosen] == sorted((c.effect for c in chosen), reverse=True)
    # each point's share is its own mean Δ over the whole effect, recomputed here with patch_sites
    batch, metric = ioi_abc.batch(), metric_for(ioi_abc)
    delta, runs = patch_sites(two_heads, batch, [c.patch_site() for c in chosen], metric, Direction.NOISING)
    total = float((runs.clean - runs.corrupt).mean())
    for c, d in zip(chosen, delta):
        assert c.saturation == pytest.approx(float(d.mean()) / total, abs=TOL)
        assert c.spread == pytest.approx(float(d.double().std()) / abs(total), abs=TOL)
    by_imprint = select_checkpoints(two_heads, ioi_abc, top_k=8, site=Site.Z, min_unmodified=0,
                                    max_saturation=None, ranking=Ranking.IMPRINT)
    assert {(c.layer, c.head) for c in by_imprint} - ALIVE  # the defect effect ranking removes


def test_carried_share_is_the_joint_noising(two_heads, ioi_abc):
    chosen = select_checkpoints(two_heads, ioi_abc, top_k=8, site=Site.Z, min_unmodified=0, max_saturation=None)
    batch, metric = ioi_abc.batch(), metric_for(ioi_abc)
    _, runs = patch_sites(two_heads, batch, [chosen[0].patch_site()], metric)
    joint = patch_together(two_heads, batch, [c.patch_site() for c in chosen], metric)
    expected = float(joint.mean()) / float((runs.clean - runs.corrupt).mean())
    assert carried_share(two_heads, ioi_abc, chosen) == pytest.approx(expected, abs=TOL)


def test_patch_together_of_one_site_is_patch_sites(tiny_gpt2, ioi_abc):
    batch, metric = ioi_abc.batch(), metric_for(ioi_abc)
    for site in [c.patch_site() for c in select_checkpoints(tiny_gpt2, ioi_abc, top_k=3, max_saturation=None)]:
        single, _ = patch_sites(tiny_gpt2, batch, [site], metric)
        torch.testing.assert_close(patch_together(tiny_gpt2, batch, [site], metric), single[0], atol=TOL, rtol=0)
