"""`device_map` placement (rcid_tl.models.placement): a model dispatched by Accelerate runs where the map put it and
patches as the same model on one device does. Without a GPU "auto" keeps every block on the CPU (the dry form).

Tolerance 1e-5 absolute on Δ (fp32, |Δ| O(1)): a dispatched model runs the same ops, on the GPU with other kernels
than the reference's CPU ones, so the two agree to float32 rounding."""

import pytest
import torch

from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import Engine, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from rcid_tl.models import load_model, save_hf_model
from rcid_tl.models.placement import load_dispatched
from rcid_tl.tasks import build_task
from tests.gpu.conftest import tiny_model

ATOL = 1e-5  # see module docstring


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, world_tokenizer):
    return save_hf_model(tiny_model("llama", world_tokenizer, "cpu"), tmp_path_factory.mktemp("llama") / "tiny")


@pytest.mark.parametrize("device_map", ["auto", "sequential"])
def test_a_dispatched_model_patches_as_on_one_device(model_dir, device, device_map):
    dispatched = load_dispatched(str(model_dir), device_map)
    devices = {p.device.type for p in dispatched.original_model.parameters()}
    assert devices == ({"cuda"} if device == "cuda" else {"cpu"})
    plain = load_model(str(model_dir))
    dataset = build_task(plain, "ioi", n=3, seed=2, corruption="abc")
    batch, metric = dataset.batch(), metric_for(dataset)
    sites = [PatchSite(Site.RESID_PRE, layer, p) for layer in (0, 1) for p in ("io", "end")]
    ours, _ = patch_sites(dispatched, batch, sites, metric)
    theirs, _ = patch_sites(plain, batch, sites, metric, engine=Engine.FULL)
    torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
    assert theirs.abs().max() > 1e-3
