"""What rcid_tl.models.architectures reads from each family's config: which layers slide and by how much, the mask a
resumed row gets, the final soft-cap, the sites a block lacks."""

import math

import torch

from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.models.architectures import absent_sites, answer_logits, resumed_attention_mask, sliding_window
from tests.architectures.conftest import WIDE_WINDOW, WINDOW

EXPECTED_WINDOWS = {"mistral": (WINDOW, WINDOW), "gemma2": (WINDOW, None), "qwen2-sliding": (None, WIDE_WINDOW)}


def test_windows_per_layer(model, arch):
    assert tuple(sliding_window(model, layer) for layer in (0, 1)) == EXPECTED_WINDOWS.get(arch.name, (None, None))
    assert absent_sites(model) == ({Site.RESID_MID} if arch.parallel else set())


def test_resumed_mask_is_causal_within_the_window(model, arch):
    """Queries at positions 5..7 over keys 0..7: key k is seen from query q iff q − W < k ≤ q."""
    for layer in (0, 1):
        mask = resumed_attention_mask(model, layer, 5, 8, device="cpu", dtype=torch.float32)
        window = sliding_window(model, layer)
        if window is None:
            assert mask is None  # the bridge's own offset causal mask is exact
            continue
        seen = [[k for k in range(8) if mask[0, 0, q - 5, k] == 0] for q in range(5, 8)]
        assert seen == [[k for k in range(8) if q - window < k <= q] for q in range(5, 8)]
        assert mask.shape == (1, 1, 3, 8) and set(mask.unique().tolist()) == {0.0, -math.inf}


def test_answer_logits_are_the_models(model, ioi):
    """Final norm, unembedding and (Gemma 2) the soft-cap of the last block's output give the model's own logits."""
    tokens, last = ioi.batch().clean, hook_name(Site.RESID_POST, 1)
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=[last])
        torch.testing.assert_close(answer_logits(model, cache[last]), model(tokens),
                                   atol=1e-5, rtol=0)  # fp32, logits O(1)–O(10): rounding only
