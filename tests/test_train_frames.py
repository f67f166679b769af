"""Builders of valid, informative labeled feature frames for the training tests (+ their checks).

Other ``test_train_*`` modules import the builders from here (pytest puts ``tests/`` on the
path). The frames follow ``core.schema`` exactly; the label is learnable from the app, the
input rates and the title sketch, with a ``noise`` share of rows given another label's app.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest

from taskclf.core.defaults import TITLE_SKETCH_BUCKETS
from taskclf.core.paths import Layout
from taskclf.core.schema import (
    TITLE_CHAR3_SKETCH_COLUMNS,
    TITLE_TOKEN_SKETCH_COLUMNS,
    get_schema,
)
from taskclf.core.types import LABEL_SET_V1, LabelSpan

# label -> (app_id, app_category, domain_category, keys/min, is_browser, is_editor, is_terminal)
PROFILES: dict[str, tuple[str, str, str, float, bool, bool, bool]] = {
    "Build": ("vscode", "editor", "non_browser", 80.0, False, True, False),
    "Debug": ("terminal", "terminal", "non_browser", 40.0, False, False, True),
    "Review": ("firefox", "browser", "code_review", 15.0, True, False, False),
    "Write": ("word", "office", "non_browser", 120.0, False, False, False),
    "ReadResearch": ("chrome", "browser", "docs", 5.0, True, False, False),
    "Communicate": ("slack", "chat", "non_browser", 50.0, False, False, False),
    "Meet": ("zoom", "meeting", "non_browser", 2.0, False, False, False),
    "BreakIdle": ("explorer", "system", "non_browser", 0.0, False, False, False),
}
LABEL_WEIGHTS = np.array([0.16, 0.12, 0.1, 0.14, 0.14, 0.12, 0.1, 0.12])


def _label_runs(rng: np.random.Generator, n: int) -> list[str]:
    labels: list[str] = []
    while len(labels) < n:
        label = LABEL_SET_V1[rng.choice(len(LABEL_SET_V1), p=LABEL_WEIGHTS / LABEL_WEIGHTS.sum())]
        labels.extend([label] * int(rng.integers(5, 25)))
    return labels[:n]


def _timestamps(
    users: Sequence[str], n_days: int, minutes: int, start: date, tz: dict[str, str]
) -> tuple[list[str], list[datetime]]:
    rows_user: list[str] = []
    rows_ts: list[datetime] = []
    for u in users:
        zone = ZoneInfo(tz.get(u, "UTC"))
        for d in range(n_days):
            day = start + timedelta(days=d)
            t0 = datetime(day.year, day.month, day.day, 9, tzinfo=zone).astimezone(UTC)
            rows_user.extend([u] * minutes)
            rows_ts.extend(t0 + timedelta(minutes=m) for m in range(minutes))
    return rows_user, rows_ts


def make_labeled_frame(
    *,
    n_users: int = 3,
    n_days: int = 6,
    minutes_per_day: int = 60,
    schema_version: str = "v3",
    seed: int = 0,
    noise: float = 0.1,
    start: date = date(2026, 1, 5),
    timezones: dict[str, str] | None = None,
    users: Sequence[str] | None = None,
    keep_user_id: bool = False,
) -> pd.DataFrame:
    """A schema-valid feature frame plus a ``label`` column, sorted by user and time.

    ``keep_user_id`` keeps ``user_id`` (first column) in v2 frames, whose schema lacks it.
    """
    rng = np.random.default_rng(seed)
    user_list = list(users) if users is not None else [f"user-{i}" for i in range(n_users)]
    row_user, row_ts = _timestamps(user_list, n_days, minutes_per_day, start, timezones or {})
    n = len(row_ts)
    labels = np.asarray(_label_runs(rng, n), dtype=object)
    profile_label = labels.copy()
    flip = rng.random(n) < noise
    profile_label[flip] = rng.choice(np.asarray(LABEL_SET_V1, dtype=object), size=int(flip.sum()))
    prof = [PROFILES[lab] for lab in profile_label]
    idle = labels == "BreakIdle"
    ts = pd.Series(pd.to_datetime(row_ts, utc=True)).astype("datetime64[us, UTC]")
    keys = np.array([p[3] for p in prof]) * rng.uniform(0.6, 1.4, n)
    keys[idle] = 0.0
    keys_missing = rng.random(n) < 0.05  # input watcher absent now and then -> NaN
    keys[keys_missing] = np.nan
    active = np.where(idle, rng.uniform(0, 5, n), rng.uniform(30, 60, n))
    local_hours = np.array([t.hour for t in row_ts])
    schema = get_schema(schema_version)
    data: dict[str, object] = {
        "user_id": np.asarray(row_user, dtype=object),
        "device_id": np.asarray(["laptop"] * n, dtype=object),
        "session_id": np.asarray(
            [f"{u}-{t.date()}" for u, t in zip(row_user, row_ts, strict=True)], dtype=object
        ),
        "bucket_start_ts": ts,
        "bucket_end_ts": ts + pd.Timedelta(seconds=60),
        "schema_version": np.asarray([schema.VERSION] * n, dtype=object),
        "schema_hash": np.asarray([schema.SCHEMA_HASH] * n, dtype=object),
        "source_ids": [["aw-watcher-window"] for _ in range(n)],
        "app_id": np.asarray([p[0] for p in prof], dtype=object),
        "app_category": np.asarray([p[1] for p in prof], dtype=object),
        "window_title_hash": np.asarray([f"{i % 4096:012x}" for i in range(n)], dtype=object),
        "is_browser": np.array([p[4] for p in prof], dtype=bool),
        "is_editor": np.array([p[5] for p in prof], dtype=bool),
        "is_terminal": np.array([p[6] for p in prof], dtype=bool),
        "app_switch_count_last_5m": rng.integers(0, 10, n),
        "app_foreground_time_ratio": rng.uniform(0, 1, n),
        "app_change_count": rng.integers(0, 4, n),
        "app_dwell_time_seconds": rng.uniform(0, 600, n),
        "app_entropy_5m": rng.uniform(0, 2, n),
        "app_entropy_15m": rng.uniform(0, 2, n),
        "top2_app_concentration_15m": rng.uniform(0, 1, n),
        "idle_return_indicator": rng.random(n) < 0.05,
        "keys_per_min": keys,
        "backspace_ratio": np.where(keys_missing, np.nan, rng.uniform(0, 0.3, n)),
        "shortcut_rate": rng.uniform(0, 5, n),
        "clicks_per_min": rng.uniform(0, 30, n),
        "scroll_events_per_min": rng.uniform(0, 30, n),
        "mouse_distance": rng.uniform(0, 5000, n),
        "active_seconds_keyboard": np.minimum(active, 60.0),
        "active_seconds_mouse": np.minimum(active, 60.0),
        "active_seconds_any": active,
        "max_idle_run_seconds": 60.0 - active,
        "event_density": rng.uniform(0, 3, n),
        "domain_category": np.asarray([p[2] for p in prof], dtype=object),
        "window_title_bucket": rng.integers(0, 256, n),
        "title_repeat_count_session": rng.integers(0, 50, n),
        "keys_per_min_rolling_5": np.nan_to_num(keys),
        "keys_per_min_rolling_15": np.nan_to_num(keys),
        "mouse_distance_rolling_5": rng.uniform(0, 5000, n),
        "mouse_distance_rolling_15": rng.uniform(0, 5000, n),
        "keys_per_min_delta": rng.normal(0, 5, n),
        "clicks_per_min_delta": rng.normal(0, 5, n),
        "mouse_distance_delta": rng.normal(0, 50, n),
        "app_switch_count_last_15m": rng.integers(10, 20, n),
        "hour_of_day": local_hours,
        "day_of_week": np.array([t.weekday() for t in row_ts]),
        "session_length_so_far": rng.uniform(0, 3600, n),
    }
    if schema_version == "v3":
        token = np.zeros((n, TITLE_SKETCH_BUCKETS))
        code = np.array([LABEL_SET_V1.index(lab) for lab in profile_label])
        token[np.arange(n), code * 7] = rng.uniform(0.2, 1.0, n)
        for j, col in enumerate(TITLE_TOKEN_SKETCH_COLUMNS):
            data[col] = token[:, j]
        for col in TITLE_CHAR3_SKETCH_COLUMNS:
            data[col] = np.zeros(n)
        data["title_char_count"] = rng.integers(0, 80, n)
        data["title_token_count"] = rng.integers(0, 12, n)
        data["title_unique_token_ratio"] = rng.uniform(0, 1, n)
        data["title_digit_ratio"] = rng.uniform(0, 1, n)
        data["title_separator_count"] = rng.integers(0, 5, n)
    columns = list(schema.COLUMNS)
    if keep_user_id and "user_id" not in columns:
        columns.insert(0, "user_id")
    frame = pd.DataFrame({c: data[c] for c in columns})
    frame["label"] = pd.Series(labels, dtype=object)
    return frame


def spans_from_frame(frame: pd.DataFrame, provenance: str = "synthetic") -> list[LabelSpan]:
    """One label span per run of consecutive minutes with the same user and label."""
    spans: list[LabelSpan] = []
    users = frame["user_id"].tolist()
    labels = frame["label"].tolist()
    starts = frame["bucket_start_ts"].tolist()
    i = 0
    while i < len(frame):
        j = i
        while (
            j + 1 < len(frame)
            and users[j + 1] == users[i]
            and labels[j + 1] == labels[i]
            and starts[j + 1] - starts[j] == pd.Timedelta(minutes=1)
        ):
            j += 1
        spans.append(
            LabelSpan(
                start_ts=starts[i].to_pydatetime(),
                end_ts=(starts[j] + pd.Timedelta(minutes=1)).to_pydatetime(),
                label=labels[i],
                provenance=provenance,
                user_id=users[i],
            )
        )
        i = j + 1
    return spans


def write_features(layout: Layout, frame: pd.DataFrame, schema_version: str = "v3") -> None:
    """Write ``frame`` (without ``label``) as feature partitions per UTC date and user.

    v2 partitions drop ``user_id`` (the user is the partition's file name).
    """
    feats = frame.drop(columns=["label"])
    days = feats["bucket_start_ts"].dt.date
    for (day, user), part in feats.groupby([days, feats["user_id"]], sort=True):
        path = layout.features_partition(day, user, schema_version)
        path.parent.mkdir(parents=True, exist_ok=True)
        if schema_version == "v2":
            part = part.drop(columns=["user_id"])
        part.reset_index(drop=True).to_parquet(path, index=False)


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_builder_frames_are_schema_valid(version):
    frame = make_labeled_frame(n_users=2, n_days=2, minutes_per_day=30, schema_version=version)
    get_schema(version).validate_dataframe(frame.drop(columns=["label"]))
    assert ("user_id" in frame.columns) == (version != "v2")
    assert set(frame["label"]) <= set(LABEL_SET_V1)
    assert frame["keys_per_min"].isna().any()  # missing input stays NaN


def test_spans_cover_exactly_the_labeled_minutes():
    frame = make_labeled_frame(n_users=2, n_days=2, minutes_per_day=30)
    spans = spans_from_frame(frame)
    total = sum((s.end_ts - s.start_ts).total_seconds() for s in spans) / 60
    assert total == len(frame)
    assert all(s.user_id in {"user-0", "user-1"} for s in spans)
