"""The synthetic ActivityWatch generator: format, labels, determinism, realism, differences."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskclf.core.errors import InputError
from taskclf.core.types import LABEL_SET_V1, LabelSpan
from taskclf.synthetic.generator import (
    LABEL_COLUMNS,
    SyntheticUser,
    generate_dataset,
    generate_user,
)

DATA_KEYS = {
    "currentwindow": {"app", "title"},
    "afkstatus": {"status"},
    "os.hid.input": {"presses", "clicks", "deltaX", "deltaY", "scrollX", "scrollY"},
    "web.tab.current": {"url", "title", "audible", "incognito", "tabCount"},
}


@pytest.fixture(scope="module")
def full() -> list[SyntheticUser]:
    """Six users (one per archetype) over two weeks, in memory."""
    return [generate_user(i, days=14, seed=0) for i in range(6)]


def _ts(text: str) -> datetime:
    assert text.endswith("+00:00"), text
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None and value.utcoffset() is not None
    return value


def _events(user: SyntheticUser, event_type: str) -> list[dict[str, Any]]:
    for bucket in user.export["buckets"].values():
        if bucket["type"] == event_type:
            return list(bucket["events"])
    return []


def _intervals(events: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    start = np.array([_ts(e["timestamp"]).timestamp() for e in events])
    return start, start + np.array([e["duration"] for e in events])


def _overlap_seconds(starts: np.ndarray, ends: np.ndarray, a: float, b: float) -> float:
    """Seconds of [a, b) covered by the union of intervals (sorted by start)."""
    order = np.argsort(starts)
    total, cursor = 0.0, a
    for s, e in zip(starts[order], ends[order], strict=True):
        s, e = max(s, cursor), min(e, b)
        if e > s:
            total += e - s
            cursor = e
    return total


def check_export_structure(user: SyntheticUser) -> None:
    """Everything a consumer of ``GET /api/0/export`` relies on."""
    buckets = user.export["buckets"]
    host = user.profile.hostname
    expected_types = {"currentwindow", "afkstatus", "web.tab.current"}
    if user.profile.archetype.has_input_watcher:
        expected_types.add("os.hid.input")
    assert {b["type"] for b in buckets.values()} == expected_types
    for bucket_id, bucket in buckets.items():
        assert set(bucket) == {
            "id",
            "created",
            "name",
            "type",
            "client",
            "hostname",
            "data",
            "events",
        }
        assert bucket["id"] == bucket_id and bucket["hostname"] == host
        assert bucket_id.endswith(f"_{host}")
        created = _ts(bucket["created"])
        stamps = [_ts(e["timestamp"]) for e in bucket["events"]]
        assert stamps == sorted(stamps, reverse=True), f"{bucket_id} not newest-first"
        assert all(created < s for s in stamps)
        for event in bucket["events"]:
            assert set(event) == {"timestamp", "duration", "data"}
            assert isinstance(event["duration"], float)
            assert math.isfinite(event["duration"]) and event["duration"] >= 0
            assert set(event["data"]) == DATA_KEYS[bucket["type"]]
        if bucket["type"] == "afkstatus":
            assert {e["data"]["status"] for e in bucket["events"]} <= {"afk", "not-afk"}
        if bucket["type"] == "os.hid.input":
            assert all(
                isinstance(v, int) and v >= 0 for e in bucket["events"] for v in e["data"].values()
            )


def check_spans(user: SyntheticUser) -> None:
    spans = sorted(user.spans, key=lambda s: s.start_ts)
    assert all(s.user_id == user.user_id and s.provenance == "synthetic" for s in spans)
    for prev, cur in itertools.pairwise(spans):
        assert prev.end_ts <= cur.start_ts, "spans of one user overlap"


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, 11),
    days=st.integers(1, 3),
    seed=st.integers(0, 2**32),
    start=st.dates(date(2024, 1, 1), date(2027, 12, 31)),
)
def test_any_user_any_dates_gives_a_valid_export(
    index: int, days: int, seed: int, start: date
) -> None:
    user = generate_user(index, days=days, seed=seed, start_date=start)
    check_export_structure(user)
    check_spans(user)


def test_every_archetype_gives_a_valid_export_and_spans(full: list[SyntheticUser]) -> None:
    for user in full:
        check_export_structure(user)
        check_spans(user)


def test_export_has_real_quirks(full: list[SyntheticUser]) -> None:
    windows = [e for u in full for e in _events(u, "currentwindow")]
    assert any(e["duration"] == 0.0 for e in windows), "no zero-duration window events"
    overlapping = 0
    for user in full:
        start, end = _intervals(_events(user, "currentwindow"))
        order = np.argsort(start, kind="stable")
        overlapping += int(np.sum(end[order][:-1] > start[order][1:] + 1e-9))
    assert overlapping > 0, "no overlapping window events"
    dup = 0
    for user in full:
        afk = [e["timestamp"] for e in _events(user, "afkstatus")]
        dup += len(afk) - len(set(afk))
    assert dup > 0, "no duplicated AFK events"
    assert {u.profile.archetype.has_input_watcher for u in full} == {True, False}


def test_labels_cover_every_label_and_mostly_have_activity(full: list[SyntheticUser]) -> None:
    labels = {s.label for u in full for s in u.spans}
    assert labels == set(LABEL_SET_V1)
    for user in full:
        start, end = _intervals(_events(user, "currentwindow"))
        for span in user.spans:
            a, b = span.start_ts.timestamp(), span.end_ts.timestamp()
            covered = _overlap_seconds(start, end, a, b)
            assert covered >= 0.9 * (b - a), f"{user.user_id} span without window activity"


def _afk_without_duplicates(user: SyntheticUser) -> list[dict[str, Any]]:
    """AFK events, keeping the shortest of same-start duplicates (the longer copy is the
    export quirk; it runs into the next not-afk period, and not-afk wins there)."""
    shortest: dict[str, dict[str, Any]] = {}
    for e in _events(user, "afkstatus"):
        if e["data"]["status"] != "afk":
            continue
        kept = shortest.get(e["timestamp"])
        if kept is None or e["duration"] < kept["duration"]:
            shortest[e["timestamp"]] = e
    return list(shortest.values())


def test_breaks_are_mostly_afk_and_work_is_mostly_not(full: list[SyntheticUser]) -> None:
    for user in full:
        start, end = _intervals(_afk_without_duplicates(user))
        share: dict[str, list[float]] = defaultdict(list)
        for span in user.spans:
            a, b = span.start_ts.timestamp(), span.end_ts.timestamp()
            share[span.label].append(_overlap_seconds(start, end, a, b) / (b - a))
        assert np.mean(share["BreakIdle"]) > 0.7, user.user_id
        for label in ("Build", "Write", "Communicate"):
            assert np.mean(share[label]) < 0.1, (user.user_id, label)


def _presses_per_minute(user: SyntheticUser, label: str) -> float:
    events = _events(user, "os.hid.input")
    start, _ = _intervals(events)
    presses = np.array([e["data"]["presses"] for e in events])
    total, minutes = 0.0, 0.0
    for span in user.spans:
        if span.label != label:
            continue
        a, b = span.start_ts.timestamp(), span.end_ts.timestamp()
        total += presses[(start >= a) & (start < b)].sum()
        minutes += (b - a) / 60
    return total / minutes


def test_input_rates_follow_the_task(full: list[SyntheticUser]) -> None:
    for user in full:
        if not user.profile.archetype.has_input_watcher:
            assert _events(user, "os.hid.input") == []
            continue
        rate = {label: _presses_per_minute(user, label) for label in ("Write", "Meet", "Build")}
        rate["ReadResearch"] = _presses_per_minute(user, "ReadResearch")
        assert rate["Write"] > rate["ReadResearch"] > rate["Meet"], (user.user_id, rate)
        assert rate["Build"] > 2 * rate["Meet"], (user.user_id, rate)


def _app_seconds(user: SyntheticUser, label: str) -> dict[str, float]:
    seconds: dict[str, float] = defaultdict(float)
    windows = _events(user, "currentwindow")
    start, end = _intervals(windows)
    for span in user.spans:
        if span.label != label:
            continue
        a, b = span.start_ts.timestamp(), span.end_ts.timestamp()
        inside = np.flatnonzero((start < b) & (end > a))
        for i in inside:
            seconds[windows[i]["data"]["app"]] += min(end[i], b) - max(start[i], a)
    return dict(seconds)


def _top_app(user: SyntheticUser, label: str) -> str:
    seconds = _app_seconds(user, label)
    return max(seconds, key=lambda app: seconds[app])


def test_users_differ_in_app_habits(full: list[SyntheticUser]) -> None:
    by_archetype = {u.profile.archetype.name: u for u in full}
    review_regular = _top_app(by_archetype["regular"], "Review")
    review_ide = _top_app(by_archetype["ide_reviewer"], "Review")
    assert review_regular == "chrome.exe"
    assert review_ide == "jetbrains-pycharm"
    slack_user = _app_seconds(by_archetype["regular"], "Communicate")
    teams_user = _app_seconds(by_archetype["manager"], "Communicate")
    assert slack_user.get("Slack.exe", 0) > 0 and "ms-teams.exe" not in slack_user
    assert teams_user.get("ms-teams.exe", 0) > 0 and "Slack.exe" not in teams_user
    assert _top_app(by_archetype["night_owl"], "Build") == "gnome-terminal-server"


def test_users_differ_in_ambiguity(full: list[SyntheticUser]) -> None:
    """The noisy user switches windows far more often and uses more generic titles."""
    by_archetype = {u.profile.archetype.name: u for u in full}

    def switches_per_labeled_hour(user: SyntheticUser) -> float:
        hours = sum((s.end_ts - s.start_ts).total_seconds() for s in user.spans) / 3600
        return len(_events(user, "currentwindow")) / hours

    noisy = switches_per_labeled_hour(by_archetype["noisy"])
    regular = switches_per_labeled_hour(by_archetype["regular"])
    assert noisy > 2.5 * regular, (noisy, regular)


def test_workdays_follow_local_time(full: list[SyntheticUser]) -> None:
    utc_medians = {}
    for user in full:
        zone = ZoneInfo(user.profile.archetype.timezone)
        local = [s.start_ts.astimezone(zone) for s in user.spans]
        hours = np.array([t.hour + t.minute / 60 for t in local])
        assert 10 <= float(np.median(hours)) <= 17, user.user_id
        weekday_minutes = sum(
            (s.end_ts - s.start_ts).total_seconds()
            for s, t in zip(user.spans, local, strict=True)
            if t.weekday() < 5
        )
        total = sum((s.end_ts - s.start_ts).total_seconds() for s in user.spans)
        assert weekday_minutes / total > 0.8, user.user_id
        utc_medians[user.profile.archetype.timezone] = float(
            np.median([s.start_ts.hour for s in user.spans])
        )
    gap = abs(utc_medians["Asia/Tokyo"] - utc_medians["America/Los_Angeles"])
    assert min(gap, 24 - gap) >= 6


def test_dataset_files_are_byte_identical_for_the_same_arguments(tmp_path: Path) -> None:
    a = generate_dataset(tmp_path / "a", users=2, days=3, seed=7)
    b = generate_dataset(tmp_path / "b", users=2, days=3, seed=7)
    names = sorted(p.name for p in a.out_dir.iterdir())
    assert names == ["labels.csv", "user-01.json", "user-02.json", "users.json"]
    assert names == sorted(p.name for p in b.out_dir.iterdir())
    for name in names:
        assert (a.out_dir / name).read_bytes() == (b.out_dir / name).read_bytes(), name
    c = generate_dataset(tmp_path / "c", users=2, days=3, seed=8)
    assert (c.out_dir / "user-01.json").read_bytes() != (a.out_dir / "user-01.json").read_bytes()


def test_a_user_does_not_depend_on_how_many_users_are_generated(tmp_path: Path) -> None:
    one = generate_dataset(tmp_path / "one", users=1, days=2, seed=3)
    three = generate_dataset(tmp_path / "three", users=3, days=2, seed=3)
    assert one.exports["user-01"].read_bytes() == three.exports["user-01"].read_bytes()


def test_labels_csv_and_users_json(tmp_path: Path) -> None:
    ds = generate_dataset(tmp_path, users=3, days=2, seed=1, start_date=date(2026, 3, 2))
    with ds.labels_csv.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames or ()) == LABEL_COLUMNS
        rows = list(reader)
    assert rows
    spans = [
        LabelSpan(
            start_ts=datetime.fromisoformat(r["start_ts"]),
            end_ts=datetime.fromisoformat(r["end_ts"]),
            label=r["label"],
            provenance=r["provenance"],
            user_id=r["user_id"],
            confidence=None if r["confidence"] == "" else float(r["confidence"]),
            extend_forward=r["extend_forward"] == "true",
        )
        for r in rows
    ]
    assert all(r["confidence"] == "" and r["extend_forward"] == "false" for r in rows)
    assert all(r["start_ts"].endswith("+00:00") for r in rows)
    assert {s.user_id for s in spans} == {"user-01", "user-02", "user-03"}
    assert min(s.start_ts for s in spans).astimezone(UTC).date() >= date(2026, 3, 1)
    profiles = json.loads(ds.users_json.read_text(encoding="utf-8"))
    users = profiles["users"]
    assert [u["user_id"] for u in users] == ["user-01", "user-02", "user-03"]
    for u, summary in zip(users, ds.users, strict=True):
        assert {"timezone", "hostname", "has_input_watcher", "browser", "style"} <= set(u)
        assert u["timezone"] == summary.timezone
        export = json.loads(summary.export_path.read_text(encoding="utf-8"))
        hosts = {b["hostname"] for b in export["buckets"].values()}
        assert hosts == {u["hostname"]}
        has_input = any(b["type"] == "os.hid.input" for b in export["buckets"].values())
        assert has_input == u["has_input_watcher"]
        assert sum(summary.event_counts.values()) == sum(
            len(b["events"]) for b in export["buckets"].values()
        )


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"users": 0}, "--users"),
        ({"users": 1000}, "--users"),
        ({"days": 0}, "--days"),
        ({"seed": -1}, "--seed"),
        ({"days": True}, "--days"),
    ],
)
def test_bad_arguments_are_input_errors(
    tmp_path: Path, kwargs: dict[str, Any], needle: str
) -> None:
    with pytest.raises(InputError, match=needle):
        generate_dataset(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_out_must_not_be_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x", encoding="utf-8")
    with pytest.raises(InputError, match="not a directory"):
        generate_dataset(target, users=1, days=1)


@pytest.mark.parametrize("index", [-1, 999, True])
def test_generate_user_rejects_bad_indices(index: int) -> None:
    with pytest.raises(InputError, match="user index"):
        generate_user(index, days=1)
