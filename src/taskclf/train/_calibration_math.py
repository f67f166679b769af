"""Pure array math behind ``train.calibrate``: temperature NLL, exact fits, the grid floor.

Notation: ``p`` is an ``(n, k)`` matrix of row-normalized probabilities, ``y`` the ``(n,)`` true
class indices, ``l = log max(p, PROB_EPS)`` and ``β = 1/T``. Temperature scaling's NLL

    f(β) = 1/n Σ_i [ log Σ_j exp(β l_ij) - β l_{i,y_i} ]

is convex in ``β`` (log-sum-exp of a linear map minus a linear term), with
``f'(β) = 1/n Σ_i (E_{q_i}[l_i] - l_{i,y_i})`` and ``f''(β) = 1/n Σ_i Var_{q_i}[l_i]`` where
``q_i = softmax(β l_i)``; so it is unimodal in ``T`` and in ``log T`` too. Rows are shifted by
their maximum (``lp = l - max_j l``), which leaves ``f`` unchanged and keeps ``exp(β lp) <= 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar
from sklearn.isotonic import IsotonicRegression

from taskclf.core.defaults import (
    TEMPERATURE_BOUNDS,
    TEMPERATURE_GRID_COARSE,
    TEMPERATURE_GRID_FINE_HALF_WIDTH,
    TEMPERATURE_GRID_FINE_STEP,
)
from taskclf.core.errors import InputError
from taskclf.core.metrics import NLL_EPS
from taskclf.infer.calibration import PROB_EPS, IsotonicCalibrator, IsotonicMap, normalize_probs

#: ``xatol`` of the bounded optimizer, in ``log T``.
BRENT_XATOL = 1e-10
#: Relative tolerance on ``β = 1/T`` of the vectorized Newton iteration.
NEWTON_RTOL = 1e-10
#: A group also stops once convexity bounds its remaining NLL gain, ``|f'| (hi - lo)``, below this.
NEWTON_FTOL = 1e-14
_NEWTON_MAX_ITER = 100
Floats = NDArray[np.float64]
NllAt = Callable[[Floats], Floats]


def check_pair(
    y_true_indices: ArrayLike, y_proba: ArrayLike, n_classes: int | None = None
) -> tuple[NDArray[np.int64], Floats]:
    """Validated labels ``(n,)`` and row-normalized probabilities ``(n, k)``."""
    p = normalize_probs(y_proba)
    if p.ndim != 2 or p.shape[0] == 0:
        raise InputError(f"y_proba must have shape (n >= 1, k), got {p.shape}")
    k = p.shape[1] if n_classes is None else n_classes
    if p.shape[1] != k:
        raise InputError(f"y_proba has {p.shape[1]} columns but n_classes is {k}")
    y = np.asarray(y_true_indices)
    if y.shape != (p.shape[0],):
        raise InputError(f"y_true_indices has shape {y.shape}, expected ({p.shape[0]},)")
    if not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"y_true_indices must be integers, got dtype {y.dtype}")
    bad = (y < 0) | (y >= k)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"y_true_indices[{i}] = {int(y[i])} is not a class index in [0, {k})")
    return y.astype(np.int64), p


@dataclass(frozen=True)
class LogProbs:
    """``lp = log max(p, PROB_EPS) - rowmax`` and ``ly = lp[i, y_i]``."""

    lp: Floats
    ly: Floats

    @classmethod
    def build(cls, y: NDArray[np.int64], p: Floats) -> LogProbs:
        lp = np.log(np.maximum(p, PROB_EPS))
        lp -= lp.max(axis=1, keepdims=True)
        return cls(lp, lp[np.arange(len(y)), y])

    def take(self, idx: NDArray[np.intp]) -> LogProbs:
        return LogProbs(self.lp[idx], self.ly[idx])


def row_nll(lp: LogProbs, beta: float | Floats) -> Floats:
    """Per-row NLL of ``softmax(β l)``: ``log Σ_j exp(β lp_ij) - β ly_i``; β scalar or (n,)."""
    b = np.asarray(beta, dtype=np.float64)
    sums = np.exp(lp.lp * (b[:, None] if b.ndim else b)).sum(axis=1)
    out: Floats = np.log(sums) - b * lp.ly
    return out


def picked_nll(q: Floats, y: NDArray[np.int64]) -> Floats:
    """Per-row ``-log max(q[i, y_i], NLL_EPS)`` (as ``core.metrics.nll``)."""
    out: Floats = -np.log(np.clip(q[np.arange(y.size), y], NLL_EPS, 1.0))
    return out


def group_mean(values: Floats, codes: NDArray[np.intp], counts: Floats) -> Floats:
    """Per-group mean of ``values`` (``counts`` rows per group; empty groups give 0)."""
    sums = np.bincount(codes, weights=values, minlength=counts.size)
    out: Floats = sums / np.maximum(counts, 1.0)
    return out


# The documented grid ------------------------------------------------------------------------


def coarse_grid() -> Floats:
    """0.1, 0.2, ..., 5.0 (``TEMPERATURE_GRID_COARSE``), rounded to 10 decimals."""
    start, stop, step = TEMPERATURE_GRID_COARSE
    count = round((stop - start) / step) + 1
    out: Floats = np.round(start + step * np.arange(count), 10)
    return out


def _fine_offsets() -> Floats:
    half = round(TEMPERATURE_GRID_FINE_HALF_WIDTH / TEMPERATURE_GRID_FINE_STEP)
    out: Floats = TEMPERATURE_GRID_FINE_STEP * np.arange(-half, half + 1, dtype=np.float64)
    return out


def fine_grid(center: float) -> Floats:
    """``center ± 0.1`` in steps of 0.01, rounded to 10 decimals, non-positive points dropped."""
    grid = np.round(center + _fine_offsets(), 10)
    out: Floats = grid[grid > 0]
    return out


def search_bounds() -> tuple[float, float]:
    """``TEMPERATURE_BOUNDS`` widened to contain every point the documented grid can visit."""
    coarse = coarse_grid()
    lo = min(TEMPERATURE_BOUNDS[0], float(fine_grid(float(coarse[0]))[0]))
    hi = max(TEMPERATURE_BOUNDS[1], float(fine_grid(float(coarse[-1]))[-1]))
    return lo, hi


def grid_search(lp: LogProbs) -> float:
    """The documented two-pass grid, brute force (ties go to the smaller ``T``)."""
    coarse = coarse_grid()
    best = float(coarse[int(np.argmin([np.mean(row_nll(lp, 1.0 / t)) for t in coarse]))])
    fine = fine_grid(best)
    return float(fine[int(np.argmin([np.mean(row_nll(lp, 1.0 / t)) for t in fine]))])


def _best_of(candidates: Sequence[Floats], nll_at: NllAt) -> tuple[Floats, Floats]:
    """Elementwise best of candidate temperature vectors given in increasing order."""
    best_t = np.full(candidates[0].shape, np.nan)
    best_v = np.full(candidates[0].shape, np.inf)
    for cand in candidates:
        valid = cand > 0
        values = np.where(valid, nll_at(np.where(valid, cand, 1.0)), np.inf)
        better = values < best_v
        best_t = np.where(better, cand, best_t)
        best_v = np.where(better, values, best_v)
    return best_t, best_v


def grid_floor(t_opt: Floats, nll_at: NllAt) -> tuple[Floats, Floats]:
    """Per group, the documented grid's best ``T`` and its NLL, evaluating only grid points
    next to the optimum ``t_opt`` (three per pass; exact because the NLL is unimodal in ``T``).

    ``nll_at`` maps per-group temperatures ``(G,)`` to per-group NLL ``(G,)``.
    """
    coarse = coarse_grid()
    idx = np.rint((t_opt - coarse[0]) / TEMPERATURE_GRID_COARSE[2]).astype(np.int64)
    picks = [coarse[np.clip(idx + d, 0, coarse.size - 1)] for d in (-1, 0, 1)]
    center, _ = _best_of(picks, nll_at)
    offsets = _fine_offsets()
    half = offsets.size // 2
    j = np.rint((t_opt - center) / TEMPERATURE_GRID_FINE_STEP).astype(np.int64) + half
    fine = [np.round(center + offsets[np.clip(j + d, 0, offsets.size - 1)], 10) for d in (-1, 0, 1)]
    return _best_of(fine, nll_at)


# Exact fits ---------------------------------------------------------------------------------


def fit_temperature(lp: LogProbs) -> float:
    """NLL-optimal ``T`` of all rows: bounded Brent on ``log T``, then the grid floor."""
    lo, hi = search_bounds()
    result = minimize_scalar(
        lambda u: float(np.mean(row_nll(lp, math.exp(-u)))),
        bounds=(math.log(lo), math.log(hi)),
        method="bounded",
        options={"xatol": BRENT_XATOL, "maxiter": 500},
    )
    t_opt = math.exp(float(result.x))
    v_opt = float(np.mean(row_nll(lp, 1.0 / t_opt)))

    def nll_at(ts: Floats) -> Floats:
        return np.array([np.mean(row_nll(lp, 1.0 / float(t))) for t in ts])

    grid_t, grid_v = grid_floor(np.array([t_opt]), nll_at)
    return float(grid_t[0]) if grid_v[0] < v_opt else t_opt


def _newton_stats(lp: LogProbs, lp2: Floats, beta_rows: Floats) -> tuple[Floats, Floats]:
    """Per-row ``f'`` and ``f''`` terms in ``β``: ``E_q[lp] - ly`` and ``Var_q[lp]``."""
    e = np.exp(lp.lp * beta_rows[:, None])
    s = e.sum(axis=1)
    m1 = np.einsum("ij,ij->i", e, lp.lp) / s
    m2 = np.einsum("ij,ij->i", e, lp2) / s
    return m1 - lp.ly, np.maximum(m2 - m1 * m1, 0.0)


