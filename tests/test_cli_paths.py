"""Paths and dates on the command line: a bad one is exit 2 with a message, never a crash.

Output paths inside the home's own stores (``data/``, ``models/``, the config) are refused
before anything is written; a path the file system refuses (a directory where a file
belongs, a missing folder) is reported as that path; dates must stay inside the range the
time arithmetic handles.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from taskclf.cli.main import run
from taskclf.core.paths import Layout


@pytest.fixture
def home(layout: Layout) -> Layout:
    code = run(
        ["--home", str(layout.home), "labels", "add-block", "--user-id", "me", "--label", "Build",
         "--start", "2026-01-05T09:00:00Z", "--end", "2026-01-05T10:00:00Z"]
    )  # fmt: skip
    assert code == 0
    return layout


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "argv",
    [
        ["labels", "export", "{db}"],
        ["labels", "export", "{home}/models/labels.csv"],
        ["labels", "export", "{home}/configs/config.toml"],
        ["labels", "project", "--from", "2026-01-05", "--to", "2026-01-05", "--out", "{db}"],
        ["taxonomy", "init", "--file", "{home}/data/taxonomy.yaml", "--force"],
        ["train", "calibrate", "--model-dir", "{home}/models/x", "--out", "{home}/models/s"],
    ],
)
def test_outputs_inside_the_homes_own_data_are_refused(
    home: Layout, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    before = _digest(home.labels_db)
    args = [a.format(db=home.labels_db, home=home.home) for a in argv]
    assert run(["--home", str(home.home), *args]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "inside the taskclf home's own data" in err, err
    assert _digest(home.labels_db) == before
    assert not (home.home / "data" / "taxonomy.yaml").exists()
    assert not (home.models_dir / "labels.csv").exists()


def test_file_system_refusals_name_the_path_and_exit_2(
    home: Layout, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "a-folder"
    folder.mkdir()
    assert run(["--home", str(home.home), "labels", "export", str(folder)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"cannot use '{folder}': Is a directory" in err
    (tmp_path / "a-file").write_text("x")
    under_a_file = tmp_path / "a-file" / "labels.csv"
    assert run(["--home", str(home.home), "labels", "export", str(under_a_file)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"cannot use '{tmp_path / 'a-file'}': File exists" in err
    home.taxonomy_file.mkdir(parents=True)  # a folder where the taxonomy file belongs
    assert run(["--home", str(home.home), "taxonomy", "validate"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"cannot use '{home.taxonomy_file}'" in err
    assert sorted(p.name for p in folder.iterdir()) == []


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1969-12-31"])
def test_dates_outside_the_supported_range_exit_2(
    home: Layout, capsys: pytest.CaptureFixture[str], day: str
) -> None:
    for argv in (
        ["infer", "batch", "--from", day, "--to", day],
        ["labels", "list", "--from", day, "--to", day],
        ["report", "daily", "--from", day, "--to", day],
    ):
        assert run(["--home", str(home.home), *argv]) == 2, argv
        assert "outside the supported dates 1970-01-01..9998-12-31" in capsys.readouterr().err
