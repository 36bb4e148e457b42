"""Tasks as contrastive datasets: IOI, Greater-Than, TinyStories pronoun agreement and object recall, and user pairs,
tokenised and validated once."""

from rcid_tl.tasks.base import Batch, ContrastiveDataset, Example
from rcid_tl.tasks.greater_than import GreaterThanConfig, build_greater_than
from rcid_tl.tasks.ioi import Corruption, IOIConfig, build_ioi
from rcid_tl.tasks.object_recall import ObjectRecallConfig, build_object_recall
from rcid_tl.tasks.pairs import PairsConfig, build_pairs
from rcid_tl.tasks.pronoun import PronounConfig, Split, build_pronoun
from rcid_tl.tasks.registry import TaskSpec, build_task

__all__ = [
    "Batch", "ContrastiveDataset", "Corruption", "Example", "GreaterThanConfig", "IOIConfig", "ObjectRecallConfig",
    "PairsConfig", "PronounConfig", "Split", "TaskSpec", "build_greater_than", "build_ioi", "build_object_recall",
    "build_pairs", "build_pronoun", "build_task",
]
