"""Interval algebra on integer microseconds and look-back window aggregation.

All times are int64 microseconds since the epoch, so coverage sums are exact whatever the
order of addition — the property that lets the online builder reproduce batch rows bit for bit.
Float aggregates are always summed in one fixed sequential order (see :func:`lookback_sum`).

Overlap resolution of window events (:func:`resolve_timeline`): at any instant the foreground
window is the covering event that started last (ties: the later in the canonical
``(start, event_id)`` order). This is local — the answer at time t depends only on the events
covering t — and does not depend on where an event ends, so a live event that is still growing
resolves the past exactly as the finished event does.

Complexity: everything here is O(n log n) in the number of intervals plus the number of
(interval, bucket) pieces; look-back windows cost O(K · rows) for a K-bucket window.
"""

from __future__ import annotations

import bisect
import heapq
import itertools

import numpy as np
from numpy.typing import NDArray

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
BoolArr = NDArray[np.bool_]

_EMPTY_I64: I64 = np.zeros(0, dtype=np.int64)
_SMALL = 16  # look-back sums over at most this many targets run in plain Python


def union_intervals(start: I64, end: I64) -> tuple[I64, I64]:
    """Merge intervals ``[start, end)`` (positive length) into sorted disjoint intervals.

    Touching intervals are merged too.
    """
    if start.size <= _SMALL:
        return _union_small(start, end)
    keep = end > start
    s, e = start[keep], end[keep]
    if s.size == 0:
        return _EMPTY_I64, _EMPTY_I64
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    run_end = np.maximum.accumulate(e)
    new = np.ones(s.size, dtype=bool)
    new[1:] = s[1:] > run_end[:-1]
    starts = s[new]
    last = np.flatnonzero(new)
    ends = np.maximum.reduceat(e, last) if last.size else _EMPTY_I64
    # reduceat gives the max within each group; groups are contiguous in start order
    return starts.astype(np.int64), np.asarray(ends, dtype=np.int64)


def _union_small(start: I64, end: I64) -> tuple[I64, I64]:
    """:func:`union_intervals` in plain Python (exact integers, same result)."""
    out_s: list[int] = []
    out_e: list[int] = []
    for s, e in sorted(p for p in zip(start.tolist(), end.tolist(), strict=True) if p[1] > p[0]):
        if out_e and s <= out_e[-1]:
            out_e[-1] = max(out_e[-1], e)
        else:
            out_s.append(s)
            out_e.append(e)
    if not out_s:
        return _EMPTY_I64, _EMPTY_I64
    return np.array(out_s, dtype=np.int64), np.array(out_e, dtype=np.int64)


def _covered(points: I64, s: I64, e: I64) -> BoolArr:
    """Whether each point lies inside the disjoint sorted intervals ``[s, e)``."""
    if s.size == 0:
        return np.zeros(points.size, dtype=bool)
    idx = np.searchsorted(s, points, side="right") - 1
    ok = idx >= 0
    out = np.zeros(points.size, dtype=bool)
    out[ok] = e[idx[ok]] > points[ok]
    return out


def subtract_intervals(a_s: I64, a_e: I64, b_s: I64, b_e: I64) -> tuple[I64, I64]:
    """``A \\ B`` for disjoint sorted interval sets A and B; disjoint sorted result."""
    if a_s.size == 0 or b_s.size == 0:
        return a_s, a_e
    points = np.unique(np.concatenate([a_s, a_e, b_s, b_e]))
    lo, hi = points[:-1], points[1:]
    keep = _covered(lo, a_s, a_e) & ~_covered(lo, b_s, b_e)
    return union_intervals(lo[keep], hi[keep])


