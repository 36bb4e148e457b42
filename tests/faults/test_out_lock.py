"""One run per --out: while a process holds it, every command that writes an --out refuses in one line naming the
holder's pid; a holder killed with SIGKILL leaves nothing stuck (rcid_tl.out_lock)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rcid_tl.out_lock import LOCK_NAME, claim_out, release_outs

HOLD = "import sys, time; from rcid_tl.out_lock import claim_out; claim_out(sys.argv[1]); print('held', flush=True); " \
       "time.sleep(120)"

# every command that writes an --out (or its fv equivalent), with the options it needs before it checks --out
COMMANDS = {
    "patch": ["patch"], "knockout": ["knockout"], "heads": ["heads"], "checkpoints": ["checkpoints"],
    "consistency": ["consistency", "--student", "world-gpt2"], "distill": ["distill"], "distill-kv": ["distill-kv"],
    "distill-multiteacher": ["distill-multiteacher", "--teachers", "world-gpt2,world-qwen2"],
    "evaluate": ["evaluate"], "diagnose-losses": ["diagnose-losses"], "study": ["study"], "validate": ["validate"],
    "fv run": ["fv", "run", "--out-base-dir"],
}


@pytest.fixture
def holder(tmp_path):
    """A second process holding tmp_path/out; yields (its Popen, the directory)."""
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    assert proc.stdout.readline().strip() == "held"
    yield proc, out
    proc.kill()
    proc.wait()


def refusal(run, out: Path, pid: int) -> None:
    assert run.code == 2 and "Traceback" not in run.stderr + run.stdout, run.stderr
    assert run.stderr.strip().splitlines() == [
        f"rcid-tl: error: {'--out-base-dir' if 'out-base-dir' in run.stderr else '--out'} {str(out)!r} is in use by "
        f"another rcid-tl run (pid {pid}); wait for it to finish or choose another "
        f"{'--out-base-dir' if 'out-base-dir' in run.stderr else '--out'}"], run.stderr


@pytest.mark.parametrize("command", list(COMMANDS))
def test_second_run_on_the_same_out_is_refused_in_one_line(cli, holder, command):
    proc, out = holder
    args = COMMANDS[command]
    run = cli(*args, *([] if args[-1] == "--out-base-dir" else ["--out"]), out)
    refusal(run, out, proc.pid)
    assert os.listdir(out) == [LOCK_NAME]  # the refused run touched nothing


def test_killed_holder_leaves_nothing_stuck(cli, holder, tiny_gpt2_dir):
    proc, out = holder
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / LOCK_NAME).read_text().strip() == str(proc.pid)  # the file stays; the kernel dropped the lock
    run = cli("patch", "--model", tiny_gpt2_dir, "--task", "greater-than", "--n", "2", "--out", out)
    assert run.code == 0, run.stderr
    assert "patch.json" in os.listdir(out) and LOCK_NAME not in os.listdir(out)  # a finished run leaves no lock


def test_claims_are_per_process_and_released(tmp_path):
    out = tmp_path / "a" / "b"
    claim_out(out)
    claim_out(out)  # the same process again: already its own
    assert (out / LOCK_NAME).read_text().strip() == str(os.getpid())
    release_outs()
    assert not (tmp_path / "a").exists()  # nothing was written: the directories the claim made are gone again


def test_a_claim_clears_what_killed_runs_left(tmp_path):
    out = tmp_path / "out"
    (out / "student" / ".model.safetensors.0a1b2c3d.tmp").parent.mkdir(parents=True)
    (out / "student" / ".model.safetensors.0a1b2c3d.tmp").write_bytes(b"half")
    (out / ".student.0a1b2c3d.old").mkdir()
    (out / ".patch.json.deadbeef.tmp").write_text("{")
    (out / ".keep").write_text("a user's own hidden file")
    claim_out(out)
    release_outs()
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [".keep", "student"]
