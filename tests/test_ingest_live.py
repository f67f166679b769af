from __future__ import annotations

import shutil
from datetime import date

import httpx
import pandas as pd
import pytest

from conftest import REAL_DATA
from taskclf.adapters.activitywatch._ingest import ingest_export, ingest_live
from taskclf.adapters.activitywatch._store import list_event_days, load_events
from taskclf.cli.main import run
from taskclf.core.config import load_or_create_title_secret
from taskclf.core.errors import SourceUnreachableError
from taskclf.core.paths import Layout
from taskclf.core.time import date_range_utc
from taskclf.features.build import build_features_range, load_features

MHACKS = REAL_DATA / "aw_mhacks_LAPTOP-MCRJASPH_export.json"
DAYS = (date(2023, 11, 18), date(2023, 11, 19))


def _import(url: str) -> None:
    r = httpx.post(
        f"{url}/api/0/import",
        content=MHACKS.read_bytes(),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert r.status_code == 200, r.text[:200]


@pytest.mark.awserver
def test_live_ingest_matches_export_path(aw_server, tmp_path, capsys):
    _import(aw_server.url)
    live = Layout.resolve(tmp_path / "live")
    exported = Layout.resolve(tmp_path / "export")
    load_or_create_title_secret(live)
    exported.configs_dir.mkdir(parents=True)
    shutil.copy(live.title_secret, exported.title_secret)

    s_live = ingest_live(live, *DAYS, aw_host=aw_server.url, user_id="u")
    s_exp = ingest_export(exported, MHACKS, user_id="u")
    assert s_live.events_by_kind == s_exp.events_by_kind
    assert any("general.stopwatch" in n for n in s_live.notes)
    assert list_event_days(live, "u") == list_event_days(exported, "u") == list(DAYS)
    rng = date_range_utc(*DAYS)
    pd.testing.assert_frame_equal(load_events(live, "u", *rng), load_events(exported, "u", *rng))

    # features built from either path are identical, row for row
    for layout in (live, exported):
        build_features_range(layout, *DAYS, user_ids=["u"])
    f_live = load_features(live, *DAYS)
    f_exp = load_features(exported, *DAYS)
    assert len(f_live) > 300
    pd.testing.assert_frame_equal(f_live, f_exp)

    # the CLI command does the same and re-ingesting adds nothing
    code = run(
        [
            "--home",
            str(live.home),
            "ingest",
            "live",
            "--from",
            "2023-11-18",
            "--to",
            "2023-11-19",
            "--aw-host",
            aw_server.url,
            "--user-id",
            "u",
        ]
    )
    assert code == 0
    assert "0 new, 0 extended" in " ".join(capsys.readouterr().out.split())


@pytest.mark.awserver
def test_live_ingest_unreachable_writes_nothing(aw_server, layout):
    url = aw_server.url
    aw_server.stop()
    from taskclf.adapters.activitywatch.client import AWClient

    with pytest.raises(SourceUnreachableError):
        ingest_live(
            layout,
            *DAYS,
            aw_host=url,
            user_id="u",
            client_factory=lambda u: AWClient(u, retries=0),
        )
    assert not layout.raw_aw_dir.exists()
    code = run(
        [
            "--home",
            str(layout.home),
            "ingest",
            "live",
            "--from",
            "2023-11-19",
            "--to",
            "2023-11-18",
            "--aw-host",
            url,
        ]
    )
    assert code == 2


@pytest.mark.awserver
def test_an_event_taskclf_cannot_read_is_skipped_with_a_note(aw_server, tmp_path):
    _import(aw_server.url)
    layout = Layout.resolve(tmp_path / "live")
    before = ingest_live(layout, *DAYS, aw_host=aw_server.url, user_id="u").events_by_kind
    bucket = "aw-watcher-window_LAPTOP-MCRJASPH"
    bad = {"timestamp": "2023-11-18T12:00:00+00:00", "duration": -5, "data": {"app": 5}}
    r = httpx.post(f"{aw_server.url}/api/0/buckets/{bucket}/events", json=[bad], timeout=10)
    assert r.status_code == 200, r.text[:200]
    again = ingest_live(
        Layout.resolve(tmp_path / "again"), *DAYS, aw_host=aw_server.url, user_id="u"
    )
    assert again.events_by_kind == before  # every other event still read
    (note,) = [n for n in again.notes if "skipped" in n]
    assert note.startswith(f"1 event(s) of bucket '{bucket}' skipped: taskclf cannot read them")
    assert "'duration' must be between 0 and" in note


@pytest.mark.awserver
def test_live_ingest_writes_nothing_past_the_range(aw_server, tmp_path):
    _import(aw_server.url)
    bucket = "aw-watcher-window_LAPTOP-MCRJASPH"
    late = {"timestamp": "2023-11-18T23:59:00+00:00", "duration": 600, "data": {"app": "x"}}
    r = httpx.post(f"{aw_server.url}/api/0/buckets/{bucket}/events", json=[late], timeout=10)
    assert r.status_code == 200, r.text[:200]
    layout = Layout.resolve(tmp_path / "live")
    ingest_live(layout, DAYS[0], DAYS[0], aw_host=aw_server.url, user_id="u")
    assert list_event_days(layout, "u") == [DAYS[0]]  # the server's +1 ms is trimmed
    events = load_events(layout, "u", *date_range_utc(DAYS[0], DAYS[0]))
    assert events["end_ts"].max() == pd.Timestamp("2023-11-19T00:00:00Z")
