"""Attention recomputed from captured Q and K reproduces the models' own patterns (so hook_q/hook_k are pre-rotary
and the rotary helper matches HF's), and the structural KV loss against a direct computation."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.models import load_model
from rcid_tl.models.rope import rotary_base
from rcid_tl.multiteacher.loss import StructuralWeights, structural_kv_loss
from rcid_tl.multiteacher.objective import read_qkv
from rcid_tl.multiteacher.rope import attention


@pytest.mark.parametrize("name,base", [("world-qwen2", 10000.0), ("world-gpt2", None)])
def test_attention_from_hook_q_and_k_reproduces_hook_pattern(name, base):
    model = load_model(name)
    assert rotary_base(model) == base
    tokens = model.tokenizer(["Mary went to the store and John went to the park"], return_tensors="pt").input_ids
    patterns = {}
    hooks = [(f"blocks.{layer}.attn.hook_pattern", lambda x, hook, layer=layer: patterns.setdefault(layer, x))
             for layer in range(model.cfg.n_layers)]
    with torch.no_grad(), model.hooks(fwd_hooks=hooks):
        _, q, k, _ = read_qkv(model, tokens)
    ours = attention(q, k, torch.ones_like(tokens, dtype=torch.bool), base)
    theirs = torch.stack([patterns[layer] for layer in range(model.cfg.n_layers)], 1)
    assert torch.allclose(ours, theirs, atol=1e-5)  # float32 softmax of the same scores in another order


def direct_loss(s, t, valid, w):
    """Per (batch, layer, head, position) loops with torch's own KL: the reference."""
    (s_q, s_k, s_v), (t_q, t_k, t_v) = s, t
    cos = lambda a, b: torch.nn.functional.cosine_similarity(a, b, dim=-1)  # noqa: E731
    n = 0
    k_term = v_term = kl_term = 0.0
    rep = s_q.shape[2] // s_k.shape[2]
    for b in range(s_q.shape[0]):
        for layer in range(s_q.shape[1]):
            for h in range(s_q.shape[2]):
                kv = h // rep
                for i in range(s_q.shape[3]):
                    if not valid[b, i]:
                        continue
                    keys = [j for j in range(i + 1) if valid[b, j]] or [i]
                    def probs(q, k):
                        return torch.softmax(torch.stack([q[b, layer, h, i] @ k[b, layer, kv, j] for j in keys])
                                             / q.shape[-1] ** 0.5, 0)
                    p_t, p_s = probs(t_q, t_k), probs(s_q, s_k)
                    kl_term += float((p_t * (p_t.log() - p_s.log())).sum())
                    n += 1
            for i in range(s_q.shape[3]):
                if valid[b, i]:
                    for h in range(s_k.shape[2]):
                        k_term += float(1 - cos(s_k[b, layer, h, i], t_k[b, layer, h, i]))
                        v_term += float(1 - cos(s_v[b, layer, h, i], t_v[b, layer, h, i]))
    n_kv = int(valid.sum()) * s_k.shape[1] * s_k.shape[2]
    return w.k * k_term / n_kv + w.v * v_term / n_kv + w.attn * kl_term / n


def test_structural_loss_matches_a_direct_computation():
    torch.manual_seed(0)
    shape_q, shape_kv = (2, 2, 4, 5, 6), (2, 2, 2, 5, 6)  # GQA: 4 query heads, 2 K/V heads
    s = (torch.randn(shape_q), torch.randn(shape_kv), torch.randn(shape_kv))
    t = (torch.randn(shape_q), torch.randn(shape_kv), torch.randn(shape_kv))
    valid = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])  # right padding in the second row
    w = StructuralWeights(k=0.5, v=2.0, attn=1.5)
    total, parts = structural_kv_loss(s, t, valid, w)
    assert abs(float(total) - direct_loss(s, t, valid, w)) < 1e-4  # float32 vs float64 accumulation
    assert set(parts) == {"k_cos", "v_cos", "attn_kl"}


def test_loss_is_zero_on_identical_caches_and_ablates_cleanly():
    s = (torch.randn(1, 1, 2, 4, 8), torch.randn(1, 1, 2, 4, 8), torch.randn(1, 1, 2, 4, 8))
    valid = torch.ones(1, 4, dtype=torch.bool)
    total, _ = structural_kv_loss(s, s, valid, rotary_base=10000.0)
    assert abs(float(total)) < 1e-5  # cosine of a vector with itself and KL of a distribution with itself
    _, parts = structural_kv_loss(s, s, valid, StructuralWeights(k=1.0, v=0.0, attn=0.0))
    assert set(parts) == {"k_cos"}


def test_gradients_reach_both_student_and_projected_teacher():
    s = tuple(torch.randn(1, 1, 2, 4, 8, requires_grad=True) for _ in range(3))
    t = tuple(torch.randn(1, 1, 2, 4, 8, requires_grad=True) for _ in range(3))
    total, _ = structural_kv_loss(s, t, torch.ones(1, 4, dtype=torch.bool))
    total.backward()
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in s + t)


def test_bad_weights_are_one_line():
    with pytest.raises(InputError, match="alpha_k must be a finite number ≥ 0, got -1"):
        StructuralWeights(k=-1.0)
    with pytest.raises(InputError, match="all 0"):
        StructuralWeights(0.0, 0.0, 0.0)
