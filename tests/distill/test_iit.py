"""IIT (interchange-intervention training): the term against a hand-written Hugging Face reference at every
checkpoint site, gradients through the corrupt run, zero for a copy of the teacher, and a real CLI run."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.alignment.heads import proportional_head_map
from rcid_tl.consistency.checkpoints import Checkpoint
from rcid_tl.distill.methods import Method, Objective, Pairing, pairings_for
from rcid_tl.distill.run import prepare
from rcid_tl.distill.targets import precompute_targets
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.models.embedded import embedded_path
from rcid_tl.models.loading import load_model, namer
from rcid_tl.models.saving import save_hf_model
from tests import hf_reference as ref
from tests.distill.conftest import tiny_config
from tests.distill.test_cli import SMALL

T = 2.0
ROWS = torch.arange(8)
# Two checkpoints per site (teacher layers 4 and 1 → student layers 1 and 0), at the answer position and at s2.
POINTS = [(4, "end", 3), (1, "s2", 1)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    path = tmp_path_factory.mktemp("ck") / "checkpoints.json"
    path.write_text(json.dumps([{"layer": 4, "position": "end"}]))  # skips the selection sweep
    return prepare(tiny_config(Method.IIT, checkpoints=str(path)))


@pytest.fixture(scope="module")
def hf_copies(setup, tmp_path_factory):
    """The teacher and the (random) student as plain `transformers` models, no bridge in sight."""
    folder = save_hf_model(setup.student, tmp_path_factory.mktemp("student"))
    load = lambda d: AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager").eval()  # noqa: E731
    return load(embedded_path("world-gpt2")), load(folder)


def _pairings(s, site: str) -> list[Pairing]:
    points = [Checkpoint(layer, pos, site, 1.0, False, head=head if site == "z" else None)
              for layer, pos, head in POINTS]
    head_map = proportional_head_map(s.teacher.cfg.n_heads, s.student.cfg.n_heads, s.layer_map)
    return pairings_for(Method.IIT, points, s.layer_map, s.student.cfg.n_layers, head_map)


def _iit_term(s, pairings: list[Pairing], student=None, rows=ROWS) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(loss, teacher interchanged logits, parts) of the IIT objective on `rows`."""
    batch = s.train.batch(rows.tolist())
    targets = precompute_targets(s.teacher, s.train, pairings, interchange=True).take(rows, batch.clean.shape[1])
    objective = Objective(Method.IIT, pairings, {}, lam=1.0, temperature=T)
    loss, parts = objective(student or s.student, batch, targets)
    return loss, targets.patched, parts


# --- the reference: plain HF forwards, hooks on HF modules ---------------------------------------------------------

def _module(hf, site: str, layer: int):
    block = ref.blocks(hf)[layer]
    return ref.attention(block) if site == "attn_out" else block.mlp


@torch.no_grad()
def _record(hf, tokens, site: str, layer: int) -> torch.Tensor:
    if site not in ("attn_out", "mlp_out"):  # resid_* and z: the shared reference
        return ref.record(hf, tokens, site, layer)[1]
    seen = {}

    def hook(module, args, out):  # returns None: the output stays as it is
        seen["x"] = out[0] if isinstance(out, tuple) else out

    with ref.hooked([_module(hf, site, layer).register_forward_hook(hook)]):
        hf(tokens)
    return seen["x"]


@torch.no_grad()
def _patched(hf, tokens, site: str, layer: int, pos, value, head) -> torch.Tensor:
    if site not in ("attn_out", "mlp_out"):  # z: a pre-hook on attn.c_proj setting the head's d_head slice
        return ref.patched_logits(hf, tokens, site, layer, pos, value, head)
    rows = torch.arange(len(tokens))

    def hook(module, args, out):
        x = (out[0] if isinstance(out, tuple) else out).clone()
        x[rows, pos] = value
        return (x, *out[1:]) if isinstance(out, tuple) else x

    with ref.hooked([_module(hf, site, layer).register_forward_hook(hook)]):
        return hf(tokens).logits


def _interchanged(hf, batch, site, layer, position, head) -> torch.Tensor:
    """Answer logits of the clean prompt with (site, layer[, head]) at `position` set to its corrupt-prompt value."""
    rows, pos = torch.arange(len(batch)), batch.position(position)
    value = _record(hf, batch.corrupt, site, layer)[rows, pos]
    value = value if head is None else value[:, head]
    return _patched(hf, batch.clean, site, layer, pos, value, head)[rows, batch.answer_pos]


def _kl(teacher_logits, student_logits) -> torch.Tensor:
    """KL(p_T ‖ p_S) at temperature T, times T², per example: written out, not through the package."""
    p_t = torch.softmax(teacher_logits / T, -1)
    return (p_t * (torch.log(p_t) - torch.log_softmax(student_logits / T, -1))).sum(-1) * T * T


