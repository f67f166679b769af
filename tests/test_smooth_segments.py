"""Segments: segmentize, merge_short_segments and the segments.json records."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.errors import ArtifactError, InputError
from taskclf.infer.smooth import (
    Segment,
    merge_short_segments,
    segmentize,
)
from taskclf.report.export import segments_from_records, segments_to_records

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LABELS = st.sampled_from(["Build", "Debug", "Write", MIXED_UNKNOWN])
MIN = timedelta(minutes=1)
IDLE = timedelta(minutes=5)


def _minutes(offsets: list[int]) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in offsets]


@st.composite
def users_minutes(draw: st.DrawFn) -> tuple[list[str], list[datetime], list[str]]:
    users, starts, labels = [], [], []
    chosen = st.lists(st.sampled_from(["ann", "bob"]), min_size=1, max_size=2, unique=True)
    for user in draw(chosen):
        n = draw(st.integers(1, 30))
        t = T0
        for _ in range(n):
            t = t + timedelta(minutes=draw(st.sampled_from([1, 1, 1, 1, 3, 6, 7, 40])))
            users.append(user)
            starts.append(t)
            labels.append(draw(LABELS))
    return users, starts, labels


def _runs_of(segments: list[Segment]) -> list[tuple[str | None, datetime, datetime, int]]:
    """Contiguous runs (user, start, end, minutes) that segments may never merge across."""
    runs: list[tuple[str | None, datetime, datetime, int]] = []
    for seg in sorted(segments, key=lambda s: (s.user_id or "", s.start_ts)):
        if runs and runs[-1][0] == seg.user_id and seg.start_ts - runs[-1][2] <= IDLE:
            user, start, _, count = runs[-1]
            runs[-1] = (user, start, seg.end_ts, count + seg.bucket_count)
        else:
            runs.append((seg.user_id, seg.start_ts, seg.end_ts, seg.bucket_count))
    return runs


def test_segmentize_basic():
    starts = _minutes([0, 1, 2, 3, 4, 20, 21])
    labels = ["Build", "Build", "Write", "Write", "Write", "Write", "Build"]
    segs = segmentize(starts, labels, user_ids="ann")
    assert [(s.label, s.bucket_count) for s in segs] == [
        ("Build", 2),
        ("Write", 3),
        ("Write", 1),  # the 15-minute gap (> idle gap) ends the segment
        ("Build", 1),
    ]
    assert segs[1].start_ts == starts[2] and segs[1].end_ts == starts[4] + MIN
    assert all(s.user_id == "ann" for s in segs)


def test_segmentize_small_gap_stays_inside_segment():
    segs = segmentize(_minutes([0, 1, 7]), ["Build"] * 3)
    assert len(segs) == 1 and segs[0].bucket_count == 3 and segs[0].user_id is None
    assert segs[0].end_ts == T0 + timedelta(minutes=8)


def test_segmentize_orders_by_user_and_time():
    starts = _minutes([15, 0, 1, 0])
    segs = segmentize(starts, ["Build", "Build", "Build", "Write"], user_ids=["b", "b", "b", "a"])
    assert [(s.user_id, s.start_ts, s.bucket_count) for s in segs] == [
        ("a", T0, 1),
        ("b", T0, 2),
        ("b", T0 + 15 * MIN, 1),
    ]


def test_segmentize_rejects_duplicates_and_misalignment():
    with pytest.raises(InputError, match="duplicate minute"):
        segmentize(_minutes([0, 0]), ["Build", "Write"], user_ids="ann")
    with pytest.raises(InputError, match="align"):
        segmentize(_minutes([0, 1]), ["Build"])
    with pytest.raises(InputError, match="align"):
        segmentize(_minutes([0, 1]), ["Build", "Build"], user_ids=["a"])


@settings(max_examples=60, deadline=None)
@given(data=users_minutes())
def test_segments_partition_the_minutes(data):
    users, starts, labels = data
    segs = segmentize(starts, labels, user_ids=users)
    assert sum(s.bucket_count for s in segs) == len(labels)
    per_user: dict[str, int] = defaultdict(int)
    for user in users:
        per_user[user] += 1
    for user, n in per_user.items():
        assert sum(s.bucket_count for s in segs if s.user_id == user) == n
    rows = sorted(zip(users, starts, labels, strict=True))
    for seg in segs:
        inside = [r for r in rows if r[0] == seg.user_id and seg.start_ts <= r[1] < seg.end_ts]
        assert len(inside) == seg.bucket_count
        assert {r[2] for r in inside} == {seg.label}
    for a, b in itertools.pairwise(segs):
        if a.user_id == b.user_id and b.start_ts - a.end_ts <= IDLE:
            assert a.label != b.label  # maximal: same label in one run is one segment


def _seg(start_min: int, minutes: int, label: str, user: str | None = "ann") -> Segment:
    return Segment(
        user_id=user,
        start_ts=T0 + start_min * MIN,
        end_ts=T0 + (start_min + minutes) * MIN,
        label=label,
        bucket_count=minutes,
    )


def test_merge_absorbs_into_longer_neighbour():
    segs = [_seg(0, 5, "Build"), _seg(5, 1, "Debug"), _seg(6, 10, "Write")]
    merged = merge_short_segments(segs, 180)
    assert [(s.label, s.bucket_count) for s in merged] == [("Build", 5), ("Write", 11)]
    assert merged[1].start_ts == T0 + 5 * MIN


def test_merge_tie_goes_to_previous_and_coalesces():
    segs = [_seg(0, 5, "Build"), _seg(5, 1, "Debug"), _seg(6, 5, "Build")]
    merged = merge_short_segments(segs, 180)
    assert [(s.label, s.bucket_count) for s in merged] == [("Build", 11)]
    segs = [_seg(0, 5, "Build"), _seg(5, 2, "Debug"), _seg(7, 5, "Write")]
    assert [s.label for s in merge_short_segments(segs, 180)] == ["Build", "Write"]
    assert merge_short_segments(segs, 180)[0].end_ts == T0 + 7 * MIN


def test_merge_never_crosses_gap_or_user():
    segs = [_seg(0, 5, "Build"), _seg(20, 1, "Debug"), _seg(0, 1, "Write", user="bob")]
    merged = merge_short_segments(segs, 180)
    assert [(s.user_id, s.label, s.bucket_count) for s in merged] == [
        ("ann", "Build", 5),
        ("ann", "Debug", 1),
        ("bob", "Write", 1),
    ]


def test_merge_disabled_and_overlap_error():
    segs = [_seg(0, 5, "Build"), _seg(5, 1, "Debug")]
    assert merge_short_segments(segs, 0) == segs
    with pytest.raises(InputError, match="overlap"):
        merge_short_segments([_seg(0, 5, "Build"), _seg(4, 2, "Write")], 180)


@settings(max_examples=60, deadline=None)
@given(data=users_minutes(), min_minutes=st.sampled_from([0, 2, 3, 5]))
def test_merge_properties(data, min_minutes):
    users, starts, labels = data
    segs = segmentize(starts, labels, user_ids=users)
    merged = merge_short_segments(segs, min_minutes * 60)
    assert len(merged) <= len(segs)
    assert sum(s.bucket_count for s in merged) == sum(s.bucket_count for s in segs)
    assert _runs_of(merged) == _runs_of(segs)  # never across an idle gap or a user
    assert set(s.label for s in merged) <= set(labels)
    for run in _runs_of(merged):
        inside = [s for s in merged if s.user_id == run[0] and run[1] <= s.start_ts < run[2]]
        if len(inside) > 1:
            assert all(s.duration_seconds >= min_minutes * 60 for s in inside)
    assert merge_short_segments(merged, min_minutes * 60) == merged  # a fixed point
    assert merge_short_segments(list(reversed(segs)), min_minutes * 60) == merged


def test_records_roundtrip_and_validation():
    segs = segmentize(_minutes([0, 1, 2]), ["Build", "Build", MIXED_UNKNOWN], user_ids="ann")
    records = json.loads(json.dumps(segments_to_records(segs)))
    assert set(records[0]) == {"user_id", "start_ts", "end_ts", "label", "bucket_count"}
    assert records[0]["start_ts"] == "2026-03-02T09:00:00+00:00"
    assert segments_from_records(records) == segs
    with pytest.raises(ArtifactError, match="segment #0"):
        segments_from_records([{**records[0], "bucket_count": 0}])
    with pytest.raises(ArtifactError, match="segment #1"):
        segments_from_records([records[0], {**records[1], "start_ts": "2026-03-02T09:00:00"}])
    with pytest.raises(ArtifactError, match="list"):
        segments_from_records({"segments": records})


def _reference_merge(segments: list[Segment], min_seconds: float) -> list[Segment]:
    """The documented greedy rule, written plainly (quadratic) as an oracle."""
    out: list[Segment] = []
    ordered = sorted(segments, key=lambda s: (s.user_id or "", s.start_ts))
    runs: list[list[list]] = []
    for seg in ordered:
        item = [seg.start_ts, seg.end_ts, seg.label, seg.bucket_count]
        last = runs[-1][-1] if runs else None
        if last is not None and last[4] == seg.user_id and seg.start_ts - last[1] <= IDLE:
            runs[-1].append([*item, seg.user_id])
        else:
            runs.append([[*item, seg.user_id]])

    def dur(it: list) -> float:
        return (it[1] - it[0]).total_seconds()

    for items in runs:
        while len(items) > 1:
            short = [(dur(it), k) for k, it in enumerate(items) if dur(it) < min_seconds]
            if not short:
                break
            _, i = min(short)  # the shortest; ties: the earliest
            left = items[i - 1] if i > 0 else None
            right = items[i + 1] if i + 1 < len(items) else None
            target = (
                right if left is None or (right is not None and dur(right) > dur(left)) else left
            )
            target[0], target[1] = min(target[0], items[i][0]), max(target[1], items[i][1])
            target[3] += items[i][3]
            del items[i]
            t = next(k for k, it in enumerate(items) if it is target)
            after = items[t + 1] if t + 1 < len(items) else None
            for other in (items[t - 1] if t > 0 else None, after):
                if other is not None and other[2] == target[2]:
                    target[0], target[1] = min(target[0], other[0]), max(target[1], other[1])
                    target[3] += other[3]
                    items.remove(other)
        out.extend(
            Segment(user_id=u, start_ts=a, end_ts=b, label=lab, bucket_count=c)
            for a, b, lab, c, u in items
        )
    return out


@settings(max_examples=150, deadline=None)
@given(data=users_minutes(), min_minutes=st.sampled_from([2, 3, 5, 12]))
def test_merge_equals_the_plain_greedy_rule(data, min_minutes):
    users, starts, labels = data
    segs = segmentize(starts, labels, user_ids=users)
    assert merge_short_segments(segs, min_minutes * 60) == _reference_merge(segs, min_minutes * 60)
