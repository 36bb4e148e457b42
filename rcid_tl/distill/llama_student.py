"""A Llama student for a Llama teacher (the TinyStories models): the default student shape (a third of the depth,
half the heads at the teacher's head dimension, half its key/value heads) in the teacher's own architecture, so
teacher and student share RMSNorm, rotary positions and the gated MLP."""

import torch
from transformer_lens.model_bridge import TransformerBridge
from transformers import LlamaConfig, LlamaForCausalLM

from rcid_tl.models.loading import wrap_hf_model
from rcid_tl.models.student import scaled_student_config


def build_llama_student_for(teacher: TransformerBridge, seed: int = 0, **overrides) -> TransformerBridge:
    """A randomly initialised (seeded) Llama student of `teacher`: `scaled_student_config`'s shape (fields
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
