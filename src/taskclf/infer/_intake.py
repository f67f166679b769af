"""A poll's server events straight into the online buffer (``FeatureState.add_buckets``).

The same normalization as ``adapters.activitywatch.events.normalize_records`` — the same
helpers for window apps and titles, AFK status, tab domains, input counts and event ids,
the same merge rule (one row per event id: the latest end, the later on ties) and the same
canonical ``(start, event_id)`` order per kind — but each event goes straight to the
buffer's encoded row (string codes, input counts as floats), without the record dicts and
columns feature building never reads. Input events keep their raw counts here; the derived
values (mouse distance with numpy's ``hypot``, scroll, activity flags) are computed for the
whole poll by one compiled call, as ``features._event_lists`` computes them from records.
Tested equal, buffer for buffer, to ``FeatureState.add_records(normalize_records(...))``.
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from taskclf.adapters.activitywatch.events import (
    INPUT_KEYS,
    KIND_OF_TYPE,
    event_id,
    input_counts,
    title_row,
    web_identity,
    window_fields,
)
from taskclf.adapters.activitywatch.export import AWEvent, ParsedBucket
from taskclf.adapters.activitywatch.mapping import AppInfo
from taskclf.core._jit import njit
from taskclf.features._buffer import EventBuffer, EventId
from taskclf.features.domain import domain_category
from taskclf.features.text import TitleFeatures

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
_N_RAW = len(INPUT_KEYS)
_START_ID = operator.itemgetter(0, 1)
_MAX_TABS = 1024


@njit
def _derive_row(raw: F64, i: int, out: F64, r: int) -> None:
    """Raw counts ``raw[i]`` (presses, clicks, dx, dy, scroll x, scroll y, backspaces,
    shortcuts; NaN when missing, signs as sent) -> the buffer's input values ``out[r]``
    (presses, clicks, distance, scroll, backspaces, shortcuts, keyboard flag, mouse flag)
    of their absolute values."""
    presses, clicks = abs(raw[i, 0]), abs(raw[i, 1])
    distance = math.hypot(abs(raw[i, 2]), abs(raw[i, 3]))  # libm's hypot, as np.hypot
    sx, sy = abs(raw[i, 4]), abs(raw[i, 5])
    if sx != sx and sy != sy:
        scroll = np.nan
    else:
        scroll = (0.0 if sx != sx else sx) + (0.0 if sy != sy else sy)
    out[r, 0], out[r, 1], out[r, 2], out[r, 3] = presses, clicks, distance, scroll
    out[r, 4], out[r, 5] = abs(raw[i, 6]), abs(raw[i, 7])
    out[r, 6] = 1.0 if presses > 0 else 0.0
    out[r, 7] = 1.0 if (clicks > 0 or distance > 0 or scroll > 0) else 0.0


@njit
def derive_inputs(raw: F64) -> F64:
    """The buffer's input values of each row of raw counts (see ``_derive_row``)."""
    out = np.empty((raw.shape[0], 8))
    for i in range(raw.shape[0]):
        _derive_row(raw, i, out, i)
    return out


@njit
def place_inputs(
    ints: I64,
    floats: F64,
    n: int,
    last: int,
    starts: I64,
    ends: I64,
    srcs: I64,
    raw: F64,
    order: I64,
) -> int:
    """A poll's input events as buffer rows ``n, n + 1, ...`` in start order (``order[k]``:
    the poll's index of row ``n + k``); returns their longest duration. Returns -1, and
    writes nothing, unless every start is after ``last`` and no two are equal (then the
    rows need their ids: the general path)."""
    m = starts.size
    idx = np.argsort(starts)
    prev = last
    for k in range(m):
        s = starts[idx[k]]
        if s <= prev:
            return -1
        prev = s
    longest = 0
    for k in range(m):
        i = idx[k]
        order[k] = i
        r = n + k
        ints[r, 0], ints[r, 1], ints[r, 2] = starts[i], ends[i], srcs[i]
        d = ends[i] - starts[i]
        if d > longest:
            longest = d
        _derive_row(raw, i, floats, r)
    return longest


