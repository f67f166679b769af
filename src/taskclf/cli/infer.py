"""`taskclf infer`: batch, online and baseline inference."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Run inference: batch over a date range, online against a live server, or rule baseline.",
    no_args_is_help=True,
)
