"""Every arm of the multi-teacher study (`study_arms`) changes the loss as its switch says, checked against independent
computations on the study's own teachers (digit-tokenizer GPT-2, word-tokenizer GQA Qwen2) and student shape:
α's keep only their terms, CE alone reads no teacher, fixed / similarity / learned routing, soft vs hard alignment,
flat vs structured × shared / per-head × uniform / random init, ratio vs CKA layer map, shallow vs full coverage,
and each teacher alone."""

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import rcid_tl.multiteacher.objective as objective_module
from rcid_tl.distill.config import OptimConfig
from rcid_tl.kv.objective import next_token_ce
from rcid_tl.kv.projection import KVDimensionProjector
from rcid_tl.models.loading import load_model
from rcid_tl.models.student import build_student_for, student_config_for
from rcid_tl.multiteacher.objective import MultiTeacherKV, TeacherView, read_qkv
from rcid_tl.multiteacher.projector import HeadwiseProjector, uniform_head_mixing
from rcid_tl.multiteacher.run import MultiTeacherRunConfig, layer_maps, make_views
from rcid_tl.world.cot import Segment
from rcid_tl.world.cot_streams import CoTStream, stream_examples

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))
import multiteacher_study  # noqa: E402

DIGITS, QWEN2 = "world-gpt2-cot-digits", "world-qwen2-cot"
ARMS, OVERRIDES = multiteacher_study.study_arms(DIGITS, QWEN2)
ARM = {a.name: a for a in ARMS}
KV_WEIGHT = 0.3  # not 1, so the weighting of the KV term is checked too


@pytest.fixture(scope="module")
def models():
    teachers = {name: load_model(name) for name in (DIGITS, QWEN2)}
    for teacher in teachers.values():
        for p in teacher.parameters():
            p.requires_grad_(False)
    parent = load_model("world-gpt2-cot")
    return teachers, build_student_for(parent, student_config_for(parent, seed=1))


@pytest.fixture(scope="module")
def examples():
    return stream_examples(CoTStream.STUDENT, 3)


def run_config(arm, **overrides) -> MultiTeacherRunConfig:
    settings = {"reasoning": "full", "kv_weight": KV_WEIGHT, "n_teacher": 4} | OVERRIDES.get(arm.name, {}) | overrides
    return MultiTeacherRunConfig(arm, OptimConfig(steps=1, lr=1e-3, warmup=1), **settings)


def build(models, arm, *, kv_weight=KV_WEIGHT, maps=None, seed=0) -> MultiTeacherKV:
    teachers, student = models
    torch.manual_seed(seed)  # the random projector inits
    return MultiTeacherKV({n: teachers[n] for n in arm.teachers}, student, arm, kv_weight, maps)


def evaluate(models, objective, examples, config, monkeypatch, views=None):
    """The objective's loss and parts, with what it passed to the structural loss (student and fused caches)."""
    teachers, student = models
    seen = {}

    def spy(student_qkv, fused, valid, weights, base=None):
        seen.update(student=student_qkv, fused=fused, valid=valid, weights=weights, base=base)
        return structural(student_qkv, fused, valid, weights, base)

    structural = objective_module.structural_kv_loss
    monkeypatch.setattr(objective_module, "structural_kv_loss", spy)
    batch, made = make_views({n: teachers[n] for n in objective.names}, student, examples, config)
    loss, parts = objective(teachers, student, batch, views or made)
    return loss, parts, seen, batch, made


def reference_ce(logits, batch) -> torch.Tensor:
    """Cross-entropy of each real reasoning/answer token given the previous ones, averaged over those tokens."""
    total, n = 0.0, 0
    for b in range(batch.tokens.shape[0]):
        for t in range(1, batch.tokens.shape[1]):
            if batch.real[b, t] and batch.segments[b, t] != Segment.PROMPT:
                total = total + F.cross_entropy(logits[b, t - 1].float(), batch.tokens[b, t])
                n += 1
    return total / n


def reference_cos(s, t, valid) -> torch.Tensor:
    """Mean of 1 − cos over layers, heads and the valid positions."""
    d = 1 - F.cosine_similarity(s, t, dim=-1)  # (B, L, H, T)
    return d[valid[:, None, None, :].expand_as(d)].mean()


