"""Honest help, one test over every command: each default `--help` shows is the default the command runs with, no
help text restates a default by hand unless it is built from the code's constant, commands that pass an option
straight to a library config share its default, and every help example names only options that exist, embedded
models, or a student directory an earlier example creates."""

import dataclasses
import inspect
import re
import shlex

import pytest
import typer

from rcid_tl.cli.app import app
from rcid_tl.consistency.run import ConsistencyConfig, SelectionConfig
from rcid_tl.models.embedded import embedded_names
from rcid_tl.sweeps.knockout import KnockoutConfig
from rcid_tl.sweeps.patch import PatchConfig
from rcid_tl.cli.validate import IOI_FINETUNE_STEPS
from rcid_tl.distill.teacher_text import Generation
from rcid_tl.task_defaults import DEFAULT_N
from rcid_tl.tasks.registry import TaskSpec


def _commands(group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        if hasattr(command, "commands"):  # a group (typer vendors click, so no isinstance)
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


COMMANDS = dict(_commands(typer.main.get_command(app)))
# numbers a help text may state in words ("default 100"), each with the constant it must be built from
STATED_DEFAULTS = {"--n": DEFAULT_N, "--finetune-steps": IOI_FINETUNE_STEPS, "--gen-n": Generation.n,
                   "--gen-len": Generation.length, "--gen-seed": Generation.seed,
                   "--gen-temperature": Generation.temperature}
# commands whose options go straight into a library config (CLI name -> field name where they differ)
LIBRARY_CONFIGS = {
    ("patch",): ((PatchConfig, TaskSpec), {"batch_size": "rows_per_forward"}),
    ("knockout",): ((KnockoutConfig, TaskSpec), {"batch_size": "rows_per_forward"}),
    ("checkpoints",): ((SelectionConfig, TaskSpec), {}),
    ("consistency",): ((ConsistencyConfig, SelectionConfig, TaskSpec), {}),
}


def _plain(value):
    return value.value if hasattr(value, "value") else value


@pytest.mark.parametrize("path", list(COMMANDS), ids=" ".join)
def test_shown_defaults_are_the_defaults_the_command_runs_with(path, cli):
    command = COMMANDS[path]
    signature = inspect.signature(command.callback)
    help_text = " ".join(cli(*path, "--help").stdout.replace("│", " ").split())
    for param in command.params:
        if param.param_type_name != "option" or param.name == "help":
            continue
        default = signature.parameters[param.name].default
        assert param.default == (None if default is inspect.Parameter.empty else default), param.name
        assert not isinstance(param.show_default, str), f"{param.opts[0]}: a default written by hand"
        for stated in re.findall(r"default (\d+)", param.help or ""):
            assert int(stated) == STATED_DEFAULTS.get(param.opts[0]), f"{param.opts[0]} says default {stated}"
        shown = param.show_default is not False and default not in (None, False, "", inspect.Parameter.empty)
        if shown:
            assert f"[default: {default}]" in help_text, f"{param.opts[0]} [default: {default}] not shown"


@pytest.mark.parametrize("path", list(LIBRARY_CONFIGS), ids=" ".join)
def test_command_defaults_equal_the_library_config_defaults(path):
    configs, renamed = LIBRARY_CONFIGS[path]
    library = {}
    for config in reversed(configs):  # the first config that has a field wins
        library |= {f.name: _plain(f.default) for f in dataclasses.fields(config)
                    if f.default is not dataclasses.MISSING}
    compared = 0
    for name, parameter in inspect.signature(COMMANDS[path].callback).parameters.items():
        field = renamed.get(name, name)
        if field in library and field != "n":  # the task count: None in TaskSpec means DEFAULT_N, tested above
            assert _plain(parameter.default) == library[field], f"{path}: --{name} vs {field}"
            compared += 1
    assert compared >= 3


def _examples() -> list[list[str]]:
    examples = []
    for path, command in COMMANDS.items():
        for line in (command.callback.__doc__ or "").splitlines():
            if line.strip().startswith("Example:"):
                examples.append((path, shlex.split(line.split("Example:", 1)[1])))
    return examples


def test_every_command_has_an_example_that_parses_and_runs_offline():
    examples = _examples()
    assert {path for path, _ in examples} >= {p for p in COMMANDS if len(p) == 1}
    outputs = set()
    for path, argv in sorted(examples, key=lambda e: e[0] != ("distill",)):  # distill makes the student others use
        assert argv[0] == "rcid-tl" and tuple(argv[1:1 + len(path)]) == path, argv
        command = COMMANDS[path]
        with command.make_context("rcid-tl", argv[1 + len(path):], resilient_parsing=False) as ctx:
            params = ctx.params
        for option in ("model", "teacher"):
            if option in params:
                assert params[option] in embedded_names(), f"{' '.join(argv)}: --{option} must run offline"
        if "student" in params and params["student"]:
            assert any(params["student"].startswith(str(out)) for out in outputs), " ".join(argv)
        if "out" in params:
            outputs.add(str(params["out"]))
