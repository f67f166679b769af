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
from taskclf.adapters.activitywatch.export import ParsedBucket
from taskclf.adapters.activitywatch.mapping import AppInfo
from taskclf.core._jit import njit
from taskclf.features._buffer import EventBuffer
from taskclf.features.domain import domain_category
from taskclf.features.text import TitleFeatures

F64 = NDArray[np.float64]
_START_ID = operator.itemgetter(0, 1)
_START = operator.itemgetter(0)
_MAX_TABS = 1024


@njit
def derive_inputs(raw: F64) -> F64:
    """Raw counts (presses, clicks, dx, dy, scroll x, scroll y, backspaces, shortcuts; NaN
    when missing, signs as sent) -> the buffer's input values (presses, clicks, distance,
    scroll, backspaces, shortcuts, keyboard flag, mouse flag) of their absolute values."""
    out = np.empty((raw.shape[0], 8))
    for i in range(raw.shape[0]):
        presses, clicks = abs(raw[i, 0]), abs(raw[i, 1])
        distance = math.hypot(abs(raw[i, 2]), abs(raw[i, 3]))  # libm's hypot, as np.hypot
        sx, sy = abs(raw[i, 4]), abs(raw[i, 5])
        if sx != sx and sy != sy:
            scroll = np.nan
        else:
            scroll = (0.0 if sx != sx else sx) + (0.0 if sy != sy else sy)
        out[i, 0], out[i, 1], out[i, 2], out[i, 3] = presses, clicks, distance, scroll
        out[i, 4], out[i, 5] = abs(raw[i, 6]), abs(raw[i, 7])
        out[i, 6] = 1.0 if presses > 0 else 0.0
        out[i, 7] = 1.0 if (clicks > 0 or distance > 0 or scroll > 0) else 0.0
    return out


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
        staged: dict[str, list[tuple[Any, ...]]] = {"window": [], "afk": [], "input": [], "web": []}
        table = self.buffer.titles
        new_titles: dict[str, tuple[Any, ...]] = {}
        for bucket in buckets:
            kind = KIND_OF_TYPE[bucket.bucket_type]
            source = bucket.bucket_id
            src = code(source)
            add = staged[kind].append
            if kind == "input":  # the id is computed only if needed (``_buffer.LazyId``)
                for ev in bucket.events:
                    start = ev.start_us
                    raw = list(map(ev.data.get, INPUT_KEYS))
                    add((start, None, start + ev.duration_us, src, raw, source))
            elif kind == "window":
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
        first: int | None = None
        for kind, rows in staged.items():
            if not rows:
                continue
            if kind == "input":
                rows = _input_order(rows)
                ints = [[r[0], r[2], r[3]] for r in rows]
                floats = derive_inputs(_raw_counts([r[4] for r in rows]))
                self.buffer.add_encoded(kind, ints, floats, [r[1] for r in rows])
                first = rows[0][0] if first is None else min(first, rows[0][0])
                continue
            if len({r[1] for r in rows}) < len(rows):
                rows = _latest_per_id(rows)
            rows.sort(key=_START_ID)
            ints = [[r[0], r[2], *r[3:]] for r in rows]
            self.buffer.add_encoded(kind, ints, None, [r[1] for r in rows])
            first = rows[0][0] if first is None else min(first, rows[0][0])
        return first


class _InputId:
    """The id of an input event, computed when asked (see ``_buffer.LazyId``)."""

    __slots__ = ("raw", "source", "start")

    def __init__(self, source: str, start: int, raw: list[Any]) -> None:
        self.source, self.start, self.raw = source, start, raw

    def resolve(self) -> str:
        return event_id("input", self.source, self.start, input_counts(self.raw)[1])


def _input_order(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """A poll's input events in canonical order, one per id, ids lazy where they may be.

    Only events starting together can share an id or need theirs to be ordered: without
    such a tie the ids stay lazy; with one, every id of the poll is computed and the merge
    rule and order of ``normalize_records`` apply.
    """
    rows.sort(key=_START)
    starts = [r[0] for r in rows]
    if all(a < b for a, b in itertools.pairwise(starts)):
        return [(r[0], _InputId(r[5], r[0], r[4]), r[2], r[3], r[4]) for r in rows]
    exact = [(r[0], event_id("input", r[5], r[0], input_counts(r[4])[1]), *r[2:5]) for r in rows]
    if len({r[1] for r in exact}) < len(exact):
        exact = _latest_per_id(exact)
    exact.sort(key=_START_ID)
    return exact


def _raw_counts(raws: list[list[Any]]) -> F64:
    """Raw input counts as float64 (None -> NaN), exactly as ``float(v)`` converts them."""
    try:
        return np.array(raws, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return np.array([[float(v) if v is not None else np.nan for v in r] for r in raws])


def _latest_per_id(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """One row per event id: the latest end, the later row on ties (``dedupe_records``)."""
    latest: dict[str, tuple[Any, ...]] = {}
    for row in rows:
        before = latest.get(row[1])
        if before is None or row[2] >= before[2]:
            latest[row[1]] = row
    return list(latest.values())
