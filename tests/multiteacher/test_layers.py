"""Layer maps for KV caches: ratio, CKA top-2 (weights, JSON round trip), application, bad input."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.alignment.layers import LayerMap, apply_layer_map, ratio_layer_map, top_k_layer_map


def test_ratio_map_reads_the_last_teacher_layer_at_each_depth():
    assert [row.index(1.0) for row in ratio_layer_map(6, 2).weights] == [2, 5]
    assert [row.index(1.0) for row in ratio_layer_map(4, 4).weights] == [0, 1, 2, 3]
    assert [row.index(1.0) for row in ratio_layer_map(2, 4).weights] == [0, 0, 1, 1]


def test_top2_map_weights_by_similarity():
    cka = torch.tensor([[0.9, 0.3, 0.6], [0.1, 0.2, 0.8], [-0.1, -0.2, -0.3]])
    m = top_k_layer_map(cka, k=2)
    w = torch.tensor(m.weights, dtype=torch.float64)
    assert torch.allclose(w[0], torch.tensor([0.9, 0, 0.6], dtype=torch.float64) / 1.5)
    assert torch.allclose(w[1], torch.tensor([0, 0.2, 0.8], dtype=torch.float64))
    assert w[2].tolist() == [1, 0, 0]  # no positive similarity: the most similar layer alone
    assert m.kind == "cka-top2"


def test_layer_map_round_trips_through_json(tmp_path):
    m = top_k_layer_map(torch.rand(2, 6))
    assert LayerMap.load(m.save(tmp_path / "map.json")) == m


def test_apply_layer_map_is_the_weighted_sum():
    m = top_k_layer_map(torch.rand(2, 4))
    cache = torch.randn(3, 4, 2, 5, 6)
    out = apply_layer_map(cache, m)
    for s in range(2):
        expected = sum(m.weights[s][t] * cache[:, t] for t in range(4))
        assert torch.allclose(out[:, s], expected, atol=1e-5)  # float32 sums


@pytest.mark.parametrize("weights,match", [
    (((0.5, 0.6),), "rows summing to 1"),
    (((1.5, -0.5),), "non-negative"),
])
def test_bad_maps_are_input_errors(weights, match):
    with pytest.raises(InputError, match=match):
        LayerMap("file", weights)


def test_mismatched_and_unreadable_maps(tmp_path):
    with pytest.raises(InputError, match="2 student × 6 teacher layers; the models have 2 student and 4 teacher"):
        ratio_layer_map(6, 2).check(4, 2, "world-qwen2-cot")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="cannot be read"):
        LayerMap.load(tmp_path / "bad.json")


def test_cka_map_of_a_model_with_itself_reads_its_own_layers():
    """Independent check on a real model: each layer's representation is CKA-identical to itself (CKA 1), so the
    top-2 map of world-qwen2 against itself puts its largest weight on the same layer."""
    from rcid_tl.models import load_model
    from rcid_tl.multiteacher.layers import cka_layer_map

    model = load_model("world-qwen2")
    texts = ["Mary went to the store and John went to the park", "After Martha and Wanda left the farm, Wanda sent"]
    tokens = model.tokenizer(texts, return_tensors="pt", padding=True).input_ids
    mask = torch.ones_like(tokens, dtype=torch.bool)
    eye = torch.eye(tokens.shape[1]).expand(len(texts), -1, -1)
    m = cka_layer_map(model, model, tokens, tokens, eye, mask)
    w = torch.tensor(m.weights)
    assert w.argmax(1).tolist() == list(range(model.cfg.n_layers))
    assert (w.sum(1) - 1).abs().max() < 1e-6
