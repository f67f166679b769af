"""One closed bucket: the online fast path of feature building, around the compiled kernel.

Closing one minute online through the batch code (:func:`~taskclf.features._minutes.
aggregate_minutes`, :func:`~taskclf.features._fold.fold`, :func:`~taskclf.features._fold.
assemble_records`) runs a few hundred numpy calls on arrays of a handful of values, where
each call's fixed cost dominates. :class:`OneMinute` computes the same row for exactly one
bucket with the compiled :func:`~taskclf.features._kernel.close_minute` (the definitions step
by step, the same floating-point operations in the same order), so its values equal the
batch row bit for bit (tested against ``build_features`` with random event mixes, minute by
minute). The row comes out as a schema record (:meth:`OneMinute.record`) or straight into a
model's input row (:meth:`OneMinute.vector`, through a :class:`VectorPlan`), without the
record in between.

The fold state is kept as arrays (:class:`KernelFold`) and converted to and from the batch
:class:`~taskclf.features._fold.FoldState` when the online builder switches paths.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.adapters.activitywatch.mapping import NO_APP_CATEGORY, NO_APP_ID
from taskclf.core._jit import njit
from taskclf.core.defaults import TITLE_SKETCH_BUCKETS
from taskclf.core.encoding import MatrixEncoder
from taskclf.core.hashing import title_bucket
from taskclf.core.schema import get_schema
from taskclf.features import _kernel as K
from taskclf.features._buffer import EventBuffer
from taskclf.features._fold import (
    _SKETCH_COLUMNS,
    _STAT_NAMES,
    FoldParams,
    FoldState,
    RowContext,
)
from taskclf.features._strings import Interned
from taskclf.features.domain import NON_BROWSER, UNKNOWN_DOMAIN
from taskclf.features.dynamics import window_buckets
from taskclf.features.sessions import RunCarry, SessionCarry, _session_name
from taskclf.features.text import TitleFeatures, sketch_to_dense

__all__ = ["FALLBACK", "KernelFold", "OneMinute", "TitleMemo", "VectorPlan"]

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
FALLBACK: Final = "fallback"
_INT_STATS = (True, True, False, False, True)  # title_char/token counts, separators are ints
_V3_TAIL: Final = (*_SKETCH_COLUMNS, *_STAT_NAMES)


@dataclass
class KernelFold:
    """:class:`~taskclf.features._fold.FoldState` as the kernel's arrays (mutated in place).

    ``state`` holds the scalars (``_kernel.S_*``), ``hist_*`` the last 15 minutes of rows
    and their apps, ``title_count`` the open session's title repeats by string code (the
    codes with a count listed in ``session_titles``).
    """

    state: I64
    hist_i: I64
    hist_f: F64
    hist_apps: I64
    title_count: I64
    session_titles: I64

    @classmethod
    def empty(cls, rows: int, strings: int) -> KernelFold:
        state = np.full(K.N_STATE, -1, dtype=np.int64)
        state[[K.S_ROWS, K.S_APPS, K.S_TITLES]] = 0
        return cls(
            state=state,
            hist_i=np.zeros((rows, 4), dtype=np.int64),
            hist_f=np.zeros((rows, 3), dtype=np.float64),
            hist_apps=np.zeros((max(4 * rows, 16), 2), dtype=np.int64),
            title_count=np.zeros(max(strings, 64), dtype=np.int64),
            session_titles=np.zeros(max(strings, 64), dtype=np.int64),
        )

    @classmethod
    def from_state(cls, fs: FoldState, strings: Interned, k15: int) -> KernelFold:
        ctx = fs.context
        n = int(ctx["minute"].size)
        apps = strings.codes(ctx["app"].tolist())
        out = cls.empty(max(k15 + 1, n + 1), len(strings) + 1)
        s, r = fs.session, fs.run
        st = out.state
        st[K.S_LAST_ACTIVE] = -1 if s.last_active_minute is None else s.last_active_minute
        st[K.S_SESSION_START] = -1 if s.session_start_minute is None else s.session_start_minute
        st[K.S_RUN_APP] = -1 if r.app is None else strings.code(r.app)
        st[K.S_RUN_END] = -1 if r.end is None else r.end
        st[K.S_RUN_START] = -1 if r.run_start is None else r.run_start
        titles = [(strings.code(t), c) for t, c in s.titles.items()]
        out.ensure_strings(len(strings))
        for j, (code, count) in enumerate(titles):
            out.title_count[code] = count
            out.session_titles[j] = code
        st[K.S_TITLES] = len(titles)
        out.ensure_apps(len(apps))
        order = np.argsort(ctx["app_row"], kind="stable")
        rows_of = ctx["app_row"][order]
        for i in range(n):
            lo, hi = np.searchsorted(rows_of, [i, i + 1])
            out.hist_i[i] = (int(ctx["minute"][i]), int(ctx["app_change_count"][i]), lo, hi - lo)
            out.hist_f[i] = (
                ctx["keys_per_min"][i],
                ctx["clicks_per_min"][i],
                ctx["mouse_distance"][i],
            )
        for j, k in enumerate(order.tolist()):
            out.hist_apps[j] = (apps[k], int(ctx["app_us"][k]))
        st[K.S_ROWS], st[K.S_APPS] = n, len(apps)
        return out

    def to_state(self, strings: Interned) -> FoldState:
        st, values = self.state, strings.values
        titles = {
            values[int(c)]: int(self.title_count[c]) for c in self.session_titles[: st[K.S_TITLES]]
        }
        session = SessionCarry(
            last_active_minute=None if st[K.S_LAST_ACTIVE] < 0 else int(st[K.S_LAST_ACTIVE]),
            session_start_minute=None if st[K.S_SESSION_START] < 0 else int(st[K.S_SESSION_START]),
            titles=titles,
        )
        app = None if st[K.S_RUN_APP] < 0 else values[int(st[K.S_RUN_APP])]
        run = RunCarry(
            app=app,
            end=None if app is None else int(st[K.S_RUN_END]),
            run_start=None if app is None else int(st[K.S_RUN_START]),
        )
        n = int(st[K.S_ROWS])
        hist = self.hist_i[:n]
        rows: list[int] = []
        pairs: list[tuple[int, int]] = []
        for i in range(n):
            a0, na = int(hist[i, K.H_APP0]), int(hist[i, K.H_NAPP])
            mine = sorted(
                ((int(c), int(us)) for c, us in self.hist_apps[a0 : a0 + na]),
                key=lambda p: strings.rank[p[0]],
            )
            rows += [i] * len(mine)
            pairs += mine
        app_values = np.empty(len(pairs), dtype=object)
        app_values[:] = [values[c] for c, _ in pairs]
        context = {
            "minute": hist[:, K.H_MINUTE].copy(),
            "app_change_count": hist[:, K.H_CHANGE].copy(),
            "keys_per_min": self.hist_f[:n, 0].copy(),
            "clicks_per_min": self.hist_f[:n, 1].copy(),
            "mouse_distance": self.hist_f[:n, 2].copy(),
            "app_row": np.array(rows, dtype=np.int64),
            "app": app_values,
            "app_us": np.array([us for _, us in pairs], dtype=np.int64),
        }
        return FoldState(session=session, run=run, context=context)

    def ensure_strings(self, n: int) -> None:
        """Room for ``n`` string codes in the title counts."""
        if n > self.title_count.size:
            size = max(2 * self.title_count.size, n)
            self.title_count = np.concatenate(
                [self.title_count, np.zeros(size - self.title_count.size, dtype=np.int64)]
            )
            self.session_titles = np.concatenate(
                [self.session_titles, np.zeros(size - self.session_titles.size, dtype=np.int64)]
            )

    def ensure_apps(self, n: int) -> None:
        """Room for ``n`` more (row, app) pairs in the history."""
        need = int(self.state[K.S_APPS]) + n
        if need > self.hist_apps.shape[0]:
            grown = np.zeros((max(2 * self.hist_apps.shape[0], need), 2), dtype=np.int64)
            grown[: self.hist_apps.shape[0]] = self.hist_apps
            self.hist_apps = grown

    def live_codes(self) -> I64:
        """The string codes the state refers to."""
        st = self.state
        return np.concatenate(
            [
                np.array([st[K.S_RUN_APP]], dtype=np.int64),
                self.hist_apps[: st[K.S_APPS], 0],
                self.session_titles[: st[K.S_TITLES]],
            ]
        )

    def remap(self, remap: I64) -> None:
        """Apply a code renumbering (``Interned.compact``)."""
        st = self.state
        if st[K.S_RUN_APP] >= 0:
            st[K.S_RUN_APP] = remap[st[K.S_RUN_APP]]
        apps = self.hist_apps[: st[K.S_APPS], 0]
        apps[:] = remap[apps]
        n_t = int(st[K.S_TITLES])
        old = self.session_titles[:n_t].copy()
        counts = self.title_count[old].copy()
        self.title_count[:] = 0
        self.session_titles[:n_t] = remap[old]
        self.title_count[remap[old]] = counts


def _pairs(pairs: tuple[tuple[int, int], ...]) -> I64:
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@njit
def _dense_pairs(token: I64, char3: I64, out: F64) -> None:
    """Both sketches' normalized counts into ``out`` (token buckets, then char3 buckets).

    ``text.sketch_to_dense`` of the sketches' text, without the text (tested equal): the
    counts are integers, so their total is exact in any order of addition, and each bucket
    is divided by it.
    """
    k = out.size // 2
    out[:] = 0.0
    for part in range(2):
        pairs = token if part == 0 else char3
        base = part * k
        total = 0.0
        for j in range(pairs.shape[0]):
            out[base + pairs[j, 0]] += float(pairs[j, 1])
            total += float(pairs[j, 1])
        if total > 0:
            for b in range(base, base + k):
                out[b] /= total


@dataclass
class TitleMemo:
    """Per title hash: the v3 title columns (dense sketch, then statistics).

    :meth:`get` gives them as a dict of schema columns (for records), :meth:`vector` as one
    float64 array (for model rows).
    """

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    arrays: dict[str, F64] = field(default_factory=dict)
    #: title features the online intake has already (no sketch text to parse for these)
    features: dict[str, TitleFeatures] = field(default_factory=dict)

    def _parts(self, title: str, table: dict[str, tuple[Any, ...]]) -> tuple[list[float], F64]:
        feats = self.features.get(title)
        if feats is not None and title in table:  # the table row was made from ``feats``
            out = np.empty(2 * TITLE_SKETCH_BUCKETS)
            _dense_pairs(_pairs(feats.token_counts), _pairs(feats.char3_counts), out)
            return [float(v) for v in table[title][:5]], out
        if title and title in table:
            row = table[title]
            stats = [float(v) for v in row[:5]]
            sketch = np.concatenate([sketch_to_dense(row[5] or ""), sketch_to_dense(row[6] or "")])
            return stats, sketch
        return [0.0] * 5, np.zeros(2 * TITLE_SKETCH_BUCKETS)

    def get(self, title: str, table: dict[str, tuple[Any, ...]]) -> dict[str, Any]:
        got = self.values.get(title)
        if got is None:
            stats, sketch = self._parts(title, table)
            ints = [int(v) if is_int else v for v, is_int in zip(stats, _INT_STATS, strict=True)]
            got = self.values[title] = dict(zip(_V3_TAIL, sketch.tolist() + ints, strict=True))
        return got

    def vector(self, title: str, table: dict[str, tuple[Any, ...]]) -> F64:
        """Sketch (256) then the five statistics, as float64."""
        got = self.arrays.get(title)
        if got is None:
            stats, sketch = self._parts(title, table)
            got = self.arrays[title] = np.concatenate([sketch, np.array(stats)])
        return got

    def keep(self, live: set[str]) -> None:
        self.values = {k: v for k, v in self.values.items() if k in live}
        self.arrays = {k: v for k, v in self.arrays.items() if k in live}
        self.features = {k: v for k, v in self.features.items() if k in live}


_LOCAL: dict[tuple[int, str], tuple[int, int]] = {}
_QUARTER_US = 900_000_000  # every UTC offset and transition is on a quarter hour


def _times(b: int, b_us: int) -> tuple[Any, Any]:
    """Bucket start / end ``Timestamp`` (as ``_fold._scalar_times``)."""
    start = pd.Timestamp(b * b_us, unit="us", tz="UTC")
    end = pd.Timestamp((b + 1) * b_us, unit="us", tz="UTC")
    return start, end


def _local(start_us: int, zone: str) -> tuple[int, int, Any]:
    local = pd.Timestamp(start_us, unit="us", tz="UTC").tz_convert(zone)
    return int(local.hour), int(local.day_of_week), local.utcoffset()


def local_hour_weekday(start_us: int, zone: str) -> tuple[int, int]:
    """Local hour and weekday of a UTC instant (as ``_fold._scalar_times``), cached.

    A UTC quarter hour whose zone offset is the same at its first and last microsecond and
    a whole number of quarter hours lies inside one local quarter hour, so every instant of
    it has the same local hour and weekday: they are computed once per such quarter (the
    batch code's conversion, of the quarter's first instant). Any other quarter (historical
    offsets like +01:24, a change of offset inside it) is computed instant by instant.
    """
    quarter = start_us // _QUARTER_US
    key = (quarter, zone)
    got = _LOCAL.get(key)
    if got is not None:
        return got
    hour, dow, offset = _local(quarter * _QUARTER_US, zone)
    _, _, offset_end = _local((quarter + 1) * _QUARTER_US - 1, zone)
    if offset != offset_end or offset.total_seconds() % 900:
        hour, dow, _ = _local(start_us, zone)
        return hour, dow
    if len(_LOCAL) > 4096:
        _LOCAL.clear()
    got = _LOCAL[key] = (hour, dow)
    return got


#: The cells :meth:`OneMinute.vector` computes in Python, in :attr:`VectorPlan.cells` order.
_CELLS: Final = (
    "is_browser",
    "is_editor",
    "is_terminal",
    "app_id",
    "app_category",
    "domain_category",
    "user_id",
    "hour_of_day",
    "day_of_week",
    "window_title_bucket",
)
_CATEGORY_CELLS = 6  # the first six depend on the row's app, category and domain only


@njit
def _fill_row(
    row: F64,
    out_f: F64,
    dst: I64,
    src: I64,
    cells: F64,
    cell_pos: I64,
    tail: F64,
    tail_pos: I64,
    shares: F64,
    logs: F64,
    spans: F64,
) -> None:
    """Finish the kernel's entropy columns, then write the whole model row."""
    K.finish_entropy(out_f, shares, logs, spans)
    for j in range(dst.size):
        row[dst[j]] = out_f[src[j]]
    for j in range(cell_pos.size):
        if cell_pos[j] >= 0:
            row[cell_pos[j]] = cells[j]
    for j in range(tail_pos.size):
        row[tail_pos[j]] = tail[j]


