"""Every head map recovers a planted relabelling of a real model's heads exactly: world-qwen2 (grouped-query
attention: KV groups move with their query heads) with its heads permuted inside every layer is the same function,
and each map must send every teacher head to the student head that now holds it."""

import pytest
from transformers import AutoModelForCausalLM

from rcid_tl.alignment.correspondence import causal_correspondence, fit_examples
from rcid_tl.alignment.heads import activation_head_map, attention_head_map
from rcid_tl.hooks.names import Site
from rcid_tl.interventions.write import PatchSite
from rcid_tl.models.embedded import embedded_path
from rcid_tl.models.loading import load_model, load_tokenizer, wrap_hf_model
from rcid_tl.tasks.registry import TaskSpec, build_task
from rcid_tl.validation.students import permutation_correspondence, permute_heads, random_head_permutation


@pytest.fixture(scope="module")
def relabelled():
    path = embedded_path("world-qwen2")
    hf = AutoModelForCausalLM.from_pretrained(path, attn_implementation="eager").eval()
    perms = random_head_permutation(hf.config, seed=3)
    student = wrap_hf_model(permute_heads(hf, perms), load_tokenizer(path), label="world-qwen2-permuted")
    truth = permutation_correspondence(hf.config, perms)
    assert any(truth[l, h] != ((l, h),) for l in range(4) for h in range(4))  # a real relabelling
    return load_model("world-qwen2"), student, truth


@pytest.mark.parametrize("head_map", [attention_head_map, activation_head_map])
def test_similarity_maps_recover_the_permutation(relabelled, head_map):
    teacher, student, truth = relabelled
    dataset = build_task(TaskSpec("ioi", n=24, seed=0), teacher.tokenizer, teacher.cfg.n_ctx)
    found = head_map(teacher, student, dataset, {layer: layer for layer in range(4)}, one_to_one=True)
    assert {k: ((k[0], v),) for k, v in found.items()} == truth


def test_the_causal_map_recovers_the_permutation(relabelled):
    teacher, student, truth = relabelled
    measured = build_task(TaskSpec("ioi", n=20, seed=0), teacher.tokenizer, teacher.cfg.n_ctx)
    fit = fit_examples(TaskSpec("ioi", n=20, seed=0), measured, 40, teacher.tokenizer, teacher.cfg.n_ctx)
    assert not {e.clean_ids for e in fit.examples} & {e.clean_ids for e in measured.examples}
    sites = [PatchSite(Site.Z, layer, "end", head) for layer in range(4) for head in range(4)]
    found = causal_correspondence(teacher, student, fit, sites)
    # every head, across layers too (the candidates are every student head), found with its own profile (r = 1)
    for t in sites:
        (s,) = found.sites[t]
        assert ((s.layer, s.head),) == truth[t.layer, t.head] and found.fit_r[t] > 0.99


def test_one_to_many_keeps_a_single_site_when_it_already_matches(relabelled):
    """On an exact relabelling one student head matches each teacher head perfectly: no second site can raise the
    fit r by 0.05, so every group stays a single site (and it is the planted one)."""
    teacher, student, truth = relabelled
    measured = build_task(TaskSpec("ioi", n=20, seed=0), teacher.tokenizer, teacher.cfg.n_ctx)
    fit = fit_examples(TaskSpec("ioi", n=20, seed=0), measured, 40, teacher.tokenizer, teacher.cfg.n_ctx)
    sites = [PatchSite(Site.Z, 3, "end", head) for head in range(4)]
    found = causal_correspondence(teacher, student, fit, sites, one_to_many=True)
    for t in sites:
        assert [(s.layer, s.head) for s in found.sites[t]] == list(truth[t.layer, t.head])
        assert found.fit_r[t] == pytest.approx(1.0, abs=1e-6)
