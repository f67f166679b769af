"""Smoothing of per-minute labels and their grouping into segments (pure functions).

The inference pipeline predicts one label per minute; minute-level predictions flicker. This
module turns them into something a person reads:

- :func:`rolling_majority` replaces each minute's label by the majority label of a centered
  window over the time-ordered minutes of ONE user (vectorized, numpy). ``OnlineSmoother``
  (``infer._online_smooth``)
  is the same computation as a fold (push one minute, receive finalized minutes ``window // 2``
  minutes later) and returns exactly what :func:`rolling_majority` returns on the same minutes.
- :func:`segmentize` groups consecutive minutes with the same label into :class:`Segment` s;
  :func:`merge_short_segments` lets short segments be absorbed by a neighbour.
- :func:`flap_rate` measures flicker (label changes per step).

Rules shared by every function here:

- **Mixed/Unknown** (``core.defaults.MIXED_UNKNOWN``, the reject label) is a label like any
  other. An isolated reject inside a run is therefore smoothed away, while a run of rejects at
  least ``window // 2 + 1`` minutes long stays rejected.
- **Gaps**: a minute whose start lies more than ``idle_gap_seconds`` after the END of the
  previous minute (``previous start + bucket_seconds``) starts a new contiguous run. Smoothing
  windows never reach across runs, segments never span them, and short segments are never
  merged across them.
- **Majority and ties**: the smoothed label is the label with strictly the most votes in the
  window; when two or more labels share the top count the center minute keeps its own label
  ("no clear majority, keep the observation"). At the edges of a run the window is truncated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator

from taskclf.core.defaults import (
    DEFAULT_BUCKET_SECONDS,
    DEFAULT_IDLE_GAP_SECONDS,
    DEFAULT_MIN_BLOCK_SECONDS,
    DEFAULT_SMOOTH_WINDOW,
)
from taskclf.core.errors import InputError
from taskclf.core.time import ensure_utc
from taskclf.infer._segments import SegmentTable, merge_short, table_from_sorted
from taskclf.infer._smooth_checks import (
    TimestampsLike,
    as_label_array,
    check_gap_params,
    check_lengths,
    check_strictly_increasing,
    check_window,
    fmt_ns,
    run_breaks,
    timestamps_to_ns,
    users_breaks,
)

_NS = 1_000_000_000

__all__ = [
    "Segment",
    "SmoothedMinute",
    "TimestampsLike",
    "check_window",
    "flap_rate",
    "majority_codes",
    "merge_short_segments",
    "rolling_majority",
    "rolling_majority_by_user",
    "run_breaks",
    "segmentize",
    "segments_from_table",
    "timestamps_to_ns",
]


class Segment(BaseModel):
    """A maximal block of minutes of one user with one label (DESIGN §4.6 ``segments.json``).

    Attributes:
        user_id: The user, or ``None`` when the segments were computed without user ids.
        start_ts: Start of the first minute (aware UTC, inclusive).
        end_ts: End of the last minute (aware UTC, exclusive).
        label: The (smoothed) label of every minute of the segment.
        bucket_count: Number of minutes in the segment. It may be smaller than
            ``(end_ts - start_ts) / bucket`` when the segment contains short gaps (at most the
            idle gap) without data.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str | None
    start_ts: datetime
    end_ts: datetime
    label: str
    bucket_count: int = Field(ge=1)

    @field_validator("start_ts", "end_ts")
    @classmethod
    def _aware(cls, value: datetime, info: Any) -> datetime:
        return ensure_utc(value, field=str(info.field_name))

    @property
    def duration_seconds(self) -> float:
        """``end_ts - start_ts`` in seconds."""
        return (self.end_ts - self.start_ts).total_seconds()


class SmoothedMinute(NamedTuple):
    """One finalized output of :class:`OnlineSmoother`.

    Attributes:
        position: 0-based index of the minute among all minutes pushed so far.
        bucket_start: The minute's start as pushed (``None`` if pushed without one).
        label: The smoothed label; equals ``rolling_majority(...)[position]``.
    """

    position: int
    bucket_start: datetime | None
    label: str


# --------------------------------------------------------------------------------------------
# batch smoothing


