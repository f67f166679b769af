"""One closed minute, compiled: the online fast path of feature building.

:func:`close_minute` computes the feature values of exactly one bucket from the buffered
events (``features._buffer``) and the carried fold state, following the batch definitions
step by step (see the docstrings of ``_minutes``, ``windows``, ``sessions`` and
``dynamics``) with the same floating-point operations in the same order, so the values equal
the batch row bit for bit (tested against ``build_features`` with random event mixes, minute
by minute). It is compiled with numba (``core._jit``): the same steps as Python code cost a
few hundred microseconds a minute, several times the model's prediction.

Stage 1 (per bucket): overlap-resolved window pieces (the covering event that started last
wins), window time per app with the dominant app, category and title (ties: the lexically
smallest, by :class:`~taskclf.features._strings.Interned` rank), AFK unions with not-afk
winning, input counts split by overlap, the browser domain with its fallback, the sources.
Stage 2 (the fold): app runs, sessions and title repeats, the 5/15-minute look-backs, deltas,
and the app shares of the look-back windows. The entropy of those shares needs numpy's own
``log`` (the batch code's; libm's differs in the last bit for a fraction of inputs), so
:func:`close_minute` returns the shares, the caller takes ``np.log`` of them, and
:func:`finish_entropy` completes the row.

Everything is int64 / float64 arrays; the layouts are the constants below. A value the batch
code treats specially (a missing app, title, source or domain) makes the kernel return
:data:`FALLBACK` before it changes any state, and the caller runs the batch code instead.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.typing import NDArray

from taskclf.core._jit import njit

I64 = NDArray[np.int64]
F64 = NDArray[np.float64]
B8 = NDArray[np.bool_]

# return status
NO_ROW: Final = 0
ROW: Final = 1
FALLBACK: Final = 2
GROW: Final = 3  # the history's app table (or the sources output) is full: grow, call again

# consts[]: the bucket, parameters and reserved string codes
C_BUCKET, C_BUCKET_US, C_GAP_US, C_K5, C_K15, C_BUCKET_S = 0, 1, 2, 3, 4, 5
C_NO_APP, C_NO_CAT, C_EMPTY, C_UNKNOWN_DOMAIN = 6, 7, 8, 9
N_CONSTS: Final = 10
# state[]: the fold's scalars (-1 = none)
S_LAST_ACTIVE, S_SESSION_START, S_RUN_APP, S_RUN_END, S_RUN_START = 0, 1, 2, 3, 4
S_ROWS, S_APPS, S_TITLES = 5, 6, 7
N_STATE: Final = 8
# history rows (the last 15 minutes): hist_i[r] = minute, change, first app, app count;
# hist_f[r] = keys_per_min, clicks_per_min, mouse_distance; hist_apps[a] = app code, µs
H_MINUTE, H_CHANGE, H_APP0, H_NAPP = 0, 1, 2, 3
# out_i[]: what the row needs beyond numbers
O_STATUS, O_APP, O_CAT, O_TITLE, O_DOMAIN, O_SESSION, O_SOURCES, O_SHARES = 0, 1, 2, 3, 4, 5, 6, 7
N_OUT_I: Final = 8
# spans[w] (w = 0: 5 minutes, 1: 15 minutes) = first share, stop, total, top-2 share
#: The numeric columns :func:`close_minute` writes into ``out_f``, in this order.
OUT_COLUMNS: Final = (
    "app_switch_count_last_5m",
    "app_foreground_time_ratio",
    "app_change_count",
    "app_dwell_time_seconds",
    "app_entropy_5m",
    "app_entropy_15m",
    "top2_app_concentration_15m",
    "idle_return_indicator",
    "keys_per_min",
    "backspace_ratio",
    "shortcut_rate",
    "clicks_per_min",
    "scroll_events_per_min",
    "mouse_distance",
    "active_seconds_keyboard",
    "active_seconds_mouse",
    "active_seconds_any",
    "max_idle_run_seconds",
    "event_density",
    "title_repeat_count_session",
    "keys_per_min_rolling_5",
    "keys_per_min_rolling_15",
    "mouse_distance_rolling_5",
    "mouse_distance_rolling_15",
    "keys_per_min_delta",
    "clicks_per_min_delta",
    "mouse_distance_delta",
    "app_switch_count_last_15m",
    "session_length_so_far",
)
OUT_INDEX: Final = {name: i for i, name in enumerate(OUT_COLUMNS)}
#: Kernel columns the schema stores as ints / bools.
INT_OUT: Final = frozenset(
    {
        "app_switch_count_last_5m",
        "app_change_count",
        "title_repeat_count_session",
        "app_switch_count_last_15m",
    }
)
BOOL_OUT: Final = frozenset({"idle_return_indicator"})
_E4, _E5, _T2 = (
    OUT_INDEX["app_entropy_5m"],
    OUT_INDEX["app_entropy_15m"],
    OUT_INDEX["top2_app_concentration_15m"],
)
NAN: Final = float("nan")


@njit
def _fmin(a: float, b: float) -> float:
    """Python's ``min(a, b)`` of floats (``a`` unless ``b < a``: a NaN ``a`` stays)."""
    return b if b < a else a


