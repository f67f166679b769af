"""The labeling queue: minutes worth asking the user about, stored beside the spans.

Candidates come from prediction records (DESIGN §4.6). A minute is a candidate when the model
was unsure about it, with one reason each (first that applies):

* ``rejected`` - the reject rule fired (``is_rejected``);
* ``low_confidence`` - ``confidence`` below ``confidence_threshold``;
* ``drift`` - smoothing overrode the model (``predicted_label`` is neither ``core_label`` nor
  the reject label): the prediction disagrees with its neighbourhood.

Minutes that are already labeled (fully covered by agreeing spans, the projection rule) are
skipped; a minute is queued at most once per user (the table has ``UNIQUE(user_id,
bucket_start)``); each user gets at most ``max_per_day`` queued minutes per local day, and
the ones kept are those where a label helps most: lowest confidence first. The cap is read and
the rows are written in one ``BEGIN IMMEDIATE`` transaction, so concurrent enqueuers never
exceed it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np
import pandas as pd

from taskclf.core.defaults import (
    DEFAULT_BUCKET_SECONDS,
    DEFAULT_QUEUE_MAX_PER_DAY,
    DEFAULT_REJECT_THRESHOLD,
    MIXED_UNKNOWN,
)
from taskclf.core.errors import InputError, SchemaError
from taskclf.core.time import get_zone
from taskclf.core.types import validate_user_id
from taskclf.labels._db import from_us
from taskclf.labels.projection import object_values, project_blocks_to_windows, utc_microseconds
from taskclf.labels.store import LabelStore

__all__ = ["QueueItem", "enqueue_from_predictions", "list_queue", "remove_from_queue"]

_REQUIRED = (
    "user_id",
    "bucket_start_ts",
    "core_label",
    "confidence",
    "is_rejected",
    "predicted_label",
    "model_id",
)


@dataclass(frozen=True)
class QueueItem:
    """One queued minute."""

    queue_id: int
    user_id: str
    bucket_start_ts: datetime
    local_day: date
    reason: str
    confidence: float
    core_label: str
    predicted_label: str
    model_id: str


def _candidates(predictions: pd.DataFrame, threshold: float) -> pd.DataFrame:
    missing = [c for c in _REQUIRED if c not in predictions.columns]
    if missing:
        raise SchemaError(f"predictions lack column(s) {missing}; expected DESIGN §4.6 records")
    conf = pd.to_numeric(predictions["confidence"], errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(conf) | (conf < 0) | (conf > 1))
    if bad.size:
        i = int(bad[0])
        raise SchemaError(
            f"predictions row {i}: confidence must be in [0, 1], got "
            f"{predictions['confidence'].iloc[i]!r}"
        )
    core = object_values(predictions["core_label"])
    pred = object_values(predictions["predicted_label"])
    rejected = predictions["is_rejected"].to_numpy(dtype=bool)
    low = conf < threshold
    drift = (pred != core) & (pred != MIXED_UNKNOWN)
    reason = np.where(rejected, "rejected", np.where(low, "low_confidence", "drift"))
    keep = rejected | low | drift
    frame = pd.DataFrame(
        {
            "user_id": object_values(predictions["user_id"]),
            "bucket_start_ts": predictions["bucket_start_ts"],
            "reason": reason,
            "confidence": conf,
            "core_label": core,
            "predicted_label": pred,
            "model_id": object_values(predictions["model_id"]),
        }
    )
    frame["ts_us"] = utc_microseconds(frame["bucket_start_ts"], column="bucket_start_ts")
    out: pd.DataFrame = frame.loc[keep].reset_index(drop=True)
    return out


def _local_days(frame: pd.DataFrame, timezone: str, user_timezones: Mapping[str, str]) -> list[str]:
    days: list[str] = [""] * len(frame)
    for user, idx in frame.groupby("user_id", sort=True).indices.items():
        zone = get_zone(user_timezones.get(str(user), timezone))
        local = frame["bucket_start_ts"].iloc[idx].dt.tz_convert(zone)
        for i, d in zip(idx, local.dt.strftime("%Y-%m-%d"), strict=True):
            days[int(i)] = str(d)
    return days


def _drop_labeled(store: LabelStore, frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return frame
    lo, hi = int(frame["ts_us"].min()), int(frame["ts_us"].max())
    spans = store.spans_frame(
        start=from_us(lo), end=from_us(hi + DEFAULT_BUCKET_SECONDS * 1_000_000)
    )
    projected = project_blocks_to_windows(frame[["user_id", "bucket_start_ts"]], spans)
    labeled = projected["label"].notna().to_numpy(dtype=bool)
    return frame.loc[~labeled].reset_index(drop=True)


def enqueue_from_predictions(
    store: LabelStore,
    predictions: pd.DataFrame,
    *,
    max_per_day: int = DEFAULT_QUEUE_MAX_PER_DAY,
    confidence_threshold: float = DEFAULT_REJECT_THRESHOLD,
    timezone: str = "UTC",
    user_timezones: Mapping[str, str] | None = None,
) -> int:
    """Queue the unsure, unlabeled minutes of ``predictions``; return how many were added.

    Args:
        store: The label store whose database holds the queue.
        predictions: DESIGN §4.6 records (``user_id``, tz-aware ``bucket_start_ts``,
            ``core_label``, ``confidence``, ``is_rejected``, ``predicted_label``,
            ``model_id``; other columns are ignored).
        max_per_day: Cap of queued minutes per user and local day (existing ones count).
        confidence_threshold: Below this confidence a minute is a candidate.
        timezone: Zone that defines a "day" for users without their own.
        user_timezones: Per-user zones (``Config.user_timezones``).
    """
    if max_per_day < 0:
        raise InputError(f"max_per_day must be >= 0, got {max_per_day}")
    if not 0.0 <= confidence_threshold <= 1.0 or math.isnan(confidence_threshold):
        raise InputError(f"confidence_threshold must be in [0, 1], got {confidence_threshold}")
    frame = _candidates(predictions, confidence_threshold)
    for i, user in enumerate(frame["user_id"]):
        if user is None:
            raise SchemaError(f"predictions candidate {i}: user_id is missing")
        validate_user_id(str(user), where="in predictions")
    if frame.empty or max_per_day == 0:
        return 0
    frame["local_day"] = _local_days(frame, timezone, dict(user_timezones or {}))
    frame = frame.sort_values(["user_id", "ts_us", "confidence"], kind="stable")
    frame = frame.drop_duplicates(["user_id", "ts_us"], keep="first")
    frame = _drop_labeled(store, frame)
    frame = frame.sort_values(["user_id", "local_day", "confidence", "ts_us"], kind="stable")
    added = 0
    with store.db.write() as conn:
        for (user, day), group in frame.groupby(["user_id", "local_day"], sort=True):
            queued = {
                int(r[0])
                for r in conn.execute(
                    "SELECT bucket_start_us FROM queue WHERE user_id = ? AND local_day = ?",
                    (user, day),
                )
            }
            fresh = group.loc[~group["ts_us"].isin(queued)]
            room = max(0, max_per_day - len(queued))
            chosen = fresh.head(room)
            records = zip(
                chosen["ts_us"].to_numpy(dtype=np.int64),
                chosen["reason"].astype(str),
                chosen["confidence"].to_numpy(dtype=np.float64),
                chosen["core_label"].astype(str),
                chosen["predicted_label"].astype(str),
                chosen["model_id"].astype(str),
                strict=True,
            )
            for ts_us, reason, conf, core, pred, model in records:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO queue (user_id, bucket_start_us, local_day, reason, "
                    "confidence, core_label, predicted_label, model_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(user), int(ts_us), str(day), reason, float(conf), core, pred, model),
                )
                added += cur.rowcount
    return added


def list_queue(
    store: LabelStore,
    *,
    user_id: str | None = None,
    limit: int | None = None,
    include_labeled: bool = False,
) -> list[QueueItem]:
    """Queued minutes, lowest confidence first (then oldest).

    Minutes labeled since they were queued are left out unless ``include_labeled``.
    """
    if limit is not None and limit < 0:
        raise InputError(f"limit must be >= 0, got {limit}")
    where, params = "1", []
    if user_id is not None:
        where, params = "user_id = ?", [validate_user_id(user_id, where="in the queue filter")]
    with store.db.read() as conn:
        rows = conn.execute(
            "SELECT queue_id, user_id, bucket_start_us, local_day, reason, confidence, "
            f"core_label, predicted_label, model_id FROM queue WHERE {where} "
            "ORDER BY confidence, bucket_start_us, queue_id",
            params,
        ).fetchall()
    items = [
        QueueItem(
            queue_id=int(r[0]),
            user_id=str(r[1]),
            bucket_start_ts=from_us(int(r[2])),
            local_day=date.fromisoformat(str(r[3])),
            reason=str(r[4]),
            confidence=float(r[5]),
            core_label=str(r[6]),
            predicted_label=str(r[7]),
            model_id=str(r[8]),
        )
        for r in rows
    ]
    if not include_labeled and items:
        frame = pd.DataFrame(
            {
                "user_id": [it.user_id for it in items],
                "bucket_start_ts": pd.Series(
                    [it.bucket_start_ts for it in items], dtype="datetime64[us, UTC]"
                ),
                "ts_us": [int(r[2]) for r in rows],
            }
        )
        unlabeled = _drop_labeled(store, frame)
        open_minutes = set(zip(unlabeled["user_id"], unlabeled["ts_us"].astype(int), strict=True))
        items = [
            it for it, r in zip(items, rows, strict=True) if (it.user_id, int(r[2])) in open_minutes
        ]
    return items if limit is None else items[:limit]


def remove_from_queue(store: LabelStore, queue_ids: list[int]) -> int:
    """Delete queue items by id (answered or dismissed); return how many were removed."""
    removed = 0
    with store.db.write() as conn:
        for qid in queue_ids:
            removed += conn.execute("DELETE FROM queue WHERE queue_id = ?", (int(qid),)).rowcount
    return removed
