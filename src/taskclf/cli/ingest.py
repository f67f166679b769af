"""`taskclf ingest`: bring ActivityWatch data in (export files or a live server)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from taskclf.cli._common import console, get_state, require_range
from taskclf.core.errors import InputError
from taskclf.core.time import parse_date

if TYPE_CHECKING:
    from taskclf.adapters.activitywatch._ingest import IngestSummary
    from taskclf.core.config import Config
    from taskclf.core.paths import Layout

app = typer.Typer(
    help="Ingest ActivityWatch data (export JSON or a running server) into privacy-safe events.",
    no_args_is_help=True,
)


def _render(summary: IngestSummary) -> None:
    for note in summary.notes:
        console.print(f"[yellow]note:[/] {note}")
    table = Table(title=f"Ingested events of user {summary.user_id}")
    table.add_column("UTC date")
    table.add_column("added", justify="right")
    table.add_column("extended", justify="right")
    table.add_column("total", justify="right")
    for p in summary.partitions:
        table.add_row(p.day.isoformat(), str(p.added), str(p.updated), str(p.total))
    console.print(table)
    kinds = ", ".join(f"{k} {v}" for k, v in summary.events_by_kind.items()) or "none"
    console.print(
        f"{summary.events_in} events read ({kinds} after de-duplication); "
        f"{summary.added} new, {summary.updated} extended."
    )


def _note_default_config(layout: Layout, config: Config, user_id: str | None) -> None:
    """Say which user id and time zone a home without ``config.toml`` uses."""
    if layout.config_file.exists():
        return
    zone = config.timezone_for(user_id or config.user_id)
    console.print(
        f"[yellow]note:[/] no '{layout.config_file}' yet: user id "
        f"'{user_id or config.user_id}', time zone '{zone}' (this machine's); local days and "
        "hours follow it. Set user_id and timezone there to change them."
    )


@app.command("aw")
def aw(
    ctx: typer.Context,
    input_path: Path | None = typer.Option(
        None, "--input", "-i", help="ActivityWatch export JSON file.", dir_okay=False
    ),
    afk_csv: Path | None = typer.Option(
        None, "--afk-csv", help="AFK events CSV (timestamp,duration,status) of the same person."
    ),
    user_id: str | None = typer.Option(None, "--user-id", help="User id (default: config)."),
    device_id: str | None = typer.Option(
        None, "--device-id", help="Device id (default: each bucket's hostname)."
    ),
) -> None:
    """Ingest an ActivityWatch export file."""
    from taskclf.adapters.activitywatch._ingest import ingest_export

    if input_path is None:
        raise InputError("give the export file with --input FILE")
    state = get_state(ctx)
    _note_default_config(state.layout, state.config, user_id)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as bar:
        bar.add_task(f"ingesting {input_path.name}", total=None)
        summary = ingest_export(
            state.layout, input_path, afk_csv=afk_csv, user_id=user_id, device_id=device_id
        )
    _render(summary)


@app.command("live")
def live(
    ctx: typer.Context,
    date_from: str | None = typer.Option(None, "--from", help="First UTC date, YYYY-MM-DD."),
    date_to: str | None = typer.Option(None, "--to", help="Last UTC date (inclusive)."),
    aw_host: str | None = typer.Option(
        None, "--aw-host", help="ActivityWatch server URL (default: config aw_host)."
    ),
    user_id: str | None = typer.Option(None, "--user-id", help="User id (default: config)."),
    device_id: str | None = typer.Option(
        None, "--device-id", help="Device id (default: each bucket's hostname)."
    ),
) -> None:
    """Pull a date range from a running ActivityWatch server."""
    from taskclf.adapters.activitywatch._ingest import ingest_live

    d_from, d_to = require_range(
        parse_date(date_from, field="--from") if date_from is not None else None,
        parse_date(date_to, field="--to") if date_to is not None else None,
    )
    state = get_state(ctx)
    _note_default_config(state.layout, state.config, user_id)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console) as bar:
        task = bar.add_task("reading buckets", total=None)

        def on_bucket(bucket_id: str, n: int) -> None:
            bar.update(task, description=f"read {n} events of {bucket_id}")

        summary = ingest_live(
            state.layout,
            d_from,
            d_to,
            aw_host=aw_host,
            user_id=user_id,
            device_id=device_id,
            on_bucket=on_bucket,
        )
    _render(summary)