@njit
def _bisect(rows: I64, lo: int, n: int, x: int) -> int:
    """``bisect_left`` of ``x`` in ``rows[lo:n, 0]`` (an absolute index)."""
    a, b = lo, n
    while a < b:
        mid = (a + b) // 2
        if rows[mid, 0] < x:
            a = mid + 1
        else:
            b = mid
    return a


@njit
def _sort_pairs(s: I64, e: I64, m: int) -> None:
    """Sort ``(s[i], e[i])`` for ``i < m`` as tuples, in place (insertion sort: m is small)."""
    for i in range(1, m):
        ks, ke = s[i], e[i]
        j = i - 1
        while j >= 0 and (s[j] > ks or (s[j] == ks and e[j] > ke)):
            s[j + 1], e[j + 1] = s[j], e[j]
            j -= 1
        s[j + 1], e[j + 1] = ks, ke


@njit
def _union(s: I64, e: I64, m: int) -> int:
    """Union of the intervals ``i < m`` (touching ones merged), in place; the new count."""
    _sort_pairs(s, e, m)
    k = 0
    for i in range(m):
        if k > 0 and s[i] <= e[k - 1]:
            if e[i] > e[k - 1]:
                e[k - 1] = e[i]
        else:
            s[k], e[k] = s[i], e[i]
            k += 1
    return k


@njit
def _covers(s: I64, e: I64, m: int, x: int) -> bool:
    """Whether one of the intervals ``i < m`` contains ``x``."""
    for i in range(m):  # noqa: SIM110 (a loop: numba compiles no generator into any())
        if s[i] <= x < e[i]:
            return True
    return False


@njit
def _longest_gap(a_s: I64, a_e: I64, na: int, b_s: I64, b_e: I64, nb: int) -> int:
    """The longest interval of ``A \\ B`` (sorted disjoint lists; maximal pieces)."""
    if na == 0:
        return 0
    if nb == 0:
        best = 0
        for i in range(na):
            best = max(best, a_e[i] - a_s[i])
        return best
    pts = np.empty(2 * (na + nb), dtype=np.int64)
    for i in range(na):
        pts[2 * i], pts[2 * i + 1] = a_s[i], a_e[i]
    for i in range(nb):
        pts[2 * na + 2 * i], pts[2 * na + 2 * i + 1] = b_s[i], b_e[i]
    pts = np.unique(pts)
    ks = np.empty(pts.size, dtype=np.int64)
    ke = np.empty(pts.size, dtype=np.int64)
    k = 0
    for p in range(pts.size - 1):
        lo, hi = pts[p], pts[p + 1]
        if _covers(a_s, a_e, na, lo) and not _covers(b_s, b_e, nb, lo):
            ks[k], ke[k] = lo, hi
            k += 1
    k = _union(ks, ke, k)
    best = 0
    for i in range(k):
        best = max(best, ke[i] - ks[i])
    return best


