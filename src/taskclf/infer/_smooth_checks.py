"""Argument checks and time helpers shared by the smoothing and segment functions.

``infer.smooth`` (and the online fold ``infer._online_smooth``) validate windows, gap
parameters, label arrays and minute start times here, and turn aware timestamps into int64
nanoseconds and contiguous-run breaks (a gap longer than the idle gap starts a new run; see
the rules in :mod:`taskclf.infer.smooth`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.errors import InputError

_NS = 1_000_000_000

TimestampsLike = Sequence[datetime] | pd.Series | pd.DatetimeIndex


def check_window(window: int) -> int:
    """Return ``window`` if it is an odd integer >= 1, else raise :class:`InputError`."""
    if isinstance(window, bool) or not isinstance(window, int | np.integer):
        raise InputError(f"smoothing window must be an odd integer >= 1, got {window!r}")
    if window < 1 or window % 2 == 0:
        raise InputError(
            f"smoothing window must be an odd integer >= 1 (1 = no smoothing), got {window}"
        )
    return int(window)


def check_gap_params(bucket_seconds: int, idle_gap_seconds: float) -> None:
    if bucket_seconds <= 0:
        raise InputError(f"bucket_seconds must be > 0, got {bucket_seconds}")
    if idle_gap_seconds < 0:
        raise InputError(f"idle_gap_seconds must be >= 0, got {idle_gap_seconds}")


def timestamps_to_ns(
    values: TimestampsLike, *, field: str = "bucket_start_ts"
) -> NDArray[np.int64]:
    """Aware timestamps as int64 nanoseconds since the epoch (UTC).

    Args:
        values: A sequence of aware ``datetime`` s, or a tz-aware pandas Series/DatetimeIndex.
        field: Name used in error messages.

    Returns:
        Array of shape ``(n,)``, dtype int64.

    Raises:
        InputError: A naive timestamp or a missing value.
    """
    if isinstance(values, pd.Series | pd.DatetimeIndex):
        if len(values) and not isinstance(values.dtype, pd.DatetimeTZDtype):
            raise InputError(
                f"{field} must be time-zone aware (UTC), got dtype {values.dtype}; "
                "convert with .dt.tz_localize('UTC') if the values are UTC"
            )
        index = pd.DatetimeIndex(values)
    else:
        seq = list(values)
        for i, value in enumerate(seq):
            if not isinstance(value, datetime) or value.tzinfo is None:
                raise InputError(
                    f"{field}[{i}] must be an aware datetime, got {type(value).__name__} {value!r}"
                )
        index = pd.DatetimeIndex(pd.to_datetime(seq, utc=True)) if seq else pd.DatetimeIndex([])
    if index.hasnans:
        i = int(np.flatnonzero(index.isna())[0])
        raise InputError(f"{field}[{i}] is missing (NaT); every minute needs its start time")
    if len(index) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.asarray(index.tz_convert("UTC").as_unit("ns").asi8, dtype=np.int64)


def run_breaks(
    starts_ns: NDArray[np.int64], bucket_seconds: int, idle_gap_seconds: float
) -> NDArray[np.bool_]:
    """``breaks[i]`` is True when minute ``i`` (i >= 1) starts a new contiguous run."""
    gap_ns = np.diff(starts_ns) - np.int64(bucket_seconds) * _NS
    return np.concatenate([[False], gap_ns > np.int64(round(idle_gap_seconds * _NS))])


def check_strictly_increasing(starts_ns: NDArray[np.int64], *, what: str) -> None:
    bad = np.flatnonzero(np.diff(starts_ns) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        raise InputError(
            f"{what}: bucket_start_ts must be strictly increasing (one row per minute, time "
            f"ordered), but row {i} ({fmt_ns(starts_ns[i])}) does not come after row {i - 1} "
            f"({fmt_ns(starts_ns[i - 1])}); sort by time and drop duplicate minutes"
        )


def fmt_ns(value: np.int64) -> str:
    return datetime.fromtimestamp(int(value) / _NS, tz=UTC).isoformat()


def as_label_array(labels: Sequence[str] | NDArray[Any] | pd.Series) -> NDArray[np.object_]:
    arr = np.asarray(list(labels) if not isinstance(labels, np.ndarray) else labels, dtype=object)
    if arr.ndim != 1:
        raise InputError(f"labels must be one-dimensional, got shape {arr.shape}")
    bad = [i for i, v in enumerate(arr) if not isinstance(v, str)] if arr.size else []
    if bad:
        raise InputError(
            f"labels[{bad[0]}] must be a string label, got {type(arr[bad[0]]).__name__}; "
            "fill missing labels (e.g. with 'Mixed/Unknown') before smoothing"
        )
    return arr


def check_lengths(n_labels: int, n_other: int, name: str) -> None:
    if n_labels != n_other:
        raise InputError(f"{name} has {n_other} entries but labels has {n_labels}; they must align")


def users_breaks(users: NDArray[np.object_]) -> NDArray[np.bool_]:
    n = users.shape[0]
    if n == 0:
        return np.zeros(0, dtype=bool)
    codes, _ = pd.factorize(users, use_na_sentinel=False)
    breaks = np.concatenate([[False], codes[1:] != codes[:-1]])
    first_rows = np.flatnonzero(np.concatenate([[True], breaks[1:]]))
    seen = codes[first_rows]
    if np.unique(seen).size != seen.size:
        dup = pd.Series(seen).duplicated().to_numpy()
        row = int(first_rows[np.flatnonzero(dup)[0]])
        raise InputError(
            f"rows of user {users[row]!r} are not contiguous (they resume at row {row}); "
            "sort by (user_id, bucket_start_ts) first"
        )
    return breaks
