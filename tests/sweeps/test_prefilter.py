"""`patch --method`: attribution+exact holds exact Δ for the top candidates (equal to the exact sweep's) and the
attribution estimate elsewhere, and records its agreement; a real CLI run writes it to the result JSON."""

import json

import pytest
import torch

from rcid_tl.interventions.attribution import attribution_patch
from rcid_tl.interventions.write import Direction, PatchSite, patch_sites
from rcid_tl.hooks.names import Site
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model
from rcid_tl.sweeps.prefilter import Method, sweep_effects
from rcid_tl.tasks import build_task


@pytest.fixture(scope="module")
def world_gpt2():
    return load_model("world-gpt2")


def test_attribution_then_exact_on_the_top_candidates(world_gpt2):
    dataset = build_task(world_gpt2, "ioi", n=6, seed=0)
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(Site.Z, layer, "end", h) for layer in range(6) for h in range(4)]
    found = sweep_effects(world_gpt2, batch, sites, metric, Direction.NOISING, 64, Method.ATTRIBUTION_EXACT, 5)
    exact, _ = patch_sites(world_gpt2, batch, sites, metric)
    estimate, _ = attribution_patch(world_gpt2, batch, sites, metric)
    assert int(found.exact.sum()) == 5
    top5 = set(estimate.mean(1).abs().topk(5).indices.tolist())
    assert set(found.exact.nonzero().flatten().tolist()) == top5
    torch.testing.assert_close(found.delta[found.exact], exact[found.exact], atol=1e-5, rtol=0)
    torch.testing.assert_close(found.delta[~found.exact], estimate[~found.exact], atol=1e-6, rtol=0)
    assert found.agreement["verified"] == 5 and -1 <= found.agreement["spearman"] <= 1
    assert found.agreement["max_abs_error"] == pytest.approx(
        float((estimate.mean(1) - exact.mean(1))[found.exact].abs().max()), abs=1e-5)


@pytest.mark.parametrize("method", ["attribution", "attribution+exact"])
def test_cli_patch_method(cli, tmp_path, method):
    out = tmp_path / "p"
    run = cli("patch", "--model", "world-gpt2", "--task", "ioi", "--n", "4", "--site", "z", "--positions", "end",
              "--method", method, "--top", "3", "--out", out)
    assert run.code == 0, run.stderr
    payload = json.loads((out / "patch.json").read_text())
    assert payload["config"]["method"] == method and payload["config"]["top"] == 3
    verified = [e for e in payload["effects"] if e["exact"]]
    assert len(verified) == (3 if method == "attribution+exact" else 0)
    assert ("agreement" in payload) == (method == "attribution+exact")
