from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REAL_DATA
from taskclf.adapters.activitywatch.export import (
    AFK,
    WINDOW,
    parse_afk_csv,
    parse_export,
    parse_export_data,
)
from taskclf.core.errors import InputError


def _bucket(bid, btype, events, host="h1"):
    return {"id": bid, "type": btype, "hostname": host, "client": "c", "events": events}


def _ev(ts, dur, **data):
    return {"timestamp": ts, "duration": dur, "data": data}


WIN = [
    _ev("2024-01-01T09:01:00+00:00", 30.0, app="Code.exe", title="b"),
    _ev("2024-01-01T09:00:00Z", 0.0, app="chrome.exe", title="a"),
]


def test_dict_and_list_forms_parse_the_same():
    b1 = _bucket("aw-watcher-window_h1", WINDOW, WIN)
    b2 = _bucket("aw-watcher-afk_h2", AFK, [_ev("2024-01-01T09:00:00Z", 60, status="afk")], "h2")
    as_dict = parse_export_data({"buckets": {b1["id"]: b1, b2["id"]: b2}})
    as_list = parse_export_data({"buckets": [b2, b1]})
    assert as_dict == as_list
    assert [b.bucket_id for b in as_dict.buckets] == ["aw-watcher-afk_h2", "aw-watcher-window_h1"]
    assert {b.hostname for b in as_dict.buckets} == {"h1", "h2"}
    win = as_dict.buckets[1]
    assert [e.duration_us for e in win.events] == [30_000_000, 0]  # order kept, zero kept
    assert win.events[0].start_us - win.events[1].start_us == 60_000_000


def test_unsupported_types_are_noted_not_parsed():
    raw = {"buckets": {"sw": _bucket("sw", "general.stopwatch", [{"junk": 1}])}}
    parsed = parse_export_data(raw)
    assert parsed.buckets == ()
    assert any("general.stopwatch" in n and "ignored" in n for n in parsed.notes)


@pytest.mark.parametrize(
    ("event", "needle"),
    [
        (_ev("2024-01-01 09:00:00", 1.0, app="a", title="t"), "no time zone"),
        (_ev("yesterday", 1.0, app="a", title="t"), "not ISO-8601"),
        (_ev("2024-01-01T09:00:00Z", -1.0, app="a", title="t"), "between 0 and 31622400"),
        (_ev("2024-01-01T09:00:00Z", float("nan"), app="a", title="t"), "between 0 and 31622400"),
        (_ev("2024-01-01T09:00:00Z", True, app="a", title="t"), "number of seconds"),
        (_ev("2024-01-01T09:00:00Z", 1.0, app=3, title="t"), "data.app"),
        ({"timestamp": "2024-01-01T09:00:00Z", "data": {}}, "missing 'duration'"),
    ],
)
def test_bad_events_name_bucket_and_index(event, needle):
    raw = {"buckets": {"w": _bucket("w", WINDOW, [WIN[0], event])}}
    with pytest.raises(InputError) as info:
        parse_export_data(raw, where="'x.json'")
    msg = str(info.value)
    assert needle in msg
    assert "bucket 'w' event 1" in msg
    assert "'x.json'" in msg


def test_bad_afk_status():
    raw = {"buckets": {"a": _bucket("a", AFK, [_ev("2024-01-01T09:00:00Z", 1, status="away")])}}
    with pytest.raises(InputError, match="bucket 'a' event 0.*'afk' or 'not-afk'"):
        parse_export_data(raw)


@pytest.mark.parametrize(
    "raw",
    [[], {"nope": 1}, {"buckets": 3}, {"buckets": [{"type": WINDOW}]}, {"buckets": {"w": []}}],
)
def test_wrong_shape(raw):
    with pytest.raises(InputError):
        parse_export_data(raw)


def test_truncated_and_non_json_files(tmp_path: Path):
    full = json.dumps({"buckets": {"w": _bucket("w", WINDOW, WIN)}})
    trunc = tmp_path / "t.json"
    trunc.write_text(full[: len(full) // 2])
    with pytest.raises(InputError, match=r"not valid JSON .* line 1, column \d+.*truncated"):
        parse_export(trunc)
    with pytest.raises(InputError, match="does not exist"):
        parse_export(tmp_path / "missing.json")
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError):
        parse_export(binary)


def test_nan_literal_duration_in_file(tmp_path: Path):
    path = tmp_path / "nan.json"
    path.write_text(
        '{"buckets": {"w": {"type": "currentwindow", "events": ['
        '{"timestamp": "2024-01-01T09:00:00Z", "duration": NaN, "data": {"app": "a"}}]}}}'
    )
    with pytest.raises(InputError, match="bucket 'w' event 0: 'duration' must be between 0 and"):
        parse_export(path)


@pytest.mark.parametrize("status_header", ["status", "data/status"])
def test_afk_csv_both_spellings(tmp_path: Path, status_header):
    path = tmp_path / "afk.csv"
    path.write_text(
        f"timestamp,duration,{status_header}\n"
        "2026-01-26T11:02:44.977Z,10.5,not-afk\n"
        "2026-01-26T10:45:48.561+00:00,1016.415,afk\n"
    )
    b = parse_afk_csv(path, bucket_id="aw-watcher-afk_x")
    assert b.bucket_type == AFK
    assert [e.data["status"] for e in b.events] == ["not-afk", "afk"]
    assert b.events[0].duration_us == 10_500_000


def test_afk_csv_errors_name_the_line(tmp_path: Path):
    path = tmp_path / "afk.csv"
    path.write_text("timestamp,duration,status\n2026-01-26T11:02:44Z,1,afk\n2026-01-26,x,afk\n")
    with pytest.raises(InputError, match="line 3"):
        parse_afk_csv(path, bucket_id="a")
    path.write_text("when,duration,status\n")
    with pytest.raises(InputError, match="header"):
        parse_afk_csv(path, bucket_id="a")


def test_real_exports_parse():
    mhacks = parse_export(REAL_DATA / "aw_mhacks_LAPTOP-MCRJASPH_export.json")
    sizes = {b.bucket_type: len(b.events) for b in mhacks.buckets}
    assert sizes == {"currentwindow": 2427, "afkstatus": 71, "web.tab.current": 1280}
    assert any("general.stopwatch" in n for n in mhacks.notes)
    for name in ("ania", "karolina"):
        afk = parse_afk_csv(REAL_DATA / f"aw_twd_{name}_afk.csv", bucket_id="afk")
        assert len(afk.events) == {"ania": 4723, "karolina": 1577}[name]


def test_server_events_skip_what_cannot_be_read_and_keep_indices():
    from taskclf.adapters.activitywatch.export import parse_server_events

    raw = [
        _ev("2024-01-01T09:00:00Z", 1.0, app="a", title="t"),
        _ev("2024-01-01T09:00:01Z", -1.0, app="b", title="t"),  # negative duration
        "not an object",
        _ev("2024-01-01T09:00:02Z", 2.0, app="c", title="t"),
    ]
    got = parse_server_events("w", WINDOW, raw, where="server x")
    assert got.kept == (0, 3)
    assert [e.data["app"] for e in got.events] == ["a", "c"]
    assert [p.split(":")[1].strip() for p in got.problems] == [
        "bucket 'w' event 1",
        "bucket 'w' event 2",
    ]
    with pytest.raises(InputError, match="'events' must be a list"):
        parse_server_events("w", WINDOW, {"no": "list"}, where="server x")
