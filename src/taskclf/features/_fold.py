"""Stage 2 of feature building: the fold over row buckets, and assembly of schema rows.

:func:`fold` turns stage-1 aggregates of consecutive new rows into feature columns, given a
:class:`FoldState` (the carried state and the last 15 minutes of rows). Batch building calls
it once with the empty state; the online builder calls it once per closed minute with the
state it kept — the same code either way, so the rows are identical by construction.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.defaults import TITLE_SKETCH_BUCKETS
from taskclf.core.hashing import title_bucket
from taskclf.core.schema import (
    TITLE_CHAR3_SKETCH_COLUMNS,
    TITLE_TOKEN_SKETCH_COLUMNS,
    get_schema,
)
from taskclf.features._frame import BlockFrame
from taskclf.features._minutes import Minutes
from taskclf.features._small import factorize_first, factorize_sorted
from taskclf.features.domain import NON_BROWSER
from taskclf.features.dynamics import dynamic_features, window_buckets
from taskclf.features.sessions import RunCarry, SessionCarry, run_fold, session_fold, session_ids
from taskclf.features.text import sketch_to_dense
from taskclf.features.windows import I64

F64 = NDArray[np.float64]
_CONTEXT_KEYS = ("minute", "app_change_count", "keys_per_min", "clicks_per_min", "mouse_distance")


def _empty_context() -> dict[str, Any]:
    return {
        "minute": np.zeros(0, np.int64),
        "app_change_count": np.zeros(0, np.int64),
        "keys_per_min": np.zeros(0),
        "clicks_per_min": np.zeros(0),
        "mouse_distance": np.zeros(0),
        "app_row": np.zeros(0, np.int64),
        "app": np.zeros(0, object),
        "app_us": np.zeros(0, np.int64),
    }


@dataclass(frozen=True)
class FoldState:
    """Everything the fold carries from one chunk of rows to the next."""

    session: SessionCarry = field(default_factory=SessionCarry)
    run: RunCarry = field(default_factory=RunCarry)
    context: dict[str, Any] = field(default_factory=_empty_context)

    @property
    def last_minute(self) -> int | None:
        m = self.context["minute"]
        return int(m[-1]) if m.size else None


@dataclass(frozen=True)
class FoldParams:
    """Parameters of one build."""

    bucket_seconds: int
    idle_gap_seconds: int

    @property
    def bucket_us(self) -> int:
        return self.bucket_seconds * 1_000_000

    @property
    def idle_gap_us(self) -> int:
        return self.idle_gap_seconds * 1_000_000


def _input_rates(c: dict[str, Any], bucket_seconds: int) -> dict[str, F64]:
    scale = 60.0 / bucket_seconds
    presses = c["presses"]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(presses > 0, c["backspaces"] / np.where(presses > 0, presses, 1.0), np.nan)
    return {
        "keys_per_min": presses * scale,
        "backspace_ratio": np.minimum(ratio, 1.0),
        "shortcut_rate": c["shortcuts"] * scale,
        "clicks_per_min": c["clicks"] * scale,
        "scroll_events_per_min": c["scroll"] * scale,
        "mouse_distance": c["distance"] * 1.0,
    }


def fold(mins: Minutes, state: FoldState, params: FoldParams) -> tuple[dict[str, Any], FoldState]:
    """Feature columns (not yet a frame) for the rows of ``mins`` and the new state."""
    c = mins.cols
    n = mins.size
    out: dict[str, Any] = dict(c)
    if n == 0:
        return out, state
    if state.last_minute is not None and int(c["minute"][0]) <= state.last_minute:
        raise ValueError("fold: rows must come after the rows already folded")
    change, dwell, run_carry = run_fold(mins.pieces, n, c["dom_app"], params.idle_gap_us, state.run)
    active = (c["notafk_us"] > 0) | (~c["afk_present"] & (c["window_us"] > 0))
    sess, sess_carry = session_fold(
        c["minute"], active, c["dom_title"], params.bucket_us, params.idle_gap_us, state.session
    )
    out.update(sess)
    out.update(_input_rates(c, params.bucket_seconds))
    out["app_change_count"] = change
    out["app_dwell_time_seconds"] = dwell
    ctx = state.context
    n_ctx = int(ctx["minute"].size)
    rows = {k: np.concatenate([ctx[k], out[k]]) for k in _CONTEXT_KEYS}
    apps_all = np.concatenate([ctx["app"], mins.app_long["app"]])
    codes, _uniq = factorize_sorted(apps_all)
    app_long = {
        "row": np.concatenate([ctx["app_row"], mins.app_long["row"] + n_ctx]),
        "app_code": codes,
        "us": np.concatenate([ctx["app_us"], mins.app_long["us"]]),
    }
    out.update(dynamic_features(rows, app_long, n_ctx, params.bucket_seconds))
    keep_from = int(rows["minute"][-1]) - window_buckets(900, params.bucket_seconds)
    first = int(np.searchsorted(rows["minute"], keep_from, side="right"))
    new_ctx = {k: rows[k][first:] for k in _CONTEXT_KEYS}
    sel = app_long["row"] >= first
    new_ctx.update(
        app_row=app_long["row"][sel] - first, app=apps_all[sel], app_us=app_long["us"][sel]
    )
    return out, FoldState(session=sess_carry, run=run_carry, context=new_ctx)


_STAT_NAMES = (
    "title_char_count",
    "title_token_count",
    "title_unique_token_ratio",
    "title_digit_ratio",
    "title_separator_count",
)
_INT_STATS = frozenset({"title_char_count", "title_token_count", "title_separator_count"})


@dataclass(frozen=True)
class _TitleArrays:
    """Title features per distinct title; ``codes`` maps each row to its title."""

    codes: NDArray[np.intp]  # (n,) index into the per-title arrays
    sketch: F64  # (256, titles): token then char3 buckets, one row per column
    stats: F64  # (5, titles): _STAT_NAMES


def _title_arrays(
    titles: NDArray[np.object_], table: dict[str, tuple[Any, ...]], cache: dict[str, Any]
) -> _TitleArrays:
    """Sketches and the five statistics of each distinct title of ``titles``."""
    codes, uniq = factorize_first(titles)
    k = TITLE_SKETCH_BUCKETS
    sketch = np.zeros((uniq.size, 2 * k))
    stats = np.zeros((uniq.size, len(_STAT_NAMES)))
    for i, t in enumerate(uniq.tolist()):
        if not t or t not in table:
            continue
        got = cache.get(t)
        if got is None:
            row = table[t]
            got = cache[t] = (
                np.concatenate([sketch_to_dense(row[5] or ""), sketch_to_dense(row[6] or "")]),
                np.array([float(v) for v in row[:5]]),
            )
        sketch[i], stats[i] = got
    return _TitleArrays(codes, np.ascontiguousarray(sketch.T), stats.T)


def _stat_columns(ta: _TitleArrays) -> dict[str, Any]:
    """The five statistics per row (ints as int64, as the schema says)."""
    out: dict[str, Any] = {}
    for j, name in enumerate(_STAT_NAMES):
        per_title = ta.stats[j].astype(np.int64) if name in _INT_STATS else ta.stats[j]
        out[name] = per_title[ta.codes]
    return out


_SKETCH_COLUMNS = (*TITLE_TOKEN_SKETCH_COLUMNS, *TITLE_CHAR3_SKETCH_COLUMNS)
_V3_TITLE = frozenset({*_SKETCH_COLUMNS, *_STAT_NAMES})
_EMPTY: dict[str, pd.DataFrame] = {}


def _title_buckets(hashes: NDArray[np.object_]) -> I64:
    inv, uniq = factorize_first(hashes)
    buckets = np.array([title_bucket(h) if h else 0 for h in uniq.tolist()], dtype=np.int64)
    out: I64 = buckets[inv]
    return out


def empty_frame(schema_version: str) -> pd.DataFrame:
    """A frame with the schema's columns and dtypes and no rows."""
    if schema_version not in _EMPTY:
        schema = get_schema(schema_version)
        _EMPTY[schema_version] = typed_frame(
            pd.DataFrame({c: [] for c in schema.COLUMNS}), schema_version
        )
    return _EMPTY[schema_version].copy()


