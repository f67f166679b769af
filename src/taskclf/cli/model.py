"""`taskclf model`: the model registry."""

from __future__ import annotations

import typer

app = typer.Typer(help="List, inspect and activate model bundles.", no_args_is_help=True)
