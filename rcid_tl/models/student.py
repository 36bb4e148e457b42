"""Students built from a config with the
teacher's tokenizer and context, wrapped as hooked models like every other model."""

from dataclasses import dataclass
from typing import Literal

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import (GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase,
                          Qwen2Config, Qwen2ForCausalLM)

from rcid_tl.errors import InputError
from rcid_tl.models.loading import wrap_hf_model


@dataclass(frozen=True)
class StudentConfig:
    """Shape of a student. `None` fields are taken from the teacher (context) or derived (d_mlp = 4·d_model)."""

    architecture: Literal["gpt2", "qwen2"] = "gpt2"
    n_layers: int = 4
    d_model: int = 384
    n_heads: int = 6
    n_kv_heads: int | None = None  # qwen2 only; None means no grouping
    d_mlp: int | None = None
    n_ctx: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.architecture not in ("gpt2", "qwen2"):
            raise InputError(f"unknown student architecture {self.architecture!r}; allowed: gpt2, qwen2")
        for field in ("n_layers", "d_model", "n_heads"):
            if getattr(self, field) < 1:
                raise InputError(f"student {field} must be ≥ 1, got {getattr(self, field)}")
        if self.d_model % self.n_heads:
            raise InputError(f"student d_model {self.d_model} is not divisible by n_heads {self.n_heads}")
        if self.n_kv_heads is not None and self.n_heads % self.n_kv_heads:
            raise InputError(f"student n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")


def build_student(
    config: StudentConfig,
    tokenizer: PreTrainedTokenizerBase,
    *,
    vocab_size: int,
    n_ctx: int,
    device: str = "cpu",
) -> TransformerBridge:
    """A randomly initialised student (seeded) sharing the teacher's tokenizer, vocabulary size and context."""
    n_ctx = config.n_ctx or n_ctx
    d_mlp = config.d_mlp or 4 * config.d_model
    torch.manual_seed(config.seed)
    if config.architecture == "gpt2":
        hf_config = GPT2Config(
            vocab_size=vocab_size, n_positions=n_ctx, n_embd=config.d_model, n_layer=config.n_layers,
            n_head=config.n_heads, n_inner=d_mlp, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        hf_model = GPT2LMHeadModel(hf_config)
    else:
        hf_config = Qwen2Config(
            vocab_size=vocab_size, hidden_size=config.d_model, intermediate_size=d_mlp,
            num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
            num_key_value_heads=config.n_kv_heads or config.n_heads, max_position_embeddings=n_ctx,
            tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        )
        hf_model = Qwen2ForCausalLM(hf_config)
    hf_model.config._attn_implementation = "eager"
    label = f"student-{config.architecture}-{config.n_layers}L-{config.d_model}d"
    return wrap_hf_model(hf_model, tokenizer, label=label, device=device)


def student_config_for(teacher: TransformerBridge, **overrides) -> StudentConfig:
    """The seed's student shape for `teacher` (see `scaled_student_config`), fields overridable."""
    cfg = teacher.cfg
    architecture = "qwen2" if teacher.original_model.config.model_type == "qwen2" else "gpt2"
    n_kv_heads = getattr(cfg, "n_key_value_heads", None) if architecture == "qwen2" else None
    return scaled_student_config(architecture, cfg.n_layers, cfg.n_heads, cfg.d_head, n_kv_heads, **overrides)


def scaled_student_config(
    architecture: str, teacher_layers: int, teacher_heads: int, d_head: int, teacher_kv_heads: int | None = None,
    **overrides,
) -> StudentConfig:
    """A third of the teacher's depth, half its heads at the same head dimension (so half its width), half its
    key/value heads. GPT-2 small (12 layers, 12 heads of 64) gives the seed's default 4 × 384 with 6 heads."""
    half_heads = max(1, teacher_heads // 2)
    shape = dict(
        architecture=architecture, n_layers=max(1, round(teacher_layers / 3)), d_model=half_heads * d_head,
        n_heads=half_heads, n_kv_heads=max(1, teacher_kv_heads // 2) if teacher_kv_heads else None,
    )
    return StudentConfig(**(shape | overrides))


def build_student_for(teacher: TransformerBridge, config: StudentConfig | None = None) -> TransformerBridge:
    """A student for `teacher` (shape `student_config_for(teacher)` unless given): its tokenizer, vocabulary size and
    context length."""
    config = config or student_config_for(teacher)
    return build_student(
        config, teacher.tokenizer, vocab_size=teacher.cfg.d_vocab, n_ctx=teacher.cfg.n_ctx,
        device=str(teacher.cfg.device),
    )


def build_llama_student_for(teacher: TransformerBridge, seed: int = 0, **overrides) -> TransformerBridge:
    """A Llama student for a Llama teacher (the TinyStories models), so teacher and student share RMSNorm, rotary
    positions and the gated MLP. Randomly initialised (seeded): `scaled_student_config`'s shape (fields
    overridable), the MLP at the teacher's width ratio, tied embeddings, the teacher's vocabulary, context, norm
    epsilon and rotary base."""
    t = teacher.original_model.config
    shape = scaled_student_config("qwen2", t.num_hidden_layers, t.num_attention_heads, teacher.cfg.d_head,
                                  t.num_key_value_heads, seed=seed, **overrides)
    d_mlp = shape.d_mlp or round(t.intermediate_size * shape.d_model / t.hidden_size)
    config = LlamaConfig(
        vocab_size=t.vocab_size, hidden_size=shape.d_model, intermediate_size=d_mlp,
        num_hidden_layers=shape.n_layers, num_attention_heads=shape.n_heads,
        num_key_value_heads=shape.n_kv_heads or shape.n_heads, head_dim=teacher.cfg.d_head,
        max_position_embeddings=shape.n_ctx or t.max_position_embeddings, rms_norm_eps=t.rms_norm_eps,
        rope_parameters=dict(t.rope_parameters), tie_word_embeddings=True, bos_token_id=t.bos_token_id,
        eos_token_id=t.eos_token_id, attention_bias=False, mlp_bias=False,
    )
    torch.manual_seed(shape.seed)
    hf_model = LlamaForCausalLM(config)
    hf_model.config._attn_implementation = "eager"
    label = f"student-llama-{shape.n_layers}L-{shape.d_model}d"
    return wrap_hf_model(hf_model, teacher.tokenizer, label=label, device=str(teacher.cfg.device))
