"""Stage 1 of feature building for one bucket, in plain Python (``features._one``'s input).

The per-bucket aggregates of ``features._minutes.aggregate_minutes`` for exactly one bucket,
from the buffered events as lists (:class:`~taskclf.features._event_lists.EventBuffer`):
overlap-resolved window pieces (the covering event that started last wins), window time per
app with the dominant app, category and title (ties: the lexically smallest), AFK unions
with not-afk winning, input counts split by overlap, the browser domain with its fallback,
and the sources. Only the events that can touch the bucket are read: those overlapping it,
found from the longest event of each kind, and for the domain fallback the latest tab event
started before the bucket's end. Integer microseconds make every coverage exact; float sums
add the same values in the same order as the batch code.

Any value the batch code treats specially (a missing app, title or source) makes
:func:`stage1` return ``FALLBACK``, and the caller runs the batch code instead.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from typing import Any, Final

from taskclf.adapters.activitywatch.mapping import NO_APP_CATEGORY, NO_APP_ID
from taskclf.features._event_lists import EventBuffer
from taskclf.features.domain import UNKNOWN_DOMAIN

NAN: Final = float("nan")
FALLBACK: Final = "fallback"


@dataclass
class Stage1:
    """The bucket's stage-1 aggregates (the scalars of ``Minutes.cols`` for one row)."""

    window_us: int
    pieces: list[tuple[int, int, int]]  # (start, end, window event index), in time order
    by_app: dict[str, int]
    dom_app: str
    dom_cat: str
    dom_us: int
    dom_title: str
    event_count: float
    notafk_us: int
    afk_present: bool
    max_idle_run: float
    inputs: list[float]  # presses, clicks, distance, scroll, backspaces, shortcuts
    kb_s: float
    mouse_s: float
    any_s: float
    domain: str
    sources: list[str]


