"""`taskclf policy`: the inference policy binding model, calibrators and thresholds."""

from __future__ import annotations

import typer

app = typer.Typer(help="Show, create or remove the inference policy.", no_args_is_help=True)
