from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from conftest import REAL_DATA
from taskclf.adapters.activitywatch._ingest import ingest_export
from taskclf.adapters.activitywatch._store import list_event_days, load_events
from taskclf.adapters.activitywatch.events import EVENT_COLUMNS
from taskclf.cli.main import run
from taskclf.core.errors import InputError
from taskclf.core.time import date_range_utc

MHACKS = REAL_DATA / "aw_mhacks_LAPTOP-MCRJASPH_export.json"


def _files(root: Path) -> dict[str, str]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _export(tmp_path: Path, buckets: dict, name: str = "e.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"buckets": buckets}))
    return path


def _one(ts: str, duration: object, data: str = '{"app": "a"}', kind: str = "currentwindow"):
    """An export of one event, as text (so durations can be any JSON number)."""
    return (
        f'{{"buckets": {{"b": {{"type": "{kind}", "events": [{{"timestamp": "{ts}", '
        f'"duration": {duration}, "data": {data}}}]}}}}}}'
    )


def _win(events, host="h1"):
    return {
        "id": f"aw-watcher-window_{host}",
        "type": "currentwindow",
        "hostname": host,
        "events": events,
    }


def test_ingest_real_export_and_reingest_adds_nothing(layout):
    s1 = ingest_export(layout, MHACKS, user_id="u1")
    assert s1.events_by_kind == {"afk": 35, "web": 1280, "window": 2427}
    assert s1.added > 0
    days = list_event_days(layout, "u1")
    assert days == [date(2023, 11, 18), date(2023, 11, 19)]
    before = _files(layout.raw_aw_dir)
    s2 = ingest_export(layout, MHACKS, user_id="u1")
    assert s2.added == 0 and s2.updated == 0
    assert not any(p.rewritten for p in s2.partitions)
    assert _files(layout.raw_aw_dir) == before
    start, end = date_range_utc(days[0], days[-1])
    events = load_events(layout, "u1", start, end)
    assert list(events.columns) == list(EVENT_COLUMNS)
    assert events["event_id"].is_unique
    assert len(events) == 35 + 1280 + 2427
    # the real AFK quirk: 71 events, 37 duplicated starts collapse to one event per start+status
    afk = events[events["kind"] == "afk"]
    assert not afk.duplicated(["start_ts", "status"]).any()


def test_afk_csv_joins_window_export(layout):
    s = ingest_export(
        layout,
        REAL_DATA / "aw_twd_karolina_window_export.json",
        afk_csv=REAL_DATA / "aw_twd_karolina_afk.csv",
        user_id="karolina",
    )
    assert set(s.events_by_kind) == {"afk", "window"}
    # 1577 rows with 839 duplicated timestamps: duplicates of (start, status) collapse
    assert s.events_by_kind["afk"] < 1577
    days = list_event_days(layout, "karolina")
    events = load_events(layout, "karolina", *date_range_utc(days[0], days[-1]))
    raw = json.loads((REAL_DATA / "aw_twd_karolina_window_export.json").read_text())
    host = next(iter(raw["buckets"].values()))["hostname"]
    afk_sources = set(events.loc[events["kind"] == "afk", "source_id"])
    assert afk_sources == {f"aw-watcher-afk_{host}"}


def test_events_grow_and_merge(layout, tmp_path):
    first = _export(
        tmp_path,
        {
            "w": _win(
                [
                    {
                        "timestamp": "2024-01-01T23:59:00Z",
                        "duration": 30,
                        "data": {"app": "a", "title": "t"},
                    }
                ]
            )
        },
    )
    ingest_export(layout, first, user_id="u")
    longer = _export(
        tmp_path,
        {
            "w": _win(
                [
                    {
                        "timestamp": "2024-01-01T23:59:00Z",
                        "duration": 90,
                        "data": {"app": "a", "title": "t"},
                    }
                ]
            )
        },
        "l.json",
    )
    s = ingest_export(layout, longer, user_id="u")
    assert s.added == 1 and s.updated == 1  # new partition for 01-02, extended on 01-01
    assert list_event_days(layout, "u") == [date(2024, 1, 1), date(2024, 1, 2)]
    ev = load_events(layout, "u", *date_range_utc(date(2024, 1, 1), date(2024, 1, 2)))
    assert len(ev) == 1
    assert (ev["end_ts"] - ev["start_ts"]).iloc[0] == pd.Timedelta(seconds=90)


def test_several_hosts_keep_their_devices(layout, tmp_path):
    ev = [{"timestamp": "2024-01-01T10:00:00Z", "duration": 5, "data": {"app": "a", "title": ""}}]
    path = _export(tmp_path, {"w1": _win(ev, "h1"), "w2": _win(ev, "h2")})
    s = ingest_export(layout, path, user_id="u")
    assert s.events_by_kind == {"window": 2}
    events = load_events(layout, "u", *date_range_utc(date(2024, 1, 1), date(2024, 1, 1)))
    assert sorted(events["device_id"]) == ["h1", "h2"]
    s = ingest_export(layout, path, user_id="v", device_id="laptop")
    events = load_events(layout, "v", *date_range_utc(date(2024, 1, 1), date(2024, 1, 1)))
    assert set(events["device_id"]) == {"laptop"}


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ('{"buckets": {"w": {"type": "currentwindow", "events": [{"timestamp": "2024', "JSON"),
        (
            '{"buckets": {"w": {"type": "currentwindow", "events": [{"timestamp": '
            '"2024-01-01T10:00:00", "duration": 1, "data": {"app": "a"}}]}}}',
            "no time zone",
        ),
        (
            '{"buckets": {"w": {"type": "currentwindow", "events": [{"timestamp": '
            '"2024-01-01T10:00:00Z", "duration": NaN, "data": {"app": "a"}}]}}}',
            "between 0 and",
        ),
        (_one("9999-12-31T23:59:59+00:00", 1), "is outside 1970..9997"),
        (_one("0001-01-01T00:00:00+05:00", 1), "is outside 1970..9997"),  # overflows in UTC
        (_one("2024-01-01T10:00:00Z", "1e300"), "between 0 and 31622400 seconds"),
        (_one("2024-01-01T10:00:00Z", str(10**30)), "between 0 and 31622400 seconds"),
        (_one("2024-01-01T10:00:00Z", 1, '{"status": ["afk"]}', "afkstatus"), "got a list"),
        (_one("2024-01-01T10:00:00Z", 1, '{"app": "a", "title": [1]}'), "got a list"),
        (_one("2024-01-01T10:00:00Z", "1" * 5000), "4300 digits"),
    ],
)
def test_hostile_inputs_write_nothing(layout, tmp_path, content, needle):
    good = _export(
        tmp_path,
        {
            "w": _win(
                [
                    {
                        "timestamp": "2024-01-01T10:00:00Z",
                        "duration": 1,
                        "data": {"app": "a", "title": "x"},
                    }
                ]
            )
        },
        "good.json",
    )
    ingest_export(layout, good, user_id="u")
    before = _files(layout.home)
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(InputError, match=needle):
        ingest_export(layout, bad, user_id="u")
    assert _files(layout.home) == before
    assert not [p for p in layout.home.rglob("*.tmp")]