def _newton_betas(lp: LogProbs, codes: NDArray[np.intp], counts: Floats) -> Floats:
    """Per-group minimizer of the convex NLL in ``β`` by safeguarded Newton, all groups at once.

    Each group keeps a bracket ``[lo, hi]`` holding its minimizer (``f'`` increases). A Newton
    step leaving the bracket becomes a jump to a bound not yet evaluated, else a geometric
    bisection. A group stops when its step or bracket is below ``NEWTON_RTOL`` (relative), when
    convexity bounds its remaining gain ``|f'| (hi - lo)`` below ``NEWTON_FTOL`` (flat tails,
    e.g. confident and always right), or when its minimum lies on a bound. Only rows of
    unfinished groups are evaluated.
    """
    t_lo, t_hi = search_bounds()
    b_lo, b_hi = 1.0 / t_hi, 1.0 / t_lo
    n = counts.size
    beta, lo, hi = np.ones(n), np.full(n, b_lo), np.full(n, b_hi)
    lo_open, hi_open = np.ones(n, bool), np.ones(n, bool)
    active = counts > 0
    lp2 = lp.lp * lp.lp
    for _ in range(_NEWTON_MAX_ITER):
        if not active.any():
            break
        rows = np.flatnonzero(active[codes])
        full = rows.size == codes.size
        sub, sub2 = (lp, lp2) if full else (lp.take(rows), lp2[rows])
        g_rows, h_rows = _newton_stats(sub, sub2, beta[codes[rows]])
        g = group_mean(g_rows, codes[rows], counts)
        h = group_mean(h_rows, codes[rows], counts)
        pos, neg = active & (g > 0), active & (g < 0)
        hi, lo = np.where(pos, beta, hi), np.where(neg, beta, lo)
        hi_open &= ~(pos | (active & (beta >= b_hi)))
        lo_open &= ~(neg | (active & (beta <= b_lo)))
        done = active & ((g == 0) | (neg & (beta >= b_hi)) | (pos & (beta <= b_lo)))
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = np.where(h > 0, beta - g / h, np.nan)
        # A Newton step below float resolution lands on lo/hi; it converged, not left the bracket.
        tiny = np.abs(newton - beta) <= NEWTON_RTOL * beta
        inside = ((newton > lo) & (newton < hi)) | tiny
        step = np.where(inside, newton, np.sqrt(lo * hi))
        step = np.where(~inside & (newton >= hi) & hi_open, b_hi, step)
        step = np.clip(np.where(~inside & (newton <= lo) & lo_open, b_lo, step), b_lo, b_hi)
        flat = np.abs(g) * (hi - lo) <= NEWTON_FTOL  # stay: no better point can be found
        small = (np.abs(step - beta) <= NEWTON_RTOL * beta) | (hi - lo <= NEWTON_RTOL * beta)
        beta = np.where(active & ~done & ~flat, step, beta)
        active &= ~(done | flat | small)
    return beta