@dataclass(frozen=True)
class RowContext:
    """Who and how: the constant inputs of :func:`assemble` / :func:`assemble_records`."""

    user_id: str
    device_id: str | None
    timezone: str
    schema_version: str
    params: FoldParams


def _times(minute: I64, ctx: RowContext) -> dict[str, Any]:
    """Bucket start / end timestamps (``DatetimeIndex``) and local hour / weekday arrays."""
    b_us = ctx.params.bucket_us
    start = pd.DatetimeIndex(
        pd.to_datetime(minute * b_us, unit="us", utc=True).astype("datetime64[us, UTC]")
    )
    local = start.tz_convert(ctx.timezone)
    return {
        "bucket_start_ts": start,
        "bucket_end_ts": start + pd.Timedelta(microseconds=b_us),
        "hour_of_day": np.asarray(local.hour, dtype=np.int64),
        "day_of_week": np.asarray(local.day_of_week, dtype=np.int64),
    }


def _scalar_times(minute: I64, ctx: RowContext) -> dict[str, Any]:
    """:func:`_times` as lists of ``Timestamp`` / int, one scalar at a time (cheap for a few)."""
    b_us = ctx.params.bucket_us
    start = [pd.Timestamp(m * b_us, unit="us", tz="UTC") for m in minute.tolist()]
    local = [t.tz_convert(ctx.timezone) for t in start]
    return {
        "bucket_start_ts": start,
        "bucket_end_ts": [
            pd.Timestamp((m + 1) * b_us, unit="us", tz="UTC") for m in minute.tolist()
        ],
        "hour_of_day": [t.hour for t in local],
        "day_of_week": [t.day_of_week for t in local],
    }


