"""Gradient flow: every method's loss reaches the student's weights (and FitNets' regressors), never
the teacher's, never the frozen W* (which an optimizer step leaves unchanged); teacher targets are detached."""

import pytest
import torch

from rcid_tl.distill.config import OptimConfig
from rcid_tl.alignment.heads import proportional_head_map
from rcid_tl.distill.methods import Method, Objective, pairings_for
from rcid_tl.distill.run import prepare
from rcid_tl.distill.targets import fit_maps, precompute_targets
from rcid_tl.training import make_optimizer
from rcid_tl.errors import InputError
from tests.distill.conftest import tiny_config


@pytest.fixture(scope="module")
def setup():
    return prepare(tiny_config(Method.RCID))


@pytest.mark.parametrize("method", list(Method))
def test_gradients_reach_student_only(setup, method):
    s = setup
    heads = proportional_head_map(s.teacher.cfg.n_heads, s.student.cfg.n_heads, s.layer_map)  # z checkpoints
    pairings = pairings_for(method, s.checkpoints, s.layer_map, s.student.cfg.n_layers, heads)
    maps = fit_maps(s.teacher, s.student, s.train, pairings, n_fit=8)
    objective = Objective(method, pairings, maps, lam=1.0, temperature=2.0)
    targets = precompute_targets(s.teacher, s.train, pairings, interchange=method is Method.IIT)
    assert not any(t.requires_grad for t in (targets.logits, targets.imprints, targets.states, targets.layers))
    rows = torch.arange(8)
    batch = s.train.batch(rows.tolist())
    s.student.zero_grad(set_to_none=True)
    loss, parts = objective(s.student, batch, targets.take(rows, batch.clean.shape[1]))
    loss.backward()
    assert torch.isfinite(loss) and ("term" in parts) == (method is not Method.STANDARD_KD)
    params = list(s.student.original_model.parameters())
    # the bridge trains GPT-2's fused c_attn through q/k/v parameters that are views of its storage, so each
    # weight *storage* must receive a gradient through some parameter
    fed = {p.untyped_storage().data_ptr() for p in params if p.grad is not None}
    assert all(p.untyped_storage().data_ptr() in fed for p in params)
    blocks = [p.grad for n, p in s.student.original_model.named_parameters() if ".h.1." in n]
    assert any(g.abs().sum() > 0 for g in blocks)
    assert all(p.grad is None and not p.requires_grad for p in s.teacher.parameters())
    for w in objective.maps.values():
        assert not w.weight.requires_grad and w.weight.grad is None
    assert list(objective.maps.parameters()) == []  # W* is a buffer: no optimizer ever sees it
    for projection in objective.projections.values():
        assert projection.weight.grad is not None and projection.weight.grad.abs().sum() > 0

    before = {k: w.weight.clone() for k, w in objective.maps.items()}
    opt, _ = make_optimizer(torch.nn.ModuleDict({"s": s.student.original_model, "o": objective}), OptimConfig(steps=1))
    opt.step()
    assert all(torch.equal(before[k], w.weight) for k, w in objective.maps.items())  # W* stays frozen


def test_head_checkpoints_match_one_teacher_head_to_one_student_head(setup, tmp_path):
    """z checkpoints (a head at a position): W* and the targets use that head's d_head slice only, the student head
    comes from the proportional head map (teacher 4 heads → student 2), and the RCID term trains the student."""
    from rcid_tl.consistency.checkpoints import Checkpoint
    from rcid_tl.hooks.names import Site
    from rcid_tl.interventions.read import read_site

    s = setup
    points = [Checkpoint(4, "end", "z", 1.0, False, head=3), Checkpoint(2, "s2", "z", 1.0, True, head=1)]
    head_map = proportional_head_map(s.teacher.cfg.n_heads, s.student.cfg.n_heads, s.layer_map)
    pairings = pairings_for(Method.RCID, points, s.layer_map, s.student.cfg.n_layers, head_map)
    assert [(p.teacher_head, p.student_head) for p in pairings] == [(3, 1), (1, 0)]
    targets = precompute_targets(s.teacher, s.train, pairings)
    assert targets.imprints.shape == (len(s.train), 2, s.teacher.cfg.d_head)
    clean, corrupt = read_site(s.teacher, s.train.batch(), Site.Z, 4, "end")
    torch.testing.assert_close(targets.imprints[:, 0], (clean - corrupt)[:, 3], atol=1e-5, rtol=0)
    maps = fit_maps(s.teacher, s.student, s.train, pairings, n_fit=8)
    assert {k: (w.d_student, w.d_teacher) for k, w in maps.items()} == {
        "z-4-3": (s.student.cfg.d_head, s.teacher.cfg.d_head), "z-2-1": (s.student.cfg.d_head, s.teacher.cfg.d_head)}
    objective = Objective(Method.RCID, pairings, maps, lam=1.0, temperature=2.0)
    rows = torch.arange(4)
    batch = s.train.batch(rows.tolist())
    s.student.zero_grad(set_to_none=True)
    loss, parts = objective(s.student, batch, targets.take(rows, batch.clean.shape[1]))
    loss.backward()
    assert torch.isfinite(loss) and parts["term"] > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in s.student.original_model.parameters())
    with pytest.raises(InputError, match="mix per-head"):
        pairings_for(Method.RCID, [points[0], Checkpoint(1, "end", "resid_post", 1.0, False)], s.layer_map,
                     s.student.cfg.n_layers, head_map)