def reference_attention_kl(s_q, s_k, t_q, t_k, valid) -> torch.Tensor:
    """KL(teacher ‖ student) of causal attention over valid keys, per valid query, averaged (no rotary: GPT-2)."""
    def log_attention(q, k):
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B, L, H, T, T)
        allowed = torch.ones(scores.shape[-1], scores.shape[-1]).tril().bool() & valid[:, None, None, None, :]
        return scores.masked_fill(~allowed, float("-inf")).log_softmax(-1)

    lt, ls = log_attention(t_q, t_k), log_attention(s_q, s_k)
    kl = (lt.exp() * (lt - ls)).nan_to_num().sum(-1)  # -inf − -inf at masked keys carries weight 0
    return kl[valid[:, None, None, :].expand_as(kl)].mean()


def test_every_study_arm_has_a_switch_test():
    tested = {"ce-only", "baseline", "single-digits", "single-qwen2", "routing-learned", "routing-similarity",
              "k-only", "v-only", "k+v", "hard-alignment", "flat", "layer-map-cka", "shallow-layers",
              "shared-random-init", "per-head-uniform-init", "per-head-random-init"}
    assert {a.name for a in ARMS} == tested  # a new arm needs its test here


@pytest.mark.parametrize("name,terms", [("baseline", {"k_cos", "v_cos", "attn_kl"}), ("k-only", {"k_cos"}),
                                        ("v-only", {"v_cos"}), ("k+v", {"k_cos", "v_cos"})])
def test_alphas_keep_only_their_terms(models, examples, monkeypatch, name, terms):
    arm = ARM[name]
    loss, parts, seen, batch, _ = evaluate(models, build(models, arm), examples, run_config(arm), monkeypatch)
    assert set(parts) - {"ce", "kv", *(f"w_{t}" for t in arm.teachers)} == terms
    (s_q, s_k, s_v), (t_q, t_k, t_v), valid = seen["student"], seen["fused"], seen["valid"]
    reference = {"k_cos": reference_cos(s_k, t_k, valid), "v_cos": reference_cos(s_v, t_v, valid),
                 "attn_kl": reference_attention_kl(s_q, s_k, t_q, t_k, valid)}
    logits = models[1](batch.tokens)
    want = reference_ce(logits, batch) + KV_WEIGHT * sum(reference[t] for t in terms)
    # float32 sums over a few thousand terms in another order
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5)
    for term in terms:
        assert parts[term] == pytest.approx(float(reference[term].detach()), rel=1e-5)


def test_ce_only_reads_no_teacher_and_trains_exactly_as_ce_plus_zero_kv(models, examples, monkeypatch):
    teachers, student = models
    arm = ARM["ce-only"]
    assert OVERRIDES["ce-only"] == {"kv_weight": 0.0}
    objective = build(models, arm, kv_weight=0.0)
    batch, _ = make_views({}, student, examples, run_config(arm))
    loss, parts = objective({}, student, batch, {})  # no teacher and no view: none is read
    assert set(parts) == {"ce"}
    assert float(loss.detach()) == pytest.approx(float(reference_ce(student(batch.tokens), batch).detach()), rel=1e-6)
    loss.backward()
    grads = [p.grad for p in student.parameters()]
    # the objective's own parameters get zero gradients (not none), so clipping sees the same tensors
    assert all(p.grad is not None and not p.grad.any() for p in objective.parameters())
    student.zero_grad(set_to_none=True)
    # the same step with the KV term computed against the teacher and multiplied by 0
    with torch.no_grad():
        _, _, seen, _, _ = evaluate(models, build(models, arm, kv_weight=1.0), examples,
                                    run_config(arm, kv_weight=1.0), monkeypatch)
    logits, s_q, s_k, s_v = read_qkv(student, batch.tokens)
    kv, _ = objective_module.structural_kv_loss((s_q, s_k, s_v), seen["fused"], seen["valid"], seen["weights"])
    (next_token_ce(logits, batch) + 0.0 * kv).backward()
    assert any(g is not None for g in grads)
    # bit for bit
    assert all(p.grad is g is None or torch.equal(p.grad, g) for p, g in zip(student.parameters(), grads))
    student.zero_grad(set_to_none=True)


def aligned(objective, models, views) -> list[tuple[torch.Tensor, ...]]:
    """Each teacher's caches through its own aligner (layer map, time alignment, projection), in teacher order."""
    teachers, _ = models
    out = []
    for i, name in enumerate(objective.names):
        with torch.no_grad():
            _, q, k, v = read_qkv(teachers[name], views[name].tokens)
        out.append(objective.aligners[str(i)](q, k, v, views[name].alignment))
    return out


