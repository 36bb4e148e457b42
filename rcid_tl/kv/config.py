"""The KV objective's settings (the KV recipe's flags), validated before anything loads."""

from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from rcid_tl.checks import check_count, check_device, check_real
from rcid_tl.distill.config import OptimConfig
from rcid_tl.errors import InputError, parse_choice
from rcid_tl.kv.losses import KVLoss


class Alignment(str, Enum):
    CKA = "cka"  # 1 − debiased linear CKA
    CONTRASTIVE = "contrastive"  # InfoNCE over the batch's tokens through a learned projection


@dataclass(frozen=True)
class KVConfig:
    """What the KV objective adds to the student's next-token CE on the chain-of-thought tokens: λ_KV·KV loss
    (optionally attention-weighted after a warm-up, optionally on an R-KV-compressed teacher cache), λ_CKA·(1 − CKA)
    on `cka_layers`, and λ_CODI·CODI on `codi_layers` (student layers; each paired with the deepest teacher layer of
    the proportional map)."""

    kv_loss: KVLoss | str = KVLoss.MSE  # a name is parsed into the enum
    kv_weight: float = 1.0
    attention_weighted: bool = False
    attention_warmup: int = 50  # the KV recipe uses 1000 on runs of thousands of steps; ours are hundreds
    use_teacher_attention: bool = False
    cka_weight: float = 0.05
    cka_layers: str = "middle"
    alignment: Alignment | str = Alignment.CKA
    codi_weight: float = 0.0
    codi_layers: str = "all"
    compression: int | None = None  # R-KV budget: reasoning tokens of the teacher's cache kept (None: all)
    compression_mix: float = 0.5  # importance vs (1 − redundancy) in the R-KV score

    def __post_init__(self) -> None:
        object.__setattr__(self, "kv_loss", parse_choice(KVLoss, self.kv_loss, "--kv-loss"))
        object.__setattr__(self, "alignment", parse_choice(Alignment, self.alignment, "--alignment"))
        for name in ("kv_weight", "cka_weight", "codi_weight"):
            check_real(getattr(self, name), "--" + name.replace("_", "-"))
        check_count(self.attention_warmup, "--attention-weighted-kv-warmup", minimum=0)
        if self.compression is not None:
            check_count(self.compression, "--kv-compression")
        if not 0 <= self.compression_mix <= 1:
            raise InputError(f"compression mix must be in [0, 1], got {self.compression_mix}")
        if self.use_teacher_attention and not self.attention_weighted:
            raise InputError("--use-teacher-attention chooses the attention of --attention-weighted-kv; give both")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kv_loss"], d["alignment"] = self.kv_loss.value, self.alignment.value
        return d


@dataclass(frozen=True)
class KVRunConfig:
    """Everything that determines a KV-distilled student on the chain-of-thought task: the teacher, the student
    (`None`: the teacher's default student shape, `student_shape` overriding fields), the CoT training problems
    (`n_train` problems of the student stream, `rcid_tl.world.cot_streams`), the objective and the optimizer. `eval_every` steps the
    learning curve scores `curve_n` ID problems; the final evaluation scores `eval_n` of each test split."""

    teacher: str
    kv: KVConfig
    optim: OptimConfig
    seed: int = 42
    student: str | None = None
    student_shape: dict[str, int] = field(default_factory=dict)
    n_train: int = 2048
    batch_size: int = 16
    eval_n: int = 200
    curve_n: int = 32
    eval_every: int = 50
    checkpoint_every: int = 50
    log_every: int = 10
    gradient_checkpointing: bool = False
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("n_train", "batch_size", "eval_n", "curve_n", "eval_every", "checkpoint_every", "log_every"):
            check_count(getattr(self, name), "--" + name.replace("_", "-"))
        check_count(self.optim.steps, "--steps")
        if self.checkpoint_every % self.log_every or self.eval_every % self.log_every:
            raise InputError("--save-every and --eval-every must be multiples of the log interval "
                             f"({self.log_every}) so resumed logs and learning curves line up")
        check_device(self.device)
        if self.gradient_checkpointing and not self.device.startswith("cuda"):
            raise InputError("--gradient-checkpointing trades compute for GPU memory; it needs a CUDA --device")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"kv": self.kv.to_dict()}
