"""IOI head classes on any model: per-head attention, copy and causal scores, and the classes they imply."""

from rcid_tl.heads.classes import CLASS_NAMES, HeadThresholds, assign_classes
from rcid_tl.heads.run import HeadsConfig, HeadsResult, find_head_classes

__all__ = ["CLASS_NAMES", "HeadThresholds", "HeadsConfig", "HeadsResult", "assign_classes", "find_head_classes"]
