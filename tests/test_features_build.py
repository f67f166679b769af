from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from taskclf.core.errors import ConfigError, InputError
from taskclf.core.schema import FeatureSchemaV1, FeatureSchemaV2, FeatureSchemaV3
from taskclf.features.build import build_features
from test_features_helpers import T0, events

KW = {"user_id": "u1", "device_id": "dev", "timezone": "UTC"}


def build(ev, **kw):
    df = build_features(ev, **{**KW, **kw})
    schema = {"v1": FeatureSchemaV1, "v2": FeatureSchemaV2, "v3": FeatureSchemaV3}[
        kw.get("schema_version", "v3")
    ]
    schema.validate_dataframe(df)
    return df


def minute(df, m):
    row = df[df["bucket_start_ts"] == pd.Timestamp(T0) + pd.Timedelta(minutes=m)]
    assert len(row) == 1, f"no row for minute {m}"
    return row.iloc[0]


def test_long_stay_gives_one_row_per_minute():
    df = build(events(window=[(0, 30 * 60, "Code.exe", "main.py - proj")]))
    assert len(df) == 30
    assert (df["app_id"] == "vscode").all()
    assert np.allclose(df["app_foreground_time_ratio"], 1.0)
    assert df["session_id"].nunique() == 1
    assert df["session_length_so_far"].tolist() == [60.0 * (i + 1) for i in range(30)]
    assert df["title_repeat_count_session"].tolist() == list(range(30))
    assert df["app_dwell_time_seconds"].tolist() == [60.0 * (i + 1) for i in range(30)]


def test_events_split_across_minutes_and_dominant_app():
    ev = events(
        window=[
            (30, 50, "chrome.exe", "a"),  # 30 s in minute 0, 20 s in minute 1
            (80, 25, "Code.exe", "b"),  # 25 s in minute 1
            (105, 15, "chrome.exe", "c"),  # 15 s in minute 1 (+20 = 35 chrome)
        ]
    )
    df = build(ev)
    assert len(df) == 2
    m0, m1 = minute(df, 0), minute(df, 1)
    assert m0["app_id"] == "chrome" and m0["app_foreground_time_ratio"] == pytest.approx(0.5)
    assert m1["app_id"] == "chrome"
    assert m1["app_foreground_time_ratio"] == pytest.approx(35 / 60)
    assert m1["app_change_count"] == 2
    assert m1["app_switch_count_last_5m"] == 2
    assert m1["event_density"] == 2.0
    assert m1["app_entropy_5m"] > 0
    assert 0 < m1["top2_app_concentration_15m"] <= 1


def test_tie_break_is_deterministic():
    ev = events(window=[(0, 30, "zoom.us", "z"), (30, 30, "Code.exe", "c")])
    row = minute(build(ev), 0)
    assert row["app_id"] == "vscode"  # equal seconds: the smaller app id wins


def test_overlapping_window_events_latest_start_wins():
    ev = events(window=[(0, 120, "Code.exe", "long"), (20, 10, "chrome.exe", "inside")])
    df = build(ev)
    m0 = minute(df, 0)
    assert m0["app_id"] == "vscode"
    assert m0["app_foreground_time_ratio"] == pytest.approx(50 / 60)
    assert m0["app_change_count"] == 2  # vscode -> chrome -> vscode


def test_afk_duplicates_union_and_not_afk_wins():
    ev = events(
        window=[(0, 180, "Code.exe", "x")],
        afk=[
            (0, 60, "not-afk"),
            (60, 30, "afk"),
            (60, 120, "afk"),  # same start, longer duration: the real quirk
            (60, 60, "afk"),
            (150, 30, "not-afk"),  # overlaps the afk union: not-afk wins
        ],
    )
    df = build(ev)
    assert minute(df, 0)["max_idle_run_seconds"] == 0.0
    assert minute(df, 1)["max_idle_run_seconds"] == 60.0
    assert minute(df, 2)["max_idle_run_seconds"] == 30.0
    assert not minute(df, 1)["idle_return_indicator"]


def test_not_afk_without_window_makes_rows_and_afk_only_does_not():
    ev = events(afk=[(0, 120, "not-afk"), (120, 600, "afk")])
    df = build(ev)
    assert len(df) == 2
    assert set(df["app_id"]) == {"none"}
    assert set(df["window_title_hash"]) == {""}
    assert (df["app_foreground_time_ratio"] == 0).all()


