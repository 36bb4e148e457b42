"""Mixed precision on the device: sweeps run under bf16/fp16 autocast and distillation steps under the library's
autocast and loss scaling, each within a stated distance of fp32. The CPU runs the bf16 cases (its autocast has
bfloat16; the library trains fp16 on CUDA only), the GPU all of them.

Tolerances, from the formats' unit roundoff: bfloat16 keeps 8 mantissa bits (2⁻⁸ ≈ 0.4% per rounding), float16 11
(2⁻¹¹ ≈ 0.05%). Autocast rounds each matmul's output; a 2-layer model's logits pass through ~10 such roundings, so
Δ and the loss move by a few roundings relative to their scale: allowed 5% of the largest |Δ| (bf16) and 1% (fp16),
relative 5% / 1% on the loss, and gradients at cosine ≥ 0.99 / 0.999 from fp32's."""

import pytest
import torch

from rcid_tl.consistency.checkpoints import Checkpoint
from rcid_tl.distill.methods import Method, Objective, pairings_for
from rcid_tl.distill.precision import Precision, autocast, check_precision, grad_scaler
from rcid_tl.distill.targets import fit_maps, precompute_targets
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import Engine, PatchSite, patch_sites
from rcid_tl.metrics import metric_for
from tests.gpu.conftest import NO_CUDA, tiny_model

SCALE = {Precision.BF16: 5e-2, Precision.FP16: 1e-2}  # relative bound on Δ and the loss (module docstring)
COSINE = {Precision.BF16: 0.99, Precision.FP16: 0.999}
PRECISIONS = (Precision.BF16, pytest.param(Precision.FP16, marks=NO_CUDA))


def _usable(precision: Precision, device: str) -> None:
    if device == "cpu" and precision is Precision.FP16:
        pytest.skip("float16 autocast is for CUDA (check_precision refuses it on the CPU)")
    check_precision(precision.value, device)


@pytest.mark.parametrize("engine", list(Engine))
@pytest.mark.parametrize("precision", PRECISIONS)
def test_sweeps_under_autocast_stay_near_fp32(qwen2, ioi, device, precision, engine):
    _usable(precision, device)
    batch, metric = ioi.batch(), metric_for(ioi)
    sites = [PatchSite(Site.RESID_PRE, layer, p) for layer in (0, 1) for p in ("io", "s2", "end")]
    sites += [PatchSite(Site.Z, 1, "end", h) for h in range(qwen2.cfg.n_heads)]
    full, _ = patch_sites(qwen2, batch, sites, metric, engine=engine)
    with autocast(precision, device):
        half, _ = patch_sites(qwen2, batch, sites, metric, engine=engine)
    assert torch.isfinite(half).all()
    bound = SCALE[precision] * float(full.abs().max())
    assert 0 < float((half.float() - full).abs().max()) <= bound  # autocast was on, and stayed close


def test_sweep_results_stay_float32_under_autocast(qwen2, ioi, device):
    """Δ is a difference of two nearby metrics: computed in bfloat16 it keeps ~2 significant digits of the metric
    (a small effect rounds to 0), so logits should be upcast before the metric, as the fp32 weights' sweep has."""
    _usable(Precision.BF16, device)
    batch, metric = ioi.batch(), metric_for(ioi)
    with autocast(Precision.BF16, device):
        half, runs = patch_sites(qwen2, batch, [PatchSite(Site.RESID_PRE, 1, "end")], metric)
    assert half.dtype == torch.float32 and runs.clean.dtype == torch.float32


def _step(teacher, student, dataset, precision: Precision, device: str) -> tuple[float, torch.Tensor]:
    checkpoints = [Checkpoint(layer, "end", "resid_post", 1.0, False) for layer in (0, 1)]
    pairings = pairings_for(Method.RCID, checkpoints, {0: 0, 1: 1}, 2)
    maps = fit_maps(teacher, student, dataset, pairings, n_fit=len(dataset))
    objective = Objective(Method.RCID, pairings, maps, lam=1.0, temperature=2.0).to(device)
    targets = precompute_targets(teacher, dataset, pairings)
    rows = torch.arange(len(dataset))
    batch = dataset.batch(rows.tolist())
    student.zero_grad(set_to_none=True)
    scaler = grad_scaler(precision, device)
    with autocast(precision, device):
        loss, _ = objective(student, batch, targets.take(rows, batch.clean.shape[1]))
    scaler.scale(loss).backward()
    params = [p for p in student.original_model.parameters() if p.grad is not None]
    grads = torch.cat([p.grad.flatten() / scaler.get_scale() for p in params])
    return loss.item(), grads


@pytest.mark.parametrize("precision", PRECISIONS)
def test_a_distillation_step_under_autocast_stays_near_fp32(qwen2, ioi, device, world_tokenizer, precision):
    _usable(precision, device)
    student = tiny_model("qwen2", world_tokenizer, device, seed=1)
    student.train()
    loss32, grad32 = _step(qwen2, student, ioi, Precision.FP32, device)
    loss, grad = _step(qwen2, student, ioi, precision, device)
    assert all(p.dtype == torch.float32 for p in student.parameters())  # weights stay fp32 under autocast
    assert loss != loss32 and abs(loss - loss32) <= SCALE[precision] * abs(loss32)
    assert torch.isfinite(grad).all()
    assert float(torch.nn.functional.cosine_similarity(grad, grad32, dim=0)) >= COSINE[precision]
