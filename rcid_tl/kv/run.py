"""A whole KV-distillation run on the chain-of-thought task through the shared resumable trainer: load and check,
train CE + KV terms (scoring the student on a few ID problems every `eval_every` steps for the learning curve), save
the student, score it on the ID and OOD splits, write metrics.json and the learning-curve figure."""

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.artifacts import write_json
from rcid_tl.consistency.causal import check_same_tokenizer
from rcid_tl.distill.data import data_order
from rcid_tl.distill.precision import Precision, autocast, grad_scaler
from rcid_tl.errors import InputError
from rcid_tl.kv.config import KVRunConfig
from rcid_tl.kv.curves import write_learning_curves
from rcid_tl.kv.objective import KVObjective, SegmentBatch
from rcid_tl.models.loading import load_model
from rcid_tl.models.saving import save_hf_model
from rcid_tl.models.student import build_student_for, student_config_for
from rcid_tl.training import read_state, settings_json, train_phase
from rcid_tl.world.cot import CoTSplit, Segment, cot_batch, cot_examples
from rcid_tl.world.cot_eval import evaluate_cot
from rcid_tl.world.cot_streams import (
    CoTStream, STREAM_SOURCES, TEST_SEED, check_no_overlap, examples_hash, record_or_check_streams, stream_examples,
)

log = logging.getLogger(__name__)
STATE = "train_state.pt"
TEST_SPLITS = (CoTSplit.ID, CoTSplit.OOD_LONGER, CoTSplit.OOD_PAIRS)
EVAL_SEED = TEST_SEED  # test problems come from their splits' own streams (rcid_tl.world.cot_streams)
# Settings that cannot change the trained weights, so a run may resume with new values: how often states are saved,
# the device, and the size of the final evaluation (the multi-teacher run has the same ones).
RESUMABLE_WITH_NEW = ("checkpoint_every", "device", "eval_n")


def run_settings(config: KVRunConfig, precision: Precision) -> str:
    return settings_json(config.to_dict(), RESUMABLE_WITH_NEW, extra={"precision": precision.value})


def load_pair(config: KVRunConfig) -> tuple[TransformerBridge, TransformerBridge]:
    """The frozen teacher and the student (a new one of the teacher's default shape unless a directory is given)."""
    teacher = load_model(config.teacher, device=config.device)
    for p in teacher.parameters():
        p.requires_grad_(False)
    if config.student is None:
        shape = student_config_for(teacher, seed=config.seed, **config.student_shape)
        student = build_student_for(teacher, shape)
    else:
        student = load_model(config.student, device=config.device)
    check_same_tokenizer(teacher, student)
    try:
        segment_batch(teacher.tokenizer, cot_examples(CoTSplit.TRAIN, 1))
    except InputError:
        raise InputError(f"teacher {config.teacher!r} has no chain-of-thought vocabulary; use a CoT teacher "
                         "(world-gpt2-cot, world-qwen2-cot) or one trained with the CoT tokenizer") from None
    return teacher, student


def segment_batch(tokenizer, examples) -> SegmentBatch:
    b = cot_batch(tokenizer, examples)
    return SegmentBatch(b.input_ids, b.segment_ids, b.segment_ids != Segment.PAD)


def enable_checkpointing(student: TransformerBridge) -> None:
    """Gradient checkpointing (GPU runs): HF recomputes blocks in backward only in train mode, so dropout is set to
    zero first to keep the forward deterministic like the eval-mode forward of other runs."""
    for module in student.original_model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
    student.original_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    student.original_model.train()


