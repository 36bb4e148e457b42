"""Every option of the three distillation commands × every objective (`distill`: the logit and representation methods,
`distill-kv`, `distill-multiteacher`): an option a command shows changes what the command hands the library, and an
option of another objective is refused in one line that names it and the command that takes it. The options are read
from the commands themselves, so a new one is covered (or this test asks for a sample value of it). The library's run
functions are replaced by a recorder, so nothing is loaded or trained."""

import dataclasses
import json

import pytest
import typer

from rcid_tl.cli.app import app
from rcid_tl.errors import InputError

GROUP = typer.main.get_command(app)
OBJECTIVES = ("distill", "distill-kv", "distill-multiteacher")
COMMANDS = {name: GROUP.commands[name] for name in OBJECTIVES}
RUNNERS = {"distill": ("rcid_tl.distill.run", "run_distill"), "distill-kv": ("rcid_tl.kv.run", "run_kv_distill"),
           "distill-multiteacher": ("rcid_tl.multiteacher.run", "run_multiteacher")}
BASE = {"distill": [], "distill-kv": [], "distill-multiteacher": ["--teachers", "world-gpt2-cot,world-qwen2-cot"]}
# a value other than the default for each option whose own type does not give one (strings, choices, None defaults)
SAMPLES = {
    "--teacher": ["world-qwen2-cot"], "--student": ["world-qwen2"], "--method": ["fitnets"], "--task": ["greater-than"],
    "--checkpoint-site": ["resid_post"], "--checkpoints": ["{tmp}/checkpoints.json"], "--text": ["none"],
    "--out": ["{tmp}/elsewhere"], "--device": ["cuda"], "--corruption": ["abc"], "--precision": ["bf16"],
    "--teacher-device-map": ["auto"], "--refit-every": ["5"], "--kv-loss": ["cosine"], "--cka-layers": ["last"],
    "--alignment": ["contrastive"], "--codi-layers": ["last"], "--kv-compression": ["4"],
    "--teachers": ["world-qwen2-cot,world-gpt2-cot"], "--fusion": ["similarity"], "--teacher-weights": ["1,3"],
    "--projection": ["flat"], "--time-alignment": ["hard"], "--layer-map": ["cka"], "--student-reasoning": ["full"],
    "--objective": ["kv"], "--checkpoint-every": ["100"],
    "--gen-n": ["64"], "--gen-len": ["32"], "--gen-seed": ["3"], "--gen-temperature": ["0.5"],
}
# options that only mean something beside another: (arguments, the baseline they are compared with)
PAIRED = {
    "--use-teacher-attention": (["--attention-weighted-kv", "--use-teacher-attention"], ["--attention-weighted-kv"]),
    "--gradient-checkpointing": (["--device", "cuda", "--gradient-checkpointing"], ["--device", "cuda"]),
    # how teacher-text is sampled: beside --text teacher-text
    **{option: (["--text", "teacher-text", option, *SAMPLES[option]], ["--text", "teacher-text"])
       for option in ("--gen-n", "--gen-len", "--gen-seed", "--gen-temperature")},
}


def _options(command) -> dict[str, object]:
    return {p.opts[0]: p for p in command.params if p.param_type_name == "option" and p.name != "help"}


def _sample(param) -> list[str]:
    """Arguments giving `param` a valid value other than its default."""
    name = param.opts[0]
    if name in SAMPLES:
        return [name, *SAMPLES[name]]
    if param.is_flag:
        return [name]
    if isinstance(param.default, bool) or param.default is None:
        raise AssertionError(f"add a sample value of {name} to SAMPLES")
    if isinstance(param.default, int):  # doubled, so that multiples (--save-every of the log interval) stay valid
        return [name, str(param.default * 2 or 1)]
    if isinstance(param.default, float):
        return [name, str(param.default * 2 or 0.5)]
    raise AssertionError(f"add a sample value of {name} to SAMPLES")


MATRIX = sorted({(objective, option) for command in COMMANDS.values() for option in _options(command)
                 for objective in OBJECTIVES})