class PollIntake:
    """Normalizes polls into one :class:`~taskclf.features._buffer.EventBuffer`.

    Remembers the string codes of apps, categories and domains it has seen (drop them with
    :meth:`forget_codes` when the buffer's string table is renumbered).
    """

    def __init__(
        self, buffer: EventBuffer, secret: bytes, features: dict[str, TitleFeatures]
    ) -> None:
        self.buffer = buffer
        self.secret = secret
        self.features = features  # title hash -> its features, for the row's title columns
        self._apps: dict[AppInfo, tuple[int, int]] = {}
        self._codes: dict[str, int] = {}
        # (url, tab title) -> identity, domain code: memory only, like the title cache
        self._tabs: dict[tuple[Any, Any], tuple[str, int]] = {}

    def forget_codes(self) -> None:
        self._apps = {}
        self._codes = {}
        self._tabs = {}

    def _code(self, value: str) -> int:
        got = self._codes.get(value)
        if got is None:
            got = self._codes[value] = self.buffer.strings.code(value)
        return got

    def add(
        self, buckets: Iterable[ParsedBucket], titles: dict[str, TitleFeatures] | None
    ) -> int | None:
        """Add a poll's events; return the earliest start added (None when there was none)."""
        cache: dict[str, TitleFeatures] = {} if titles is None else titles
        secret, code = self.secret, self._code
        staged: dict[str, list[tuple[Any, ...]]] = {"window": [], "afk": [], "web": []}
        inputs: list[tuple[int, str, tuple[AWEvent, ...]]] = []
        table = self.buffer.titles
        new_titles: dict[str, tuple[Any, ...]] = {}
        for bucket in buckets:
            kind = KIND_OF_TYPE[bucket.bucket_type]
            source = bucket.bucket_id
            src = code(source)
            if kind == "input":
                inputs.append((src, source, bucket.events))
                continue
            add = staged[kind].append
            if kind == "window":
                for ev in bucket.events:
                    name, info, feats = window_fields(ev.data, cache, secret)
                    apps = self._apps.get(info)
                    if apps is None:
                        apps = self._apps[info] = (code(info.app_id), code(info.category))
                    h = feats.title_hash
                    if h not in table and h not in new_titles:
                        new_titles[h] = title_row(feats)
                        self.features[h] = feats
                    start = ev.start_us
                    eid = event_id(kind, source, start, f"{name}\x1f{h}")
                    add((start, eid, start + ev.duration_us, src, apps[0], code(h), apps[1]))
            elif kind == "afk":
                for ev in bucket.events:
                    status = str(ev.data["status"])
                    start = ev.start_us
                    eid = event_id(kind, source, start, status)
                    add((start, eid, start + ev.duration_us, src, 1 if status == "not-afk" else 0))
            else:
                tabs = self._tabs
                for ev in bucket.events:
                    data = ev.data
                    key = (data.get("url"), data.get("title"))
                    tab = tabs.get(key)
                    if tab is None:
                        if len(tabs) > _MAX_TABS:
                            tabs.clear()
                        url, _, identity = web_identity(data, secret)
                        tab = tabs[key] = (identity, code(domain_category(url)))
                    start = ev.start_us
                    eid = event_id(kind, source, start, tab[0])
                    add((start, eid, start + ev.duration_us, src, tab[1]))
        if new_titles:
            table.update(new_titles)
        first = self._add_inputs(inputs) if inputs else None
        for kind, rows in staged.items():
            if not rows:
                continue
            if len({r[1] for r in rows}) < len(rows):
                rows = _latest_per_id(rows)
            rows.sort(key=_START_ID)
            ints = [[r[0], r[2], *r[3:]] for r in rows]
            self.buffer.add_encoded(kind, ints, None, [r[1] for r in rows])
            first = rows[0][0] if first is None else min(first, rows[0][0])
        return first

    def _add_inputs(self, inputs: list[tuple[int, str, tuple[AWEvent, ...]]]) -> int:
        """Add a poll's input events (bucket code, bucket id, events); the earliest start.

        Usually every event starts after the buffered ones, at distinct times: one compiled
        call writes them in place and their ids stay lazy. Otherwise the ids that decide
        order and merging are computed and the buffer merges the rows.
        """
        starts: list[int] = []
        ends: list[int] = []
        srcs: list[int] = []
        sources: list[str] = []
        flat: list[Any] = []  # the INPUT_KEYS values of each event, one event after another
        extend = flat.extend
        for src, source, events in inputs:
            for ev in events:
                start = ev.start_us
                starts.append(start)
                ends.append(start + ev.duration_us)
                extend(map(ev.data.get, INPUT_KEYS))
            srcs += [src] * len(events)
            sources += [source] * len(events)
        m = len(starts)
        raw = _raw_counts(flat).reshape(m, _N_RAW)
        batch = _InputIds(sources, starts, flat)
        ints, floats, n, last = self.buffer.tail("input", m)
        order = np.empty(m, dtype=np.int64)
        start_arr = np.array(starts, dtype=np.int64)
        end_arr = np.array(ends, dtype=np.int64)
        src_arr = np.array(srcs, dtype=np.int64)
        longest = place_inputs(ints, floats, n, last, start_arr, end_arr, src_arr, raw, order)
        if longest >= 0:
            self.buffer.commit_lazy("input", [(batch, j) for j in order.tolist()], longest)
            return min(starts)
        js, ids = _input_order(starts, ends, batch)
        rows = [[starts[j], ends[j], srcs[j]] for j in js]
        self.buffer.add_encoded("input", rows, derive_inputs(raw[js]), ids)
        return starts[js[0]]


class _InputIds:
    """The ids of a poll's input events, each computed when asked (``_buffer.LazyId``)."""

    __slots__ = ("flat", "sources", "starts")

    def __init__(self, sources: list[str], starts: list[int], flat: list[Any]) -> None:
        self.sources, self.starts, self.flat = sources, starts, flat

    def id_at(self, j: int) -> str:
        raw = self.flat[_N_RAW * j : _N_RAW * (j + 1)]
        return event_id("input", self.sources[j], self.starts[j], input_counts(raw)[1])


def _input_order(
    starts: list[int], ends: list[int], batch: _InputIds
) -> tuple[list[int], list[EventId]]:
    """A poll's input events in canonical order, one per id: their indices and ids.

    Only events starting together can share an id or need theirs to be ordered: without
    such a tie the ids stay lazy; with one, every id of the poll is computed and the merge
    rule and order of ``normalize_records`` apply.
    """
    order = sorted(range(len(starts)), key=starts.__getitem__)
    if all(starts[a] < starts[b] for a, b in itertools.pairwise(order)):
        return order, [(batch, j) for j in order]
    exact = [(starts[j], batch.id_at(j), ends[j], j) for j in order]
    if len({r[1] for r in exact}) < len(exact):
        exact = _latest_per_id(exact)
    exact.sort(key=_START_ID)
    return [r[3] for r in exact], [r[1] for r in exact]


def _raw_counts(flat: list[Any]) -> F64:
    """Raw input counts as float64 (None -> NaN), exactly as ``float(v)`` converts them."""
    try:
        return np.array(flat, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return np.array([float(v) if v is not None else np.nan for v in flat])


def _latest_per_id(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per event id: the latest end, the later row on ties (``dedupe_records``)."""
    latest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        before = latest.get(row[1])
        if before is None or row[2] >= before[2]:
            latest[row[1]] = row
    return list(latest.values())
