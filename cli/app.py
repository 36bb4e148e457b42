"""The Typer app: one module per command; bad input (command-line errors included) becomes one line on stderr and
exit code 2, Ctrl-C one line and exit code 130, and the library's progress log lines go to stderr."""

import contextlib
import functools
import logging
import os
import sys
import warnings
from collections.abc import Callable

import typer

try:  # recent typer vendors click as typer._click; older releases use click itself
    from typer._click import exceptions as click_errors
except ImportError:
    from click import exceptions as click_errors

from rcid_tl.cli.fv import fv_app
from rcid_tl.cli.diagnose import diagnose_losses
from rcid_tl.cli.distill import distill
from rcid_tl.cli.evaluate import evaluate
from rcid_tl.cli.heads import heads
from rcid_tl.cli.kv import distill_kv
from rcid_tl.cli.knockout import knockout
from rcid_tl.cli.models import models
from rcid_tl.cli.multiteacher import distill_multiteacher
from rcid_tl.cli.checkpoints import checkpoints
from rcid_tl.cli.consistency import consistency
from rcid_tl.cli.patch import patch
from rcid_tl.cli.study import study
from rcid_tl.cli.validate import validate
from rcid_tl.allocator import keep_freed_memory
from rcid_tl.errors import InputError
from rcid_tl.checks import check_model_path
from rcid_tl.out_lock import release_outs
from rcid_tl.progress import announce_after

app = typer.Typer(
    name="rcid-tl", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    help="Mechanistic interpretability of knowledge distillation on TransformerLens hooked models.",
)
app.command()(models)
app.command()(patch)
app.command()(knockout)
app.command()(heads)
app.command()(checkpoints)
app.command()(consistency)
app.command()(distill)
app.command("distill-kv")(distill_kv)
app.command("distill-multiteacher")(distill_multiteacher)
app.command()(evaluate)
app.command("diagnose-losses")(diagnose_losses)
app.command()(study)
app.command()(validate)
app.add_typer(fv_app, name="fv")


MODEL_OPTIONS = ("model", "teacher", "student")
STARTUP_NOTE_S = 5.0  # a command still running after this long gets a line on stderr (the issue's ~5 s); input
# checked before the imports (options, model paths) still gets its one-line answer alone


class Interrupted(Exception):
    """Ctrl-C inside a command, carried past Typer (which would turn a KeyboardInterrupt into a bare exit code)."""


def _interruptible(command: Callable) -> Callable:
    @functools.wraps(command)  # keeps the signature and annotations Typer reads the options from
    def run(*args, **kwargs):
        try:
            for option in MODEL_OPTIONS:  # a mistyped path is answered before the slow imports
                if isinstance(kwargs.get(option), str):
                    check_model_path(kwargs[option])
            # a command validates its options in milliseconds, then imports the library: say so if that is slow
            with announce_after(STARTUP_NOTE_S, f"{command.__name__.replace('_', ' ')}: loading torch and transformers"):
                return command(*args, **kwargs)
        except KeyboardInterrupt as err:
            raise Interrupted(str(err)) from None
        finally:
            release_outs()  # the --out this command claimed (rcid_tl.out_lock) is free for the next run

    return run


for _typer in (app, fv_app):
    for _info in _typer.registered_commands:
        _info.callback = _interruptible(_info.callback)


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    _quiet_transformers()
    keep_freed_memory()  # a command's sweeps and training reuse freed memory instead of faulting in new pages
    # The library logs progress and notes at INFO and never prints; the CLI shows them on stderr, so a run whose
    # stderr goes to a file (nohup, CI, `2> log`) still says how far it got. Removed again on exit because tests
    # call main() many times in one process.
    library, handler = logging.getLogger("rcid_tl"), logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rcid-tl: %(message)s"))
    level = library.level
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    try:
        # not standalone: command-line errors come back to us, to be said in one line like every other bad input
        with _process_group():  # several processes under torchrun / accelerate launch; a no-op otherwise
            code = app(standalone_mode=False)
    except click_errors.NoArgsIsHelpError as err:
        err.show()  # a bare `rcid-tl` or `rcid-tl fv`: the help, as before
        code = err.exit_code
    except click_errors.NoSuchOption as err:
        _error(err.format_message() + _taken_by(err))
    except click_errors.UsageError as err:
        _error(err.format_message())
    except InputError as err:
        _error(str(err))
    except Interrupted as err:
        _interrupted(str(err))
    except (KeyboardInterrupt, typer.Abort):  # Ctrl-C while parsing, or end of input at a prompt
        _interrupted("")
    finally:
        library.removeHandler(handler)
        library.setLevel(level)
    sys.exit(code if isinstance(code, int) else 0)


def _quiet_transformers() -> None:
    """Errors only, and no weight-loading bar (our own progress reports it), without importing transformers: that
    import alone takes about a second, and `--help` or a bad option must answer before it would finish."""
    if "transformers" in sys.modules:  # imported already (a test, a script calling main()): set it directly
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    else:  # read by transformers and huggingface_hub when they are first imported
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _process_group():
    """The torch.distributed group a launcher describes (WORLD_SIZE > 1), joined for the command's duration; torch is
    imported only then, so `--help` stays fast."""
    if int(os.environ.get("WORLD_SIZE", "1") or 1) > 1:
        from rcid_tl.parallel.world import joined

        return joined()
    return contextlib.nullcontext()


def _taken_by(err: click_errors.NoSuchOption) -> str:
    """Which sibling command takes an option given to the wrong one: `--kv-loss` on `distill` is an option of
    `distill-kv` (siblings: the commands named like this one up to the first dash)."""
    if err.ctx is None or err.ctx.parent is None:
        return ""
    group, here = err.ctx.parent.command, err.ctx.info_name or ""
    family, path, ctx = here.split("-")[0], ["rcid-tl"], err.ctx.parent
    while ctx.parent is not None:  # a subgroup such as `fv` (the root's own name is argv[0]: not said)
        path.insert(1, ctx.info_name)
        ctx = ctx.parent
    takers = [f"`{' '.join([*path, name])}`" for name, command in group.commands.items()
              if name != here and name.split("-")[0] == family
              and any(err.option_name in p.opts for p in command.params if not getattr(p, "hidden", False))]
    return f"; {' and '.join(takers)} take{'s' if len(takers) == 1 else ''} it" if takers else ""


def _error(message: str) -> None:
    print(f"rcid-tl: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)


def _interrupted(message: str) -> None:
    # Every file is written atomically (rcid_tl.artifacts), so an interrupted run leaves whole files or none.
    print(f"rcid-tl: interrupted; {message or 'no file was left half-written'}", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":  # python -m rcid_tl.cli.app, as torchrun -m runs it
    main()