def majority_codes(
    codes: NDArray[np.intp], breaks: NDArray[np.bool_], half: int
) -> NDArray[np.intp]:
    """Vectorized centered majority vote of label codes within runs (see module docstring).

    Args:
        codes: Label codes, shape ``(n,)``.
        breaks: ``breaks[i]`` True when position ``i`` starts a new run, shape ``(n,)``.
        half: Half window width (``window // 2``).

    Returns:
        Smoothed codes, shape ``(n,)``.
    """
    n = codes.shape[0]
    if n == 0 or half == 0:
        return codes.copy()
    k = int(codes.max()) + 1
    pos = np.arange(n)
    run_id = np.cumsum(breaks)
    run_first = np.flatnonzero(np.concatenate([[True], breaks[1:]]))
    run_end = np.append(run_first[1:], n)
    lo = np.maximum(pos - half, run_first[run_id])
    hi = np.minimum(pos + half + 1, run_end[run_id])
    # Window counts per label from a prefix sum of one-hot codes: O(n * k) memory and time.
    onehot = np.zeros((n + 1, k), dtype=np.int32)
    onehot[pos + 1, codes] = 1
    prefix = np.cumsum(onehot, axis=0, dtype=np.int32)
    counts = prefix[hi] - prefix[lo]
    best = counts.max(axis=1)
    unique_best = (counts == best[:, None]).sum(axis=1) == 1
    return np.where(unique_best, counts.argmax(axis=1), codes)


def rolling_majority(
    labels: Sequence[str],
    window: int = DEFAULT_SMOOTH_WINDOW,
    *,
    bucket_starts: TimestampsLike | None = None,
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
    idle_gap_seconds: float = DEFAULT_IDLE_GAP_SECONDS,
) -> list[str]:
    """Centered rolling-majority smoothing of ONE user's time-ordered minute labels.

    Each minute ``i`` gets the label with strictly the most votes among the minutes
    ``i - window // 2 .. i + window // 2`` of its contiguous run; if the top count is shared,
    minute ``i`` keeps its own label. Mixed/Unknown votes like any label. ``window=1`` is the
    identity.

    Args:
        labels: Labels in time order, shape ``(n,)``.
        window: Odd window size >= 1.
        bucket_starts: Optional minute starts (aware), shape ``(n,)``, strictly increasing.
            When given, the series is split into runs at gaps longer than ``idle_gap_seconds``
            and windows never cross a run boundary; when omitted the minutes are treated as
            one contiguous run.
        bucket_seconds: Bucket width in seconds.
        idle_gap_seconds: Largest gap (seconds without minutes) that smoothing bridges.

    Returns:
        The smoothed labels, a new list of length ``n``; every output label occurs in ``labels``.

    Raises:
        InputError: Bad window, lengths differ, or timestamps not aware/strictly increasing.
    """
    half = check_window(window) // 2
    arr = as_label_array(labels)
    breaks = np.zeros(arr.shape[0], dtype=bool)
    if bucket_starts is not None:
        check_gap_params(bucket_seconds, idle_gap_seconds)
        starts_ns = timestamps_to_ns(bucket_starts)
        check_lengths(arr.shape[0], starts_ns.shape[0], "bucket_starts")
        check_strictly_increasing(starts_ns, what="rolling_majority")
        breaks = run_breaks(starts_ns, bucket_seconds, idle_gap_seconds)
    return _smooth(arr, breaks, half)


