"""Daily report files: write and read them, and build a date range's reports from predictions.

``report daily`` (:func:`run_daily_reports`) and ``report summary`` (through
:func:`reports_in_range`) read the batch predictions of a range; batch and online inference
write their reports with :func:`write_daily_reports` / :func:`write_daily_report`. The report
itself (fields, counting rules) is :mod:`taskclf.report.daily`. Each file is written
atomically: ``daily.json`` (the report), ``daily.csv`` and ``daily.parquet`` (its long table,
``report.export.report_table``) and ``daily.png`` (``report.plots``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from pydantic import ValidationError

from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.paths import Layout
from taskclf.infer.prediction import read_prediction_partitions
from taskclf.infer.taxonomy import TaxonomyConfig, load_taxonomy, resolve_taxonomy
from taskclf.report.daily import DailyReport, build_daily_reports
from taskclf.report.export import (
    REPORT_CSV,
    REPORT_JSON,
    REPORT_PARQUET,
    REPORT_PNG,
    read_segments,
    report_table,
    write_bytes,
    write_csv,
    write_json,
    write_parquet,
)
from taskclf.report.plots import render_daily_png, render_daily_pngs


def write_daily_report(
    layout: Layout,
    report: DailyReport,
    *,
    taxonomy: TaxonomyConfig | None = None,
    folder: Path | None = None,
) -> list[Path]:
    """Write ``daily.json``, ``daily.csv``, ``daily.parquet`` and ``daily.png`` atomically.

    Files go to ``folder``, by default ``layout.report_dir(report.user_id, report.date)``
    (the online loop passes ``layout.online_report_dir``); the same report always produces
    the same bytes. ``taxonomy`` only chooses the bucket colors of the chart.

    Returns:
        The four paths, in that order.
    """
    return _write(layout, report, render_daily_png(report, taxonomy=taxonomy), folder)


def write_daily_reports(
    layout: Layout,
    reports: Sequence[DailyReport],
    *,
    taxonomy: TaxonomyConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
    workers: int = 1,
) -> list[list[Path]]:
    """:func:`write_daily_report` of each report (in their default folders), in order.

    With ``workers`` > 1 the charts of many reports are drawn in that many processes
    (:func:`~taskclf.report.plots.render_daily_pngs`, which says when); files are written
    here, one report at a time. ``progress`` gets (reports written, reports) after each.
    """
    written: list[list[Path]] = []
    pngs = render_daily_pngs(reports, taxonomy=taxonomy, workers=workers)
    for report, png in zip(reports, pngs, strict=True):
        written.append(_write(layout, report, png, None))
        if progress is not None:
            progress(len(written), len(reports))
    return written


def _write(layout: Layout, report: DailyReport, png: bytes, folder: Path | None) -> list[Path]:
    if folder is None:
        folder = layout.report_dir(report.user_id, report.date)
    table = report_table(report)
    return [
        write_json(folder / REPORT_JSON, report.model_dump(mode="json")),
        write_csv(folder / REPORT_CSV, table),
        write_parquet(folder / REPORT_PARQUET, table),
        write_bytes(folder / REPORT_PNG, png),
    ]


def load_report(path: Path) -> DailyReport:
    """Read a ``daily.json``.

    Raises:
        ArtifactError: Not a valid report file.
    """
    try:
        return DailyReport.model_validate_json(path.read_bytes())
    except (OSError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ArtifactError(
            f"daily report '{path}' cannot be read: {detail}; re-run 'taskclf report daily'"
        ) from None


@dataclass(frozen=True)
class WrittenReport:
    """A report and the files written for it."""

    report: DailyReport
    paths: tuple[Path, ...]


def run_daily_reports(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    taxonomy_file: Path | None = None,
    timezones: Mapping[str, str] | None = None,
    default_timezone: str = "UTC",
    progress: Callable[[int, int], None] | None = None,
    chart_workers: int = 1,
) -> list[WrittenReport]:
    """Build and write the daily reports of local dates ``date_from..date_to`` (inclusive).

    Reads the batch predictions (``Layout.predictions_partition``) and ``Layout.segments_file``
    (when present). With ``taxonomy_file`` the predicted labels are re-mapped with it;
    otherwise the stored ``mapped_label`` is used and the home's taxonomy (if any) only
    colors the charts. ``progress(done, total)`` is called after each report is written;
    ``chart_workers`` as ``workers`` of :func:`write_daily_reports`.

    Raises:
        InputError: Empty range, or no predictions in it.
        ConfigError: Bad taxonomy file or time zone.
        ArtifactError: A corrupt segments file, or a prediction partition that cannot be
            read or breaks the record contract (``infer.prediction._checked``); raised
            before any file is written.
    """
    selected, colors = reports_in_range(
        layout,
        date_from,
        date_to,
        user_ids=user_ids,
        taxonomy_file=taxonomy_file,
        timezones=timezones,
        default_timezone=default_timezone,
    )
    paths = write_daily_reports(
        layout, selected, taxonomy=colors, progress=progress, workers=chart_workers
    )
    return [WrittenReport(r, tuple(p)) for r, p in zip(selected, paths, strict=True)]


def reports_in_range(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    taxonomy_file: Path | None = None,
    timezones: Mapping[str, str] | None = None,
    default_timezone: str = "UTC",
) -> tuple[list[DailyReport], TaxonomyConfig | None]:
    """The daily reports of local dates ``date_from..date_to`` from the batch predictions, and
    the taxonomy that colors their charts (see :func:`run_daily_reports`, which writes them).

    Raises:
        InputError: Empty range, or no predictions in it.
        ConfigError: Bad taxonomy file or time zone.
        ArtifactError: A corrupt segments file, or a prediction partition that cannot be
            read or breaks the record contract (``infer.prediction._checked``); raised
            before any file is written.
    """
    remap = load_taxonomy(taxonomy_file) if taxonomy_file is not None else None
    colors = remap or resolve_taxonomy(layout.taxonomy_file)
    if date_to < date_from:
        raise InputError(
            f"--to {date_to.isoformat()} is before --from {date_from.isoformat()}; swap them"
        )
    predictions = read_prediction_partitions(layout, date_from, date_to, user_ids=user_ids)
    if predictions.empty:
        who = f" for user(s) {', '.join(map(repr, user_ids))}" if user_ids else ""
        days = sorted(p.name[5:] for p in layout.predictions_dir.glob("date=*") if p.is_dir())
        have = f" (there are predictions for {days[0]}..{days[-1]})" if days else ""
        raise InputError(
            f"no predictions{who} for {date_from.isoformat()}..{date_to.isoformat()} under "
            f"'{layout.predictions_dir}'{have}; run 'taskclf infer batch --from "
            f"{date_from.isoformat()} --to {date_to.isoformat()}' first, or report other dates"
        )
    segments = read_segments(layout.segments_file) if layout.segments_file.exists() else None
    reports = build_daily_reports(
        predictions,
        segments,
        timezones=timezones,
        default_timezone=default_timezone,
        taxonomy=remap,
    )
    return [r for r in reports if date_from <= r.date <= date_to], colors
