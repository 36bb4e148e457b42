"""Path patching against a hand-written three-pass reference (one sender, one example per run, plain hooks) on a
tiny GPT-2 and a tiny grouped-query Qwen2, and against the identity with plain activation patching.

Tolerance 1e-5 absolute on Δ (fp32, logit differences O(1)): both sides compute the same function, but ours runs many
(patch, example) rows of a padded batch per forward and the reference one example per forward, so they agree to
float32 rounding, not bitwise.
"""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, Qwen2Config, Qwen2ForCausalLM

from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Head, Site, hook_name
from rcid_tl.interventions.path_patching import PathPatch, Receiver, kv_head_of, path_patch
from rcid_tl.interventions.write import PatchSite, patch_sites
from rcid_tl.metrics import logit_diff
from rcid_tl.models.loading import wrap_hf_model
from rcid_tl.tasks import IOIConfig, build_ioi
from rcid_tl.tasks.ioi import Corruption

ATOL = 1e-5  # see module docstring
SMALL = dict(vocab_size=50257, initializer_range=0.2)


@pytest.fixture(scope="module", params=["gpt2", "qwen2-gqa"])
def model(request, gpt2_tokenizer):
    torch.manual_seed(0)
    if request.param == "gpt2":
        hf = GPT2LMHeadModel(GPT2Config(n_positions=64, n_layer=3, n_embd=64, n_head=4, **SMALL))
    else:  # 4 query heads over 2 key/value heads
        hf = Qwen2ForCausalLM(Qwen2Config(hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                                          num_attention_heads=4, num_key_value_heads=2,
                                          max_position_embeddings=64, **SMALL))
    return wrap_hf_model(hf.eval(), gpt2_tokenizer, label=f"tiny-{request.param}")


@pytest.fixture(scope="module")
def ioi(gpt2_tokenizer):
    return build_ioi(IOIConfig(n=2, seed=2, corruption=Corruption.ABC), gpt2_tokenizer)


def _reference(model, dataset, sender: Head, receiver: Receiver, example: int, receiver_pos: str | None,
               freeze_mlps: bool) -> float:
    """Wang et al.'s three passes for one sender and one example, written out with one hook per activation."""
    row = dataset.batch([example])
    n_layers = model.cfg.n_layers
    with torch.no_grad():
        clean_logits, clean = model.run_with_cache(row.clean)
        _, corrupt = model.run_with_cache(row.corrupt)

    def freeze_z(layer):
        def hook(z, hook):
            z = clean[hook_name(Site.Z, layer)].clone()
            if layer == sender.layer:
                z[:, :, sender.head] = corrupt[hook_name(Site.Z, layer)][:, :, sender.head]
            return z
        return hook

    hooks = [(hook_name(Site.Z, layer), freeze_z(layer)) for layer in range(n_layers)]
    if freeze_mlps:
        hooks += [(hook_name(Site.MLP_OUT, layer), lambda a, hook, layer=layer: clean[hook_name(Site.MLP_OUT, layer)])
                  for layer in range(n_layers)]
    seen = {}
    target = hook_name(receiver.site, receiver.layer)

    def keep(act, hook):
        seen["value"] = act.clone()
        return act

    with torch.no_grad(), model.hooks(fwd_hooks=hooks + [(target, keep)]):
        model(row.clean)
    pos = slice(None) if receiver_pos is None else int(row.positions[receiver_pos][0])

    def put(act, hook):
        act = act.clone()
        if receiver.head is None:
            act[:, pos] = seen["value"][:, pos]
        else:
            act[:, pos, receiver.head] = seen["value"][:, pos, receiver.head]
        return act

    with torch.no_grad(), model.hooks(fwd_hooks=[(target, put)]):
        logits = model(row.clean)
    answer = int(row.answer_pos[0])
    clean_ld = logit_diff(clean_logits[:, answer], row)[0]
    return float(clean_ld - logit_diff(logits[:, answer], row)[0])


RECEIVERS = [Receiver(Site.Q, 2, 1), Receiver(Site.K, 2, 1), Receiver(Site.V, 1, 0), Receiver(Site.RESID_PRE, 2),
             Receiver(Site.RESID_POST, 2)]


@pytest.mark.parametrize("freeze_mlps, receiver_pos", [(True, "end"), (False, None)])
def test_matches_three_pass_reference(model, ioi, freeze_mlps, receiver_pos):
    senders = [Head(0, 3), Head(1, 2)]
    patches = [PathPatch((s,), (r,)) for s in senders for r in RECEIVERS if r.reads_from(s)]
    positions = None if receiver_pos is None else (receiver_pos,)
    ours, _ = path_patch(model, ioi.batch(), patches, logit_diff, receiver_positions=positions,
                         freeze_mlps=freeze_mlps, rows_per_forward=5)  # rows split across forwards
    for p, patch in enumerate(patches):
        for e in range(len(ioi)):
            expected = _reference(model, ioi, patch.senders[0], patch.receivers[0], e, receiver_pos, freeze_mlps)
            assert ours[p, e].item() == pytest.approx(expected, abs=ATOL), (patch, e, receiver_pos)
    assert ours.abs().max() > 1e-3  # the paths carry something, so agreement is not 0 == 0


def test_whole_downstream_residual_equals_activation_patching(model, ioi):
    """With MLPs recomputed, the residual right after the sender's block is every path from the sender, so path
    patching through it equals activation patching of the sender's z (here at S2 only)."""
    heads = [Head(0, 1), Head(1, 3)]
    patches = [PathPatch((h,), (Receiver(Site.RESID_PRE, h.layer + 1),)) for h in heads]
    ours, _ = path_patch(model, ioi.batch(), patches, logit_diff, sender_positions=("s2",), freeze_mlps=False)
    plain, _ = patch_sites(model, ioi.batch(), [PatchSite(Site.Z, h.layer, "s2", h.head) for h in heads], logit_diff)
    torch.testing.assert_close(ours, plain, atol=ATOL, rtol=0)
    assert plain.abs().max() > 1e-3


def test_sender_sets_and_kv_groups(model, ioi):
    """Two senders together differ from either alone; a k receiver names a key/value head (a GQA group)."""
    both = PathPatch((Head(0, 0), Head(0, 2)), (Receiver(Site.RESID_POST, 2),))
    ours, _ = path_patch(model, ioi.batch(), [both, PathPatch((Head(0, 0),), both.receivers)], logit_diff)
    assert not torch.allclose(ours[0], ours[1])
    n_kv = getattr(model.cfg, "n_key_value_heads", None) or model.cfg.n_heads
    assert [kv_head_of(model, h) for h in range(4)] == ([0, 0, 1, 1] if n_kv == 2 else [0, 1, 2, 3])


@pytest.mark.parametrize("receiver, message", [
    (Receiver(Site.Q, 0, 1), r"cannot read sender 1.0"),
    (Receiver(Site.K, 2, 7), r"receiver head 7 of k is out of range"),
])
def test_bad_patches(model, ioi, receiver, message):
    with pytest.raises(InputError, match=message):
        path_patch(model, ioi.batch(), [PathPatch((Head(1, 0),), (receiver,))], logit_diff)


def test_receiver_sites_are_checked():
    with pytest.raises(InputError, match="cannot be a path-patching receiver"):
        Receiver(Site.Z, 1, 0)
    with pytest.raises(InputError, match="needs head index"):
        Receiver(Site.Q, 1)
