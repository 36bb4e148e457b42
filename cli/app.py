"""The Typer app: one module per command; bad input becomes one line on stderr and exit code 2, Ctrl-C one line and
exit code 130, and the library's progress log lines go to stderr."""

import logging
import os
import sys
import warnings

import typer

from rcid_tl.cli.fv import fv_app
from rcid_tl.cli.distill import distill
from rcid_tl.cli.evaluate import evaluate
from rcid_tl.cli.knockout import knockout
from rcid_tl.cli.models import models
from rcid_tl.cli.checkpoints import checkpoints
from rcid_tl.cli.consistency import consistency
from rcid_tl.cli.patch import patch
from rcid_tl.errors import InputError

app = typer.Typer(
    name="rcid-tl", no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
    help="Mechanistic interpretability of knowledge distillation on TransformerLens hooked models.",
)
app.command()(models)
app.command()(patch)
app.command()(knockout)
app.command()(checkpoints)
app.command()(consistency)
app.command()(distill)
app.command()(evaluate)
app.add_typer(fv_app, name="fv")


def main() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress reports; HF's weight-loading bar is noise
    # The library logs progress and notes at INFO and never prints; the CLI shows them on stderr, so a run whose
    # stderr goes to a file (nohup, CI, `2> log`) still says how far it got. Removed again on exit because tests
    # call main() many times in one process.
    library, handler = logging.getLogger("rcid_tl"), logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("rcid-tl: %(message)s"))
    level = library.level
    library.addHandler(handler)
    library.setLevel(logging.INFO)
    try:
        app()
    except InputError as err:
        print(f"rcid-tl: error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt as err:  # Ctrl-C outside a command (typer handles those, see below)
        _interrupted(err)
    except SystemExit as exit_:
        if exit_.code != 130:
            raise
        _interrupted(_interrupt_in(exit_))
    finally:
        library.removeHandler(handler)
        library.setLevel(level)


def _interrupt_in(exit_: SystemExit) -> KeyboardInterrupt:
    # Typer turns Ctrl-C inside a command into a silent exit 130 raised from the KeyboardInterrupt; find it for
    # its message (the trainer's says which step a re-run resumes from).
    seen: BaseException | None = exit_
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__cause__ or seen.__context__
    return KeyboardInterrupt()


def _interrupted(err: KeyboardInterrupt) -> None:
    # Every file is written atomically (rcid_tl.artifacts), so an interrupted run leaves whole files or none.
    print(f"rcid-tl: interrupted; {str(err) or 'no file was left half-written'}", file=sys.stderr)
    sys.exit(130)
