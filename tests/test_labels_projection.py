"""Projection of label spans onto minute rows: examples, edge cases, and an oracle property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.errors import LabelError, SchemaError
from taskclf.core.types import LabelSpan
from taskclf.labels.projection import coverage_table, project_blocks_to_windows
from taskclf.labels.store import LabelStore, spans_to_frame

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _span(a: float, b: float, label: str = "Build", user: str | None = "u1") -> LabelSpan:
    return LabelSpan(start_ts=_at(a), end_ts=_at(b), label=label, user_id=user)


def _rows(minutes: list[float], user: str | None = "u1") -> pd.DataFrame:
    frame = pd.DataFrame(
        {"bucket_start_ts": pd.Series([_at(m) for m in minutes], dtype="datetime64[us, UTC]")}
    )
    if user is not None:
        frame.insert(0, "user_id", user)
    return frame


def _labels(df: pd.DataFrame) -> list[str | None]:
    return [None if v is None else str(v) for v in df["label"].tolist()]


def test_adjacent_agreeing_spans_cover_the_boundary_minute():
    spans = [_span(0, 30), _span(30, 60)]
    out = project_blocks_to_windows(_rows([0, 29, 29.5, 30, 59, 60]), spans)
    assert _labels(out) == ["Build", "Build", "Build", "Build", "Build", None]


def test_partial_cover_and_disagreement_leave_minutes_unlabeled():
    spans = [_span(0, 10.5, "Write"), _span(20, 30, "Build"), _span(30, 40, "Debug")]
    out = project_blocks_to_windows(_rows([9, 10, 11, 29, 29.5, 39]), spans)
    # 10:00-11:00 is half covered; 29.5 straddles Build/Debug; the rest is clean.
    assert _labels(out) == ["Write", None, None, "Build", None, "Debug"]


def test_user_scope_and_agnostic_spans():
    spans = [
        _span(0, 10, "Meet", user=None),
        _span(0, 10, "Meet", user="u1"),
        _span(10, 20, "Build", user="u2"),
        _span(10, 20, "Debug", user=None),
    ]
    rows = pd.concat([_rows([0, 5, 12], "u1"), _rows([0, 12], "u2"), _rows([12], "u3")])
    out = project_blocks_to_windows(rows, spans)
    # u1 minute 12 sees only the agnostic Debug; u2 minute 12 sees Build and Debug.
    assert _labels(out) == ["Meet", "Meet", "Debug", "Meet", None, "Debug"]


def test_copy_keeps_index_order_and_input():
    rows = _rows([5, 0, 50]).set_index(pd.Index([7, 3, 9]))
    before = rows.copy()
    out = project_blocks_to_windows(rows, [_span(0, 10)], bucket_seconds=60)
    pd.testing.assert_frame_equal(rows, before)
    assert list(out.index) == [7, 3, 9]
    assert out["label"].dtype == object
    assert _labels(out) == ["Build", "Build", None]


def test_frame_spans_with_nan_users_and_existing_label_column():
    frame = spans_to_frame([_span(0, 10, "Review", user=None), _span(10, 20, "Write")])
    frame["user_id"] = pd.Series([None, "u1"], dtype="str")  # pandas 3: NaN for missing
    rows = _rows([1, 11])
    rows["label"] = "stale"
    out = project_blocks_to_windows(rows, frame)
    assert _labels(out) == ["Review", "Write"]


def test_bucket_seconds_is_the_row_width():
    spans = [_span(0, 2.5)]
    rows = _rows([0, 1, 2])
    assert _labels(project_blocks_to_windows(rows, spans, bucket_seconds=60)) == [
        "Build",
        "Build",
        None,
    ]
    assert _labels(project_blocks_to_windows(rows, spans, bucket_seconds=30)) == [
        "Build",
        "Build",
        "Build",
    ]


def test_empty_inputs():
    assert _labels(project_blocks_to_windows(_rows([0, 1]), [])) == [None, None]
    empty = project_blocks_to_windows(_rows([]), [_span(0, 1)])
    assert len(empty) == 0 and "label" in empty.columns


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda r, s: (r.drop(columns="user_id"), s), SchemaError, "no 'user_id' column"),
        (
            lambda r, s: (r.assign(bucket_start_ts=r["bucket_start_ts"].dt.tz_localize(None)), s),
            SchemaError,
            "timezone-aware",
        ),
        (lambda r, s: (r, s.assign(label=["Nope"])), LabelError, "unknown label 'Nope'"),
        (lambda r, s: (r, s.assign(end_ts=s["start_ts"])), LabelError, "after start_ts"),
        (lambda r, s: (r, s.drop(columns="end_ts")), SchemaError, "end_ts"),
        (lambda r, s: (r.drop(columns="bucket_start_ts"), s), SchemaError, "bucket_start_ts"),
    ],
)
def test_bad_inputs_raise(mutate, error, match):
    rows, spans = mutate(_rows([0]), spans_to_frame([_span(0, 5)]))
    with pytest.raises(error, match=match):
        project_blocks_to_windows(rows, spans)


def test_bad_bucket_seconds():
    with pytest.raises(SchemaError, match="positive integer"):
        project_blocks_to_windows(_rows([0]), [], bucket_seconds=0)


def test_store_frame_resolves_extend_forward(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    store.add(
        LabelSpan(start_ts=_at(0), end_ts=_at(5), label="Write", user_id="u1", extend_forward=True)
    )
    store.add(_span(20, 30, "Meet"))
    out = project_blocks_to_windows(_rows([4, 15, 19, 20, 30]), store.spans_frame(user_id="u1"))
    assert _labels(out) == ["Write", "Write", "Write", "Meet", None]


def test_coverage_table_counts_minutes_per_user_and_label():
    rows = pd.concat([_rows([0, 1, 2], "u1"), _rows([0, 1], "u2")], ignore_index=True)
    out = project_blocks_to_windows(rows, [_span(0, 2, "Build", "u1"), _span(0, 1, "Meet", "u2")])
    table = coverage_table(out)
    got = {(r.user_id, r.label): (r.minutes, round(r.share, 3)) for r in table.itertuples()}
    assert got == {
        ("u1", "Build"): (2, 0.667),
        ("u1", "(unlabeled)"): (1, 0.333),
        ("u2", "Meet"): (1, 0.5),
        ("u2", "(unlabeled)"): (1, 0.5),
    }


# --- property: vectorized projection == brute-force oracle -----------------------------


def _oracle(
    rows: list[tuple[str, int]], spans: list[tuple[int, int, str, str | None]], width: int
) -> list[str | None]:
    out: list[str | None] = []
    for user, t in rows:
        hits = sorted(
            (a, b, lab)
            for a, b, lab, u in spans
            if (u is None or u == user) and a < t + width and b > t
        )
        if not hits or len({lab for _, _, lab in hits}) != 1:
            out.append(None)
            continue
        reach = t
        for a, b, _ in hits:
            if a > reach:
                break
            reach = max(reach, b)
        out.append(hits[0][2] if reach >= t + width else None)
    return out


_span_st = st.tuples(
    st.integers(0, 80),
    st.integers(1, 30),
    st.sampled_from(["Build", "Debug", "Meet"]),
    st.sampled_from([None, "a", "b"]),
)
_row_st = st.tuples(st.sampled_from(["a", "b", "c"]), st.integers(0, 100))


@settings(max_examples=150, deadline=None)
@given(
    spans=st.lists(_span_st, max_size=12),
    rows=st.lists(_row_st, min_size=1, max_size=40),
    width=st.sampled_from([4, 5, 12]),
)
def test_projection_matches_bruteforce_oracle(spans, rows, width):
    # Time unit: 5 seconds, so spans and rows hit every boundary case.
    unit = 5
    spans_abs = [(a * unit, (a + d) * unit, lab, u) for a, d, lab, u in spans]
    models = [
        LabelSpan(
            start_ts=T0 + timedelta(seconds=a),
            end_ts=T0 + timedelta(seconds=b),
            label=lab,
            user_id=u,
        )
        for a, b, lab, u in spans_abs
    ]
    frame = pd.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "bucket_start_ts": pd.Series(
                [T0 + timedelta(seconds=t * unit) for _, t in rows], dtype="datetime64[us, UTC]"
            ),
        }
    )
    expected = _oracle([(u, t * unit) for u, t in rows], spans_abs, width * unit)
    got_models = _labels(project_blocks_to_windows(frame, models, bucket_seconds=width * unit))
    got_frame = _labels(
        project_blocks_to_windows(frame, spans_to_frame(models), bucket_seconds=width * unit)
    )
    assert got_models == expected
    assert got_frame == expected


def test_large_random_case_matches_oracle():
    rng = np.random.default_rng(7)
    spans = []
    for _ in range(120):
        a = int(rng.integers(0, 20000))
        spans.append(
            (
                a,
                a + int(rng.integers(30, 600)),
                str(rng.choice(["Build", "Write"])),
                [None, "a", "b"][int(rng.integers(0, 3))],
            )
        )
    rows = [(str(rng.choice(["a", "b"])), int(rng.integers(0, 20600))) for _ in range(2000)]
    frame = pd.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "bucket_start_ts": pd.Series(
                [T0 + timedelta(seconds=t) for _, t in rows], dtype="datetime64[us, UTC]"
            ),
        }
    )
    models = [
        LabelSpan(
            start_ts=T0 + timedelta(seconds=a),
            end_ts=T0 + timedelta(seconds=b),
            label=lab,
            user_id=u,
        )
        for a, b, lab, u in spans
    ]
    got = _labels(project_blocks_to_windows(frame, models))
    expected = _oracle(rows, spans, 60)
    assert got == expected
    assert sum(v is not None for v in got) > 100  # the case exercises labeled minutes too