def resolve_timeline(start: I64, end: I64) -> tuple[I64, I64, I64]:
    """Foreground segments of possibly overlapping events (latest start wins).

    Args:
        start: event starts, shape ``(n,)``, sorted in canonical event order.
        end: event ends, same shape; only events with ``end > start`` should be passed.

    Returns:
        ``(seg_start, seg_end, seg_event)``: disjoint segments sorted by start, each with the
        index of the event shown; adjacent segments of the same event are merged.
    """
    n = start.size
    if n == 0:
        return _EMPTY_I64, _EMPTY_I64, _EMPTY_I64
    run_end = np.maximum.accumulate(end)
    joins = np.zeros(n, dtype=bool)
    joins[1:] = start[1:] < run_end[:-1]
    cluster = np.cumsum(~joins) - 1
    sizes = np.bincount(cluster)
    simple = sizes[cluster] == 1
    seg_s = [start[simple]]
    seg_e = [end[simple]]
    seg_i = [np.flatnonzero(simple).astype(np.int64)]
    for c in np.flatnonzero(sizes > 1):
        members = np.flatnonzero(cluster == c)
        s, e, i = _sweep(start[members], end[members], members)
        seg_s.append(s)
        seg_e.append(e)
        seg_i.append(i)
    s_all = np.concatenate(seg_s)
    order = np.argsort(s_all, kind="stable")
    return s_all[order], np.concatenate(seg_e)[order], np.concatenate(seg_i)[order]


def _sweep(start: I64, end: I64, ids: NDArray[np.intp]) -> tuple[I64, I64, I64]:
    points = np.unique(np.concatenate([start, end])).tolist()
    st, en = start.tolist(), end.tolist()
    heap: list[tuple[int, int]] = []
    out_s: list[int] = []
    out_e: list[int] = []
    out_i: list[int] = []
    j, m = 0, len(st)
    for a, b in itertools.pairwise(points):
        while j < m and st[j] <= a:
            heapq.heappush(heap, (-j, en[j]))
            j += 1
        while heap and heap[0][1] <= a:
            heapq.heappop(heap)
        if not heap:
            continue
        win = -heap[0][0]
        if out_i and out_i[-1] == win and out_e[-1] == a:
            out_e[-1] = b
        else:
            out_s.append(a)
            out_e.append(b)
            out_i.append(win)
    idx = np.asarray(ids, dtype=np.int64)[np.asarray(out_i, dtype=np.int64)]
    return np.asarray(out_s, dtype=np.int64), np.asarray(out_e, dtype=np.int64), idx


