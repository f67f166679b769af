"""`taskclf labels`: the label store, import/export, quick labeling and the labeling queue.

``--user-id`` defaults: ``add-block`` and ``label-now`` label the configured user
(``config.toml``) unless ``--all-users`` / ``--user-id`` says otherwise; ``import`` keeps the
file's user ids and gives ``--user-id`` to rows without one; listing, export, projection and
the queue show every user unless ``--user-id`` narrows them. ``--from/--to`` are inclusive
local dates in the configured time zone.
"""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from taskclf.cli._common import compact_table, console, get_state, require_range
from taskclf.core.errors import InputError
from taskclf.core.time import day_bounds_utc, parse_date, parse_timestamp, utc_now
from taskclf.core.types import CoreLabel, LabelSpan

if TYPE_CHECKING:
    from taskclf.labels.store import ImportResult, LabelStore, StoredSpan

app = typer.Typer(
    help="Manage label spans: import/export, add blocks, label now, project onto minutes, queue.",
    no_args_is_help=True,
)

_MAX_ROWS_SHOWN = 200

FROM_OPT = typer.Option(None, "--from", help="First local date, YYYY-MM-DD (inclusive).")
TO_OPT = typer.Option(None, "--to", help="Last local date, YYYY-MM-DD (inclusive).")
USER_OPT = typer.Option(None, "--user-id", help="Only this user.")


def _date_range(date_from: str | None, date_to: str | None) -> tuple[date, date]:
    """Both ``--from`` and ``--to``, parsed and in order."""
    return require_range(
        None if date_from is None else parse_date(date_from, field="--from"),
        None if date_to is None else parse_date(date_to, field="--to"),
    )


def _utc_bounds(
    ctx: typer.Context, date_from: str | None, date_to: str | None
) -> tuple[datetime | None, datetime | None]:
    """Optional inclusive local dates -> UTC ``[start, end)``; either side may stay open."""
    tz = get_state(ctx).config.timezone
    d_from = None if date_from is None else parse_date(date_from, field="--from")
    d_to = None if date_to is None else parse_date(date_to, field="--to")
    if d_from is not None and d_to is not None:
        require_range(d_from, d_to)
    start = None if d_from is None else day_bounds_utc(d_from, tz)[0]
    end = None if d_to is None else day_bounds_utc(d_to, tz)[1]
    return start, end


def _store(ctx: typer.Context) -> LabelStore:
    from taskclf.labels.store import LabelStore

    return LabelStore.for_layout(get_state(ctx).layout)


def _span_table(records: list[StoredSpan], title: str) -> Table:
    """Spans in 80 columns: the end without its date when on the start's day; the
    provenance, confidence and extend-forward flag together in one column that may wrap."""
    table = compact_table(
        title,
        [
            ("id", "num"),
            ("user", "key"),
            ("start (UTC)", "key"),
            ("end", "text"),
            ("label", "key"),
            ("source", "text"),
        ],
    )
    for r in records[:_MAX_ROWS_SHOWN]:
        s = r.span
        same_day = s.end_ts.date() == s.start_ts.date()
        source = [s.provenance]
        if s.confidence is not None:
            source.append(f"conf {s.confidence:.2f}")
        if s.extend_forward:
            source.append("extends forward")
        table.add_row(
            str(r.span_id),
            escape("(all users)" if s.user_id is None else s.user_id),
            s.start_ts.strftime("%Y-%m-%d %H:%M:%S"),
            s.end_ts.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S"),
            s.label,
            escape(", ".join(source)),
        )
    return table


def _print_import(result: ImportResult, path: Path) -> None:
    console.print(
        f"Imported '{path}': [bold]{len(result.added)}[/] added, {len(result.duplicates)} "
        f"already present, {len(result.conflicts)} conflicting, {len(result.cut)} stored "
        "span(s) cut."
    )
    if result.conflicts:
        table = Table(title="Conflicts (not imported)")
        table.add_column("row")
        table.add_column("why")
        for c in result.conflicts[:_MAX_ROWS_SHOWN]:
            table.add_row(str(c.row), c.message)
        console.print(table)
        console.print(
            "[yellow]Conflicting rows were not imported.[/] Fix them, or re-run with "
            "--overwrite to cut the stored spans (or --strict to import all or nothing)."
        )


