from __future__ import annotations

import subprocess
import sys

import pytest

from taskclf import __version__
from taskclf.cli.main import app, run

GROUPS = [
    "ingest",
    "features",
    "labels",
    "train",
    "model",
    "policy",
    "taxonomy",
    "infer",
    "report",
    "demo",
    "synth",
]


def test_version(capsys):
    assert run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"taskclf {__version__}"


def test_help_lists_every_group(capsys):
    assert run(["--help"]) == 0
    out = capsys.readouterr().out
    for group in GROUPS:
        assert group in out


@pytest.mark.parametrize("group", [g for g in GROUPS if g != "demo"])
def test_group_help(group, capsys):
    assert run([group, "--help"]) == 0
    assert "Usage" in capsys.readouterr().out


def test_usage_error_exits_2(capsys):
    assert run(["no-such-command"]) == 2


def test_taskclf_error_exits_2_without_traceback(tmp_path, capsys):
    (tmp_path / "configs").mkdir(parents=True)
    (tmp_path / "configs" / "config.toml").write_text("user_id = [broken")
    code = run(["--home", str(tmp_path), "labels", "list"])
    err = capsys.readouterr().err
    assert code == 2
    assert "config.toml" in err and "not valid TOML" in err
    assert "Traceback" not in err


def test_demo_refuses_a_non_empty_home(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert run(["--home", str(tmp_path), "demo"]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def test_unexpected_error_exit_1_traceback_only_with_debug(monkeypatch, capsys):
    import typer

    boom = typer.Typer()

    @boom.command()
    def explode() -> None:
        raise ZeroDivisionError("kaboom")

    app.add_typer(boom, name="boom-test")
    try:
        assert run(["boom-test", "explode"]) == 1
        err = capsys.readouterr().err
        assert "ZeroDivisionError" in err and "Traceback" not in err
        assert run(["--debug", "boom-test", "explode"]) == 1
        assert "Traceback" in capsys.readouterr().err
    finally:
        app.registered_groups.pop()


def test_console_script_entry_point():
    out = subprocess.run(
        [sys.executable, "-m", "taskclf", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"taskclf {__version__}"