def split_by_bucket(
    start: I64, end: I64, bucket_us: int, lo: int | None = None, hi: int | None = None
) -> tuple[NDArray[np.intp], I64, I64, I64]:
    """Split intervals into per-bucket pieces, optionally only buckets ``lo <= b < hi``.

    A zero-length interval gives one zero-length piece in the bucket of its start.

    Returns:
        ``(source_index, bucket, piece_start, piece_end)``, ordered by source then bucket.
    """
    first = start // bucket_us
    last = np.maximum(end - 1, start) // bucket_us
    if lo is not None and hi == lo + 1:  # one bucket: at most one piece per interval
        src1 = np.flatnonzero((first <= lo) & (last >= lo))
        p_s = np.maximum(start[src1], lo * bucket_us)
        p_e = np.maximum(np.minimum(end[src1], hi * bucket_us), p_s)
        return src1, np.full(src1.size, lo, dtype=np.int64), p_s, p_e
    if lo is not None:
        first = np.maximum(first, lo)
    if hi is not None:
        last = np.minimum(last, hi - 1)
    counts = np.maximum(last - first + 1, 0)
    total = int(counts.sum())
    src = np.repeat(np.arange(start.size), counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    bucket = first[src] + offsets
    p_start = np.maximum(start[src], bucket * bucket_us)
    p_end = np.minimum(end[src], (bucket + 1) * bucket_us)
    p_end = np.maximum(p_end, p_start)
    return src, bucket.astype(np.int64), p_start, p_end


def interval_stats(s: I64, e: I64, buckets: I64, bucket_us: int) -> tuple[I64, I64, BoolArr]:
    """Coverage of sorted buckets by disjoint sorted intervals ``[s, e)``.

    Returns:
        ``(covered_us, longest_run_us, any_overlap)`` per bucket.
    """
    n = buckets.size
    covered = np.zeros(n, dtype=np.int64)
    longest = np.zeros(n, dtype=np.int64)
    if s.size == 0 or n == 0:
        return covered, longest, np.zeros(n, dtype=bool)
    if n <= _SMALL and s.size <= _SMALL:
        return _interval_stats_small(s, e, buckets, bucket_us)
    b0 = buckets * bucket_us
    b1 = b0 + bucket_us
    first = np.searchsorted(e, b0, side="right")
    stop = np.searchsorted(s, b1, side="left")
    counts = np.maximum(stop - first, 0)
    row = np.repeat(np.arange(n), counts)
    k = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    iv = first[row] + k
    length = np.minimum(e[iv], b1[row]) - np.maximum(s[iv], b0[row])
    np.add.at(covered, row, length)
    np.maximum.at(longest, row, length)
    return covered, longest, counts > 0


def _interval_stats_small(s: I64, e: I64, buckets: I64, bucket_us: int) -> tuple[I64, I64, BoolArr]:
    """:func:`interval_stats` in plain Python (exact integers, same result)."""
    sl, el = s.tolist(), e.tolist()
    covered, longest, hit = [], [], []
    for b in buckets.tolist():
        b0 = b * bucket_us
        b1 = b0 + bucket_us
        first, stop = bisect.bisect_right(el, b0), bisect.bisect_left(sl, b1)
        cov = run = 0
        for iv in range(first, stop):
            length = min(el[iv], b1) - max(sl[iv], b0)
            cov += length
            run = max(run, length)
        covered.append(cov)
        longest.append(run)
        hit.append(stop > first)
    return (
        np.array(covered, dtype=np.int64),
        np.array(longest, dtype=np.int64),
        np.array(hit, dtype=bool),
    )


def lookback_index(minutes: I64, targets: NDArray[np.intp], k: int, window: int) -> I64:
    """Row index ``k`` steps back from each target if within ``window`` buckets, else -1.

    ``minutes`` are sorted unique bucket numbers of all rows (context then new rows).
    """
    idx = targets - k
    ok = idx >= 0
    out = np.full(targets.size, -1, dtype=np.int64)
    out[ok] = np.where(minutes[targets[ok]] - minutes[idx[ok]] < window, idx[ok], -1)
    return out


def lookback_sum(
    minutes: I64, values: F64, targets: NDArray[np.intp], window: int
) -> tuple[F64, I64]:
    """Sum and count of the non-NaN ``values`` of rows in the last ``window`` buckets.

    The window of target row t is the rows whose bucket is in ``(b_t - window, b_t]``. Values
    are added in one fixed order (the target row first, then backwards), so the result for a
    row depends only on the rows inside its window.
    """
    if targets.size <= _SMALL:
        return _lookback_sum_small(minutes, values, targets, window)
    total = np.zeros(targets.size, dtype=np.float64)
    count = np.zeros(targets.size, dtype=np.int64)
    for k in range(window):
        idx = lookback_index(minutes, targets, k, window)
        ok = idx >= 0
        if not ok.any():
            break
        v = np.where(ok, values[np.maximum(idx, 0)], np.nan)
        present = ~np.isnan(v)
        total = total + np.where(present, v, 0.0)
        count += present
    return total, count


def _lookback_sum_small(
    minutes: I64, values: F64, targets: NDArray[np.intp], window: int
) -> tuple[F64, I64]:
    """:func:`lookback_sum` in plain Python, for a few targets (same additions, same order).

    Skipping the ``+ 0.0`` the vector version adds for missing values keeps every sum
    identical: a running total that starts at +0.0 is never -0.0.
    """
    mins, vals = minutes.tolist(), values.tolist()
    totals: list[float] = []
    counts: list[int] = []
    for t in targets.tolist():
        total, count = 0.0, 0
        for i in range(t, max(t - window, -1), -1):
            if mins[t] - mins[i] >= window:
                break
            v = vals[i]
            if v == v:  # not NaN
                total = total + v
                count += 1
        totals.append(total)
        counts.append(count)
    return np.array(totals, dtype=np.float64), np.array(counts, dtype=np.int64)


def app_window_stats(
    minutes: I64,
    app_row: NDArray[np.intp],
    app_code: I64,
    app_us: I64,
    targets: NDArray[np.intp],
    window: int,
) -> tuple[F64, F64]:
    """Entropy (nats) of app time and top-2 concentration over the last ``window`` buckets.

    Args:
        minutes: bucket numbers of all rows, sorted.
        app_row, app_code, app_us: long table of (row, app, microseconds); ``app_code`` must
            follow the lexical order of app ids so terms are summed in a fixed order.
        targets: rows to compute (ascending).
        window: window length in buckets.

    Returns:
        ``(entropy, top2)`` per target; NaN where the window holds no app time.
    """
    n_t = targets.size
    entropy = np.full(n_t, np.nan)
    top2 = np.full(n_t, np.nan)
    if app_row.size == 0 or n_t == 0:
        return entropy, top2
    if n_t <= _SMALL:
        for i, t in enumerate(targets.tolist()):
            entropy[i], top2[i] = _app_window_one(minutes, app_row, app_code, app_us, t, window)
        return entropy, top2
    pos = np.full(minutes.size, -1, dtype=np.int64)
    pos[targets] = np.arange(n_t)
    parts_t: list[I64] = []
    parts_a: list[I64] = []
    parts_u: list[I64] = []
    for k in range(window):
        tgt = app_row + k
        ok = tgt < minutes.size
        ok[ok] = (pos[tgt[ok]] >= 0) & (minutes[tgt[ok]] - minutes[app_row[ok]] < window)
        parts_t.append(pos[tgt[ok]])
        parts_a.append(app_code[ok])
        parts_u.append(app_us[ok])
    t = np.concatenate(parts_t)
    a = np.concatenate(parts_a)
    u = np.concatenate(parts_u)
    if t.size == 0:
        return entropy, top2
    n_apps = int(app_code.max()) + 1
    # each k-part is sorted by (target, app); a stable sort merges the runs cheaply
    flat = t * n_apps + a
    order = np.argsort(flat, kind="stable")
    flat = flat[order]
    first = np.ones(flat.size, dtype=bool)
    first[1:] = flat[1:] != flat[:-1]
    key = flat[first]
    sums = np.add.reduceat(u[order], np.flatnonzero(first))  # int64: exact in any order
    g_t = key // n_apps
    totals = np.bincount(g_t, weights=sums, minlength=n_t)
    p = sums / totals[g_t]
    terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    has = totals > 0
    acc = np.zeros(n_t)
    group_start = np.searchsorted(g_t, np.arange(n_t))
    rank = np.arange(g_t.size) - group_start[g_t]
    for j in range(int(rank.max()) + 1):
        sel = rank == j
        acc[g_t[sel]] += terms[sel]
    entropy[has] = acc[has] + 0.0
    order = np.lexsort((-sums, g_t))
    r_sorted = np.arange(order.size) - group_start[g_t[order]]
    top_sum = np.bincount(
        g_t[order][r_sorted < 2], weights=sums[order][r_sorted < 2], minlength=n_t
    )
    top2[has] = np.minimum(top_sum[has] / totals[has], 1.0)
    return entropy, top2


def _app_window_one(
    minutes: I64, app_row: NDArray[np.intp], app_code: I64, app_us: I64, t: int, window: int
) -> tuple[float, float]:
    """:func:`app_window_stats` of one target row, with the same additions in the same order."""
    lo = t
    while lo > 0 and lo > t - window + 1 and minutes[t] - minutes[lo - 1] < window:
        lo -= 1
    sel = (app_row >= lo) & (app_row <= t)
    by_app: dict[int, int] = {}
    for a, u in zip(app_code[sel].tolist(), app_us[sel].tolist(), strict=True):
        by_app[a] = by_app.get(a, 0) + u
    sums = [by_app[a] for a in sorted(by_app)]
    total = 0.0
    for v in sums:
        total += float(v)
    if not total > 0:  # also when no row of the window has app time
        return np.nan, np.nan
    p = np.array(sums, dtype=np.int64) / np.array([total])
    terms = np.where(p > 0, -p * np.log(np.where(p > 0, p, 1.0)), 0.0)
    acc = 0.0
    for term in terms.tolist():
        acc += term
    top = sorted(sums, reverse=True)[:2]
    top_sum = 0.0
    for v in top:
        top_sum += float(v)
    return acc + 0.0, min(top_sum / total, 1.0)
