"""What a distillation run needs from its process group before anything loads: global batches that split evenly,
a GPU per process, no teacher spread over GPUs as well, and a note where per-process means differ from global ones."""

import logging

from rcid_tl.distill.config import DistillConfig
from rcid_tl.distill.methods import Method
from rcid_tl.errors import InputError
from rcid_tl.models.placement import check_device_map
from rcid_tl.parallel import world
from rcid_tl.parallel.world import check_rank_device

log = logging.getLogger(__name__)


def check_world(config: DistillConfig, teacher_device_map: str | None = None) -> None:
    """Under torchrun: every global batch splits evenly over the processes, `--device cuda` finds a GPU per
    process, and the teacher is not also spread over GPUs. Token-weighted losses are averaged per process (noted in
    the log)."""
    if teacher_device_map is not None:
        check_device_map(teacher_device_map)
    w = world()
    if not w.distributed:
        return
    if teacher_device_map is not None:
        raise InputError("--teacher-device-map spreads one teacher over this machine's GPUs in one process; under "
                         "torchrun each process needs its own copy on its own --device")
    check_rank_device(config.device)
    splits = [("--batch-size", config.batch_size, True), ("--mix-rows", config.mix_rows, config.mix_weight > 0),
              ("--pretrain-rows", config.pretrain_rows, config.pretrain.steps > 0)]
    for option, rows, used in splits:
        if used and rows % w.size:
            raise InputError(f"{option} {rows} does not split evenly over {w.size} processes; use a multiple of "
                             f"{w.size}")
    if config.kl_all_tokens or config.method is Method.FITNETS:
        log.warning("token-averaged losses (--kl-all-tokens, fitnets) are averaged per process, then over the "
                    "%d processes: equal to one process's run only when every example has the same length", w.size)
