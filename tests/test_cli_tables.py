"""Tables stay readable at 80 columns, the width of a pipe or a log file (cli._common)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from taskclf.cli._common import compact_table, console
from taskclf.cli.main import run

WIDE_ROW = (
    "user-with-a-long-id",
    "2026-01-16 00:13:58",
    "1532",
    "0.1429",
    "highest coverage whose selective accuracy meets the target within bounds",
    "/home/someone/.local/share/taskclf/artifacts/reports/user-with-a-long-id/2026-01-16",
)


def _render(width: int) -> str:
    table = compact_table(
        "A wide table",
        [
            ("user", "key"),
            ("start", "key"),
            ("labeled\nminutes", "num"),
            ("NLL", "num"),
            ("why", "text"),
            ("folder", "path"),
        ],
    )
    table.add_row(*WIDE_ROW)
    out = Console(file=io.StringIO(), width=width, highlight=False)
    out.print(table)
    text = out.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(text, str)
    return text


def _column(text: str, header: str, next_header: str | None) -> str:
    """The characters of one column below the header rule, in reading order."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if f" {header} " in f"{line} ")
    start = lines[head].index(header)
    stop = lines[head].index(next_header) if next_header else None
    rule = next(i for i in range(head, len(lines)) if set(lines[i].strip()) == {"─"})
    return "".join("".join(line[start:stop].split()) for line in lines[rule + 1 :])


@pytest.mark.parametrize("width", [80, 100])
def test_ids_dates_and_numbers_are_never_cut_and_nothing_is_lost(width: int) -> None:
    text = _render(width)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for value in WIDE_ROW[:4]:
        assert value in text  # whole, on one line
    assert _column(text, "why", "folder") == "".join(WIDE_ROW[4].split())
    assert _column(text, "folder", None) == WIDE_ROW[5]


def test_labels_list_fits_80_columns(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setattr(console, "_width", 80)
    home = str(tmp_path / "home")
    for start, end in (
        ("2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"),
        ("2026-01-05T23:30:00Z", "2026-01-06T00:30:00Z"),
    ):
        args = ["--start", start, "--end", end, "--label", "ReadResearch", "--user-id", "u-17"]
        assert run(["--home", home, "labels", "add-block", *args]) == 0
    capsys.readouterr()
    assert run(["--home", home, "labels", "list"]) == 0
    out = capsys.readouterr().out
    assert "…" not in out
    assert "2026-01-05 09:00:00" in out and "10:00:00" in out  # the end on the start's day
    assert "2026-01-05 23:30:00" in out and "2026-01-06" in out and "00:30:00" in out
    assert out.count("ReadResearch") == 2 and "manual" in out
