"""The plain-Python small-input paths of ``features._small`` equal the generic pandas paths."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.features import (
    _buffer,
    _event_lists,
    _fold,
    _minutes,
    _small,
    dynamics,
    sessions,
    windows,
)
from test_features_helpers import same_cell

WORDS = st.sampled_from(["", "a", "B", "b", "ab", "é", "z z", "10", "9", "None", "nan"])
VALUES = st.lists(st.one_of(WORDS, WORDS, st.none(), st.just(float("nan"))), max_size=40)


def _obj(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _generic(monkeypatch: pytest.MonkeyPatch, fn, *args):
    with monkeypatch.context() as m:
        m.setattr(_small, "SMALL", -1)
        return fn(*args)


def _same(fast: np.ndarray, slow: np.ndarray) -> None:
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    assert fast.tolist() == slow.tolist()
    assert [type(v) for v in fast.tolist()] == [type(v) for v in slow.tolist()]


@given(items=VALUES)
def test_factorize_sorted_matches_pandas(items: list) -> None:
    mp = pytest.MonkeyPatch()
    values = _obj(items)
    for fast, slow in zip(
        _small.factorize_sorted(values),
        _generic(mp, _small.factorize_sorted, values),
        strict=True,
    ):
        _same(fast, slow)


@given(items=VALUES)
def test_factorize_first_matches_pandas(items: list) -> None:
    mp = pytest.MonkeyPatch()
    values = _obj(items)
    for fast, slow in zip(
        _small.factorize_first(values), _generic(mp, _small.factorize_first, values), strict=True
    ):
        _same(fast, slow)


@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 3), st.one_of(WORDS, st.none(), st.just(float("nan")))),
        max_size=40,
    )
)
def test_pair_cumcount_matches_groupby(pairs: list) -> None:
    mp = pytest.MonkeyPatch()
    first = np.array([p[0] for p in pairs], dtype=np.int64)
    second = _obj([p[1] for p in pairs])
    _same(_small.pair_cumcount(first, second), _generic(mp, _small.pair_cumcount, first, second))


FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([0.0, -0.0, 0.1, 1e300, -1e300, float("nan")]),
)


@given(
    data=st.lists(st.tuples(st.integers(1, 4), FLOATS), min_size=1, max_size=30),
    n_targets=st.integers(0, 30),
    window=st.integers(1, 16),
)
def test_lookback_sum_small_matches_vector(data: list, n_targets: int, window: int) -> None:
    minutes = np.cumsum([d[0] for d in data]).astype(np.int64)
    values = np.array([d[1] for d in data], dtype=np.float64)
    targets = np.arange(max(len(data) - n_targets, 0), len(data))
    mp = pytest.MonkeyPatch()
    with mp.context() as m, np.errstate(over="ignore", invalid="ignore"):
        m.setattr(windows, "_SMALL", -1)
        slow = windows.lookback_sum(minutes, values, targets, window)
    fast = windows.lookback_sum(minutes, values, targets, window)
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


@given(
    gaps=st.lists(st.integers(1, 3), min_size=1, max_size=25),
    long=st.lists(
        st.tuples(st.integers(0, 24), st.integers(0, 5), st.integers(0, 60_000_000)), max_size=60
    ),
    n_targets=st.integers(0, 25),
    window=st.integers(1, 16),
)
def test_app_window_stats_small_matches_vector(
    gaps: list, long: list, n_targets: int, window: int
) -> None:
    minutes = np.cumsum(gaps).astype(np.int64)
    long = sorted(x for x in long if x[0] < minutes.size)
    app_row = np.array([x[0] for x in long], dtype=np.intp)
    app_code = np.array([x[1] for x in long], dtype=np.int64)
    app_us = np.array([x[2] for x in long], dtype=np.int64)
    targets = np.arange(max(minutes.size - n_targets, 0), minutes.size)
    args = (minutes, app_row, app_code, app_us, targets, window)
    mp = pytest.MonkeyPatch()
    with mp.context() as m, np.errstate(invalid="ignore", divide="ignore"):
        m.setattr(windows, "_SMALL", -1)
        slow = windows.app_window_stats(*args)
    fast = windows.app_window_stats(*args)
    for a, b in zip(fast, slow, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()


@given(
    minutes=st.lists(st.integers(0, 40_000_000), max_size=8),
    zone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata",
                          "Australia/Lord_Howe", "Pacific/Chatham", "America/St_Johns"]),
    bucket_seconds=st.sampled_from([30, 60, 300]),
)  # fmt: skip
def test_scalar_times_match_vector(minutes: list, zone: str, bucket_seconds: int) -> None:
    ctx = _fold.RowContext("u", None, zone, "v3", _fold.FoldParams(bucket_seconds, 300))
    m = np.array(sorted(set(minutes)), dtype=np.int64)
    vector = {k: list(v) if isinstance(v, pd.DatetimeIndex) else v.tolist()
              for k, v in _fold._times(m, ctx).items()}  # fmt: skip
    scalar = _fold._scalar_times(m, ctx)
    assert scalar == vector
    for k in scalar:
        assert [type(v) for v in scalar[k]] == [type(v) for v in vector[k]]
    assert [t.unit for t in scalar["bucket_start_ts"] + scalar["bucket_end_ts"]] == ["us"] * (
        2 * m.size
    )


@given(
    values=st.lists(st.integers(-3, 30), max_size=70),
    table=st.sets(st.integers(-3, 30), max_size=20),
)
def test_isin_sorted_matches_numpy(values: list, table: set) -> None:
    v = np.array(values, dtype=np.int64)
    t = np.array(sorted(table), dtype=np.int64)
    got = _small.isin_sorted(v, t)
    assert got.dtype == np.bool_ and got.tolist() == np.isin(v, t).tolist()


@given(
    intervals=st.lists(st.tuples(st.integers(0, 600), st.integers(0, 200)), max_size=30),
    lo=st.integers(-1, 12),
    bucket=st.sampled_from([1, 7, 60]),
)
def test_split_one_bucket_matches_general(intervals: list, lo: int, bucket: int) -> None:
    start = np.array([s for s, _ in intervals], dtype=np.int64)
    end = start + np.array([d for _, d in intervals], dtype=np.int64)
    fast = windows.split_by_bucket(start, end, bucket, lo, lo + 1)
    general = windows.split_by_bucket(start, end, bucket, lo, lo + 2)  # takes the general path
    mine = general[1] == lo
    for a, b in zip(fast, general, strict=True):
        assert a.dtype == b.dtype
        assert a.tolist() == b[mine].tolist()


def _generic_windows(fn, *args):
    with pytest.MonkeyPatch().context() as m:
        m.setattr(windows, "_SMALL", -1)
        return fn(*args)


@given(
    intervals=st.lists(st.tuples(st.integers(0, 300), st.integers(-5, 100)), max_size=30),
    buckets=st.sets(st.integers(-1, 8), max_size=10),
    bucket=st.sampled_from([1, 30, 60]),
)
def test_union_and_interval_stats_small_match_vector(
    intervals: list, buckets: set, bucket: int
) -> None:
    start = np.array([s for s, _ in intervals], dtype=np.int64)
    end = start + np.array([d for _, d in intervals], dtype=np.int64)
    fast_u = windows.union_intervals(start, end)
    slow_u = _generic_windows(windows.union_intervals, start, end)
    for a, b in zip(fast_u, slow_u, strict=True):
        _same(a, b)
    b_arr = np.array(sorted(buckets), dtype=np.int64)
    fast = windows.interval_stats(*slow_u, b_arr, bucket)
    slow = _generic_windows(windows.interval_stats, *slow_u, b_arr, bucket)
    for a, b in zip(fast, slow, strict=True):
        _same(a, b)


@given(
    starts=st.lists(st.integers(0, 40_000_000), max_size=20),
    bucket_us=st.sampled_from([1_000_000, 30_000_000, 60_000_000, 300_000_000]),
)
def test_session_ids_small_match_vector(starts: list, bucket_us: int) -> None:
    start_min = np.array(starts, dtype=np.int64)
    with pytest.MonkeyPatch().context() as m:
        m.setattr(sessions, "SMALL", -1)
        slow = sessions.session_ids(start_min, bucket_us)
    _same(sessions.session_ids(start_min, bucket_us), slow)


@given(
    rows=st.lists(
        st.tuples(st.integers(1, 8), st.booleans(), st.sampled_from(["", "t1", "t2"])),
        min_size=1,
        max_size=20,
    ),
    last_active=st.one_of(st.none(), st.integers(0, 5)),
    session_start=st.one_of(st.none(), st.integers(0, 5)),
    idle_gap=st.sampled_from([60, 120, 300]),
)
def test_session_fold_small_matches_vector(
    rows: list, last_active: int | None, session_start: int | None, idle_gap: int
) -> None:
    minute = 5 + np.cumsum([r[0] for r in rows]).astype(np.int64)
    active = np.array([r[1] for r in rows], dtype=bool)
    titles = _obj([r[2] for r in rows])
    carry = sessions.SessionCarry(last_active, session_start, {"t1": 2} if session_start else {})
    args = (minute, active, titles, 60_000_000, idle_gap * 1_000_000, carry)
    with pytest.MonkeyPatch().context() as m:
        m.setattr(sessions, "SMALL", -1)
        slow_cols, slow_carry = sessions.session_fold(*args)
    fast_cols, fast_carry = sessions.session_fold(*args)
    assert fast_carry == slow_carry
    assert fast_cols.keys() == slow_cols.keys()
    for k in fast_cols:
        _same(fast_cols[k], slow_cols[k])


@given(
    raw=st.lists(
        st.tuples(st.integers(0, 900), st.integers(1, 120), st.sampled_from(["a", "b", "c"])),
        min_size=1,
        max_size=25,
    ),
    doms=st.lists(st.sampled_from(["a", "b", "c", "none"]), min_size=16, max_size=16),
    carry=st.one_of(
        st.just(sessions.RunCarry()),
        st.builds(
            sessions.RunCarry,
            st.sampled_from(["a", "b"]),
            st.integers(-400, 10),
            st.integers(-900, -400),
        ),
    ),
    idle_gap=st.sampled_from([30, 300]),
)
def test_run_fold_small_matches_vector(
    raw: list, doms: list, carry: sessions.RunCarry, idle_gap: int
) -> None:
    start = np.array([r[0] for r in raw], dtype=np.int64) * 1_000_000
    pieces = {
        "start": start,
        "end": start + np.array([r[1] for r in raw], dtype=np.int64) * 1_000_000,
        "app": _obj([r[2] for r in raw]),
        "row": start // 60_000_000,  # rows follow time, as buckets do
    }
    dom_app = _obj(doms)
    args = (pieces, 16, dom_app, idle_gap * 1_000_000, carry)
    with pytest.MonkeyPatch().context() as m:
        m.setattr(sessions, "SMALL", -1)
        slow = sessions.run_fold(*args)
    fast = sessions.run_fold(*args)
    _same(fast[0], slow[0])
    _same(fast[1], slow[1])
    assert fast[2] == slow[2]


@given(
    n=st.integers(0, 6),
    data=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 70)), max_size=64),
    many=st.booleans(),
)
def test_row_name_lists_match_bitmask(n: int, data: list, many: bool) -> None:
    pairs = [(r, k if many else k % 5) for r, k in data if r < n]
    row = np.array([p[0] for p in pairs], dtype=np.int64)
    names = _obj([f"src-{k}" for _, k in pairs])
    with pytest.MonkeyPatch().context() as m:
        m.setattr(_small, "SMALL", -1)
        slow = _minutes._name_lists(row, names, n)
    fast = _minutes._name_lists(row, names, n)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    assert fast.tolist() == slow.tolist()


@given(
    data=st.lists(st.tuples(st.integers(1, 3), FLOATS, FLOATS, FLOATS), min_size=1, max_size=20),
    n_targets=st.integers(0, 20),
)
def test_deltas_small_match_vector(data: list, n_targets: int) -> None:
    rows = {
        "minute": np.cumsum([d[0] for d in data]).astype(np.int64),
        "keys_per_min": np.array([d[1] for d in data], dtype=np.float64),
        "clicks_per_min": np.array([d[2] for d in data], dtype=np.float64),
        "mouse_distance": np.array([d[3] for d in data], dtype=np.float64),
    }
    targets = np.arange(max(len(data) - n_targets, 0), len(data))
    with pytest.MonkeyPatch().context() as m, np.errstate(invalid="ignore", over="ignore"):
        m.setattr(dynamics, "SMALL", -1)
        slow = dynamics._deltas(rows, targets)
    with np.errstate(invalid="ignore", over="ignore"):
        fast = dynamics._deltas(rows, targets)
    assert fast.keys() == slow.keys()
    for k in fast:
        assert fast[k].dtype == slow[k].dtype and fast[k].tobytes() == slow[k].tobytes()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 300), st.sampled_from([0, 1, 30, 90]), st.sampled_from(["A", "B"])
        ),
        max_size=8,
    ),
    st.lists(st.tuples(st.integers(0, 300), st.sampled_from([1, 60]), st.booleans()), max_size=4),
    st.lists(
        st.tuples(
            st.integers(0, 300),
            st.sampled_from([0, 5]),
            st.fixed_dictionaries(
                {"presses": st.integers(0, 5)},
                optional={
                    "deltaX": st.integers(0, 9),
                    "deltaY": st.integers(0, 9),
                    "scrollX": st.integers(0, 2),
                    "scrollY": st.integers(0, 2),
                },
            ),
        ),
        max_size=6,
    ),
    st.lists(st.tuples(st.integers(0, 300), st.sampled_from([0, 20]), st.booleans()), max_size=4),
    st.randoms(use_true_random=False),
)
def test_small_event_arrays_match_pandas(window, afk, inputs, web, rnd) -> None:
    from test_features_helpers import events

    ev = events(
        window=[(s, d, f"{a}.exe", a.lower()) for s, d, a in window],
        afk=[(s, d, "afk" if on else "not-afk") for s, d, on in afk],
        inputs=inputs,
        web=[(s, d, "https://github.com/x" if g else "") for s, d, g in web],
    )
    rows = list(range(len(ev)))
    rnd.shuffle(rows)  # the canonical order must not depend on the frame's order
    ev = ev.iloc[rows].reset_index(drop=True)
    assert _event_lists.small_rows(ev, _minutes.TITLE_STAT_COLUMNS) is not None or ev.empty
    fast = _minutes.EventArrays.from_frame(ev)
    with patch.object(_event_lists, "SMALL_FRAME", -1):
        slow = _minutes.EventArrays.from_frame(ev)
    _same_arrays(fast, slow)


def _same_arrays(fast: _minutes.EventArrays, slow: _minutes.EventArrays) -> None:
    assert set(fast.kinds) == set(slow.kinds)
    for kind, cols in slow.kinds.items():
        assert set(fast.kinds[kind]) == set(cols)
        for key, want in cols.items():
            got = fast.kinds[kind][key]
            assert got.dtype == want.dtype and got.shape == want.shape, (kind, key)
            if want.dtype == object:
                pairs = zip(got.tolist(), want.tolist(), strict=True)
                assert all(same_cell(x, y) for x, y in pairs), key
            else:
                np.testing.assert_array_equal(got, want)
    assert fast.titles.keys() == slow.titles.keys()
    for h, want_row in slow.titles.items():
        assert all(same_cell(x, y) for x, y in zip(fast.titles[h], want_row, strict=True))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 600),  # start (s)
            st.sampled_from([0, 1, 30, 90, 400]),  # duration (s)
            st.sampled_from(["window", "afk", "input", "web"]),
            st.integers(0, 5),  # which event (ids repeat: a growing or re-fetched event)
        ),
        max_size=30,
    ),
    st.lists(st.integers(1, 6), min_size=1, max_size=6),
    st.integers(0, 600),
)
def test_event_buffer_matches_merged_arrays(specs, cuts, horizon_s) -> None:
    """Adding polls to an EventBuffer (and pruning) gives the arrays of all polls' events."""
    from test_features_helpers import T0, events

    frames = []
    for k, (s, d, kind, which) in enumerate(specs):
        one = events(
            window=[(s, d, "A.exe", "t")] if kind == "window" else [],
            afk=[(s, d, "afk" if which % 2 else "not-afk")] if kind == "afk" else [],
            inputs=[(s, d, {"presses": which})] if kind == "input" else [],
            web=[(s, d, "https://github.com/x")] if kind == "web" else [],
        )
        one["event_id"] = f"{kind}-{which}-{k % 3}"  # repeated ids with other ends
        frames.append(one)
    polls, at = [], 0
    for c in cuts:
        if at < len(frames):
            poll = pd.concat(frames[at : at + c], ignore_index=True)
            # a normalized frame has one row per event id (the latest end), as polls give it
            poll = poll.sort_values(["event_id", "end_ts"], kind="mergesort")
            polls.append(poll.drop_duplicates("event_id", keep="last").reset_index(drop=True))
        at += c
    buffer = _buffer.EventBuffer()
    if polls:  # the oracle: every poll's rows, one per event id (latest end; later poll on ties)
        seen = pd.concat(polls, ignore_index=True).sort_values(
            ["event_id", "end_ts"], kind="mergesort"
        )
        union = seen.drop_duplicates("event_id", keep="last").reset_index(drop=True)
        with patch.object(_event_lists, "SMALL_FRAME", -1):
            want = _minutes.EventArrays.from_frame(union)
    for poll in polls:
        rows, titles = _event_lists.small_rows(poll, _minutes.TITLE_STAT_COLUMNS)
        buffer.add(rows, titles)
    got = _minutes.EventArrays(kinds=buffer.arrays(), titles=buffer.titles)
    if polls:
        _same_arrays(got, want)
    horizon = int((T0.timestamp() + horizon_s) * 1e6)
    buffer.prune(horizon)
    if polls:
        keep = {
            kind: (c["end"] > horizon) | (c["start"] >= horizon) for kind, c in want.kinds.items()
        }
        pruned = want.select(keep)
        _same_arrays(_minutes.EventArrays(kinds=buffer.arrays(), titles=buffer.titles), pruned)
        for kind in _event_lists.KINDS:
            c = pruned.kinds[kind]
            longest = int((c["end"] - c["start"]).max()) if c["start"].size else 0
            assert buffer.longest[kind] >= longest
