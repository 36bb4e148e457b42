"""`rcid-tl patch`: real runs on the tiny GPT-2 directory and on a pairs file for stories260K; result files checked
against the contract, and recorded Δs recomputed from the recorded token ids with a fresh plain-HF load."""

import pytest
import torch

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.tasks import build_task
from tests.cli.contract import load_checked, recompute_patch_delta

TOL = 1e-5  # Δ of O(1) logit differences; batched bridge rows vs a one-example HF forward: float32 rounding


def test_resid_patch_on_ioi(cli, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "p"
    run = cli("patch", "--model", tiny_gpt2_dir, "--task", "ioi", "--n", "4", "--seed", "2", "--site", "resid_pre",
              "--positions", "io,s2,end", "--out", out)
    assert run.code == 0, run.stderr
    assert "largest mean Δ" in run.stderr and "Traceback" not in run.stderr
    payload = load_checked(out, "patch")
    assert payload["model"] == str(tiny_gpt2_dir) and payload["task"] == "ioi" and payload["seed"] == 2
    assert payload["metric"] == "logit_diff" and payload["direction"] == "noising"
    assert [(e["layer"], e["position"]) for e in payload["effects"]] == [
        (layer, p) for layer in range(2) for p in ("io", "s2", "end")]
    effect = payload["effects"][4]  # layer 1, s2
    assert recompute_patch_delta(tiny_gpt2_dir, payload, effect, 3) == pytest.approx(effect["per_example"][3], abs=TOL)


def test_z_patch_denoising(cli, tiny_gpt2_dir, tmp_path):
    out = tmp_path / "z"
    run = cli("patch", "--model", tiny_gpt2_dir, "--task", "ioi", "--n", "3", "--site", "z", "--layers", "0",
              "--positions", "s2,end", "--direction", "denoising", "--corruption", "abc", "--out", out)
    assert run.code == 0, run.stderr
    payload = load_checked(out, "patch")
    assert payload["direction"] == "denoising" and payload["task_config"]["corruption"] == "abc"
    assert [(e["position"], e["head"]) for e in payload["effects"]] == [(p, h) for p in ("s2", "end") for h in range(4)]
    effect = payload["effects"][6]  # end, head 2
    assert recompute_patch_delta(tiny_gpt2_dir, payload, effect, 1) == pytest.approx(effect["per_example"][1], abs=TOL)


def test_pairs_file_without_n_uses_every_row(cli, stories, stories_dir, stories_pairs, tmp_path):
    out = tmp_path / "pairs"
    run = cli("patch", "--model", stories_dir, "--task", f"pairs:{stories_pairs}", "--layers", "0", "--out", out)
    assert run.code == 0, run.stderr
    payload = load_checked(out, "patch")
    n_rows = len(stories_pairs.read_text().splitlines())
    assert len(payload["examples"]) == payload["task_config"]["n"] == n_rows  # every row of the file
    assert {e["layer"] for e in payload["effects"]} == {0} and {e["site"] for e in payload["effects"]} == {"resid_post"}
    dataset = build_task(stories, f"pairs:{stories_pairs}")
    sites = [PatchSite(Site.RESID_POST, 0, e["position"]) for e in payload["effects"]]
    delta, _ = patch_sites(stories, dataset.batch(), sites, metric_for(dataset))  # the same patch by library call
    recorded = torch.tensor([e["per_example"] for e in payload["effects"]])
    assert torch.allclose(recorded, delta.to(recorded.dtype), atol=TOL)


def test_patch_on_a_pairs_file(cli, stories_dir, stories_pairs, tmp_path):
    out = tmp_path / "pairs"
    run = cli("patch", "--model", stories_dir, "--task", f"pairs:{stories_pairs}", "--n", "3", "--site",
              "resid_post", "--out", out)
    assert run.code == 0, run.stderr
    payload = load_checked(out, "patch")
    assert len(payload["examples"]) == 3
    assert payload["task_config"] == {"task": "pairs", "path": str(stories_pairs), "n": 3, "prepend_bos": True}
    effect = next(e for e in payload["effects"] if e["layer"] == 1 and e["position"] == "diff")
    assert recompute_patch_delta(stories_dir, payload, effect, 2) == pytest.approx(effect["per_example"][2], abs=TOL)
