"""Benchmark: how fast `rcid-tl` answers `--help` and a bad option, warm and cold, against a bare `python -c pass`.

Warm: the median of --repeat runs right after one another (files in the page cache, bytecode compiled). Cold: before
each run, every file its modules were loaded from (.py, .pyc, extension modules) is dropped from the page cache with
posix_fadvise(DONTNEED), so the run reads them from disk as after a reboot or a fresh install. Not a test: timings
depend on the machine and its load.

    python experiments/bench_startup.py
    python experiments/bench_startup.py --library   # also `import rcid_tl.sweeps.patch` (torch, transformers)
    python experiments/bench_startup.py --first-progress   # when `rcid-tl patch` first writes to a stderr file
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.util import cache_from_source
from pathlib import Path

CLI = [sys.executable, "-c", "import sys; from rcid_tl.cli.app import main; sys.argv[0] = 'rcid-tl'; main()"]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "rcid-tl --help": [*CLI, "--help"],
    "rcid-tl patch --help": [*CLI, "patch", "--help"],
    "rcid-tl patch --n x (argument error)": [*CLI, "patch", "--n", "x"],
    "rcid-tl distill --steps 0 (bad value)": [*CLI, "distill", "--steps", "0"],
}
LIBRARY = {"import rcid_tl.sweeps.patch": [sys.executable, "-c", "import rcid_tl.sweeps.patch"]}


def loaded_files(command: list[str]) -> list[str]:
    """The files of every module `command` (a `python -c` command) loads: it is run once with an exit hook that
    writes them down."""
    with tempfile.NamedTemporaryFile("r", suffix=".json") as out:
        hook = (f"import atexit, json, sys; atexit.register(lambda: json.dump([getattr(m, '__file__', None) for m in "
                f"list(sys.modules.values())], open({out.name!r}, 'w')))\n")
        subprocess.run([command[0], "-c", hook + command[2], *command[3:]], capture_output=True)
        files = [f for f in json.load(open(out.name)) if f]
    with_bytecode = files + [cache_from_source(f) for f in files if f.endswith(".py")]
    return [f for f in with_bytecode if os.path.isfile(f)] + [os.path.realpath(sys.executable)]


def evict(files: list[str]) -> None:
    for path in files:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, env={**os.environ, "RCID_TL_PNG": "0"})
    return time.perf_counter() - start


def first_progress(out_dir: Path) -> None:
    """Seconds until `rcid-tl patch` (world-gpt2, IOI, 50 examples), its stderr a file, writes its first line, and
    each later line's time: what someone tailing a log sees."""
    log = out_dir / "stderr.log"
    with log.open("w") as stderr:
        start = time.perf_counter()
        process = subprocess.Popen([*CLI, "patch", "--model", "world-gpt2", "--n", "50", "--out", str(out_dir)],
                                   stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, "RCID_TL_PNG": "0"})
        seen, times = 0, []
        while process.poll() is None or log.stat().st_size > seen:
            for line in log.read_bytes()[seen:].splitlines(keepends=True):
                if line.endswith(b"\n"):  # whole lines only; byte offsets, as st_size counts
                    times.append((time.perf_counter() - start, line.decode().rstrip()))
                    seen += len(line)
            time.sleep(0.02)
    for at, line in times:
        print(f"{at:7.2f} s  {line}")
    print(f"first progress after {times[0][0]:.2f} s; exit {process.returncode} after {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--library", action="store_true", help="also time the library import (torch, transformers)")
    parser.add_argument("--first-progress", action="store_true", help="only the first-progress latency of a patch")
    args = parser.parse_args()
    if args.first_progress:
        with tempfile.TemporaryDirectory() as out:
            first_progress(Path(out))
        return
    commands = {**COMMANDS, **(LIBRARY if args.library else {})}
    rows = {}
    for name, command in commands.items():
        files = loaded_files(command)
        cold = []
        for _ in range(args.repeat):
            evict(files)
            cold.append(seconds(command))
        seconds(command)  # warm the cache again
        warm = [seconds(command) for _ in range(args.repeat)]
        rows[name] = statistics.median(warm), statistics.median(cold), len(files)
    base_warm, base_cold, _ = rows["python -c pass"]
    print(f"{'command':<40} {'warm s':>7} {'× pass':>7} {'cold s':>7} {'× pass':>7} {'files':>6}")
    for name, (warm, cold, n_files) in rows.items():
        print(f"{name:<40} {warm:7.3f} {warm / base_warm:7.1f} {cold:7.3f} {cold / base_cold:7.1f} {n_files:6d}")
    print(f"median of {args.repeat} runs each; cold: the loaded files dropped from the page cache before each run")


if __name__ == "__main__":
    main()
