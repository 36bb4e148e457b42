"""The structured head-wise projector and the aligner keep the 5-D contract on MHA and GQA shapes."""

import pytest
import torch

from rcid_tl.errors import InputError
from rcid_tl.multiteacher.aligner import CacheShape, MapProjectionAligner, Projection
from rcid_tl.alignment.layers import ratio_layer_map
from rcid_tl.multiteacher.projector import HeadwiseProjector, expand_kv_heads, uniform_head_mixing

# The two embedded CoT teachers' geometries (GPT-2: MHA 6×4×32; Qwen2: GQA 4 query / 2 KV heads, d_head 24) and a
# small GQA student.
GPT2 = CacheShape(n_layers=6, n_heads=4, n_kv_heads=4, d_head=32)
QWEN2 = CacheShape(n_layers=4, n_heads=4, n_kv_heads=2, d_head=24)
STUDENT = CacheShape(n_layers=2, n_heads=2, n_kv_heads=1, d_head=16)


@pytest.mark.parametrize("share_dim", [True, False])
@pytest.mark.parametrize("init_uniform", [True, False])
@pytest.mark.parametrize("shape_in,shape_out", [((4, 32), (2, 16)), ((2, 24), (4, 16)), ((4, 24), (4, 24))])
def test_projector_keeps_five_dims(share_dim, init_uniform, shape_in, shape_out):
    proj = HeadwiseProjector(*shape_in, *shape_out, share_dim=share_dim, init_uniform=init_uniform)
    x = torch.randn(3, 5, shape_in[0], 7, shape_in[1], requires_grad=True)
    y = proj(x)
    assert y.shape == (3, 5, shape_out[0], 7, shape_out[1])
    y.square().sum().backward()
    assert proj.head_mixing.grad.abs().sum() > 0 and proj.dim_proj.grad.abs().sum() > 0
    assert proj.dim_proj.shape[0] == (1 if share_dim else shape_out[0])


def test_projector_matches_a_per_head_loop():
    proj = HeadwiseProjector(3, 5, 2, 4, share_dim=False, init_uniform=False)
    x = torch.randn(2, 2, 3, 6, 5)
    y = proj(x)
    for h in range(2):
        mixed = sum(proj.head_mixing[h, g] * x[:, :, g] for g in range(3))  # (B, L, T, D_t)
        assert torch.allclose(y[:, :, h], mixed @ proj.dim_proj[h], atol=1e-5)  # float32, other summation order


def test_uniform_init_aggregates_groups_and_expands_by_copy():
    assert uniform_head_mixing(4, 2).tolist() == [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]]
    assert uniform_head_mixing(2, 4).tolist() == [[1, 0], [1, 0], [0, 1], [0, 1]]
    same = HeadwiseProjector(4, 8, 4, 8)  # uniform init, same shape: a pass-through
    x = torch.randn(1, 2, 4, 3, 8)
    assert torch.equal(same(x), x)


def test_gqa_expansion_matches_query_head_grouping():
    k = torch.randn(1, 1, 2, 3, 4)
    full = expand_kv_heads(k, 4)
    for h in range(4):
        assert torch.equal(full[:, :, h], k[:, :, h // 2])
    with pytest.raises(InputError, match="cannot share 3 key/value heads"):
        expand_kv_heads(torch.randn(1, 1, 3, 2, 4), 4)


@pytest.mark.parametrize("teacher", [GPT2, QWEN2], ids=["gpt2-mha", "qwen2-gqa"])
@pytest.mark.parametrize("share_dim", [True, False])
def test_structured_aligner_gives_student_shapes_for_q_k_v(teacher, share_dim):
    aligner = MapProjectionAligner(teacher, STUDENT, ratio_layer_map(teacher.n_layers, STUDENT.n_layers),
                                   share_dim=share_dim)
    b, t_t, t_s = 2, 9, 6
    q = torch.randn(b, teacher.n_layers, teacher.n_heads, t_t, teacher.d_head)
    k = torch.randn(b, teacher.n_layers, teacher.n_kv_heads, t_t, teacher.d_head)
    alignment = torch.rand(b, t_s, t_t).softmax(-1)
    q_s, k_s, v_s = aligner(q, k, k.clone(), alignment)
    assert q_s.shape == (b, 2, STUDENT.n_heads, t_s, 16)
    assert k_s.shape == v_s.shape == (b, 2, STUDENT.n_kv_heads, t_s, 16)


def test_aligner_rejects_a_layer_map_of_another_depth():
    with pytest.raises(InputError, match="layer map for world-gpt2-cot is 2 student × 4 teacher layers"):
        MapProjectionAligner(GPT2, STUDENT, ratio_layer_map(4, 2), teacher_name="world-gpt2-cot")


@pytest.mark.parametrize("teacher", [GPT2, QWEN2], ids=["gpt2-mha", "qwen2-gqa"])
def test_flat_aligner_gives_the_same_shapes_through_the_kv_projector(teacher):
    aligner = MapProjectionAligner(teacher, STUDENT, ratio_layer_map(teacher.n_layers, STUDENT.n_layers),
                                   mode=Projection.FLAT)
    q = torch.randn(2, teacher.n_layers, teacher.n_heads, 5, teacher.d_head)
    k = torch.randn(2, teacher.n_layers, teacher.n_kv_heads, 5, teacher.d_head)
    q_s, k_s, v_s = aligner(q, k, k.clone(), torch.eye(5).expand(2, -1, -1))
    assert q_s.shape == (2, 2, STUDENT.n_heads, 5, 16)
    assert k_s.shape == v_s.shape == (2, 2, STUDENT.n_kv_heads, 5, 16)
