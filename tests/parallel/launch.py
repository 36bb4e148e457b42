"""Starting a test's process group: through torchrun, as users do, or as bare processes with the environment a
launcher would set (no agent to kill the survivors, so a test sees what the processes themselves do)."""

import os
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_S = 300  # a hang fails the test instead of the suite; a 2-process tiny run takes about 20 s on 2 cores


@dataclass(frozen=True)
class Finished:
    codes: list[int]
    stderr: str


def _env(**extra: str) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    return {**inherited, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), **extra}


def torchrun(args: list[str], nproc: int = 2) -> Finished:
    """`torchrun --standalone --nproc-per-node nproc -m tests.parallel.ranks ARGS`."""
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           str(nproc), "-m", "tests.parallel.ranks", *args], cwd=ROOT, env=_env(),
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    return Finished([done.returncode], done.stderr)


def bare_ranks(args: list[str], nproc: int = 2) -> Finished:
    """`nproc` processes of `python -m tests.parallel.ranks ARGS` with RANK, WORLD_SIZE, ... set by hand."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, "-m", "tests.parallel.ranks", *args], cwd=ROOT, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=_env(RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(nproc),
                                       LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)))
             for r in range(nproc)]
    try:
        errs = [p.communicate(timeout=TIMEOUT_S)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    return Finished([p.returncode for p in procs], "".join(errs))
