"""``taskclf synth``: writes the dataset, prints a summary, and exits 2 on bad arguments."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from taskclf.cli.main import run


def test_synth_writes_exports_labels_and_profiles(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "synth"
    code = run(["synth", "--users", "2", "--days", "2", "--seed", "4", "--out", str(out)])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "labels.csv",
        "user-01.json",
        "user-02.json",
        "users.json",
    ]
    with (out / "labels.csv").open(newline="", encoding="utf-8") as fh:
        users = {row["user_id"] for row in csv.DictReader(fh)}
    assert users == {"user-01", "user-02"}
    printed = capsys.readouterr().out
    assert "user-02" in printed and "Europe/Warsaw" in printed
    assert str(out / "labels.csv") in printed.replace("\n", "")


def test_synth_start_date_moves_the_data(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = ["synth", "--users", "1", "--days", "1", "--out", str(out)]
    assert run([*args, "--start-date", "2025-06-02"]) == 0
    with (out / "labels.csv").open(newline="", encoding="utf-8") as fh:
        starts = [row["start_ts"] for row in csv.DictReader(fh)]
    assert starts and all(s.startswith("2025-06-02") for s in starts)


@pytest.mark.parametrize(
    "args",
    [
        ["--users", "0"],
        ["--days", "400"],
        ["--seed", "-3"],
        ["--start-date", "2026-02-30"],
        [],  # no --out
    ],
)
def test_synth_bad_arguments_exit_2(
    tmp_path: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    out_args = [] if not args else ["--out", str(tmp_path / "o")]
    assert run(["synth", *args, *out_args]) == 2
    assert "error:" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