def fit_groups(lp: LogProbs, codes: NDArray[np.intp], n_groups: int) -> Floats:
    """Per-group NLL-optimal ``T`` with the per-group grid floor (empty groups get 1.0)."""
    counts = np.bincount(codes, minlength=n_groups).astype(np.float64)
    t_opt = 1.0 / _newton_betas(lp, codes, counts)

    def nll_at(ts: Floats) -> Floats:
        return group_mean(row_nll(lp, 1.0 / ts[codes]), codes, counts)

    v_opt = nll_at(t_opt)
    grid_t, grid_v = grid_floor(t_opt, nll_at)
    out: Floats = np.where(grid_v < v_opt, grid_t, t_opt)
    out[counts == 0] = 1.0
    return out


def fit_isotonic(y: NDArray[np.int64], p: Floats, n_classes: int) -> IsotonicCalibrator:
    """One ``IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")`` per class, its zero
    block replaced by a ramp (:func:`ramp_zero_block`)."""
    maps = []
    for c in range(n_classes):
        reg = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        reg.fit(p[:, c], (y == c).astype(np.float64))
        maps.append(ramp_zero_block(reg.X_thresholds_, reg.y_thresholds_))
    return IsotonicCalibrator(tuple(maps))


def ramp_zero_block(x: ArrayLike, y: ArrayLike) -> IsotonicMap:
    """An isotonic fit's points with the block it maps to 0 replaced by a ramp from (0, 0).

    The fit maps every score below a class's lowest-scored positive to exactly 0, as if the
    class never happened there; on new days, and for new people, it does (the rows' raw
    probabilities were small, not 0), and each such row costs the NLL floor. So the points
    with ``y = 0`` are replaced by ``(0, 0)``: below the first positive point the map is the
    line through the origin, ``q_c`` proportional to ``p_c``; above it the map is unchanged.
    A class without any positive maps to itself (identity): the data say nothing about it.
    """
    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    positive = np.flatnonzero(ys > 0)
    if positive.size == 0:
        return IsotonicMap((0.0, 1.0), (0.0, 1.0))
    k = int(positive[0])
    if k > 0:
        xs, ys = np.concatenate([[0.0], xs[k:]]), np.concatenate([[0.0], ys[k:]])
    return IsotonicMap(tuple(xs.tolist()), tuple(ys.tolist()))