def test_input_features_missing_when_absent_and_split_when_present():
    no_input = build(events(window=[(0, 120, "Code.exe", "x")]))
    for col in (
        "keys_per_min",
        "clicks_per_min",
        "mouse_distance",
        "active_seconds_any",
        "keys_per_min_rolling_5",
        "keys_per_min_delta",
    ):
        assert no_input[col].isna().all(), col
    ev = events(
        window=[(0, 180, "Code.exe", "x")],
        inputs=[
            (50, 20, {"presses": 40, "clicks": 2, "deltaX": 30, "deltaY": 40, "backspaces": 4}),
            (130, 0, {"presses": 5}),
        ],
    )
    df = build(ev)
    m0, m1, m2 = minute(df, 0), minute(df, 1), minute(df, 2)
    assert m0["keys_per_min"] == pytest.approx(20.0)  # half of the event lies in minute 0
    assert m1["keys_per_min"] == pytest.approx(20.0)
    assert m0["mouse_distance"] == pytest.approx(25.0)
    assert m0["backspace_ratio"] == pytest.approx(0.1)
    assert m0["active_seconds_keyboard"] == pytest.approx(10.0)
    assert m2["keys_per_min"] == 5.0 and math.isnan(m2["clicks_per_min"])
    assert m1["keys_per_min_delta"] == pytest.approx(0.0)
    assert m2["keys_per_min_rolling_5"] == pytest.approx(15.0)


def test_domain_category_from_tabs():
    ev = events(
        window=[(0, 120, "firefox.exe", "x"), (120, 60, "Code.exe", "y")],
        web=[(0, 0, "https://github.com/org/repo"), (70, 20, "https://mail.google.com/u/0")],
    )
    df = build(ev)
    assert minute(df, 0)["domain_category"] == "code_hosting"  # zero-duration tab: fallback
    assert minute(df, 1)["domain_category"] == "email"
    assert minute(df, 2)["domain_category"] == "non_browser"
    no_tabs = build(events(window=[(0, 60, "firefox.exe", "x")]))
    assert no_tabs["domain_category"].tolist() == ["unknown"]


def test_local_time_and_sessions():
    ev = events(
        window=[(0, 120, "Code.exe", "x"), (480, 60, "Code.exe", "x")],
        afk=[(0, 120, "not-afk"), (480, 60, "not-afk")],
    )
    df = build(ev, timezone="Asia/Kolkata")  # UTC+05:30
    assert minute(df, 0)["hour_of_day"] == 14
    assert minute(df, 0)["day_of_week"] == 0
    assert df["session_id"].nunique() == 2
    assert df["idle_return_indicator"].tolist() == [True, False, True]
    assert minute(df, 8)["session_length_so_far"] == 60.0
    assert minute(df, 8)["title_repeat_count_session"] == 0  # a new session resets repeats
    assert minute(df, 8)["app_dwell_time_seconds"] == 60.0  # a gap >= idle gap ends the run


def test_title_sketches_are_normalized():
    df = build(events(window=[(0, 60, "Code.exe", "Alpha beta - beta 42 | Visual Studio")]))
    row = df.iloc[0]
    tok = row[[c for c in df.columns if c.startswith("title_token_sketch_")]].to_numpy(float)
    c3 = row[[c for c in df.columns if c.startswith("title_char3_sketch_")]].to_numpy(float)
    assert tok.sum() == pytest.approx(1.0) and c3.sum() == pytest.approx(1.0)
    assert row["title_token_count"] == 6
    assert row["title_unique_token_ratio"] == pytest.approx(5 / 6)
    assert row["title_separator_count"] == 2
    assert row["title_digit_ratio"] == pytest.approx(2 / 36)
    assert 0 <= row["window_title_bucket"] < 256


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_schema_versions(version):
    ev = events(window=[(0, 90, "Code.exe", "x")])
    df = build(ev, schema_version=version)
    expected = {"v1": FeatureSchemaV1, "v2": FeatureSchemaV2, "v3": FeatureSchemaV3}[version]
    assert tuple(df.columns) == expected.COLUMNS
    assert (df["schema_hash"] == expected.SCHEMA_HASH).all()
    assert str(df["bucket_start_ts"].dtype) == "datetime64[us, UTC]"


def test_empty_events_give_empty_schema_frame():
    df = build(events())
    assert df.empty and tuple(df.columns) == FeatureSchemaV3.COLUMNS


def test_bad_arguments():
    ev = events(window=[(0, 60, "a", "b")])
    with pytest.raises(ConfigError):
        build_features(ev, user_id="u", device_id=None, timezone="Mars/Base")
    with pytest.raises(InputError):
        build_features(ev, user_id="u/..", device_id=None, timezone="UTC")
    with pytest.raises(InputError):
        build_features(ev, user_id="u", device_id=None, timezone="UTC", bucket_seconds=7)
