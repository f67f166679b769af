"""The labeling queue: candidates, dedup, per-day cap, ordering, labeled minutes skipped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from taskclf.core.errors import InputError, SchemaError
from taskclf.core.types import LabelSpan
from taskclf.labels.queue import enqueue_from_predictions, list_queue, remove_from_queue
from taskclf.labels.store import LabelStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _preds(rows: list[tuple[str, float, float, bool, str, str]]) -> pd.DataFrame:
    """rows: (user, minute offset, confidence, is_rejected, core_label, predicted_label)."""
    return pd.DataFrame(
        {
            "user_id": [r[0] for r in rows],
            "bucket_start_ts": pd.Series(
                [T0 + timedelta(minutes=r[1]) for r in rows], dtype="datetime64[us, UTC]"
            ),
            "core_label": [r[4] for r in rows],
            "confidence": [r[2] for r in rows],
            "is_rejected": [r[3] for r in rows],
            "predicted_label": [r[5] for r in rows],
            "mapped_label": [r[5] for r in rows],
            "core_probs": ["[]"] * len(rows),
            "model_id": ["run-1"] * len(rows),
        }
    )


@pytest.fixture
def store(tmp_path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite")


def test_candidates_reasons_and_order(store):
    preds = _preds(
        [
            ("u1", 0, 0.95, False, "Build", "Build"),  # confident: not queued
            ("u1", 1, 0.40, True, "Build", "Mixed/Unknown"),  # rejected
            ("u1", 2, 0.50, False, "Debug", "Debug"),  # low confidence
            ("u1", 3, 0.90, False, "Debug", "Build"),  # smoothing overrode: drift
            ("u1", 4, 0.20, False, "Write", "Write"),
        ]
    )
    assert enqueue_from_predictions(store, preds) == 4
    items = list_queue(store)
    assert [(it.bucket_start_ts.minute, it.reason) for it in items] == [
        (4, "low_confidence"),
        (1, "rejected"),
        (2, "low_confidence"),
        (3, "drift"),
    ]
    assert items[0].core_label == "Write" and items[0].model_id == "run-1"


def test_dedup_within_batch_and_against_the_queue(store):
    preds = _preds(
        [("u1", 0, 0.3, False, "Build", "Build"), ("u1", 0, 0.1, False, "Debug", "Debug")]
    )
    assert enqueue_from_predictions(store, preds) == 1
    assert list_queue(store)[0].confidence == 0.1  # the least confident duplicate is kept
    assert enqueue_from_predictions(store, preds) == 0
    assert len(list_queue(store)) == 1


def test_cap_per_user_and_local_day_keeps_lowest_confidence(store):
    rows = [("u1", m, 0.5 - m / 100, False, "Build", "Build") for m in range(10)]
    rows += [("u2", m, 0.3, False, "Build", "Build") for m in range(3)]
    rows += [("u1", 24 * 60 + m, 0.3, False, "Build", "Build") for m in range(3)]  # next day
    assert enqueue_from_predictions(store, _preds(rows), max_per_day=4) == 4 + 3 + 3
    day1 = [it for it in list_queue(store, user_id="u1") if it.local_day == T0.date()]
    assert sorted(it.bucket_start_ts.minute for it in day1) == [6, 7, 8, 9]
    # the cap counts what is already queued
    more = [("u1", 30 + m, 0.01, False, "Build", "Build") for m in range(3)]
    assert enqueue_from_predictions(store, _preds(more), max_per_day=4) == 0
    assert enqueue_from_predictions(store, _preds(more), max_per_day=5) == 1


def test_local_day_follows_the_user_timezone(store):
    # 23:30 UTC on Jan 5 is Jan 6 in Warsaw.
    late = [("u1", 14 * 60 + 30 + m, 0.2, False, "Build", "Build") for m in range(2)]
    enqueue_from_predictions(store, _preds(late), user_timezones={"u1": "Europe/Warsaw"})
    assert {it.local_day.isoformat() for it in list_queue(store)} == {"2026-01-06"}


def test_labeled_minutes_are_skipped_and_hidden(store):
    store.add(LabelSpan(start_ts=T0, end_ts=T0 + timedelta(minutes=2), label="Build", user_id="u1"))
    rows = [("u1", m, 0.2, False, "Build", "Build") for m in range(4)]
    rows.append(("u2", 0, 0.2, False, "Build", "Build"))
    assert enqueue_from_predictions(store, _preds(rows)) == 3
    # equal confidence: oldest first
    assert [(i.user_id, i.bucket_start_ts.minute) for i in list_queue(store)] == [
        ("u2", 0),
        ("u1", 2),
        ("u1", 3),
    ]
    store.add(
        LabelSpan(
            start_ts=T0 + timedelta(minutes=2),
            end_ts=T0 + timedelta(minutes=3),
            label="Debug",
            user_id="u1",
        )
    )
    assert [i.bucket_start_ts.minute for i in list_queue(store, user_id="u1")] == [3]
    assert len(list_queue(store, include_labeled=True)) == 3
    assert len(list_queue(store, limit=1)) == 1
    first = list_queue(store)[0]
    assert remove_from_queue(store, [first.queue_id]) == 1
    assert first.queue_id not in {i.queue_id for i in list_queue(store, include_labeled=True)}


@pytest.mark.parametrize(
    ("mutate", "error", "match"),
    [
        (lambda p: p.drop(columns="model_id"), SchemaError, "model_id"),
        (lambda p: p.assign(confidence=[1.5]), SchemaError, "confidence"),
        (lambda p: p.assign(user_id=["../x"]), InputError, "path separator"),
        (
            lambda p: p.assign(bucket_start_ts=p["bucket_start_ts"].dt.tz_localize(None)),
            SchemaError,
            "timezone-aware",
        ),
    ],
)
def test_bad_predictions_are_refused(store, mutate, error, match):
    with pytest.raises(error, match=match):
        enqueue_from_predictions(store, mutate(_preds([("u1", 0, 0.2, False, "Build", "Build")])))
    assert list_queue(store, include_labeled=True) == []


def test_bad_arguments(store):
    preds = _preds([("u1", 0, 0.2, False, "Build", "Build")])
    with pytest.raises(InputError, match="max_per_day"):
        enqueue_from_predictions(store, preds, max_per_day=-1)
    assert enqueue_from_predictions(store, preds, max_per_day=0) == 0
    with pytest.raises(InputError, match="limit"):
        list_queue(store, limit=-1)
