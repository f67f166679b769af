"""Rolling-majority smoothing: batch, per-user batch and the online fold."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.errors import InputError
from taskclf.infer._online_smooth import OnlineSmoother
from taskclf.infer.smooth import (
    flap_rate,
    rolling_majority,
    rolling_majority_by_user,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LABELS = st.sampled_from(["Build", "Debug", "Write", MIXED_UNKNOWN])
WINDOWS = st.sampled_from([1, 3, 5, 7])


def _reference(labels: list[str], window: int, runs: list[int]) -> list[str]:
    """Brute-force statement of the documented rule (independent of the numpy code)."""
    half = window // 2
    out = []
    for i, center in enumerate(labels):
        lo, hi = i, i
        while lo - 1 >= max(0, i - half) and runs[lo - 1] == runs[i]:
            lo -= 1
        while hi + 1 <= min(len(labels) - 1, i + half) and runs[hi + 1] == runs[i]:
            hi += 1
        counts = Counter(labels[lo : hi + 1])
        top = max(counts.values())
        winners = [lab for lab, c in counts.items() if c == top]
        out.append(winners[0] if len(winners) == 1 else center)
    return out


@st.composite
def timed_minutes(draw: st.DrawFn, max_size: int = 40) -> tuple[list[str], list[datetime]]:
    labels = draw(st.lists(LABELS, max_size=max_size))
    # Steps of 1 minute mostly, sometimes small gaps (bridged) and long gaps (run breaks).
    steps = draw(
        st.lists(
            st.sampled_from([1, 1, 1, 2, 6, 7, 30]), min_size=len(labels), max_size=len(labels)
        )
    )
    starts, t = [], T0
    for step in steps:
        t = t + timedelta(minutes=step)
        starts.append(t)
    return labels, starts


def _runs(starts: list[datetime], idle_gap_minutes: int = 5) -> list[int]:
    runs, run = [], 0
    for i, t in enumerate(starts):
        if i and t - (starts[i - 1] + timedelta(minutes=1)) > timedelta(minutes=idle_gap_minutes):
            run += 1
        runs.append(run)
    return runs


def test_isolated_reject_smoothed_away_run_of_rejects_kept():
    m = MIXED_UNKNOWN
    assert rolling_majority(["Build", m, "Build"], 3) == ["Build"] * 3
    labels = ["Build", "Build", m, m, m, "Build", "Build"]
    assert rolling_majority(labels, 5) == labels  # a run of h+1 rejects stays rejected
    assert rolling_majority(["Build", m, m, "Build"], 3) == ["Build", m, m, "Build"]


def test_tie_keeps_center_label():
    # Window 5 centred on 'Debug': Build=2, Write=2, Debug=1 -> no strict majority.
    assert rolling_majority(["Build", "Build", "Debug", "Write", "Write"], 5)[2] == "Debug"
    # Edges: truncated window [A, B] is a tie, so each keeps its own label.
    assert rolling_majority(["Build", "Debug"], 3) == ["Build", "Debug"]


def test_majority_wins_over_center():
    assert rolling_majority(["Write", "Build", "Write", "Debug", "Write"], 5)[1:4] == [
        "Write",
        "Write",
        "Write",
    ]


def test_no_smoothing_across_idle_gap():
    starts = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=30)]
    labels = ["Build", "Write", "Build"]
    assert rolling_majority(labels, 3) == ["Build", "Build", "Build"]
    assert rolling_majority(labels, 3, bucket_starts=starts) == labels
    # A gap of exactly the idle gap is bridged.
    bridged = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=7)]
    assert rolling_majority(labels, 3, bucket_starts=bridged) == ["Build"] * 3


def test_pandas_series_timestamps_accepted():
    starts = pd.Series(pd.date_range(T0, periods=3, freq="min", tz="UTC"))
    assert rolling_majority(["Build", "Write", "Build"], 3, bucket_starts=starts) == ["Build"] * 3


@pytest.mark.parametrize("window", [0, 2, 4, -1, 3.0, True])
def test_bad_window_rejected(window):
    with pytest.raises(InputError, match="window"):
        rolling_majority(["Build"], window)  # type: ignore[arg-type]


def test_bad_timestamps_rejected():
    naive = [datetime(2026, 1, 1, 9, 0), datetime(2026, 1, 1, 9, 1)]
    with pytest.raises(InputError, match="aware"):
        rolling_majority(["Build", "Build"], 3, bucket_starts=naive)
    unsorted = [T0 + timedelta(minutes=1), T0]
    with pytest.raises(InputError, match="strictly increasing"):
        rolling_majority(["Build", "Build"], 3, bucket_starts=unsorted)
    with pytest.raises(InputError, match="align"):
        rolling_majority(["Build"], 3, bucket_starts=[T0, T0 + timedelta(minutes=1)])
    with pytest.raises(InputError, match="string"):
        rolling_majority(["Build", None], 3)  # type: ignore[list-item]


def test_empty_input():
    assert rolling_majority([], 5) == []
    assert OnlineSmoother(5).flush() == []


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(LABELS, max_size=50))
def test_window_one_is_identity(labels):
    assert rolling_majority(labels, 1) == labels


@settings(max_examples=60, deadline=None)
@given(data=timed_minutes(), window=WINDOWS)
def test_matches_reference_and_outputs_are_input_labels(data, window):
    labels, starts = data
    got = rolling_majority(labels, window, bucket_starts=starts)
    assert got == _reference(labels, window, _runs(starts))
    assert set(got) <= set(labels)
    assert len(got) == len(labels)


@settings(max_examples=40, deadline=None)
@given(label=LABELS, n=st.integers(0, 30), window=WINDOWS)
def test_constant_runs_are_fixed_points(label, n, window):
    labels = [label] * n
    assert rolling_majority(labels, window) == labels


@settings(max_examples=60, deadline=None)
@given(data=timed_minutes(), window=WINDOWS)
def test_online_equals_batch(data, window):
    labels, starts = data
    expected = rolling_majority(labels, window, bucket_starts=starts)
    smoother = OnlineSmoother(window)
    outputs = []
    for i, (label, start) in enumerate(zip(labels, starts, strict=True)):
        emitted = smoother.push(label, start)
        outputs.extend(emitted)
        # Lag: every minute older than window//2 pushes in its run is final.
        assert smoother.pending <= smoother.lag
        assert all(m.position <= i for m in emitted)
    outputs.extend(smoother.flush())
    assert [m.position for m in outputs] == list(range(len(labels)))
    assert [m.label for m in outputs] == expected
    assert [m.bucket_start for m in outputs] == starts


@settings(max_examples=40, deadline=None)
@given(labels=st.lists(LABELS, max_size=40), window=WINDOWS)
def test_online_without_times_equals_batch(labels, window):
    smoother = OnlineSmoother(window)
    out = [m.label for label in labels for m in smoother.push(label)]
    out += [m.label for m in smoother.flush()]
    assert out == rolling_majority(labels, window)


def test_online_emits_with_documented_lag():
    smoother = OnlineSmoother(5)
    assert smoother.lag == 2
    assert smoother.push("Build") == []
    assert smoother.push("Build") == []
    first = smoother.push("Write")
    assert [(m.position, m.label) for m in first] == [(0, "Build")]
    # A long gap finalizes the open run at once.
    smoother2 = OnlineSmoother(5)
    smoother2.push("Build", T0)
    smoother2.push("Write", T0 + timedelta(minutes=1))
    out = smoother2.push("Debug", T0 + timedelta(hours=1))
    assert [m.position for m in out] == [0, 1]


def test_online_rejects_mixed_time_usage_and_disorder():
    smoother = OnlineSmoother(3)
    smoother.push("Build", T0)
    with pytest.raises(InputError, match="every pushed minute"):
        smoother.push("Build")
    with pytest.raises(InputError, match="time order"):
        smoother.push("Build", T0)


@settings(max_examples=40, deadline=None)
@given(a=timed_minutes(20), b=timed_minutes(20), window=WINDOWS)
def test_by_user_equals_per_user(a, b, window):
    users = ["u1"] * len(a[0]) + ["u2"] * len(b[0])
    labels = a[0] + b[0]
    starts = a[1] + b[1]
    got = rolling_majority_by_user(users, labels, window, bucket_starts=starts)
    expected = rolling_majority(a[0], window, bucket_starts=a[1]) + rolling_majority(
        b[0], window, bucket_starts=b[1]
    )
    assert got == expected


def test_by_user_requires_grouped_rows():
    starts = [T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    with pytest.raises(InputError, match="not contiguous"):
        rolling_majority_by_user(["a", "b", "a"], ["Build"] * 3, 3, bucket_starts=starts)


def test_flap_rate():
    assert flap_rate([]) == 0.0
    assert flap_rate(["Build"]) == 0.0
    assert flap_rate(["Build", "Write", "Build", "Build", "Debug"]) == pytest.approx(3 / 4)


@settings(max_examples=60, deadline=None)
@given(labels=st.lists(LABELS, max_size=40))
def test_window_three_never_increases_flap_rate(labels):
    # (Wider windows with the keep-the-center tie rule can, e.g. AABCCBBC with window 5.)
    assert 0.0 <= flap_rate(labels) <= 1.0
    assert flap_rate(rolling_majority(labels, 3)) <= flap_rate(labels)
