"""The one training loop of rcid_tl and what it needs: the optimizer and schedule, the resumable state file with its
settings check, and the JSONL log. Objectives (distillation, KV, multi-teacher, world teachers, CausalQwen) pass a
loss-step callable and their settings; they never write a loop of their own."""

from rcid_tl.training.loop import StateFile, LossFn, TrainLog, phase_record, train, train_phase
from rcid_tl.training.optim import lr_factor, make_optimizer
from rcid_tl.training.state import RUN_STATE, StateLayout, read_state, setting_changes, settings_json, trim_log

__all__ = [
    "RUN_STATE", "StateFile", "LossFn", "StateLayout", "TrainLog", "lr_factor", "make_optimizer", "phase_record",
    "read_state", "setting_changes", "settings_json", "train", "train_phase", "trim_log",
]