@app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="A labels .csv (seven columns) or labels.parquet."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Cut stored spans in the way."),
    user_id: str | None = typer.Option(None, "--user-id", help="User for rows without one."),
    strict: bool = typer.Option(False, "--strict", help="Import nothing if any row conflicts."),
) -> None:
    """Merge a label file into the store (re-importing the same file changes nothing)."""
    store = _store(ctx)
    with Progress(
        TextColumn("importing"), BarColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("import", total=None)
        result = store.import_file(
            file,
            overwrite=overwrite,
            strict=strict,
            user_id=user_id,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    _print_import(result, file)


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="CSV file to write."),
    user_id: str | None = USER_OPT,
    date_from: str | None = FROM_OPT,
    date_to: str | None = TO_OPT,
) -> None:
    """Write the stored spans as CSV (deterministic; import it back to restore them)."""
    get_state(ctx).layout.check_output(file, option="the export file")
    start, end = _utc_bounds(ctx, date_from, date_to)
    count = _store(ctx).export_csv(file, user_id=user_id, start=start, end=end)
    console.print(f"Wrote {count} span(s) to '{file}'.")


@app.command("add-block")
def add_block(
    ctx: typer.Context,
    start: str | None = typer.Option(None, "--start", help="Aware ISO time, e.g. ...T09:00Z."),
    end: str | None = typer.Option(None, "--end", help="Aware ISO time (exclusive)."),
    label: CoreLabel | None = typer.Option(None, "--label", help="Core label."),
    user_id: str | None = typer.Option(None, "--user-id", help="Default: the configured user."),
    all_users: bool = typer.Option(False, "--all-users", help="The span applies to every user."),
    provenance: str | None = typer.Option(None, "--provenance", help="Default: manual."),
    confidence: float | None = typer.Option(None, "--confidence", min=0.0, max=1.0),
    extend_forward: bool = typer.Option(
        False, "--extend-forward", help="Keep this label until the next span starts."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Cut stored spans in the way."),
) -> None:
    """Label a time block."""
    if start is None or end is None or label is None:
        raise InputError("add-block needs --start, --end and --label")
    if all_users and user_id is not None:
        raise InputError("give either --user-id or --all-users, not both")
    owner = None if all_users else (get_state(ctx).config.user_id if user_id is None else user_id)
    span = LabelSpan(
        start_ts=parse_timestamp(start, field="--start"),
        end_ts=parse_timestamp(end, field="--end"),
        label=label.value,
        provenance=provenance or "manual",
        user_id=owner,
        confidence=confidence,
        extend_forward=extend_forward,
    )
    result = _store(ctx).add(span, overwrite=overwrite)
    console.print(
        f"Stored span #{result.span_id}: {span.label} [{span.start_ts.isoformat()}, "
        f"{span.end_ts.isoformat()}) for {owner or 'every user'}."
    )
    for cut in result.cut:
        console.print(f"  cut {cut.describe()}")


@app.command("label-now")
def label_now_cmd(
    ctx: typer.Context,
    minutes: int | None = typer.Option(None, "--minutes", help="Label the last N minutes."),
    label: CoreLabel | None = typer.Option(None, "--label", help="Core label."),
    user_id: str | None = typer.Option(None, "--user-id", help="Default: the configured user."),
    aw_host: str | None = typer.Option(None, "--aw-host", help="Default: config aw_host."),
) -> None:
    """Label the last N minutes and show what ActivityWatch saw in them."""
    from taskclf.labels._workflows import label_now
    from taskclf.labels.store import LabelStore

    if minutes is None or label is None:
        raise InputError("label-now needs --minutes and --label")
    state = get_state(ctx)
    config = state.config
    result = label_now(
        LabelStore.for_layout(state.layout),
        minutes=minutes,
        label=label.value,
        user_id=config.user_id if user_id is None else user_id,
        now=utc_now(),
        aw_host=aw_host or config.aw_host,
    )
    s = result.span
    console.print(
        f"Stored span #{result.span_id}: {s.label} for the last {minutes} min "
        f"[{s.start_ts.isoformat()}, {s.end_ts.isoformat()}) for {s.user_id}."
    )
    if result.activity is None:
        console.print(Text("note: ", style="yellow") + Text(f"label stored; {result.aw_error}"))
        return
    table = Table(title="What ActivityWatch saw")
    table.add_column("app")
    table.add_column("seconds", justify="right")
    for item in result.activity:
        table.add_row(Text(item.app), f"{item.seconds:.0f}")  # an app name is not markup
    if not result.activity:
        console.print("ActivityWatch recorded no window activity in that time.")
    else:
        console.print(table)


@app.command("list")
def list_cmd(
    ctx: typer.Context,
    user_id: str | None = USER_OPT,
    date_from: str | None = FROM_OPT,
    date_to: str | None = TO_OPT,
    provenance: str | None = typer.Option(
        None, "--provenance", help="Exact provenance, or a prefix ending in ':' (weak:)."
    ),
) -> None:
    """List stored spans (with their ids)."""
    start, end = _utc_bounds(ctx, date_from, date_to)
    records = _store(ctx).list_records(user_id=user_id, start=start, end=end, provenance=provenance)
    console.print(_span_table(records, f"Label spans ({len(records)})"))
    if len(records) > _MAX_ROWS_SHOWN:
        console.print(f"... {len(records) - _MAX_ROWS_SHOWN} more; narrow with --from/--to.")


@app.command("delete")
def delete_cmd(
    ctx: typer.Context,
    span_id: int = typer.Argument(..., help="Span id (see 'taskclf labels list')."),
) -> None:
    """Delete one stored span."""
    gone = _store(ctx).delete(span_id)
    console.print(f"Deleted {gone.describe()}.")


@app.command("project")
def project_cmd(
    ctx: typer.Context,
    date_from: str | None = FROM_OPT,
    date_to: str | None = TO_OPT,
    user_id: str | None = USER_OPT,
    out: Path | None = typer.Option(None, "--out", help="Write the labeled rows (Parquet)."),
) -> None:
    """Project spans onto the feature minutes and show coverage per user and label."""
    from taskclf.labels._workflows import project_range

    d_from, d_to = _date_range(date_from, date_to)
    if out is not None:
        get_state(ctx).layout.check_output(out, option="--out")
    run = project_range(
        get_state(ctx).layout,
        d_from,
        d_to,
        user_ids=None if user_id is None else [user_id],
        out=out,
    )
    table = Table(title=f"Label coverage {d_from} .. {d_to} ({len(run.projected)} minutes)")
    for col in ("user", "label", "minutes", "share"):
        table.add_column(col, justify="right" if col in ("minutes", "share") else "left")
    for row in run.coverage.itertuples(index=False):
        table.add_row(str(row.user_id), str(row.label), str(row.minutes), f"{row.share:.1%}")
    console.print(table)
    if run.written is not None:
        console.print(f"Wrote {run.labeled_rows} labeled row(s) to '{run.written}'.")


@app.command("show-queue")
def show_queue(
    ctx: typer.Context,
    user_id: str | None = USER_OPT,
    limit: int | None = typer.Option(
        None, "--limit", min=1, help="Show at most N minutes (default 20)."
    ),
) -> None:
    """Minutes worth labeling next (lowest model confidence first)."""
    from taskclf.labels.queue import list_queue

    items = list_queue(_store(ctx), user_id=user_id, limit=limit or 20)
    table = Table(title=f"Labeling queue ({len(items)})")
    for col in ("user", "minute (UTC)", "confidence", "model said", "shown", "reason"):
        table.add_column(col)
    for it in items:
        table.add_row(
            it.user_id,
            it.bucket_start_ts.strftime("%Y-%m-%d %H:%M"),
            f"{it.confidence:.2f}",
            it.core_label,
            it.predicted_label,
            it.reason,
        )
    console.print(table)
    if not items:
        console.print("Nothing to label: the queue is empty.")


@app.command("weak-rules")
def weak_rules_cmd(
    ctx: typer.Context,
    date_from: str | None = FROM_OPT,
    date_to: str | None = TO_OPT,
    user_id: str | None = USER_OPT,
    apply: bool = typer.Option(False, "--apply", help="Store the proposals (gaps only)."),
) -> None:
    """Propose weak labels from app/domain/idle rules (dry run unless --apply)."""
    from taskclf.labels._workflows import weak_rules_range

    d_from, d_to = _date_range(date_from, date_to)
    run = weak_rules_range(
        get_state(ctx).layout,
        d_from,
        d_to,
        user_ids=None if user_id is None else [user_id],
        apply=apply,
    )
    table = Table(title=f"Weak-rule proposals {d_from} .. {d_to}")
    for col in ("user", "rule", "label", "spans", "minutes"):
        table.add_column(col)
    for row in run.summary.itertuples(index=False):
        table.add_row(
            str(row.user_id),
            str(row.provenance),
            str(row.label),
            str(row.spans),
            f"{row.minutes:.0f}",
        )
    console.print(table)
    if run.fill is None:
        console.print(
            f"Dry run: {len(run.proposals)} span(s) proposed; --apply stores the parts of them "
            "no label covers yet (labeled time is kept)."
        )
    else:
        console.print(
            f"Stored {len(run.fill.added)} weak span(s) ({run.fill.added_seconds / 60:.0f} of "
            f"{run.fill.proposed_seconds / 60:.0f} proposed minutes); labeled time was kept."
        )
