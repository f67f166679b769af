"""The ``taskclf`` command line: global options and group registration only."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import typer
from rich.text import Text

from taskclf import __version__
from taskclf.cli import (
    _train_personalize,
    demo,
    features,
    infer,
    ingest,
    labels,
    model,
    policy,
    report,
    status,
    synth,
    taxonomy,
    train,
)
from taskclf.cli._common import AppState, err_console
from taskclf.core.errors import TaskclfError

app = typer.Typer(
    name="taskclf",
    help="Classify ActivityWatch activity into task types, personalized per user.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"taskclf {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    home: Path | None = typer.Option(
        None, "--home", help="taskclf home directory (default: $TASKCLF_HOME or the user data dir)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """taskclf: local-first task-type classification from ActivityWatch data."""
    ctx.obj = AppState(home=home, debug=debug)


app.add_typer(ingest.app, name="ingest")
app.add_typer(features.app, name="features")
app.add_typer(labels.app, name="labels")
train.app.command("calibrate")(_train_personalize.train_calibrate)
train.app.command("tune-reject")(_train_personalize.train_tune_reject)
app.add_typer(train.app, name="train")
app.add_typer(model.app, name="model")
app.add_typer(policy.app, name="policy")
app.add_typer(taxonomy.app, name="taxonomy")
app.add_typer(infer.app, name="infer")
app.add_typer(report.app, name="report")
app.command(name="demo")(demo.demo)
app.command(name="synth")(synth.synth)
app.command(name="status")(status.status)


def run(argv: list[str] | None = None) -> int:
    """Console-script entry point; maps errors to exit codes (2 = bad input, 1 = bug)."""
    args = sys.argv[1:] if argv is None else argv
    command = typer.main.get_command(app)
    debug = "--debug" in args
    try:
        command.main(args=args, prog_name="taskclf", standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except TaskclfError as exc:
        err_console.print(Text("error: ", style="bold red") + Text(str(exc)), soft_wrap=True)
        if debug:
            err_console.print(traceback.format_exc(), markup=False)
        return 2
    except KeyboardInterrupt:
        err_console.print("Interrupted.")
        return 130
    except OSError as exc:
        if exc.filename is None:  # not about a path the user can fix: treat as a bug below
            return _unexpected(exc, debug)
        # a path given on the command line (or in the home) that cannot be read or written:
        # a directory where a file belongs, a missing folder, no permission, a full disk
        where = exc.filename if exc.filename2 is None else exc.filename2  # a rename's target
        err_console.print(
            Text("error: ", style="bold red")
            + Text(f"cannot use '{where}': {exc.strerror or exc}; check the path and its rights"),
            soft_wrap=True,
        )
        if debug:
            err_console.print(traceback.format_exc(), markup=False)
        return 2
    except Exception as exc:
        return _unexpected(exc, debug)
    return 0


def _unexpected(exc: Exception, debug: bool) -> int:
    """Report an error that is a bug (exit 1): its type and message; the traceback on --debug."""
    err_console.print(
        Text("unexpected error: ", style="bold red") + Text(f"{type(exc).__name__}: {exc}")
    )
    if debug:
        err_console.print(traceback.format_exc(), markup=False)
    else:
        err_console.print("Re-run with --debug for the traceback.")
    return 1


def entrypoint() -> None:
    """``taskclf`` executable."""
    sys.exit(run())
