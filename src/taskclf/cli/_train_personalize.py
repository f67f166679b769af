"""`taskclf train calibrate` and `taskclf train tune-reject` (registered by ``cli/train.py``).

Register with::

    app.command("calibrate")(train_calibrate)
    app.command("tune-reject")(train_tune_reject)
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from taskclf.cli._common import compact_table, console, get_state
from taskclf.core.errors import InputError
from taskclf.core.paths import Layout
from taskclf.core.time import parse_date

if TYPE_CHECKING:
    from taskclf.train.calibrate import CalibrationReport

#: Rows shown in per-user tables (the full list is in the JSON reports).
MAX_TABLE_ROWS = 100


class MethodChoice(StrEnum):
    """Calibration methods."""

    temperature = "temperature"
    isotonic = "isotonic"


def resolve_model_dir(layout: Layout, model_dir: Path | None) -> Path:
    """``--model-dir`` as given, else relative to the home, else the active model."""
    if model_dir is None:
        from taskclf.core.model_io import get_active_model

        active = get_active_model(layout)
        if active is None:
            raise InputError(
                f"no --model-dir given and no active model in '{layout.models_dir}'; train one "
                "with 'taskclf train lgbm' or pass --model-dir models/<run_id>"
            )
        return active
    if model_dir.is_dir():
        return model_dir.absolute()
    if not model_dir.is_absolute() and (layout.home / model_dir).is_dir():
        return layout.home / model_dir
    raise InputError(
        f"--model-dir '{model_dir}' is not a directory (also looked under '{layout.home}'); "
        "list bundles with 'taskclf model list'"
    )


def _resolve_store_dir(layout: Layout, store: Path | None) -> Path:
    if store is None:
        return layout.calibrator_store_dir
    if not store.exists() and not store.is_absolute() and (layout.home / store).exists():
        return layout.home / store
    return store.absolute()


def _date(text: str | None, option: str) -> date | None:
    return None if text is None else parse_date(text, field=option)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _calibration_table(report: CalibrationReport) -> Table:
    """One row per user (the first ``MAX_TABLE_ROWS``); the reasons follow the table.

    Fits 80 columns (the width of a pipe or a log) for user ids up to about 14 characters:
    two-line headers and no outer edge.
    """
    table = compact_table(
        f"Per-user calibration ({report.method}, {report.folds}-fold keep check)",
        [
            ("user", "key"),
            ("labeled\nminutes", "num"),
            ("days", "num"),
            ("labels", "num"),
            ("decision", "key"),
            ("NLL\nraw", "num"),
            ("NLL\nglobal", "num"),
            ("NLL own\n(CV)", "num"),
        ],
    )
    for u in report.users[:MAX_TABLE_ROWS]:
        decision = "personal" if u.kept else ("fallback" if u.is_eligible else "global")
        table.add_row(
            escape(u.user_id[:40]),
            str(u.labeled_windows),
            str(u.labeled_days),
            str(u.distinct_labels),
            decision,
            _fmt(u.nll_raw),
            _fmt(u.nll_global),
            _fmt(u.nll_personal_cv),
        )
    return table


def train_calibrate(
    ctx: typer.Context,
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="Model bundle (default: the active model)."
    ),
    date_from: str | None = typer.Option(
        None, "--from", help="First day, YYYY-MM-DD (default: the model's training range)."
    ),
    date_to: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD, inclusive."),
    method: MethodChoice | None = typer.Option(
        None, "--method", help="Calibration method (default: temperature)."
    ),
    min_windows: int | None = typer.Option(
        None, "--min-windows", min=1, help="Per-user eligibility: labeled windows (200)."
    ),
    min_days: int | None = typer.Option(
        None, "--min-days", min=1, help="Per-user eligibility: distinct days (3)."
    ),
    min_labels: int | None = typer.Option(
        None, "--min-labels", min=1, help="Per-user eligibility: distinct labels (3)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Store directory (default: <home>/artifacts/calibrator_store)."
    ),
) -> None:
    """Fit the global and per-user calibrators on the model's validation days."""
    from taskclf.core.defaults import (
        DEFAULT_CALIBRATION_METHOD,
        DEFAULT_MIN_DISTINCT_LABELS,
        DEFAULT_MIN_LABELED_DAYS,
        DEFAULT_MIN_LABELED_WINDOWS,
    )
    from taskclf.train.calibrate import run_calibration

    layout = get_state(ctx).layout
    if out:
        layout.check_output(_resolve_store_dir(layout, out), option="--out")
    run_dir = resolve_model_dir(layout, model_dir)
    with console.status(f"Fitting calibrators for {run_dir.name} ..."):
        run = run_calibration(
            layout,
            run_dir,
            _date(date_from, "--from"),
            _date(date_to, "--to"),
            method=(method.value if method else DEFAULT_CALIBRATION_METHOD),
            min_windows=min_windows or DEFAULT_MIN_LABELED_WINDOWS,
            min_days=min_days or DEFAULT_MIN_LABELED_DAYS,
            min_labels=min_labels or DEFAULT_MIN_DISTINCT_LABELS,
            out_dir=_resolve_store_dir(layout, out) if out else None,
        )
    report = run.report
    console.print(_calibration_table(report))
    for u in report.users[:MAX_TABLE_ROWS]:
        why = Text(f"{u.user_id[:40]}: {u.reason}")
        console.print(Padding(why, (0, 0, 0, 2), expand=False))
    if len(report.users) > MAX_TABLE_ROWS:
        console.print(f"... {len(report.users) - MAX_TABLE_ROWS} more users in the report file")
    console.print(
        f"{report.n_rows} validation windows ({run.date_from}..{run.date_to}, split "
        f"{run.split_source}); NLL raw {report.nll_raw:.4f} -> global {report.nll_global:.4f}; "
        f"{len(report.store.user_ids)} of {len(report.users)} users personalized."
    )
    console.print(f"Store written to {escape(str(run.store_dir))}")
    console.print(f"Report written to {escape(str(run.report_path))}")


