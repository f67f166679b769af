"""`taskclf infer`: batch, online and baseline inference."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from taskclf.cli._common import console, get_state, require_range
from taskclf.core.defaults import DEFAULT_POLL_SECONDS, DEFAULT_REJECT_THRESHOLD
from taskclf.core.errors import InputError
from taskclf.core.time import parse_date

if TYPE_CHECKING:
    import pandas as pd

    from taskclf.infer.batch import BatchResult
    from taskclf.infer.online import OnlineLoop
    from taskclf.infer.resolve import InferenceSettings

app = typer.Typer(
    help="Run inference: batch over a date range, online against a live server, or rule baseline.",
    no_args_is_help=True,
)

_FROM = typer.Option(None, "--from", help="First local date, YYYY-MM-DD.")
_TO = typer.Option(None, "--to", help="Last local date, YYYY-MM-DD (inclusive).")
_MODEL = typer.Option(None, "--model-dir", help="Model bundle (default: policy, else active).")
_STORE = typer.Option(
    None, "--calibrator-store", help="Calibrator store dir (default: from the policy)."
)
_THRESHOLD = typer.Option(
    None, "--reject-threshold", help="Global reject threshold in [0, 1] (overrides the policy)."
)
_TAXONOMY = typer.Option(None, "--taxonomy", help="Taxonomy YAML (default: configs/taxonomy.yaml).")
_WINDOW = typer.Option(None, "--smooth-window", help="Odd rolling-majority window (default 3).")


def print_settings(settings: InferenceSettings) -> None:
    """Show every resolved setting and where it came from."""
    table = Table(title="Inference settings")
    for col in ("setting", "value", "source"):
        table.add_column(col, overflow="fold")  # whole paths and run ids, over lines if need be
    for row in settings.rows():
        table.add_row(*row)
    console.print(table)


def _summary(result: BatchResult) -> None:
    table = Table(title="Batch predictions")
    for col in ("user", "minutes", "rejected", "segments"):
        table.add_column(col, justify="right" if col != "user" else "left")
    p = result.predictions
    for user in result.users:
        part = p[p["user_id"] == user]
        n_seg = sum(1 for s in result.result.segments if s.user_id == user)
        table.add_row(user, f"{len(part):,}", f"{part['is_rejected'].mean():.1%}", str(n_seg))
    console.print(table)
    console.print(
        f"{len(result.prediction_files)} prediction file(s) under {result.segments_file.parent}"
    )
    console.print(f"segments: {result.segments_file}")
    if result.report_files:
        console.print(f"{len(result.report_files)} report file(s) under the reports folder")
    if result.queued:
        console.print(
            f"{result.queued} unsure minute(s) queued for labeling ('taskclf labels show-queue')"
        )
    for model, n in result.replaced.items():
        console.print(
            f"[yellow]note:[/] replaced {n} day file(s) of predictions by model {escape(model)}; "
            "'taskclf infer batch' over those days brings them back"
        )


@app.command("batch")
def batch(
    ctx: typer.Context,
    date_from: str | None = _FROM,
    date_to: str | None = _TO,
    user_id: list[str] | None = typer.Option(
        None, "--user-id", help="Only this user (repeatable)."
    ),
    model_dir: Path | None = _MODEL,
    calibrator_store: Path | None = _STORE,
    reject_threshold: float | None = _THRESHOLD,
    taxonomy: Path | None = _TAXONOMY,
    smooth_window: int | None = _WINDOW,
    no_reports: bool = typer.Option(False, "--no-reports", help="Skip the daily reports."),
) -> None:
    """Predict every minute of a date range for every user; write predictions, segments, reports."""
    from taskclf.infer.batch import run_batch_inference
    from taskclf.infer.resolve import resolve_settings
    from taskclf.report.plots import chart_workers

    state = get_state(ctx)
    start, end = require_range(
        parse_date(date_from, field="--from") if date_from else None,
        parse_date(date_to, field="--to") if date_to else None,
    )
    settings = resolve_settings(
        state.layout,
        model_dir=model_dir,
        calibrator_store=calibrator_store,
        reject_threshold=reject_threshold,
        taxonomy=taxonomy,
        smooth_window=smooth_window,
    )
    print_settings(settings)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)
        result = run_batch_inference(
            state.layout,
            start,
            end,
            settings=settings,
            config=state.config,
            user_ids=user_id,
            write_reports=not no_reports,
            progress=lambda msg: bar.update(task, description=msg),
            chart_workers=chart_workers(),
        )
    _summary(result)


@app.command("baseline")
def baseline(
    ctx: typer.Context,
    date_from: str | None = _FROM,
    date_to: str | None = _TO,
    user_id: list[str] | None = typer.Option(
        None, "--user-id", help="Only this user (repeatable)."
    ),
    reject_threshold: float | None = _THRESHOLD,
    taxonomy: Path | None = _TAXONOMY,
) -> None:
    """Rule-based predictions for day-one users without a model (app category, AFK, input)."""
    from taskclf.infer.batch import run_baseline_inference

    state = get_state(ctx)
    start, end = require_range(
        parse_date(date_from, field="--from") if date_from else None,
        parse_date(date_to, field="--to") if date_to else None,
    )
    result = run_baseline_inference(
        state.layout,
        start,
        end,
        config=state.config,
        reject_threshold=DEFAULT_REJECT_THRESHOLD if reject_threshold is None else reject_threshold,
        user_ids=user_id,
        taxonomy=taxonomy,
    )
    _summary(result)


def poll_line(records: pd.DataFrame, timezone: str) -> str | None:
    """One line on the minutes a poll wrote: their local span and the last minute's label.

    ``"10:41 Build 0.82 -> Deep work"`` for one minute, ``"12 minutes written, 09:30-10:41;
    last 10:41 ..."`` for several. The label is the smoothed one; when it is not the model's
    argmax (a rejected or smoothed minute) the argmax and its confidence follow in
    parentheses (``"Mixed/Unknown (Build 0.41)"``); the taxonomy bucket follows ``->`` when it
    differs from the label. None when nothing was written.
    """
    import pandas as pd

    if records.empty:
        return None
    starts = pd.DatetimeIndex(records["bucket_start_ts"]).tz_convert(timezone)
    last = records.iloc[-1]
    label, core = str(last["predicted_label"]), str(last["core_label"])
    scored = f"{core} {float(last['confidence']):.2f}"
    text = f"{starts[-1]:%H:%M} " + (scored if label == core else f"{label} ({scored})")
    if last["mapped_label"] != label:
        text += f" -> {last['mapped_label']}"
    if len(records) == 1:
        return text
    return f"{len(records)} minutes written, {starts[0]:%H:%M}-{starts[-1]:%H:%M}; last {text}"


def _print_poll(records: pd.DataFrame, timezone: str) -> None:
    line = poll_line(records, timezone)
    if line is not None:
        console.print(line, highlight=False, markup=False)


@app.command("online")
def online(
    ctx: typer.Context,
    poll_seconds: float | None = typer.Option(
        None, "--poll-seconds", help=f"Seconds between polls (default {DEFAULT_POLL_SECONDS:g})."
    ),
    aw_host: str | None = typer.Option(None, "--aw-host", help="ActivityWatch server URL."),
    user_id: str | None = typer.Option(None, "--user-id", help="User id (default: config)."),
    model_dir: Path | None = _MODEL,
    calibrator_store: Path | None = _STORE,
    reject_threshold: float | None = _THRESHOLD,
    taxonomy: Path | None = _TAXONOMY,
    smooth_window: int | None = _WINDOW,
    max_polls: int | None = typer.Option(None, "--max-polls", help="Stop after N polls."),
    settle_seconds: float = typer.Option(
        5.0,
        "--settle-seconds",
        min=0.0,
        max=300.0,
        help="Close a minute this long after it ended, so watchers' late events are in; set it "
        "at least to your input watcher's interval for records identical to batch.",
    ),
) -> None:
    """Poll a running ActivityWatch server; predict each minute once closed (Ctrl+C stops)."""
    from taskclf.infer.online import run_online_loop
    from taskclf.infer.resolve import resolve_settings

    state = get_state(ctx)
    config = state.config
    layout = state.layout

    def resolve() -> InferenceSettings:
        return resolve_settings(
            layout,
            model_dir=model_dir,
            calibrator_store=calibrator_store,
            reject_threshold=reject_threshold,
            taxonomy=taxonomy,
            smooth_window=smooth_window,
        )

    settings = resolve()
    print_settings(settings)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request and bucket
    host = aw_host or config.aw_host
    every = DEFAULT_POLL_SECONDS if poll_seconds is None else poll_seconds
    if not 0.0 < every <= 86_400.0:  # NaN fails too
        raise InputError(f"--poll-seconds must be a number of seconds in (0, 86400], got {every}")
    uid = config.user_id if user_id is None else user_id
    zone = config.timezone_for(uid)

    def started(loop: OnlineLoop) -> None:
        console.print(
            f"polling {host} every {every:g} s as user {loop.user_id!r}; records go to "
            f"{layout.online_dir}; Ctrl+C to stop"
        )

    stats = run_online_loop(
        layout,
        config,
        resolve=resolve,
        aw_host=host,
        user_id=user_id,
        poll_seconds=every,
        settle_seconds=settle_seconds,
        max_polls=max_polls,
        on_start=started,
        on_poll=lambda df: _print_poll(df, zone),
    )
    console.print(
        f"stopped after {stats.polls} poll(s): {stats.minutes_written} minute(s) written, "
        f"{stats.server_errors} server error(s), {stats.poll_errors} other failed poll(s), "
        f"{stats.policy_reloads} policy reload(s), {stats.policy_rejections} invalid "
        "policy change(s) ignored"
    )
    for day in sorted(stats.days):
        console.print(
            f"{day}: records {layout.online_predictions_file(uid, day)}, report "
            f"{layout.online_report_dir(uid, day)}",
            highlight=False,
        )