def _base_columns(cols: dict[str, Any], ctx: RowContext, scalar: bool = False) -> dict[str, Any]:
    """The non-title schema columns as arrays, in schema order.

    With ``scalar`` the timestamps and local hour / weekday are lists of Python scalars (the
    values ``list()`` of the arrays would give), for :func:`assemble_records`.
    """
    schema = get_schema(ctx.schema_version)
    minute: I64 = np.asarray(cols["minute"], dtype=np.int64)
    n = minute.size
    b_us = ctx.params.bucket_us
    cat = cols["dom_cat"]
    data: dict[str, Any] = {
        "user_id": np.full(n, ctx.user_id, dtype=object),
        "device_id": np.full(n, ctx.device_id, dtype=object),
        "session_id": session_ids(cols["session_start"], b_us),
        **(_scalar_times if scalar else _times)(minute, ctx),
        "schema_version": np.full(n, schema.VERSION, dtype=object),
        "schema_hash": np.full(n, schema.SCHEMA_HASH, dtype=object),
        "source_ids": cols["sources"],
        "app_id": cols["dom_app"],
        "app_category": cat,
        "window_title_hash": cols["dom_title"],
        "is_browser": cat == "browser",
        "is_editor": cat == "editor",
        "is_terminal": cat == "terminal",
        "app_foreground_time_ratio": np.minimum(cols["dom_us"] / b_us, 1.0),
        "active_seconds_keyboard": np.minimum(cols["kb_us"], 60.0),
        "active_seconds_mouse": np.minimum(cols["mouse_us"], 60.0),
        "active_seconds_any": np.minimum(cols["any_us"], 60.0),
        "max_idle_run_seconds": np.minimum(cols["max_idle_run"], 60.0),
        "event_density": cols["event_count"] * (60e6 / b_us),
        "domain_category": np.where(cat == "browser", cols["domain"], NON_BROWSER),
        "window_title_bucket": _title_buckets(cols["dom_title"]),
    }
    return {c: data[c] if c in data else cols[c] for c in _base_names(schema.VERSION)}


_BASE_NAMES: dict[str, list[str]] = {}


def _base_names(version: str) -> list[str]:
    """The schema's columns without the v3 title columns, in schema order (cached)."""
    if version not in _BASE_NAMES:
        cols = get_schema(version).COLUMNS
        _BASE_NAMES[version] = [c for c in cols if c not in _V3_TITLE]
    return _BASE_NAMES[version]


