"""Project label spans onto per-minute feature rows (pure, vectorized).

Rule (DESIGN §4.1): the minute ``[t, t + bucket_seconds)`` of user ``u`` gets label ``L`` iff
the spans that apply to ``u`` (its own and the user-agnostic ones) cover the whole minute and
every one of them that overlaps it says ``L``. Adjacent agreeing spans together cover a
minute; a minute partly covered by nothing, or touched by two disagreeing spans, stays
unlabeled (None).

Method: per user, the span boundaries cut the time axis into elementary intervals; per-label
coverage counts come from one ``bincount`` of +1/-1 events and a cumulative sum. An elementary
interval *agrees on L* when only label ``L`` covers it. Consecutive intervals with the same
state form runs; a minute is labeled iff the intervals containing its first and last instant
lie in the same run and that run agrees on a label. Two ``searchsorted`` calls per minute:
``O((n + m) log m)`` for ``n`` minutes and ``m`` spans, with no per-row Python.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.defaults import DEFAULT_BUCKET_SECONDS
from taskclf.core.errors import LabelError, SchemaError
from taskclf.core.types import LABEL_SET_V1, LabelSpan
from taskclf.labels._db import to_us

_LABELS: tuple[str, ...] = LABEL_SET_V1
_LABEL_CODE: dict[str, int] = {label: i for i, label in enumerate(_LABELS)}
_NO_LABEL = -1


class _Spans:
    """Span arrays: starts/ends in epoch microseconds, label codes, user ids (None = all)."""

    def __init__(
        self,
        start: NDArray[np.int64],
        end: NDArray[np.int64],
        code: NDArray[np.int64],
        user: NDArray[np.object_],
    ) -> None:
        self.start, self.end, self.code, self.user = start, end, code, user

    def subset(self, idx: NDArray[np.intp]) -> _Spans:
        return _Spans(self.start[idx], self.end[idx], self.code[idx], self.user[idx])


def utc_microseconds(values: pd.Series, *, column: str) -> NDArray[np.int64]:
    """A tz-aware datetime column as int64 epoch microseconds (naive is a SchemaError)."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise SchemaError(
            f"column {column!r} must hold timezone-aware timestamps (UTC), got {values.dtype}"
        )
    naive = values.dt.tz_convert("UTC").dt.tz_localize(None)
    if naive.isna().any():
        row = int(np.flatnonzero(naive.isna().to_numpy())[0])
        raise SchemaError(f"column {column!r} has a missing timestamp at row {row}")
    micros: NDArray[np.int64] = naive.to_numpy(dtype="datetime64[us]").view(np.int64)
    return micros


def object_values(values: pd.Series) -> NDArray[np.object_]:
    """The values of ``values`` as an object array with None for every missing value."""
    out: NDArray[np.object_] = np.asarray(values.astype(object).to_numpy(), dtype=object)
    out = out.copy()
    out[values.isna().to_numpy(dtype=bool)] = None
    return out


def _user_array(values: pd.Series) -> NDArray[np.object_]:
    raw = object_values(values)
    return np.asarray([None if v is None or v == "" else str(v) for v in raw], dtype=object)


def _spans_from_frame(df: pd.DataFrame) -> _Spans:
    missing = [c for c in ("start_ts", "end_ts", "label") if c not in df.columns]
    if missing:
        raise SchemaError(f"label span frame lacks column(s) {missing}")
    start = utc_microseconds(df["start_ts"], column="start_ts")
    end = utc_microseconds(df["end_ts"], column="end_ts")
    labels = object_values(df["label"])
    code = np.fromiter(
        (_LABEL_CODE.get(v, _NO_LABEL) if isinstance(v, str) else _NO_LABEL for v in labels),
        dtype=np.int64,
        count=len(labels),
    )
    bad = np.flatnonzero(code == _NO_LABEL)
    if bad.size:
        i = int(bad[0])
        raise LabelError(
            f"label span frame row {i}: unknown label {labels[i]!r}; expected one of "
            f"{', '.join(_LABELS)}"
        )
    order_bad = np.flatnonzero(end <= start)
    if order_bad.size:
        raise LabelError(f"label span frame row {int(order_bad[0])}: end_ts must be after start_ts")
    if "user_id" in df.columns:
        user = _user_array(df["user_id"])
    else:
        user = np.full(len(df), None, dtype=object)
    return _Spans(start, end, code, user)


