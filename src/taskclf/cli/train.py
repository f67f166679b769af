"""`taskclf train`: datasets, LightGBM training, evaluation, calibration and reject tuning."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="Build datasets, train and evaluate models, fit calibrators, tune reject thresholds.",
    no_args_is_help=True,
)