def test_huge_title_is_handled_and_not_stored(layout, tmp_path):
    title = "Qz" + "x" * 999_998
    path = _export(
        tmp_path,
        {
            "w": _win(
                [
                    {
                        "timestamp": "2024-01-01T10:00:00Z",
                        "duration": 60,
                        "data": {"app": "a", "title": title},
                    }
                ]
            )
        },
    )
    ingest_export(layout, path, user_id="u")
    ev = load_events(layout, "u", *date_range_utc(date(2024, 1, 1), date(2024, 1, 1)))
    assert ev["title_char_count"].iloc[0] == 1_000_000
    for p in layout.home.rglob("*"):
        if p.is_file():
            assert b"x" * 200 not in p.read_bytes()


def test_cli_ingest_aw(tmp_path, capsys):
    home = tmp_path / "home"
    code = run(["--home", str(home), "ingest", "aw", "--input", str(MHACKS), "--user-id", "cli"])
    assert code == 0
    out = capsys.readouterr().out
    assert "2023-11-18" in out and "window 2427" in out
    assert run(["--home", str(home), "ingest", "aw", "--input", str(tmp_path / "nope.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert run(["--home", str(home), "ingest", "aw"]) == 2


def test_values_that_may_be_titles_are_never_echoed(layout, tmp_path, capsys):
    secret = "Qsecret-project.py - Code"
    cases = {
        "title.json": _one("2024-01-01T10:00:00Z", 1, json.dumps({"app": [secret]})),
        "ts.json": _one(secret, 1),
        "afk.json": _one("2024-01-01T10:00:00Z", 1, json.dumps({"status": secret}), "afkstatus"),
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
        assert (
            run(["--home", str(layout.home), "ingest", "aw", "--input", str(tmp_path / name)]) == 2
        )
        err = capsys.readouterr().err
        assert "error:" in err and "Qsecret" not in err, (name, err)
    good = _export(tmp_path, {"w": _win([{"timestamp": "2024-01-01T10:00:00Z", "duration": 1,
                                          "data": {"app": "a", "title": "t"}}])})  # fmt: skip
    export_as_csv = tmp_path / "mixup.csv"  # the export given as the AFK CSV
    export_as_csv.write_text(f"{secret},x,y\n1,2,3\n")
    args = ["--home", str(layout.home), "ingest", "aw", "--input", str(good)]
    assert run([*args, "--afk-csv", str(export_as_csv)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "the header has 3 column(s): 'x', 'y', not timestamp" in err and "Qsecret" not in err
    bad_csv = tmp_path / "quote.csv"
    bad_csv.write_text('timestamp,duration,status\n"' + "x" * 200_000 + "\n")
    assert run([*args, "--afk-csv", str(bad_csv)]) == 2
    assert "is not valid CSV: field larger than field limit" in capsys.readouterr().err
    assert not layout.raw_aw_dir.exists()


def test_lone_surrogates_in_app_and_bucket_are_replaced_and_markup_is_plain(
    layout, tmp_path, capsys
):
    text = (
        '{"buckets": {"w": {"id": "w\\ud800", "type": "currentwindow", "hostname": "h\\udc00", '
        '"events": [{"timestamp": "2024-01-01T10:00:00Z", "duration": 60, '
        '"data": {"app": "Code\\ud800.exe", "title": "t\\ud800"}}]}, '
        '"x[/]": {"type": "[bold]", "events": []}}}'
    )
    path = tmp_path / "e.json"
    path.write_text(text)
    assert run(["--home", str(layout.home), "ingest", "aw", "--input", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "note: bucket 'x[/]' of type a str of 6 characters ignored (0 events)" in out
    events = load_events(
        layout, "default-user", *date_range_utc(date(2024, 1, 1), date(2024, 1, 1))
    )
    assert events["app_name"].tolist() == ["Code\ufffd.exe"]
    assert events["device_id"].tolist() == ["h\ufffd"]


def test_null_window_title_and_app_count_as_missing(layout, tmp_path):
    path = _export(
        tmp_path,
        {"w": _win([{"timestamp": "2024-01-01T10:00:00Z", "duration": 60,
                     "data": {"app": None, "title": None}}])},
    )  # fmt: skip
    ingest_export(layout, path, user_id="u")
    events = load_events(layout, "u", *date_range_utc(date(2024, 1, 1), date(2024, 1, 1)))
    assert events["app_name"].tolist() == ["unknown"]
    assert events["title_char_count"].tolist() == [0.0]
