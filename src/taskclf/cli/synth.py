"""`taskclf synth`: synthetic multi-user ActivityWatch exports with ground-truth labels."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from taskclf.cli._common import console
from taskclf.core.defaults import DEFAULT_SYNTH_DAYS, DEFAULT_SYNTH_USERS
from taskclf.core.errors import InputError
from taskclf.core.time import parse_date
from taskclf.core.types import LABEL_SET_V1

if TYPE_CHECKING:
    from taskclf.synthetic.generator import SyntheticDataset, SyntheticUserSummary

#: Short column headers so the per-label table fits an 80-column terminal.
_SHORT: dict[str, str] = {
    "BreakIdle": "Break",
    "Build": "Build",
    "Communicate": "Comm",
    "Debug": "Debug",
    "Meet": "Meet",
    "ReadResearch": "Read",
    "Review": "Review",
    "Write": "Write",
}


def _render(dataset: SyntheticDataset) -> None:
    users = Table(title="Synthetic users")
    for col in ("user", "archetype", "timezone", "events", "labeled h"):
        users.add_column(col, justify="right" if col in ("events", "labeled h") else "left")
    minutes = Table(title="Labeled minutes per label")
    minutes.add_column("user")
    for label in LABEL_SET_V1:
        minutes.add_column(_SHORT.get(label, label), justify="right")
    for user in dataset.users:
        total = sum(user.labeled_minutes.values())
        users.add_row(
            user.user_id, user.archetype, user.timezone, f"{user.events:,}", f"{total / 60:.1f}"
        )
        minutes.add_row(
            user.user_id,
            *(f"{user.labeled_minutes.get(label, 0.0):.0f}" for label in LABEL_SET_V1),
        )
    console.print(users)
    console.print(minutes)
    console.print(f"exports:  {len(dataset.exports)} files <user_id>.json in {dataset.out_dir}")
    console.print(f"labels:   {dataset.labels_csv}")
    console.print(f"profiles: {dataset.users_json}")


def synth(
    users: int | None = typer.Option(
        None, "--users", help=f"Number of users (1-999; default {DEFAULT_SYNTH_USERS})."
    ),
    days: int | None = typer.Option(
        None, "--days", help=f"Number of calendar days (1-366; default {DEFAULT_SYNTH_DAYS})."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (default 0)."),
    out: Path | None = typer.Option(
        None, "--out", help="Output directory for exports, labels.csv and users.json."
    ),
    start_date: str | None = typer.Option(
        None, "--start-date", help="First day, YYYY-MM-DD (default 2026-01-05, a Monday)."
    ),
) -> None:
    """Write realistic ActivityWatch exports plus ground-truth label spans for N users x D days."""
    from taskclf.synthetic.generator import generate_dataset

    if out is None:
        raise InputError("give --out DIR: the directory to write the synthetic dataset into")
    first = None if start_date is None else parse_date(start_date, field="--start-date")
    n_users = DEFAULT_SYNTH_USERS if users is None else users
    with Progress(
        TextColumn("generating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=max(n_users, 0))

        def advance(summary: SyntheticUserSummary) -> None:
            progress.update(task, advance=1, description=summary.user_id)

        dataset = generate_dataset(
            out,
            users=n_users,
            days=DEFAULT_SYNTH_DAYS if days is None else days,
            seed=0 if seed is None else seed,
            start_date=first,
            progress=advance,
        )
    _render(dataset)
