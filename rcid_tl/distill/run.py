"""A whole distillation run (the method comparison): load and validate everything, optionally pre-train the student
on general text, fit W*, precompute the teacher's targets, train (resumably), save the student as a standard
Hugging Face directory and evaluate it."""

import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from transformer_lens.model_bridge import TransformerBridge

from rcid_tl import __version__
from rcid_tl.alignment.heads import proportional_head_map
from rcid_tl.alignment.layers import proportional_layer_map
from rcid_tl.artifacts import write_json
from rcid_tl.consistency.causal import check_same_tokenizer
from rcid_tl.consistency.saturation import SATURATED
from rcid_tl.consistency.checkpoints import Checkpoint, load_checkpoints, one_per_student_layer, select_checkpoints
from rcid_tl.distill.config import DistillConfig
from rcid_tl.distill.data import PPL_LEN, WORLD, TextSource, data_order, resolve_text
from rcid_tl.distill.evaluate import evaluate_student
from rcid_tl.distill.losses import kd_loss
from rcid_tl.distill.methods import Method, Objective, Pairing, pairings_for
from rcid_tl.distill.precision import Precision, autocast, grad_scaler
from rcid_tl.distill.processes import check_world
from rcid_tl.distill.targets import fit_maps, precompute_targets
from rcid_tl.distill.teacher_text import Generation, TeacherText
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.models.loading import load_model
from rcid_tl.models.placement import load_dispatched
from rcid_tl.models.saving import save_hf_model
from rcid_tl.models.student import build_llama_student_for, build_student_for, student_config_for
from rcid_tl.parallel import from_main, rank_slice, world
from rcid_tl.tasks.base import ContrastiveDataset
from rcid_tl.tasks.registry import TaskSpec, build_task
from rcid_tl.training import read_state, settings_json, train_phase

log = logging.getLogger(__name__)  # stage lines; the CLI shows them on stderr
STATE = "train_state.pt"

# Settings that cannot change the trained weights, so a run may be resumed with new values: how often states are
# saved and losses logged, the device (a run may move to a GPU), and the evaluation-only ones (evaluation starts from
# the final weights, and metrics.json records the values it used). Every other setting must match the saved run's.
RESUMABLE_WITH_NEW = ("checkpoint_every", "log_every", "device", "eval_n", "eval_seed", "ppl_rows", "n_bootstrap")
# Settings added after runs were saved: left out of the settings at their defaults, so those runs still resume.
LATER_DEFAULTS = {"max_saturation": SATURATED, "one_per_student_layer": False, "refit_every": None,
                  "generation": asdict(Generation())}


@dataclass
class Setup:
    """Everything a run needs, loaded and checked before any file is written."""

    teacher: TransformerBridge
    student: TransformerBridge
    train: ContrastiveDataset
    evaluation: ContrastiveDataset
    checkpoints: list[Checkpoint]
    layer_map: dict[int, int]
    pairings: list[Pairing]
    text: TextSource | TeacherText | None


def check_text_file(text: TextSource, teacher: TransformerBridge, config: DistillConfig) -> None:
    """A text file long enough for every use this run makes of it (raises before any output exists)."""
    if config.pretrain.steps:
        text.rows(teacher.tokenizer, 1, config.pretrain_len)
    if config.mix_weight > 0:
        text.rows(teacher.tokenizer, 1, config.mix_len)
    text.rows(teacher.tokenizer, 1, PPL_LEN, held_out=True)


def prepare(config: DistillConfig, teacher_device_map: str | None = None) -> Setup:
    """Load teacher and student, build the data, choose checkpoints; raises InputError on any bad input. A
    `teacher_device_map` ("auto", ...) spreads a large teacher over this machine's GPUs instead of `device`."""
    if teacher_device_map is None:
        teacher = load_model(config.teacher, device=config.device)
    else:
        teacher = load_dispatched(config.teacher, teacher_device_map)
    for p in teacher.parameters():
        p.requires_grad_(False)  # the teacher is never trained: eval mode, no gradients
    if config.student is None and teacher.original_model.config.model_type == "llama":
        student = build_llama_student_for(teacher, seed=config.seed, **config.student_shape)
    elif config.student is None:
        student = build_student_for(teacher, student_config_for(teacher, seed=config.seed, **config.student_shape))
    else:
        student = load_model(config.student, device=config.device)
    check_same_tokenizer(teacher, student)
    text = resolve_text(config.text, teacher, config.generation)
    if text is None and (config.mix_weight > 0 or config.pretrain.steps > 0):
        raise InputError("mixing and pre-training need general text: give --text world or --text FILE")
    if isinstance(text, TextSource) and text.spec != WORLD:
        check_text_file(text, teacher, config)
    n_ctx = min(teacher.cfg.n_ctx, student.cfg.n_ctx)
    train = build_task(config.task, teacher.tokenizer, n_ctx)
    evaluation = build_task(evaluation_spec(config), teacher.tokenizer, n_ctx)
    if config.checkpoints == "auto":
        checkpoints = select_checkpoints(teacher, train, top_k=config.top_k, min_unmodified=config.min_unmodified,
                                         site=Site(config.checkpoint_site),
                                         max_saturation=config.max_saturation)
    else:
        checkpoints = load_checkpoints(config.checkpoints, teacher.cfg.n_layers, train.position_names,
                                       teacher.cfg.n_heads)
    layer_map = proportional_layer_map(teacher.cfg.n_layers, student.cfg.n_layers)
    if config.one_per_student_layer:
        checkpoints = one_per_student_layer(checkpoints, layer_map)
    head_map = proportional_head_map(teacher.cfg.n_heads, student.cfg.n_heads, layer_map)
    pairings = pairings_for(config.method, checkpoints, layer_map, student.cfg.n_layers, head_map)
    return Setup(teacher, student, train, evaluation, checkpoints, layer_map, pairings, text)