class VectorPlan:
    """Where each kernel output goes in a model's input row (one per encoder and schema).

    Numeric kernel columns, the Python-computed cells (:data:`_CELLS`: flags, categorical
    codes, local time, title bucket) and the v3 title columns are written by one compiled
    call; the categorical codes of an (app, category, domain) combination are remembered.
    """

    def __init__(self, encoder: MatrixEncoder) -> None:
        self.encoder = encoder
        cols = {c: j for j, c in enumerate(encoder.columns)}
        pairs = [(cols[c], K.OUT_INDEX[c]) for c in K.OUT_COLUMNS if c in cols]
        self.dst = np.array([p[0] for p in pairs], dtype=np.int64)
        self.src = np.array([p[1] for p in pairs], dtype=np.int64)
        self.cell_pos = np.array([cols.get(c, -1) for c in _CELLS], dtype=np.int64)
        self.tail_pos = np.array([cols[c] for c in _V3_TAIL if c in cols], dtype=np.int64)
        self.cells = np.zeros(len(_CELLS), dtype=np.float64)
        self._empty_tail = np.zeros(0, dtype=np.float64)
        self._combos: dict[tuple[str, str, str], tuple[float, ...]] = {}
        self._users: dict[str, float] = {}
        #: the row :meth:`OneMinute.vector` writes when closing one minute (reused)
        self.row: F64 = np.zeros(len(encoder.columns), dtype=np.float64)
        covered = {*self.dst.tolist(), *self.cell_pos.tolist(), *self.tail_pos.tolist()}
        missing = [c for c, j in cols.items() if j not in covered]
        if missing:  # a schema column the kernel does not compute: a programming error
            raise ValueError(f"VectorPlan: no source for model columns {missing}")

    def _code(self, column: str, value: Any) -> float:
        if self.cell_pos[_CELLS.index(column)] < 0:
            return 0.0
        return self.encoder.code(column, value)

    def category_cells(self, app: str, cat: str, domain: str) -> tuple[float, ...]:
        """The flags and codes of :data:`_CELLS` ``[:6]`` (``domain``: the row's column)."""
        key = (app, cat, domain)
        got = self._combos.get(key)
        if got is None:
            if len(self._combos) > 4096:
                self._combos.clear()
            got = self._combos[key] = (
                1.0 if cat == "browser" else 0.0,
                1.0 if cat == "editor" else 0.0,
                1.0 if cat == "terminal" else 0.0,
                self._code("app_id", app),
                self._code("app_category", cat),
                self._code("domain_category", domain),
            )
        return got

    def user_cell(self, user_id: str) -> float:
        got = self._users.get(user_id)
        if got is None:
            got = self._users[user_id] = self._code("user_id", user_id)
        return got


