"""A whole multi-teacher KV-distillation run on the chain-of-thought task through the shared resumable trainer: load
the teachers and the student, draw the teacher (layer maps), student (training), validation (learning curve) and test
problems from separate generator streams whose hashes are recorded and checked on resume, train CE + structural KV
against the fused teachers, log the routing weights every step window, score the student on the ID and OOD splits."""

import logging
import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from torch import nn

from rcid_tl import __version__
from rcid_tl.artifacts import write_figure, write_json
from rcid_tl.checks import check_count, check_device, check_real
from rcid_tl.distill.config import OptimConfig
from rcid_tl.distill.data import data_order
from rcid_tl.errors import InputError, parse_choice
from rcid_tl.kv.curves import read_log, write_learning_curves
from rcid_tl.kv.objective import SegmentBatch
from rcid_tl.kv.run import EVAL_SEED, RESUMABLE_WITH_NEW, TEST_SPLITS
from rcid_tl.models.loading import load_model
from rcid_tl.models.saving import save_hf_model
from rcid_tl.models.student import build_student_for, student_config_for
from rcid_tl.multiteacher.ablation import Arm
from rcid_tl.multiteacher.controls import Compute, record_or_check_split
from rcid_tl.multiteacher.data import Reasoning, encode_side, student_examples, teacher_alignment
from rcid_tl.multiteacher.fusion import RoutingLog
from rcid_tl.multiteacher.layers import LayerMap, cka_layer_map, ratio_layer_map, shallow_layer_map
from rcid_tl.multiteacher.objective import MultiTeacherKV, TeacherView
from rcid_tl.multiteacher.teacher_cache import TeacherCache
from rcid_tl.training import read_state, settings_json, train_phase
from rcid_tl.world.cot import CoTSplit, cot_examples
from rcid_tl.world.cot_eval import evaluate_cot
from rcid_tl.world.cot_streams import (
    CoTStream, STREAM_SOURCES, check_no_overlap, combined_hash, examples_hash, record_or_check_streams,
    stream_examples,
)

log = logging.getLogger(__name__)
STATE = "train_state.pt"


class Coverage(str, Enum):
    FULL = "full"  # the layer map spans every teacher layer
    SHALLOW = "shallow"  # the ratio map over the teacher's first half of layers only (the deeper half is never read)


@dataclass(frozen=True)
class MultiTeacherRunConfig:
    """One arm's run: the arm (teachers, fusion, projection, alignment, α's), the optimizer, the student (None: the
    first teacher's default student shape), the student's reasoning format, the layer maps (ratio, or CKA top-2
    precomputed on teacher-stream problems, or one saved map file per teacher, comma-separated) and its coverage, and
    how many problems each data stream gives (`n_train` student problems, `n_teacher` for the CKA map)."""

    arm: Arm
    optim: OptimConfig
    seed: int = 0
    student: str | None = None
    student_from: str | None = None  # the model whose tokenizer and default shape a new student takes (first teacher)
    student_shape: dict[str, int] = field(default_factory=dict)
    reasoning: Reasoning | str = Reasoning.COMPRESSED
    kv_weight: float = 1.0
    layer_map: str = "ratio"
    layer_coverage: Coverage | str = Coverage.FULL
    n_train: int = 1024
    n_teacher: int = 64
    batch_size: int = 16
    eval_n: int = 200
    curve_n: int = 32
    eval_every: int = 50
    checkpoint_every: int = 50
    log_every: int = 10
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "reasoning", parse_choice(Reasoning, self.reasoning, "student reasoning"))
        object.__setattr__(self, "layer_coverage", parse_choice(Coverage, self.layer_coverage, "layer coverage"))
        if self.layer_coverage is Coverage.SHALLOW and self.layer_map != "ratio":
            raise InputError("shallow layer coverage is a ratio map over the first half of the teacher's layers; "
                             "use --layer-map ratio with it")
        if self.layer_map not in ("ratio", "cka"):
            files = self.layer_map_files
            if len(files) != len(self.arm.teachers) or not all(Path(f).is_file() for f in files):
                raise InputError(f"--layer-map {self.layer_map!r} is neither ratio, cka nor one existing map file per "
                                 f"teacher ({len(self.arm.teachers)}, comma-separated)")
        check_real(self.kv_weight, "--kv-weight")
        for name in ("n_train", "n_teacher", "batch_size", "eval_n", "curve_n", "eval_every", "checkpoint_every", "log_every"):
            check_count(getattr(self, name), "--" + name.replace("_", "-"))
        if self.checkpoint_every % self.log_every or self.eval_every % self.log_every:
            raise InputError(f"--save-every and --eval-every must be multiples of {self.log_every}")
        check_device(self.device)

    @property
    def layer_map_files(self) -> list[str]:
        return [] if self.layer_map in ("ratio", "cka") else self.layer_map.split(",")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"arm": self.arm.to_dict(), "reasoning": self.reasoning.value,
                               "layer_coverage": self.layer_coverage.value}