def run_kv_distill(config: KVRunConfig, out: str | Path, *, stop_after: int | None = None, command: str = "",
                   precision: Precision = Precision.FP32) -> dict[str, Any] | None:
    """Distill into `out` (resuming from `out/train_state.pt`); metrics.json's content, or None when `stop_after`
    ended the call early. Bad input and a state of another run raise InputError before any model loads."""
    t0, out = time.perf_counter(), Path(out)
    settings = run_settings(config, precision)
    saved = read_state(out / STATE, settings)
    teacher, student = load_pair(config)
    objective = KVObjective(teacher, student, config.kv, log_every=config.log_every).to(config.device)
    out.mkdir(parents=True, exist_ok=True)  # only now: a bad layer selection above leaves nothing behind
    student.eval()
    if config.gradient_checkpointing:
        enable_checkpointing(student)
    tok = teacher.tokenizer
    streams = data_streams(config)
    record_or_check_streams(out, {k: examples_hash(v) for k, v in streams.items()})
    train, curve = streams["student"], streams["validation"]
    order = data_order(len(train), config.optim.steps, config.batch_size, config.seed)
    last_score: dict[str, float] = {}

    def loss_at(step: int):
        if step % config.eval_every == 0 or not last_score:  # the value stays fixed over its log window
            last_score.update(curve_accuracy=evaluate_cot(student, tok, curve).accuracy, curve_step=float(step))
        rows = order[step * config.batch_size : (step + 1) * config.batch_size].tolist()
        loss, parts = objective(teacher, student, segment_batch(tok, [train[i] for i in rows]), step)
        return loss, parts | last_score

    modules = nn.ModuleDict({"student": student.original_model, "objective": objective})
    log_path = out / "train_log.jsonl"
    done = train_phase("distill", modules, loss_at, config.optim, order, state_path=out / STATE, log_path=log_path,
                       checkpoint_every=config.checkpoint_every, log_every=config.log_every, settings=settings,
                       resume=saved, stop_after=stop_after, autocast=partial(autocast, precision),
                       scaler=partial(grad_scaler, precision))
    if done < config.optim.steps:
        return None
    student.original_model.eval()
    save_hf_model(student, out / "student")
    log.info("saved %s; scoring %d problems of each test split", out / "student", config.eval_n)
    scores = {s.value: evaluate_cot(student, tok, streams[f"test-{s.value}"]).to_dict() for s in TEST_SPLITS}
    scores["validation"] = evaluate_cot(student, tok, curve).to_dict()
    metrics = {
        "rcid_tl_version": __version__, "command": command, "objective": "kv", "teacher": config.teacher,
        "seed": config.seed, "steps": config.optim.steps, "scores": scores, "precision": precision.value,
        "data": {"streams": {s.value: {"split": STREAM_SOURCES[s][0].value, "seed": STREAM_SOURCES[s][1]}
                             for s in CoTStream},
                 "sizes": {k: len(v) for k, v in streams.items()},
                 "hashes": {k: examples_hash(v) for k, v in streams.items()}},
        "layer_pairs": {str(s): t for s, t in objective.pairs.items()},
        "wall_s": round(time.perf_counter() - t0, 2), "config": config.to_dict(),
    }
    write_json(out / "metrics.json", metrics)
    write_learning_curves(log_path, out / "learning_curves", title=f"KV distillation of {config.teacher}")
    return metrics


def data_streams(config: KVRunConfig) -> dict[str, list]:
    """Student (training), validation (learning curve, final validation score) and per test split the test problems,
    each from its own stream (rcid_tl.world.cot_streams); training and validation never repeat a test question."""
    test = {f"test-{s.value}": cot_examples(s, config.eval_n, seed=EVAL_SEED) for s in TEST_SPLITS}
    blocked = {e.prompt for examples in test.values() for e in examples}
    validation = stream_examples(CoTStream.VALIDATION, config.curve_n, exclude=blocked)
    student = stream_examples(CoTStream.STUDENT, config.n_train, exclude=blocked | {e.prompt for e in validation})
    streams = {"student": student, "validation": validation, **test}
    check_no_overlap(streams)
    return streams


def teacher_scores(teacher: TransformerBridge, n: int) -> dict[str, dict]:
    """The teacher's accuracy and perplexity on the same test problems as the students (for the study's table)."""
    with torch.no_grad():
        return {s.value: evaluate_cot(teacher, teacher.tokenizer, cot_examples(s, n, seed=EVAL_SEED)).to_dict()
                for s in TEST_SPLITS}
