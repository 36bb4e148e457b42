"""Mixed-precision training: the forward and loss under autocast in bfloat16 or float16 while the weights, the
optimizer state and the gradients stay float32 (float16 adds loss scaling against underflowing gradients)."""

from contextlib import AbstractContextManager, nullcontext
from enum import Enum

import torch

from rcid_tl.errors import InputError, parse_choice


class Precision(str, Enum):
    FP32 = "fp32"
    BF16 = "bf16"  # autocast in bfloat16: CUDA (Ampere or newer) and CPU
    FP16 = "fp16"  # autocast in float16 with a GradScaler: CUDA only

    @property
    def dtype(self) -> torch.dtype:
        return {Precision.FP32: torch.float32, Precision.BF16: torch.bfloat16, Precision.FP16: torch.float16}[self]


def check_precision(value: str, device: str) -> Precision:
    """`value` as a Precision that `device` can train in; an InputError naming what is allowed there."""
    precision = parse_choice(Precision, value, "--precision")
    kind = torch.device(device).type
    allowed = {"cuda": (Precision.FP32, Precision.BF16, Precision.FP16), "cpu": (Precision.FP32, Precision.BF16)}
    here = allowed.get(kind, (Precision.FP32,))
    if precision not in here:
        raise InputError(f"--precision {precision.value} is not available on {kind}; there: "
                         f"{', '.join(p.value for p in here)}")
    if precision is Precision.BF16 and kind == "cuda" and not torch.cuda.is_bf16_supported():
        raise InputError("--precision bf16 needs a GPU with bfloat16 support (Ampere or newer); use fp16 or fp32")
    return precision


def autocast(precision: Precision, device_type: str) -> AbstractContextManager:
    """The context the forward and loss run in."""
    if precision is Precision.FP32:
        return nullcontext()
    return torch.autocast(device_type=device_type, dtype=precision.dtype)


def grad_scaler(precision: Precision, device_type: str) -> torch.amp.GradScaler:
    """Loss scaling for float16 (a pass-through, disabled scaler otherwise)."""
    return torch.amp.GradScaler(device_type, enabled=precision is Precision.FP16)