def evaluation_spec(config: DistillConfig) -> TaskSpec:
    """The held-out examples: the task with `eval_seed`; a TinyStories task trained on its `:train` split is
    evaluated on its held-out split, every prompt (no name, object or frame of the training split; drawing
    `eval_n` would repeat its few prompts)."""
    task, _, split = config.task.name.partition(":")
    if split == "train":
        return TaskSpec(task, n=None, seed=config.eval_seed, prepend_bos=config.task.prepend_bos)
    return TaskSpec(config.task.name, n=config.eval_n, seed=config.eval_seed, prepend_bos=config.task.prepend_bos,
                    corruption=config.task.corruption)


def _pretrain_loss(student: TransformerBridge, rows: Tensor, per_step: int):
    def loss_at(step: int):
        chunk = rank_slice(rows[step * per_step : (step + 1) * per_step], "--pretrain-rows").to(student.cfg.device)
        logits = student(chunk)[:, :-1]
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(), chunk[:, 1:].flatten())
        return loss, {}

    return loss_at


def _distill_loss(s: Setup, config: DistillConfig, objective: Objective, targets, order: Tensor, mix: Tensor | None):
    bs, m = config.batch_size, config.mix_rows

    def loss_at(step: int):
        if config.refit_every is not None and step > 0 and step % config.refit_every == 0:
            # W* follows the student: refitted on its current weights (a resumed run refits the same weights)
            objective.set_maps(fit_maps(s.teacher, s.student, s.train, s.pairings, n_fit=config.n_fit))
        rows = rank_slice(order[step * bs : (step + 1) * bs], "--batch-size")  # this process's share
        batch = s.train.batch(rows.tolist())
        loss, parts = objective(s.student, batch, targets.take(rows, batch.clean.shape[1]))
        if mix is not None:
            chunk = rank_slice(mix[step * m : (step + 1) * m], "--mix-rows").to(s.student.cfg.device)
            with torch.no_grad():  # a dispatched teacher reads from its first block's device
                teacher_logits = s.teacher(chunk.to(s.teacher.cfg.device)).to(chunk.device)
            mix_kl = kd_loss(s.student(chunk), teacher_logits, torch.ones_like(chunk, dtype=torch.bool),
                             config.temperature)
            loss = loss + config.mix_weight * mix_kl
            parts["mix_kl"] = mix_kl.item()
        return loss, parts

    return loss_at


def run_settings(config: DistillConfig, precision: Precision = Precision.FP32) -> str:
    """The settings a resumed run must share with the run that saved the state, as JSON (the number of processes
    is not one of them: a run may resume with more or fewer)."""
    # precision is absent for float32, so states saved before the option existed resume
    extra = {} if precision is Precision.FP32 else {"precision": precision.value}
    return settings_json(config.to_dict(), RESUMABLE_WITH_NEW, later_defaults=LATER_DEFAULTS, extra=extra,
                         default=lambda v: getattr(v, "value", str(v)))


def run_distill(config: DistillConfig, out: str | Path, *, stop_after: int | None = None, command: str = "",
                precision: Precision = Precision.FP32, teacher_device_map: str | None = None
                ) -> dict[str, Any] | None:
    """Distill into `out` (resuming from `out/train_state.pt` if present). Returns metrics.json's content, or None
    when `stop_after` (total steps, pre-training included) ended the call before training finished.

    A state that cannot be read or belongs to a run with other settings is an InputError, raised before any model
    loads. Ctrl-C re-raises KeyboardInterrupt with a message saying how to resume, once a state is saved.

    Under torchrun every process calls this: each trains on its share of every global batch (DDP), computes its
    share of the teacher's targets and of the evaluation sweeps; rank 0 alone reads the state (and sends it to the
    others) and writes every file, so `out` need only exist on rank 0's machine."""
    t0 = time.perf_counter()
    out = Path(out)
    check_world(config, teacher_device_map)
    settings = run_settings(config, precision)
    saved = from_main(lambda: read_state(out / STATE, settings))
    try:
        return _run(config, out, settings, saved, stop_after, command, t0, precision, teacher_device_map)
    except KeyboardInterrupt as err:
        if err.args or not (out / STATE).exists():  # the trainer named the step already, or there is none
            raise
        raise KeyboardInterrupt("re-run the same command to resume from the last saved training state") from None


