"""One closed bucket in plain Python: the online fast path of feature building.

Closing one minute online through the batch code (:func:`~taskclf.features._minutes.
aggregate_minutes`, :func:`~taskclf.features._fold.fold`, :func:`~taskclf.features._fold.
assemble_records`) runs a few hundred numpy calls on arrays of a handful of values, where
each call's fixed cost dominates. :func:`close_one` computes the same row for exactly one
bucket with Python scalars — stage 1 in ``features._one_stage1``, then the fold (app runs,
sessions, title repeats, 5/15-minute look-backs, deltas) and the record here — following the
same definitions step by step (see the docstrings of ``_minutes``, ``windows``, ``sessions``
and ``dynamics``) and the same floating-point operations in the same order, so its record
equals the batch row bit for bit (tested against ``build_features`` with random event mixes,
minute by minute).

The fold state is kept as Python values (:class:`ScalarFold`) and converted to and from the
batch :class:`~taskclf.features._fold.FoldState` when the online builder switches paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd

from taskclf.core.defaults import TITLE_SKETCH_BUCKETS
from taskclf.core.hashing import title_bucket
from taskclf.core.schema import get_schema
from taskclf.features._event_lists import EventBuffer
from taskclf.features._fold import (
    _SKETCH_COLUMNS,
    _STAT_NAMES,
    FoldParams,
    FoldState,
    RowContext,
)
from taskclf.features._one_stage1 import FALLBACK, NAN, stage1
from taskclf.features.domain import NON_BROWSER
from taskclf.features.dynamics import window_buckets
from taskclf.features.sessions import RunCarry, SessionCarry, _session_name, fold_runs
from taskclf.features.text import sketch_to_dense

__all__ = ["FALLBACK", "ScalarFold", "TitleMemo", "close_one"]

_INT_STATS = (True, True, False, False, True)  # title_char/token counts, separators are ints


@dataclass
class ScalarRow:
    """What the look-back features need of one emitted row."""

    minute: int
    change: int
    keys: float
    clicks: float
    mouse: float
    apps: list[tuple[str, int]]  # (app, window µs), apps in lexical order


@dataclass
class ScalarFold:
    """:class:`~taskclf.features._fold.FoldState` as Python values (mutated in place)."""

    last_active: int = -1
    session_start: int = -1
    titles: dict[str, int] = field(default_factory=dict)
    run_app: str | None = None
    run_end: int = -1
    run_start: int = -1
    rows: list[ScalarRow] = field(default_factory=list)

    @classmethod
    def from_state(cls, state: FoldState) -> ScalarFold:
        s, r, ctx = state.session, state.run, state.context
        rows = [
            ScalarRow(m, c, k, cl, md, [])
            for m, c, k, cl, md in zip(
                ctx["minute"].tolist(),
                ctx["app_change_count"].tolist(),
                ctx["keys_per_min"].tolist(),
                ctx["clicks_per_min"].tolist(),
                ctx["mouse_distance"].tolist(),
                strict=True,
            )
        ]
        for i, app, us in zip(
            ctx["app_row"].tolist(), ctx["app"].tolist(), ctx["app_us"].tolist(), strict=True
        ):
            rows[i].apps.append((app, us))
        for row in rows:
            row.apps.sort()
        return cls(
            last_active=-1 if s.last_active_minute is None else s.last_active_minute,
            session_start=-1 if s.session_start_minute is None else s.session_start_minute,
            titles=dict(s.titles),
            run_app=r.app,
            run_end=-1 if r.end is None else r.end,
            run_start=-1 if r.run_start is None else r.run_start,
            rows=rows,
        )

    def to_state(self) -> FoldState:
        session = SessionCarry(
            last_active_minute=None if self.last_active < 0 else self.last_active,
            session_start_minute=None if self.session_start < 0 else self.session_start,
            titles=dict(self.titles),
        )
        run = RunCarry(
            app=self.run_app,
            end=None if self.run_app is None else self.run_end,
            run_start=None if self.run_app is None else self.run_start,
        )
        pairs = [(i, a, u) for i, row in enumerate(self.rows) for a, u in row.apps]
        app = np.empty(len(pairs), dtype=object)
        app[:] = [a for _, a, _ in pairs]
        context = {
            "minute": np.array([r.minute for r in self.rows], dtype=np.int64),
            "app_change_count": np.array([r.change for r in self.rows], dtype=np.int64),
            "keys_per_min": np.array([r.keys for r in self.rows], dtype=np.float64),
            "clicks_per_min": np.array([r.clicks for r in self.rows], dtype=np.float64),
            "mouse_distance": np.array([r.mouse for r in self.rows], dtype=np.float64),
            "app_row": np.array([i for i, _, _ in pairs], dtype=np.int64),
            "app": app,
            "app_us": np.array([u for _, _, u in pairs], dtype=np.int64),
        }
        return FoldState(session=session, run=run, context=context)


def _lookbacks(rows: list[ScalarRow], windows: tuple[int, ...]) -> list[tuple[float, ...]]:
    """``windows._lookback_sum_small`` of the last row for each window, in one pass.

    Per window: (switches, keys total, keys count, mouse total, mouse count), each summed
    with the same additions in the same order as the batch code (the last row first, then
    backwards while inside the window).
    """
    t = len(rows) - 1
    last = rows[t].minute
    out: list[tuple[float, ...]] = []
    for window in windows:
        chg = keys = mouse = 0.0
        n_keys = n_mouse = 0
        for i in range(t, max(t - window, -1), -1):
            row = rows[i]
            if last - row.minute >= window:
                break
            chg = chg + row.change
            v = row.keys
            if v == v:
                keys = keys + v
                n_keys += 1
            v = row.mouse
            if v == v:
                mouse = mouse + v
                n_mouse += 1
        out.append((chg, keys, float(n_keys), mouse, float(n_mouse)))
    return out


def _app_windows(rows: list[ScalarRow], windows: tuple[int, ...]) -> list[tuple[float, float]]:
    """``windows._app_window_one`` of the last row for each window: (entropy, top-2 share).

    The shares and sums use the same IEEE operations as the batch code; the logarithms come
    from one ``np.log`` call, as numpy's log (not ``math.log``) is what the batch code uses.
    """
    shares: list[float] = []
    spans: list[tuple[int, int, float, float]] = []
    by_app: dict[str, int] = {}
    last = rows[-1].minute
    i = len(rows)
    for window in windows:  # ascending: each window extends the previous one backwards
        while i > 0 and len(rows) - i < window and last - rows[i - 1].minute < window:
            i -= 1
            for app, us in rows[i].apps:
                by_app[app] = by_app.get(app, 0) + us
        sums = [by_app[a] for a in sorted(by_app)]
        total = 0.0
        for v in sums:
            total += float(v)
        if not total > 0:
            spans.append((len(shares), len(shares), NAN, NAN))
            continue
        top_sum = 0.0
        for v in sorted(sums, reverse=True)[:2]:
            top_sum += float(v)
        first = len(shares)
        shares.extend(v / total for v in sums)
        spans.append((first, len(shares), total, min(top_sum / total, 1.0)))
    logs = np.log(np.array(shares, dtype=np.float64)).tolist() if shares else []
    out = []
    for first, stop, total, top2 in spans:
        if total != total:
            out.append((NAN, NAN))
            continue
        acc = 0.0
        for j in range(first, stop):
            p = shares[j]
            acc += -p * logs[j] if p > 0 else 0.0
        out.append((acc + 0.0, top2))
    return out


@dataclass
class TitleMemo:
    """Per title hash: the v3 title columns (dense sketch, then statistics) as a dict."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, title: str, table: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
        got = self.values.get(title)
        if got is None:
            if title and title in table:
                row = table[title]
                stats = [float(v) for v in row[:5]]
                sketch = np.concatenate(
                    [sketch_to_dense(row[5] or ""), sketch_to_dense(row[6] or "")]
                ).tolist()
            else:
                stats, sketch = [0.0] * 5, [0.0] * (2 * TITLE_SKETCH_BUCKETS)
            ints = [int(v) if is_int else v for v, is_int in zip(stats, _INT_STATS, strict=True)]
            got = self.values[title] = dict(zip(_V3_TAIL, sketch + ints, strict=True))
        return got


