"""Where the time went over a date range: every user's daily reports in one table, and totals.

``taskclf report summary --from --to`` builds the daily reports of the range (as ``report
daily`` does, without writing them) and writes

- ``artifacts/reports/range=<from>_<to>/summary.csv`` and ``summary.parquet``: the rows of
  every report's table (``report.export.report_table``: user, date, kind, name, value), in
  (user, date) order — one file for a team or a study to load;
- ``<user>.png`` beside them: the user's hours per bucket, day by day
  (``report.range_plot``);

and returns per-user totals (:class:`UserTotals`): days, minutes, minutes per bucket and per
label, rejected minutes, the Mixed/Unknown minutes by the model's best guess. The folder name
cannot be a user's report folder (user folders never contain ``=``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pandas as pd

from taskclf.core.paths import Layout, user_file_name
from taskclf.report.daily import DailyReport
from taskclf.report.daily_files import reports_in_range
from taskclf.report.export import (
    TABLE_COLUMNS,
    report_table,
    write_bytes,
    write_csv,
    write_parquet,
)
from taskclf.report.range_plot import render_range_png

SUMMARY_CSV = "summary.csv"
SUMMARY_PARQUET = "summary.parquet"


@dataclass(frozen=True)
class UserTotals:
    """One user's totals over the range (minutes are prediction minutes)."""

    user_id: str
    days: int
    minutes: int
    rejected_minutes: int
    minutes_by_mapped_label: dict[str, int]
    minutes_by_label: dict[str, int]
    mixed_by_core_label: dict[str, int]

    def top(self, n: int = 3) -> list[tuple[str, int]]:
        """The ``n`` buckets with the most minutes (ties by name), zeros left out."""
        items = [kv for kv in self.minutes_by_mapped_label.items() if kv[1] > 0]
        return sorted(items, key=lambda kv: (-kv[1], kv[0]))[:n]


@dataclass(frozen=True)
class RangeSummary:
    """The totals and the files written."""

    totals: list[UserTotals]
    paths: tuple[Path, ...]  # summary.csv, summary.parquet, then one chart per user


def summary_dir(layout: Layout, date_from: date, date_to: date) -> Path:
    return layout.reports_dir / f"range={date_from.isoformat()}_{date_to.isoformat()}"


def _sum(dicts: Sequence[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for d in dicts:
        total.update(d)
    return {k: int(total[k]) for k in sorted(total)}


def _by_user(reports: Sequence[DailyReport]) -> dict[str, list[DailyReport]]:
    """``reports`` grouped by user, users sorted (each user's in the given order)."""
    by_user: dict[str, list[DailyReport]] = {}
    for report in reports:
        by_user.setdefault(report.user_id, []).append(report)
    return dict(sorted(by_user.items()))


def user_totals(reports: Sequence[DailyReport]) -> list[UserTotals]:
    """Per-user totals of ``reports`` (any order), sorted by user id."""
    return [
        UserTotals(
            user_id=user,
            days=len(items),
            minutes=sum(r.total_minutes for r in items),
            rejected_minutes=sum(round(r.reject_rate * r.total_minutes) for r in items),
            minutes_by_mapped_label=_sum([r.minutes_by_mapped_label for r in items]),
            minutes_by_label=_sum([r.minutes_by_label for r in items]),
            mixed_by_core_label=_sum([r.mixed_by_core_label for r in items]),
        )
        for user, items in _by_user(reports).items()
    ]


def summary_table(reports: Sequence[DailyReport]) -> pd.DataFrame:
    """Every report's table, in (user, date) order; columns :data:`TABLE_COLUMNS`."""
    ordered = sorted(reports, key=lambda r: (r.user_id, r.date))
    if not ordered:
        return pd.DataFrame(
            {c: pd.Series(dtype="str") for c in TABLE_COLUMNS[:-1]}
            | {"value": pd.Series(dtype="float64")}
        )
    return pd.concat([report_table(r) for r in ordered], ignore_index=True)


def run_range_summary(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    taxonomy_file: Path | None = None,
    timezones: Mapping[str, str] | None = None,
    default_timezone: str = "UTC",
) -> RangeSummary:
    """Build the range's daily reports, write the summary files and return the totals.

    Raises:
        InputError: Empty range, or no predictions in it.
        ConfigError: Bad taxonomy file or time zone.
        ArtifactError: A corrupt segments file.
    """
    reports, colors = reports_in_range(
        layout,
        date_from,
        date_to,
        user_ids=user_ids,
        taxonomy_file=taxonomy_file,
        timezones=timezones,
        default_timezone=default_timezone,
    )
    table = summary_table(reports)
    folder = summary_dir(layout, date_from, date_to)
    totals = user_totals(reports)
    charts = [
        write_bytes(
            folder / user_file_name(user, ".png"),
            render_range_png(user, days, taxonomy=colors),
        )
        for user, days in _by_user(reports).items()
    ]
    paths = (
        write_csv(folder / SUMMARY_CSV, table),
        write_parquet(folder / SUMMARY_PARQUET, table),
        *charts,
    )
    return RangeSummary(totals, paths)