def rolling_majority_by_user(
    user_ids: Sequence[str],
    labels: Sequence[str],
    window: int = DEFAULT_SMOOTH_WINDOW,
    *,
    bucket_starts: TimestampsLike,
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
    idle_gap_seconds: float = DEFAULT_IDLE_GAP_SECONDS,
) -> list[str]:
    """:func:`rolling_majority` over many users at once (one vectorized pass).

    Rows must be grouped by user (each user's rows contiguous) and strictly time ordered within
    a user, e.g. a frame sorted by ``(user_id, bucket_start_ts)``. A new user starts a new run,
    so the result equals calling :func:`rolling_majority` on every user's rows separately.

    Args:
        user_ids: User of each row, shape ``(n,)``.
        labels: Label of each row, shape ``(n,)``.
        window: Odd window size >= 1.
        bucket_starts: Minute starts (aware), shape ``(n,)``.
        bucket_seconds: Bucket width in seconds.
        idle_gap_seconds: Largest gap that smoothing bridges.

    Returns:
        Smoothed labels aligned with the input rows.

    Raises:
        InputError: Users not grouped, times not increasing within a user, or lengths differ.
    """
    half = check_window(window) // 2
    check_gap_params(bucket_seconds, idle_gap_seconds)
    arr = as_label_array(labels)
    users = np.asarray(list(user_ids), dtype=object)
    starts_ns = timestamps_to_ns(bucket_starts)
    check_lengths(arr.shape[0], users.shape[0], "user_ids")
    check_lengths(arr.shape[0], starts_ns.shape[0], "bucket_starts")
    by_user = users_breaks(users)
    breaks = run_breaks(starts_ns, bucket_seconds, idle_gap_seconds) | by_user
    inside = np.flatnonzero(~by_user[1:] & (np.diff(starts_ns) <= 0)) + 1
    if inside.size:
        i = int(inside[0])
        raise InputError(
            f"rolling_majority_by_user: user {users[i]!r}: row {i} ({fmt_ns(starts_ns[i])}) "
            f"does not come after row {i - 1} ({fmt_ns(starts_ns[i - 1])}); sort by "
            "(user_id, bucket_start_ts) and drop duplicate minutes"
        )
    return _smooth(arr, breaks, half)


def _smooth(arr: NDArray[np.object_], breaks: NDArray[np.bool_], half: int) -> list[str]:
    if arr.shape[0] == 0:
        return []
    codes, uniques = pd.factorize(arr, use_na_sentinel=False)
    smoothed = majority_codes(np.asarray(codes, dtype=np.intp), breaks, half)
    return [str(v) for v in np.asarray(uniques, dtype=object)[smoothed]]


# --------------------------------------------------------------------------------------------
# segments


def flap_rate(labels: Sequence[str]) -> float:
    """Label changes per step: ``#{i : labels[i] != labels[i-1]} / (n - 1)``; 0 when n < 2."""
    arr = as_label_array(labels)
    if arr.shape[0] < 2:
        return 0.0
    return float(np.count_nonzero(arr[1:] != arr[:-1])) / float(arr.shape[0] - 1)


def segmentize(
    bucket_starts: TimestampsLike,
    labels: Sequence[str],
    *,
    user_ids: str | Sequence[str] | None = None,
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
    idle_gap_seconds: float = DEFAULT_IDLE_GAP_SECONDS,
) -> list[Segment]:
    """Group minutes into segments of one user and one label.

    A segment ends when the label changes, the user changes, or the next minute starts more
    than ``idle_gap_seconds`` after the end of the previous one. Rows may come in any order;
    they are ordered by ``(user_id, bucket_start)`` first. The segments partition the minutes:
    their ``bucket_count`` s sum to ``n``.

    Args:
        bucket_starts: Minute starts (aware), shape ``(n,)``.
        labels: Label of each minute (normally the smoothed ``predicted_label``), shape ``(n,)``.
        user_ids: One user id for all rows, one per row, or ``None`` (segments get
            ``user_id=None``).
        bucket_seconds: Bucket width; a segment ends ``bucket_seconds`` after its last start.
        idle_gap_seconds: Largest gap inside one segment.

    Returns:
        Segments ordered by user (``None`` first) then start time.

    Raises:
        InputError: Lengths differ, naive timestamps, or a duplicate minute of one user.
    """
    check_gap_params(bucket_seconds, idle_gap_seconds)
    arr = as_label_array(labels)
    starts_ns = timestamps_to_ns(bucket_starts)
    n = arr.shape[0]
    check_lengths(n, starts_ns.shape[0], "bucket_starts")
    users = _broadcast_users(user_ids, n)
    if n == 0:
        return []
    user_codes, user_uniques = _sorted_user_codes(users)
    order = np.lexsort((starts_ns, user_codes))
    starts_ns, arr, user_codes = starts_ns[order], arr[order], user_codes[order]
    same_user = user_codes[1:] == user_codes[:-1]
    dup = np.flatnonzero(same_user & (np.diff(starts_ns) <= 0))
    if dup.size:
        row = int(order[dup[0] + 1])
        raise InputError(
            f"segmentize: duplicate minute {fmt_ns(starts_ns[dup[0] + 1])} of user "
            f"{user_uniques[user_codes[dup[0] + 1]]!r} (input row {row}); one row per minute"
        )
    table = table_from_sorted(
        user_codes,
        user_uniques,
        starts_ns,
        arr,
        bucket_seconds=bucket_seconds,
        idle_gap_seconds=idle_gap_seconds,
    )
    return segments_from_table(table)


