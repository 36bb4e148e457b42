"""CausalQwen: a Qwen2 subclass with a Cauchy abduction/action head and a one-vs-rest classifier.

Importing this package registers `causal_qwen2` with `AutoConfig` and `AutoModelForCausalLM`.
"""

from transformers import AutoConfig, AutoModelForCausalLM

from rcid_tl.causalqwen.build import causal_config_from_qwen2, causal_qwen_from_qwen2, save_causal_qwen
from rcid_tl.causalqwen.cauchy import CauchyMath
from rcid_tl.causalqwen.config import AbductionInit, CausalQwen2Config, InferenceMode
from rcid_tl.causalqwen.heads import AbductionNetwork, ActionNetwork, OvRClassifier
from rcid_tl.causalqwen.loss import ovr_loss
from rcid_tl.causalqwen.modeling import CausalQwenForCausalLM, CausalQwenOutput

AutoConfig.register(CausalQwen2Config.model_type, CausalQwen2Config, exist_ok=True)
AutoModelForCausalLM.register(CausalQwen2Config, CausalQwenForCausalLM, exist_ok=True)

__all__ = [
    "AbductionInit", "AbductionNetwork", "ActionNetwork", "CauchyMath", "CausalQwen2Config", "CausalQwenForCausalLM",
    "CausalQwenOutput", "InferenceMode", "OvRClassifier", "causal_config_from_qwen2", "causal_qwen_from_qwen2",
    "ovr_loss", "save_causal_qwen",
]
