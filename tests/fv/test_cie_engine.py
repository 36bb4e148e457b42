"""The CIE sweep on resumed rows (each row from its head's layer, the last position only, earlier keys/values read
from the unpatched corrupted run) against whole forwards from token ids (`Engine.FULL`, itself checked against plain
HF in test_against_hf.py): two heads per layer, prompts of different lengths, MHA (world GPT-2) and GQA
(stories260K, Llama).

Tolerance 1e-5 absolute (fp32, log-probs O(1–10)): the same function computed on fewer positions and rows per
matmul, so the engines agree to float32 rounding, not bitwise."""

import pytest
import torch

from rcid_tl.fv.cie import relation_cie
from rcid_tl.fv.relations import load_relations, world_relation_set
from rcid_tl.fv.trials import PromptFormat, SamplingConfig, sample_trials
from rcid_tl.hooks.names import Head
from rcid_tl.interventions.write import Engine
from tests.conftest import require
from tests.fv.test_relations import TODD

ATOL = 1e-5  # see module docstring


@pytest.fixture(scope="module", params=["world", "stories"])
def case(request):
    model = request.getfixturevalue(request.param)
    if request.param == "world":
        rel, fmt = world_relation_set().select(["antonym"]), PromptFormat.COLON
    else:
        rel, fmt = load_relations(require(TODD), qids=["antonym"]), PromptFormat.QA
    # trials with 2 and with 3 demonstrations, so the corrupted prompts differ in length (padded rows)
    trials = [t for demos in (2, 3)
              for t in sample_trials(rel, model.tokenizer, SamplingConfig(3, demos, 7, fmt), "m", 512).of("antonym")]
    return model, trials


def test_resumed_cie_equals_whole_forwards(case):
    model, trials = case
    assert len({len(t.corrupted_ids) for t in trials}) > 1  # padded rows of different lengths
    heads = [Head(layer, h) for layer in range(model.cfg.n_layers) for h in (0, model.cfg.n_heads - 1)]
    full = relation_cie(model, trials, heads, rows_per_forward=8, engine=Engine.FULL)
    fast = relation_cie(model, trials, heads, rows_per_forward=8)
    for name in ("delta_logprob", "delta_p"):
        torch.testing.assert_close(getattr(fast, name), getattr(full, name), atol=ATOL, rtol=0)
    torch.testing.assert_close(fast.corrupted.logprob, full.corrupted.logprob, atol=ATOL, rtol=0)
    assert torch.equal(fast.corrupted.top1, full.corrupted.top1)
    assert full.delta_logprob.abs().max() > 1e-2  # real effects, not an agreement of zeros