def segments_from_table(table: SegmentTable) -> list[Segment]:
    """:class:`Segment` objects of a segment table, in its order."""
    return [
        Segment.model_construct(
            user_id=user,
            start_ts=_ns_to_datetime(start),
            end_ts=_ns_to_datetime(end),
            label=label,
            bucket_count=count,
        )
        for user, start, end, label, count in zip(
            table.user,
            table.start_ns.tolist(),
            table.end_ns.tolist(),
            table.label,
            table.bucket_count.tolist(),
            strict=True,
        )
    ]


def _broadcast_users(user_ids: str | Sequence[str] | None, n: int) -> list[str | None]:
    if user_ids is None or isinstance(user_ids, str):
        return [user_ids] * n
    users: list[str | None] = list(user_ids)
    check_lengths(n, len(users), "user_ids")
    for i, user in enumerate(users):
        if not isinstance(user, str):
            raise InputError(f"user_ids[{i}] must be a string, got {type(user).__name__}")
    return users


def _sorted_user_codes(
    users: list[str | None],
) -> tuple[NDArray[np.intp], list[str | None]]:
    """Codes whose order is the sort order of the users (``None`` first)."""
    uniques = sorted(set(users), key=lambda u: (u is not None, u or ""))
    lookup = {u: i for i, u in enumerate(uniques)}
    return np.fromiter((lookup[u] for u in users), dtype=np.intp, count=len(users)), uniques


def _ns_to_datetime(value: np.int64 | int) -> datetime:
    seconds, rem = divmod(int(value), _NS)
    return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(microseconds=rem // 1000)


def merge_short_segments(
    segments: Sequence[Segment],
    min_block_seconds: float = DEFAULT_MIN_BLOCK_SECONDS,
    *,
    idle_gap_seconds: float = DEFAULT_IDLE_GAP_SECONDS,
) -> list[Segment]:
    """Let segments shorter than ``min_block_seconds`` be absorbed by a neighbour.

    Segments of one user whose gaps are at most ``idle_gap_seconds`` form a contiguous run;
    merging happens only inside a run. Repeatedly the shortest short segment (``end_ts -
    start_ts < min_block_seconds``; ties: the earliest) is absorbed by its LONGER adjacent
    neighbour in the run (ties: the previous one); the neighbour keeps its label and grows to
    cover both, and if it now touches a neighbour with the same label the two coalesce. A short
    segment alone in its run stays as it is. The result is deterministic, never has more
    segments than the input and keeps every user's total ``bucket_count``.

    Args:
        segments: Segments in any order (normally the output of :func:`segmentize`).
        min_block_seconds: Shortest segment that is kept on its own; <= 0 disables merging.
        idle_gap_seconds: Largest gap between segments of one contiguous run.

    Returns:
        The merged segments ordered by user then start time.

    Raises:
        InputError: Two segments of one user overlap.
    """
    ordered = sorted(segments, key=lambda s: (s.user_id is not None, s.user_id or "", s.start_ts))
    if min_block_seconds <= 0 or len(ordered) < 2:
        return ordered
    table = SegmentTable(
        user=[seg.user_id for seg in ordered],
        start_ns=timestamps_to_ns([seg.start_ts for seg in ordered], field="start_ts"),
        end_ns=timestamps_to_ns([seg.end_ts for seg in ordered], field="end_ts"),
        label=[seg.label for seg in ordered],
        bucket_count=np.asarray([seg.bucket_count for seg in ordered], dtype=np.int64),
    )
    merged = merge_short(table, min_block_seconds, idle_gap_seconds=idle_gap_seconds)
    return ordered if merged is table else segments_from_table(merged)
