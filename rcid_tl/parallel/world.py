"""Which process this is among several started by torchrun or `accelerate launch` (both describe the group in RANK,
WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), joining and leaving that group, and making sure that when a
process fails, exactly one process says why."""

import logging
import os
import contextlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from rcid_tl import progress
from rcid_tl.errors import InputError

log = logging.getLogger(__name__)
FAILURE_KEY = "rcid_tl/first_failure"  # set once, by the first process that fails; the store is the launcher's
# How long a collective waits for a missing process before it raises. Gloo notices a process that died at once (its
# connection closes); this bounds the wait for one that hangs. RCID_TL_COLLECTIVE_TIMEOUT_S overrides it.
DEFAULT_TIMEOUT_S = 1800


@dataclass(frozen=True)
class World:
    """This process's place in the group: global rank, number of processes, rank on this machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files and reports progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """The current group (set up by `joined`, or by the caller's own `init_process_group`), or a single process."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))
    return World()


def launched() -> bool:
    """Whether a launcher started this process as one of several (WORLD_SIZE > 1 in the environment)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1


@contextmanager
def joined() -> Iterator[World]:
    """Join the process group the launcher describes (a no-op for a single process) and leave it afterwards.

    Gloo carries CPU tensors and NCCL CUDA ones when this machine has GPUs; each process's default CUDA device is
    its LOCAL_RANK, so `--device cuda` puts every process on its own GPU. Progress, log lines and printed output
    come from rank 0 only (the other ranks' stdout and stderr are silenced inside the block). When the body
    raises, the first process to fail re-raises (its caller says why) and every later one exits quietly with
    status 1: they fail because a peer went away."""
    if not launched():
        yield World()
        return
    if not dist.is_available():
        raise InputError("this PyTorch build has no torch.distributed; run in one process (without torchrun)")
    for name in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise InputError(f"WORLD_SIZE is set but {name} is not; start several processes with torchrun or "
                             f"accelerate launch, which set both")
    local_rank = int(os.environ["LOCAL_RANK"])
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    backend = "cpu:gloo,cuda:nccl" if gpus and dist.is_nccl_available() else "gloo"
    if local_rank < gpus:
        torch.cuda.set_device(local_rank)
    timeout = timedelta(seconds=float(os.environ.get("RCID_TL_COLLECTIVE_TIMEOUT_S", DEFAULT_TIMEOUT_S)))
    dist.init_process_group(backend, timeout=timeout)
    here = world()
    shown, quiet = progress.ENABLED["value"], contextlib.ExitStack()
    if not here.main:  # one voice: rank 0 prints; the others' output would repeat it
        logging.disable(logging.WARNING)  # any logger's level, handlers holding the real stderr included
        progress.set_progress(False)
        sink = quiet.enter_context(open(os.devnull, "w"))
        quiet.enter_context(contextlib.redirect_stdout(sink))
        quiet.enter_context(contextlib.redirect_stderr(sink))
    try:
        with quiet:
            yield here
    except SystemExit:
        raise
    except BaseException as err:
        if not report_failure(str(err) or type(err).__name__):
            raise SystemExit(1) from None  # a peer failed first and says why; this process only stops
        if isinstance(err, InputError):  # the caller says it in one line; name the process it came from
            raise InputError(f"{err} (rank {here.rank} of {here.size})") from None
        raise  # the caller reports it: a traceback for a bug
    finally:
        if not here.main:
            logging.disable(logging.NOTSET)
        progress.set_progress(shown)
        if dist.is_initialized():
            dist.destroy_process_group()


def check_rank_device(device: str) -> None:
    """Under a launcher, `--device cuda` needs one GPU per process on each machine (LOCAL_RANK indexes them)."""
    w = world()
    if not w.distributed or device.strip() != "cuda":
        return
    if w.local_rank >= torch.cuda.device_count():
        raise InputError(f"--device cuda with {os.environ.get('LOCAL_WORLD_SIZE', '?')} processes on this machine "
                         f"needs a GPU each, but it has {torch.cuda.device_count()}; start fewer processes per "
                         f"machine (--nproc-per-node)")


def report_failure(message: str) -> bool:
    """Record that this process failed; True if it is the first in the group to do so (or runs alone) and should
    say why. The others stay quiet: they fail only because a peer went away, so one failure prints one message."""
    w = world()
    if not w.distributed:
        return True
    try:
        # inside the try: a private module, absent from torch builds without distributed support
        from torch.distributed import distributed_c10d

        store = distributed_c10d._get_default_store()  # the launcher's key-value store, reachable without collectives
        store.set_timeout(timedelta(seconds=5))
        line = f"rank {w.rank}: {message}"
        return store.compare_set(FAILURE_KEY, "", line).decode() == line
    except Exception:  # noqa: BLE001 — the store went with the process hosting it, which failed first and spoke
        return False
