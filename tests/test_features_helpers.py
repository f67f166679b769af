"""Helpers for feature tests: build normalized events from compact specs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from taskclf.adapters.activitywatch.events import normalize_buckets
from taskclf.adapters.activitywatch.export import parse_export_data

SECRET = b"k" * 32
T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)  # a Monday


def same_cell(a, b) -> bool:
    """Equal values of the same type, NaN equal to NaN (cells of two event or feature rows)."""
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return type(a) is type(b) and a == b


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat()


def events(window=(), afk=(), inputs=(), web=(), host: str = "h") -> pd.DataFrame:
    """Normalized events from tuples (offsets in seconds from T0).

    window: (start, duration, app, title); afk: (start, duration, status);
    inputs: (start, duration, dict of counts); web: (start, duration, url).
    """
    buckets = {}

    def add(btype, bid, evs):
        if evs:
            buckets[bid] = {"type": btype, "hostname": host, "events": evs}

    add(
        "currentwindow",
        f"aw-watcher-window_{host}",
        [
            {"timestamp": ts(s), "duration": d, "data": {"app": a, "title": t}}
            for s, d, a, t in window
        ],
    )
    add(
        "afkstatus",
        f"aw-watcher-afk_{host}",
        [{"timestamp": ts(s), "duration": d, "data": {"status": st}} for s, d, st in afk],
    )
    add(
        "os.hid.input",
        f"aw-watcher-input_{host}",
        [{"timestamp": ts(s), "duration": d, "data": dict(c)} for s, d, c in inputs],
    )
    add(
        "web.tab.current",
        f"aw-watcher-web-firefox_{host}",
        [
            {"timestamp": ts(s), "duration": d, "data": {"url": u, "title": "tab"}}
            for s, d, u in web
        ],
    )
    parsed = parse_export_data({"buckets": buckets})
    return normalize_buckets(parsed.buckets, secret=SECRET)


def test_helper_builds_every_kind():
    df = events(
        window=[(0, 10, "Code.exe", "a")],
        afk=[(0, 10, "not-afk")],
        inputs=[(0, 1, {"presses": 3})],
        web=[(0, 5, "https://github.com/x")],
    )
    assert sorted(df["kind"]) == ["afk", "input", "web", "window"]
    seconds = dict(zip(df["kind"], (df["end_ts"] - df["start_ts"]).dt.total_seconds(), strict=True))
    assert seconds == {"window": 10.0, "afk": 10.0, "input": 1.0, "web": 5.0}
