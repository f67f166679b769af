"""Segments as parallel arrays: the fast core of ``smooth.segmentize`` / ``merge_short_segments``.

Batch inference produces tens of thousands of segments per million minutes; building a
pydantic :class:`~taskclf.infer.smooth.Segment` per segment (twice: before and after merging)
cost more than every other post-model step together. Here segments stay integers and labels in
arrays until the caller asks for objects (``smooth.segments_from_table``).

The rules are exactly those documented in :mod:`taskclf.infer.smooth`; the merge is the same
greedy algorithm (shortest short segment first, ties the earliest; absorbed by the longer
neighbour, ties the previous; same-label neighbours coalesce), run per contiguous run.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from taskclf.core.errors import InputError

_NS = 1_000_000_000


@dataclass(frozen=True)
class SegmentTable:
    """Segments ordered by user (``None`` first) then start; one entry per segment.

    Attributes:
        user: User id of each segment (``None`` when computed without user ids).
        start_ns, end_ns: Start (inclusive) and end (exclusive), ns since the epoch (UTC).
        label: Label of each segment.
        bucket_count: Minutes in each segment.
    """

    user: list[str | None]
    start_ns: NDArray[np.int64]
    end_ns: NDArray[np.int64]
    label: list[str]
    bucket_count: NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.label)


def table_from_sorted(
    user_codes: NDArray[np.intp],
    user_uniques: list[str | None],
    starts_ns: NDArray[np.int64],
    labels: NDArray[Any],
    *,
    bucket_seconds: int,
    idle_gap_seconds: float,
    names: Sequence[str] | None = None,
) -> SegmentTable:
    """Segments of minutes sorted by (user, start) with no duplicate minute of one user.

    ``labels`` are label strings, or integer codes into ``names`` when that is given.

    A segment ends when the label or the user changes, or at a gap longer than the idle gap
    (measured from the end of the previous minute).
    """
    n = len(labels)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return SegmentTable([], empty, empty.copy(), [], empty.copy())
    bucket_ns = np.int64(bucket_seconds) * _NS
    breaks = np.empty(n, dtype=bool)
    breaks[0] = True
    gap = np.diff(starts_ns) - bucket_ns
    breaks[1:] = (
        (gap > np.int64(round(idle_gap_seconds * _NS)))
        | (user_codes[1:] != user_codes[:-1])
        | (labels[1:] != labels[:-1])
    )
    firsts = np.flatnonzero(breaks)
    lasts = np.append(firsts[1:], n) - 1
    codes = user_codes[firsts].tolist()
    return SegmentTable(
        user=[user_uniques[c] for c in codes],
        start_ns=starts_ns[firsts],
        end_ns=starts_ns[lasts] + bucket_ns,
        label=(
            labels[firsts].tolist()
            if names is None
            else [names[c] for c in labels[firsts].tolist()]
        ),
        bucket_count=(lasts - firsts + 1).astype(np.int64),
    )


def merge_short(
    table: SegmentTable, min_block_seconds: float, *, idle_gap_seconds: float
) -> SegmentTable:
    """``merge_short_segments`` on a table ordered by user then start (see module docs).

    Raises:
        InputError: Two segments of one user overlap.
    """
    n = len(table)
    if min_block_seconds <= 0 or n < 2:
        return table
    start, end = table.start_ns, table.end_ns
    users = table.user
    same_user = np.fromiter(
        (users[i] == users[i - 1] for i in range(1, n)), dtype=bool, count=n - 1
    )
    overlap = np.flatnonzero(same_user & (start[1:] < end[:-1]))
    if overlap.size:
        i = int(overlap[0]) + 1
        raise InputError(
            f"segments of user {users[i]!r} overlap: [{_iso(start[i - 1])}, {_iso(end[i - 1])}) "
            f"and [{_iso(start[i])}, {_iso(end[i])}); segments must partition the minutes"
        )
    joined = same_user & (start[1:] - end[:-1] <= np.int64(round(idle_gap_seconds * _NS)))
    run_firsts = np.flatnonzero(np.concatenate([[True], ~joined]))
    run_ends = np.append(run_firsts[1:], n)
    min_ns = float(min_block_seconds) * _NS
    short = (end - start).astype(np.float64) < min_ns
    # only runs of >= 2 segments that contain a short one can change
    short_before = np.concatenate([[0], np.cumsum(short)])
    changing = (run_ends - run_firsts >= 2) & (short_before[run_ends] > short_before[run_firsts])
    if not changing.any():
        return table
    out_user: list[str | None] = []
    out_start: list[int] = []
    out_end: list[int] = []
    out_label: list[str] = []
    out_count: list[int] = []
    starts_l, ends_l = start.tolist(), end.tolist()
    counts_l = table.bucket_count.tolist()
    labels_l = table.label
    copied = 0
    for a, b in zip(run_firsts[changing].tolist(), run_ends[changing].tolist(), strict=True):
        if copied < a:  # unchanged segments before this run
            out_user += users[copied:a]
            out_start += starts_l[copied:a]
            out_end += ends_l[copied:a]
            out_label += labels_l[copied:a]
            out_count += counts_l[copied:a]
        s, e, lab, cnt = starts_l[a:b], ends_l[a:b], labels_l[a:b], counts_l[a:b]
        alive = _merge_run(s, e, lab, cnt, min_ns)
        for k in alive:
            out_start.append(s[k])
            out_end.append(e[k])
            out_label.append(lab[k])
            out_count.append(cnt[k])
        out_user += [users[a]] * len(alive)
        copied = b
    out_user += users[copied:]
    out_start += starts_l[copied:]
    out_end += ends_l[copied:]
    out_label += labels_l[copied:]
    out_count += counts_l[copied:]
    return SegmentTable(
        user=out_user,
        start_ns=np.asarray(out_start, dtype=np.int64),
        end_ns=np.asarray(out_end, dtype=np.int64),
        label=out_label,
        bucket_count=np.asarray(out_count, dtype=np.int64),
    )


def _merge_run(
    start: list[int], end: list[int], label: list[str], count: list[int], min_ns: float
) -> list[int]:
    """Greedy merge inside one contiguous run (lists updated in place); surviving indices."""
    n = len(start)
    alive = [True] * n
    prev = list(range(-1, n - 1))
    nxt = [*range(1, n), -1]
    version = [0] * n
    heap = [(end[i] - start[i], i, 0) for i in range(n) if end[i] - start[i] < min_ns]
    heapq.heapify(heap)

    def absorb(target: int, victim: int) -> None:
        start[target] = min(start[target], start[victim])
        end[target] = max(end[target], end[victim])
        count[target] += count[victim]
        alive[victim] = False
        p, q = prev[victim], nxt[victim]
        if p >= 0:
            nxt[p] = q
        if q >= 0:
            prev[q] = p

    while heap:
        _, i, ver = heapq.heappop(heap)
        if not alive[i] or ver != version[i]:
            continue
        p, q = prev[i], nxt[i]
        if p < 0 and q < 0:
            continue  # alone in its run: stays as it is
        if p < 0:
            target = q
        elif q < 0:
            target = p
        else:
            target = q if end[q] - start[q] > end[p] - start[p] else p
        absorb(target, i)
        for other in (prev[target], nxt[target]):
            if other >= 0 and alive[other] and label[other] == label[target]:
                absorb(target, other)
        version[target] += 1
        duration = end[target] - start[target]
        if duration < min_ns:
            heapq.heappush(heap, (duration, target, version[target]))
    return [i for i in range(n) if alive[i]]


def _iso(value: np.int64 | int) -> str:
    seconds, rem = divmod(int(value), _NS)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=rem // 1000).isoformat()
