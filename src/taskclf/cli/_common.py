"""Shared CLI plumbing: global state, consoles, and option helpers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Literal

import typer
from rich import box
from rich.console import Console
from rich.table import Table

from taskclf.core.config import Config, load_config
from taskclf.core.errors import InputError
from taskclf.core.paths import Layout

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)

ColumnKind = Literal["key", "num", "text", "path"]


def compact_table(title: str, columns: Sequence[tuple[str, ColumnKind]]) -> Table:
    """A table that stays readable at 80 columns (a pipe, a log file, a narrow terminal).

    Rich squeezes every column of a table wider than the console and cuts what no longer fits
    ("user-…", "0.14…"). Here ids, dates and numbers (``key``, ``num``: numbers right-aligned)
    are never wrapped or cut, so the squeeze falls on ``text`` columns, which wrap at spaces,
    and ``path`` columns; a word or path longer than its column folds onto the next line, so
    no character is lost. Headers may take two lines (``"NLL\\nraw"``), and there is no outer
    frame.
    """
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False)
    for header, kind in columns:
        if kind in ("text", "path"):
            table.add_column(header, overflow="fold")
        else:
            table.add_column(header, no_wrap=True, justify="right" if kind == "num" else "left")
    return table


@dataclass
class AppState:
    """Global options, resolved once per invocation."""

    home: Path | None = None
    debug: bool = False
    _layout: Layout | None = field(default=None, repr=False)

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = Layout.resolve(self.home)
        return self._layout

    @property
    def config(self) -> Config:
        return load_config(self.layout)


def get_state(ctx: typer.Context) -> AppState:
    """The ``AppState`` of the running invocation (root context object)."""
    root = ctx.find_root()
    if not isinstance(root.obj, AppState):
        root.obj = AppState()
    return root.obj


def require_range(date_from: date | None, date_to: date | None) -> tuple[date, date]:
    """Both ``--from`` and ``--to`` given, in order."""
    if date_from is None or date_to is None:
        raise InputError("give both --from and --to (YYYY-MM-DD, inclusive)")
    if date_to < date_from:
        raise InputError(
            f"--to {date_to.isoformat()} is before --from {date_from.isoformat()}; "
            "swap them or widen the range"
        )
    return date_from, date_to
