"""`taskclf taxonomy`: personal taxonomy of core labels."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Create, validate and show the personal taxonomy (core labels -> your buckets).",
    no_args_is_help=True,
)
