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
    """Span arrays: starts/ends in epoch microseconds, label codes, and users.

    ``user`` holds codes into ``users`` (the distinct user ids); -1 means user-agnostic.
    """

    def __init__(
        self,
        start: NDArray[np.int64],
        end: NDArray[np.int64],
        code: NDArray[np.int64],
        user: NDArray[np.intp],
        users: list[str],
    ) -> None:
        self.start, self.end, self.code = start, end, code
        self.user, self.users = user, users

    def subset(self, idx: NDArray[np.intp]) -> _Spans:
        return _Spans(self.start[idx], self.end[idx], self.code[idx], self.user[idx], self.users)


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


def factorize_users(values: pd.Series) -> tuple[NDArray[np.intp], list[str]]:
    """Codes into the distinct user ids (hash based, no per-row Python); -1 = missing/empty."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    names = [str(u) for u in uniques]
    out = np.asarray(codes, dtype=np.intp)
    if "" in names:
        out = out.copy()
        out[out == names.index("")] = -1
    return out, names


def _spans_from_frame(df: pd.DataFrame) -> _Spans:
    missing = [c for c in ("start_ts", "end_ts", "label") if c not in df.columns]
    if missing:
        raise SchemaError(f"label span frame lacks column(s) {missing}")
    start = utc_microseconds(df["start_ts"], column="start_ts")
    end = utc_microseconds(df["end_ts"], column="end_ts")
    label_idx, label_names = pd.factorize(df["label"], use_na_sentinel=True)
    lookup = np.asarray([_LABEL_CODE.get(str(v), _NO_LABEL) for v in label_names] + [_NO_LABEL])
    code = lookup[np.asarray(label_idx, dtype=np.intp)].astype(np.int64)
    bad = np.flatnonzero(code == _NO_LABEL)
    if bad.size:
        i = int(bad[0])
        raise LabelError(
            f"label span frame row {i}: unknown label {df['label'].iloc[i]!r}; expected one of "
            f"{', '.join(_LABELS)}"
        )
    order_bad = np.flatnonzero(end <= start)
    if order_bad.size:
        raise LabelError(f"label span frame row {int(order_bad[0])}: end_ts must be after start_ts")
    if "user_id" in df.columns:
        user, users = factorize_users(df["user_id"])
    else:
        user, users = np.full(len(df), -1, dtype=np.intp), []
    return _Spans(start, end, code, user, users)


def _spans_from_models(spans: Sequence[LabelSpan]) -> _Spans:
    n = len(spans)
    user, users = factorize_users(pd.Series([s.user_id for s in spans], dtype=object))
    return _Spans(
        np.fromiter((to_us(s.start_ts) for s in spans), dtype=np.int64, count=n),
        np.fromiter((to_us(s.end_ts) for s in spans), dtype=np.int64, count=n),
        np.fromiter((_LABEL_CODE[s.label] for s in spans), dtype=np.int64, count=n),
        user,
        users,
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


def _groups(codes: NDArray[np.intp], n_groups: int) -> list[NDArray[np.intp]]:
    """Indices of each code ``0..n_groups-1`` (one stable argsort, no per-group scan)."""
    order = np.argsort(codes, kind="stable")
    edges = np.searchsorted(codes[order], np.arange(n_groups + 1))
    return [order[edges[g] : edges[g + 1]] for g in range(n_groups)]


def _codes_by_user(
    t: NDArray[np.int64],
    row_user: NDArray[np.intp],
    row_users: list[str],
    width: int,
    spans: _Spans,
) -> NDArray[np.int64]:
    codes = np.full(t.shape, _NO_LABEL, dtype=np.int64)
    # Map span users onto row users; spans of users without rows are irrelevant (-2).
    row_index = {name: i for i, name in enumerate(row_users)}
    to_row = np.asarray([row_index.get(name, -2) for name in spans.users] + [-1], dtype=np.intp)
    span_user = to_row[spans.user]  # -1 (agnostic) indexes the trailing -1
    agnostic = np.flatnonzero(span_user == -1)
    span_groups = _groups(np.where(span_user >= 0, span_user, len(row_users)), len(row_users))
    row_groups = _groups(np.where(row_user >= 0, row_user, len(row_users)), len(row_users))
    shared_rows = [np.flatnonzero(row_user < 0)]
    for own, rows in zip(span_groups, row_groups, strict=True):
        if not rows.size:
            continue
        if not own.size:
            shared_rows.append(rows)
            continue
        both = np.concatenate([own, agnostic])
        codes[rows] = _minute_labels(t[rows], width, spans.subset(both))
    rows = np.concatenate(shared_rows)
    if rows.size:
        codes[rows] = _minute_labels(t[rows], width, spans.subset(agnostic))
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
        row_user, row_users = factorize_users(features_df["user_id"])
    elif (spans.user >= 0).any():
        raise SchemaError(
            "feature frame has no 'user_id' column but some label spans belong to a user; "
            "add the user_id column (schema v2 frames carry it separately)"
        )
    else:
        row_user, row_users = np.full(len(t), -1, dtype=np.intp), []
    codes = _codes_by_user(t, row_user, row_users, width, spans)
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
        object_values(projected["user_id"])
        if "user_id" in projected.columns
        else np.full(len(projected), None, dtype=object)
    )
    frame = pd.DataFrame(
        {
            "user_id": ["(all)" if u is None or u == "" else str(u) for u in users],
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
