"""Build CausalQwen from any Qwen2 checkpoint: copy the transformer and the unembedding, initialise
the causal head as the seed says, so that compatible mode starts out as the very same language model."""

from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase, Qwen2ForCausalLM

from rcid_tl.artifacts import atomic_dir
from rcid_tl.causalqwen.config import CausalQwen2Config
from rcid_tl.causalqwen.modeling import CausalQwenForCausalLM
from rcid_tl.errors import InputError
from rcid_tl.portable import write_tokenizer

# Qwen2Config entries that describe the checkpoint file rather than the network
_NOT_ARCHITECTURE = ("model_type", "architectures", "transformers_version", "auto_map", "_name_or_path",
                     "tie_word_embeddings")


def causal_config_from_qwen2(qwen2_config, **causal_fields) -> CausalQwen2Config:
    """The Qwen2 architecture with CausalQwen's fields (defaults, or `causal_fields` such as gamma_init=5.0)."""
    fields = {k: v for k, v in qwen2_config.to_dict().items() if k not in _NOT_ARCHITECTURE}
    config = CausalQwen2Config(**{**fields, **causal_fields})
    config._attn_implementation = qwen2_config._attn_implementation
    return config


@torch.no_grad()
def causal_qwen_from_qwen2(qwen2: Qwen2ForCausalLM, **causal_fields) -> CausalQwenForCausalLM:
    """A CausalQwen whose transformer and action-network unembedding are copies of `qwen2`'s.

    Identity abduction makes loc_U the final hidden state, and the copied lm_head (bias 0) makes loc_S the
    original logits: compatible mode is Qwen2 at step 0, whatever b_noise is.
    """
    config = causal_config_from_qwen2(qwen2.config, **causal_fields)
    if config.causal_size != config.hidden_size:
        raise InputError(f"building from Qwen2 copies its lm_head into the action network, which needs "
                         f"causal_size == hidden_size ({config.hidden_size}), got {config.causal_size}")
    model = CausalQwenForCausalLM(config).to(dtype=qwen2.dtype, device=qwen2.device)
    model.model.load_state_dict(qwen2.model.state_dict())
    model.lm_head.weight.copy_(qwen2.lm_head.weight)
    model.lm_head.bias.zero_()
    model.generation_config = qwen2.generation_config
    return model.eval()


def save_causal_qwen(model: CausalQwenForCausalLM, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path) -> Path:
    """A directory `AutoModelForCausalLM.from_pretrained` and `rcid_tl.models.load_model` both open."""
    out = Path(out_dir)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp)
        write_tokenizer(tokenizer, tmp)
    return out