_TIMES: dict[tuple[int, int, str], tuple[Any, Any, int, int]] = {}


def _times(b: int, b_us: int, zone: str) -> tuple[Any, Any, int, int]:
    """Bucket start / end ``Timestamp`` and local hour / weekday (as ``_fold._scalar_times``)."""
    key = (b, b_us, zone)
    got = _TIMES.get(key)
    if got is None:
        start = pd.Timestamp(b * b_us, unit="us", tz="UTC")
        local = start.tz_convert(zone)
        end = pd.Timestamp((b + 1) * b_us, unit="us", tz="UTC")
        if len(_TIMES) > 4096:
            _TIMES.clear()
        got = _TIMES[key] = (start, end, int(local.hour), int(local.day_of_week))
    return got


def close_one(
    lists: EventBuffer,
    b: int,
    fold: ScalarFold,
    ctx: RowContext,
    memo: TitleMemo,
) -> dict[str, Any] | str | None:
    """The schema record of bucket ``b`` (None: no row; FALLBACK: use the batch code).

    ``fold`` is updated in place when a record (or None) is returned, and untouched on
    FALLBACK. ``b`` must come after every row already folded.
    """
    params: FoldParams = ctx.params
    b_us, gap_us = params.bucket_us, params.idle_gap_us
    st = stage1(lists, b, b_us, gap_us)
    if st is None or isinstance(st, str):
        return st
    # app runs (sessions.run_fold): pieces in time order
    apps = lists.cols["window"]["app"]
    changes, dwells, (prev_app, prev_end, run_start) = fold_runs(
        [(s, e, apps[i], 0) for s, e, i in st.pieces],
        1,
        (st.dom_app,),
        gap_us,
        (fold.run_app, fold.run_end, fold.run_start),
    )
    change, dwell = changes[0], dwells[0]
    # sessions (sessions.session_fold for one row)
    active = st.notafk_us > 0 or (not st.afk_present and st.window_us > 0)
    last = fold.last_active
    starts = active and (last < 0 or (b - last - 1) * b_us >= gap_us)
    if fold.session_start < 0:
        starts = True
    if starts:
        fold.session_start = b
        fold.titles = {}
    if active:
        fold.last_active = b
    start_min = fold.session_start
    repeat = fold.titles.get(st.dom_title, 0)
    fold.titles[st.dom_title] = repeat + 1
    fold.run_app, fold.run_end, fold.run_start = prev_app, prev_end, run_start
    # input rates (_fold._input_rates)
    scale = 60.0 / params.bucket_seconds
    presses, clicks, distance, scroll, backspaces, shortcuts = st.inputs
    ratio = min(backspaces / presses, 1.0) if presses > 0 else NAN
    keys = presses * scale
    clicks_pm = clicks * scale
    mouse = distance * 1.0
    # look-back features (dynamics.dynamic_features for the last row)
    rows = fold.rows
    prev = rows[-1] if rows else None
    rows.append(ScalarRow(b, change, keys, clicks_pm, mouse, sorted(st.by_app.items())))
    k5 = window_buckets(300, params.bucket_seconds)
    k15 = window_buckets(900, params.bucket_seconds)
    look5, look15 = _lookbacks(rows, (k5, k15))
    rolling = [
        look[j] / look[j + 1] if look[j + 1] > 0 else NAN
        for j in (1, 3)
        for look in (look5, look15)
    ]
    near = prev is not None and b - prev.minute < 2
    deltas = [
        keys - (prev.keys if near and prev else NAN),
        clicks_pm - (prev.clicks if near and prev else NAN),
        mouse - (prev.mouse if near and prev else NAN),
    ]
    (ent5, _), (ent15, top2) = _app_windows(rows, (k5, k15))
    keep_from = b - k15
    while rows and rows[0].minute <= keep_from:
        rows.pop(0)
    # the record (_fold._base_columns / assemble_records)
    t_start, t_end, hour, dow = _times(b, b_us, ctx.timezone)
    schema = get_schema(ctx.schema_version)
    cat = st.dom_cat
    values = {
        "user_id": ctx.user_id,
        "device_id": ctx.device_id,
        "session_id": _session_name(start_min, b_us),
        "bucket_start_ts": t_start,
        "bucket_end_ts": t_end,
        "schema_version": schema.VERSION,
        "schema_hash": schema.SCHEMA_HASH,
        "source_ids": st.sources,
        "app_id": st.dom_app,
        "app_category": cat,
        "window_title_hash": st.dom_title,
        "is_browser": cat == "browser",
        "is_editor": cat == "editor",
        "is_terminal": cat == "terminal",
        "app_switch_count_last_5m": int(look5[0]),
        "app_foreground_time_ratio": min(st.dom_us / b_us, 1.0),
        "app_change_count": change,
        "app_dwell_time_seconds": dwell,
        "app_entropy_5m": ent5,
        "app_entropy_15m": ent15,
        "top2_app_concentration_15m": top2,
        "idle_return_indicator": starts and active,
        "keys_per_min": keys,
        "backspace_ratio": ratio,
        "shortcut_rate": shortcuts * scale,
        "clicks_per_min": clicks_pm,
        "scroll_events_per_min": scroll * scale,
        "mouse_distance": mouse,
        "active_seconds_keyboard": min(st.kb_s, 60.0),
        "active_seconds_mouse": min(st.mouse_s, 60.0),
        "active_seconds_any": min(st.any_s, 60.0),
        "max_idle_run_seconds": min(st.max_idle_run, 60.0),
        "event_density": st.event_count * (60e6 / b_us),
        "domain_category": st.domain if cat == "browser" else NON_BROWSER,
        "window_title_bucket": title_bucket(st.dom_title) if st.dom_title else 0,
        "title_repeat_count_session": repeat,
        "keys_per_min_rolling_5": rolling[0],
        "keys_per_min_rolling_15": rolling[1],
        "mouse_distance_rolling_5": rolling[2],
        "mouse_distance_rolling_15": rolling[3],
        "keys_per_min_delta": deltas[0],
        "clicks_per_min_delta": deltas[1],
        "mouse_distance_delta": deltas[2],
        "app_switch_count_last_15m": int(look15[0]),
        "hour_of_day": hour,
        "day_of_week": dow,
        "session_length_so_far": ((b + 1) - start_min) * (b_us / 1e6),
    }
    if _in_order(ctx.schema_version, values):
        if ctx.schema_version == "v3":
            values.update(memo.get(st.dom_title, lists.titles))
        return values
    return {c: values[c] for c in schema.COLUMNS}


_V3_TAIL: Final = (*_SKETCH_COLUMNS, *_STAT_NAMES)
_ORDERED: dict[str, bool] = {}


def _in_order(version: str, values: dict[str, Any]) -> bool:
    """Whether ``values`` (then, for v3, the title columns) is the schema's column order."""
    got = _ORDERED.get(version)
    if got is None:
        tail = _V3_TAIL if version == "v3" else ()
        got = _ORDERED[version] = (*values, *tail) == get_schema(version).COLUMNS
    return got
