"""`CausalQwenForCausalLM`: Qwen2's transformer with the causal head in place of the softmax head.

`forward` returns the Cauchy parameters of U and S, the OvR probabilities, and `logits` whose meaning follows the
inference mode (see `InferenceMode`), so `generate` with its KV cache decodes every mode.
"""

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from transformers import Qwen2ForCausalLM
from transformers.modeling_outputs import CausalLMOutputWithPast
from transformers.modeling_utils import slice_logits_to_keep
from transformers.utils.generic import can_return_tuple

from rcid_tl.causalqwen.config import CausalQwen2Config, InferenceMode, parse_inference_mode
from rcid_tl.causalqwen.heads import AbductionNetwork, ActionNetwork, OvRClassifier
from rcid_tl.causalqwen.loss import ovr_loss
from rcid_tl.errors import InputError


# transformers 5.24 renamed the KV cache's argument and output field from `past_key_values` to `cache`; we use
# whichever name the installed version declares, so the model works on both sides of the rename.
CACHE_FIELD = "cache" if "cache" in CausalLMOutputWithPast.__dataclass_fields__ else "past_key_values"


@dataclass
class CausalQwenOutput(CausalLMOutputWithPast):
    """The causal-LM output (loss, logits, the KV cache under the installed version's field name, hidden states,
    attentions) plus the causal head's. Shapes: U (batch, pos, causal_size); S, probabilities and logits
    (batch, pos, d_vocab)."""

    loc_U: Tensor | None = None
    scale_U: Tensor | None = None
    loc_S: Tensor | None = None
    scale_S: Tensor | None = None
    ovr_probs: Tensor | None = None


class CausalQwenForCausalLM(Qwen2ForCausalLM):
    config_class = CausalQwen2Config
    _tied_weights_keys = None  # the action network's W is its own copy, never the input embedding

    def __init__(self, config: CausalQwen2Config):
        super().__init__(config)
        # W, b of the action network (see ActionNetwork); the bias starts at zero, as in the CausalQwen repository
        self.lm_head = nn.Linear(config.causal_size, config.vocab_size, bias=True)
        self.abduction_network = AbductionNetwork(config)
        self.action_network = ActionNetwork(config)
        self.ovr_classifier = OvRClassifier(config)
        self.post_init()
        self._init_causal_head()

    @torch.no_grad()
    def _init_causal_head(self) -> None:
        # After post_init: its generic pass re-draws every Linear (the abduction nets included)
        # from N(0, initializer_range), which would undo the identity initialisation.
        for head in (self.abduction_network, self.action_network, self.ovr_classifier):
            head.reset_parameters()
        nn.init.zeros_(self.lm_head.bias)

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        past_key_values=None,
        inputs_embeds: Tensor | None = None,
        labels: torch.LongTensor | None = None,
        use_cache: bool | None = None,
        logits_to_keep: int | Tensor = 0,
        inference_mode: InferenceMode | str | None = None,
        cache=None,
        **kwargs,
    ) -> CausalQwenOutput:
        # `generate` passes the KV cache as `cache` (transformers ≥ 5.24) or `past_key_values` (older); accept both
        kv_cache = cache if cache is not None else past_key_values
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             inputs_embeds=inputs_embeds, use_cache=use_cache, **{CACHE_FIELD: kv_cache}, **kwargs)
        hidden = slice_logits_to_keep(outputs.last_hidden_state, logits_to_keep)
        loc_U, scale_U = self.abduction_network(hidden)
        loc_S, scale_S = self.action_network(loc_U, scale_U, self.lm_head)
        probs = self.ovr_classifier(loc_S, scale_S)
        mode = parse_inference_mode(inference_mode or self.config.inference_mode)
        if mode is InferenceMode.STANDARD:
            # log P_OvR: argmax is the OvR decision; P_OvR(k) is computed without cancellation, so its log is exact
            logits = probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
        elif mode is InferenceMode.CAUSAL:
            logits = self.action_network.sampled_decision(loc_U, scale_U, self.lm_head)
        else:
            logits = loc_S
        loss = None
        if labels is not None:
            loss = self.config.classification_loss_weight * ovr_loss(
                loc_S, scale_S, self.ovr_classifier.thresholds, labels)
        return CausalQwenOutput(
            loss=loss, logits=logits, loc_U=loc_U, scale_U=scale_U, loc_S=loc_S, scale_S=scale_S, ovr_probs=probs,
            hidden_states=outputs.hidden_states, attentions=outputs.attentions,
            **{CACHE_FIELD: getattr(outputs, CACHE_FIELD)})

    def generate(self, inputs: Tensor | None = None, *args, inference_mode: InferenceMode | str | None = None,
                 **kwargs):
        """`GenerationMixin.generate` in any inference mode, with the KV cache.

        Standard and causal modes decide by argmax (causal mode's randomness is the draw of U inside `forward`);
        compatible mode is a classic LM and takes `do_sample`, `temperature`, `top_k`, `top_p` as usual."""
        mode = parse_inference_mode(inference_mode or self.config.inference_mode)
        if mode is not InferenceMode.COMPATIBLE:
            if kwargs.get("do_sample"):
                raise InputError(f"{mode.value} mode decides by argmax; sample with inference_mode='compatible'")
            kwargs["do_sample"] = False
        return super().generate(inputs, *args, inference_mode=mode.value, **kwargs)

    @torch.no_grad()
    def generate_step_by_step(
        self,
        input_ids: torch.LongTensor,
        max_new_tokens: int,
        inference_mode: InferenceMode | str | None = None,
        eos_token_id: int | None = None,
        pad_token_id: int | None = None,
    ) -> torch.LongTensor:
        """The CausalQwen design's reference loop: a full forward per token, no cache, argmax of the mode's logits.
        Rows that produced `eos_token_id` continue with `pad_token_id`, as `generate` does."""
        mode = parse_inference_mode(inference_mode or self.config.inference_mode)
        pad = eos_token_id if pad_token_id is None else pad_token_id
        done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
        for _ in range(max_new_tokens):
            logits = self(input_ids, use_cache=False, inference_mode=mode, logits_to_keep=1).logits[:, -1]
            token = logits.argmax(-1)
            if eos_token_id is not None:
                token = torch.where(done, torch.full_like(token, pad), token)
                done |= token == eos_token_id
            input_ids = torch.cat([input_ids, token[:, None]], dim=-1)
            if eos_token_id is not None and bool(done.all()):
                break
        return input_ids
