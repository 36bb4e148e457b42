"""Architectures of the embedded default teachers: a GPT-2 model and a smaller Qwen2 model (GQA, RoPE).

Sizes are picked to train to the task targets on two CPU cores within the time budget recorded in TRAINING.md.
"""

from dataclasses import dataclass
from enum import Enum

from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedModel, Qwen2Config, Qwen2ForCausalLM


class Arch(str, Enum):
    GPT2 = "gpt2"
    QWEN2 = "qwen2"


@dataclass(frozen=True)
class TeacherShape:
    """Width and depth of one teacher; `n_kv_head` < `n_head` gives grouped-query attention (Qwen2 only)."""

    arch: Arch
    n_layer: int
    d_model: int
    n_head: int
    n_kv_head: int
    d_mlp: int
    n_ctx: int = 256

    def __post_init__(self) -> None:
        if self.d_model % self.n_head or self.n_head % self.n_kv_head:
            raise ValueError(f"d_model must divide by n_head and n_head by n_kv_head: {self}")
        if self.arch is Arch.GPT2 and self.n_kv_head != self.n_head:
            raise ValueError("GPT-2 has no grouped-query attention: n_kv_head must equal n_head")


GPT2_TEACHER = TeacherShape(Arch.GPT2, n_layer=6, d_model=128, n_head=4, n_kv_head=4, d_mlp=512)
QWEN2_TEACHER = TeacherShape(Arch.QWEN2, n_layer=4, d_model=96, n_head=4, n_kv_head=2, d_mlp=256)
TINY_SHAPES: dict[Arch, TeacherShape] = {
    Arch.GPT2: TeacherShape(Arch.GPT2, n_layer=2, d_model=32, n_head=2, n_kv_head=2, d_mlp=64, n_ctx=64),
    Arch.QWEN2: TeacherShape(Arch.QWEN2, n_layer=2, d_model=32, n_head=4, n_kv_head=2, d_mlp=64, n_ctx=64),
}


def build_teacher(shape: TeacherShape, vocab_size: int, eos_id: int) -> PreTrainedModel:
    """A randomly initialised Hugging Face causal LM of `shape` (no dropout: the corpus is effectively infinite)."""
    if shape.arch is Arch.GPT2:
        config = GPT2Config(
            vocab_size=vocab_size, n_positions=shape.n_ctx, n_embd=shape.d_model, n_layer=shape.n_layer,
            n_head=shape.n_head, n_inner=shape.d_mlp, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
            bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
        )
        return GPT2LMHeadModel(config)
    config = Qwen2Config(
        vocab_size=vocab_size, hidden_size=shape.d_model, intermediate_size=shape.d_mlp,
        num_hidden_layers=shape.n_layer, num_attention_heads=shape.n_head, num_key_value_heads=shape.n_kv_head,
        max_position_embeddings=shape.n_ctx, tie_word_embeddings=True, attention_dropout=0.0,
        bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=eos_id,
    )
    return Qwen2ForCausalLM(config)
