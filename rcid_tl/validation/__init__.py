"""Known-answer students: models whose relation to a teacher is known by construction, to validate comparison
instruments against (relabelled heads, exact reparametrisations, graded noise, random weights, merged heads, a
circuit knocked out and fine-tuned around), and the suite that checks each consistency instrument against them
(`run_validation`, `rcid-tl validate`)."""

from rcid_tl.validation.finetune import AblationFinetune, ablate_heads, ablation_finetuned, circuit_heads
from rcid_tl.validation.known import (
    DEFAULT_MERGES, NOISE_SIGMAS, known_students, merged_student, noisy_student, permuted_student, random_student,
    rescaled_student, rotated_student,
)
from rcid_tl.validation.measure import HeadPair, TaskScore, ioi_dataset, most_similar_heads, task_score
from rcid_tl.validation.suite import INSTRUMENTS, Instrument, ValidateConfig, Validation, run_validation
from rcid_tl.validation.students import (
    Correspondence, Head, KnownStudent, add_weight_noise, attn_shape, editable_copy, head_weights,
    identity_correspondence, merge_correspondence, merge_heads, out_projection, permutation_correspondence,
    permute_heads, random_head_permutation, random_weights, rescale_value_heads, rotate_value_heads, save_student,
)

__all__ = [
    "INSTRUMENTS", "Instrument", "ValidateConfig", "Validation", "run_validation",
    "AblationFinetune", "Correspondence", "DEFAULT_MERGES", "Head", "HeadPair", "KnownStudent", "NOISE_SIGMAS",
    "TaskScore", "ablate_heads", "ablation_finetuned", "add_weight_noise", "attn_shape", "circuit_heads",
    "editable_copy", "head_weights", "identity_correspondence", "ioi_dataset", "known_students",
    "merge_correspondence", "merge_heads", "merged_student", "most_similar_heads", "noisy_student",
    "out_projection", "permutation_correspondence", "permute_heads", "permuted_student", "random_head_permutation",
    "random_student", "random_weights", "rescale_value_heads", "rescaled_student", "rotate_value_heads",
    "rotated_student", "save_student", "task_score",
]
