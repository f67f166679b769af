"""`taskclf report`: daily reports."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import Progress

from taskclf.cli._common import compact_table, console, get_state, require_range
from taskclf.core.errors import InputError
from taskclf.core.time import local_date, parse_date, utc_now

if TYPE_CHECKING:
    from rich.table import Table

    from taskclf.report.daily_files import WrittenReport
    from taskclf.report.summary import UserTotals

app = typer.Typer(
    help="Summarize predictions into daily reports (JSON, CSV, Parquet, PNG).", no_args_is_help=True
)


#: Days ``report summary`` covers without --from/--to (the last week, today included).
DEFAULT_SUMMARY_DAYS = 7

_FROM = typer.Option(None, "--from", help="First local date, YYYY-MM-DD.")
_TO = typer.Option(None, "--to", help="Last local date, YYYY-MM-DD (inclusive).")
_USERS = typer.Option(None, "--user-id", help="Only this user (repeatable; default: every user).")
_TAXONOMY = typer.Option(
    None,
    "--taxonomy",
    help="Re-map predicted labels with this taxonomy YAML (default: keep stored buckets).",
)


@app.command("daily")
def daily(
    ctx: typer.Context,
    day: str | None = typer.Option(
        None, "--date", help="One local date, YYYY-MM-DD (default: today in your time zone)."
    ),
    date_from: str | None = _FROM,
    date_to: str | None = _TO,
    user_id: list[str] | None = _USERS,
    taxonomy: Path | None = _TAXONOMY,
) -> None:
    """Write per-user daily reports from batch predictions and print a summary."""
    from taskclf.report.daily_files import run_daily_reports
    from taskclf.report.plots import chart_workers

    state = get_state(ctx)
    config = state.config
    if day is not None and (date_from is not None or date_to is not None):
        raise InputError("give either --date or --from/--to, not both")
    if day is not None:
        start = end = parse_date(day, field="--date")
    elif date_from is None and date_to is None:
        start = end = local_date(utc_now(), config.timezone)
    else:
        start, end = require_range(
            parse_date(date_from, field="--from") if date_from else None,
            parse_date(date_to, field="--to") if date_to else None,
        )
    with Progress(transient=True, console=console) as bar:
        task = bar.add_task("Writing daily reports", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        written = run_daily_reports(
            state.layout,
            start,
            end,
            user_ids=user_id or None,
            taxonomy_file=taxonomy,
            timezones=config.user_timezones,
            default_timezone=config.timezone,
            progress=advance,
            chart_workers=chart_workers(),
        )
    _render(written)


def _render(written: list[WrittenReport]) -> None:
    table = compact_table(
        "Daily reports",
        [
            ("user", "key"),
            ("date", "key"),
            ("minutes", "num"),
            ("top bucket", "text"),
            ("segments", "num"),
            ("switches\nper hour", "num"),
            ("reject", "num"),
        ],
    )
    for item in written:
        r = item.report
        top = max(r.minutes_by_mapped_label.items(), key=lambda kv: (kv[1], kv[0]), default=None)
        table.add_row(
            escape(r.user_id),
            r.date.isoformat(),
            str(r.total_minutes),
            escape(f"{top[0]} ({top[1]} min)") if top else "-",
            str(r.segment_count),
            f"{r.switches_per_hour:.1f}",
            f"{r.reject_rate:.0%}",
        )
    console.print(table)
    where = ""
    if written:
        where = f" under {escape(os.path.commonpath([w.paths[0].parent for w in written]))}"
    console.print(f"{len(written)} report(s) written{where}")


@app.command("summary")
def summary(
    ctx: typer.Context,
    date_from: str | None = _FROM,
    date_to: str | None = _TO,
    user_id: list[str] | None = _USERS,
    taxonomy: Path | None = _TAXONOMY,
) -> None:
    """Where the time went, per user, over a date range (default: the last 7 days).

    Prints hours per bucket for each user; writes one table of every user's days and a chart
    per user."""
    from taskclf.report.summary import run_range_summary

    state = get_state(ctx)
    config = state.config
    if date_from is None and date_to is None:
        end = local_date(utc_now(), config.timezone)
        start = end - timedelta(days=DEFAULT_SUMMARY_DAYS - 1)
    else:
        start, end = require_range(
            parse_date(date_from, field="--from") if date_from else None,
            parse_date(date_to, field="--to") if date_to else None,
        )
    with Progress(transient=True, console=console) as bar:
        bar.add_task("Summarizing", total=None)
        got = run_range_summary(
            state.layout,
            start,
            end,
            user_ids=user_id or None,
            taxonomy_file=taxonomy,
            timezones=config.user_timezones,
            default_timezone=config.timezone,
        )
    console.print(totals_table(got.totals, start, end))
    console.print(
        f"table of every user and day, and a chart per user: {escape(str(got.paths[0].parent))}"
    )


def totals_table(totals: Sequence[UserTotals], start: date, end: date) -> Table:
    """Per user: days, hours, top buckets, the unsure minutes' likely labels, reject rate."""
    table = compact_table(
        f"Where the time went, {start.isoformat()} to {end.isoformat()}",
        [("user", "key"), ("days", "num"), ("hours", "num"), ("top buckets", "text"),
         ("unsure, most\nlikely", "text"), ("reject", "num")],
    )  # fmt: skip
    for t in totals:
        top = ", ".join(f"{name} {minutes / 60:.1f} h" for name, minutes in t.top())
        guesses = sorted(t.mixed_by_core_label.items(), key=lambda kv: (-kv[1], kv[0]))[:2]
        unsure = ", ".join(f"{name} {minutes / 60:.1f} h" for name, minutes in guesses)
        table.add_row(
            escape(t.user_id),
            str(t.days),
            f"{t.minutes / 60:.1f}",
            escape(top) or "-",
            escape(unsure) or "-",
            f"{t.rejected_minutes / t.minutes:.0%}" if t.minutes else "-",
        )
    return table