def _union(ivs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Union of positive intervals (touching ones merged), sorted."""
    out: list[tuple[int, int]] = []
    for s, e in sorted(ivs):
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _subtract(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``A \\ B`` for sorted disjoint interval lists; maximal sorted disjoint result."""
    if not a or not b:
        return a
    points = sorted({p for iv in a + b for p in iv})
    keep = []
    for lo, hi in itertools.pairwise(points):
        in_a = any(s <= lo < e for s, e in a)
        if in_a and not any(s <= lo < e for s, e in b):
            keep.append((lo, hi))
    return _union(keep)


def _argmax_key(by: dict[str, int]) -> str:
    """The key with the largest value; ties: the lexically smallest key."""
    best = ""
    best_v = -1
    for k in sorted(by):
        if by[k] > best_v:
            best, best_v = k, by[k]
    return best


def _window_pieces(lists: EventBuffer, b0: int, b1: int) -> list[tuple[int, int, int]]:
    """Foreground pieces inside ``[b0, b1)``: the covering event that started last wins."""
    w = lists.cols["window"]
    starts, ends = w["start"], w["end"]
    hi = bisect.bisect_left(starts, b1)
    cand = [i for i in range(lists.first("window", b0), hi) if ends[i] > b0 and ends[i] > starts[i]]
    if not cand:
        return []
    if len(cand) == 1:
        i = cand[0]
        return [(max(starts[i], b0), min(ends[i], b1), i)]
    points = sorted(
        {b0, b1} | {max(starts[i], b0) for i in cand} | {min(ends[i], b1) for i in cand}
    )
    out: list[tuple[int, int, int]] = []
    for a, c in itertools.pairwise(points):
        win = -1
        for i in cand:  # ascending canonical order: the last cover wins
            if starts[i] <= a < ends[i]:
                win = i
        if win < 0:
            continue
        if out and out[-1][2] == win and out[-1][1] == a:
            out[-1] = (out[-1][0], c, win)
        else:
            out.append((a, c, win))
    return out


def stage1(lists: EventBuffer, b: int, b_us: int, gap_us: int) -> Stage1 | str | None:
    """Stage-1 aggregates of bucket ``b``; None when it has no row; FALLBACK when unsure."""
    b0, b1 = b * b_us, (b + 1) * b_us
    w, a = lists.cols["window"], lists.cols["afk"]
    pieces = _window_pieces(lists, b0, b1)
    # AFK: unions per status inside the bucket (the rest cannot change the bucket's stats)
    na: list[tuple[int, int]] = []
    afk: list[tuple[int, int]] = []
    afk_src: set[str] = set()
    present = False
    a_s, a_e, a_on, a_src = a["start"], a["end"], a["notafk"], a["src"]
    for i in range(lists.first("afk", b0), bisect.bisect_left(a_s, b1)):
        s, e = a_s[i], a_e[i]
        if e > s and e > b0:
            (na if a_on[i] else afk).append((max(s, b0), min(e, b1)))
            if type(a_src[i]) is not str:
                return FALLBACK
            afk_src.add(a_src[i])
            present = True
    na = _union(na)
    notafk_us = sum(e - s for s, e in na)
    window_us = sum(e - s for s, e, _ in pieces)
    if window_us <= 0 and notafk_us <= 0:
        return None
    eff = _subtract(_union(afk), na)
    afk_run = max((e - s for s, e in eff), default=0)
    # window time per app, dominant app and title
    by_app: dict[str, int] = {}
    cats: dict[str, Any] = {}
    sources: set[str] = set(afk_src)
    apps, cat_col, titles, srcs = (
        w.get("app", []),
        w.get("cat", []),
        w.get("title", []),
        w.get("src", []),
    )
    for s, e, i in pieces:
        app, src = apps[i], srcs[i]
        if type(app) is not str or type(titles[i]) is not str or type(src) is not str:
            return FALLBACK
        by_app[app] = by_app.get(app, 0) + (e - s)
        cats[app] = cat_col[i]
        sources.add(src)
    if by_app:
        dom_app = _argmax_key(by_app)
        dom_cat, dom_us = cats[dom_app], by_app[dom_app]
        by_title: dict[str, int] = {}
        for s, e, i in pieces:
            if apps[i] == dom_app:
                by_title[titles[i]] = by_title.get(titles[i], 0) + (e - s)
        dom_title = _argmax_key(by_title)
    else:
        dom_app, dom_cat, dom_us, dom_title = NO_APP_ID, NO_APP_CATEGORY, 0, ""
    ws = w["start"]
    event_count = float(bisect.bisect_left(ws, b1) - bisect.bisect_left(ws, b0))
    inputs = _input(lists, b, b0, b1, b_us, sources)
    if inputs is None:
        return FALLBACK
    domain = _domain(lists, b, b0, b1, b_us, gap_us, sources)
    if domain is None:
        return FALLBACK
    vals, kb, mouse, anyv = inputs
    return Stage1(
        window_us=window_us,
        pieces=pieces,
        by_app=by_app,
        dom_app=dom_app,
        dom_cat=dom_cat,
        dom_us=dom_us,
        dom_title=dom_title,
        event_count=event_count,
        notafk_us=notafk_us,
        afk_present=present,
        max_idle_run=afk_run / 1e6 if present else NAN,
        inputs=vals,
        kb_s=kb,
        mouse_s=mouse,
        any_s=anyv,
        domain=domain,
        sources=sorted(sources),
    )


def _hits(lists: EventBuffer, kind: str, b: int, b_us: int) -> list[int]:
    """Events of one kind with a piece in bucket ``b`` (``split_by_bucket`` semantics)."""
    starts, ends = lists.cols[kind]["start"], lists.cols[kind]["end"]
    hi = bisect.bisect_left(starts, (b + 1) * b_us)
    lo = lists.first(kind, b * b_us)
    return [i for i in range(lo, hi) if max(ends[i] - 1, starts[i]) // b_us >= b]


def _input(
    lists: EventBuffer, b: int, b0: int, b1: int, b_us: int, sources: set[str]
) -> tuple[list[float], float, float, float] | None:
    """Input sums of the bucket (split by overlap), and keyboard / mouse / any seconds."""
    hit = _hits(lists, "input", b, b_us)
    if not hit:
        return [NAN] * 6, NAN, NAN, NAN
    k = lists.cols["input"]
    starts, ends, vals, srcs = k["start"], k["end"], k["vals"], k["src"]
    on_kb, on_mouse = k["kb"], k["mouse"]
    totals = [0.0] * 6
    counts = [0] * 6
    kb = mouse = anyv = 0.0
    for i in hit:
        s, e = starts[i], ends[i]
        if type(srcs[i]) is not str:
            return None
        sources.add(srcs[i])
        p_s = max(s, b0)
        over = max(min(e, b1), p_s) - p_s
        dur = e - s
        frac = over / dur if dur > 0 else 1.0
        for j, x in enumerate(vals[i]):
            v = x * frac
            if v == v:
                totals[j] = totals[j] + v
                counts[j] += 1
        if on_kb[i]:
            kb = kb + over
        if on_mouse[i]:
            mouse = mouse + over
        if on_kb[i] or on_mouse[i]:
            anyv = anyv + over
    out = [totals[j] if counts[j] > 0 else NAN for j in range(6)]
    return out, min(kb, b_us) / 1e6, min(mouse, b_us) / 1e6, min(anyv, b_us) / 1e6


def _domain(
    lists: EventBuffer, b: int, b0: int, b1: int, b_us: int, gap_us: int, sources: set[str]
) -> str | None:
    """The bucket's domain category (most seconds, else the latest recent tab, else unknown)."""
    k = lists.cols["web"]
    starts = k["start"]
    if not starts:
        return UNKNOWN_DOMAIN
    ends, doms, srcs = k["end"], k["dom"], k["src"]
    by_dom: dict[str, int] = {}
    for i in _hits(lists, "web", b, b_us):
        if type(srcs[i]) is not str or type(doms[i]) is not str:
            return None
        sources.add(srcs[i])
        p_s = max(starts[i], b0)
        p_e = max(min(ends[i], b1), p_s)
        if p_e > p_s:
            by_dom[doms[i]] = by_dom.get(doms[i], 0) + (p_e - p_s)
    if by_dom:
        return _argmax_key(by_dom)
    last = bisect.bisect_left(starts, b1) - 1
    if last >= 0 and starts[last] >= b0 - gap_us:
        dom = doms[last]
        return dom if type(dom) is str else None
    return UNKNOWN_DOMAIN
