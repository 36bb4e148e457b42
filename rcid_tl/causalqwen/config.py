"""`CausalQwen2Config`: Qwen2's configuration plus the causal head's fields."""

from enum import Enum

from huggingface_hub.dataclasses import strict
from transformers import Qwen2Config

from rcid_tl.errors import InputError, parse_choice


class InferenceMode(str, Enum):
    """What the model's `logits` mean, and so what `generate` decodes."""

    STANDARD = "standard"  # deterministic: logits = log P_OvR(y_k), decoded greedily (argmax of OvR probabilities)
    CAUSAL = "causal"  # sample the individual U, then the deterministic action: logits = W·u + b, decoded greedily
    COMPATIBLE = "compatible"  # classic LM: logits = loc_S, softmax with temperature / top-k / top-p


class AbductionInit(str, Enum):
    IDENTITY = "identity"  # loc_net = I (rectangular when causal_size ≠ hidden_size), scale_net weight 0
    XAVIER = "xavier"


def parse_inference_mode(value: "InferenceMode | str") -> InferenceMode:
    return parse_choice(InferenceMode, value, "inference mode")


@strict
class CausalQwen2Config(Qwen2Config):
    """Defaults follow the 1587causalai/CausalQwen repository: causal_size = hidden_size, identity abduction,
    gamma_init 10 (wide initial individual scale), b_noise_init 0.1, OvR thresholds 0, standard inference.

    The action network has its own copy of the unembedding, never tied to the input embedding.
    """

    model_type = "causal_qwen2"

    causal_size: int | None = None
    abduction_init_strategy: str = AbductionInit.IDENTITY.value
    b_noise_init: float = 0.1
    ovr_threshold_init: float = 0.0
    gamma_init: float = 10.0
    inference_mode: str = InferenceMode.STANDARD.value
    classification_loss_weight: float = 1.0

    def __post_init__(self, **kwargs):
        kwargs["tie_word_embeddings"] = False
        super().__post_init__(**kwargs)
        self.tie_word_embeddings = False
        if self.causal_size is None:
            self.causal_size = self.hidden_size
        if self.causal_size <= 0:
            raise InputError(f"causal_size must be a positive integer, got {self.causal_size}")
        self.inference_mode = parse_inference_mode(self.inference_mode).value
        self.abduction_init_strategy = parse_choice(
            AbductionInit, self.abduction_init_strategy, "abduction_init_strategy").value
        if self.gamma_init <= 0:
            raise InputError(f"gamma_init must be > 0 (the initial scale of U), got {self.gamma_init}")
        if self.classification_loss_weight < 0:
            raise InputError(f"classification_loss_weight must be ≥ 0, got {self.classification_loss_weight}")
