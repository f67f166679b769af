"""The online loop's poll path without frames: normalized event records into the buffer.

``events.normalize_records`` + ``FeatureState.add_records`` must give exactly what
``events.normalize_buckets`` + ``FeatureState.add_events`` give: the same rows, the same
buffer, the same feature records.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import hypothesis.strategies as st
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings

from conftest import REAL_DATA
from taskclf.adapters.activitywatch.events import (
    dedupe_events,
    dedupe_records,
    frame_from_rows,
    normalize_buckets,
    normalize_records,
)
from taskclf.adapters.activitywatch.export import parse_export, parse_export_data
from taskclf.core.hashing import title_hash
from taskclf.features import _event_lists, _minutes
from taskclf.infer.feature_state import FeatureState
from test_features_helpers import SECRET, T0, same_cell, ts

EVENT = st.tuples(
    st.integers(0, 900),  # start (s)
    st.sampled_from([0, 1, 5, 30, 90, 400]),  # duration (s)
    st.integers(0, 3),  # which variant (app/title, status, counts, url)
)


def _buckets(window, afk, inputs, web):
    apps = ["Code.exe", "chrome.exe", "Slack.exe", "WindowsTerminal.exe"]
    titles = ["a", "b - c", "main.py", ""]
    urls = ["https://github.com/x", "https://mail.google.com", "http://localhost:3000", ""]
    counts = [{"presses": 3}, {"presses": 0, "clicks": 2, "deltaX": 5}, {"scrollY": 2}, {}]
    raw = {
        "aw-watcher-window_h": {
            "type": "currentwindow",
            "hostname": "h",
            "events": [
                {"timestamp": ts(s), "duration": d, "data": {"app": apps[v], "title": titles[v]}}
                for s, d, v in window
            ],
        },
        "aw-watcher-afk_h": {
            "type": "afkstatus",
            "hostname": "h",
            "events": [
                {"timestamp": ts(s), "duration": d, "data": {"status": ("afk", "not-afk")[v % 2]}}
                for s, d, v in afk
            ],
        },
        "aw-watcher-input_h": {
            "type": "os.hid.input",
            "hostname": "h",
            "events": [
                {"timestamp": ts(s), "duration": d, "data": counts[v]} for s, d, v in inputs
            ],
        },
        "aw-watcher-web-firefox_h": {
            "type": "web.tab.current",
            "hostname": "h",
            "events": [
                {"timestamp": ts(s), "duration": d, "data": {"url": urls[v], "title": "tab"}}
                for s, d, v in web
            ],
        },
    }
    return parse_export_data({"buckets": raw}).buckets


_FLOATS = [c for c, t in frame_from_rows([]).dtypes.items() if t is np.dtype("float64")]
MIX = st.tuples(*(st.lists(EVENT, max_size=12) for _ in range(4)))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["e1", "e2", "e3", "e4"]),
            st.sampled_from(["window", "afk", "input", "web"]),
            st.integers(0, 5),
            st.integers(0, 5),
        ),
        max_size=20,
    )
)
def test_dedupe_records_matches_dedupe_events(specs) -> None:
    """One row per event id, the latest end (the later row on ties), canonical order."""
    rows = []
    for k, (eid, kind, start, length) in enumerate(specs):
        row = dict.fromkeys(frame_from_rows([]).columns)
        row.update(
            event_id=eid, kind=kind, source_id=f"s{k}", start_ts=start, end_ts=start + length
        )
        row.update(dict.fromkeys(_FLOATS, float("nan")))
        rows.append(row)
    want = dedupe_events(frame_from_rows(rows))
    got = frame_from_rows(dedupe_records(rows))
    pd.testing.assert_frame_equal(got, want)


@settings(max_examples=60, deadline=None)
@given(MIX)
def test_records_are_the_normalized_frame(mix) -> None:
    buckets = _buckets(*mix)
    records = normalize_records(buckets, secret=SECRET)
    pd.testing.assert_frame_equal(
        frame_from_rows(records), normalize_buckets(buckets, secret=SECRET)
    )
    fast = _event_lists.record_rows(records, _minutes.TITLE_STAT_COLUMNS)
    slow = _event_lists.small_rows(frame_from_rows(records), _minutes.TITLE_STAT_COLUMNS)
    assert (fast is None) == (slow is None)
    if fast is None or slow is None:
        return
    assert fast[0].keys() == slow[0].keys()
    for kind, cols in slow[0].items():
        for key, want in cols.items():
            got = fast[0][kind][key]
            assert len(got) == len(want), (kind, key)
            for x, y in zip(got, want, strict=True):
                if key == "vals":
                    assert all(same_cell(a, b) for a, b in zip(x, y, strict=True))
                else:
                    assert same_cell(x, y), (kind, key, x, y)
    assert fast[1].keys() == slow[1].keys()
    for h, row in slow[1].items():
        assert all(
            same_cell(float(x), float(y)) if not isinstance(y, str) else x == y
            for x, y in zip(fast[1][h], row, strict=True)
        )


def _state() -> FeatureState:
    return FeatureState(user_id="u1", device_id="dev", timezone="Europe/Warsaw")


def _polls(buckets, cuts: list[int]):
    """The buckets' events cut into polls at the given minutes (each event in its start's poll)."""
    edges = sorted({0, *(c * 60 for c in cuts), 10**6})
    start_us = int(T0.timestamp() * 1e6)
    for lo, hi in itertools.pairwise(edges):
        a, b = start_us + lo * 1_000_000, start_us + hi * 1_000_000
        yield (
            [
                type(bk)(
                    bk.bucket_id,
                    bk.bucket_type,
                    bk.hostname,
                    tuple(e for e in bk.events if a <= e.start_us < b),
                )
                for bk in buckets
            ],
            T0 + timedelta(seconds=hi if hi < 10**6 else 3600),
        )


@settings(max_examples=40, deadline=None)
@given(MIX, st.lists(st.integers(1, 16), max_size=5))
def test_add_records_closes_the_same_minutes(mix, cuts) -> None:
    """Polls through add_records and through add_events give identical feature records."""
    buckets = _buckets(*mix)
    by_records, by_frames = _state(), _state()
    got, want = [], []
    for poll, until in _polls(buckets, cuts):
        by_records.add_records(normalize_records(poll, secret=SECRET))
        by_frames.add_events(normalize_buckets(poll, secret=SECRET))
        for minute in range(0, 1 + int((until - T0).total_seconds() // 60)):
            got += by_records.close_until_records(T0 + timedelta(minutes=minute))
            want += by_frames.close_until_records(T0 + timedelta(minutes=minute))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.keys() == b.keys()
        assert all(same_cell(a[k], b[k]) for k in a), [k for k in a if not same_cell(a[k], b[k])]


def _same_buffers(a: FeatureState, b: FeatureState) -> None:
    got, want = a._buffer.arrays(), b._buffer.arrays()
    for kind, cols in want.items():
        for key, col in cols.items():
            assert len(got[kind][key]) == len(col), (kind, key)
            pairs = zip(np.asarray(got[kind][key]).ravel(), np.asarray(col).ravel(), strict=True)
            assert all(same_cell(x, y) for x, y in pairs), (kind, key)
    assert a._buffer.titles.keys() == b._buffer.titles.keys()
    for h, row in b._buffer.titles.items():
        assert all(
            x == y if isinstance(y, str) else same_cell(float(x), float(y))
            for x, y in zip(a._buffer.titles[h], row, strict=True)
        )


@settings(max_examples=60, deadline=None)
@given(MIX, st.lists(st.integers(1, 16), max_size=5), st.booleans())
def test_add_buckets_is_add_records_of_normalized_records(mix, cuts, repeat) -> None:
    """A poll's buckets straight into the buffer: the buffer and rows of the records path.

    ``repeat`` sends every poll twice (a re-fetch: the same event ids again).
    """
    buckets = _buckets(*mix)
    direct, via_records = _state(), _state()
    got, want = [], []
    for poll, until in _polls(buckets, cuts):
        for _ in range(2 if repeat else 1):
            direct.add_buckets(poll, secret=SECRET)
            via_records.add_records(normalize_records(poll, secret=SECRET))
        _same_buffers(direct, via_records)
        for minute in range(0, 1 + int((until - T0).total_seconds() // 60)):
            got += direct.close_until_records(T0 + timedelta(minutes=minute))
            want += via_records.close_until_records(T0 + timedelta(minutes=minute))
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert all(same_cell(a[k], b[k]) for k in a), [k for k in a if not same_cell(a[k], b[k])]


def test_many_records_take_the_frame_path() -> None:
    """More records than the plain-Python conversion takes: the same rows through a frame."""
    window = [(s, 20, s % 4) for s in range(0, 6000, 20)]  # 300 window events
    buckets = _buckets(window, [(0, 6000, 1)], [], [])
    records = normalize_records(buckets, secret=SECRET)
    assert len(records) > _event_lists.SMALL_FRAME
    assert _event_lists.record_rows(records, _minutes.TITLE_STAT_COLUMNS) is None
    a, b = _state(), _state()
    a.add_records(records)
    b.add_events(normalize_buckets(buckets, secret=SECRET))
    until = T0 + timedelta(minutes=100)
    pd.testing.assert_frame_equal(a.close_until(until), b.close_until(until))


def test_title_cache_changes_nothing() -> None:
    """A cache shared across polls gives the rows of uncached calls."""
    path = sorted(REAL_DATA.glob("*.json"))[0]
    buckets = parse_export(path).buckets
    first = [type(b)(b.bucket_id, b.bucket_type, b.hostname, b.events[:200]) for b in buckets]
    cache: dict = {}
    twice = [normalize_records(first, secret=SECRET, titles=cache) for _ in range(2)]
    plain = normalize_records(first, secret=SECRET)
    assert cache, "window titles were cached"
    for got in twice:
        assert json.dumps(got, sort_keys=True, default=str) == json.dumps(
            plain, sort_keys=True, default=str
        )


def test_web_rows_keep_the_tab_title_hash_only() -> None:
    """A tab's title becomes its salted hash (as a window title's), no sketch or statistics."""
    [row] = normalize_records(_buckets([], [], [], [(0, 30, 0)]), secret=SECRET)
    assert row["title_hash"] == title_hash(SECRET, "tab")
    assert row["title_token_sketch"] is None and row["title_char3_sketch"] is None
    assert np.isnan(row["title_char_count"])
    [untitled] = normalize_records(
        parse_export_data(
            {
                "buckets": {
                    "aw-watcher-web-chrome_h": {
                        "type": "web.tab.current",
                        "hostname": "h",
                        "events": [{"timestamp": ts(0), "duration": 5, "data": {"url": "x"}}],
                    }
                }
            }
        ).buckets,
        secret=SECRET,
    )
    assert untitled["title_hash"] is None


@pytest.mark.parametrize("bad", [1.5, None])
def test_records_with_unusual_times_take_the_frame_path(bad) -> None:
    """A time that is not an integer of microseconds goes through the frame's coercion."""
    buckets = _buckets([(0, 30, 0)], [(0, 60, 1)], [], [])
    records = normalize_records(buckets, secret=SECRET)
    odd = [dict(r) for r in records]
    odd[0]["end_ts"] = bad if bad is None else odd[0]["end_ts"] + bad
    assert _event_lists.record_rows(odd, _minutes.TITLE_STAT_COLUMNS) is None
