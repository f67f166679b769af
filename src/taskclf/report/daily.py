"""Daily reports: one summary per user and local calendar date (DESIGN §4.6).

A report counts minutes of the user's local day (the user's configured time zone; a DST day
has 23 or 25 hours) from the prediction records:

- ``minutes_by_label``: minutes per ``predicted_label`` (after reject and smoothing), so
  Mixed/Unknown is included; every core label and Mixed/Unknown appear (zeros included).
- ``mixed_by_core_label``: the Mixed/Unknown minutes of ``minutes_by_label`` by the model's
  most likely core label (``core_label``, the argmax): what the uncertain minutes probably
  were (labels with at least one such minute; empty in reports written before it).
- ``minutes_by_mapped_label``: minutes per taxonomy bucket (``mapped_label``, or the labels
  re-mapped with a given taxonomy, whose buckets then all appear).
- ``segments``: the day's segments (clipped at local midnight; ``bucket_count`` counts the
  prediction minutes inside the clipped part) and ``segment_count``.
- ``context_switches``: label changes between consecutive segments of the day;
  ``switches_per_hour`` divides by the day's predicted hours (``total_minutes / 60``).
- ``flap_rate_raw`` / ``flap_rate_smoothed``: :func:`~taskclf.infer.smooth.flap_rate` of the
  ``core_label`` (argmax, before reject and smoothing) and of the ``predicted_label`` sequence.
- ``reject_rate``: share of minutes with ``is_rejected``; ``mean_confidence``.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from taskclf.core.defaults import (
    DEFAULT_BUCKET_SECONDS,
    DEFAULT_IDLE_GAP_SECONDS,
    DEFAULT_MIN_BLOCK_SECONDS,
    MIXED_UNKNOWN,
)
from taskclf.core.errors import InputError
from taskclf.core.time import day_bounds_utc, get_zone
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.smooth import (
    Segment,
    flap_rate,
    merge_short_segments,
    segmentize,
    timestamps_to_ns,
)
from taskclf.infer.taxonomy import TaxonomyConfig, map_labels

REPORT_VERSION: Literal[1] = 1
_REQUIRED = (
    "user_id",
    "bucket_start_ts",
    "core_label",
    "confidence",
    "is_rejected",
    "predicted_label",
)


class ReportSegment(BaseModel):
    """One segment of a report day (clipped to the local day)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_ts: datetime
    end_ts: datetime
    label: str
    mapped_label: str
    bucket_count: int = Field(ge=0)


