from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.errors import ConfigError, InputError
from taskclf.core.types import LABEL_SET_V1
from taskclf.train.dataset import (
    SINGLE_USER_KEY,
    SplitSummary,
    allocate_days,
    assign_recorded_split,
    choose_holdout_users,
    dataset_hash,
    split_by_time,
    write_dataset,
)
from test_train_frames import make_labeled_frame

ZONES = ["UTC", "America/New_York", "Asia/Tokyo", "Europe/Warsaw", "Pacific/Kiritimati"]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _minimal(rows: list[tuple[str, datetime, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": pd.Series([r[0] for r in rows], dtype=object),
            "bucket_start_ts": pd.Series([r[1] for r in rows]).astype("datetime64[us, UTC]"),
            "label": pd.Series([r[2] for r in rows], dtype=object),
        }
    )


@st.composite
def random_frames(draw):
    n_users = draw(st.integers(1, 4))
    rows = []
    for u in range(n_users):
        minutes = draw(st.lists(st.integers(0, 14 * 24 * 60), min_size=1, max_size=40, unique=True))
        for m in minutes:
            label = draw(st.sampled_from(LABEL_SET_V1))
            rows.append((f"u{u}", T0 + timedelta(minutes=m), label))
    zones = {f"u{u}": draw(st.sampled_from(ZONES)) for u in range(n_users)}
    return _minimal(rows), zones


def _local_days(frame: pd.DataFrame, zones: dict[str, str]) -> set[tuple[str, object]]:
    return {
        (u, ts.tz_convert(zones.get(u, "UTC")).date())
        for u, ts in zip(frame["user_id"], frame["bucket_start_ts"], strict=True)
    }


@settings(max_examples=60, deadline=None)
@given(
    data=random_frames(),
    fraction=st.sampled_from([0.0, 0.0, 0.3, 0.5]),
    seed=st.integers(0, 5),
)
def test_split_never_shares_a_day_and_holdout_users_only_in_test(data, fraction, seed):
    frame, zones = data
    n_users = frame["user_id"].nunique()
    if fraction and n_users < 2:
        with pytest.raises(InputError, match="hold out"):
            split_by_time(frame, holdout_user_fraction=fraction, timezones=zones, seed=seed)
        return
    s = split_by_time(frame, holdout_user_fraction=fraction, timezones=zones, seed=seed)
    train, val, test = (_local_days(f, zones) for f in (s.train, s.val, s.test))
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(s.train) + len(s.val) + len(s.test) == len(frame)
    # Time order within each user: train days < val days < test days.
    for user in frame["user_id"].unique():
        if user in s.summary.holdout_users:
            continue
        tr = [d for u, d in train if u == user]
        va = [d for u, d in val if u == user]
        te = [d for u, d in test if u == user]
        if tr and va:
            assert max(tr) < min(va)
        if (tr or va) and te:
            assert max(tr + va) < min(te)
        assert tr, "every non-held-out user trains on its first day"
    for user in s.summary.holdout_users:
        assert user not in set(s.train["user_id"]) | set(s.val["user_id"])
        assert (s.test["user_id"] == user).any()
    assert s.summary.splits["test"].days == len(test)
    for name, part in (("train", s.train), ("val", s.val), ("test", s.test)):
        assert sum(s.summary.splits[name].class_counts.values()) == len(part)
    # Re-applying the recorded split reproduces it exactly.
    again = assign_recorded_split(frame, s.summary)
    for a, b in ((s.train, again.train), (s.val, again.val), (s.test, again.test)):
        pd.testing.assert_frame_equal(a, b)


@settings(max_examples=20, deadline=None)
@given(data=random_frames(), seed=st.integers(0, 3))
def test_split_is_deterministic_and_independent_of_row_order(data, seed):
    frame, zones = data
    fraction = 0.5 if frame["user_id"].nunique() > 1 else 0.0
    a = split_by_time(frame, holdout_user_fraction=fraction, timezones=zones, seed=seed)
    shuffled = frame.sample(frac=1.0, random_state=seed)
    b = split_by_time(shuffled, holdout_user_fraction=fraction, timezones=zones, seed=seed)
    assert a.summary == b.summary
    pd.testing.assert_frame_equal(a.test, b.test)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (1, (1, 0, 0)),
        (2, (1, 1, 0)),
        (3, (1, 1, 1)),
        (7, (5, 1, 1)),
        (10, (6, 2, 2)),
        (20, (14, 3, 3)),
    ],
)
def test_allocate_days(n, expected):
    assert allocate_days(n, 0.70, 0.15) == expected


def test_allocate_days_without_validation_ratio():
    assert allocate_days(2, 0.8, 0.0) == (1, 0, 1)
    assert allocate_days(10, 0.8, 0.0) == (8, 0, 2)


def test_local_midnight_decides_the_day():
    # 03:30 and 04:30 UTC are 22:30 and 23:30 of the previous day in New York (UTC-5).
    rows = []
    for d in range(3):
        base = T0 + timedelta(days=d)
        rows += [("a", base + timedelta(hours=3, minutes=30), "Build")]
        rows += [("a", base + timedelta(hours=4, minutes=30), "Write")]
        rows += [("a", base + timedelta(hours=5, minutes=30), "Meet")]
    frame = _minimal(rows)
    utc = split_by_time(frame)
    ny = split_by_time(frame, timezones={"a": "America/New_York"})
    assert utc.summary.splits["train"].days == 1 and len(utc.train) == 3
    # In New York (UTC-5) 03:30/04:30 UTC fall on the previous local day and 05:30 UTC on
    # the next one, so the 3 UTC days touch 4 local days: (2, 1, 1) days per split.
    user = ny.summary.user("a")
    assert user is not None and user.timezone == "America/New_York"
    assert [ny.summary.splits[n].days for n in ("train", "val", "test")] == [2, 1, 1]
    # The last local day holds only the final 05:30 UTC row (00:30 local).
    assert ny.test["bucket_start_ts"].tolist() == [T0 + timedelta(days=2, hours=5, minutes=30)]
    assert len(ny.train) == 5


