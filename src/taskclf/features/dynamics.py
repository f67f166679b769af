"""Look-back features over the last 5 and 15 minutes, and minute-to-minute deltas.

All of them are computed over rows by bucket number, never by rescanning events:

- ``app_switch_count_last_5m`` / ``_15m``: sum of ``app_change_count`` over the rows whose
  bucket lies in the last 5 / 15 minutes (the row's own bucket included).
- ``keys_per_min_rolling_5`` / ``_15``, ``mouse_distance_rolling_5`` / ``_15``: mean of the
  non-missing values over the same windows; missing when none is present.
- ``*_delta``: the value minus the value of the row of the previous bucket; missing when that
  row does not exist or either value is missing.
- ``app_entropy_5m`` / ``_15m``: Shannon entropy (natural log) of the window-time shares of
  apps over the window; ``top2_app_concentration_15m``: share of the two largest apps.
  Missing when the window holds no window time.

The functions take the rows of a *context* (already emitted rows, for the windows) followed by
the new rows, and return values for the new rows only, so batch and online agree exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from taskclf.features._small import SMALL
from taskclf.features.windows import app_window_stats, lookback_index, lookback_sum

F64 = NDArray[np.float64]


def window_buckets(seconds: int, bucket_seconds: int) -> int:
    """Number of buckets in a look-back window of ``seconds`` (at least 1)."""
    return max(1, -(-seconds // bucket_seconds))


def dynamic_features(
    rows: dict[str, Any],
    app_long: dict[str, Any],
    n_context: int,
    bucket_seconds: int,
) -> dict[str, Any]:
    """Look-back features of the rows after the first ``n_context``.

    Args:
        rows: per-row arrays over context + new rows: ``minute`` (int64 bucket numbers,
            sorted), ``app_change_count`` (int64), ``keys_per_min``, ``clicks_per_min``,
            ``mouse_distance`` (float64, NaN = missing).
        app_long: long table over the same rows: ``row`` (index), ``app_code`` (lexical
            order of app ids), ``us`` (window microseconds).
        n_context: how many leading rows are context only.
        bucket_seconds: bucket length.
    """
    minute = rows["minute"]
    targets = np.arange(n_context, minute.size)
    k5 = window_buckets(300, bucket_seconds)
    k15 = window_buckets(900, bucket_seconds)
    out: dict[str, Any] = {}
    chg = rows["app_change_count"].astype(np.float64)
    for name, k in (("app_switch_count_last_5m", k5), ("app_switch_count_last_15m", k15)):
        total, _ = lookback_sum(minute, chg, targets, k)
        out[name] = total.astype(np.int64)
    for src, short in (("keys_per_min", "keys_per_min"), ("mouse_distance", "mouse_distance")):
        for k, suffix in ((k5, "5"), (k15, "15")):
            total, count = lookback_sum(minute, rows[src], targets, k)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[f"{short}_rolling_{suffix}"] = np.where(count > 0, total / count, np.nan)
    out.update(_deltas(rows, targets))
    for name, k in (("app_entropy_5m", k5), ("app_entropy_15m", k15)):
        ent, top2 = app_window_stats(
            minute, app_long["row"], app_long["app_code"], app_long["us"], targets, k
        )
        out[name] = ent
        if k == k15:
            out["top2_app_concentration_15m"] = top2
    return out


_DELTA_SOURCES = ("keys_per_min", "clicks_per_min", "mouse_distance")


def _deltas(rows: dict[str, Any], targets: NDArray[np.intp]) -> dict[str, F64]:
    """``*_delta`` of the targets: value minus the previous bucket's row value (else NaN)."""
    minute = rows["minute"]
    if targets.size <= SMALL:  # plain Python: the same subtractions, for a few rows
        mins = minute.tolist()
        prev = [t - 1 if t >= 1 and mins[t] - mins[t - 1] < 2 else -1 for t in targets.tolist()]
        small: dict[str, F64] = {}
        for src in _DELTA_SOURCES:
            vals = rows[src].tolist()
            got = [
                vals[t] - (vals[p] if p >= 0 else np.nan)
                for t, p in zip(targets.tolist(), prev, strict=True)
            ]
            small[f"{src}_delta"] = np.array(got, dtype=np.float64)
        return small
    out: dict[str, F64] = {}
    before_idx = lookback_index(minute, targets, 1, 2)
    has_prev = before_idx >= 0
    for src in _DELTA_SOURCES:
        cur = rows[src][targets]
        before = np.where(has_prev, rows[src][np.maximum(before_idx, 0)], np.nan)
        out[f"{src}_delta"] = cur - before
    return out
