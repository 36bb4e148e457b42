"""The one frozen config of a distillation run,
validated before anything is loaded or written."""

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rcid_tl.checks import MAX_EXAMPLES, check_count, check_device, check_real
from rcid_tl.consistency.checkpoints import CHECKPOINT_SITES
from rcid_tl.consistency.saturation import SATURATED
from rcid_tl.distill.data import WORLD, TextSource
from rcid_tl.distill.methods import Method
from rcid_tl.distill.teacher_text import TEACHER_TEXT, Generation
from rcid_tl.errors import InputError
from rcid_tl.hooks.names import Site
from rcid_tl.tasks.registry import TaskSpec


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to `min_lr_ratio`·lr, gradient clipping."""

    steps: int
    lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: int = 20
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        check_count(self.steps, "steps", minimum=0)
        check_real(self.lr, "--lr", inclusive=False)
        if self.grad_clip <= 0 or self.warmup < 0 or not 0 <= self.min_lr_ratio <= 1:
            raise InputError("need grad_clip > 0, warmup ≥ 0 and 0 ≤ min_lr_ratio ≤ 1")


@dataclass(frozen=True)
class DistillConfig:
    """Everything that determines a distilled student. `student=None` builds the teacher's default student
    (`build_student_for`, seeded by `seed`); `checkpoints` is `auto` (selected on the training set) or a file."""

    teacher: str
    method: Method
    task: TaskSpec
    optim: OptimConfig
    seed: int = 42
    student: str | None = None
    student_shape: dict[str, int] = field(default_factory=dict)  # StudentConfig overrides for a new student
    batch_size: int = 32
    lam: float = 1.0
    temperature: float = 2.0
    kl_all_tokens: bool = False  # task KL on every token instead of the answer position alone
    top_k: int = 8
    min_unmodified: int | None = None
    checkpoints: str = "auto"
    max_saturation: float | None = SATURATED  # auto selection skips teacher points at or above it (None: keeps all)
    # where auto selection looks: per-head z by default. On the embedded teachers every resid_post point either
    # saturates the output or carries none of it, so by effect there is no usable resid_post checkpoint at all.
    checkpoint_site: str = "z"
    one_per_student_layer: bool = False  # keep only the largest-imprint checkpoint of each student layer
    refit_every: int | None = None  # refit W* on the current student every N distillation steps (None: frozen)
    learned_projection: bool = True  # FitNets: learned regressor (initialised at W*) or the frozen W*
    text: str = "auto"  # general text ("world", "teacher-text" or a text file; auto: world on world teachers, else
    # none) for mixing, pre-training and held-out perplexity
    generation: Generation = field(default_factory=Generation)  # how teacher-text is sampled (text teacher-text)
    mix_weight: float = 0.0  # weight of the KL on general text added to every step (0: no mixing)
    mix_rows: int = 8
    mix_len: int = 64
    pretrain: OptimConfig = field(default_factory=lambda: OptimConfig(steps=0, lr=3e-3))
    pretrain_rows: int = 16
    pretrain_len: int = 64
    eval_n: int = 200
    ppl_rows: int = 64  # held-out general-text rows of 128 tokens for perplexity
    n_bootstrap: int = 1000
    eval_seed: int = 999  # the evaluation examples are drawn apart from the training ones
    n_fit: int = 256  # training examples whose tokens fit W*
    checkpoint_every: int = 50
    log_every: int = 10
    device: str = "cpu"

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", Method(self.method))
        if Site(self.checkpoint_site) not in CHECKPOINT_SITES:  # a bad name is a ValueError Typer never passes
            allowed = ", ".join(x.value for x in CHECKPOINT_SITES)
            raise InputError(f"--checkpoint-site {self.checkpoint_site!r} cannot be a checkpoint site; allowed: "
                             f"{allowed}")
        check_count(self.optim.steps, "--steps")
        check_count(self.pretrain.steps, "--pretrain-steps", minimum=0)
        check_real(self.lam, "--lambda")
        check_real(self.temperature, "--temperature", inclusive=False)
        check_real(self.mix_weight, "--mix-weight")
        for name in ("batch_size", "top_k", "mix_rows", "mix_len", "pretrain_rows", "pretrain_len", "ppl_rows",
                     "n_bootstrap", "checkpoint_every", "log_every"):
            check_count(getattr(self, name), "--" + name.replace("_", "-"))
        check_count(self.eval_n, "--eval-n", maximum=MAX_EXAMPLES)
        if self.checkpoint_every % self.log_every:
            raise InputError("--save-every must be a multiple of log-every so resumed logs line up")
        if self.refit_every is not None:
            check_count(self.refit_every, "--refit-every")
            if not self.method.uses_maps:
                raise InputError(f"--refit-every refits W*, which {self.method.value} does not use")
        if self.max_saturation is not None and not self.max_saturation > 0:
            raise InputError(f"--max-saturation must be > 0, got {self.max_saturation}")
        check_device(self.device)
        check_sources(self.checkpoints, self.text)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["method"] = self.method.value
        return d


def check_sources(checkpoints: str, text: str) -> None:
    """`--checkpoints` is auto or an existing file; `--text` is auto, none, world, teacher-text or an existing text
    file."""
    if checkpoints != "auto" and not Path(checkpoints).is_file():
        raise InputError(f"checkpoints file {checkpoints!r} not found")
    if text not in ("auto", "none", WORLD, TEACHER_TEXT):
        TextSource(text)  # an InputError unless the file exists
