"""Render the CLI reference (README section) from the Typer app, so docs match ``--help``."""

from __future__ import annotations

from typing import Any

import typer.main

START = "<!-- cli-reference:start -->"
END = "<!-- cli-reference:end -->"


def _walk(command: Any, prefix: list[str]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return [(" ".join(prefix), command.get_short_help_str(limit=120))]
    for name in sorted(subcommands):
        rows.extend(_walk(subcommands[name], [*prefix, name]))
    return rows


def render_cli_reference() -> str:
    """Markdown table of every command and its one-line help."""
    from taskclf.cli.main import app

    rows = _walk(typer.main.get_command(app), ["taskclf"])
    lines = [START, "", "| command | what it does |", "|---|---|"]
    lines += [f"| `{name}` | {text.replace('|', '/')} |" for name, text in rows]
    lines += ["", "Every command has `--help` with all its options.", "", END]
    return "\n".join(lines)


def update_readme(text: str) -> str:
    """Replace the reference block of a README text."""
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    return head + render_cli_reference() + tail


if __name__ == "__main__":  # pragma: no cover - `make docs`
    from pathlib import Path

    readme = Path("README.md")
    readme.write_text(update_readme(readme.read_text(encoding="utf-8")), encoding="utf-8")
