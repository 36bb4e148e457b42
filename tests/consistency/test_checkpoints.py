"""Checkpoint selection: imprint norms against a direct per-site imprint, the unmodified quota,
inert and zero points never chosen, and checkpoint files validated on load."""

import json

import pytest
import torch

from rcid_tl.consistency.checkpoints import (
    Checkpoint, Ranking, imprint_norms, load_checkpoints, modified_positions, save_checkpoints, select_checkpoints,
)
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.read import causal_imprint
from rcid_tl.interventions.write import patch_sites
from rcid_tl.metrics import metric_for

IMPRINT = Ranking.IMPRINT  # the RCID design's rule, tested against a direct imprint; effect ranking: below
TOL = 1e-4  # mean of O(1–10) norms; padded batches of 4 vs one unpadded batch, float32 rounding


@pytest.mark.parametrize("site", [Site.RESID_POST, Site.MLP_OUT])
def test_norms_match_a_direct_imprint(tiny_gpt2, ioi_abc, site):
    norms = imprint_norms(tiny_gpt2, ioi_abc, site=site, batch_size=4)  # two batches, the last one short
    assert norms.shape == (2, len(ioi_abc.position_names))
    batch = ioi_abc.batch()
    for layer in range(2):
        for j, position in enumerate(ioi_abc.position_names):
            direct = causal_imprint(tiny_gpt2, batch, layer, position, site).norm(dim=-1).mean()
            assert float(norms[layer, j]) == pytest.approx(float(direct), abs=TOL), (layer, position)


def test_modified_flags(ioi_abc, ioi_s2):
    assert modified_positions(ioi_abc) == {"io": True, "s1": True, "s1+1": False, "s2": True, "end": False}
    assert modified_positions(ioi_s2) == {"io": False, "s1": False, "s1+1": False, "s2": True, "end": False}


def test_quota_brings_in_unmodified_positions(tiny_gpt2, ioi_abc):
    norms = imprint_norms(tiny_gpt2, ioi_abc)
    flags = modified_positions(ioi_abc)
    # what may be chosen: any layer-0 point, and at the last layer only the answer position (`end`)
    usable = [(l, p) for l in range(2) for p in ioi_abc.position_names if l == 0 or p == "end"]
    norm = {(l, p): float(norms[l, ioi_abc.position_names.index(p)]) for l, p in usable}
    by_norm = sorted(usable, key=lambda k: -norm[k])
    unmodified = [k for k in by_norm if not flags[k[1]]]

    plain = select_checkpoints(tiny_gpt2, ioi_abc, top_k=3, min_unmodified=0, max_saturation=None, ranking=IMPRINT)
    assert [(c.layer, c.position) for c in plain] == by_norm[:3]
    chosen = select_checkpoints(tiny_gpt2, ioi_abc, top_k=3, min_unmodified=2, max_saturation=None,
                                ranking=IMPRINT)
    keys = [(c.layer, c.position) for c in chosen]
    expected = unmodified[:2] + [k for k in by_norm if k not in unmodified[:2]][:1]
    assert set(keys) == set(expected) and sum(not c.modified for c in chosen) >= 2
    assert [c.mean_norm for c in chosen] == sorted((c.mean_norm for c in chosen), reverse=True)
    assert all(c.site == "resid_post" and c.modified == flags[c.position] for c in chosen)
    assert len(select_checkpoints(tiny_gpt2, ioi_abc, top_k=4, max_saturation=None)) == 4  # quota: half of top_k


def test_zero_and_inert_points_are_never_chosen(tiny_gpt2, ioi_s2):
    # s2-io: io, s1, s1+1 precede the only changed token (zero imprint); s2 at the last layer cannot reach the
    # answer. What is left: (0, s2), (0, end), (1, end).
    chosen = select_checkpoints(tiny_gpt2, ioi_s2, top_k=8, max_saturation=None)
    assert sorted((c.layer, c.position) for c in chosen) == [(0, "end"), (0, "s2"), (1, "end")]


def test_saturated_points_are_skipped(tiny_gpt2, ioi_s2):
    """(1, end) at resid_post is the last residual at the answer: noising it replaces the output with the corrupt
    one (saturation exactly 1), so the default selection drops it; each kept point's saturation is its own patch's
    mean Δ over the mean output difference."""
    chosen = select_checkpoints(tiny_gpt2, ioi_s2, top_k=8)
    assert (1, "end") not in [(c.layer, c.position) for c in chosen] and chosen
    kept_all = select_checkpoints(tiny_gpt2, ioi_s2, top_k=8, max_saturation=float("inf"))
    last = next(c for c in kept_all if (c.layer, c.position) == (1, "end"))
    assert last.saturation == pytest.approx(1.0, abs=1e-5)
    delta, runs = patch_sites(tiny_gpt2, ioi_s2.batch(), [c.patch_site() for c in chosen], metric_for(ioi_s2))
    expected = delta.mean(1) / (runs.clean - runs.corrupt).mean()
    assert [c.saturation for c in chosen] == pytest.approx(expected.tolist(), abs=1e-5)
    assert all(abs(c.saturation) < 0.9 for c in chosen)