def train_tune_reject(
    ctx: typer.Context,
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="Model bundle (default: the active model)."
    ),
    calibrator_store: Path | None = typer.Option(
        None, "--calibrator-store", help="Store (default: <home>/artifacts/calibrator_store)."
    ),
    date_from: str | None = typer.Option(
        None, "--from", help="First day, YYYY-MM-DD (default: the model's training range)."
    ),
    date_to: str | None = typer.Option(None, "--to", help="Last day, YYYY-MM-DD, inclusive."),
    target_accuracy: float | None = typer.Option(
        None, "--target-accuracy", help="Selective accuracy to reach (default 0.80)."
    ),
    write_policy: bool = typer.Option(
        False, "--write-policy", help="Write models/inference_policy.json binding the three."
    ),
) -> None:
    """Tune the global and per-user reject thresholds on calibrated validation windows."""
    from taskclf.core.defaults import DEFAULT_TARGET_SELECTIVE_ACCURACY
    from taskclf.train.tune_reject import run_reject_tuning

    layout = get_state(ctx).layout
    run_dir = resolve_model_dir(layout, model_dir)
    store_dir = _resolve_store_dir(layout, calibrator_store)
    with console.status(f"Tuning reject thresholds for {run_dir.name} ..."):
        run = run_reject_tuning(
            layout,
            run_dir,
            store_dir,
            _date(date_from, "--from"),
            _date(date_to, "--to"),
            write_policy=write_policy,
            target_accuracy=(
                target_accuracy
                if target_accuracy is not None
                else DEFAULT_TARGET_SELECTIVE_ACCURACY
            ),
        )
    res = run.result
    table = compact_table(
        "Reject thresholds (reject when confidence < threshold)",
        [
            ("population", "key"),
            ("windows", "num"),
            ("threshold", "num"),
            ("coverage", "num"),
            ("selective\naccuracy", "num"),
            ("rule", "text"),
        ],
    )
    choices = [("global", res.global_choice)]
    choices += [(escape(uid[:40]), c) for uid, c in sorted(res.users.items())]
    for name, c in choices[: MAX_TABLE_ROWS + 1]:
        table.add_row(
            name,
            str(c.n_rows),
            f"{c.threshold:.4f}",
            f"{c.coverage:.1%}",
            f"{c.selective_accuracy:.1%}",
            c.rule.replace("_", " "),
        )
    console.print(table)
    lo, hi = res.reject_rate_bounds
    console.print(
        f"Objective: {res.objective} (target {res.target_selective_accuracy:.0%}, reject rate "
        f"{lo:.0%}-{hi:.0%})."
    )
    if res.skipped_users:
        console.print(
            f"{len(res.skipped_users)} eligible user(s) use the global threshold (too few "
            "validation windows)."
        )
    console.print(f"Tuning written to {escape(str(run.tuning_path))}")
    if run.policy_path is not None:
        console.print(f"Inference policy written to {escape(str(run.policy_path))}")
