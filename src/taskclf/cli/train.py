"""`taskclf train`: datasets, LightGBM training, evaluation, calibration and reject tuning."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from taskclf.cli._common import compact_table, console, get_state, require_range
from taskclf.core.defaults import (
    DEFAULT_NUM_BOOST_ROUND,
    DEFAULT_RANDOM_STATE,
    DEFAULT_TRAIN_RATIO,
    DEFAULT_VAL_RATIO,
)
from taskclf.core.errors import InputError
from taskclf.core.time import parse_date
from taskclf.core.types import LABEL_SET_V1

if TYPE_CHECKING:
    from taskclf.core.metrics import GateReport
    from taskclf.core.paths import Layout
    from taskclf.train.dataset import SplitSummary
    from taskclf.train.evaluate import EvaluationReport

app = typer.Typer(
    help="Build datasets, train and evaluate models, fit calibrators, tune reject thresholds.",
    no_args_is_help=True,
)


class SchemaVersionOption(StrEnum):
    """Feature schema versions."""

    v1 = "v1"
    v2 = "v2"
    v3 = "v3"


class ClassWeightOption(StrEnum):
    """Class weighting modes."""

    balanced = "balanced"
    none = "none"


_FROM = typer.Option(None, "--from", help="First local date, YYYY-MM-DD (inclusive).")
_TO = typer.Option(None, "--to", help="Last local date, YYYY-MM-DD (inclusive).")
_USERS = typer.Option(None, "--user-id", help="Only these users (repeatable).")
_HOLDOUT = typer.Option(
    None,
    "--holdout-user-fraction",
    help="Share of users held out entirely as unseen test users (default 0).",
)
_SCHEMA = typer.Option(None, "--schema-version", help="Feature schema (default v3).")


def _range(date_from: str | None, date_to: str | None) -> tuple[date, date]:
    start = parse_date(date_from, field="--from") if date_from is not None else None
    end = parse_date(date_to, field="--to") if date_to is not None else None
    return require_range(start, end)


def _optional_range(date_from: str | None, date_to: str | None) -> tuple[date | None, date | None]:
    if date_from is None and date_to is None:
        return None, None
    return _range(date_from, date_to)


def _split_table(summary: SplitSummary, title: str) -> Table:
    from taskclf.train.dataset import SPLIT_NAMES

    table = Table(title=title)
    table.add_column("")
    for name in SPLIT_NAMES:
        table.add_column(name, justify="right")
    stats = [summary.splits[name] for name in SPLIT_NAMES]
    table.add_row("rows", *(str(s.rows) for s in stats))
    table.add_row("user-days", *(str(s.days) for s in stats))
    table.add_row("users", *(str(len(s.users)) for s in stats), end_section=True)
    for label in LABEL_SET_V1:
        table.add_row(label, *(str(s.class_counts.get(label, 0)) for s in stats))
    return table


def _print_split_notes(summary: SplitSummary) -> None:
    if summary.holdout_users:
        console.print(f"held-out (unseen) users: {', '.join(summary.holdout_users)}")
    if summary.short_history_users:
        console.print(
            "users with fewer than 3 labeled days (no test days): "
            + ", ".join(summary.short_history_users)
        )


def _print_label_notes(layout: Layout, summary: SplitSummary, start: date, end: date) -> None:
    """Say when the labels cannot teach the model every task type, or only repeat rules."""
    from taskclf.core.time import day_bounds_utc
    from taskclf.labels.store import LabelStore, is_weak

    counts = summary.splits["train"].class_counts
    missing = [label for label in LABEL_SET_V1 if not counts.get(label, 0)]
    if missing:
        console.print(
            f"[yellow]note:[/] no training minutes of {', '.join(missing)}: the model never "
            "predicts them and puts such minutes under the labels it knows; label some of "
            "each ('taskclf labels label-now', 'labels add-block') and train again"
        )
    lo, hi = day_bounds_utc(start, "UTC")[0], day_bounds_utc(end, "UTC")[1]
    spans = LabelStore.for_layout(layout).list_spans(start=lo, end=hi)
    if spans and all(is_weak(span) for span in spans):
        console.print(
            "[yellow]note:[/] every label in the range was proposed by 'labels weak-rules': the "
            "model learns those rules back, so its validation scores say little about how it "
            "does on your work"
        )


@contextmanager
def _progress(total_rounds: int) -> Iterator[tuple[Progress, TaskID, TaskID]]:
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        stage = progress.add_task("starting", total=None)
        rounds = progress.add_task("boosting rounds", total=total_rounds, visible=False)
        yield progress, stage, rounds


@app.command("build-dataset")
def build_dataset_cmd(
    ctx: typer.Context,
    date_from: str | None = _FROM,
    date_to: str | None = _TO,
    user_id: list[str] | None = _USERS,
    holdout_user_fraction: float | None = _HOLDOUT,
    schema_version: SchemaVersionOption | None = _SCHEMA,
    seed: int | None = typer.Option(None, "--seed", help="Seed of the held-out user choice."),
    name: str | None = typer.Option(None, "--name", help="Dataset folder name."),
) -> None:
    """Project labels, split by whole local days per user, write train/val/test parquet."""
    from taskclf.train.dataset import build_dataset

    state = get_state(ctx)
    start, end = _range(date_from, date_to)
    config = state.config
    built = build_dataset(
        state.layout,
        start,
        end,
        user_ids=user_id or None,
        schema_version=(schema_version or SchemaVersionOption.v3).value,
        holdout_user_fraction=holdout_user_fraction or 0.0,
        seed=seed if seed is not None else 0,
        timezones=config.user_timezones,
        default_timezone=config.timezone,
        name=name,
    )
    console.print(_split_table(built.summary, f"Dataset {built.name}"))
    _print_split_notes(built.summary)
    console.print(f"labels: {built.data_provenance}; dataset hash {built.dataset_hash}")
    console.print(f"written to {built.path}")


@app.command("lgbm")
def lgbm_cmd(
    ctx: typer.Context,
    date_from: str | None = _FROM,
    date_to: str | None = _TO,
    schema_version: SchemaVersionOption | None = _SCHEMA,
    num_boost_round: int | None = typer.Option(
        None,
        "--num-boost-round",
        help=f"Maximum boosting rounds (default {DEFAULT_NUM_BOOST_ROUND}).",
    ),
    class_weight: ClassWeightOption | None = typer.Option(
        None, "--class-weight", help="Class weighting (default balanced)."
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        help=f"Seed of LightGBM and the held-out users (default {DEFAULT_RANDOM_STATE}).",
    ),
    holdout_user_fraction: float | None = _HOLDOUT,
    user_id: list[str] | None = _USERS,
    train_ratio: float | None = typer.Option(
        None,
        "--train-ratio",
        help=f"Share of each user's days, oldest first, to train on ({DEFAULT_TRAIN_RATIO}).",
    ),
    val_ratio: float | None = typer.Option(
        None,
        "--val-ratio",
        help=(
            f"Share of each user's days for validation, i.e. early stopping and calibration "
            f"(default {DEFAULT_VAL_RATIO}); the rest are test days."
        ),
    ),
) -> None:
    """Train a LightGBM model on labeled days and save it as a model bundle."""
    from taskclf.train.lgbm import TrainRunOptions, train_and_save

    state = get_state(ctx)
    start, end = _range(date_from, date_to)
    config = state.config
    options = TrainRunOptions(
        schema_version=(schema_version or SchemaVersionOption.v3).value,
        num_boost_round=num_boost_round if num_boost_round is not None else DEFAULT_NUM_BOOST_ROUND,
        class_weight="none" if class_weight == ClassWeightOption.none else "balanced",
        seed=seed if seed is not None else DEFAULT_RANDOM_STATE,
        holdout_user_fraction=holdout_user_fraction or 0.0,
        user_ids=user_id or None,
        timezones=config.user_timezones,
        default_timezone=config.timezone,
        train_ratio=DEFAULT_TRAIN_RATIO if train_ratio is None else train_ratio,
        val_ratio=DEFAULT_VAL_RATIO if val_ratio is None else val_ratio,
    )
    with _progress(options.num_boost_round) as (progress, stage, rounds):
        result = train_and_save(
            state.layout,
            start,
            end,
            options,
            on_stage=lambda msg: progress.update(stage, description=msg),
            on_round=lambda done, total: progress.update(
                rounds, completed=done, total=total, visible=True
            ),
        )
    console.print(_split_table(result.split, "Day-blocked split"))
    _print_split_notes(result.split)
    _print_label_notes(state.layout, result.split, start, end)
    m = result.metrics
    console.print(
        f"validation: macro F1 {m['macro_f1']:.3f}, weighted F1 {m['weighted_f1']:.3f}, "
        f"NLL {m['nll']:.3f}; rounds used {result.params['num_boost_round_used']} of "
        f"{result.params['num_boost_round']}; labels {result.data_provenance}"
    )
    console.print(f"saved model bundle {result.run_dir}")
    if result.activated:
        console.print("activated it (there was no active model)")
    console.print(f"run id: [bold]{result.run_id}[/]")


def _gates_table(gates: GateReport, rows: str = "all test rows") -> Table:
    table = compact_table(
        f"Acceptance gates ({rows}): {'PASS' if gates.passed else 'FAIL'}",
        [
            ("gate", "key"),
            ("value", "num"),
            ("requirement", "text"),
            ("status", "key"),
            ("detail", "text"),
        ],
    )
    for g in gates.gates:
        value = "-" if g.value is None else f"{g.value:.3f}"
        style = {"pass": "green", "fail": "red"}.get(g.status, "yellow")
        table.add_row(g.name, value, g.requirement, f"[{style}]{g.status}[/]", g.detail)
    return table


def _per_class_table(report: EvaluationReport) -> Table:
    table = Table(title=f"Test days: {report.rows} rows, {report.users} users")
    for col in ("label", "precision", "recall", "F1", "support", "predicted"):
        table.add_column(col, justify="right" if col != "label" else "left")
    for c in report.classification.per_class:
        table.add_row(
            c.label,
            "-" if c.precision is None else f"{c.precision:.3f}",
            "-" if c.recall is None else f"{c.recall:.3f}",
            f"{c.f1:.3f}",
            str(c.support),
            str(c.predicted),
        )
    return table


def _render_evaluation(report: EvaluationReport) -> None:
    console.print(_per_class_table(report))
    cls, cal = report.classification, report.calibration
    console.print(
        f"macro F1 {cls.macro_f1:.3f}  weighted F1 {cls.weighted_f1:.3f}  accuracy "
        f"{cls.accuracy:.3f}"
    )
    console.print(
        f"calibration: NLL {cal.nll:.3f}  Brier {cal.brier:.3f}  top-label ECE "
        f"{cal.ece_top_label:.3f}  mean classwise ECE {cal.classwise_ece_mean:.3f} "
        f"({cal.n_bins} equal-width bins)"
    )
    console.print(
        f"reject rate {report.reject.reject_rate:.3f} at threshold {report.reject.threshold:.2f}"
        f"; flap rate raw {report.flap.raw:.3f} -> smoothed {report.flap.smoothed:.3f} "
        f"(window {report.flap.smooth_window})"
    )
    for label, group in (("seen users", report.seen_users), ("unseen users", report.unseen_users)):
        if group is not None:
            console.print(
                f"{label}: {group.users} users, {group.rows} rows, macro F1 {group.macro_f1:.3f}"
            )
    console.print(_gates_table(report.gates))
    if report.gates_seen is not None:
        console.print(_gates_table(report.gates_seen, "seen users' rows only"))


@app.command("evaluate")
def evaluate_cmd(
    ctx: typer.Context,
    model_dir: Path | None = typer.Option(
        None, "--model-dir", help="Model bundle directory (default: the active model)."
    ),
    date_from: str | None = typer.Option(
        None, "--from", help="First date (default: the bundle's training range)."
    ),
    date_to: str | None = typer.Option(None, "--to", help="Last date (inclusive)."),
) -> None:
    """Evaluate a model bundle on its test days: F1, calibration, reject, flap, gates."""
    from taskclf.core.model_io import get_active_model
    from taskclf.train.evaluate import evaluate_bundle

    state = get_state(ctx)
    start, end = _optional_range(date_from, date_to)
    run_dir = model_dir or get_active_model(state.layout)
    if run_dir is None:
        raise InputError(
            "no --model-dir given and no active model; train one with 'taskclf train lgbm'"
        )
    with console.status("evaluating on the test days"):
        result = evaluate_bundle(state.layout, run_dir, start, end)
    _render_evaluation(result.report)
    console.print(f"written to {result.out_dir}")