def test_head_checkpoints_at_z(tiny_gpt2, ioi_s2):
    """At z a checkpoint is a head at a position; its norm is that head's imprint alone."""
    norms = imprint_norms(tiny_gpt2, ioi_s2, site=Site.Z)
    assert norms.shape == (2, len(ioi_s2.position_names), tiny_gpt2.cfg.n_heads)
    batch, j = ioi_s2.batch(), ioi_s2.position_names.index("end")
    direct = causal_imprint(tiny_gpt2, batch, 1, "end", Site.Z)  # (batch, head, d_head)
    torch.testing.assert_close(norms[1, j], direct.norm(dim=-1).mean(0), atol=TOL, rtol=0)
    chosen = select_checkpoints(tiny_gpt2, ioi_s2, top_k=3, site=Site.Z, max_saturation=None, ranking=IMPRINT)
    assert len(chosen) == 3 and all(c.site == "z" and c.head is not None for c in chosen)
    best = max(((l, p, h) for l in range(2) for p in ("s2", "end") for h in range(4)
                if l == 0 or p == "end"), key=lambda k: norms[k[0], ioi_s2.position_names.index(k[1]), k[2]])
    assert (chosen[0].layer, chosen[0].position, chosen[0].head) == best


def test_bad_selection_input(tiny_gpt2, ioi_s2):
    with pytest.raises(InputError, match="--top-k must be ≥ 1, got 0"):
        select_checkpoints(tiny_gpt2, ioi_s2, top_k=0)
    with pytest.raises(InputError, match="--min-unmodified"):
        select_checkpoints(tiny_gpt2, ioi_s2, top_k=2, min_unmodified=3)
    with pytest.raises(InputError, match="'k' cannot be a checkpoint site"):
        select_checkpoints(tiny_gpt2, ioi_s2, site=Site.K)
    with pytest.raises(InputError, match="--max-saturation must be > 0"):
        select_checkpoints(tiny_gpt2, ioi_s2, max_saturation=0.0)


def test_save_and_load_round_trip(tmp_path):
    checkpoints = [Checkpoint(1, "end", "resid_post", 3.25, False), Checkpoint(0, "s2", "mlp_out", 1.5, True),
                   Checkpoint(1, "s2", "z", 0.5, True, head=3, saturation=0.25)]
    path = save_checkpoints(tmp_path / "c.json", checkpoints, {"model": "m", "task": "ioi"})
    payload = json.loads(path.read_text())
    assert payload["model"] == "m" and payload["checkpoints"][0] == checkpoints[0].to_dict()
    assert load_checkpoints(path, 2, ("s2", "end"), n_heads=4) == checkpoints


@pytest.mark.parametrize("entries,message", [
    ([{"layer": 2, "position": "end"}], "layer 2 is out of range; this model has layers 0..1"),
    ([{"layer": -1, "position": "end"}], "layer -1 is out of range"),
    ([{"layer": 0, "position": "s3"}], "unknown position 's3'; this task has: s2, end"),
    ([{"layer": 0, "position": "end", "site": "k"}], "site 'k' cannot be a checkpoint site"),
    ([{"layer": 0, "position": "end", "site": "z"}], "site z needs a 'head'"),
    ([{"layer": 0, "position": "end", "site": "z", "head": 4}], "head 4 is out of range; this model has heads 0..3"),
    ([{"layer": 0, "position": "end", "head": 1}], "site resid_post takes no 'head'"),
    ([{"layer": 0, "position": "end", "site": "nope"}], "unknown site 'nope'"),
    ([{"position": "end"}], "needs 'layer' and 'position'"),
    ([], "holds no checkpoints"),
])
def test_load_names_the_bad_entry(tmp_path, entries, message):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"checkpoints": entries}))
    with pytest.raises(InputError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_checkpoints(path, 2, ("s2", "end"), n_heads=4)


def test_load_rejects_missing_and_malformed_files(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_checkpoints(tmp_path / "none.json", 2, ("end",))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_checkpoints(tmp_path / "bad.json", 2, ("end",))