def _spans_from_models(spans: Sequence[LabelSpan]) -> _Spans:
    n = len(spans)
    return _Spans(
        np.fromiter((to_us(s.start_ts) for s in spans), dtype=np.int64, count=n),
        np.fromiter((to_us(s.end_ts) for s in spans), dtype=np.int64, count=n),
        np.fromiter((_LABEL_CODE[s.label] for s in spans), dtype=np.int64, count=n),
        np.asarray([s.user_id for s in spans], dtype=object).reshape(n),
    )


def _minute_labels(t: NDArray[np.int64], width: int, spans: _Spans) -> NDArray[np.int64]:
    """Label code of each minute ``[t, t + width)`` under ``spans`` (-1 = unlabeled)."""
    out = np.full(t.shape, _NO_LABEL, dtype=np.int64)
    if len(spans.start) == 0 or len(t) == 0:
        return out
    bounds = np.unique(np.concatenate([spans.start, spans.end]))
    k = len(bounds)
    n_labels = len(_LABELS)
    i_start = np.searchsorted(bounds, spans.start)
    i_end = np.searchsorted(bounds, spans.end)
    events = np.bincount(spans.code * k + i_start, minlength=n_labels * k) - np.bincount(
        spans.code * k + i_end, minlength=n_labels * k
    )
    cover = np.cumsum(events.reshape(n_labels, k), axis=1)[:, : k - 1] > 0
    n_cover = cover.sum(axis=0)
    state = np.where(n_cover == 1, cover.argmax(axis=0), _NO_LABEL)
    run = np.concatenate([[0], np.cumsum(state[1:] != state[:-1])])
    inside = (t >= bounds[0]) & (t + width <= bounds[-1])
    ts = t[inside]
    first = np.searchsorted(bounds, ts, side="right") - 1
    last = np.searchsorted(bounds, ts + width, side="left") - 1
    ok = (run[first] == run[last]) & (state[first] != _NO_LABEL)
    out[np.flatnonzero(inside)[ok]] = state[first[ok]]
    return out


def _codes_by_user(
    t: NDArray[np.int64], row_user: NDArray[np.object_], width: int, spans: _Spans
) -> NDArray[np.int64]:
    codes = np.full(t.shape, _NO_LABEL, dtype=np.int64)
    agnostic = np.array([u is None for u in spans.user], dtype=bool).reshape(len(spans.user))
    shared = spans.subset(np.flatnonzero(agnostic))
    specific_idx = np.flatnonzero(~agnostic)
    span_user = spans.user[specific_idx]
    keys = np.asarray(["" if u is None else u for u in row_user], dtype=object)
    uniq, inverse = np.unique(keys.astype(str), return_inverse=True)
    by_user: dict[str, NDArray[np.intp]] = {}
    if specific_idx.size:
        su_keys = span_user.astype(str)
        order = np.argsort(su_keys, kind="stable")
        sorted_keys = su_keys[order]
        cuts = np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1
        for chunk in np.split(order, cuts):
            by_user[str(su_keys[chunk[0]])] = specific_idx[chunk]
    shared_codes: NDArray[np.int64] | None = None
    for j, user in enumerate(uniq):
        rows = np.flatnonzero(inverse == j)
        own = by_user.get(str(user)) if user != "" else None
        if own is None:
            if shared_codes is None:
                shared_codes = _minute_labels(t, width, shared)
            codes[rows] = shared_codes[rows]
        else:
            both = np.concatenate([own, np.flatnonzero(agnostic)])
            codes[rows] = _minute_labels(t[rows], width, spans.subset(both))
    return codes


