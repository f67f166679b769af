"""The online builder's event buffer: one user's recent events as typed arrays.

Each kind's events are rows of an ``int64`` matrix (start, end, source, then the kind's own
codes) in canonical ``(start, event_id)`` order, strings replaced by codes of one
:class:`~taskclf.features._strings.Interned` table, so the compiled online minute
(``features._kernel``) reads them directly. Input events' values are a ``float64`` matrix
beside them. The event ids stay in Python (``ids``), for the merge rule of event
normalization: the same ``event_id`` keeps the later end (the newer on ties).

Columns (:data:`INT_COLUMNS`, :data:`INPUT_FLOATS`): window ``start, end, src, app, title,
cat``; afk ``start, end, src, notafk``; input ``start, end, src`` and ``presses, clicks,
distance, scroll, backspaces, shortcuts, kb, mouse``; web ``start, end, src, dom``.

Live rows of a kind are ``[lo, n)``: pruning the oldest events moves ``lo`` and the rows are
moved down only when the dead prefix is half the capacity.

An event id may be given lazily (:data:`LazyId`: what computes it), as the online intake
does for input events: ids only decide the order of events that start at the same time and
which rows are the same event, and both need a shared start. So a lazy id is computed
(:meth:`IdSource.id_at`) only when an event starts where a buffered one does, or for
:meth:`EventBuffer.arrays`; events that all start after the buffered ones are appended as
they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import numpy as np
from numpy.typing import NDArray

from taskclf.core._jit import njit
from taskclf.features._event_lists import KINDS, LIST_COLUMNS, Lists, Titles
from taskclf.features._strings import Interned

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]

INT_COLUMNS: Final[dict[str, tuple[str, ...]]] = {
    "window": ("start", "end", "src", "app", "title", "cat"),
    "afk": ("start", "end", "src", "notafk"),
    "input": ("start", "end", "src"),
    "web": ("start", "end", "src", "dom"),
}
INPUT_FLOATS: Final = (
    "presses", "clicks", "distance", "scroll", "backspaces", "shortcuts", "kb", "mouse"
)  # fmt: skip
KIND_INDEX: Final = {kind: i for i, kind in enumerate(KINDS)}
_STRING_COLUMNS: Final = ("src", "app", "title", "cat", "dom")
_CAPACITY = 64
NO_START: Final = -(2**63)  # below every event start


class IdSource(Protocol):
    """What computes the ids of some events, by their index there."""

    def id_at(self, j: int) -> str: ...


#: An event id not computed yet: ``(source, j)`` is ``source.id_at(j)``.
LazyId = tuple[IdSource, int]
EventId = str | LazyId


def resolved(ids: list[EventId]) -> list[str]:
    """``ids`` with every lazy id computed (in place; returned for convenience)."""
    for j, i in enumerate(ids):
        if not isinstance(i, str):
            ids[j] = i[0].id_at(i[1])
    return ids  # type: ignore[return-value]


@njit
def _prune_plans(w: I64, a: I64, inp: I64, web: I64, spans: I64, horizon: int, out: I64) -> None:
    """:func:`_prune_plan` of each kind (``spans[k] = lo, n``) into ``out[k]``."""
    for k in range(4):
        rows = w if k == 0 else (a if k == 1 else (inp if k == 2 else web))
        cut, scattered, longest = _prune_plan(rows, spans[k, 0], spans[k, 1], horizon)
        out[k, 0], out[k, 1], out[k, 2] = cut, 1 if scattered else 0, longest


@njit
def _prune_plan(rows: I64, lo: int, n: int, horizon: int) -> tuple[int, bool, int]:
    """Rows ``[lo, n)``: the first row kept if only a prefix goes, whether others go too,
    and the longest duration of the rows kept (compiled: the loop runs every poll)."""
    cut = lo
    while cut < n and rows[cut, 0] < horizon and rows[cut, 1] <= horizon:
        cut += 1
    scattered = False
    longest = 0
    for i in range(cut, n):
        if rows[i, 0] < horizon and rows[i, 1] <= horizon:
            scattered = True
        d = rows[i, 1] - rows[i, 0]
        if d > longest:
            longest = d
    return cut, scattered, longest


class _KindRows:
    """One kind's rows (see the module docstring)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.ints: I64 = np.zeros((_CAPACITY, len(INT_COLUMNS[kind])), dtype=np.int64)
        self.floats: F64 = np.zeros(
            (_CAPACITY if kind == "input" else 0, len(INPUT_FLOATS)), dtype=np.float64
        )
        self.ids: list[EventId] = []  # of the live rows
        self.idset: set[str] = set()
        self.lo = 0
        self.n = 0
        self.longest = 0

    @property
    def size(self) -> int:
        return self.n - self.lo

    def reserve(self, extra: int) -> None:
        """Room for ``extra`` more rows after ``n`` (moving the live rows down first)."""
        need = self.size + extra
        if self.n + extra <= self.ints.shape[0]:
            return
        capacity = max(self.ints.shape[0], _CAPACITY)
        while capacity < 2 * need:
            capacity *= 2
        ints = np.zeros((capacity, self.ints.shape[1]), dtype=np.int64)
        ints[: self.size] = self.ints[self.lo : self.n]
        self.ints = ints
        if self.kind == "input":
            floats = np.zeros((capacity, len(INPUT_FLOATS)), dtype=np.float64)
            floats[: self.size] = self.floats[self.lo : self.n]
            self.floats = floats
        self.lo, self.n = 0, self.size

    def append(
        self, ints: list[list[int]], floats: F64 | list[list[float]], ids: Sequence[EventId]
    ) -> None:
        m = len(ids)
        self.reserve(m)
        self.ints[self.n : self.n + m] = ints
        if self.kind == "input":
            self.floats[self.n : self.n + m] = floats
        self.n += m
        self.ids.extend(ids)
        self.idset.update(i for i in ids if type(i) is str)
        self.longest = max(self.longest, max(r[1] - r[0] for r in ints))

    def set_rows(
        self, ints: list[list[int]], floats: list[list[float]], ids: list[EventId]
    ) -> None:
        self.lo = self.n = 0
        self.ids, self.idset, self.longest = [], set(), 0
        if ids:
            self.append(ints, floats, ids)

    def live_rows(self) -> tuple[list[list[int]], list[list[float]]]:
        ints: list[list[int]] = self.ints[self.lo : self.n].tolist()
        floats: list[list[float]] = (
            self.floats[self.lo : self.n].tolist() if self.kind == "input" else [[]] * self.size
        )
        return ints, floats

    def after_last(self, start: int, event_id: str) -> bool:
        """Whether an event ``(start, event_id)`` sorts after every live row.

        Only called once the rows starting at ``start`` or later have their ids computed.
        """
        if self.size == 0:
            return True
        return (start, event_id) > (int(self.ints[self.n - 1, 0]), self.ids[-1])

    def resolve_from(self, start: int) -> None:
        """Compute the lazy ids of the live rows starting at or after ``start``."""
        for j in range(len(self.ids) - 1, -1, -1):
            if int(self.ints[self.lo + j, 0]) < start:
                break
            i = self.ids[j]
            if not isinstance(i, str):
                self.ids[j] = done = i[0].id_at(i[1])
                self.idset.add(done)

    def find(self, event_id: str, start: int) -> int | None:
        """Position of the live row with ``event_id`` if it starts at ``start`` (else None)."""
        for j in range(len(self.ids) - 1, -1, -1):  # a growing event is one of the latest
            if self.ids[j] == event_id:
                pos = self.lo + j
                return pos if int(self.ints[pos, 0]) == start else None
        return None


