"""`taskclf features`: build per-minute feature partitions."""

from __future__ import annotations

import typer

app = typer.Typer(help="Build per-minute feature rows from ingested events.", no_args_is_help=True)
