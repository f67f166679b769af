"""`taskclf demo`: run the product end to end on synthetic data."""

from __future__ import annotations

import typer
from rich.table import Table

from taskclf import __version__
from taskclf.cli._common import console, get_state
from taskclf.core.schema import SCHEMAS


def demo(ctx: typer.Context) -> None:
    """Show the version, the home layout and the feature schemas."""
    state = get_state(ctx)
    console.print(f"[bold]taskclf {__version__}[/]")
    layout = Table(title="Home layout")
    layout.add_column("what")
    layout.add_column("path")
    for name, path in state.layout.describe().items():
        layout.add_row(name, str(path))
    console.print(layout)
    schemas = Table(title="Feature schemas")
    for col in ("version", "columns", "model features", "categorical", "hash"):
        schemas.add_column(col)
    for version, schema in SCHEMAS.items():
        schemas.add_row(
            version,
            str(len(schema.COLUMNS)),
            str(len(schema.feature_columns())),
            ", ".join(schema.categorical_columns()),
            schema.SCHEMA_HASH,
        )
    console.print(schemas)
