"""`taskclf report`: daily reports."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Summarize predictions into daily reports (JSON, CSV, Parquet, PNG).", no_args_is_help=True
)