def load_models(config: MultiTeacherRunConfig):
    teachers = {}
    for name in config.arm.teachers:
        teachers[name] = load_model(name, device=config.device)
        for p in teachers[name].parameters():
            p.requires_grad_(False)
    base = config.student_from or config.arm.teachers[0]
    first = teachers[base] if base in teachers else load_model(base, device=config.device)
    if config.student is None:
        student = build_student_for(first, student_config_for(first, seed=config.seed, **config.student_shape))
    else:
        student = load_model(config.student, device=config.device)
    return teachers, student


def check_vocabulary(teachers, student) -> None:
    """Every model can tokenize the chain-of-thought problems (an InputError naming the first that cannot)."""
    probe = cot_examples(CoTSplit.TRAIN, 1)
    for name, model in [*teachers.items(), ("student", student)]:
        try:
            encode_side(model.tokenizer, probe)
        except InputError:
            raise InputError(f"{name!r} has no chain-of-thought vocabulary; use a CoT teacher (world-gpt2-cot, "
                             "world-qwen2-cot) or a tokenizer that knows every word") from None


def make_views(teachers, student, examples, config, caches: dict[str, TeacherCache] | None = None
               ) -> tuple[SegmentBatch, dict[str, TeacherView]]:
    """The student's batch (its reasoning format) and each teacher's tokens and alignment (full reasoning), with the
    teacher's (Q, K, V) from `caches` where given."""
    s_examples = student_examples(examples, config.reasoning)
    s_side = encode_side(student.tokenizer, s_examples)
    views = {}
    for name, teacher in teachers.items():
        t_side = encode_side(teacher.tokenizer, examples)
        views[name] = TeacherView(t_side.tokens, teacher_alignment(
            student.tokenizer, teacher.tokenizer, s_examples, examples, s_side.tokens.shape[1],
            t_side.tokens.shape[1], config.arm.soft_alignment),
            caches[name].batch(t_side.tokens, t_side.real) if caches else None)
    return SegmentBatch(s_side.tokens, s_side.segments, s_side.real), views


def layer_maps(config, teachers, student, teacher_split, out: Path) -> dict[str, LayerMap]:
    """Per teacher the ratio map, or the CKA top-2 map computed once on the teacher split and saved (re-read on
    resume, so a resumed run keeps its map)."""
    maps = {}
    for i, (name, teacher) in enumerate(teachers.items()):
        if config.layer_map_files:
            maps[name] = LayerMap.load(config.layer_map_files[i]).check(teacher.cfg.n_layers, student.cfg.n_layers,
                                                                       name)
            continue
        if config.layer_map == "ratio":
            maps[name] = ratio_layer_map(teacher.cfg.n_layers, student.cfg.n_layers) \
                if config.layer_coverage is Coverage.FULL else shallow_layer_map(teacher.cfg.n_layers,
                                                                                  student.cfg.n_layers)
            continue
        path = out / f"layer_map_{i}.json"
        if not path.is_file():
            batch, views = make_views({name: teacher}, student, teacher_split, config)
            cka_layer_map(teacher, student, views[name].tokens, batch.tokens, views[name].alignment,
                          batch.real).save(path)
        maps[name] = LayerMap.load(path).check(teacher.cfg.n_layers, student.cfg.n_layers, name)
    return maps


def data_streams(config: MultiTeacherRunConfig) -> dict[str, list]:
    """Teacher (CKA map), student (training), validation (learning curve) and per test split the test problems, each
    from its own stream; student and validation problems never repeat a test question (asserted)."""
    test = {f"test-{s.value}": cot_examples(s, config.eval_n, seed=EVAL_SEED) for s in TEST_SPLITS}
    blocked = {e.prompt for examples in test.values() for e in examples}
    validation = stream_examples(CoTStream.VALIDATION, config.curve_n, exclude=blocked)
    student = stream_examples(CoTStream.STUDENT, config.n_train, exclude=blocked | {e.prompt for e in validation})
    streams = {"teacher": stream_examples(CoTStream.TEACHER, config.n_teacher), "student": student,
               "validation": validation, **test}
    check_no_overlap({k: v for k, v in streams.items() if k != "teacher"})
    return streams


