"""`taskclf demo`: the whole product end to end on synthetic data, through its own CLI.

Generates synthetic ActivityWatch exports for several users, then runs the same commands a
user runs — ingest, features, label import, train, evaluate, calibrate, tune-reject (writing
the policy), batch inference and daily reports — in a fresh home, and prints a summary:
macro-F1 for seen and unseen users, per-user held-out NLL/ECE with the global calibrator vs
the per-user store, reject rates and thresholds, and where every artifact was written.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from taskclf import __version__
from taskclf.cli._common import compact_table, console, err_console, get_state
from taskclf.core.config import Config, save_config
from taskclf.core.errors import InputError
from taskclf.core.paths import Layout

if TYPE_CHECKING:
    import pandas as pd

TRAIN_RATIO = 0.5
VAL_RATIO = 0.3


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence the commands' own output while the demo shows its progress bar."""
    before = (console.quiet, err_console.quiet)
    console.quiet = err_console.quiet = True
    try:
        yield
    finally:
        console.quiet, err_console.quiet = before


def _invoke(home: Path, args: list[str]) -> None:
    """Run one taskclf command in-process exactly as the command line would."""
    import typer.main

    from taskclf.cli.main import app

    command = typer.main.get_command(app)
    command.main(args=["--home", str(home), *args], prog_name="taskclf", standalone_mode=False)


def _steps(
    home: Path, synth: Path, users: int, days: int, seed: int
) -> list[tuple[str, list[str]]]:
    start = date(2026, 1, 5)
    end = start + timedelta(days=days - 1)
    rng = [
        "--from",
        (start - timedelta(days=1)).isoformat(),
        "--to",
        (end + timedelta(1)).isoformat(),
    ]
    holdout = f"{1 / users + 1e-6:.6f}" if users >= 4 else "0"
    steps: list[tuple[str, list[str]]] = [
        (
            "generate synthetic exports",
            [
                "synth",
                "--users",
                str(users),
                "--days",
                str(days),
                "--seed",
                str(seed),
                "--out",
                str(synth),
                "--start-date",
                start.isoformat(),
            ],
        ),
        ("configure time zones", []),
    ]
    for i in range(1, users + 1):
        uid = f"user-{i:02d}"
        steps.append(
            (
                f"ingest {uid}",
                ["ingest", "aw", "--input", str(synth / f"{uid}.json"), "--user-id", uid],
            )
        )
    steps += [
        ("build features", ["features", "build", *rng]),
        ("import labels", ["labels", "import", str(synth / "labels.csv")]),
        (
            "train LightGBM",
            [
                "train",
                "lgbm",
                *rng,
                "--holdout-user-fraction",
                holdout,
                "--train-ratio",
                str(TRAIN_RATIO),
                "--val-ratio",
                str(VAL_RATIO),
                "--seed",
                str(seed),
            ],
        ),
        ("evaluate on test days", ["train", "evaluate", *rng]),
        ("fit calibrators", ["train", "calibrate", *rng]),
        ("tune reject thresholds", ["train", "tune-reject", *rng, "--write-policy"]),
        ("batch inference", ["infer", "batch", *rng, "--no-reports"]),
        ("daily reports", ["report", "daily", *rng]),
        ("range summary", ["report", "summary", *rng]),
    ]
    return steps


def _configure(layout: Layout, synth: Path) -> None:
    meta = json.loads((synth / "users.json").read_text(encoding="utf-8"))
    zones = {u["user_id"]: u["timezone"] for u in meta["users"]}
    first = sorted(zones)[0]
    save_config(layout, Config(user_id=first, timezone="UTC", user_timezones=zones))


def run_demo(home: Path, *, users: int, days: int, seed: int) -> float:
    """Run every step; return the elapsed seconds."""
    layout = Layout.resolve(home)
    synth = home / "synthetic"
    steps = _steps(home, synth, users, days, seed)
    t0 = time.perf_counter()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("starting", total=len(steps))
        for name, args in steps:
            bar.update(task, description=name)
            with _quiet():
                if args:
                    _invoke(home, [str(a) for a in args])
                else:
                    _configure(layout, synth)
            bar.advance(task)
        bar.update(task, description="done")
    return time.perf_counter() - t0


def _summary(home: Path, elapsed: float) -> None:
    from taskclf.core.inference_policy import load_inference_policy
    from taskclf.core.model_io import get_active_model
    from taskclf.train._compare import compare_calibration
    from taskclf.train.evaluate import load_evaluation

    layout = Layout.resolve(home)
    run_dir = get_active_model(layout)
    policy = load_inference_policy(layout)
    if run_dir is None or policy is None:
        raise InputError(f"demo home '{home}' has no active model or policy; the run failed")
    evaluation = load_evaluation(layout, run_dir.name)
    console.rule(f"taskclf {__version__} demo finished in {elapsed:.0f} s")
    if evaluation is not None:
        seen, unseen = evaluation.seen_users, evaluation.unseen_users
        line = f"test days: macro-F1 {evaluation.classification.macro_f1:.3f}"
        if seen is not None:
            line += f" | seen users ({seen.users}) {seen.macro_f1:.3f}"
        if unseen is not None:
            line += f" | unseen users ({unseen.users}) {unseen.macro_f1:.3f}"
        gates = "PASS" if evaluation.gates.passed else "FAIL"
        line += f" | acceptance gates: all test rows {gates}"
        if evaluation.gates_seen is not None:
            line += f", seen users' rows {'PASS' if evaluation.gates_seen.passed else 'FAIL'}"
        console.print(line)
    store_dir = layout.home / policy.calibrator_store_dir if policy.calibrator_store_dir else None
    if store_dir is not None:
        comparison = compare_calibration(layout, run_dir, store_dir)
        console.print(
            _calibration_table(
                comparison.table, policy.per_user_reject_thresholds, policy.reject_threshold
            )
        )
        console.print("* the global reject threshold (no per-user one)", style="dim")
    _time_table(layout)
    _artifacts(layout, run_dir, store_dir)