@njit
def _pieces(w: I64, lo: int, n: int, longest: int, b0: int, b1: int) -> tuple[I64, I64, I64]:
    """Foreground pieces inside ``[b0, b1)``: (start, end, window row), in time order."""
    first = _bisect(w, lo, n, b0 - longest)
    hi = _bisect(w, lo, n, b1)
    cand = np.empty(max(hi - first, 0), dtype=np.int64)
    nc = 0
    for i in range(first, hi):
        if w[i, 1] > b0 and w[i, 1] > w[i, 0]:
            cand[nc] = i
            nc += 1
    if nc == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
    if nc == 1:
        i = cand[0]
        one = np.empty(1, np.int64)
        one[0] = i
        return np.array([max(w[i, 0], b0)]), np.array([min(w[i, 1], b1)]), one
    pts = np.empty(2 + 2 * nc, dtype=np.int64)
    pts[0], pts[1] = b0, b1
    for j in range(nc):
        i = cand[j]
        pts[2 + 2 * j] = max(w[i, 0], b0)
        pts[3 + 2 * j] = min(w[i, 1], b1)
    pts = np.unique(pts)
    ps = np.empty(pts.size, np.int64)
    pe = np.empty(pts.size, np.int64)
    pi = np.empty(pts.size, np.int64)
    k = 0
    for p in range(pts.size - 1):
        a, c = pts[p], pts[p + 1]
        win = -1
        for j in range(nc):  # ascending canonical order: the last cover wins
            i = cand[j]
            if w[i, 0] <= a < w[i, 1]:
                win = i
        if win < 0:
            continue
        if k > 0 and pi[k - 1] == win and pe[k - 1] == a:
            pe[k - 1] = c
        else:
            ps[k], pe[k], pi[k] = a, c, win
            k += 1
    return ps[:k], pe[:k], pi[:k]


@njit
def _add_code(codes: I64, m: int, code: int) -> int:
    """Add ``code`` to the distinct ``codes[:m]``; the new count."""
    for j in range(m):
        if codes[j] == code:
            return m
    codes[m] = code
    return m + 1


@njit
def _slot(keys: I64, m: int, key: int) -> int:
    """Position of ``key`` in the distinct ``keys[:m]`` (``m`` when absent)."""
    for j in range(m):
        if keys[j] == key:
            return j
    return m


@njit
def _tally(keys: I64, sums: I64, m: int, key: int, value: int) -> int:
    """``sums[key] += value`` over the distinct ``keys[:m]``; the new count."""
    j = _slot(keys, m, key)
    if j == m:
        keys[m], sums[m] = key, value
        return m + 1
    sums[j] += value
    return m


@njit
def _argmax(keys: I64, sums: I64, m: int, rank: I64) -> int:
    """Position of the largest sum; ties: the lexically smallest key."""
    best = 0
    for j in range(1, m):
        if sums[j] > sums[best] or (sums[j] == sums[best] and rank[keys[j]] < rank[keys[best]]):
            best = j
    return best