class EventBuffer:
    """One user's recent events as typed arrays in canonical order (see the module).

    ``longest[kind]`` is (at least) the longest event of the kind, so a scan for the events
    touching a bucket can start at the first event that started at most that long before it.
    """

    def __init__(self, strings: Interned | None = None) -> None:
        self.strings = Interned() if strings is None else strings
        self.rows: dict[str, _KindRows] = {kind: _KindRows(kind) for kind in KINDS}
        self.titles: Titles = {}
        self._plans = np.zeros((4, 3), dtype=np.int64)

    @property
    def longest(self) -> dict[str, int]:
        return {kind: r.longest for kind, r in self.rows.items()}

    def n(self, kind: str) -> int:
        return self.rows[kind].size

    def add(self, kinds: Lists, titles: Titles) -> None:
        """Merge new events (each kind in canonical order): one row per ``event_id``."""
        rows = {}
        for kind in KINDS:
            cols = kinds[kind]
            if cols["start"]:
                rows[kind] = list(zip(*(cols[k] for k in LIST_COLUMNS[kind]), strict=True))
        self.add_rows(rows, titles)

    def add_rows(self, rows: Mapping[str, list[tuple[Any, ...]]], titles: Titles) -> None:
        """:meth:`add` of events as tuples of each kind's ``LIST_COLUMNS`` (canonical order)."""
        if titles:
            self.titles.update(titles)
        for kind, new in rows.items():
            if new:
                self._add_kind(kind, new)

    def _encode(
        self, kind: str, new: list[tuple[Any, ...]]
    ) -> tuple[list[list[int]], list[list[float]]]:
        """The new events as int rows and (input) float rows."""
        get, code = self.strings.get, self.strings.code

        def c(value: Any) -> int:
            got = get(value) if type(value) is str else None
            return got if got is not None else code(value)

        if kind == "window":
            return [[r[0], r[1], c(r[3]), c(r[4]), c(r[5]), c(r[6])] for r in new], []
        if kind == "afk":
            return [[r[0], r[1], c(r[3]), 1 if r[4] else 0] for r in new], []
        if kind == "web":
            return [[r[0], r[1], c(r[3]), c(r[4])] for r in new], []
        ints = [[r[0], r[1], c(r[3])] for r in new]
        floats = [[*r[4], 1.0 if r[5] else 0.0, 1.0 if r[6] else 0.0] for r in new]
        return ints, floats

    def _add_kind(self, kind: str, new: list[tuple[Any, ...]]) -> None:
        ints, floats = self._encode(kind, new)
        self.add_encoded(kind, ints, floats, [r[2] for r in new])

    def add_encoded(
        self,
        kind: str,
        ints: list[list[int]],
        floats: F64 | list[list[float]] | None,
        ids: list[EventId],
    ) -> None:
        """Merge new events of ``kind`` already encoded as rows (canonical order).

        ``ints`` are :data:`INT_COLUMNS` rows with string codes of :attr:`strings`;
        ``floats`` the :data:`INPUT_FLOATS` rows of input events (else unused).
        """
        rows = self.rows[kind]
        if floats is None:
            floats = []
        if rows.size and ints[0][0] <= int(rows.ints[rows.n - 1, 0]):
            # events where buffered ones start: every id that can be compared, computed
            rows.resolve_from(ints[0][0])
        elif any(type(i) is not str for i in ids):
            rows.append(ints, floats, ids)  # all after the buffered events: no id needed
            return
        self._merge_ids(rows, ints, floats, resolved(ids))

    def tail(self, kind: str, extra: int) -> tuple[I64, F64, int, int]:
        """Room for ``extra`` rows of ``kind`` after the live ones, to be filled in place.

        Returns the int and float matrices, the first free row and the start of the last
        live row (:data:`NO_START` when none). Rows written there count once
        :meth:`commit_lazy` takes them.
        """
        rows = self.rows[kind]
        rows.reserve(extra)
        last = int(rows.ints[rows.n - 1, 0]) if rows.n > rows.lo else NO_START
        return rows.ints, rows.floats, rows.n, last

    def commit_lazy(self, kind: str, ids: list[LazyId], longest: int) -> None:
        """Take the ``len(ids)`` rows filled after the live ones (:meth:`tail`), whose ids
        are all lazy and which all start, in canonical order, after every live row."""
        rows = self.rows[kind]
        rows.n += len(ids)
        rows.ids.extend(ids)
        if longest > rows.longest:
            rows.longest = longest

    def _merge_ids(
        self,
        rows: _KindRows,
        ints: list[list[int]],
        floats: F64 | list[list[float]],
        ids: list[str],
    ) -> None:
        """:meth:`add_encoded` of events whose ids can be compared with the buffered ones."""
        kind = rows.kind
        fresh = rows.idset.isdisjoint(ids) and len(set(ids)) == len(ids)
        if fresh and rows.after_last(ints[0][0], ids[0]):
            rows.append(ints, floats, ids)  # the usual poll: only events after the buffered ones
            return
        if not fresh and len(set(ids)) == len(ids):
            # a re-sent event (a growing one, or a re-fetch): the same start, in place
            rest = [j for j, i in enumerate(ids) if i not in rows.idset]
            done = True
            for j, event_id in enumerate(ids):
                if event_id not in rows.idset:
                    continue
                pos = rows.find(event_id, ints[j][0])
                if pos is None:
                    done = False
                    break
                if ints[j][1] >= rows.ints[pos, 1]:  # the later end wins, the newer on ties
                    rows.ints[pos] = ints[j]
                    if kind == "input":
                        rows.floats[pos] = floats[j]
                    rows.longest = max(rows.longest, ints[j][1] - ints[j][0])
            if done:
                if rest and rows.after_last(ints[rest[0]][0], ids[rest[0]]):
                    rows.append(
                        [ints[j] for j in rest],
                        [floats[j] for j in rest] if kind == "input" else [],
                        [ids[j] for j in rest],
                    )
                    return
                if not rest:
                    return
        self._merge(rows, ints, floats, ids)

    def _merge(
        self,
        rows: _KindRows,
        ints: list[list[int]],
        floats: F64 | list[list[float]],
        ids: list[str],
    ) -> None:
        """The general merge: old then new rows, one per id (latest end, newer on ties)."""
        if isinstance(floats, np.ndarray):
            floats = floats.tolist()
        old_ints, old_floats = rows.live_rows()
        all_ints = old_ints + ints
        all_floats = old_floats + (floats if rows.kind == "input" else [[]] * len(ids))
        all_ids = resolved([*rows.ids, *ids])
        best: dict[str, int] = {}
        for j, event_id in enumerate(all_ids):
            seen = best.get(event_id)
            if seen is None or all_ints[j][1] >= all_ints[seen][1]:
                best[event_id] = j
        keep = sorted(best.values(), key=lambda j: (all_ints[j][0], all_ids[j]))
        rows.set_rows(
            [all_ints[j] for j in keep],
            [all_floats[j] for j in keep] if rows.kind == "input" else [],
            [all_ids[j] for j in keep],
        )

    def prune(self, horizon: int) -> None:
        """Drop the events that end at or before ``horizon`` and started before it."""
        r = self.rows
        w, a, inp, web = r["window"], r["afk"], r["input"], r["web"]
        spans = np.array([[w.lo, w.n], [a.lo, a.n], [inp.lo, inp.n], [web.lo, web.n]])
        plans = self._plans
        _prune_plans(w.ints, a.ints, inp.ints, web.ints, spans, horizon, plans)
        for rows, (cut, scattered, longest) in zip((w, a, inp, web), plans.tolist(), strict=True):
            if rows.size == 0:
                continue
            if scattered:
                self._drop_scattered(rows, horizon)
                continue
            if cut == rows.lo:
                continue
            gone = rows.ids[: cut - rows.lo]
            del rows.ids[: cut - rows.lo]
            rows.idset.difference_update(i for i in gone if type(i) is str)
            rows.lo = cut
            rows.longest = longest
            if rows.size == 0:
                rows.lo = rows.n = 0

    def _drop_scattered(self, rows: _KindRows, horizon: int) -> None:
        ints, floats = rows.live_rows()
        keep = [j for j, r in enumerate(ints) if not (r[0] < horizon and r[1] <= horizon)]
        rows.set_rows(
            [ints[j] for j in keep],
            [floats[j] for j in keep] if rows.kind == "input" else [],
            [rows.ids[j] for j in keep],
        )

    def arrays(self) -> dict[str, dict[str, Any]]:
        """The buffer as ``EventArrays.kinds`` (for the batch code)."""
        out: dict[str, dict[str, Any]] = {}
        for kind, rows in self.rows.items():
            live = rows.ints[rows.lo : rows.n]
            cols: dict[str, Any] = {"start": live[:, 0].copy(), "end": live[:, 1].copy()}
            ids = np.empty(rows.size, dtype=object)
            ids[:] = resolved(rows.ids)
            cols["id"] = ids
            for j, name in enumerate(INT_COLUMNS[kind]):
                if name in _STRING_COLUMNS:
                    cols[name] = self.strings.values_of(live[:, j])
                elif name == "notafk":
                    cols[name] = live[:, j].astype(bool)
            if kind == "input":
                cols["vals"] = rows.floats[rows.lo : rows.n, :6].copy()
            out[kind] = cols
        return out

    def live_codes(self) -> I64:
        """Every string code the live rows use."""
        parts = [
            rows.ints[rows.lo : rows.n, j].ravel()
            for kind, rows in self.rows.items()
            for j, name in enumerate(INT_COLUMNS[kind])
            if name in _STRING_COLUMNS
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def remap(self, remap: I64) -> None:
        """Apply a code renumbering (:meth:`Interned.compact`) to the live rows."""
        for kind, rows in self.rows.items():
            for j, name in enumerate(INT_COLUMNS[kind]):
                if name in _STRING_COLUMNS and rows.size:
                    col = rows.ints[rows.lo : rows.n, j]
                    col[:] = remap[col]
