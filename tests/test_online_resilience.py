"""The online loop keeps going through a server outage, policy swaps and its own restart.

One synthetic day arrives in a real aw-server over fake time while ``OnlineLoop.run`` polls
(its ``sleep`` is where the fake time passes). Along the way: the server is stopped and
restarted on the same port; the inference policy is swapped to another model (reloaded), then
to two invalid policies (ignored, the running one kept), then back; the loop is stopped with
Ctrl+C and a new loop (a new process) continues after a torn line was left at the end of the
day's file. Afterwards every minute with data appears exactly once.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from _online_helpers import (
    AwFeeder,
    FakeClock,
    TrainedTemplate,
    batch_from_server,
    fresh_home,
    live_user,
    online_lines,
    trained_template,
)
from taskclf.adapters.activitywatch.client import AWClient
from taskclf.core._atomic import atomic_write_text
from taskclf.core.config import load_config
from taskclf.core.inference_policy import build_inference_policy, save_inference_policy
from taskclf.core.paths import Layout
from taskclf.core.time import floor_minute
from taskclf.infer.online import OnlineLoop, PollStats
from taskclf.infer.prediction import read_online_records
from taskclf.infer.resolve import resolve_settings

pytestmark = pytest.mark.awserver

DAY = date(2026, 1, 8)
POLL_SECONDS = 600.0
OTHER_RUN = "2026-01-01_000000_run-beef"
TORN = '{"user_id":"user-02","bucket_start_ts":"2026-01-0'


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> TrainedTemplate:
    return trained_template(tmp_path_factory.mktemp("trained"))


class _Stop(KeyboardInterrupt):
    """Ctrl+C, pressed by the scenario."""


class _Scenario:
    """The fake ``sleep`` of ``OnlineLoop.run``: time passes, watchers report, things happen."""

    def __init__(self, feeder: AwFeeder, clock: FakeClock, server: Any) -> None:
        self.feeder, self.clock, self.server = feeder, clock, server
        self.up = True
        self.loop: OnlineLoop | None = None
        self.actions: dict[int, Callable[[], None]] = {}
        self.stop_at: datetime | None = None
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        assert self.loop is not None
        self.slept.append(seconds)
        action = self.actions.pop(self.loop.stats.polls, None)
        if action is not None:
            action()
        self.clock.advance(seconds)
        if self.up:
            self.feeder.advance(self.clock.now)
        if self.stop_at is not None and self.clock.now >= self.stop_at:
            raise _Stop

    def server_down(self) -> None:
        self.server.stop()
        self.up = False

    def server_up(self) -> None:
        self.server.start()
        self.up = True


def _loop(layout: Layout, url: str, clock: FakeClock) -> OnlineLoop:
    return OnlineLoop(
        layout,
        load_config(layout),
        resolve=lambda: resolve_settings(layout),
        client=AWClient(url, retries=0, timeout=5),
        clock=clock,
    )


@pytest.mark.slow
def test_loop_survives_outage_policy_swaps_and_restart(
    template: TrainedTemplate, aw_server: Any, tmp_path: Path
) -> None:
    user = live_user(1, DAY)
    feeder = AwFeeder(aw_server.url, user.export)
    feeder.create_buckets()
    home = fresh_home(template, tmp_path / "online", user_id=user.user_id)
    shutil.copytree(home.run_dir(template.run_id), home.run_dir(OTHER_RUN))
    original_policy = home.inference_policy.read_text(encoding="utf-8")
    clock = FakeClock(floor_minute(feeder.first_start) - timedelta(minutes=10))
    scenario = _Scenario(feeder, clock, aw_server)
    boundaries: dict[str, datetime] = {}

    def write_policy(name: str, text: str) -> Callable[[], None]:
        def act() -> None:
            assert scenario.loop is not None
            start = scenario.loop.state.next_bucket_start
            assert start is not None
            boundaries[name] = start  # minutes from here on are scored by the next poll
            atomic_write_text(home.inference_policy, text)

        return act

    other = build_inference_policy(home, home.run_dir(OTHER_RUN), reject_threshold=1.0)
    mismatched = build_inference_policy(
        home,
        home.run_dir(OTHER_RUN),
        calibrator_store_dir=home.calibrator_store_dir,  # fitted for the other model
        reject_threshold=0.5,
    )
    save_inference_policy(other, tmp_path / "other.json")
    save_inference_policy(mismatched, tmp_path / "mismatched.json")
    scenario.actions = {
        4: scenario.server_down,
        6: scenario.server_up,
        10: write_policy("other", (tmp_path / "other.json").read_text()),
        12: write_policy("mismatched", (tmp_path / "mismatched.json").read_text()),
        14: write_policy("garbage", "{not json"),
        17: write_policy("original", original_policy),
    }
    scenario.stop_at = feeder.first_start + timedelta(hours=4)

    first = scenario.loop = _loop(home, aw_server.url, clock)
    stats1 = first.run(poll_seconds=POLL_SECONDS, sleep=scenario.sleep)
    assert not scenario.actions  # every event of the scenario happened
    assert stats1.server_errors >= 2 and stats1.poll_errors == 0
    assert (stats1.policy_reloads, stats1.policy_rejections) == (2, 2)
    assert stats1.last_error is not None and "unreachable" in stats1.last_error
    assert min(scenario.slept) == POLL_SECONDS  # a backoff never undercuts the poll interval

    # a crash mid-append left a torn line; a new process picks up where the file ends
    day_file = home.online_predictions_file(user.user_id, DAY)
    kept = day_file.read_text(encoding="utf-8")
    with day_file.open("a", encoding="utf-8") as fh:
        fh.write(TORN)
    scenario.stop_at = feeder.last_end + timedelta(minutes=10)
    second = scenario.loop = _loop(home, aw_server.url, clock)
    stats2 = second.run(poll_seconds=POLL_SECONDS, sleep=scenario.sleep)
    assert stats2.server_errors == stats2.poll_errors == 0
    text = day_file.read_text(encoding="utf-8")
    assert text.startswith(kept) and text.endswith("\n")
    assert all(json.loads(line)["user_id"] == user.user_id for line in text.splitlines())

    _check_records(home, template, user.user_id, boundaries, [stats1, stats2])
    batch = batch_from_server(
        fresh_home(template, tmp_path / "batch", user_id=user.user_id),
        aw_server.url,
        user.user_id,
        DAY,
    )
    # nothing missing, nothing twice: the online minutes are exactly the batch minutes
    online = read_online_records(day_file)
    assert online["bucket_start_ts"].tolist() == batch.predictions["bucket_start_ts"].tolist()


def _check_records(
    home: Layout,
    template: TrainedTemplate,
    user_id: str,
    boundaries: dict[str, datetime],
    stats: list[PollStats],
) -> None:
    records = pd.DataFrame([json.loads(line) for line in online_lines(home, user_id)])
    starts = pd.to_datetime(records["bucket_start_ts"], utc=True)
    assert not starts.duplicated().any()
    assert starts.is_monotonic_increasing
    assert sum(s.minutes_written for s in stats) == len(records)
    # each minute names the model that scored it; the swapped-in policy (threshold 1.0)
    # rejects everything it scored, the invalid ones changed nothing
    swapped = (starts >= boundaries["other"]) & (starts < boundaries["original"])
    assert swapped.sum() > 20 and (~swapped).sum() > 100
    assert (records.loc[swapped, "model_id"] == OTHER_RUN).all()
    assert records.loc[swapped, "is_rejected"].all()
    assert (records.loc[~swapped, "model_id"] == template.run_id).all()
    assert not records.loc[~swapped, "is_rejected"].all()


@pytest.mark.parametrize("fails", [True, False])
def test_no_wait_after_the_last_poll_max_polls_allows(fails: bool) -> None:
    from taskclf.core.errors import SourceError
    from taskclf.infer.online import OnlineLoop, PollStats

    class Loop(OnlineLoop):
        def __init__(self) -> None:  # only what run() uses
            self.stats = PollStats()

        def poll_once(self) -> pd.DataFrame:
            self.stats.polls += 1
            if fails:
                raise SourceError("server unreachable")
            return pd.DataFrame()

        def finish(self) -> list[date]:
            return []

    slept: list[float] = []
    stats = Loop().run(poll_seconds=5.0, max_polls=3, sleep=slept.append)
    assert stats.polls == 3
    assert slept == ([10.0, 20.0] if fails else [5.0, 5.0])  # two waits between three polls


def test_unclip_restores_clipped_starts_but_not_for_a_reused_id() -> None:
    from types import SimpleNamespace

    from taskclf.adapters.activitywatch.export import AWEvent
    from taskclf.infer.online import OnlineLoop, _from_us

    loop = SimpleNamespace(_seen={})
    s = 1_000_000

    def unclip(start: int, dur: int, since: int) -> list[AWEvent]:
        ev = AWEvent(start * s, dur * s, {"app": "a"})
        return OnlineLoop._unclip(loop, "w", [ev], [7], _from_us(since * s), _from_us(0))  # type: ignore[arg-type]

    assert [e.start_us for e in unclip(100, 50, 60)] == [100 * s]
    # the same event, clipped by the server at ``since`` = 120 and grown: its start comes back
    (grown,) = unclip(120, 40, 120)
    assert (grown.start_us, grown.duration_us) == (100 * s, 60 * s)
    # after a delete the server reuses id 7 for a new event: it keeps its own start
    (new,) = unclip(500, 5, 400)
    assert (new.start_us, new.duration_us) == (500 * s, 5 * s)