def project_blocks_to_windows(
    features_df: pd.DataFrame,
    label_spans: pd.DataFrame | Sequence[LabelSpan],
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
) -> pd.DataFrame:
    """Label each feature row whose minute is fully covered by agreeing spans.

    Args:
        features_df: Rows with ``bucket_start_ts`` (tz-aware) and, when any span names a
            user, ``user_id``. Row order and index are kept.
        label_spans: A frame with ``start_ts``, ``end_ts`` (tz-aware), ``label`` and
            optionally ``user_id`` (None/NaN/empty = every user), e.g.
            ``LabelStore.spans_frame()``; or a sequence of :class:`LabelSpan`. Spans may
            overlap each other (e.g. a user span and an agnostic span).
        bucket_seconds: Width of a row's bucket, starting at ``bucket_start_ts``.

    Returns:
        A copy of ``features_df`` with a ``label`` column (object dtype: a core label, or
        None where the minute is not fully covered by agreeing spans). An existing ``label``
        column is replaced.
    """
    if not isinstance(bucket_seconds, int | np.integer) or bucket_seconds <= 0:
        raise SchemaError(f"bucket_seconds must be a positive integer, got {bucket_seconds!r}")
    if "bucket_start_ts" not in features_df.columns:
        raise SchemaError("feature frame lacks column 'bucket_start_ts'")
    if isinstance(label_spans, pd.DataFrame):
        spans = _spans_from_frame(label_spans)
    else:
        spans = _spans_from_models(list(label_spans))
    t = utc_microseconds(features_df["bucket_start_ts"], column="bucket_start_ts")
    width = int(bucket_seconds) * 1_000_000
    if "user_id" in features_df.columns:
        row_user = _user_array(features_df["user_id"])
    elif any(u is not None for u in spans.user):
        raise SchemaError(
            "feature frame has no 'user_id' column but some label spans belong to a user; "
            "add the user_id column (schema v2 frames carry it separately)"
        )
    else:
        row_user = np.full(len(t), None, dtype=object)
    codes = _codes_by_user(t, row_user, width, spans)
    names = np.asarray([*_LABELS, None], dtype=object)
    out = features_df.copy()
    out["label"] = pd.Series(names[codes], index=features_df.index, dtype=object)
    return out


def coverage_table(projected: pd.DataFrame) -> pd.DataFrame:
    """Minutes per user and label of a projected frame, with the labeled share per user.

    Returns a frame with ``user_id``, ``label`` (``"(unlabeled)"`` for None), ``minutes`` and
    ``share`` (of that user's rows), sorted by user then label.
    """
    if "label" not in projected.columns:
        raise SchemaError("coverage needs a projected frame with a 'label' column")
    users = (
        _user_array(projected["user_id"])
        if "user_id" in projected.columns
        else np.full(len(projected), None, dtype=object)
    )
    frame = pd.DataFrame(
        {
            "user_id": ["(all)" if u is None else u for u in users],
            "label": ["(unlabeled)" if v is None else v for v in object_values(projected["label"])],
        }
    )
    if frame.empty:
        return pd.DataFrame(
            {
                "user_id": pd.Series(dtype=object),
                "label": pd.Series(dtype=object),
                "minutes": pd.Series(dtype="int64"),
                "share": pd.Series(dtype="float64"),
            }
        )
    counts = frame.groupby(["user_id", "label"]).size().rename("minutes").reset_index()
    totals = counts.groupby("user_id")["minutes"].transform("sum")
    counts["share"] = counts["minutes"] / totals
    counts["minutes"] = counts["minutes"].astype("int64")
    return counts.sort_values(["user_id", "label"]).reset_index(drop=True)
