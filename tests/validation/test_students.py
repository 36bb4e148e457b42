"""Known-answer students: exact edits leave the teacher's logits, the ground truth is what the weights show, graded
edits are graded, and the built students save, load and fine-tune as promised."""

import pytest
import torch
from transformers import AutoModelForCausalLM, GPTNeoXConfig

from rcid_tl.errors import InputError
from rcid_tl.models.embedded import embedded_path
from rcid_tl.models.loading import load_model, load_tokenizer
from rcid_tl.validation import (
    DEFAULT_MERGES, ablate_heads, ablation_finetuned, add_weight_noise, attn_shape, circuit_heads, head_weights,
    ioi_dataset, known_students, merge_heads, most_similar_heads, permutation_correspondence, permute_heads,
    random_head_permutation, random_weights, rescale_value_heads, rotate_value_heads, save_student, task_score,
)

ARCHS = ["world-gpt2", "world-qwen2"]
# Exact edits change only the order of float32 sums (heads in another order, W_V·R then Rᵀ·W_O), so logits of
# magnitude ~20 move by rounding alone: ~1e-5 measured; 1e-4 is a few float32 ulps at that scale, far below any
# real change (the smallest edit here, σ = 0.01 noise, moves them by ~0.5).
EXACT = dict(atol=1e-4, rtol=0)


@pytest.fixture(scope="module", params=ARCHS)
def teacher(request):
    return AutoModelForCausalLM.from_pretrained(embedded_path(request.param), attn_implementation="eager").eval()