def test_short_histories_are_reported():
    rows = [("a", T0, "Build"), ("a", T0 + timedelta(days=1), "Write")]
    rows += [("b", T0 + timedelta(days=d), "Meet") for d in range(4)]
    s = split_by_time(_minimal(rows))
    assert s.summary.short_history_users == ["a"]
    a = s.summary.user("a")
    assert a is not None and a.test is None and a.val is not None


def test_holdout_choice_is_seeded_and_stable():
    users = [f"user-{i}" for i in range(10)]
    first = choose_holdout_users(users, 0.3, 1)
    assert len(first) == 3
    assert choose_holdout_users(list(reversed(users)), 0.3, 1) == first
    assert any(choose_holdout_users(users, 0.3, s) != first for s in range(2, 8))
    with pytest.raises(InputError, match="at least one user"):
        choose_holdout_users(["a", "b"], 0.9, 0)


def test_frames_without_user_id_are_one_user():
    frame = _minimal([("x", T0 + timedelta(days=d), "Build") for d in range(5)])
    s = split_by_time(frame.drop(columns=["user_id"]))
    assert [u.user_id for u in s.summary.users] == [SINGLE_USER_KEY]
    with pytest.raises(InputError, match="no user_id"):
        split_by_time(frame.drop(columns=["user_id"]), holdout_user_fraction=0.5)


@pytest.mark.parametrize(
    ("frame", "kwargs", "match"),
    [
        (_minimal([]), {}, "empty"),
        (_minimal([("a", T0, "Build")]).assign(label=[None]), {}, "no label"),
        (_minimal([("a", T0, "Build")]), {"train_ratio": 0.9, "val_ratio": 0.2}, "ratios"),
        (_minimal([("a", T0, "Build")]), {"holdout_user_fraction": 1.0}, "holdout"),
        (_minimal([("a", T0, "Build")]).drop(columns=["label"]), {}, "'label'"),
    ],
)
def test_bad_split_input(frame, kwargs, match):
    with pytest.raises(InputError, match=match):
        split_by_time(frame, **kwargs)


def test_unknown_timezone_is_config_error():
    with pytest.raises(ConfigError):
        split_by_time(_minimal([("a", T0, "Build")]), timezones={"a": "Mars/Base"})


def test_recorded_split_sends_new_days_and_new_users_to_test():
    frame = make_labeled_frame(n_users=2, n_days=5, minutes_per_day=10)
    s = split_by_time(frame)
    later = make_labeled_frame(
        n_users=3, n_days=2, minutes_per_day=10, start=pd.Timestamp("2026-02-01").date(), seed=4
    )
    earlier = make_labeled_frame(
        n_users=1, n_days=1, minutes_per_day=10, start=pd.Timestamp("2025-12-01").date(), seed=5
    )
    combined = pd.concat([frame, later, earlier], ignore_index=True)
    again = assign_recorded_split(combined, s.summary)
    pd.testing.assert_frame_equal(again.train, s.train)
    pd.testing.assert_frame_equal(again.val, s.val)
    assert len(again.test) == len(s.test) + len(later) + len(earlier)
    assert "user-2" in set(again.test["user_id"])


def test_dataset_hash_is_stable_and_content_sensitive():
    frame = make_labeled_frame(n_users=1, n_days=2, minutes_per_day=20)
    h = dataset_hash(frame)
    assert h == dataset_hash(frame.copy()) and len(h) == 16
    assert dataset_hash(frame.set_axis(range(100, 100 + len(frame)))) == h
    changed = frame.copy()
    changed.loc[3, "keys_per_min"] = 999.0
    assert dataset_hash(changed) != h
    relabeled = frame.copy()
    relabeled.loc[0, "label"] = "Meet" if frame.loc[0, "label"] != "Meet" else "Build"
    assert dataset_hash(relabeled) != h


def test_write_dataset(layout):
    frame = make_labeled_frame(n_users=2, n_days=4, minutes_per_day=15)
    s = split_by_time(frame, seed=3)
    out = write_dataset(layout, s, "ds1")
    assert out.parent == layout.datasets_dir
    for name in ("train", "val", "test"):
        back = pd.read_parquet(out / f"{name}.parquet")
        assert len(back) == len(s.frame(name))
        assert list(back.columns) == list(frame.columns)
    summary = SplitSummary.model_validate(json.loads((out / "splits.json").read_text()))
    assert summary == s.summary
    with pytest.raises(InputError):
        write_dataset(layout, s, "../escape")


def test_class_counts_name_all_labels():
    s = split_by_time(_minimal([("a", T0 + timedelta(days=d), "Build") for d in range(3)]))
    assert list(s.summary.splits["train"].class_counts) == list(LABEL_SET_V1)
    assert s.summary.splits["train"].class_counts["Build"] == 1
    assert np.isclose(sum(s.summary.splits["test"].class_counts.values()), 1)
