"""`taskclf features`: build per-minute feature partitions."""

from __future__ import annotations

from datetime import date
from enum import StrEnum

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from taskclf.cli._common import console, get_state, require_range
from taskclf.core.time import parse_date

app = typer.Typer(help="Build per-minute feature rows from ingested events.", no_args_is_help=True)


class SchemaVersion(StrEnum):
    """Feature schema versions."""

    v1 = "v1"
    v2 = "v2"
    v3 = "v3"


@app.command("build")
def build(
    ctx: typer.Context,
    date_from: str | None = typer.Option(None, "--from", help="First UTC date, YYYY-MM-DD."),
    date_to: str | None = typer.Option(None, "--to", help="Last UTC date (inclusive)."),
    user_id: list[str] | None = typer.Option(
        None, "--user-id", help="User id (repeatable; default: every ingested user)."
    ),
    schema_version: SchemaVersion | None = typer.Option(
        None, "--schema-version", help="Feature schema (default v3)."
    ),
) -> None:
    """Build validated feature partitions for a date range."""
    from taskclf.features.build import build_features_range

    d_from, d_to = require_range(
        parse_date(date_from, field="--from") if date_from is not None else None,
        parse_date(date_to, field="--to") if date_to is not None else None,
    )
    version = (schema_version or SchemaVersion.v3).value
    state = get_state(ctx)
    n_days = (d_to - d_from).days + 1
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), console=console
    ) as bar:
        task = bar.add_task("building features", total=None)

        def on_day(user: str, day: date, rows: int) -> None:
            bar.update(task, advance=1, description=f"{user} {day.isoformat()}: {rows} rows")

        users = list(user_id) if user_id else None
        if users is not None:
            bar.update(task, total=n_days * len(users))
        summary = build_features_range(
            state.layout, d_from, d_to, user_ids=users, schema_version=version, on_day=on_day
        )
    table = Table(title=f"Feature rows (schema {summary.schema_version})")
    table.add_column("user")
    table.add_column("UTC date")
    table.add_column("rows", justify="right")
    for (user, day), rows in sorted(summary.rows.items()):
        table.add_row(user, day.isoformat(), str(rows))
    console.print(table)
    total = sum(summary.rows.values())
    console.print(f"{total} rows in {len(summary.paths)} partitions.")
