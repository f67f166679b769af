"""`taskclf ingest`: bring ActivityWatch data in (export files or a live server)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

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
        console.print(Text("note: ", style="yellow") + Text(note))
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


_TIMEZONE = typer.Option(
    None,
    "--timezone",
    help="The person's IANA time zone (e.g. Europe/Warsaw): saved for the user in config.toml "
    "[user_timezones]; local days and hours follow it.",
)


def _config_for(layout: Layout, config: Config, user_id: str | None, zone: str | None) -> None:
    """Save ``--timezone`` for the user, or say which zone a home without a config uses."""
    from taskclf.core.config import Config, config_has_timezone, save_config
    from taskclf.core.types import validate_user_id

    uid = validate_user_id(user_id, where="given with --user-id") if user_id else config.user_id
    if zone is not None:
        before = config.timezone_for(uid)
        # validated first: a bad zone or user id is an error (exit 2) and nothing is written
        zones = {**config.user_timezones, uid: zone}
        save_config(
            layout,
            Config.model_validate({**config.model_dump(), "user_timezones": zones}),
            write_timezone=config_has_timezone(layout),  # the machine's zone is not pinned
        )
        console.print(f"time zone of user '{uid}': {zone} (saved in '{layout.config_file}')")
        if before != zone and layout.features_dir().is_dir():
            console.print(
                f"[yellow]note:[/] it was {before}; rebuild this user's features ('taskclf "
                "features build') so their local days and hours use the new zone"
            )
        return
    if layout.config_file.exists():
        return
    console.print(
        f"[yellow]note:[/] no '{layout.config_file}' yet: user id '{uid}', time zone "
        f"'{config.timezone_for(uid)}' (this machine's); local days and hours follow it. Give "
        "--timezone, or set user_id and timezone there, to change them."
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
    timezone: str | None = _TIMEZONE,
) -> None:
    """Ingest an ActivityWatch export file."""
    from taskclf.adapters.activitywatch._ingest import ingest_export

    if input_path is None:
        raise InputError("give the export file with --input FILE")
    state = get_state(ctx)
    _config_for(state.layout, state.config, user_id, timezone)
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
    timezone: str | None = _TIMEZONE,
) -> None:
    """Pull a date range from a running ActivityWatch server."""
    from taskclf.adapters.activitywatch._ingest import ingest_live

    d_from, d_to = require_range(
        parse_date(date_from, field="--from") if date_from is not None else None,
        parse_date(date_to, field="--to") if date_to is not None else None,
    )
    state = get_state(ctx)
    _config_for(state.layout, state.config, user_id, timezone)
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
