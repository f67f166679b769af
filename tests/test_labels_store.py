"""The SQLite label store: overlap rules, overwrite, weak spans, extend_forward, durability."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskclf.core.errors import ArtifactError, InputError, LabelConflictError, LabelError
from taskclf.core.types import LabelSpan
from taskclf.labels.store import LabelStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def span(
    a: float,
    b: float,
    label: str = "Build",
    user: str | None = "u1",
    provenance: str = "manual",
    **kw: object,
) -> LabelSpan:
    return LabelSpan(
        start_ts=_at(a), end_ts=_at(b), label=label, user_id=user, provenance=provenance, **kw
    )


def intervals(store: LabelStore, **kw: object) -> list[tuple[float, float, str, str | None]]:
    out = []
    for s in store.list_spans(**kw):
        out.append(
            (
                (s.start_ts - T0).total_seconds() / 60,
                (s.end_ts - T0).total_seconds() / 60,
                s.label,
                s.user_id,
            )
        )
    return out


@pytest.fixture
def store(tmp_path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite")


def test_layout_location_and_persistence(layout):
    first = LabelStore.for_layout(layout)
    assert first.path == layout.labels_db
    first.add(span(0, 10))
    again = LabelStore.for_layout(layout)
    assert intervals(again) == [(0, 10, "Build", "u1")]


def test_wal_and_full_sync(store):
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    finally:
        conn.close()
    with store.db.write() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_same_user_overlap_is_refused_naming_the_span(store):
    first = store.add(span(0, 30, "Build"))
    with pytest.raises(LabelConflictError) as info:
        store.add(span(20, 40, "Debug"))
    msg = str(info.value)
    assert f"span #{first.span_id}" in msg
    assert "2026-01-05T09:00:00+00:00" in msg and "Build" in msg and "overwrite" in msg
    assert intervals(store) == [(0, 30, "Build", "u1")]


def test_other_users_may_overlap_but_agnostic_conflicts_with_everyone(store):
    store.add(span(0, 30, user="u1"))
    store.add(span(0, 30, "Debug", user="u2"))
    with pytest.raises(LabelConflictError, match="every user"):
        store.add(span(10, 20, "Meet", user=None))
    store.add(span(40, 50, "Meet", user=None))
    with pytest.raises(LabelConflictError):
        store.add(span(45, 60, user="u3"))
    assert len(intervals(store)) == 3


def test_adjacent_spans_do_not_conflict(store):
    store.add(span(0, 30))
    store.add(span(30, 60, "Write"))
    store.add(span(60, 61, user=None))
    assert [i[:2] for i in intervals(store)] == [(0, 30), (30, 60), (60, 61)]


def test_overwrite_truncates_splits_and_removes(store):
    store.add(span(0, 30, "Build"))
    store.add(span(30, 40, "Debug"))
    store.add(span(40, 100, "Write"))
    result = store.add(span(20, 60, "Meet"), overwrite=True)
    assert len(result.cut) == 3
    assert intervals(store) == [
        (0, 20, "Build", "u1"),
        (20, 60, "Meet", "u1"),
        (60, 100, "Write", "u1"),
    ]
    store.add(span(70, 80, "Review"), overwrite=True)  # split
    assert intervals(store)[-3:] == [
        (60, 70, "Write", "u1"),
        (70, 80, "Review", "u1"),
        (80, 100, "Write", "u1"),
    ]


def test_user_span_never_cuts_an_agnostic_span(store):
    store.add(span(0, 60, "BreakIdle", user=None))
    with pytest.raises(LabelConflictError, match="cannot cut a span that applies to every user"):
        store.add(span(10, 20, user="u1"), overwrite=True)
    store.add(span(10, 20, "Meet", user=None), overwrite=True)
    assert intervals(store) == [
        (0, 10, "BreakIdle", None),
        (10, 20, "Meet", None),
        (20, 60, "BreakIdle", None),
    ]


def test_agnostic_overwrite_cuts_every_users_spans(store):
    store.add(span(0, 30, user="u1"))
    store.add(span(0, 30, "Debug", user="u2"))
    store.add(span(10, 20, "Meet", user=None), overwrite=True)
    assert intervals(store, user_id="u2", include_agnostic=False) == [
        (0, 10, "Debug", "u2"),
        (20, 30, "Debug", "u2"),
    ]


def test_manual_span_wins_over_weak_without_overwrite(store):
    store.add(span(0, 60, "Communicate", provenance="weak:chat"))
    store.add(span(20, 30, "Meet"))
    assert intervals(store) == [
        (0, 20, "Communicate", "u1"),
        (20, 30, "Meet", "u1"),
        (30, 60, "Communicate", "u1"),
    ]
    with pytest.raises(LabelConflictError):
        store.add(span(25, 35, "BreakIdle", provenance="weak:idle"))
    weak = store.list_spans(provenance="weak:")
    assert {s.provenance for s in weak} == {"weak:chat"} and len(weak) == 2
    assert [s.label for s in store.list_spans(provenance="manual")] == ["Meet"]


def test_fill_gaps_never_changes_stored_spans(store):
    store.add(span(10, 20, "Meet"))
    store.add(span(40, 45, "Write", extend_forward=True))
    store.add(span(60, 70, "Debug"))
    before = intervals(store)
    result = store.fill_gaps([span(0, 100, "Communicate", provenance="weak:chat")])
    # Gaps: [0,10), [20,40), [70,100); [45,60) belongs to the extend_forward span.
    assert [(s.span.start_ts, s.span.end_ts) for s in result.added] == [
        (_at(0), _at(10)),
        (_at(20), _at(40)),
        (_at(70), _at(100)),
    ]
    assert result.proposed_seconds == 6000 and result.added_seconds == 3600
    manual = [i for i in intervals(store) if i[2] != "Communicate"]
    assert manual == before
    again = store.fill_gaps([span(0, 100, "Communicate", provenance="weak:chat")])
    assert again.added == () and len(again.skipped) == 1


def test_extend_forward_ends_at_next_span_of_that_scope(store):
    ef = store.add(span(0, 5, "Write", extend_forward=True))
    assert intervals(store) == [(0, 5, "Write", "u1")]
    store.add(span(30, 40, "Debug", user="u2"))  # other user: no effect
    nxt = store.add(span(50, 60, "Meet"))
    assert intervals(store, user_id="u1", include_agnostic=False)[0] == (0, 50, "Write", "u1")
    # a span inside the extension is no conflict; it becomes the new end
    store.add(span(20, 25, "Build"))
    assert intervals(store, user_id="u1")[0] == (0, 20, "Write", "u1")
    assert store.get(ef.span_id).span.end_ts == _at(5)  # stored end unchanged
    # range queries see the extension; the raw listing does not
    assert intervals(store, user_id="u1", start=_at(10), end=_at(11)) == [(0, 20, "Write", "u1")]
    assert intervals(store, user_id="u1", start=_at(10), end=_at(11), resolve_extend=False) == []
    store.delete(nxt.span_id)
    store.delete(store.list_records(start=_at(20), end=_at(21), user_id="u1")[-1].span_id)
    assert intervals(store, user_id="u1")[0] == (0, 5, "Write", "u1")


def test_agnostic_extend_forward_ends_at_anyones_next_span(store):
    store.add(span(0, 5, "BreakIdle", user=None, extend_forward=True))
    store.add(span(30, 40, user="u9"))
    assert intervals(store)[0] == (0, 30, "BreakIdle", None)


def test_update_and_delete(store):
    a = store.add(span(0, 10))
    b = store.add(span(10, 20, "Debug"))
    store.update(a.span_id, span(0, 12, "Review"), overwrite=True)
    assert intervals(store) == [(0, 12, "Review", "u1"), (12, 20, "Debug", "u1")]
    with pytest.raises(LabelConflictError):
        store.update(a.span_id, span(0, 15, "Review"))
    gone = store.delete(b.span_id)
    assert gone.span.label == "Debug"
    with pytest.raises(LabelError, match=f"no label span #{b.span_id}"):
        store.delete(b.span_id)
    with pytest.raises(LabelError, match="#999"):
        store.update(999, span(50, 60))
    assert store.count() == 1 and store.user_ids() == ["u1"]


def test_spans_frame_columns_and_filters(store):
    store.add(span(0, 10, user="u1", confidence=0.25))
    store.add(span(20, 30, "Meet", user=None))
    store.add(span(0, 10, "Debug", user="u2"))
    frame = store.spans_frame(user_id="u1")
    assert list(frame.columns) == [
        "start_ts",
        "end_ts",
        "label",
        "provenance",
        "user_id",
        "confidence",
        "extend_forward",
    ]
    assert frame["label"].tolist() == ["Build", "Meet"]
    assert frame["user_id"].tolist() == ["u1", None]
    assert frame["confidence"].iloc[0] == 0.25 and frame["confidence"].isna().iloc[1]
    assert str(frame["start_ts"].dtype) == "datetime64[us, UTC]"
    assert store.spans_frame(start=_at(15), end=_at(25))["label"].tolist() == ["Meet"]
    assert len(store.spans_frame()) == 3


def test_newer_schema_version_is_refused(tmp_path):
    path = tmp_path / "labels.sqlite"
    LabelStore(path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(ArtifactError, match="schema version"):
        LabelStore(path)


def test_corrupt_file_is_an_artifact_error(tmp_path):
    path = tmp_path / "labels.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(ArtifactError, match="cannot be used"):
        LabelStore(path)


def test_hostile_values_are_refused_before_the_store(store):
    store.add(span(0, 10))
    for bad_user in ["../x", "a/b", "x" * 300, ".."]:
        with pytest.raises(InputError, match="user id"):
            store.list_spans(user_id=bad_user)
    assert intervals(store) == [(0, 10, "Build", "u1")]


_spans = st.lists(
    st.tuples(
        st.integers(0, 100),
        st.integers(1, 20),
        st.sampled_from(["Build", "Meet"]),
        st.sampled_from([None, "a", "b"]),
        st.booleans(),
    ),
    max_size=10,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(existing=_spans, new=_spans.filter(lambda s: len(s) > 0))
def test_add_then_delete_restores_the_store(tmp_path_factory, existing, new):
    store = LabelStore(tmp_path_factory.mktemp("prop") / "labels.sqlite")
    for a, d, lab, user, ef in existing:
        with contextlib.suppress(LabelConflictError):
            store.add(span(a, a + d, lab, user, extend_forward=ef))
    before_raw = [(r.span_id, r.span) for r in store.list_records(resolve_extend=False)]
    before = [(r.span_id, r.span) for r in store.list_records()]
    a, d, lab, user, ef = new[0]
    try:
        added = store.add(span(a, a + d, lab, user, extend_forward=ef))
    except LabelConflictError:
        assert [(r.span_id, r.span) for r in store.list_records(resolve_extend=False)] == (
            before_raw
        )
        return
    assert added.cut == ()
    store.delete(added.span_id)
    assert [(r.span_id, r.span) for r in store.list_records(resolve_extend=False)] == before_raw
    assert [(r.span_id, r.span) for r in store.list_records()] == before


@settings(max_examples=40, deadline=None)
@given(ops=_spans, overwrite=st.lists(st.booleans(), min_size=10, max_size=10))
def test_invariant_no_overlap_within_a_scope(tmp_path_factory, ops, overwrite):
    store = LabelStore(tmp_path_factory.mktemp("inv") / "labels.sqlite")
    for (a, d, lab, user, ef), ow in zip(ops, overwrite, strict=False):
        with contextlib.suppress(LabelConflictError):
            store.add(span(a, a + d, lab, user, extend_forward=ef), overwrite=ow)
    for resolve in (False, True):
        spans = store.list_spans(resolve_extend=resolve)
        for i, x in enumerate(spans):
            for y in spans[i + 1 :]:
                shared = x.user_id is None or y.user_id is None or x.user_id == y.user_id
                if shared:
                    assert x.end_ts <= y.start_ts or y.end_ts <= x.start_ts, (x, y)
