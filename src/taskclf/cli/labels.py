"""`taskclf labels`: the label store, import/export, quick labeling and the labeling queue."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Manage label spans: import/export, add blocks, label now, project onto minutes, queue.",
    no_args_is_help=True,
)
