"""``taskclf infer online`` against a real aw-server, in real time (the last hour of activity)."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from _online_helpers import AwFeeder, TrainedTemplate, fresh_home, live_user, trained_template
from taskclf.cli.main import run

pytestmark = pytest.mark.awserver


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> TrainedTemplate:
    return trained_template(tmp_path_factory.mktemp("trained"))


def _shifted(export: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    out = copy.deepcopy(export)
    for bucket in out["buckets"].values():
        for ev in bucket["events"]:
            ev["timestamp"] = (datetime.fromisoformat(ev["timestamp"]) + delta).isoformat()
    return out


@pytest.mark.parametrize("settle", [None, 240])
def test_online_command_predicts_the_last_hour(
    template: TrainedTemplate,
    aw_server: Any,
    tmp_path: Any,
    capsys: pytest.CaptureFixture[str],
    settle: int | None,
) -> None:
    user = live_user(0, date(2026, 1, 8))
    first = AwFeeder(aw_server.url, user.export).first_start
    # the day's activity, moved so that it started 50 minutes ago
    now = datetime.now(UTC)
    shift = now - timedelta(minutes=50) - first
    shift = timedelta(milliseconds=round(shift / timedelta(milliseconds=1)))
    feeder = AwFeeder(aw_server.url, _shifted(user.export, shift))
    feeder.create_buckets()
    feeder.advance(now)
    home = fresh_home(template, tmp_path / "home", user_id=user.user_id)
    args = ["infer", "online", "--aw-host", aw_server.url, "--max-polls", "2"]
    if settle is not None:
        args += ["--settle-seconds", str(settle)]
    code = run(["--home", str(home.home), *args, "--poll-seconds", "0.05"])
    done = datetime.now(UTC)
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out[-2000:]
    assert "Inference settings" in out and "policy" in out
    files = sorted(home.online_dir.rglob("*.jsonl"))
    lines = [json.loads(x) for f in files for x in f.read_text(encoding="utf-8").splitlines()]
    # the closed minutes of the last ~50 (a minute settles 5 s by default, else 4 minutes)
    lo, hi = (40, 52) if settle is None else (36, 48)
    assert lo <= len(lines) <= hi
    last_end = max(datetime.fromisoformat(r["bucket_start_ts"]) for r in lines) + timedelta(
        minutes=1
    )
    assert last_end <= done - timedelta(seconds=settle or 5)
    assert f"stopped after 2 poll(s): {len(lines)} minute(s) written" in out
    # the user's local days (the config maps this user to its own zone), one file each
    days = sorted(f.stem for f in files)
    for day in days:  # where each day's records and report are
        assert f"{day}: records " in out and f"{day}.report" in out.replace(" ", "")
    # the first poll writes the last hour's closed minutes and says so in one line
    assert re.search(r"\d+ minutes written, \d\d:\d\d-\d\d:\d\d; last \d\d:\d\d \w", out)
    assert {r["user_id"] for r in lines} == {user.user_id}
    assert {r["model_id"] for r in lines} == {template.run_id}
    assert sorted(home.online_dir.rglob("*.segments.json"))


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf"])
def test_bad_poll_seconds_exit_2_before_any_poll(template, tmp_path, capsys, value) -> None:
    home = fresh_home(template, tmp_path / "home")
    args = ["infer", "online", "--aw-host", "http://127.0.0.1:9", "--max-polls", "1"]
    assert run(["--home", str(home.home), *args, "--poll-seconds", value]) == 2
    assert "--poll-seconds must be a number of seconds" in capsys.readouterr().err
    assert not home.online_dir.exists()