class Recorded(InputError):
    """Raised by the recorder in place of training: the CLI says it in one line, like any InputError."""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One directory for the whole matrix, so that the baseline runs can be shared (the output path is an option)."""
    root = tmp_path_factory.mktemp("distill-options")
    (root / "checkpoints.json").write_text(json.dumps({"checkpoints": [{"layer": 0, "position": "end"}]}))
    return root


@pytest.fixture
def recorded(monkeypatch):
    """The library's run functions replaced by a recorder of what each was handed."""
    import importlib

    import rcid_tl.cli.app

    calls = []

    def recorder(*args, command="", **kwargs):  # the command line itself (`command`) is not a setting
        calls.append((args, kwargs))
        raise Recorded("recorded")

    for module, name in RUNNERS.values():
        monkeypatch.setattr(importlib.import_module(module), name, recorder)
    for module in ("rcid_tl.distill.config", "rcid_tl.kv.config", "rcid_tl.multiteacher.run"):
        # --device cuda must pass on a machine without a GPU: the device is handed on, never used here
        monkeypatch.setattr(importlib.import_module(module), "check_device", lambda spec: spec)
    # main() runs the click group Typer builds from the app; built once here instead of on every call (~0.2 s each)
    monkeypatch.setattr(rcid_tl.cli.app, "app", GROUP)
    return calls


def _argv(workdir, objective: str, args: list[str]) -> list:
    return [objective, *BASE[objective], "--out", workdir / "base", *[a.format(tmp=workdir) for a in args]]


def _handed(calls) -> tuple:
    """What the last run handed the library's run function (its config as a dict, the rest as given)."""
    args, kwargs = calls.pop()
    assert not calls
    return tuple(dataclasses.asdict(a) if dataclasses.is_dataclass(a) else a for a in args), kwargs


BASELINES = {}


def _baseline(cli, calls, workdir, objective: str, args: list[str]) -> tuple:
    key = (objective, *args)
    if key not in BASELINES:
        run = cli(*_argv(workdir, objective, args))
        assert run.stderr.strip().endswith("rcid-tl: error: recorded"), run.stderr
        BASELINES[key] = _handed(calls)
    return BASELINES[key]


@pytest.mark.parametrize(("objective", "option"), MATRIX, ids=[f"{o} {p}" for o, p in MATRIX])
def test_each_option_is_used_or_refused(objective, option, cli, recorded, workdir):
    options = _options(COMMANDS[objective])
    param = options.get(option) or next(_options(c)[option] for c in COMMANDS.values() if option in _options(c))
    if option in options:
        args, baseline = PAIRED.get(option, (_sample(param), []))
    else:  # the option alone, so that the refusal is about it
        args = _sample(param)
    run = cli(*_argv(workdir, objective, args))
    if option in options and (not param.hidden or recorded):  # its own option, or a hidden old spelling it reads
        assert run.stderr.strip().endswith("rcid-tl: error: recorded"), run.stderr
        changed = _handed(recorded)
        assert changed != _baseline(cli, recorded, workdir, objective, baseline), f"{objective} ignores {args}"
        return
    # another objective's option, or an old spelling this command refuses: one line naming it and where it belongs
    lines = run.stderr.strip().splitlines()
    assert run.code == 2 and len(lines) == 1 and lines[0].startswith("rcid-tl: error: "), run.stderr
    assert option in lines[0] and "Traceback" not in run.stderr + run.stdout, lines[0]
    takers = [f"`rcid-tl {name}`" for name, c in COMMANDS.items()
              if name != objective and option in _options(c) and not _options(c)[option].hidden]
    if takers or option in options:  # a hidden old spelling names the command that replaced it
        takers = takers or [f"`rcid-tl {name}`" for name in OBJECTIVES if name != objective]
        assert any(taker in lines[0] for taker in takers), f"{lines[0]!r} names none of {takers}"
    assert not recorded, "a refused option reached the library"


def test_the_matrix_spans_the_three_objectives():
    assert len(MATRIX) == 3 * len({o for c in COMMANDS.values() for o in _options(c)}) >= 3 * 50
