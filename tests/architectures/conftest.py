"""The architecture matrix's models: for each family TransformerLens 4.3 bridges, a seeded random 2-layer model built
from its transformers config class (no download), with the world tokenizer (a few hundred tokens, so the embedding is
small), wrapped as every model is (`wrap_hf_model`); plus an identical plain HF copy for independent references.

Shapes are tiny (d_model 32, 4 heads, d_mlp 64) but keep what distinguishes each family: grouped-query attention
(Llama, Qwen2, Mistral, Gemma 2: 4 query heads on 2 KV heads), partial rotary (GPT-NeoX a quarter of each head, Phi
half), parallel attention and MLP (GPT-NeoX, Phi), a sliding window of 4 positions, shorter than every prompt (~20
tokens), on every Mistral layer, on Gemma 2's first (local) layer and on Qwen2's layers from `max_window_layers` on
(a Qwen2 config option), and Gemma 2's attention (cap 2) and final logit
(cap 3) soft-capping, set low so they bend the scores the random weights give. A wider initialisation than HF's 0.02
makes logit differences O(1), so absolute tolerances on Δ are meaningful.
"""

from dataclasses import dataclass

import pytest
import torch
import transformers as hf

from rcid_tl.models.loading import wrap_hf_model
from rcid_tl.tasks import build_task
from rcid_tl.world.tokenizer import load_tokenizer, save_tokenizer

WINDOW = 4  # sliding window (positions a query sees, itself included); prompts are 15-25 tokens
# Qwen2's (on its second layer): wider than the 9 tokens rcid_tl.interventions.direct checks itself against the bridge
# on, still shorter than the prompts
WIDE_WINDOW = 10
SHAPE = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
             max_position_embeddings=128, initializer_range=0.2)
GQA = dict(SHAPE, num_key_value_heads=2)


@dataclass(frozen=True)
class Arch:
    """One row of the matrix: the HF config and model classes and the config fields that make the family."""

    name: str
    config: type
    model: type
    fields: dict
    parallel: bool = False  # attention and MLP read the same residual: no resid_mid
    sliding: bool = False  # some layer attends within a window shorter than the prompts
    softcap: bool = False  # final logits soft-capped


ARCHS = {
    a.name: a for a in (
        Arch("gpt2", hf.GPT2Config, hf.GPT2LMHeadModel,
             dict(n_positions=128, n_layer=2, n_embd=32, n_head=4, n_inner=64, initializer_range=0.2)),
        Arch("gpt-neox", hf.GPTNeoXConfig, hf.GPTNeoXForCausalLM, dict(SHAPE, rotary_pct=0.25), parallel=True),
        Arch("llama", hf.LlamaConfig, hf.LlamaForCausalLM, GQA),
        Arch("qwen2", hf.Qwen2Config, hf.Qwen2ForCausalLM, GQA),
        Arch("qwen2-sliding", hf.Qwen2Config, hf.Qwen2ForCausalLM,
             dict(GQA, use_sliding_window=True, sliding_window=WIDE_WINDOW, max_window_layers=1), sliding=True),
        Arch("mistral", hf.MistralConfig, hf.MistralForCausalLM, dict(GQA, sliding_window=WINDOW), sliding=True),
        Arch("gemma2", hf.Gemma2Config, hf.Gemma2ForCausalLM,
             dict(GQA, head_dim=8, query_pre_attn_scalar=8, sliding_window=WINDOW, attn_logit_softcapping=2.0,
                  final_logit_softcapping=3.0), sliding=True, softcap=True),
        Arch("phi", hf.PhiConfig, hf.PhiForCausalLM, dict(SHAPE, partial_rotary_factor=0.5), parallel=True),
    )
}


@pytest.fixture(scope="session")
def world_tokenizer(tmp_path_factory):
    return load_tokenizer(save_tokenizer(tmp_path_factory.mktemp("world-tokenizer")))


def build_hf(arch: Arch, tokenizer, seed: int = 0):
    """A seeded random HF model of `arch` (eager attention, eval mode); the same seed gives the same weights."""
    eos = tokenizer.eos_token_id
    # no pad_token_id: HF gives the embedding padding_idx = pad, whose row then gets no gradient through the lookup,
    # and the world tokenizer's pad is its BOS, the first token of every prompt (a tied LM head would get a wrong
    # gradient for that row: measured on Gemma 2)
    config = arch.config(vocab_size=len(tokenizer), bos_token_id=eos, eos_token_id=eos, pad_token_id=None,
                         **arch.fields)
    config._attn_implementation = "eager"
    torch.manual_seed(seed)
    return arch.model(config).eval()


def build_bridge(arch: Arch, tokenizer, seed: int = 0):
    return wrap_hf_model(build_hf(arch, tokenizer, seed), tokenizer, label=f"tiny-{arch.name}")


@pytest.fixture(scope="module", params=list(ARCHS))
def arch(request) -> Arch:
    return ARCHS[request.param]


@pytest.fixture(scope="module")
def model(arch, world_tokenizer):
    return build_bridge(arch, world_tokenizer)


@pytest.fixture(scope="module")
def hf_copy(arch, world_tokenizer):
    """The same weights as plain `transformers`, never wrapped (the bridge edits the model it wraps in place)."""
    return build_hf(arch, world_tokenizer)


@pytest.fixture(scope="module")
def ioi(model):
    """Three IOI prompts of different lengths (a right-padded batch), ABC corruption: io, s1 and s2 all change, so
    every named position carries an effect."""
    dataset = build_task(model, "ioi", n=3, seed=1, corruption="abc")
    assert len({len(e.clean_ids) for e in dataset.examples}) > 1
    assert min(len(e.clean_ids) for e in dataset.examples) > WINDOW + 8  # the window cuts off most of each prompt
    return dataset
