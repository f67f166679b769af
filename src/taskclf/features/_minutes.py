"""Stage 1 of feature building: events → per-bucket aggregates (local to each bucket).

Everything computed here for bucket b depends only on the events overlapping b (and, for the
browser-domain fallback, web events that started up to one idle gap before b). That locality
is what lets the online builder compute one closed minute from a small buffer of recent events
and get exactly the batch values.

Rows: a bucket gets a row when it has window time (after overlap resolution) or not-afk time.
AFK: intervals are unioned per status; where ``afk`` and ``not-afk`` overlap, not-afk wins.
Input (``os.hid.input``): counts are split over the buckets an event overlaps in proportion to
the overlap (a zero-duration event counts wholly in its bucket); a bucket that no input event
touches has missing (NaN) input features. Web: the domain category of a bucket is the one with
the most overlapping seconds, else that of the latest tab event started within the idle gap
before the bucket's end, else ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.adapters.activitywatch.mapping import NO_APP_CATEGORY, NO_APP_ID
from taskclf.features._event_lists import KIND_COLUMNS, lists_to_arrays, small_rows
from taskclf.features._small import factorize_sorted, isin_sorted, row_name_lists
from taskclf.features.domain import UNKNOWN_DOMAIN
from taskclf.features.windows import (
    I64,
    interval_stats,
    resolve_timeline,
    split_by_bucket,
    subtract_intervals,
    union_intervals,
)

ObjArr = NDArray[np.object_]
F64 = NDArray[np.float64]
INPUT_VALUES = ("presses", "clicks", "distance", "scroll", "backspaces", "shortcuts")
TITLE_STAT_COLUMNS = (
    "title_char_count",
    "title_token_count",
    "title_unique_token_ratio",
    "title_digit_ratio",
    "title_separator_count",
    "title_token_sketch",
    "title_char3_sketch",
)


def _us(s: pd.Series) -> I64:
    naive = s.dt.tz_convert("UTC").dt.tz_localize(None)
    out: I64 = naive.to_numpy(dtype="datetime64[us]").view(np.int64)
    return out


def _obj(s: pd.Series) -> ObjArr:
    return s.astype(object).to_numpy()


@dataclass
class EventArrays:
    """Events of one user as numpy arrays per kind, each in canonical ``(start, id)`` order."""

    kinds: dict[str, dict[str, Any]] = field(default_factory=dict)
    titles: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    @classmethod
    def from_frame(cls, events: pd.DataFrame) -> EventArrays:
        """Convert a normalized events frame (``adapters.activitywatch.events``)."""
        small = small_rows(events, TITLE_STAT_COLUMNS)
        if small is not None:  # a poll's few events: plain Python, the same arrays
            return cls(kinds=lists_to_arrays(small[0]), titles=small[1])
        out = cls()
        order = _canonical_order(events)
        kind_codes, kind_names = pd.factorize(events["kind"])
        kind_codes = kind_codes[order]
        for kind in ("window", "afk", "input", "web"):
            hit = np.flatnonzero(kind_names == kind)
            sel = order[kind_codes == hit[0]] if hit.size else order[:0]
            out.kinds[kind] = _kind_arrays(events, kind, sel)
            if kind == "window":
                out.titles.update(_title_table(events, sel, out.kinds[kind]["title"]))
        return out

    def n(self, kind: str) -> int:
        return int(self.kinds[kind]["start"].size) if kind in self.kinds else 0

    def select(self, keep: Mapping[str, NDArray[np.bool_] | NDArray[np.intp]]) -> EventArrays:
        """The events ``keep[kind]`` picks: a boolean mask, or ascending row indices."""
        out = EventArrays(titles=self.titles)
        for kind, cols in self.kinds.items():
            mask = keep[kind]
            out.kinds[kind] = {k: v[mask] for k, v in cols.items()}
        return out


def _canonical_order(events: pd.DataFrame) -> NDArray[np.intp]:
    """The row order of ``events.sort_values(["start_ts", "event_id"], kind="mergesort")``.

    Only events that share a start need their ids compared, so the ids are ranked among
    those ties alone: sorting every id string costs O(n log n) comparisons that miss the
    cache once the ids outgrow it (26x the time for 10x the events at 1M events).
    """
    if events["start_ts"].isna().any() or events["event_id"].isna().any():
        keys = events[["start_ts", "event_id"]].reset_index(drop=True)
        by_pandas: NDArray[np.intp] = keys.sort_values(
            ["start_ts", "event_id"], kind="mergesort"
        ).index.to_numpy()
        return by_pandas
    naive = events["start_ts"].dt.tz_convert("UTC").dt.tz_localize(None)
    start = naive.to_numpy().view(np.int64)  # native unit: the exact order of the timestamps
    order = np.argsort(start, kind="stable")
    s = start[order]
    same_as_prev = s[1:] == s[:-1]
    tie = np.zeros(s.size, dtype=bool)
    tie[1:] = same_as_prev
    tie[:-1] |= same_as_prev
    if tie.any():
        pos = np.flatnonzero(tie)
        sub = order[pos]
        ids = events["event_id"].to_numpy(dtype=object)[sub]
        rank, _ = pd.factorize(pd.Series(ids, dtype=object), sort=True)
        order[pos] = sub[np.lexsort((rank, s[pos]))]
    return order


def _kind_arrays(events: pd.DataFrame, kind: str, sel: NDArray[np.intp]) -> dict[str, Any]:
    """The arrays of one event kind; ``sel`` are its rows of ``events`` in canonical order."""
    needed = ["start_ts", "end_ts", "event_id", "source_id", *KIND_COLUMNS[kind]]
    part = events[needed].take(sel)
    cols: dict[str, Any] = {
        "start": _us(part["start_ts"]),
        "end": _us(part["end_ts"]),
        "id": _obj(part["event_id"]),
        "src": _obj(part["source_id"]),
    }
    if kind == "window":
        cols.update(app=_obj(part["app_id"]), title=_obj(part["title_hash"]))
        cols["cat"] = _obj(part["app_category"])
    elif kind == "afk":
        cols["notafk"] = (_obj(part["status"]) == "not-afk").astype(bool)
    elif kind == "web":
        cols["dom"] = _obj(part["domain_category"])
    else:
        dist = np.hypot(part["delta_x"].to_numpy(), part["delta_y"].to_numpy())
        scroll = part["scroll_x"].fillna(0).to_numpy() + part["scroll_y"].fillna(0)
        vals = np.column_stack(
            [
                part["presses"].to_numpy(),
                part["clicks"].to_numpy(),
                dist,
                np.where(part["scroll_x"].isna() & part["scroll_y"].isna(), np.nan, scroll),
                part["backspaces"].to_numpy(),
                part["shortcuts"].to_numpy(),
            ]
        ).astype(np.float64)
        cols["vals"] = vals.reshape(len(part), len(INPUT_VALUES))
    return cols


def _title_table(
    events: pd.DataFrame, sel: NDArray[np.intp], titles: ObjArr
) -> dict[Any, tuple[Any, ...]]:
    """Title statistics by title hash, from the first window event of each hash."""
    first = sel[~pd.Series(titles, dtype=object).duplicated().to_numpy()]
    part = events[["title_hash", *TITLE_STAT_COLUMNS]].take(first)
    return {row[0]: tuple(row[1:]) for row in part.itertuples(index=False)}


def _kind(ev: EventArrays, kind: str) -> dict[str, Any]:
    cols = ev.kinds.get(kind)
    if cols is None:
        empty = np.zeros(0, dtype=np.int64)
        eobj = np.zeros(0, dtype=object)
        return {"start": empty, "end": empty, "id": eobj, "src": eobj, "app": eobj,
                "title": eobj, "cat": eobj, "notafk": np.zeros(0, bool), "dom": eobj,
                "vals": np.zeros((0, len(INPUT_VALUES)))}  # fmt: skip
    return cols


def _factorize(values: ObjArr) -> tuple[I64, ObjArr]:
    """Codes into the lexically sorted unique values."""
    return factorize_sorted(values)


def _argmax_by_group(group: I64, value: I64, tie: I64) -> tuple[I64, NDArray[np.intp]]:
    """For each group, the position of the max ``value`` (ties: smallest ``tie``)."""
    order = np.lexsort((tie, -value, group))
    g = group[order]
    first = np.ones(order.size, dtype=bool)
    first[1:] = g[1:] != g[:-1]
    return g[first], order[first]


@dataclass
class Minutes:
    """Per-bucket aggregates of the row buckets (sorted) plus window pieces for the fold."""

    cols: dict[str, Any]
    pieces: dict[str, Any]
    app_long: dict[str, Any]

    @property
    def size(self) -> int:
        return int(self.cols["minute"].size)


def _window_pieces(w: dict[str, Any], b_us: int, lo: int | None, hi: int | None) -> dict[str, Any]:
    pos = w["end"] > w["start"]
    idx = np.flatnonzero(pos)
    seg_s, seg_e, seg_i = resolve_timeline(w["start"][pos], w["end"][pos])
    ev = idx[seg_i]
    src, minute, p_s, p_e = split_by_bucket(seg_s, seg_e, b_us, lo, hi)
    ev = ev[src]
    keep = p_e > p_s
    ev, minute, p_s, p_e = ev[keep], minute[keep], p_s[keep], p_e[keep]
    return {"minute": minute, "start": p_s, "end": p_e, "app": w["app"][ev],
            "title": w["title"][ev], "cat": w["cat"][ev], "src": w["src"][ev]}  # fmt: skip


def _in_range(m: I64, lo: int | None, hi: int | None) -> NDArray[np.bool_]:
    ok = np.ones(m.size, dtype=bool)
    if lo is not None:
        ok &= m >= lo
    if hi is not None:
        ok &= m < hi
    return ok


def aggregate_minutes(
    ev: EventArrays, bucket_us: int, idle_gap_us: int, lo: int | None = None, hi: int | None = None
) -> Minutes:
    """Stage-1 aggregates for the row buckets in ``[lo, hi)`` (all buckets when None)."""
    w, a = _kind(ev, "window"), _kind(ev, "afk")
    pieces = _window_pieces(w, bucket_us, lo, hi)
    notafk_s, notafk_e = union_intervals(a["start"][a["notafk"]], a["end"][a["notafk"]])
    afk_s, afk_e = union_intervals(a["start"][~a["notafk"]], a["end"][~a["notafk"]])
    _, na_min, na_ps, na_pe = split_by_bucket(notafk_s, notafk_e, bucket_us, lo, hi)
    na_min = na_min[na_pe > na_ps]
    minute = np.unique(np.concatenate([pieces["minute"], na_min]))
    cols: dict[str, Any] = {"minute": minute}
    row_of = {"pieces": np.searchsorted(minute, pieces["minute"])}
    n = minute.size
    # window time per row and per (row, app)
    p_row, p_us = row_of["pieces"], pieces["end"] - pieces["start"]
    cols["window_us"] = np.bincount(p_row, weights=p_us, minlength=n).astype(np.int64)
    app_code, apps = _factorize(pieces["app"])
    n_apps = max(int(apps.size), 1)
    key, inv = np.unique(p_row * n_apps + app_code, return_inverse=True)
    key_us = np.bincount(inv, weights=p_us).astype(np.int64)
    g_row, g_app = key // n_apps, key % n_apps
    app_long = {"row": g_row, "app": apps[g_app] if apps.size else np.zeros(0, object),
                "us": key_us}  # fmt: skip
    dom_app = np.full(n, NO_APP_ID, dtype=object)
    dom_cat = np.full(n, NO_APP_CATEGORY, dtype=object)
    dom_us = np.zeros(n, dtype=np.int64)
    rows, at = _argmax_by_group(g_row, key_us, g_app)
    dom_app[rows] = apps[g_app[at]] if apps.size else dom_app[rows]
    dom_us[rows] = key_us[at]
    cats = dict(zip(pieces["app"], pieces["cat"], strict=True))
    dom_cat[rows] = [cats[x] for x in dom_app[rows]]
    cols.update(dom_app=dom_app, dom_cat=dom_cat, dom_us=dom_us)
    cols["dom_title"] = _dominant_title(pieces, p_row, p_us, dom_app, n)
    w_start_min = w["start"] // bucket_us
    ok = _in_range(w_start_min, lo, hi) & isin_sorted(w_start_min, minute)
    cols["event_count"] = np.bincount(np.searchsorted(minute, w_start_min[ok]), minlength=n).astype(
        np.float64
    )
    cols.update(_afk_cols(minute, bucket_us, notafk_s, notafk_e, afk_s, afk_e))
    cols.update(_input_cols(_kind(ev, "input"), minute, bucket_us, lo, hi))
    cols["domain"] = _web_domain(_kind(ev, "web"), minute, bucket_us, idle_gap_us, lo, hi)
    cols["sources"] = _sources(ev, pieces, minute, bucket_us, lo, hi)
    pieces["row"] = p_row
    return Minutes(cols, pieces, app_long)


def _dominant_title(
    pieces: dict[str, Any], p_row: I64, p_us: I64, dom_app: ObjArr, n: int
) -> ObjArr:
    out = np.full(n, "", dtype=object)
    sel = pieces["app"] == dom_app[p_row] if p_row.size else np.zeros(0, bool)
    if not sel.any():
        return out
    t_code, titles = _factorize(pieces["title"][sel])
    n_t = int(titles.size)
    key, inv = np.unique(p_row[sel] * n_t + t_code, return_inverse=True)
    us = np.bincount(inv, weights=p_us[sel]).astype(np.int64)
    rows, at = _argmax_by_group(key // n_t, us, key % n_t)
    out[rows] = titles[(key % n_t)[at]]
    return out


def _afk_cols(
    minute: I64, b_us: int, na_s: I64, na_e: I64, afk_s: I64, afk_e: I64
) -> dict[str, Any]:
    eff_s, eff_e = subtract_intervals(afk_s, afk_e, na_s, na_e)
    notafk_us, _, _ = interval_stats(na_s, na_e, minute, b_us)
    afk_us, afk_run, _ = interval_stats(eff_s, eff_e, minute, b_us)
    any_s, any_e = union_intervals(np.concatenate([na_s, afk_s]), np.concatenate([na_e, afk_e]))
    _, _, present = interval_stats(any_s, any_e, minute, b_us)
    max_run = np.where(present, afk_run / 1e6, np.nan)
    return {"notafk_us": notafk_us, "afk_us": afk_us, "afk_present": present,
            "max_idle_run": max_run}  # fmt: skip


def _input_cols(
    inp: dict[str, Any], minute: I64, b_us: int, lo: int | None, hi: int | None
) -> dict[str, Any]:
    n = minute.size
    src, m, p_s, p_e = split_by_bucket(inp["start"], inp["end"], b_us, lo, hi)
    ok = isin_sorted(m, minute)
    src, m, p_s, p_e = src[ok], m[ok], p_s[ok], p_e[ok]
    order = np.lexsort((src, m))
    src, m, p_s, p_e = src[order], m[order], p_s[order], p_e[order]
    row = np.searchsorted(minute, m)
    dur = (inp["end"] - inp["start"])[src]
    over = p_e - p_s
    frac = np.where(dur > 0, over / np.where(dur > 0, dur, 1), 1.0)
    vals = inp["vals"][src]
    present = np.bincount(row, minlength=n) > 0
    out: dict[str, Any] = {"input_present": present}
    for j, name in enumerate(INPUT_VALUES):
        v = vals[:, j] * frac
        have = ~np.isnan(v)
        total = np.bincount(row[have], weights=v[have], minlength=n)
        count = np.bincount(row[have], minlength=n)
        out[name] = np.where(count > 0, total, np.nan)
    active = np.nan_to_num(vals)
    kb = active[:, 0] > 0
    mouse = (active[:, 1] > 0) | (active[:, 2] > 0) | (active[:, 3] > 0)
    for name, mask in (("kb_us", kb), ("mouse_us", mouse), ("any_us", kb | mouse)):
        us = np.bincount(row[mask], weights=over[mask], minlength=n)
        out[name] = np.where(present, np.minimum(us, b_us) / 1e6, np.nan)
    return out


def _web_domain(
    web: dict[str, Any], minute: I64, b_us: int, gap_us: int, lo: int | None, hi: int | None
) -> ObjArr:
    n = minute.size
    out = np.full(n, UNKNOWN_DOMAIN, dtype=object)
    if web["start"].size == 0 or n == 0:
        return out
    src, m, p_s, p_e = split_by_bucket(web["start"], web["end"], b_us, lo, hi)
    ok = isin_sorted(m, minute) & (p_e > p_s)
    src, m, us = src[ok], m[ok], (p_e - p_s)[ok]
    has = np.zeros(n, dtype=bool)
    if src.size:
        code, doms = _factorize(web["dom"][src])
        row = np.searchsorted(minute, m)
        k = int(doms.size)
        key, inv = np.unique(row * k + code, return_inverse=True)
        tot = np.bincount(inv, weights=us).astype(np.int64)
        rows, at = _argmax_by_group(key // k, tot, key % k)
        out[rows] = doms[(key % k)[at]]
        has[rows] = True
    m_end = (minute + 1) * b_us
    last = np.searchsorted(web["start"], m_end, side="left") - 1
    fb = ~has & (last >= 0)
    fb[fb] = web["start"][last[fb]] >= minute[fb] * b_us - gap_us
    out[fb] = web["dom"][last[fb]]
    return out


def _sources(
    ev: EventArrays, pieces: dict[str, Any], minute: I64, b_us: int, lo: int | None, hi: int | None
) -> ObjArr:
    n = minute.size
    rows: list[I64] = [np.searchsorted(minute, pieces["minute"])]
    names: list[ObjArr] = [pieces["src"]]
    a = _kind(ev, "afk")
    for s in sorted(set(a["src"].tolist())):
        sel = a["src"] == s
        us, ue = union_intervals(a["start"][sel], a["end"][sel])
        _, _, hit = interval_stats(us, ue, minute, b_us)
        rows.append(np.flatnonzero(hit))
        names.append(np.full(int(hit.sum()), s, dtype=object))
    for kind in ("input", "web"):
        k = _kind(ev, kind)
        src, m, _, _ = split_by_bucket(k["start"], k["end"], b_us, lo, hi)
        ok = isin_sorted(m, minute)
        rows.append(np.searchsorted(minute, m[ok]))
        names.append(k["src"][src[ok]])
    return _name_lists(np.concatenate(rows), np.concatenate(names), n)


def _name_lists(row: I64, names: ObjArr, n: int) -> ObjArr:
    """Per row, the sorted distinct ``names`` at that row."""
    few = row_name_lists(row, names, n)
    if few is not None:
        return few
    code, uniq = _factorize(names)
    names_list = uniq.tolist()
    if len(names_list) <= 62:
        mask = np.zeros(n, dtype=np.int64)
        np.bitwise_or.at(mask, row, np.left_shift(np.int64(1), code))
        combos, inv = np.unique(mask, return_inverse=True)
        lists = np.empty(combos.size, dtype=object)
        for i, m in enumerate(combos.tolist()):
            lists[i] = [names_list[j] for j in range(len(names_list)) if m >> j & 1]
        out: ObjArr = lists[inv]
        return out
    return _sources_slow(row, code, names_list, n)


def _sources_slow(row: I64, code: I64, names_list: list[str], n: int) -> ObjArr:
    """Per-row source lists when there are too many sources for a bit mask."""
    k = max(len(names_list), 1)
    key = np.unique(row * k + code)
    r, c = key // k, key % k
    bounds = np.searchsorted(r, np.arange(n + 1))
    out = np.empty(n, dtype=object)
    for i in range(n):
        out[i] = [names_list[j] for j in c[bounds[i] : bounds[i + 1]].tolist()]
    return out
