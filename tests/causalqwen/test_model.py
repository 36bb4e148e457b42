"""CausalQwenForCausalLM: initial equivalence with its source Qwen2, exact save/load, Auto classes, the OvR loss
against a direct computation, and gradients reaching every part."""

import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from rcid_tl.causalqwen import CausalQwenForCausalLM, CausalQwenOutput, causal_qwen_from_qwen2
from rcid_tl.errors import InputError


@pytest.mark.parametrize("b_noise", [0.0, 0.1])
def test_compatible_mode_starts_as_the_source_qwen2(qwen2, token_ids, b_noise):
    causal = causal_qwen_from_qwen2(qwen2, b_noise_init=b_noise, inference_mode="compatible")
    with torch.no_grad():
        expected = qwen2(token_ids).logits.log_softmax(-1)
        got = causal(token_ids).logits.log_softmax(-1)
    # identity abduction (h @ Iᵀ is exact) and the copied unembedding with a zero bias: only the matmul kernel
    # (addmm with bias vs mm) may differ, a few float32 ulps of O(10) log-probabilities
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_initialisation_follows_the_seed(causal, qwen2):
    abduction = causal.abduction_network
    assert torch.equal(abduction.loc_net.weight, torch.eye(32)) and not abduction.loc_net.bias.any()
    assert not abduction.scale_net.weight.any()
    torch.testing.assert_close(torch.nn.functional.softplus(abduction.scale_net.bias), torch.full((32,), 10.0))
    assert torch.equal(causal.lm_head.weight, qwen2.lm_head.weight) and not causal.lm_head.bias.any()
    assert torch.equal(causal.action_network.b_noise, torch.full((32,), 0.1))
    assert not causal.ovr_classifier.thresholds.any()


def test_output_fields_and_shapes(causal, token_ids):
    out = causal(token_ids, labels=token_ids, use_cache=True, output_hidden_states=True, output_attentions=True)
    assert isinstance(out, CausalQwenOutput)
    b, t = token_ids.shape
    assert out.loc_U.shape == out.scale_U.shape == (b, t, 32)
    assert out.loc_S.shape == out.scale_S.shape == out.ovr_probs.shape == out.logits.shape == (b, t, 932)
    assert out.loss.ndim == 0 and out.past_key_values is not None
    assert len(out.hidden_states) == 3 and len(out.attentions) == 2
    assert (out.scale_U > 0).all() and (out.scale_S > 0).all()
    # standard mode: logits are log P_OvR
    torch.testing.assert_close(out.logits.exp(), out.ovr_probs)


def test_save_and_load_round_trip_exactly(causal, tmp_path):
    with torch.no_grad():  # make every head parameter non-default so the check means something
        for p in causal.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    causal.save_pretrained(tmp_path)
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager")
    assert type(loaded) is CausalQwenForCausalLM
    expected, got = causal.state_dict(), loaded.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_building_needs_matching_causal_size(qwen2):
    with pytest.raises(InputError, match="causal_size == hidden_size"):
        causal_qwen_from_qwen2(qwen2, causal_size=16)


def test_a_smaller_causal_size_builds_from_config(qwen2):
    from rcid_tl.causalqwen import causal_config_from_qwen2

    model = CausalQwenForCausalLM(causal_config_from_qwen2(qwen2.config, causal_size=8))
    out = model(torch.tensor([[3, 4, 5]]))
    assert out.loc_U.shape == (1, 3, 8) and out.loc_S.shape == (1, 3, 932)


def _direct_ovr_loss(out, labels, thresholds) -> torch.Tensor:
    """The OvR loss written out in float64, per (position, token), with the shift and the ignore index."""
    total, count = 0.0, 0
    for b in range(labels.shape[0]):
        for t in range(labels.shape[1] - 1):
            target = int(labels[b, t + 1])
            if target == -100:
                continue
            z = (out.loc_S[b, t].double() - thresholds.detach().double()) / out.scale_S[b, t].double()
            p = 0.5 + torch.atan(z) / math.pi
            y = torch.zeros_like(p)
            y[target] = 1.0
            total += float(-(y * p.log() + (1 - y) * (1 - p).log()).sum())
            count += p.numel()
    return torch.tensor(total / count, dtype=torch.float64)


def test_loss_matches_a_direct_computation(causal, token_ids):
    labels = token_ids.clone()
    labels[1, 6:] = -100  # the padded tail of the second sentence
    with torch.no_grad():
        causal.ovr_classifier.thresholds.normal_(0, 0.3)
        causal.abduction_network.scale_net.bias.fill_(-1.0)  # sharper distributions: probabilities far from ½
        out = causal(token_ids, labels=labels)
    expected = _direct_ovr_loss(out, labels, causal.ovr_classifier.thresholds)
    torch.testing.assert_close(out.loss.double(), expected, rtol=1e-5, atol=0)  # float32 vs float64 BCE
    causal.config.classification_loss_weight = 2.5
    with torch.no_grad():
        assert float(causal(token_ids, labels=labels).loss) == pytest.approx(2.5 * float(out.loss), rel=1e-6)


def test_loss_is_finite_for_confident_wrong_answers(causal, token_ids):
    with torch.no_grad():
        causal.ovr_classifier.thresholds.fill_(-1e4)  # every token confidently "on": log(1 − P) is tiny
        out = causal(token_ids, labels=token_ids)
    assert torch.isfinite(out.loss) and out.loss > 5


def test_gradients_reach_backbone_and_every_head(causal, token_ids):
    causal.train()
    causal(token_ids, labels=token_ids).loss.backward()
    missing = [n for n, p in causal.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    # the only legitimately untouched rows: embeddings of tokens absent from the batch
    assert missing == [] or missing == ["model.embed_tokens.weight"]
    assert causal.model.embed_tokens.weight.grad[token_ids.unique()].abs().sum() > 0
