"""Layer maps: proportional depth, and the CKA map recovering a known correspondence; per-layer activations read
from a real hooked model line up with a direct cache read."""

import pytest
import torch

from rcid_tl.alignment.layers import cka_argmax_layer_map, layer_activations, proportional_layer_map
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site, hook_name
from rcid_tl.tasks.registry import TaskSpec, build_task


def test_proportional_map():
    assert proportional_layer_map(12, 4) == {l: l // 3 for l in range(12)}  # the seed's GPT-2 small → 4 layers
    assert proportional_layer_map(6, 2) == {0: 0, 1: 0, 2: 0, 3: 1, 4: 1, 5: 1}
    assert proportional_layer_map(5, 5) == {l: l for l in range(5)}
    for n_t, n_s in [(7, 3), (4, 1), (2, 4), (13, 5)]:
        mapping = proportional_layer_map(n_t, n_s)
        values = [mapping[l] for l in range(n_t)]
        assert values == sorted(values) and values[-1] == n_s - 1 and 0 <= values[0]
        if n_s <= n_t:
            assert set(values) == set(range(n_s))  # every student layer is used
    with pytest.raises(InputError, match="≥ 1"):
        proportional_layer_map(0, 2)


@pytest.mark.parametrize("debiased", [False, True])
def test_cka_map_recovers_rotated_copies(debiased):
    g = torch.Generator().manual_seed(0)
    teacher = [torch.randn(40, 8, generator=g) for _ in range(4)]
    rotations = [torch.linalg.qr(torch.randn(8, 8, generator=g))[0] for _ in range(3)]
    # student layer j is a rotated, noisy copy of teacher layer (2, 0, 3)[j]; teacher layer 1 has no copy
    student = [teacher[t] @ q + 0.1 * torch.randn(40, 8, generator=g) for t, q in zip((2, 0, 3), rotations)]
    mapping = cka_argmax_layer_map(teacher, student, debiased=debiased)
    assert {t: mapping[t] for t in (0, 2, 3)} == {0: 1, 2: 0, 3: 2}
    assert set(mapping) == {0, 1, 2, 3}


def test_layer_activations_rows(tiny_gpt2):
    dataset = build_task(TaskSpec("ioi", n=3), tiny_gpt2.tokenizer)
    acts = layer_activations(tiny_gpt2, dataset, positions=["s2", "end"], batch_size=2)
    assert len(acts) == 2 and acts[0].shape == (6, 64)
    batch = dataset.batch()
    _, cache = tiny_gpt2.run_with_cache(batch.clean, names_filter=[hook_name(Site.RESID_POST, 1)])
    direct = cache[hook_name(Site.RESID_POST, 1)]
    example, position = 2, "end"  # row e·P + p
    row = direct[example, batch.positions[position][example]]
    torch.testing.assert_close(acts[1][example * 2 + 1], row, atol=1e-5, rtol=0)  # padded vs unpadded batch