class OneMinute:
    """Closes one bucket with the kernel; reusable buffers for its inputs and outputs."""

    def __init__(self, buffer: EventBuffer, ctx: RowContext) -> None:
        self.buffer = buffer
        self.ctx = ctx
        params: FoldParams = ctx.params
        s = buffer.strings
        self.consts = np.zeros(K.N_CONSTS, dtype=np.int64)
        self.consts[K.C_BUCKET_US] = params.bucket_us
        self.consts[K.C_GAP_US] = params.idle_gap_us
        self.consts[K.C_K5] = window_buckets(300, params.bucket_seconds)
        self.consts[K.C_K15] = window_buckets(900, params.bucket_seconds)
        self.consts[K.C_BUCKET_S] = params.bucket_seconds
        self.k15 = int(self.consts[K.C_K15])
        self.bounds = np.zeros((4, 3), dtype=np.int64)
        self.out_f = np.zeros(len(K.OUT_COLUMNS), dtype=np.float64)
        self.out_i = np.zeros(K.N_OUT_I, dtype=np.int64)
        self.sources = np.zeros(16, dtype=np.int64)
        self.shares = np.zeros(64, dtype=np.float64)
        self.spans = np.zeros((2, 4), dtype=np.float64)
        self.logs = np.zeros(0, dtype=np.float64)
        self._reserve_constants(s)

    def _reserve_constants(self, s: Interned) -> None:
        self.consts[K.C_NO_APP] = s.code(NO_APP_ID)
        self.consts[K.C_NO_CAT] = s.code(NO_APP_CATEGORY)
        self.consts[K.C_EMPTY] = s.code("")
        self.consts[K.C_UNKNOWN_DOMAIN] = s.code(UNKNOWN_DOMAIN)

    def reserve_constants(self) -> None:
        """Intern the reserved strings again (after the table was compacted)."""
        self._reserve_constants(self.buffer.strings)

    def close(self, b: int, fold: KernelFold) -> int:
        """Run the kernel for bucket ``b``: ``_kernel.ROW``, ``NO_ROW`` or ``FALLBACK``."""
        buf = self.buffer
        rows = buf.rows
        w, inp, a, web = rows["window"], rows["input"], rows["afk"], rows["web"]
        self.bounds[:] = (
            (w.lo, w.n, w.longest),
            (a.lo, a.n, a.longest),
            (inp.lo, inp.n, inp.longest),
            (web.lo, web.n, web.longest),
        )
        self.consts[K.C_BUCKET] = b
        strings = buf.strings
        fold.ensure_strings(len(strings))
        shares_needed = 2 * (int(fold.state[K.S_APPS]) + rows["window"].size + 1)
        if self.shares.size < shares_needed:
            self.shares = np.zeros(2 * shares_needed, dtype=np.float64)
        while True:
            status = K.close_minute(
                w.ints, a.ints, inp.ints, inp.floats, web.ints, self.bounds,
                strings.rank, strings.is_str, self.consts, fold.state, fold.hist_i,
                fold.hist_f, fold.hist_apps, fold.title_count, fold.session_titles,
                self.out_f, self.out_i, self.sources, self.shares, self.spans,
            )  # fmt: skip
            if status != K.GROW:
                break
            self._grow(fold)
        if status == K.ROW:
            n = int(self.out_i[K.O_SHARES])
            self.logs = np.log(self.shares[:n])  # numpy's log, as the batch code takes it
        return int(status)

    def _grow(self, fold: KernelFold) -> None:
        if fold.state[K.S_ROWS] + 1 > fold.hist_i.shape[0]:
            rows = 2 * fold.hist_i.shape[0]
            fold.hist_i = np.concatenate([fold.hist_i, np.zeros_like(fold.hist_i)])[:rows]
            fold.hist_f = np.concatenate([fold.hist_f, np.zeros_like(fold.hist_f)])[:rows]
        fold.ensure_apps(self.buffer.rows["window"].size * 2 + 2)
        self.sources = np.zeros(2 * self.sources.size, dtype=np.int64)

    def record(self, b: int, titles: dict[str, tuple[Any, ...]], memo: TitleMemo) -> dict[str, Any]:
        """The schema record of the bucket just closed (after :meth:`close` gave ``ROW``)."""
        K.finish_entropy(self.out_f, self.shares, self.logs, self.spans)
        ctx, out_i = self.ctx, self.out_i
        values = self.buffer.strings.values
        f = self.out_f.tolist()
        b_us = ctx.params.bucket_us
        t_start, t_end = _times(b, b_us)
        hour, dow = local_hour_weekday(b * b_us, ctx.timezone)
        schema = get_schema(ctx.schema_version)
        cat = values[int(out_i[K.O_CAT])]
        title = values[int(out_i[K.O_TITLE])]
        n_src = int(out_i[K.O_SOURCES])
        rec: dict[str, Any] = {
            "user_id": ctx.user_id,
            "device_id": ctx.device_id,
            "session_id": _session_name(int(out_i[K.O_SESSION]), b_us),
            "bucket_start_ts": t_start,
            "bucket_end_ts": t_end,
            "schema_version": schema.VERSION,
            "schema_hash": schema.SCHEMA_HASH,
            "source_ids": sorted(values[c] for c in self.sources[:n_src].tolist()),
            "app_id": values[int(out_i[K.O_APP])],
            "app_category": cat,
            "window_title_hash": title,
            "is_browser": cat == "browser",
            "is_editor": cat == "editor",
            "is_terminal": cat == "terminal",
            "domain_category": values[int(out_i[K.O_DOMAIN])] if cat == "browser" else NON_BROWSER,
            "window_title_bucket": title_bucket(title) if title else 0,
            "hour_of_day": hour,
            "day_of_week": dow,
        }
        for name, value in zip(K.OUT_COLUMNS, f, strict=True):
            rec[name] = (
                int(value) if name in K.INT_OUT else (bool(value) if name in K.BOOL_OUT else value)
            )
        if ctx.schema_version == "v3":
            rec.update(memo.get(title, titles))
        return {c: rec[c] for c in schema.COLUMNS}

    def vector(
        self,
        b: int,
        plan: VectorPlan,
        out: F64,
        titles: dict[str, tuple[Any, ...]],
        memo: TitleMemo,
    ) -> None:
        """Write the model's input row of the bucket just closed into ``out`` (1-D)."""
        out_i, values = self.out_i, self.buffer.strings.values
        cat = values[out_i[K.O_CAT]]
        title = values[out_i[K.O_TITLE]]
        domain = values[out_i[K.O_DOMAIN]] if cat == "browser" else NON_BROWSER
        cells = plan.cells
        cells[:_CATEGORY_CELLS] = plan.category_cells(values[out_i[K.O_APP]], cat, domain)
        ctx = self.ctx
        cells[6] = plan.user_cell(ctx.user_id)
        cells[7], cells[8] = local_hour_weekday(b * ctx.params.bucket_us, ctx.timezone)
        cells[9] = title_bucket(title) if title else 0
        tail = memo.vector(title, titles) if plan.tail_pos.size else plan._empty_tail
        _fill_row(
            out, self.out_f, plan.dst, plan.src, cells, plan.cell_pos, tail, plan.tail_pos,
            self.shares, self.logs, self.spans,
        )  # fmt: skip
