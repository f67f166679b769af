"""Sessions, app runs and title repeats: the folds that carry state from row to row.

Each function takes the arrays of the new rows (sorted) and the carried state of everything
before them, and returns per-row values plus the new carried state, so running it once over
all rows or many times over consecutive chunks gives the same values (online parity).

Definitions (bucket b, bucket length B, idle gap G, default 300 s):

- A row is *active* when it has not-afk time, or has window time and no AFK data at all.
- A *session* starts at an active row when the previous active row ended at least G before
  (or there was none), and at any row when no session is open yet. Inactive rows (e.g. window
  time while AFK) stay in the open session. ``session_id`` is ``s-<UTC start>``
  (``s-20240101T0900Z``); ``session_length_so_far`` is the seconds from the session start to
  the end of the row's bucket.
- ``idle_return_indicator``: the row is active and starts a session.
- ``title_repeat_count_session``: how many earlier rows of the same session had the same
  ``window_title_hash``.
- App runs: the resolved window pieces in time order; a new run starts when the app changes
  or the gap since the previous piece is at least G. ``app_change_count`` counts app changes
  starting inside the bucket; ``app_dwell_time_seconds`` is the time from the start of the run
  of the dominant app's last piece in the bucket to that piece's end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import numpy as np
from numpy.typing import NDArray

from taskclf.features._small import SMALL, pair_cumcount
from taskclf.features.windows import I64

F64 = NDArray[np.float64]
BoolArr = NDArray[np.bool_]


@dataclass(frozen=True)
class SessionCarry:
    """State after the last processed row."""

    last_active_minute: int | None = None
    session_start_minute: int | None = None
    titles: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class RunCarry:
    """The last window piece seen: its app, end, and the start of its run (µs)."""

    app: str | None = None
    end: int | None = None
    run_start: int | None = None


def _ffill(values: I64, valid: BoolArr, seed: int | None) -> I64:
    """Forward fill ``values`` where ``valid``; before the first valid use ``seed`` (or -1)."""
    idx = np.where(valid, np.arange(values.size), -1)
    np.maximum.accumulate(idx, out=idx)
    base = -1 if seed is None else seed
    return np.where(idx >= 0, values[np.maximum(idx, 0)], base).astype(np.int64)


def session_fold(
    minute: I64,
    active: BoolArr,
    titles: NDArray[np.object_],
    bucket_us: int,
    idle_gap_us: int,
    carry: SessionCarry,
) -> tuple[dict[str, Any], SessionCarry]:
    """Session columns for new rows (see the module docstring)."""
    n = minute.size
    if n == 0:
        return {}, carry
    if n <= SMALL:
        act_min, starts, start_min = _session_starts_small(
            minute, active, bucket_us, idle_gap_us, carry
        )
    else:
        prev_active = np.empty(n, dtype=np.int64)
        act_min = _ffill(minute, active, carry.last_active_minute)
        prev_active[0] = -1 if carry.last_active_minute is None else carry.last_active_minute
        prev_active[1:] = act_min[:-1]
        gap_ok = (prev_active < 0) | ((minute - prev_active - 1) * bucket_us >= idle_gap_us)
        starts = active & gap_ok
        if carry.session_start_minute is None:
            first_open = np.zeros(n, dtype=bool)
            first_open[0] = True
            starts |= first_open
        start_min = _ffill(minute, starts, carry.session_start_minute)
    # title repeats within sessions, seeded by the carried counts of the open session
    rep = pair_cumcount(start_min, titles)
    if carry.session_start_minute is not None and carry.titles:
        same = start_min == carry.session_start_minute
        rep[same] += np.array([carry.titles.get(t, 0) for t in titles[same]], dtype=np.int64)
    last_start = int(start_min[-1])
    in_last = start_min == last_start
    counts: dict[str, int] = dict(carry.titles) if carry.session_start_minute == last_start else {}
    for t in titles[in_last].tolist():
        counts[t] = counts.get(t, 0) + 1
    new_carry = replace(
        carry,
        last_active_minute=int(act_min[-1]) if act_min[-1] >= 0 else None,
        session_start_minute=last_start,
        titles=counts,
    )
    cols = {
        "session_start": start_min,
        "session_length_so_far": ((minute + 1) - start_min) * (bucket_us / 1e6),
        "idle_return_indicator": starts & active,
        "title_repeat_count_session": rep,
    }
    return cols, new_carry


def _session_starts_small(
    minute: I64, active: BoolArr, bucket_us: int, idle_gap_us: int, carry: SessionCarry
) -> tuple[I64, BoolArr, I64]:
    """Last active minute, session start flag and session start per row, row by row.

    The plain-Python form of the vector code in :func:`session_fold` (same sentinels: -1 for
    "none yet"), for a few rows.
    """
    last = -1 if carry.last_active_minute is None else carry.last_active_minute
    start = -1 if carry.session_start_minute is None else carry.session_start_minute
    act: list[int] = []
    flags: list[bool] = []
    smin: list[int] = []
    for i, (m, a) in enumerate(zip(minute.tolist(), active.tolist(), strict=True)):
        s = a and (last < 0 or (m - last - 1) * bucket_us >= idle_gap_us)
        if i == 0 and carry.session_start_minute is None:
            s = True
        if s:
            start = m
        if a:
            last = m
        act.append(last)
        flags.append(bool(s))
        smin.append(start)
    return (
        np.array(act, dtype=np.int64),
        np.array(flags, dtype=bool),
        np.array(smin, dtype=np.int64),
    )


def session_ids(start_min: I64, bucket_us: int) -> NDArray[np.object_]:
    """``s-YYYYMMDDTHHMMZ`` ids of session start buckets (object array of ``str``)."""
    if start_min.size <= SMALL:  # online: one row, nearly always the same session as before
        few = np.empty(start_min.size, dtype=object)
        few[:] = [_session_name(m, bucket_us) for m in start_min.tolist()]
        return few
    starts, inv = np.unique(start_min, return_inverse=True)
    names = np.empty(starts.size, dtype=object)
    for i, m in enumerate(starts.tolist()):
        names[i] = _session_name(m, bucket_us)
    out: NDArray[np.object_] = names[inv.reshape(-1)]
    return out


@lru_cache(maxsize=256)
def _session_name(start_bucket: int, bucket_us: int) -> str:
    t = datetime.fromtimestamp(start_bucket * bucket_us / 1e6, tz=UTC)
    return "s-" + t.strftime("%Y%m%dT%H%M%SZ" if t.second else "%Y%m%dT%H%MZ")


def run_fold(
    pieces: dict[str, Any],
    n_rows: int,
    dom_app: NDArray[np.object_],
    idle_gap_us: int,
    carry: RunCarry,
) -> tuple[I64, F64, RunCarry]:
    """``app_change_count`` and ``app_dwell_time_seconds`` per row, and the new carry."""
    change_count = np.zeros(n_rows, dtype=np.int64)
    dwell = np.zeros(n_rows, dtype=np.float64)
    m = pieces["start"].size
    if m == 0:
        return change_count, dwell, carry
    if m <= SMALL:
        return _run_fold_small(pieces, n_rows, dom_app, idle_gap_us, carry)
    order = np.argsort(pieces["start"], kind="stable")
    app = pieces["app"][order]
    start = pieces["start"][order]
    end = pieces["end"][order]
    row = pieces["row"][order]
    prev_app = np.empty(m, dtype=object)
    prev_end = np.empty(m, dtype=np.int64)
    prev_app[0] = carry.app
    prev_end[0] = -1 if carry.end is None else carry.end
    prev_app[1:] = app[:-1]
    prev_end[1:] = end[:-1]
    has_prev = np.ones(m, dtype=bool)
    has_prev[0] = carry.app is not None
    changed = has_prev & (app != prev_app)
    new_run = ~has_prev | changed | (start - prev_end >= idle_gap_us)
    run_start = _ffill(start, new_run, carry.run_start)
    np.add.at(change_count, row[changed], 1)
    is_dom = app == dom_app[row]
    last_of_row = np.zeros(m, dtype=bool)
    idx = np.flatnonzero(is_dom)
    if idx.size:
        r = row[idx]
        last = np.ones(idx.size, dtype=bool)
        last[:-1] = r[1:] != r[:-1]
        # pieces are in time order and rows are buckets in time order, so the last dominant
        # piece of a row is the last of its group
        last_of_row[idx[last]] = True
    dwell[row[last_of_row]] = (end[last_of_row] - run_start[last_of_row]) / 1e6
    new_carry = RunCarry(app=str(app[-1]), end=int(end[-1]), run_start=int(run_start[-1]))
    return change_count, dwell, new_carry


def _run_fold_small(
    pieces: dict[str, Any],
    n_rows: int,
    dom_app: NDArray[np.object_],
    idle_gap_us: int,
    carry: RunCarry,
) -> tuple[I64, F64, RunCarry]:
    """:func:`run_fold` piece by piece in plain Python (same comparisons), for a few pieces."""
    starts = pieces["start"].tolist()
    order = sorted(range(len(starts)), key=starts.__getitem__)  # stable, as the argsort
    apps, ends, rows = pieces["app"].tolist(), pieces["end"].tolist(), pieces["row"].tolist()
    change, dwell, (app, end, run_start) = fold_runs(
        [(starts[i], ends[i], apps[i], rows[i]) for i in order],
        n_rows,
        dom_app.tolist(),
        idle_gap_us,
        (
            carry.app,
            -1 if carry.end is None else carry.end,
            -1 if carry.run_start is None else carry.run_start,
        ),
    )
    new_carry = RunCarry(app=str(app), end=int(end), run_start=int(run_start))
    return np.array(change, dtype=np.int64), np.array(dwell, dtype=np.float64), new_carry


RunState = tuple[Any, int, int]  # (app, end, run start) of the last piece; app None: none yet


def fold_runs(
    pieces: Sequence[tuple[int, int, Any, int]],
    n_rows: int,
    doms: Sequence[Any],
    idle_gap_us: int,
    state: RunState,
) -> tuple[list[int], list[float], RunState]:
    """The app-run rule in plain Python: pieces ``(start, end, app, row)`` in time order.

    Returns per row ``app_change_count`` and ``app_dwell_time_seconds`` (of the row's last
    piece of its dominant app ``doms[row]``) and the state after the last piece. Used for a few
    pieces by :func:`run_fold` and for one minute by ``features._one``.
    """
    change = [0] * n_rows
    dwell = [0.0] * n_rows
    prev_app, prev_end, run_start = state
    has_prev = prev_app is not None
    for start, end, app, row in pieces:
        changed = has_prev and bool(app != prev_app)
        if not has_prev or changed or start - prev_end >= idle_gap_us:
            run_start = start
        if changed:
            change[row] += 1
        if bool(app == doms[row]):
            dwell[row] = (end - run_start) / 1e6  # the row's last dominant piece wins
        prev_app, prev_end, has_prev = app, end, True
    return change, dwell, (prev_app, prev_end, run_start)