def run_multiteacher(config: MultiTeacherRunConfig, out: str | Path, *, command: str = "",
                     stop_after: int | None = None) -> dict[str, Any] | None:
    """Train one arm into `out` (resuming from its state); metrics.json's content, or None if stopped early."""
    t0, out = time.perf_counter(), Path(out)
    settings = settings_json(config.to_dict(), RESUMABLE_WITH_NEW, default=str)
    saved = read_state(out / STATE, settings)
    teachers, student = load_models(config)
    if config.layer_map_files:  # a map of the wrong depth fails here, before anything is written
        layer_maps(config, teachers, student, [], out)
    check_vocabulary(teachers, student)
    streams = data_streams(config)
    hashes = {name: examples_hash(examples) for name, examples in streams.items()}
    digest = combined_hash(hashes)
    out.mkdir(parents=True, exist_ok=True)
    record_or_check_streams(out, hashes)
    record_or_check_split(out, digest)
    teacher_split, train = streams["teacher"], streams["student"]
    curve = student_examples(streams["validation"], config.reasoning)
    objective = MultiTeacherKV(teachers, student, config.arm, config.kv_weight,
                               layer_maps(config, teachers, student, teacher_split, out)).to(config.device)
    student.eval()
    order = data_order(len(train), config.optim.steps, config.batch_size, config.seed)
    last: dict[str, float] = {}
    # the objective reads no teacher at KV weight 0 (CE alone); otherwise each teacher runs once per problem
    read = {} if not config.kv_weight else teachers
    caches = {name: TeacherCache(teacher) for name, teacher in read.items()}

    def loss_at(step: int):
        if step % config.eval_every == 0 or not last:
            last.update(curve_accuracy=evaluate_cot(student, student.tokenizer, curve).accuracy, curve_step=step)
        rows = order[step * config.batch_size : (step + 1) * config.batch_size].tolist()
        batch, views = make_views(read, student, [train[i] for i in rows], config, caches)
        loss, parts = objective(teachers, student, batch, views)
        return loss, parts | last

    modules = nn.ModuleDict({"student": student.original_model, "objective": objective})
    log_path = out / "train_log.jsonl"
    done = train_phase("distill", modules, loss_at, config.optim, order, state_path=out / STATE, log_path=log_path,
                       checkpoint_every=config.checkpoint_every, log_every=config.log_every, settings=settings,
                       resume=saved, stop_after=stop_after)
    if done < config.optim.steps:
        return None
    save_hf_model(student, out / "student")
    scores = {s.value: evaluate_cot(student, student.tokenizer,
                                    student_examples(streams[f"test-{s.value}"], config.reasoning)).to_dict()
              for s in TEST_SPLITS}
    scores["validation"] = evaluate_cot(student, student.tokenizer, curve).to_dict()
    seen = student_examples([train[i] for i in order.tolist()], config.reasoning)
    compute = Compute(config.optim.steps, len(order), int(encode_side(student.tokenizer, seen).real.sum()))
    routing = RoutingLog(config.arm.teachers, read_log(log_path))
    write_figure(out / "routing", routing.figure(f"routing weights, {config.arm.name}"))
    write_learning_curves(log_path, out / "learning_curves", title=f"multi-teacher KV, {config.arm.name}")
    metrics = {
        "rcid_tl_version": __version__, "command": command, "objective": "multiteacher-kv", "arm": config.arm.name,
        "teachers": list(config.arm.teachers), "seed": config.seed, "scores": scores, "split_hash": digest,
        "compute": compute.to_dict(), "routing": routing.rows,
        "layer_maps": {n: m.weights for n, m in zip(config.arm.teachers, _maps(objective))},
        "data": {"streams": {s.value: {"split": STREAM_SOURCES[s][0].value, "seed": STREAM_SOURCES[s][1]}
                             for s in CoTStream},
                 "sizes": {k: len(v) for k, v in streams.items()}, "hashes": hashes,
                 "test": {"splits": [s.value for s in TEST_SPLITS], "n": config.eval_n, "seed": EVAL_SEED}},
        "wall_s": round(time.perf_counter() - t0, 2), "config": config.to_dict(),
    }
    write_json(out / "metrics.json", metrics)
    return metrics


def _maps(objective: MultiTeacherKV) -> list[LayerMap]:
    return [objective.aligners[str(i)].layer_map for i in range(len(objective.names))]