class DailyReport(BaseModel):
    """Summary of one user's local day (see the module docstring for each field)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    report_version: Literal[1] = REPORT_VERSION
    user_id: str
    date: date
    timezone: str
    day_start_utc: datetime
    day_end_utc: datetime
    total_minutes: int = Field(ge=0)
    minutes_by_label: dict[str, int]
    mixed_by_core_label: dict[str, int] = Field(default_factory=dict)
    minutes_by_mapped_label: dict[str, int]
    segment_count: int = Field(ge=0)
    context_switches: int = Field(ge=0)
    switches_per_hour: float = Field(ge=0.0)
    flap_rate_raw: float = Field(ge=0.0, le=1.0)
    flap_rate_smoothed: float = Field(ge=0.0, le=1.0)
    reject_rate: float = Field(ge=0.0, le=1.0)
    mean_confidence: float = Field(ge=0.0, le=1.0)
    model_ids: tuple[str, ...]
    segments: tuple[ReportSegment, ...]


def build_daily_reports(
    predictions: pd.DataFrame,
    segments: Sequence[Segment] | None,
    *,
    timezones: Mapping[str, str] | None = None,
    default_timezone: str = "UTC",
    taxonomy: TaxonomyConfig | None = None,
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
    idle_gap_seconds: int = DEFAULT_IDLE_GAP_SECONDS,
    min_block_seconds: int = DEFAULT_MIN_BLOCK_SECONDS,
) -> list[DailyReport]:
    """One :class:`DailyReport` per user and local date present in ``predictions``.

    Args:
        predictions: Prediction records (DESIGN §4.6 columns; ``mapped_label`` may be absent
            when ``taxonomy`` is given; ``core_probs`` and ``model_id`` are optional), any
            number of users, any order; ``bucket_start_ts`` tz-aware.
        segments: Segments of the same run (``segments.json``), or ``None``. A user-day whose
            minutes the given segments do not account for (no segments for the user, or
            segments of another range) uses segments recomputed from its ``predicted_label``
            (:func:`segmentize` + :func:`merge_short_segments`).
        timezones: Per-user IANA zones; users not listed use ``default_timezone``.
        default_timezone: Zone of users without their own.
        taxonomy: When given, mapped labels are recomputed from ``predicted_label``.
        bucket_seconds: Bucket width.
        idle_gap_seconds: Idle gap used when segments are recomputed.
        min_block_seconds: Shortest block kept when segments are recomputed.

    Returns:
        Reports ordered by user id, then date.

    Raises:
        InputError: Missing columns, naive timestamps, duplicate minutes, unknown labels.
        ConfigError: An unknown time zone.
    """
    df = _prepared(predictions, taxonomy)
    zones = dict(timezones or {})
    by_user: dict[str | None, list[Segment]] = {}
    for seg in segments or ():
        by_user.setdefault(seg.user_id, []).append(seg)
    reports: list[DailyReport] = []
    for user_id, rows in df.groupby("user_id", sort=True):
        uid = str(user_id)
        tz = zones.get(uid, default_timezone)
        get_zone(tz)
        rows = rows.reset_index(drop=True)
        recomputed = _Lazy(
            functools.partial(
                _recompute, rows, uid, bucket_seconds, idle_gap_seconds, min_block_seconds
            )
        )
        user_segments = by_user.get(uid) or recomputed()
        mapping = dict(zip(rows["predicted_label"], rows["mapped_label"], strict=True))
        local = rows["bucket_start_ts"].dt.tz_convert(tz).dt.date
        for day, day_rows in rows.groupby(local.to_numpy(), sort=True):
            reports.append(
                _report(
                    uid,
                    day,
                    tz,
                    day_rows.reset_index(drop=True),
                    user_segments,
                    recomputed,
                    mapping,
                    taxonomy,
                    bucket_seconds,
                )
            )
    return reports


class _Lazy:
    """Compute a user's recomputed segments at most once, only when needed."""

    def __init__(self, compute: Callable[[], list[Segment]]) -> None:
        self._compute = compute
        self._value: list[Segment] | None = None

    def __call__(self) -> list[Segment]:
        if self._value is None:
            self._value = self._compute()
        return self._value


def _prepared(predictions: pd.DataFrame, taxonomy: TaxonomyConfig | None) -> pd.DataFrame:
    required = _REQUIRED if taxonomy is not None else (*_REQUIRED, "mapped_label")
    missing = [c for c in required if c not in predictions.columns]
    if missing:
        raise InputError(
            f"predictions lack columns {missing}; expected the record columns of "
            "'taskclf infer batch' (user_id, bucket_start_ts, core_label, confidence, "
            "is_rejected, predicted_label, mapped_label, core_probs, model_id)"
        )
    ns = timestamps_to_ns(predictions["bucket_start_ts"])
    df = pd.DataFrame(
        {
            "user_id": predictions["user_id"].astype(str).to_numpy(dtype=object),
            "bucket_start_ts": pd.to_datetime(ns, utc=True),
            "core_label": predictions["core_label"].astype(str).to_numpy(dtype=object),
            "confidence": predictions["confidence"].to_numpy(dtype=np.float64),
            "is_rejected": predictions["is_rejected"].to_numpy(dtype=bool),
            "predicted_label": predictions["predicted_label"].astype(str).to_numpy(dtype=object),
        }
    )
    if taxonomy is not None:
        df["mapped_label"] = map_labels(df["predicted_label"].tolist(), taxonomy)
    else:
        df["mapped_label"] = predictions["mapped_label"].astype(str).to_numpy(dtype=object)
    df["model_id"] = (
        predictions["model_id"].astype(str).to_numpy(dtype=object)
        if "model_id" in predictions.columns
        else ""
    )
    df = df.sort_values(["user_id", "bucket_start_ts"], kind="mergesort").reset_index(drop=True)
    dup = df.duplicated(["user_id", "bucket_start_ts"]).to_numpy()
    if dup.any():
        row = df.iloc[int(np.flatnonzero(dup)[0])]
        raise InputError(
            f"predictions hold minute {row['bucket_start_ts'].isoformat()} of user "
            f"{row['user_id']!r} twice; re-run 'taskclf infer batch' for that range"
        )
    return df


