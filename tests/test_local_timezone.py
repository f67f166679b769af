"""A home without a configured time zone uses the machine's (``core.time.local_timezone``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from taskclf.core.config import Config, load_config, save_config
from taskclf.core.paths import Layout
from taskclf.core.time import local_timezone


def _etc(tmp_path: Path, *, link: str | None = None, file: str | None = None) -> Path:
    etc = tmp_path / "etc"
    etc.mkdir()
    if link is not None:
        os.symlink(link, etc / "localtime")
    if file is not None:
        (etc / "timezone").write_text(file + "\n", encoding="utf-8")
    return etc


@pytest.mark.parametrize(
    ("tz", "link", "file", "want"),
    [
        ("Europe/Warsaw", None, None, "Europe/Warsaw"),
        (":America/New_York", "/usr/share/zoneinfo/Asia/Tokyo", None, "America/New_York"),
        ("", "/usr/share/zoneinfo/Asia/Tokyo", "Europe/Paris", "Asia/Tokyo"),
        ("", "/var/db/timezone/zoneinfo/America/Sao_Paulo", None, "America/Sao_Paulo"),
        ("", "../usr/share/zoneinfo/Etc/UTC", None, "UTC"),
        ("", None, "Europe/Paris", "Europe/Paris"),
        ("CET-1CEST", None, "Europe/Berlin", "Europe/Berlin"),  # a POSIX rule, not a name
        ("Not/A_Zone", "/usr/share/zoneinfo/Nope/Nope", "garbage", "UTC"),
        ("", "/some/other/path", None, "UTC"),
        ("/etc/passwd", None, None, "UTC"),
        ("Etc/Zulu", None, None, "UTC"),
        ("", None, None, "UTC"),
    ],
)
def test_local_timezone_lookup_order(tmp_path, monkeypatch, tz, link, file, want) -> None:
    monkeypatch.setenv("TZ", tz)
    assert local_timezone(etc=_etc(tmp_path, link=link, file=file)) == want


def test_config_without_a_zone_uses_the_machines(tmp_path, monkeypatch) -> None:
    layout = Layout.resolve(tmp_path / "home")
    monkeypatch.setenv("TZ", "Europe/Warsaw")
    assert load_config(layout).timezone == "Europe/Warsaw"  # no file
    layout.config_file.parent.mkdir(parents=True)
    layout.config_file.write_text('user_id = "ania"\n', encoding="utf-8")
    assert load_config(layout) == Config(user_id="ania", timezone="Europe/Warsaw")
    save_config(layout, Config(user_id="ania", timezone="UTC"))  # an explicit zone wins
    assert load_config(layout).timezone == "UTC"
    assert Config().timezone == "UTC"  # the model's own default is unchanged


def test_ingest_names_the_zone_it_uses(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from conftest import REAL_DATA
    from taskclf.cli.main import app

    monkeypatch.setenv("TZ", "America/New_York")
    home = tmp_path / "home"
    export = REAL_DATA / "aw_mhacks_LAPTOP-MCRJASPH_export.json"
    args = ["--home", str(home), "ingest", "aw", "--input", str(export)]
    first = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0, first.output
    assert "time zone 'America/New_York' (this machine's)" in first.output
    save_config(Layout.resolve(home), Config(timezone="UTC"))
    second = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert second.exit_code == 0 and "this machine's" not in second.output


def test_ingest_saves_the_given_zone_for_the_user(tmp_path, capsys, monkeypatch) -> None:
    from conftest import REAL_DATA
    from taskclf.cli.main import run

    home = tmp_path / "home"
    layout = Layout.resolve(home)
    export = str(REAL_DATA / "aw_mhacks_LAPTOP-MCRJASPH_export.json")

    def ingest(*extra: str) -> tuple[int, str]:
        code = run(["--home", str(home), "ingest", "aw", "--input", export, *extra])
        got = capsys.readouterr()
        return code, " ".join((got.out + got.err).split())

    for bad in (["--timezone", "Mars/Base"], ["--user-id", "../x", "--timezone", "UTC"]):
        code, out = ingest(*bad)
        assert code == 2 and not layout.config_file.exists(), out  # nothing written
    code, out = ingest("--user-id", "m", "--timezone", "America/Detroit")
    assert code == 0 and "time zone of user 'm': America/Detroit" in out, out
    assert load_config(layout).timezone_for("m") == "America/Detroit"
    assert load_config(layout).timezone == "UTC"  # the machine's (TZ=UTC) ...
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    assert load_config(layout).timezone == "Asia/Tokyo"  # ... not pinned: it follows it
    assert "\ntimezone" not in "\n" + layout.config_file.read_text(encoding="utf-8")
    layout.features_dir().mkdir(parents=True)
    code, out = ingest("--user-id", "m", "--timezone", "Europe/Warsaw")
    assert code == 0 and "it was America/Detroit; rebuild this user's features" in out
    assert load_config(layout).user_timezones == {"m": "Europe/Warsaw"}
    save_config(layout, Config(timezone="Europe/Paris"))  # a zone set in the file stays
    code, out = ingest("--user-id", "m", "--timezone", "Europe/Warsaw")
    assert code == 0 and load_config(layout).timezone == "Europe/Paris"
