from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskclf.core.errors import InputError, LabelError
from taskclf.core.hashing import keyed_bucket, stable_hash, title_bucket, title_hash
from taskclf.core.paths import Layout, encode_user_id
from taskclf.core.time import (
    day_bounds_utc,
    ensure_utc,
    floor_bucket,
    floor_minute,
    local_date,
    parse_timestamp,
)
from taskclf.core.types import (
    CORE_LABEL_IDS,
    LABEL_SET_V1,
    CoreLabel,
    LabelSpan,
    WindowPrediction,
    validate_user_id,
)

aware = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


def test_label_set_order_and_ids():
    assert list(LABEL_SET_V1) == [
        "BreakIdle",
        "Build",
        "Communicate",
        "Debug",
        "Meet",
        "ReadResearch",
        "Review",
        "Write",
    ]
    assert [CORE_LABEL_IDS[label.value] for label in CoreLabel] == list(range(8))
    assert CORE_LABEL_IDS["Build"] == 0 and CORE_LABEL_IDS["BreakIdle"] == 7


@given(start=aware, minutes=st.integers(1, 10_000), label=st.sampled_from(LABEL_SET_V1))
def test_label_span_valid(start, minutes, label):
    span = LabelSpan(start_ts=start, end_ts=start + timedelta(minutes=minutes), label=label)
    assert span.end_ts > span.start_ts
    assert span.start_ts.tzinfo is not None
    assert LabelSpan.model_validate_json(span.model_dump_json()) == span


@given(start=aware, minutes=st.integers(-10_000, 0))
def test_label_span_end_not_after_start_refused(start, minutes):
    with pytest.raises(LabelError, match="must be after"):
        LabelSpan(start_ts=start, end_ts=start + timedelta(minutes=minutes), label="Build")


@given(label=st.text(max_size=20).filter(lambda s: s not in LABEL_SET_V1))
def test_label_span_unknown_label_refused(label):
    start = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(LabelError, match="unknown label"):
        LabelSpan(start_ts=start, end_ts=start + timedelta(hours=1), label=label)


def test_label_span_naive_refused_and_offsets_normalized():
    naive = datetime(2026, 1, 1, 9)
    with pytest.raises(InputError, match="no time zone"):
        LabelSpan(start_ts=naive, end_ts=naive + timedelta(hours=1), label="Build")
    plus2 = timezone(timedelta(hours=2))
    span = LabelSpan(
        start_ts=datetime(2026, 1, 1, 9, tzinfo=plus2),
        end_ts=datetime(2026, 1, 1, 10, tzinfo=plus2),
        label="Meet",
    )
    assert span.start_ts == datetime(2026, 1, 1, 7, tzinfo=UTC)
    assert span.start_ts.utcoffset() == timedelta(0)


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "a\\b", ".", "..", "x" * 300, "a\x00b", " a"])
def test_hostile_user_ids_refused(bad):
    with pytest.raises(InputError, match="user id"):
        validate_user_id(bad)


@given(ts=aware.flatmap(lambda d: offsets.map(lambda z: d.astimezone(z))))
def test_floor_minute_properties(ts):
    floored = floor_minute(ts)
    assert floored.tzinfo == UTC
    assert floored.second == 0 and floored.microsecond == 0
    assert timedelta(0) <= ts - floored < timedelta(minutes=1)
    assert floor_minute(floored) == floored
    assert floor_bucket(ts, 60) == floored


@given(ts=aware, bucket=st.sampled_from([60, 300, 900]))
def test_floor_bucket_aligned(ts, bucket):
    floored = floor_bucket(ts, bucket)
    assert int(floored.timestamp()) % bucket == 0
    assert timedelta(0) <= ts - floored < timedelta(seconds=bucket)


def test_time_helpers():
    with pytest.raises(InputError):
        ensure_utc(datetime(2026, 1, 1))
    with pytest.raises(InputError, match="no time zone"):
        parse_timestamp("2026-01-01T10:00:00")
    assert parse_timestamp("2026-01-01T10:00:00Z") == datetime(2026, 1, 1, 10, tzinfo=UTC)
    ts = datetime(2026, 1, 1, 23, 30, tzinfo=UTC)
    assert local_date(ts, "Europe/Warsaw").isoformat() == "2026-01-02"
    start, end = day_bounds_utc(datetime(2026, 3, 29).date(), "Europe/Warsaw")  # DST day
    assert end - start == timedelta(hours=23)


def test_window_prediction_checks_probabilities():
    base = dict(
        user_id="u1",
        bucket_start_ts=datetime(2026, 1, 1, tzinfo=UTC),
        core_label="Build",
        confidence=0.9,
        is_rejected=False,
        predicted_label="Build",
        mapped_label="Coding",
        model_id="m",
    )
    WindowPrediction(**base, core_probs=[0.9, 0.1, 0, 0, 0, 0, 0, 0])
    with pytest.raises(InputError, match="sum to 1"):
        WindowPrediction(**base, core_probs=[0.5] * 8)
    with pytest.raises(InputError, match="finite"):
        WindowPrediction(**base, core_probs=[float("nan")] + [0.0] * 7)
    WindowPrediction(**{**base, "predicted_label": "Mixed/Unknown"}, core_probs=[1.0] + [0.0] * 7)


@given(uid=st.text(max_size=300))
def test_encode_user_id_is_a_safe_single_name(uid):
    name = encode_user_id(uid)
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert name not in (".", "..")
    assert len(name) <= 120 + 10


@given(a=st.text(max_size=60), b=st.text(max_size=60))
def test_encode_user_id_injective(a, b):
    if a != b:
        assert encode_user_id(a) != encode_user_id(b)


def test_encode_user_id_plain_unchanged():
    assert encode_user_id("alice-01.x_y") == "alice-01.x_y"
    assert encode_user_id("..") != ".."
    assert encode_user_id("a/b").startswith("~")


def test_layout_paths_stay_under_home(tmp_path):
    layout = Layout.resolve(tmp_path)
    for uid in ["../../etc", "a/b", "..", "ü" * 200]:
        p = layout.features_partition(datetime(2026, 1, 1).date(), uid)
        assert p.resolve().is_relative_to(tmp_path.resolve())
        assert p.parent.parent == layout.features_dir("v3")
    with pytest.raises(InputError):
        layout.run_dir("../x")


def test_hashing():
    secret = b"k" * 32
    h = title_hash(secret, "Inbox - Mail")
    assert len(h) == 12 and all(c in string.hexdigits for c in h)
    assert h != title_hash(b"j" * 32, "Inbox - Mail")
    assert 0 <= title_bucket(h) < 256
    assert keyed_bucket(secret, "tok", 128) == keyed_bucket(secret, "tok", 128)
    assert stable_hash({"a": 1, "b": [1, 2]}) == stable_hash({"b": [1, 2], "a": 1})
