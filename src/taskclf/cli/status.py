"""`taskclf status`: what the home holds, stage by stage, and the next command to run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from taskclf.cli._common import compact_table, console, get_state

if TYPE_CHECKING:
    from taskclf.report.status import DayCoverage, HomeStatus


def _days(coverage: DayCoverage) -> tuple[str, str, str, str]:
    if not coverage.days:
        return "0", "-", "-", "-"
    users = len(coverage.days_by_user)
    return str(users), f"{coverage.days:,}", str(coverage.first), str(coverage.last)


def _labels_line(status: HomeStatus) -> str:
    if not status.label_spans:
        return "none"
    line = f"{status.label_spans:,} span(s), {status.label_minutes / 60:,.1f} h"
    if status.label_users:
        line += f", {status.label_users} user(s) of their own"
    by_label = status.label_minutes_by_label
    line += " (" + ", ".join(f"{k} {v / 60:.1f} h" for k, v in by_label.items() if v > 0) + ")"
    missing = [k for k, v in by_label.items() if v <= 0]
    if missing:
        line += f"; none yet of {', '.join(missing)}"
    return line


def _model_line(status: HomeStatus) -> str:
    if status.active_model is None:
        return f"{status.bundles} bundle(s), none active"
    return f"{status.active_model} active ({status.bundles} bundle(s))"


def _policy_line(status: HomeStatus) -> str:
    if status.policy_model is None:
        return "none (inference uses the active model, uncalibrated)"
    calibrated = (
        "no calibrator store"
        if status.calibration is None
        else f"{status.calibration} calibration, {status.personalized_users} personalized user(s)"
    )
    return f"model {status.policy_model}; {calibrated}"


def status(ctx: typer.Context) -> None:
    """Show what the home holds, stage by stage, and the next command to run."""
    from taskclf.report.status import home_status, next_step

    layout = get_state(ctx).layout
    got = home_status(layout)
    config = got.config
    origin = "" if got.config_exists else " (no config.toml yet: this machine's zone)"
    console.print(
        f"home {escape(str(got.home))}\nuser {escape(config.user_id)!r}, time zone "
        f"{escape(config.timezone_for(config.user_id))!r}{origin}",
        highlight=False,
    )
    table = compact_table(
        "Data", [("stage", "key"), ("users", "num"), ("days", "num"), ("first", "key"),
                 ("last", "key")]
    )  # fmt: skip
    table.add_row("events (ingested, UTC days)", *_days(got.events))
    table.add_row("features (UTC days)", *_days(got.features))
    table.add_row("predictions (local days)", *_days(got.predictions))
    console.print(table)
    console.print(f"labels: {_labels_line(got)}", highlight=False)
    console.print(f"model: {escape(_model_line(got))}", highlight=False)
    console.print(f"inference policy: {escape(_policy_line(got))}", highlight=False)
    console.print(
        "taxonomy: " + ("configs/taxonomy.yaml" if got.taxonomy else "none (labels as they are)"),
        highlight=False,
    )
    for problem in got.problems:
        console.print(f"[yellow]problem:[/] {escape(problem)}")
    console.print(f"[bold]next:[/] {escape(next_step(got))}")
