"""`taskclf ingest`: bring ActivityWatch data in (export files or a live server)."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Ingest ActivityWatch data (export JSON or a running server) into privacy-safe events.",
    no_args_is_help=True,
)
