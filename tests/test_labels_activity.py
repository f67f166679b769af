"""Seconds per app from ActivityWatch window events (label-now's summary)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from taskclf.labels._activity import AppTime, app_seconds, top_apps

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _event(offset_s: float, duration: object, app: object, title: str = "t") -> dict[str, object]:
    return {
        "timestamp": (T0 + timedelta(seconds=offset_s)).isoformat(),
        "duration": duration,
        "data": {"app": app, "title": title},
    }


def test_events_are_clipped_to_the_window_and_summed_per_app():
    events = [
        _event(-30, 60, "Code.exe"),  # 30 s inside
        _event(40, 30, "firefox.exe"),
        _event(100, 100, "Code.exe"),  # 20 s inside (window ends at 120)
        _event(200, 50, "Slack.exe"),  # outside
    ]
    totals = app_seconds(events, T0, T0 + timedelta(seconds=120))
    assert totals == {"Code.exe": 50.0, "firefox.exe": 30.0}


def test_malformed_events_are_skipped():
    events = [
        {"timestamp": "not a time", "duration": 5, "data": {"app": "A"}},
        {"timestamp": "2026-01-05T09:00:10", "duration": 5, "data": {"app": "naive"}},
        _event(0, "x", "bad-duration"),
        _event(0, -3, "negative"),
        _event(0, 5, None),
        {"timestamp": T0.isoformat(), "duration": 5, "data": "nope"},
        _event(0, 5, "ok"),
    ]
    assert app_seconds(events, T0, T0 + timedelta(minutes=1)) == {"ok": 5.0}


def test_top_apps_ranks_by_seconds_then_name():
    ranked = top_apps({"b": 10.0, "a": 10.0, "c": 30.0, "d": 1.0}, limit=3)
    assert ranked == [AppTime("c", 30.0), AppTime("a", 10.0), AppTime("b", 10.0)]


def test_duplicated_or_overlapping_events_never_add_up_to_more_than_the_window():
    events = [*[_event(0, 60, "Code.exe")] * 3, _event(30, 60, "Slack.exe")]  # 3 copies + overlap
    totals = app_seconds(events, T0, T0 + timedelta(seconds=60))
    assert totals == {"Code.exe": 60.0}  # Slack's part after Code's end lies past the window
    totals = app_seconds(events, T0, T0 + timedelta(seconds=120))
    assert totals == {"Code.exe": 60.0, "Slack.exe": 30.0}
    assert sum(totals.values()) <= 120


def test_app_names_with_lone_surrogates_are_cleaned():
    assert app_seconds([_event(0, 5, "co\ud800de")], T0, T0 + timedelta(seconds=60)) == {
        "co\ufffdde": 5.0
    }
