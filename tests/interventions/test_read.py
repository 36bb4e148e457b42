"""Read: `cache_hooks` and `causal_imprint` against plain HF activations; `capture` keeps gradients where
`cache_hooks` detaches."""

import pytest
import torch

from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.interventions.read import cache_hooks, capture, causal_imprint
from rcid_tl.models import StudentConfig, build_student_for
from rcid_tl.tasks import IOIConfig, build_ioi
from tests import hf_reference as ref


@pytest.fixture(scope="module")
def ioi(gpt2_tokenizer):
    return build_ioi(IOIConfig(n=3, seed=2), gpt2_tokenizer)


@pytest.fixture(scope="module")
def student(stories):
    return build_student_for(stories, StudentConfig(n_layers=2, d_model=32, n_heads=4))


@pytest.mark.parametrize("site", ["resid_pre", "resid_post", "z"])
def test_cache_hooks_equals_hf_activations(tiny_gpt2, tiny_gpt2_hf, ioi, site):
    batch = ioi.batch()
    name = hook_name(site, 1)
    logits, cache = cache_hooks(tiny_gpt2, batch.clean, [name], batch.answer_pos)
    hf_logits, acts = ref.record(tiny_gpt2_hf, batch.clean, site, 1)
    assert list(cache) == [name]
    # the bridge splits GPT-2's fused qkv projection into three matmuls, so sums round differently: float32
    # rounding relative to activations of size ~10 with this wide initialisation
    torch.testing.assert_close(cache[name], acts, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(logits, hf_logits[torch.arange(len(batch)), batch.answer_pos], atol=1e-5, rtol=0)


def test_causal_imprint_is_clean_minus_corrupt_at_each_position(tiny_gpt2, tiny_gpt2_hf, ioi):
    batch, rows = ioi.batch(), torch.arange(len(ioi))
    d = causal_imprint(tiny_gpt2, batch, layer=0, position="end")
    _, clean = ref.record(tiny_gpt2_hf, batch.clean, "resid_post", 0)
    _, corrupt = ref.record(tiny_gpt2_hf, batch.corrupt, "resid_post", 0)
    end = batch.positions["end"]
    torch.testing.assert_close(d, clean[rows, end] - corrupt[rows, end], atol=1e-5, rtol=0)
    assert d.shape == (len(ioi), tiny_gpt2.cfg.d_model)
    assert causal_imprint(tiny_gpt2, batch, layer=1, position="io").abs().max() == 0  # io precedes the change


def test_capture_keeps_gradients_and_cache_hooks_detaches(student):
    tokens = torch.tensor([[1, 317, 269, 326, 263, 377, 267, 265]])
    names = [hook_name(Site.RESID_POST, 0), hook_name(Site.Z, 1)]
    student.zero_grad()
    with capture(student, names) as acts:
        student(tokens)
    assert set(acts) == set(names)
    loss = acts[names[0]].pow(2).mean() + acts[names[1]].pow(2).mean()
    loss.backward()
    embed = student.original_model.get_input_embeddings().weight
    assert embed.grad is not None and embed.grad.abs().sum() > 0  # the loss reached the parameters through hooks
    student.zero_grad()

    _, cache = cache_hooks(student, tokens, names, torch.tensor([tokens.shape[1] - 1]))
    assert all(not t.requires_grad and t.grad_fn is None for t in cache.values())
    torch.testing.assert_close(cache[names[0]], acts[names[0]].detach(), atol=0, rtol=0)


def test_capture_removes_its_hooks_when_the_body_raises(student):
    with pytest.raises(RuntimeError, match="boom"):
        with capture(student, [hook_name(Site.RESID_PRE, 0)]):
            assert student.hook_dict[hook_name(Site.RESID_PRE, 0)].fwd_hooks  # attached inside the block
            raise RuntimeError("boom")
    assert not any(hp.fwd_hooks for hp in student.hook_dict.values())