@pytest.mark.parametrize("site", ["z", "resid_mid", "attn_out", "mlp_out", "resid_post"])
def test_iit_term_equals_a_hand_written_hf_reference(setup, hf_copies, site):
    """Teacher targets and the term agree with plain HF forwards hooked by hand, at every checkpoint site; both
    checkpoints (two layers, two positions, and two heads at z) are batched into one student forward. The same
    float32 forwards, differing only in batch shape (checkpoints × batch rows, only the answer position unembedded):
    logits of magnitude ~10 move by ≤ ~1e-5 (relative ~1e-6, summation order), the term (~8 nats·T²) by ~1e-6."""
    s, (teacher_hf, student_hf) = setup, hf_copies
    pairings = _pairings(s, site)
    _, teacher_patched, parts = _iit_term(s, pairings)
    batch = s.train.batch(ROWS.tolist())
    teacher_ref = torch.stack([_interchanged(teacher_hf, batch, site, p.teacher_layer, p.position, p.teacher_head)
                               for p in pairings], 1)  # (batch, checkpoint, d_vocab)
    student_ref = torch.stack([_interchanged(student_hf, batch, site, p.student_layer, p.position, p.student_head)
                               for p in pairings], 1)
    torch.testing.assert_close(teacher_patched, teacher_ref, atol=5e-5, rtol=1e-5)
    term = _kl(teacher_ref, student_ref).mean()
    assert parts["term"] == pytest.approx(term.item(), abs=1e-5, rel=1e-5)
    clean = teacher_hf(batch.clean).logits[ROWS, batch.answer_pos]
    assert (teacher_ref - clean[:, None]).abs().max() > 1e-2  # the interchanges changed the teacher's answer


def test_gradient_reaches_lower_layers_through_the_corrupt_run(setup):
    """The student's interchanged value comes from its own corrupt run with gradients (as in IIT): detaching that
    run's activation changes the gradient on the layer below the patched one (student layer 1's head here)."""
    s = setup
    pairings = _pairings(s, "z")[:1]  # teacher 4.3 at end → student layer 1
    assert pairings[0].student_layer == 1
    name, n = namer(s.student).name(Site.Z, 1), len(ROWS)

    def layer0_grads(detach_corrupt: bool) -> list[torch.Tensor]:
        def detach(act, hook):  # the first forward runs clean + corrupt (2n rows); the patched one n rows
            return torch.cat([act[:n], act[n:].detach()]) if detach_corrupt and len(act) == 2 * n else act

        s.student.zero_grad(set_to_none=True)
        with s.student.hooks(fwd_hooks=[(name, detach)]):
            loss, _, _ = _iit_term(s, pairings)
        loss.backward()
        # the bridge trains GPT-2's fused c_attn through q/k/v views, so some aliases hold no gradient of their own
        return {k: p.grad.clone() for k, p in s.student.original_model.named_parameters()
                if ".h.0." in k and p.grad is not None}

    full, without = layer0_grads(False), layer0_grads(True)
    assert full.keys() == without.keys() and len(full) > 0
    assert all(torch.isfinite(g).all() for g in full.values())
    assert max((full[k] - without[k]).abs().max().item() for k in full) > 1e-3  # ~0.05 on this student


@pytest.mark.parametrize("site", ["z", "resid_post"])
def test_iit_term_is_zero_for_a_copy_of_the_teacher(setup, site):
    """Known answer: a copy of the teacher as the student, paired point for point, matches every interchange
    (float32 rounding between batch shapes: below 1e-6); paired with another head or layer it does not."""
    s = setup
    copy = load_model("world-gpt2")
    same = [Pairing(site, layer, layer, pos, head if site == "z" else None, head if site == "z" else None)
            for layer, pos, head in POINTS]
    _, _, parts = _iit_term(s, same, student=copy)
    assert parts["term"] == pytest.approx(0.0, abs=1e-6) and parts["kl"] == pytest.approx(0.0, abs=1e-6)
    other = [Pairing(site, 4, 4, "end", 3, 0) if site == "z" else Pairing(site, 4, 2, "end")]
    _, _, parts = _iit_term(s, other, student=copy)
    assert parts["term"] > 1e-3


def test_iit_needs_checkpoints(setup):
    with pytest.raises(InputError, match="iit matches the student at causal checkpoints and none were given"):
        Objective(Method.IIT, [], {}, lam=1.0, temperature=T)
    with pytest.raises(InputError, match="--refit-every refits W\\*, which iit does not use"):
        tiny_config(Method.IIT, refit_every=2)


def test_cli_distill_iit_at_head_checkpoints(cli, tmp_path):
    """`rcid-tl distill --method iit` with z checkpoints trains, logs the term, saves a student and metrics."""
    points = tmp_path / "checkpoints.json"
    points.write_text(json.dumps([{"layer": 4, "position": "end", "site": "z", "head": 3},
                                  {"layer": 2, "position": "s2", "site": "z", "head": 1}]))
    out = tmp_path / "iit"
    run = cli("distill", *SMALL, "--method", "iit", "--checkpoints", points, "--out", out)
    assert run.code == 0, run.stderr
    assert "iit seed 42: accuracy" in " ".join(run.stderr.split())
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "iit" and [c["head"] for c in metrics["checkpoints"]] == [3, 1]
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3] and all(r["term"] > 0 for r in log)
    assert AutoModelForCausalLM.from_pretrained(out / "student").config.n_layer == 2