def assemble(
    cols: dict[str, Any],
    ctx: RowContext,
    titles: dict[str, tuple[Any, ...]],
    title_cache: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Turn folded columns into a schema frame (exact columns and canonical dtypes).

    Canonical dtypes: ``str`` columns use pandas' ``str`` dtype (missing = NaN), lists are
    Python lists in an object column, bools ``bool``, ints ``int64``, floats ``float64``,
    timestamps ``datetime64[us, UTC]`` — the same as :func:`typed_frame` gives for a frame
    read from disk. The float columns share one block the frame wraps without a copy.
    """
    if "minute" not in cols or np.asarray(cols["minute"]).size == 0:
        return empty_frame(ctx.schema_version)
    data = _base_columns(cols, ctx)
    data["source_ids"] = _distinct_lists(data["source_ids"])
    n = int(np.asarray(cols["minute"]).size)
    schema = get_schema(ctx.schema_version)
    if ctx.schema_version != "v3":
        return BlockFrame(n, data).frame(schema.COLUMNS)
    ta = _title_arrays(cols["dom_title"], titles, {} if title_cache is None else title_cache)
    data.update(_stat_columns(ta))
    blocks = BlockFrame(n, data, reserve=_SKETCH_COLUMNS)
    # gathered straight into the frame's float block; mode="clip" (codes are in range)
    # writes in place, where the default mode would buffer a second copy of the block
    np.take(ta.sketch, ta.codes, axis=1, out=blocks.reserved(), mode="clip")
    return blocks.frame(schema.COLUMNS)


def _distinct_lists(lists: NDArray[np.object_]) -> NDArray[np.object_]:
    """A fresh list per row (rows with the same sources share one list before this).

    The cyclic garbage collector is paused meanwhile: these lists hold only strings, and
    its collections, triggered every few hundred new lists, each walk the young lists again,
    which made this step ~3x slower per row at 500k rows than at 50k.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return np.fromiter((list(v) for v in lists), dtype=object, count=lists.size)
    finally:
        if was_enabled:
            gc.enable()


def assemble_records(
    cols: dict[str, Any],
    ctx: RowContext,
    titles: dict[str, tuple[Any, ...]],
    title_cache: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The same rows as :func:`assemble`, as plain dicts (no pandas frame; cheap for one row).

    Values equal the frame's cells; a missing ``device_id`` is None (NaN in the frame).
    """
    if "minute" not in cols or np.asarray(cols["minute"]).size == 0:
        return []
    data = _base_columns(cols, ctx, scalar=True)
    if ctx.schema_version == "v3":
        ta = _title_arrays(cols["dom_title"], titles, {} if title_cache is None else title_cache)
        data.update(_stat_columns(ta))
    n = int(np.asarray(cols["minute"]).size)
    plain = {
        k: (v if isinstance(v, list) else np.asarray(v).tolist())
        for k, v in data.items()
        if k != "source_ids"
    }
    columns = get_schema(ctx.schema_version).COLUMNS
    sketches = ta.sketch.T[ta.codes].tolist() if ctx.schema_version == "v3" else None
    out = []
    for i in range(n):
        rec = {k: v[i] for k, v in plain.items()}
        rec["source_ids"] = list(data["source_ids"][i])
        if sketches is not None:
            rec.update(zip(_SKETCH_COLUMNS, sketches[i], strict=True))
        out.append({c: rec[c] for c in columns})
    return out


def typed_frame(df: pd.DataFrame, schema_version: str) -> pd.DataFrame:
    """Cast a frame (e.g. read from parquet) to the schema's columns and canonical dtypes."""
    schema = get_schema(schema_version)
    out: dict[str, Any] = {}
    for spec in schema.COLUMN_SPECS:
        s = df[spec.name].reset_index(drop=True)
        if spec.type == "str":
            if str(s.dtype) != "str":
                s = s.astype(object).where(s.notna(), None).astype("str")
        elif spec.type == "datetime":
            s = pd.to_datetime(s, utc=True).astype("datetime64[us, UTC]")
        elif spec.type == "list":
            s = pd.Series([[str(x) for x in v] for v in s], dtype=object)
        else:
            s = s.astype({"bool": bool, "int": np.int64, "float": np.float64}[spec.type])
        out[spec.name] = s
    return pd.DataFrame(out)