def _recompute(
    rows: pd.DataFrame, user_id: str, bucket_seconds: int, idle_gap: int, min_block: int
) -> list[Segment]:
    segs = segmentize(
        rows["bucket_start_ts"],
        rows["predicted_label"].tolist(),
        user_ids=user_id,
        bucket_seconds=bucket_seconds,
        idle_gap_seconds=idle_gap,
    )
    return merge_short_segments(segs, min_block, idle_gap_seconds=idle_gap)


def _report(
    user_id: str,
    day: date,
    tz: str,
    rows: pd.DataFrame,
    segments: Sequence[Segment],
    recomputed: Callable[[], Sequence[Segment]],
    mapping: Mapping[str, str],
    taxonomy: TaxonomyConfig | None,
    bucket_seconds: int,
) -> DailyReport:
    start, end = day_bounds_utc(day, tz)
    n = len(rows)
    predicted = rows["predicted_label"].tolist()
    by_label = {label: 0 for label in (*LABEL_SET_V1, MIXED_UNKNOWN)}
    by_label.update(_counts(rows["predicted_label"]))
    by_guess = _counts(rows.loc[rows["predicted_label"] == MIXED_UNKNOWN, "core_label"])
    mapped_names = [*taxonomy.bucket_names(), taxonomy.mixed_name] if taxonomy is not None else []
    by_mapped = {name: 0 for name in mapped_names}
    by_mapped.update(_counts(rows["mapped_label"]))
    day_segments = _day_segments(rows, segments, start, end, mapping, taxonomy)
    if sum(seg.bucket_count for seg in day_segments) != n:
        # Segments of another run (e.g. segments.json of a different range) do not account
        # for these minutes: use segments recomputed from the predictions instead.
        day_segments = _day_segments(rows, recomputed(), start, end, mapping, taxonomy)
    switches = sum(a.label != b.label for a, b in itertools.pairwise(day_segments))
    hours = n * bucket_seconds / 3600.0
    return DailyReport(
        user_id=user_id,
        date=day,
        timezone=tz,
        day_start_utc=start,
        day_end_utc=end,
        total_minutes=n,
        minutes_by_label={k: int(v) for k, v in sorted(by_label.items())},
        mixed_by_core_label={k: int(v) for k, v in sorted(by_guess.items())},
        minutes_by_mapped_label={k: int(v) for k, v in sorted(by_mapped.items())},
        segment_count=len(day_segments),
        context_switches=switches,
        switches_per_hour=round(switches / hours, 6) if hours > 0 else 0.0,
        flap_rate_raw=round(flap_rate(rows["core_label"].tolist()), 6),
        flap_rate_smoothed=round(flap_rate(predicted), 6),
        reject_rate=round(float(rows["is_rejected"].mean()), 6) if n else 0.0,
        mean_confidence=round(float(rows["confidence"].mean()), 6) if n else 0.0,
        model_ids=tuple(sorted({m for m in rows["model_id"].tolist() if m})),
        segments=tuple(day_segments),
    )


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in values.value_counts().items()}


def _day_segments(
    rows: pd.DataFrame,
    segments: Sequence[Segment],
    start: datetime,
    end: datetime,
    mapping: Mapping[str, str],
    taxonomy: TaxonomyConfig | None,
) -> list[ReportSegment]:
    """Segments overlapping ``[start, end)``, clipped, with the minutes inside each part."""
    ns = np.asarray(rows["bucket_start_ts"].dt.as_unit("ns").astype("int64"))
    out: list[ReportSegment] = []
    for seg in sorted(segments, key=lambda s: s.start_ts):
        if seg.end_ts <= start or seg.start_ts >= end:
            continue
        lo, hi = max(seg.start_ts, start), min(seg.end_ts, end)
        count = int(
            np.searchsorted(ns, _to_ns(hi), side="left")
            - np.searchsorted(ns, _to_ns(lo), side="left")
        )
        if count == 0:
            continue
        mapped = (
            map_labels([seg.label], taxonomy)[0]
            if taxonomy is not None
            else mapping.get(seg.label, seg.label)
        )
        out.append(
            ReportSegment(
                start_ts=lo, end_ts=hi, label=seg.label, mapped_label=mapped, bucket_count=count
            )
        )
    return out


def _to_ns(value: datetime) -> int:
    return int(pd.Timestamp(value).as_unit("ns").value)