def blend_isotonic(
    own: IsotonicCalibrator, prior: IsotonicCalibrator, weights: ArrayLike
) -> IsotonicCalibrator:
    """Class by class the map ``w_c own_c + (1 - w_c) prior_c`` as one isotonic calibrator.

    Both maps are piecewise linear and constant outside their points, so the blend is exactly
    the piecewise-linear map through the union of their points (monotone and within [0, 1]
    again: IEEE rounding is monotone). ``w_c = 1`` keeps ``own_c`` and ``w_c = 0`` takes
    ``prior_c``, point for point.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (own.n_classes,) or prior.n_classes != own.n_classes:
        raise InputError(
            f"blend_isotonic: {own.n_classes} and {prior.n_classes} classes, weights {w.shape}"
        )
    if not (np.isfinite(w).all() and (w >= 0).all() and (w <= 1).all()):
        raise InputError("blend_isotonic: weights must lie in [0, 1]")
    maps = []
    for a, b, wc in zip(own.regressors, prior.regressors, w.tolist(), strict=True):
        if wc == 1.0 or wc == 0.0:
            maps.append(a if wc == 1.0 else b)
            continue
        x = np.union1d(a.x, b.x)
        y = wc * np.interp(x, a.x, a.y) + (1.0 - wc) * np.interp(x, b.x, b.y)
        maps.append(IsotonicMap(tuple(x.tolist()), tuple(np.clip(y, 0.0, 1.0).tolist())))
    return IsotonicCalibrator(tuple(maps))
