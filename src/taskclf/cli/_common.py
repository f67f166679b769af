"""Shared CLI plumbing: global state, consoles, and option helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import typer
from rich.console import Console

from taskclf.core.config import Config, load_config
from taskclf.core.errors import InputError
from taskclf.core.paths import Layout

console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


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