def _calibration_table(df: pd.DataFrame, per_user: dict[str, float], global_thr: float) -> Table:
    import pandas as pd

    table = compact_table(
        "Held-out test days: global calibrator vs per-user store",
        [
            ("user", "key"),
            ("rows", "num"),
            ("own\ncalibrator", "num"),
            ("NLL\nglobal", "num"),
            ("NLL\nstore", "num"),
            ("ECE\nglobal", "num"),
            ("ECE\nstore", "num"),
            ("reject\nbelow", "num"),
        ],
    )
    users = df[df["user_id"] != "ALL"]
    mean = {
        c: float(users[c].mean()) for c in ("nll_global", "nll_store", "ece_global", "ece_store")
    }
    df = pd.concat(
        [
            df,
            pd.DataFrame(
                [
                    {
                        "user_id": "mean of users",
                        "rows": int(users["rows"].sum()),
                        "personalized": False,
                        **mean,
                    }
                ]
            ),
        ],
        ignore_index=True,
    )
    for row in df.itertuples():
        thr = per_user.get(str(row.user_id))
        table.add_row(
            str(row.user_id),
            str(row.rows),
            "yes" if row.personalized else "-",
            f"{row.nll_global:.3f}",
            f"{row.nll_store:.3f}",
            f"{row.ece_global:.3f}",
            f"{row.ece_store:.3f}",
            ""
            if row.user_id in ("ALL", "mean of users")
            else f"{thr if thr is not None else global_thr:.3f}" + ("" if thr is not None else "*"),
        )
    return table


def _time_table(layout: Layout) -> None:
    """Where the time went, per user, over the demo's predicted days (``report summary``)."""
    from taskclf.cli.report import totals_table
    from taskclf.core.config import load_config
    from taskclf.report.daily_files import reports_in_range
    from taskclf.report.summary import user_totals

    config = load_config(layout)
    reports, _ = reports_in_range(
        layout,
        date(1970, 1, 1),
        date(2100, 1, 1),
        timezones=config.user_timezones,
        default_timezone=config.timezone,
    )
    days = [r.date for r in reports]
    console.print(totals_table(user_totals(reports), min(days), max(days)))


def _summary_dir(layout: Layout) -> Path | None:
    found = sorted(layout.reports_dir.glob("range=*"))
    return found[-1] if found else None


def _artifacts(layout: Layout, run_dir: Path, store_dir: Path | None) -> None:
    """Paths relative to the home (named in the title), never cut short: they are to be used."""
    table = compact_table(
        f"Where everything was written (under {escape(str(layout.home))})",
        [("artifact", "text"), ("path", "path")],
    )
    rows = [
        ("model bundle", run_dir),
        ("evaluation (JSON, PNG)", layout.evaluation_run_dir(run_dir.name)),
        ("calibrator store", store_dir),
        ("inference policy", layout.inference_policy),
        ("predictions", layout.predictions_dir),
        ("segments", layout.segments_file),
        ("daily reports", layout.reports_dir),
        ("range summary (every user's days)", _summary_dir(layout)),
        ("label store", layout.labels_db),
    ]
    for name, path in rows:
        if path is not None and path.is_relative_to(layout.home):
            path = path.relative_to(layout.home)
        table.add_row(name, escape("-" if path is None else str(path)))
    console.print(table)


def demo(
    ctx: typer.Context,
    users: int | None = typer.Option(None, "--users", min=2, help="Synthetic users (default 6)."),
    days: int | None = typer.Option(None, "--days", min=7, help="Days per user (default 14)."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default 0)."),
) -> None:
    """Run the whole product on synthetic data in a fresh home and summarize the results."""
    state = get_state(ctx)
    if state.home is not None:
        home = state.home.expanduser().absolute()
        if home.exists() and any(home.iterdir()):
            raise InputError(
                f"--home '{home}' is not empty; the demo needs a fresh home (omit --home to use "
                "a new temporary directory)"
            )
    else:
        home = Path(tempfile.mkdtemp(prefix="taskclf-demo-"))
    console.print(f"taskclf {__version__}: demo home [bold]{home}[/]")
    elapsed = run_demo(home, users=users or 6, days=days or 14, seed=0 if seed is None else seed)
    _summary(home, elapsed)