def test_fixed_routing_fuses_the_aligned_teachers_with_equal_weights(models, examples, monkeypatch):
    objective = build(models, ARM["baseline"])
    _, parts, seen, _, views = evaluate(models, objective, examples, run_config(ARM["baseline"]), monkeypatch)
    assert parts[f"w_{DIGITS}"] == parts[f"w_{QWEN2}"] == 0.5
    digits, qwen2 = aligned(objective, models, views)
    for fused, a, b in zip(seen["fused"], digits, qwen2):
        assert torch.allclose(fused, (a + b) / 2, atol=1e-6)  # einsum vs plain mean: float32 rounding


def test_similarity_routing_weights_teachers_by_the_cosine_of_pooled_queries(models, examples, monkeypatch):
    arm = ARM["routing-similarity"]
    objective = build(models, arm)
    _, parts, seen, batch, views = evaluate(models, objective, examples, run_config(arm), monkeypatch)
    valid = batch.real

    def pooled(q):  # last layer, heads concatenated, mean over the valid positions
        last = q[:, -1].permute(0, 2, 1, 3).flatten(2)
        return torch.stack([last[b][valid[b]].mean(0) for b in range(len(last))])

    aligned_q = [a[0] for a in aligned(objective, models, views)]
    cos = torch.stack([F.cosine_similarity(pooled(seen["student"][0]), pooled(q), dim=-1) for q in aligned_q], 1)
    w = (cos / objective.temperature).softmax(-1)
    assert parts[f"w_{DIGITS}"] == pytest.approx(float(w[:, 0].mean().detach()), abs=1e-6)
    assert torch.allclose(seen["fused"][1], w[:, 0, None, None, None, None] * aligned(objective, models, views)[0][1]
                          + w[:, 1, None, None, None, None] * aligned(objective, models, views)[1][1], atol=1e-6)
    assert not torch.allclose(w, torch.full_like(w, 0.5))  # the two teachers' queries differ


def test_learned_routing_starts_equal_and_learns_from_the_loss(models, examples, monkeypatch):
    arm = ARM["routing-learned"]
    objective = build(models, arm)
    assert objective.router is not None and build(models, ARM["baseline"]).router is None
    loss, parts, _, _, _ = evaluate(models, objective, examples, run_config(arm), monkeypatch)
    assert parts[f"w_{DIGITS}"] == parts[f"w_{QWEN2}"] == 0.5  # zero output layer
    loss.backward()
    assert objective.router.net[-1].weight.grad.abs().sum() > 0
    models[1].zero_grad(set_to_none=True)


