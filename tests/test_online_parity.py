"""Online loop against a real aw-server == ``infer batch`` over the same events (issue #7).

A synthetic user's day (every bucket kind) arrives in the server over fake time; the online loop
polls after each step. Then the batch path ingests the same server and predicts the same day.
Every minute's record must be identical, byte for byte.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
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
from conftest import REAL_DATA
from taskclf.adapters.activitywatch.client import AWClient
from taskclf.core.config import load_config
from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.paths import Layout
from taskclf.core.time import floor_minute
from taskclf.infer.online import OnlineLoop
from taskclf.infer.prediction import record_to_json
from taskclf.infer.resolve import resolve_settings
from taskclf.report.export import read_segments

pytestmark = pytest.mark.awserver

DAY = date(2026, 1, 8)
# Fake seconds between polls: a mix of sub-minute, minute-ish and long steps, so polls close
# zero, one or many minutes and land anywhere inside a minute.
STEPS = (7, 61, 290, 600, 900, 1500)


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> TrainedTemplate:
    return trained_template(tmp_path_factory.mktemp("trained"))


def _online_loop(layout: Layout, url: str, clock: FakeClock) -> OnlineLoop:
    return OnlineLoop(
        layout,
        load_config(layout),
        resolve=lambda: resolve_settings(layout),
        client=AWClient(url, retries=0),
        clock=clock,
    )


def _drive(loop: OnlineLoop, feeder: AwFeeder, clock: FakeClock, seed: int) -> None:
    rng = np.random.default_rng(seed)
    end = feeder.last_end + timedelta(minutes=10)
    while clock.now < end:
        clock.advance(float(rng.choice(STEPS)))
        feeder.advance(clock.now)
        loop.poll_once()
    loop.finish()


@pytest.mark.slow
def test_online_loop_over_a_live_day_equals_batch(
    template: TrainedTemplate, aw_server: Any, tmp_path: Path
) -> None:
    user = live_user(1, DAY)  # the "noisy" archetype: window, AFK, web and input buckets
    feeder = AwFeeder(aw_server.url, user.export)
    feeder.create_buckets()
    online = fresh_home(template, tmp_path / "online", user_id=user.user_id)
    clock = FakeClock(floor_minute(feeder.first_start) - timedelta(minutes=10))
    loop = _online_loop(online, aw_server.url, clock)
    _drive(loop, feeder, clock, seed=0)
    assert loop.stats.server_errors == loop.stats.poll_errors == 0

    batch_home = fresh_home(template, tmp_path / "batch", user_id=user.user_id)
    batch = batch_from_server(batch_home, aw_server.url, user.user_id, DAY)
    batch_lines = [record_to_json(r) for r in batch.predictions.to_dict("records")]
    lines = online_lines(online, user.user_id)
    # the JSONL files hold exactly the batch records, in the same order, byte for byte
    assert len(lines) == len(batch_lines) > 300
    assert lines == batch_lines

    # the records exercise every step: per-user reject, smoothing and the taxonomy
    records = [json.loads(line) for line in lines]
    assert {r["model_id"] for r in records} == {template.run_id}
    rejected = [r["is_rejected"] for r in records]
    assert any(rejected) and not all(rejected)
    assert MIXED_UNKNOWN in {r["predicted_label"] for r in records}
    assert any(r["mapped_label"] != r["predicted_label"] for r in records)
    assert any(r["predicted_label"] not in (r["core_label"], MIXED_UNKNOWN) for r in records)

    # segments written when the loop stopped equal the batch segments of that day
    days = sorted(loop.stats.days)
    online_segments = [
        s for d in days for s in read_segments(online.online_segments_file(user.user_id, d))
    ]
    assert online_segments == batch.result.segments

    # the day's report, written apart from the batch reports, equals the batch report
    for d in days:
        online_report = online.online_report_dir(user.user_id, d) / "daily.json"
        batch_report = batch_home.report_dir(user.user_id, d) / "daily.json"
        assert online_report.read_bytes() == batch_report.read_bytes()
    assert not online.reports_dir.exists()


@pytest.mark.slow
def test_loop_started_mid_day_writes_batch_records(
    template: TrainedTemplate, aw_server: Any, tmp_path: Path
) -> None:
    """Started hours into the day, the loop rebuilds the day's state from history.

    Its warm-up minutes (the last hour) and everything after equal the batch records of the
    same minutes: the open session, title repeats and look-back windows come from the events
    before the warm-up, which are read but not written.
    """
    user = live_user(1, DAY)
    feeder = AwFeeder(aw_server.url, user.export)
    feeder.create_buckets()
    started = floor_minute(feeder.first_start + timedelta(hours=4))
    feeder.advance(started)
    online = fresh_home(template, tmp_path / "online", user_id=user.user_id)
    clock = FakeClock(started)
    loop = _online_loop(online, aw_server.url, clock)
    _drive(loop, feeder, clock, seed=1)

    batch_home = fresh_home(template, tmp_path / "batch", user_id=user.user_id)
    batch = batch_from_server(batch_home, aw_server.url, user.user_id, DAY)
    first = started - timedelta(minutes=60)
    records = batch.predictions[batch.predictions["bucket_start_ts"] >= first]
    batch_lines = [record_to_json(r) for r in records.to_dict("records")]
    lines = online_lines(online, user.user_id)
    assert len(batch_lines) < len(batch.predictions)  # the morning is not written online
    assert len(lines) == len(batch_lines) > 100
    assert lines == batch_lines


def _export(
    bucket_events: dict[str, list[tuple[datetime, float, dict[str, Any]]]],
) -> dict[str, Any]:
    types = {"window": "currentwindow", "afk": "afkstatus"}
    buckets = {}
    for kind, events in bucket_events.items():
        bid = f"aw-watcher-{kind}_host"
        buckets[bid] = {
            "id": bid,
            "type": types[kind],
            "client": f"aw-watcher-{kind}",
            "hostname": "host",
            "events": [
                {"timestamp": ts.isoformat(), "duration": dur, "data": data}
                for ts, dur, data in events
            ],
        }
    return {"buckets": buckets}


def test_events_the_server_clips_at_the_fetch_start_are_restored(
    template: TrainedTemplate, aw_server: Any, tmp_path: Path
) -> None:
    # Overlapping window events, as real exports have: a long one, a second starting inside
    # it, a short third inside both. The loop reads a bucket from its latest event start (or
    # the idle-gap horizon), so the server returns the two older, still growing events
    # clipped to that point; restored, they keep resolving the foreground (latest start
    # wins) exactly as in batch.
    t0 = datetime(2026, 1, 8, 14, 0, 7, 250_000, tzinfo=UTC)
    win = [
        (t0, 3000.0, {"app": "Code", "title": "main.py - taskclf"}),
        (t0 + timedelta(seconds=100), 1900.0, {"app": "Firefox", "title": "docs - pandas"}),
        (t0 + timedelta(seconds=1000), 10.0, {"app": "Slack", "title": "general"}),
        (t0 + timedelta(seconds=3000), 600.0, {"app": "Terminal", "title": "pytest"}),
    ]
    afk = [(t0 - timedelta(seconds=30), 4200.0, {"status": "not-afk"})]
    feeder = AwFeeder(aw_server.url, _export({"window": win, "afk": afk}))
    feeder.create_buckets()
    online = fresh_home(template, tmp_path / "online", user_id="user-02")
    clock = FakeClock(floor_minute(feeder.first_start) - timedelta(minutes=3))
    loop = _online_loop(online, aw_server.url, clock)
    _drive(loop, feeder, clock, seed=3)
    batch = batch_from_server(
        fresh_home(template, tmp_path / "batch", user_id="user-02"),
        aw_server.url,
        "user-02",
        DAY,
    )
    expected = [record_to_json(r) for r in batch.predictions.to_dict("records")]
    assert len(expected) >= 65
    assert online_lines(online, "user-02") == expected


def _real_day(window_file: str, afk_csv: str, day: date) -> dict[str, Any]:
    """One UTC day of a real window export plus the same person's AFK CSV, as an export."""
    lo = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    hi = lo + timedelta(days=1)

    def overlaps(timestamp: str, duration: float) -> bool:
        start = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
        return start < hi and start + timedelta(seconds=duration) > lo

    export = json.loads((REAL_DATA / window_file).read_text())
    ((bucket_id, window),) = export["buckets"].items()
    window["events"] = [e for e in window["events"] if overlaps(e["timestamp"], e["duration"])]
    with open(REAL_DATA / afk_csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    afk = [
        {
            "timestamp": r["timestamp"],
            "duration": float(r["duration"]),
            "data": {"status": r["status"]},
        }
        for r in rows
        if overlaps(r["timestamp"], float(r["duration"]))
    ]
    afk_bucket = {"type": "afkstatus", "client": "aw-watcher-afk", "hostname": window["hostname"]}
    return {"buckets": {bucket_id: window, "aw-watcher-afk_real": {**afk_bucket, "events": afk}}}


@pytest.mark.slow
@pytest.mark.parametrize("recording", ["laptop", "ania"])
def test_online_loop_over_real_recordings_equals_batch(
    recording: str, template: TrainedTemplate, aw_server: Any, tmp_path: Path
) -> None:
    """Real recordings replayed over fake time: the loop's records equal batch, byte for byte.

    ``laptop``: a whole export (window, AFK and Firefox buckets, an empty stopwatch bucket)
    with zero-duration window events, AFK events repeated with one start and several
    durations, and a UTC midnight inside it. ``ania``: the busiest day of a window export
    with the person's AFK CSV (heavy AFK duplication and overlaps, events running into the
    day from before it).
    """
    if recording == "laptop":
        export = json.loads((REAL_DATA / "aw_mhacks_LAPTOP-MCRJASPH_export.json").read_text())
    else:
        day = date(2026, 1, 15)
        export = _real_day("aw_twd_ania_window_export.json", "aw_twd_ania_afk.csv", day)
    feeder = AwFeeder(aw_server.url, export)
    feeder.create_buckets()
    user_id = f"real-{recording}"
    online = fresh_home(template, tmp_path / "online", user_id=user_id)
    clock = FakeClock(floor_minute(feeder.first_start) - timedelta(minutes=5))
    loop = _online_loop(online, aw_server.url, clock)
    _drive(loop, feeder, clock, seed=4)
    assert loop.stats.server_errors == loop.stats.poll_errors == 0

    first, last = feeder.first_start.date(), feeder.last_end.date()
    assert (last - first).days <= 2  # batch_from_server reads the middle day ± 1
    batch = batch_from_server(
        fresh_home(template, tmp_path / "batch", user_id=user_id),
        aw_server.url,
        user_id,
        first + (last - first) / 2 if last > first + timedelta(days=1) else last,
    )
    expected = [record_to_json(r) for r in batch.predictions.to_dict("records")]
    lines = online_lines(online, user_id)
    assert len(expected) > 300
    if recording == "laptop":  # the recording crosses UTC midnight
        assert len({json.loads(line)["bucket_start_ts"][:10] for line in lines}) == 2
    assert lines == expected