@njit
def _hit(rows: I64, i: int, b: int, b_us: int) -> bool:
    """Whether event ``i`` has a piece in bucket ``b`` (``split_by_bucket`` semantics)."""
    return bool(max(rows[i, 1] - 1, rows[i, 0]) // b_us >= b)


@njit
def close_minute(
    w: I64,
    a: I64,
    inp: I64,
    inp_f: F64,
    web: I64,
    bounds: I64,
    rank: I64,
    is_str: B8,
    consts: I64,
    state: I64,
    hist_i: I64,
    hist_f: F64,
    hist_apps: I64,
    title_count: I64,
    session_titles: I64,
    out_f: F64,
    out_i: I64,
    sources: I64,
    shares: F64,
    spans: F64,
) -> int:
    """Close bucket ``consts[C_BUCKET]``: fill ``out_f``/``out_i`` and update the state.

    ``bounds[k] = lo, n, longest`` of kind ``k`` (window, afk, input, web). Returns
    :data:`ROW`, :data:`NO_ROW` (the bucket has no row; nothing changes), :data:`FALLBACK`
    or :data:`GROW` (nothing changes either). ``out_i[O_SHARES]`` shares are written for
    :func:`finish_entropy`.
    """
    b, b_us, gap = consts[C_BUCKET], consts[C_BUCKET_US], consts[C_GAP_US]
    b0, b1 = b * b_us, (b + 1) * b_us
    w_lo, w_n, w_long = bounds[0, 0], bounds[0, 1], bounds[0, 2]
    ps, pe, pi = _pieces(w, w_lo, w_n, w_long, b0, b1)
    # AFK: unions per status inside the bucket
    a_lo, a_n = bounds[1, 0], bounds[1, 1]
    first = _bisect(a, a_lo, a_n, b0 - bounds[1, 2])
    hi = _bisect(a, a_lo, a_n, b1)
    m = max(hi - first, 0)
    na_s, na_e = np.empty(m, np.int64), np.empty(m, np.int64)
    af_s, af_e = np.empty(m, np.int64), np.empty(m, np.int64)
    n_na = n_af = 0
    n_src_cap = sources.size
    src = np.empty(
        m + 2 * ps.size + (bounds[2, 1] - bounds[2, 0]) + (bounds[3, 1] - bounds[3, 0]) + 1,
        np.int64,
    )
    n_src = 0
    present = False
    for i in range(first, hi):
        s, e = a[i, 0], a[i, 1]
        if e > s and e > b0:
            if a[i, 3]:
                na_s[n_na], na_e[n_na] = max(s, b0), min(e, b1)
                n_na += 1
            else:
                af_s[n_af], af_e[n_af] = max(s, b0), min(e, b1)
                n_af += 1
            if not is_str[a[i, 2]]:
                return FALLBACK
            n_src = _add_code(src, n_src, a[i, 2])
            present = True
    n_na = _union(na_s, na_e, n_na)
    notafk_us = 0
    for i in range(n_na):
        notafk_us += na_e[i] - na_s[i]
    window_us = 0
    for k in range(ps.size):
        window_us += pe[k] - ps[k]
    if window_us <= 0 and notafk_us <= 0:
        return NO_ROW
    n_af = _union(af_s, af_e, n_af)
    afk_run = _longest_gap(af_s, af_e, n_af, na_s, na_e, n_na)
    # window time per app, dominant app and title
    np_ = ps.size
    app_keys, app_us, app_cat = (
        np.empty(np_, np.int64),
        np.empty(np_, np.int64),
        np.empty(np_, np.int64),
    )
    n_apps = 0
    for k in range(np_):
        i = pi[k]
        if not (is_str[w[i, 3]] and is_str[w[i, 4]] and is_str[w[i, 2]]):
            return FALLBACK
        j = _slot(app_keys, n_apps, w[i, 3])
        if j == n_apps:
            app_keys[j], app_us[j] = w[i, 3], 0
            n_apps += 1
        app_us[j] += pe[k] - ps[k]
        app_cat[j] = w[i, 5]  # the category of the app's last piece
        n_src = _add_code(src, n_src, w[i, 2])
    if n_apps > 0:
        top = _argmax(app_keys, app_us, n_apps, rank)
        dom_app, dom_cat, dom_us = app_keys[top], app_cat[top], app_us[top]
        t_keys, t_us = np.empty(np_, np.int64), np.empty(np_, np.int64)
        n_t = 0
        for k in range(np_):
            if w[pi[k], 3] == dom_app:
                n_t = _tally(t_keys, t_us, n_t, w[pi[k], 4], pe[k] - ps[k])
        dom_title = t_keys[_argmax(t_keys, t_us, n_t, rank)]
    else:
        dom_app, dom_cat, dom_us, dom_title = consts[C_NO_APP], consts[C_NO_CAT], 0, consts[C_EMPTY]
    event_count = float(_bisect(w, w_lo, w_n, b1) - _bisect(w, w_lo, w_n, b0))
    # input: sums split by overlap, keyboard / mouse / any seconds
    i_lo, i_n = bounds[2, 0], bounds[2, 1]
    totals = np.zeros(6)
    counts = np.zeros(6, np.int64)
    kb = mouse = anyv = 0.0
    hits = 0
    for i in range(_bisect(inp, i_lo, i_n, b0 - bounds[2, 2]), _bisect(inp, i_lo, i_n, b1)):
        if not _hit(inp, i, b, b_us):
            continue
        hits += 1
        s, e = inp[i, 0], inp[i, 1]
        if not is_str[inp[i, 2]]:
            return FALLBACK
        n_src = _add_code(src, n_src, inp[i, 2])
        p_s = max(s, b0)
        over = max(min(e, b1), p_s) - p_s
        dur = e - s
        frac = over / dur if dur > 0 else 1.0
        for j in range(6):
            v = inp_f[i, j] * frac
            if v == v:
                totals[j] = totals[j] + v
                counts[j] += 1
        if inp_f[i, 6] != 0.0:
            kb = kb + over
        if inp_f[i, 7] != 0.0:
            mouse = mouse + over
        if inp_f[i, 6] != 0.0 or inp_f[i, 7] != 0.0:
            anyv = anyv + over
    if hits:
        for j in range(6):
            if counts[j] == 0:
                totals[j] = NAN
        kb_s = _fmin(kb, float(b_us)) / 1e6
        mouse_s = _fmin(mouse, float(b_us)) / 1e6
        any_s = _fmin(anyv, float(b_us)) / 1e6
    else:
        totals[:] = NAN
        kb_s = mouse_s = any_s = NAN
    # the browser domain: most seconds, else the latest recent tab, else unknown
    g_lo, g_n = bounds[3, 0], bounds[3, 1]
    domain = consts[C_UNKNOWN_DOMAIN]
    if g_n > g_lo:
        d_keys, d_us = np.empty(g_n - g_lo, np.int64), np.empty(g_n - g_lo, np.int64)
        n_d = 0
        g_hi = _bisect(web, g_lo, g_n, b1)
        for i in range(_bisect(web, g_lo, g_n, b0 - bounds[3, 2]), g_hi):
            if not _hit(web, i, b, b_us):
                continue
            if not (is_str[web[i, 2]] and is_str[web[i, 3]]):
                return FALLBACK
            n_src = _add_code(src, n_src, web[i, 2])
            p_s = max(web[i, 0], b0)
            p_e = max(min(web[i, 1], b1), p_s)
            if p_e > p_s:
                n_d = _tally(d_keys, d_us, n_d, web[i, 3], p_e - p_s)
        if n_d > 0:
            domain = d_keys[_argmax(d_keys, d_us, n_d, rank)]
        else:
            last = g_hi - 1
            if last >= g_lo and web[last, 0] >= b0 - gap:
                if not is_str[web[last, 3]]:
                    return FALLBACK
                domain = web[last, 3]
    # room for the row in the history, and for the sources: checked before any change
    n_rows, n_hist_apps = state[S_ROWS], state[S_APPS]
    if n_rows + 1 > hist_i.shape[0] or n_hist_apps + n_apps > hist_apps.shape[0]:
        return GROW
    if n_src > n_src_cap:
        return GROW
    # ---- the fold (state changes from here on) ----
    # app runs (sessions.run_fold): pieces in time order
    prev_app, prev_end, run_start = state[S_RUN_APP], state[S_RUN_END], state[S_RUN_START]
    has_prev = prev_app >= 0
    change = 0
    dwell = 0.0
    for k in range(np_):
        app = w[pi[k], 3]
        changed = has_prev and app != prev_app
        if not has_prev or changed or ps[k] - prev_end >= gap:
            run_start = ps[k]
        if changed:
            change += 1
        if app == dom_app:
            dwell = (pe[k] - run_start) / 1e6
        prev_app, prev_end, has_prev = app, pe[k], True
    # sessions (sessions.session_fold for one row)
    active = notafk_us > 0 or (not present and window_us > 0)
    last_active = state[S_LAST_ACTIVE]
    starts = active and (last_active < 0 or (b - last_active - 1) * b_us >= gap)
    if state[S_SESSION_START] < 0:
        starts = True
    if starts:
        state[S_SESSION_START] = b
        for j in range(state[S_TITLES]):
            title_count[session_titles[j]] = 0
        state[S_TITLES] = 0
    if active:
        state[S_LAST_ACTIVE] = b
    start_min = state[S_SESSION_START]
    repeat = title_count[dom_title]
    if repeat == 0:
        session_titles[state[S_TITLES]] = dom_title
        state[S_TITLES] += 1
    title_count[dom_title] = repeat + 1
    if has_prev:
        state[S_RUN_APP], state[S_RUN_END], state[S_RUN_START] = prev_app, prev_end, run_start
    # input rates (_fold._input_rates)
    scale = 60.0 / consts[C_BUCKET_S]
    presses, backspaces = totals[0], totals[4]
    ratio = _fmin(backspaces / presses, 1.0) if presses > 0 else NAN
    keys = presses * scale
    clicks_pm = totals[1] * scale
    mouse_d = totals[2] * 1.0
    # the row joins the history (its apps in any order: only their sums are used)
    has_prev_row = n_rows > 0
    prev_minute = hist_i[n_rows - 1, H_MINUTE] if has_prev_row else 0
    prev_keys = hist_f[n_rows - 1, 0] if has_prev_row else NAN
    prev_clicks = hist_f[n_rows - 1, 1] if has_prev_row else NAN
    prev_mouse = hist_f[n_rows - 1, 2] if has_prev_row else NAN
    hist_i[n_rows, H_MINUTE], hist_i[n_rows, H_CHANGE] = b, change
    hist_i[n_rows, H_APP0], hist_i[n_rows, H_NAPP] = n_hist_apps, n_apps
    hist_f[n_rows, 0], hist_f[n_rows, 1], hist_f[n_rows, 2] = keys, clicks_pm, mouse_d
    for j in range(n_apps):
        hist_apps[n_hist_apps + j, 0], hist_apps[n_hist_apps + j, 1] = app_keys[j], app_us[j]
    n_rows += 1
    n_hist_apps += n_apps
    # look-backs (dynamics.dynamic_features for the last row)
    t = n_rows - 1
    look = np.zeros((2, 5))
    for wi in range(2):
        window = consts[C_K5] if wi == 0 else consts[C_K15]
        chg = ksum = msum = 0.0
        nk = nm = 0
        for r in range(t, max(t - window, -1), -1):
            if b - hist_i[r, H_MINUTE] >= window:
                break
            chg = chg + hist_i[r, H_CHANGE]
            v = hist_f[r, 0]
            if v == v:
                ksum = ksum + v
                nk += 1
            v = hist_f[r, 2]
            if v == v:
                msum = msum + v
                nm += 1
        look[wi, 0], look[wi, 1], look[wi, 2] = chg, ksum, float(nk)
        look[wi, 3], look[wi, 4] = msum, float(nm)
    near = has_prev_row and b - prev_minute < 2
    # app shares of the look-back windows (windows._app_window_one), logs taken outside
    merged_keys = np.empty(max(n_hist_apps, 1), np.int64)
    merged_us = np.empty(max(n_hist_apps, 1), np.int64)
    n_m = 0
    r = n_rows
    n_sh = 0
    for wi in range(2):
        window = consts[C_K5] if wi == 0 else consts[C_K15]
        while r > 0 and n_rows - r < window and b - hist_i[r - 1, H_MINUTE] < window:
            r -= 1
            a0 = hist_i[r, H_APP0]
            for j in range(a0, a0 + hist_i[r, H_NAPP]):
                n_m = _tally(merged_keys, merged_us, n_m, hist_apps[j, 0], hist_apps[j, 1])
        order = np.argsort(rank[merged_keys[:n_m]])
        total = 0.0
        for j in range(n_m):
            total += float(merged_us[order[j]])
        spans[wi, 0] = n_sh
        if not total > 0:
            spans[wi, 1], spans[wi, 2], spans[wi, 3] = n_sh, NAN, NAN
            continue
        desc = np.sort(merged_us[:n_m])[::-1]
        top_sum = 0.0
        for j in range(min(2, n_m)):
            top_sum += float(desc[j])
        for j in range(n_m):
            shares[n_sh] = merged_us[order[j]] / total
            n_sh += 1
        spans[wi, 1], spans[wi, 2], spans[wi, 3] = n_sh, total, _fmin(top_sum / total, 1.0)
    # keep the last 15 minutes of rows
    keep_from = b - consts[C_K15]
    drop = 0
    while drop < n_rows and hist_i[drop, H_MINUTE] <= keep_from:
        drop += 1
    if drop:
        shift = hist_i[drop, H_APP0] if drop < n_rows else n_hist_apps
        for r2 in range(drop, n_rows):
            hist_i[r2 - drop] = hist_i[r2]
            hist_i[r2 - drop, H_APP0] -= shift
            hist_f[r2 - drop] = hist_f[r2]
        for j in range(shift, n_hist_apps):
            hist_apps[j - shift] = hist_apps[j]
        n_rows -= drop
        n_hist_apps -= shift
    state[S_ROWS], state[S_APPS] = n_rows, n_hist_apps
    # the row
    out_f[0] = look[0, 0]
    out_f[1] = _fmin(dom_us / b_us, 1.0)
    out_f[2] = change
    out_f[3] = dwell
    out_f[7] = 1.0 if (starts and active) else 0.0
    out_f[8] = keys
    out_f[9] = ratio
    out_f[10] = totals[5] * scale
    out_f[11] = clicks_pm
    out_f[12] = totals[3] * scale
    out_f[13] = mouse_d
    out_f[14] = _fmin(kb_s, 60.0)
    out_f[15] = _fmin(mouse_s, 60.0)
    out_f[16] = _fmin(any_s, 60.0)
    out_f[17] = _fmin(afk_run / 1e6 if present else NAN, 60.0)
    out_f[18] = event_count * (60e6 / b_us)
    out_f[19] = repeat
    for j in range(2):  # rolling means: keys then mouse, each over 5 then 15 minutes
        for wi in range(2):
            tot, cnt = look[wi, 1 + 2 * j], look[wi, 2 + 2 * j]
            out_f[20 + 2 * j + wi] = tot / cnt if cnt > 0 else NAN
    out_f[24] = keys - (prev_keys if near else NAN)
    out_f[25] = clicks_pm - (prev_clicks if near else NAN)
    out_f[26] = mouse_d - (prev_mouse if near else NAN)
    out_f[27] = look[1, 0]
    out_f[28] = ((b + 1) - start_min) * (b_us / 1e6)
    out_i[O_STATUS] = ROW
    out_i[O_APP], out_i[O_CAT], out_i[O_TITLE] = dom_app, dom_cat, dom_title
    out_i[O_DOMAIN], out_i[O_SESSION] = domain, start_min
    out_i[O_SOURCES], out_i[O_SHARES] = n_src, n_sh
    for j in range(n_src):
        sources[j] = src[j]
    return ROW


@njit
def finish_entropy(out_f: F64, shares: F64, logs: F64, spans: F64) -> None:
    """App entropy of the 5- and 15-minute windows and the top-2 share, into ``out_f``."""
    for wi in range(2):
        first, stop, total = int(spans[wi, 0]), int(spans[wi, 1]), spans[wi, 2]
        if total != total:
            ent = NAN
        else:
            acc = 0.0
            for j in range(first, stop):
                p = shares[j]
                acc += -p * logs[j] if p > 0 else 0.0
            ent = acc + 0.0
        out_f[_E4 + wi] = ent
    out_f[_T2] = spans[1, 3]