def test_hard_alignment_is_one_hot_at_the_soft_argmax_and_equal_where_tokenizers_agree(models, examples,
                                                                                        monkeypatch):
    soft_arm, hard_arm = ARM["baseline"], ARM["hard-alignment"]
    assert soft_arm.soft_alignment and not hard_arm.soft_alignment
    soft_loss, _, _, batch, soft = evaluate(models, build(models, soft_arm), examples, run_config(soft_arm),
                                            monkeypatch)
    hard_loss, _, _, _, hard = evaluate(models, build(models, hard_arm), examples, run_config(hard_arm), monkeypatch)
    s, h = soft[DIGITS].alignment, hard[DIGITS].alignment
    rows = batch.real  # student padding rows are zero in both
    assert ((s[rows] > 0).sum(-1) > 1).any()  # the digit teacher splits numbers: soft rows spread
    assert torch.equal(h[rows].sum(-1), torch.ones(int(rows.sum()))) and set(h.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(h[rows].argmax(-1), s[rows].argmax(-1))
    assert torch.equal(soft[QWEN2].alignment, hard[QWEN2].alignment)  # same tokenizer and reasoning: the identity
    assert float(soft_loss.detach()) != float(hard_loss.detach())


def test_projection_switches(models, examples, monkeypatch):
    teachers, student = models
    objectives = {name: build(models, ARM[name], seed=1) for name in
                  ("baseline", "flat", "shared-random-init", "per-head-uniform-init", "per-head-random-init")}
    for name, objective in objectives.items():
        arm = ARM[name]
        for i, teacher in enumerate(arm.teachers):
            for kind, projector in objective.aligners[str(i)].projectors.items():
                if name == "flat":
                    assert isinstance(projector, KVDimensionProjector)
                    continue
                assert isinstance(projector, HeadwiseProjector)
                assert projector.dim_proj.shape[0] == (1 if arm.share_dim else projector.shape_out[0])
                uniform = uniform_head_mixing(projector.shape_in[0], projector.shape_out[0])
                assert torch.equal(projector.head_mixing.data, uniform) == arm.init_uniform
    losses = {name: float(evaluate(models, objective, examples, run_config(ARM[name]), monkeypatch)[0].detach())
              for name, objective in objectives.items()}
    assert len(set(losses.values())) == len(losses)  # every switch changes the loss
    # per-head vs shared with the digit teacher alone (d_head 32 → 32: both start as the identity): the same loss at
    # the start, but each student head's projection gets its own gradient
    alone = {name: replace(ARM[name], teachers=(DIGITS,)) for name in ("baseline", "per-head-uniform-init")}
    pair = {name: build(models, arm) for name, arm in alone.items()}
    out = {name: evaluate(models, pair[name], examples, run_config(alone[name]), monkeypatch)[0] for name in pair}
    assert float(out["baseline"].detach()) == float(out["per-head-uniform-init"].detach())
    out["per-head-uniform-init"].backward()
    grad = pair["per-head-uniform-init"].aligners["0"].projectors["k"].dim_proj.grad
    assert not torch.allclose(grad[0], grad[1])
    student.zero_grad(set_to_none=True)


def test_shallow_coverage_never_reads_the_deep_teacher_layers(models, examples, monkeypatch, tmp_path):
    teachers, student = models

    def loss_with_deep_layers_changed(name, change):
        arm = ARM[name]
        maps = layer_maps(run_config(arm), teachers, student, examples, tmp_path)
        objective = build(models, arm, maps=maps)
        batch, views = make_views(teachers, student, examples, run_config(arm))
        for teacher, view in list(views.items()):
            with torch.no_grad():
                _, *qkv = read_qkv(teachers[teacher], view.tokens)
            half = -(-teachers[teacher].cfg.n_layers // 2)
            for x in qkv:
                x[:, half:] += change * torch.randn_like(x[:, half:])
            views[teacher] = TeacherView(view.tokens, view.alignment, tuple(qkv))
        torch.manual_seed(0)
        return float(objective(teachers, student, batch, views)[0].detach()), maps

    (shallow, maps), (shallow_changed, _) = (loss_with_deep_layers_changed("shallow-layers", c) for c in (0.0, 5.0))
    (full, _), (full_changed, _) = (loss_with_deep_layers_changed("baseline", c) for c in (0.0, 5.0))
    assert shallow == shallow_changed and full != full_changed
    for name, layer_map in maps.items():
        half = -(-teachers[name].cfg.n_layers // 2)
        assert all(w == 0 for row in layer_map.weights for w in row[half:])


def test_cka_layer_map_is_a_top_two_map_saved_for_the_run(models, examples, monkeypatch, tmp_path):
    teachers, student = models
    arm = ARM["layer-map-cka"]
    config = run_config(arm)
    assert config.layer_map == "cka"
    maps = layer_maps(config, teachers, student, examples, tmp_path)
    for i, layer_map in enumerate(maps.values()):
        assert (tmp_path / f"layer_map_{i}.json").is_file()  # a resumed run re-reads the same map
        for row in layer_map.weights:
            assert sum(w > 0 for w in row) == 2 and sum(row) == pytest.approx(1)
    ratio = layer_maps(run_config(ARM["baseline"]), teachers, student, examples, tmp_path / "ratio")
    assert maps != ratio
    cka_loss = evaluate(models, build(models, arm, maps=maps), examples, config, monkeypatch)[0]
    ratio_loss = evaluate(models, build(models, ARM["baseline"], maps=ratio), examples, config, monkeypatch)[0]
    assert float(cka_loss.detach()) != float(ratio_loss.detach())


@pytest.mark.parametrize("name,weights", [("single-digits", (1.0, 0.0)), ("single-qwen2", (0.0, 1.0))])
def test_one_teacher_alone_is_the_pair_with_all_weight_on_it(models, examples, monkeypatch, name, weights):
    arm = ARM[name]
    assert len(arm.teachers) == 1
    loss, parts, _, _, _ = evaluate(models, build(models, arm), examples, run_config(arm), monkeypatch)
    assert parts[f"w_{arm.teachers[0]}"] == 1.0
    pair = replace(ARM["baseline"], fixed_weights=weights)
    # the digit teacher's aligner draws no random numbers (32 → 32, uniform), so both objectives draw the same
    pair_loss, _, _, _, _ = evaluate(models, build(models, pair), examples, run_config(pair), monkeypatch)
    assert float(loss.detach()) == pytest.approx(float(pair_loss.detach()), rel=1e-6)  # einsum over a zero weight