@pytest.fixture(scope="module")
def tokens(teacher):
    return torch.randint(1, teacher.config.vocab_size, (3, 24), generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def logits(model, tokens):
    return model(input_ids=tokens).logits


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_permuted_heads_are_exact_and_the_ground_truth_is_in_the_weights(teacher, tokens):
    before = state(teacher)
    perms = random_head_permutation(teacher.config, seed=1)
    assert any(perm != sorted(perm) for perm in perms.values())
    student = permute_heads(teacher, perms)
    torch.testing.assert_close(logits(student, tokens), logits(teacher, tokens), **EXACT)
    assert not same_weights(student, teacher)
    assert all(torch.equal(v, teacher.state_dict()[k]) for k, v in before.items())  # the teacher is untouched
    group = attn_shape(teacher.config).group
    for (layer, t), ((_, s),) in permutation_correspondence(teacher.config, perms).items():
        for kind, (ts, ss) in {"q": (t, s), "o": (t, s), "k": (t // group, s // group)}.items():
            assert torch.equal(head_weights(student, layer, kind, ss)[0], head_weights(teacher, layer, kind, ts)[0])


def test_a_gqa_permutation_moves_whole_kv_groups():
    config = AutoModelForCausalLM.from_pretrained(embedded_path("world-qwen2")).config
    for seed in range(5):
        for perm in random_head_permutation(config, seed).values():
            assert {perm[0] // 2, perm[1] // 2} in ({0}, {1}) and perm[0] // 2 != perm[2] // 2
    teacher = AutoModelForCausalLM.from_pretrained(embedded_path("world-qwen2"))
    with pytest.raises(InputError, match="splits a key/value group"):
        permute_heads(teacher, {0: [0, 2, 1, 3]})
    with pytest.raises(InputError, match="not a permutation"):
        permute_heads(teacher, {0: [0, 0, 1, 2]})


@pytest.mark.parametrize("edit", [rotate_value_heads, rescale_value_heads])
def test_value_reparametrisations_are_exact(teacher, tokens, edit):
    student = edit(teacher, seed=0)
    torch.testing.assert_close(logits(student, tokens), logits(teacher, tokens), **EXACT)
    v_student, v_teacher = head_weights(student, 0, "v", 0)[0], head_weights(teacher, 0, "v", 0)[0]
    assert (v_student - v_teacher).abs().max() > 1e-2  # the values really moved
    ov = lambda m: head_weights(m, 0, "v", 0)[0] @ head_weights(m, 0, "o", 0)[0]  # noqa: E731
    torch.testing.assert_close(ov(student), ov(teacher), atol=1e-5, rtol=1e-4)  # the OV circuit did not


def test_weight_noise_is_graded_and_keeps_tied_embeddings(teacher, tokens):
    assert same_weights(add_weight_noise(teacher, 0.0, seed=0), teacher)
    moved = []
    for sigma in (0.01, 0.1, 0.5):
        student = add_weight_noise(teacher, sigma, seed=0)
        assert student.get_output_embeddings().weight is student.get_input_embeddings().weight
        moved.append((logits(student, tokens) - logits(teacher, tokens)).abs().mean().item())
    assert moved[0] < moved[1] < moved[2]
    spared = add_weight_noise(teacher, 0.1, seed=0, norms=False)
    norm = next(m for m in spared.modules() if "Norm" in type(m).__name__)
    original = next(m for m in teacher.modules() if "Norm" in type(m).__name__)
    assert torch.equal(norm.weight, original.weight)
    with pytest.raises(InputError, match="sigma"):
        add_weight_noise(teacher, -1.0, seed=0)


def test_random_weights_are_seeded_and_share_nothing(teacher):
    a, b = random_weights(teacher, seed=3), random_weights(teacher.config, seed=3)
    assert same_weights(a, b) and not same_weights(a, teacher)
    assert a.config.to_dict() == teacher.config.to_dict()


def test_merged_heads(teacher, tokens):
    pair = DEFAULT_MERGES[teacher.config.name_or_path.rstrip("/").split("/")[-1]]
    student = merge_heads(teacher, pair.layer, pair.keep, pair.drop)
    assert not head_weights(student, pair.layer, "o", pair.drop)[0].any()
    assert torch.equal(head_weights(student, pair.layer, "q", pair.keep)[0],
                       head_weights(teacher, pair.layer, "q", pair.keep)[0])  # keep's own pattern
    # Independent check of the rank-d_head fit: when `drop` already writes nothing, OV_keep + OV_drop is OV_keep,
    # which has rank d_head, so the merge must reproduce the (ablated) teacher exactly.
    ablated = ablate_heads(teacher, [(pair.layer, pair.drop)])
    remerged = merge_heads(ablated, pair.layer, pair.keep, pair.drop)
    torch.testing.assert_close(logits(remerged, tokens), logits(ablated, tokens), **EXACT)
    across = merge_heads(teacher, 0, 0, 2)  # on Qwen2 two KV groups: W_O refitted by least squares
    assert not head_weights(across, 0, "o", 2)[0].any()
    with pytest.raises(InputError, match="two different heads"):
        merge_heads(teacher, 0, 1, 1)


def test_the_default_merge_keeps_ioi_and_gpt2s_is_its_most_similar_pair():
    path = embedded_path("world-gpt2")
    teacher = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    tokenizer = load_tokenizer(path)
    pair = most_similar_heads(teacher, tokenizer)
    assert (pair.layer, pair.keep, pair.drop) == (0, 2, 0)
    assert pair.similarity == pytest.approx(DEFAULT_MERGES["world-gpt2"].similarity, abs=1e-3)
    held_out = ioi_dataset(teacher, tokenizer, n=64, seed=1)
    before, after = task_score(teacher, held_out), task_score(merge_heads(teacher, 0, 2, 0), held_out)
    assert after.accuracy == 1.0 and abs(after.logit_diff - before.logit_diff) < 0.5  # measured −0.09 on 256


def test_other_architectures_are_refused():
    config = GPTNeoXConfig(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                           vocab_size=32)
    with pytest.raises(InputError, match="support gpt2, qwen2, llama models, not 'gpt_neox'"):
        random_weights(config, seed=0)
    with pytest.raises(InputError, match="not 'gpt_neox'"):
        rotate_value_heads(AutoModelForCausalLM.from_config(config), seed=0)


def test_saved_students_boot_as_hooked_models_with_the_same_logits(teacher, tokens, tmp_path):
    name = teacher.config.name_or_path.rstrip("/").split("/")[-1]
    student = next(s for s in known_students(teacher, seed=0, merge=DEFAULT_MERGES[name]) if s.name == "permuted")
    out = save_student(student, load_tokenizer(embedded_path(name)), tmp_path / "permuted")
    hooked = load_model(str(out))
    with torch.no_grad():
        torch.testing.assert_close(hooked(tokens), logits(student.model, tokens), atol=1e-5, rtol=0)  # same forward


def test_known_students_carry_their_ground_truth(teacher):
    students = {s.name: s for s in known_students(teacher, seed=0, sigmas=(0.1,), merge=DEFAULT_MERGES["world-gpt2"])}
    assert list(students) == ["teacher", "permuted", "rotated", "rescaled", "noise-0.1", "random", "merged"]
    assert students["random"].correspondence is None
    assert students["merged"].correspondence[(0, 0)] == ((0, 2),)
    assert all(s.model is not teacher for s in students.values())


def test_ablation_finetune_keeps_the_heads_zero_and_lowers_the_loss():
    path = embedded_path("world-gpt2")
    heads = circuit_heads(path / "circuit.json")
    assert heads == [(0, 2), (0, 0), (2, 1), (1, 1), (3, 2), (1, 0)]
    result = ablation_finetuned(str(path), heads, steps=8, seed=0, n_train=64, n_eval=32, text_rows=2)
    model = result.student.model
    for layer, head in heads:
        assert not head_weights(model, layer, "o", head)[0].any()
    assert sum(result.losses[-3:]) / 3 < result.losses[0]
    assert result.student.correspondence == {head: () for head in heads}
    assert result.ablated.logit_diff < result.before.logit_diff
