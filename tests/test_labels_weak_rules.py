"""Weak rules: proposals from feature rows, merging, priority, and storage beside manual spans."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from taskclf.core.errors import LabelError, SchemaError
from taskclf.core.types import LabelSpan
from taskclf.labels.projection import project_blocks_to_windows
from taskclf.labels.store import LabelStore
from taskclf.labels.weak_rules import (
    DEFAULT_WEAK_RULES,
    Condition,
    WeakRule,
    propose_weak_spans,
    summarize,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _frame(rows: list[tuple[str, int, str, str, float]]) -> pd.DataFrame:
    """rows: (user, minute, app_category, domain_category, max_idle_run_seconds)."""
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "bucket_start_ts": pd.Series(
                [T0 + timedelta(minutes=r[1]) for r in rows], dtype="datetime64[us, UTC]"
            ),
            "app_category": [r[2] for r in rows],
            "domain_category": [r[3] for r in rows],
            "max_idle_run_seconds": [r[4] for r in rows],
        }
    )


def _brief(spans: list[LabelSpan]) -> list[tuple[str | None, int, int, str, str]]:
    return [
        (
            s.user_id,
            int((s.start_ts - T0).total_seconds() // 60),
            int((s.end_ts - T0).total_seconds() // 60),
            s.label,
            s.provenance,
        )
        for s in spans
    ]


DAY = [
    ("u1", 0, "editor", "non_browser", 0.0),
    ("u1", 1, "meeting", "non_browser", 2.0),
    ("u1", 2, "meeting", "non_browser", 60.0),  # meeting app while idle: idle is first
    ("u1", 3, "browser", "meeting", 1.0),
    ("u1", 4, "browser", "email", np.nan),  # NaN idle never fires
    ("u1", 5, "chat", "non_browser", 3.0),
    ("u1", 7, "chat", "non_browser", 3.0),  # gap at minute 6
    ("u1", 8, "lockscreen", "non_browser", 60.0),
    ("u1", 9, "none", "non_browser", np.nan),
    ("u2", 0, "email", "non_browser", 0.0),
]


def test_rules_merge_contiguous_minutes_by_rule():
    spans = propose_weak_spans(_frame(DAY))
    assert _brief(spans) == [
        ("u1", 1, 2, "Meet", "weak:meeting"),
        ("u1", 2, 3, "BreakIdle", "weak:idle"),
        ("u1", 3, 4, "Meet", "weak:meeting"),
        ("u1", 4, 6, "Communicate", "weak:communicate"),
        ("u1", 7, 8, "Communicate", "weak:communicate"),
        ("u1", 8, 9, "BreakIdle", "weak:lockscreen"),
        ("u1", 9, 10, "BreakIdle", "weak:afk"),
        ("u2", 0, 1, "Communicate", "weak:communicate"),
    ]
    assert spans[0].confidence == 0.80 and spans[5].confidence == 0.95


def test_row_order_does_not_matter_and_min_minutes():
    shuffled = _frame(DAY).sample(frac=1.0, random_state=3)
    assert propose_weak_spans(shuffled) == propose_weak_spans(_frame(DAY))
    long_only = propose_weak_spans(_frame(DAY), min_minutes=2)
    assert _brief(long_only) == [("u1", 4, 6, "Communicate", "weak:communicate")]


def test_custom_rules_and_explicit_user():
    rules = (
        WeakRule(
            "editing", "Build", 0.5, (Condition("app_category", "in", frozenset({"editor"})),)
        ),
    )
    spans = propose_weak_spans(_frame(DAY).drop(columns="user_id"), rules, user_id="solo")
    assert _brief(spans) == [("solo", 0, 1, "Build", "weak:editing")]


def test_bad_rules_and_frames():
    with pytest.raises(LabelError, match="unknown label"):
        WeakRule("x", "Coding", 0.5, ())
    with pytest.raises(SchemaError, match="name"):
        WeakRule("bad name!", "Build", 0.5, ())
    with pytest.raises(SchemaError, match="domain_category"):
        propose_weak_spans(_frame(DAY).drop(columns="domain_category"))
    with pytest.raises(SchemaError, match="user_id"):
        propose_weak_spans(_frame(DAY).drop(columns="user_id"))
    assert propose_weak_spans(_frame([])) == []


def test_summary_counts_minutes():
    table = summarize(propose_weak_spans(_frame(DAY)))
    row = table[(table.user_id == "u1") & (table.provenance == "weak:communicate")].iloc[0]
    assert (row.spans, row.minutes) == (2, 3.0)
    assert list(summarize([]).columns) == ["user_id", "provenance", "label", "spans", "minutes"]


def test_weak_spans_fill_gaps_and_manual_always_wins(tmp_path):
    store = LabelStore(tmp_path / "labels.sqlite")
    manual = LabelSpan(
        start_ts=T0 + timedelta(minutes=4),
        end_ts=T0 + timedelta(minutes=5),
        label="Write",
        user_id="u1",
    )
    store.add(manual)
    result = store.fill_gaps(propose_weak_spans(_frame(DAY)))
    assert manual in store.list_spans(provenance="manual")
    weak = store.list_spans(provenance="weak:")
    assert all(s.provenance.startswith("weak:") for s in weak)
    # the communicate run [4, 6) was clipped to [5, 6) around the manual minute
    assert ("u1", 5, 6, "Communicate", "weak:communicate") in _brief(weak)
    assert result.added_seconds == result.proposed_seconds - 60
    # a later manual label replaces weak minutes without --overwrite
    store.add(
        LabelSpan(
            start_ts=T0 + timedelta(minutes=8),
            end_ts=T0 + timedelta(minutes=10),
            label="Review",
            user_id="u1",
        )
    )
    projected = project_blocks_to_windows(_frame(DAY), store.spans_frame())
    assert projected["label"].tolist()[-3:] == ["Review", "Review", "Communicate"]


def test_defaults_are_documented_names():
    assert [r.name for r in DEFAULT_WEAK_RULES] == [
        "lockscreen",
        "afk",
        "idle",
        "meeting",
        "communicate",
    ]
