"""Hooked models: loading (hub name, local directory, embedded), students from configs, saving back to HF."""

from rcid_tl.models.loading import load_model, model_label, namer, parse_dtype, wrap_hf_model
from rcid_tl.models.saving import hf_state_dict, save_hf_model
from rcid_tl.models.student import StudentConfig, build_student, build_student_for

__all__ = [
    "StudentConfig", "build_student", "build_student_for", "hf_state_dict", "load_model", "model_label", "namer",
    "parse_dtype", "save_hf_model", "wrap_hf_model",
]