def _run(config: DistillConfig, out: Path, settings: str, saved: dict | None, stop_after: int | None, command: str,
         t0: float, precision: Precision, teacher_device_map: str | None) -> dict[str, Any] | None:
    s = prepare(config, teacher_device_map)  # says nothing: a bad input must stay the one line of its error
    if world().main:
        out.mkdir(parents=True, exist_ok=True)
    s.student.eval()  # no dropout: the clean and corrupt forwards of one step must see the same network
    student_weights = nn.ModuleDict({"student": s.student.original_model})
    loop = dict(state_path=out / STATE, log_path=out / "train_log.jsonl", checkpoint_every=config.checkpoint_every,
                log_every=config.log_every, settings=settings, resume=saved, autocast=partial(autocast, precision),
                scaler=partial(grad_scaler, precision))
    p = config.pretrain
    if p.steps and (saved is None or saved["phase"] == "pretrain"):
        rows = s.text.rows(s.teacher.tokenizer, p.steps * config.pretrain_rows, config.pretrain_len)
        order = torch.arange(p.steps)
        done = train_phase("pretrain", student_weights, _pretrain_loss(s.student, rows, config.pretrain_rows), p,
                           order, stop_after=stop_after, **loop)
        if done < p.steps:
            return None
    log.info("%d training examples, %d checkpoints; fitting W* and precomputing the teacher's targets",
             len(s.train), len(s.checkpoints))
    maps = fit_maps(s.teacher, s.student, s.train, s.pairings, n_fit=config.n_fit) if config.method.uses_maps else {}
    objective = Objective(config.method, s.pairings, maps, lam=config.lam, temperature=config.temperature,
                          learned_projection=config.learned_projection, kl_all_tokens=config.kl_all_tokens
                          ).to(config.device)
    targets = precompute_targets(s.teacher, s.train, s.pairings, all_tokens=config.kl_all_tokens,
                                 interchange=config.method is Method.IIT)
    order = data_order(len(s.train), config.optim.steps, config.batch_size, config.seed)
    mix = None
    if config.mix_weight > 0:
        mix = s.text.rows(s.teacher.tokenizer, config.optim.steps * config.mix_rows, config.mix_len)
    modules = nn.ModuleDict({"student": s.student.original_model, "objective": objective})
    left = None if stop_after is None else stop_after - p.steps
    done = train_phase("distill", modules, _distill_loss(s, config, objective, targets, order, mix), config.optim,
                       order, stop_after=left, **loop)
    if done < config.optim.steps:
        return None
    return _finish(s, config, out, time.perf_counter() - t0, command, precision)


def _teacher_text(text, out: Path) -> dict[str, Any] | None:
    """Teacher-generated text's settings and a digest in metrics.json; every token id in OUT/teacher_text.json."""
    if not isinstance(text, TeacherText):
        return None
    record = text.record()
    digest = hashlib.sha256(json.dumps(record["token_ids"]).encode()).hexdigest()
    if world().main:
        write_json(out / "teacher_text.json", {"rcid_tl_version": __version__, **record, "sha256": digest})
    return {k: v for k, v in record.items() if k != "token_ids"} | {"sha256": digest, "file": "teacher_text.json"}


def _finish(s: Setup, config: DistillConfig, out: Path, wall_s: float, command: str, precision: Precision
            ) -> dict[str, Any]:
    if world().main:
        save_hf_model(s.student, out / "student")
    log.info("saved %s; evaluating on %d held-out examples", out / "student", len(s.evaluation))
    held_out = s.text.rows(s.teacher.tokenizer, config.ppl_rows, PPL_LEN, held_out=True) if s.text else None
    t0 = time.perf_counter()
    scores = evaluate_student(s.teacher, s.student, s.evaluation, s.checkpoints, s.layer_map, held_out,
                              seed=config.seed, n_bootstrap=config.n_bootstrap)
    eval_s = time.perf_counter() - t0
    metrics = {
        "rcid_tl_version": __version__, "command": command, "method": config.method.value, "seed": config.seed,
        "steps": config.optim.steps, "pretrain_steps": config.pretrain.steps, "lambda": config.lam,
        "teacher": config.teacher, "task": config.task.name, "n_train": len(s.train),
        "accuracy": scores["student"]["accuracy"], "metric": scores["student"]["metric"],
        "metric_mean": scores["student"]["metric_mean"], "perplexity": scores["student"]["perplexity"],
        "causal_consistency": scores["consistency"], "teacher_scores": scores["teacher"],
        "student_scores": scores["student"], "n_eval": scores["n_examples"],
        "checkpoints": [c.to_dict() for c in s.checkpoints],
        "layer_map": {str(k): v for k, v in s.layer_map.items()},
        "wall_s": round(wall_s, 2), "eval_wall_s": round(eval_s, 2), "config": config.to_dict(),
        "teacher_text": _teacher_text(s.text, out),
        "eval_token_ids": [e.to_json() for e in s.evaluation.examples],
        "precision": precision.value, "processes": world().size,
    }
    if world().main:
        write_json(out / "metrics.json", metrics)
    return metrics
