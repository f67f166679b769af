"""Online parity: FeatureState, minute by minute, equals batch build_features exactly."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from taskclf.core.errors import InputError
from taskclf.features.build import build_features
from taskclf.infer.feature_state import FeatureState
from test_features_helpers import T0, events

KW = {"user_id": "u1", "device_id": "dev", "timezone": "Europe/Warsaw"}
SPAN = 25 * 60  # events start within 25 minutes

APPS = ["Code.exe", "chrome.exe", "firefox.exe", "Slack.exe", "WindowsTerminal.exe"]
TITLES = ["a", "b - c", "main.py", ""]
URLS = ["https://github.com/x", "https://mail.google.com", "http://localhost:3000", ""]

start = st.integers(0, SPAN)
window_ev = st.tuples(
    start,
    st.sampled_from([0, 0.5, 3, 20, 59, 61, 150, 700]),
    st.sampled_from(APPS),
    st.sampled_from(TITLES),
)
afk_ev = st.tuples(
    start, st.sampled_from([1, 30, 90, 400, 1500]), st.sampled_from(["afk", "not-afk"])
)
input_ev = st.tuples(
    start,
    st.sampled_from([0, 1, 5, 70]),
    st.fixed_dictionaries(
        {"presses": st.integers(0, 50), "clicks": st.integers(0, 5)},
        optional={"deltaX": st.integers(0, 500), "backspaces": st.integers(0, 3)},
    ),
)
web_ev = st.tuples(start, st.sampled_from([0, 10, 200]), st.sampled_from(URLS))


def _online(ev: pd.DataFrame, *, grow: bool, step: int) -> pd.DataFrame:
    """Replay: at each boundary add what has started by then (growing events clipped)."""
    state = FeatureState(**KW)
    first = ev["start_ts"].min().floor("min")
    last = max(ev["end_ts"].max(), ev["start_ts"].max()).ceil("min") + pd.Timedelta(minutes=1)
    rows = []
    t = first
    while t < last:
        t = t + pd.Timedelta(minutes=step)
        started = ev[ev["start_ts"] < t].copy()
        if grow:
            clip = started["kind"] != "input"
            started.loc[clip, "end_ts"] = started.loc[clip, "end_ts"].clip(upper=t)
        state.add_events(started)
        rows.append(state.close_until(t.to_pydatetime()))
    return pd.concat(rows, ignore_index=True)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(window_ev, min_size=1, max_size=25),
    st.lists(afk_ev, max_size=8),
    st.lists(input_ev, max_size=10),
    st.lists(web_ev, max_size=6),
    st.booleans(),
    st.sampled_from([1, 1, 3, 7]),
)
def test_incremental_equals_batch(window, afk, inputs, web, grow, step):
    ev = events(window=window, afk=afk, inputs=inputs, web=web)
    batch = build_features(ev, **KW)
    online = _online(ev, grow=grow, step=step)
    pd.testing.assert_frame_equal(online, batch, check_exact=True)


def _real_events(start: str, hours: int) -> pd.DataFrame:
    """Normalized events of a real export that start within ``hours`` from ``start``."""
    from conftest import REAL_DATA
    from taskclf.adapters.activitywatch.events import normalize_buckets
    from taskclf.adapters.activitywatch.export import parse_export

    parsed = parse_export(REAL_DATA / "aw_mhacks_LAPTOP-MCRJASPH_export.json")
    ev = normalize_buckets(parsed.buckets, secret=b"s" * 32)
    t_lo = pd.Timestamp(start)
    ev = ev[(ev["start_ts"] >= t_lo) & (ev["start_ts"] < t_lo + pd.Timedelta(hours=hours))]
    return ev.reset_index(drop=True)


def test_real_export_parity_minute_by_minute():
    ev = _real_events("2023-11-18T21:00:00Z", 1)  # one busy hour keeps the test short
    batch = build_features(ev, **KW)
    assert len(batch) > 30
    pd.testing.assert_frame_equal(_online(ev, grow=True, step=1), batch, check_exact=True)


def test_close_minute_order_and_boundaries():
    ev = events(window=[(0, 180, "Code.exe", "x")])
    state = FeatureState(**KW)
    state.add_events(ev)
    assert state.next_bucket_start == T0
    with pytest.raises(InputError, match="boundary"):
        state.close_minute(T0 + timedelta(seconds=5))
    with pytest.raises(InputError, match="next open bucket"):
        state.close_minute(T0 + timedelta(minutes=2))
    rows = [state.close_minute(T0 + timedelta(minutes=i)) for i in range(3)]
    assert [len(r) for r in rows] == [1, 1, 1]
    assert state.close_until(T0).empty  # already closed
    assert state.buffered_events <= 1


def test_the_buffer_keeps_a_bounded_tail_of_a_long_stream():
    """Pruned every few closed minutes: a long day keeps only its recent events."""
    state = FeatureState(**KW)
    sizes = []
    for m in range(240):
        state.add_events(events(window=[(60 * m, 60, "Code.exe", f"t{m % 7}")]))
        state.close_until(T0 + timedelta(minutes=m + 1))
        sizes.append(state.buffered_events)
    idle_minutes = state.params.idle_gap_us // state.params.bucket_us
    assert max(sizes) <= idle_minutes + 10  # a prune at least every 8 closed minutes
    assert min(sizes[60:]) >= 1  # the recent events stay


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    return bool(a == b) if not isinstance(a, list) else list(a) == list(b)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_records_equal_frame_rows(version):
    ev = events(
        window=[(0, 200, "Code.exe", "main.py"), (200, 130, "chrome.exe", "docs")],
        afk=[(0, 400, "not-afk")],
        inputs=[(10, 5, {"presses": 9, "clicks": 1})],
        web=[(200, 60, "https://github.com/x")],
    )
    batch = build_features(ev, **KW, schema_version=version)
    state = FeatureState(**KW, schema_version=version)
    state.add_events(ev)
    records = []
    for m in range(1, 10):
        records += state.close_until_records(T0 + timedelta(minutes=m))
    assert len(records) == len(batch) == 7
    for rec, (_, row) in zip(records, batch.iterrows(), strict=True):
        assert list(rec) == list(batch.columns)
        bad = [c for c in batch.columns if not _same(rec[c], row[c])]
        assert bad == []


def _online_records(ev: pd.DataFrame, *, grow: bool, steps: list[int], **kw) -> list[dict]:
    """Like :func:`_online`, with ``close_until_records`` and a cycle of step sizes.

    Steps of one minute take the plain-Python path (``features._one``), longer steps the
    batch code, so a mixed cycle also checks the hand-over of the fold state between them.
    """
    state = FeatureState(**{**KW, **kw})
    first = ev["start_ts"].min().floor("min")
    last = max(ev["end_ts"].max(), ev["start_ts"].max()).ceil("min") + pd.Timedelta(minutes=1)
    out: list[dict] = []
    t, k = first, 0
    while t < last:
        t = t + pd.Timedelta(minutes=steps[k % len(steps)])
        k += 1
        started = ev[ev["start_ts"] < t].copy()
        if grow:
            clip = started["kind"] != "input"
            started.loc[clip, "end_ts"] = started.loc[clip, "end_ts"].clip(upper=t)
        state.add_events(started)
        out += state.close_until_records(t.to_pydatetime())
    return out


def _assert_records_equal(records: list[dict], batch: pd.DataFrame) -> None:
    assert len(records) == len(batch)
    for rec, (_, row) in zip(records, batch.iterrows(), strict=True):
        assert list(rec) == list(batch.columns)
        bad = [(c, rec[c], row[c]) for c in batch.columns if not _same(rec[c], row[c])]
        assert bad == []


# On a 15-second grid, ties between apps, events touching bucket boundaries and rows one
# empty minute apart are common: the cases where a plain-Python rule most easily drifts.
grid_start = st.integers(0, SPAN // 15).map(lambda k: k * 15)
grid_window = st.tuples(
    grid_start,
    st.sampled_from([0, 15, 30, 45, 60, 120, 300]),
    st.sampled_from(APPS[:3]),
    st.sampled_from(TITLES),
)
grid_afk = st.tuples(
    grid_start, st.sampled_from([15, 45, 60, 120, 600]), st.sampled_from(["afk", "not-afk"])
)
grid_input = st.tuples(
    grid_start,
    st.sampled_from([0, 15, 60, 90]),
    st.fixed_dictionaries(
        {"presses": st.integers(0, 3), "clicks": st.integers(0, 2)},
        optional={"deltaX": st.integers(0, 5), "scrollY": st.integers(0, 2)},
    ),
)
grid_web = st.tuples(grid_start, st.sampled_from([0, 15, 60, 180]), st.sampled_from(URLS))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.tuples(
            st.lists(window_ev, min_size=1, max_size=25),
            st.lists(afk_ev, max_size=8),
            st.lists(input_ev, max_size=10),
            st.lists(web_ev, max_size=6),
        ),
        st.tuples(
            st.lists(grid_window, min_size=1, max_size=20),
            st.lists(grid_afk, max_size=8),
            st.lists(grid_input, max_size=10),
            st.lists(grid_web, max_size=6),
        ),
    ),
    st.booleans(),
    st.sampled_from([[1], [1], [1, 1, 1, 4], [3, 1, 1]]),
    st.sampled_from(["v1", "v3"]),
)
@example(  # the first row is inactive (window time while AFK): it still opens a session
    mix=([(0, 120, "Code.exe", "a"), (200, 30, "chrome.exe", "b")], [(0, 150, "afk")], [], []),
    grow=False,
    steps=[1],
    version="v1",
)
def test_one_minute_records_equal_batch(mix, grow, steps, version):
    window, afk, inputs, web = mix
    ev = events(window=window, afk=afk, inputs=inputs, web=web)
    batch = build_features(ev, **KW, schema_version=version)
    got = _online_records(ev, grow=grow, steps=steps, schema_version=version)
    _assert_records_equal(got, batch)


def test_one_minute_records_real_export():
    ev = _real_events("2023-11-18T20:00:00Z", 3)
    batch = build_features(ev, **KW)
    assert len(batch) > 100
    _assert_records_equal(_online_records(ev, grow=True, steps=[1]), batch)


def _online_vectors(ev: pd.DataFrame, plan, *, steps: list[int], **kw) -> list:
    """:func:`_online_records` through ``close_until_vectors`` (copies of the rows)."""
    state = FeatureState(**{**KW, **kw})
    first = ev["start_ts"].min().floor("min")
    last = max(ev["end_ts"].max(), ev["start_ts"].max()).ceil("min") + pd.Timedelta(minutes=1)
    out: list = []
    t, k = first, 0
    while t < last:
        t = t + pd.Timedelta(minutes=steps[k % len(steps)])
        k += 1
        state.add_events(ev[ev["start_ts"] < t])
        out += [
            (start, x.copy()) for start, x in state.close_until_vectors(t.to_pydatetime(), plan)
        ]
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.tuples(
        st.lists(grid_window, min_size=1, max_size=20),
        st.lists(grid_afk, max_size=8),
        st.lists(grid_input, max_size=10),
        st.lists(grid_web, max_size=6),
    ),
    st.sampled_from([[1], [1, 1, 3]]),
    st.sampled_from(["v1", "v2", "v3"]),
)
def test_vectors_are_the_encoded_records(mix, steps, version):
    """``close_until_vectors`` rows equal ``MatrixEncoder.encode_row`` of the batch rows,
    with categories the encoder never saw (the reserved unknown code) among them."""
    from taskclf.core.encoding import MatrixEncoder, fit_categorical_encoders
    from taskclf.features._one import VectorPlan

    window, afk, inputs, web = mix
    ev = events(window=window, afk=afk, inputs=inputs, web=web)
    batch = build_features(ev, **KW, schema_version=version)
    encoders = fit_categorical_encoders(batch.iloc[: max(1, len(batch) // 2)], version)
    encoder = MatrixEncoder(encoders, version)
    got = _online_vectors(ev, VectorPlan(encoder), steps=steps, schema_version=version)
    want = encoder.encode_frame(batch)
    assert len(got) == len(want)
    epoch = pd.Timestamp(0, tz="UTC")
    starts = ((batch["bucket_start_ts"] - epoch) // pd.Timedelta(microseconds=1)).tolist()
    for (start, x), row, s in zip(got, want, starts, strict=True):
        assert start == s
        assert np.array_equal(x, row, equal_nan=True)


def test_many_titles_renumber_the_string_table_without_changing_rows(monkeypatch):
    """The interned strings are compacted to the live ones as titles pile up (here every
    few minutes), and title repeats of the open session survive it."""
    from taskclf.infer import feature_state

    monkeypatch.setattr(feature_state, "_MAX_STRINGS", 24)
    monkeypatch.setattr(feature_state, "_MAX_TITLES", 12)
    window = [(60 * m, 60, APPS[m % 3], f"title {m % 60}") for m in range(120)]
    ev = events(window=window, afk=[(0, 120 * 60, "not-afk")], inputs=[(30, 5, {"presses": 3})])
    batch = build_features(ev, **KW)
    assert batch["title_repeat_count_session"].max() == 1  # the second hour repeats the first
    compactions = []
    compact = feature_state.FeatureState._compact_strings

    def spy(self: FeatureState) -> None:
        compactions.append(len(self._buffer.strings))
        compact(self)

    monkeypatch.setattr(feature_state.FeatureState, "_compact_strings", spy)

    def replay() -> list[dict]:
        state = FeatureState(**KW)
        out: list[dict] = []
        for m in range(1, 123):
            t = T0 + timedelta(minutes=m)
            state.add_events(ev[ev["start_ts"] < t])
            out += state.close_until_records(t)
        return out

    _assert_records_equal(replay(), batch)
    assert len(compactions) >= 2  # the table was renumbered while the session went on
