"""Per-user calibrators under cross-validation: folds, credibility shrinkage, isotonic blending.

The cross-validation half of ``train._personalize``: each eligible user's calibrator is fitted
on the user's other folds and scored on the held-out one, as it will be deployed (shrunk or
blended toward the global calibrator), and then fitted on all the user's rows.

**Credibility shrinkage** (temperature method). A user's temperature fitted on a few days is
noisy, and its error is not only sampling noise: minutes of one day are strongly correlated, so
a user's miscalibration on the next days differs from the fitted one more than the row count
suggests. The per-user temperature is therefore blended with the global one on the log scale,

    log T_u* = w log T_u + (1 - w) log T_global,    w = n / (n + k),

for a user with ``n`` labeled windows and ``k`` = ``prior_windows`` (Bühlmann's credibility
weight, Bühlmann 1967; equivalently the MAP estimate of ``log T`` under a Gaussian prior centred
on the global temperature whose weight equals ``k`` windows' worth of evidence). The same blend
is applied inside the keep-or-fallback cross-validation (with the training folds' ``n``), so a
user is kept only if the calibrator actually deployed beats the global one on held-out days.
``prior_windows=0`` turns the blend off.

**Isotonic blending.** A user's isotonic map for class ``c`` is learned from the user's windows
of that class: from a few it is jagged, and from none it is the identity
(``train._calibration_math.ramp_zero_block``), which drops what the global map learned about
the model's bias for that class. On the real mouse-stress study (7 classes, 8-30 windows per
user; ``tests/test_calibration_real.py``) unblended per-user maps were worse than the global
calibrator on held-out sessions by more than 0.1 nats for 13 of 35 users (up to 1.9). So each
class's map is blended with the global map, point for point,

    q_c = w_c own_c(p_c) + (1 - w_c) global_c(p_c),    w_c = n_c / (n_c + k),

with ``n_c`` the user's windows of class ``c`` and ``k`` = ``prior_positives``
(``train._calibration_math.blend_isotonic``; the result is again an isotonic map, so the store
format is unchanged): then none of the 35 was worse by more than 0.1 (at most 0.063), and on
average they gained 0.10 nats. The cross-validation blends the same way, with the fold's
counts. ``prior_positives=0`` turns the blend off.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from taskclf.infer.calibration import Calibrator, IsotonicCalibrator, TemperatureCalibrator
from taskclf.train._calibration_math import (
    LogProbs,
    blend_isotonic,
    fit_groups,
    fit_isotonic,
    picked_nll,
    row_nll,
)
from taskclf.train._keep import GainStats, paired_gain_stats

#: Weight of the global temperature in a user's temperature, in labeled windows (module doc).
DEFAULT_PRIOR_WINDOWS = 250
#: Weight of the global isotonic map of a class in a user's map, in the user's windows of that
#: class (module doc).
DEFAULT_PRIOR_POSITIVES = 20


def fold_ids(
    codes: NDArray[np.intp], days: NDArray[np.int64], n_days: NDArray[np.int64], folds: int
) -> NDArray[np.int64]:
    """Fold of each row: the rank of its day among its user's days, mod ``folds``, for users
    with at least ``folds`` days; else contiguous blocks of the user's rows in given order."""
    frame = pd.DataFrame({"u": codes, "d": days})
    by_user = frame.groupby("u")
    day_rank = by_user["d"].rank(method="dense").to_numpy(np.int64) - 1
    pos = by_user.cumcount().to_numpy(np.int64)
    size = by_user["u"].transform("size").to_numpy(np.int64)
    out: NDArray[np.int64] = np.where(n_days[codes] >= folds, day_rank % folds, pos * folds // size)
    return out


def credibility_weights(windows: ArrayLike, prior_windows: float) -> NDArray[np.float64]:
    """``w = n / (n + k)`` per user (``n`` windows, ``k`` = ``prior_windows``); 1 when k = 0."""
    n = np.asarray(windows, dtype=np.float64)
    if prior_windows == 0:
        return np.ones_like(n)
    out: NDArray[np.float64] = n / (n + prior_windows)
    return out


def shrink_temperatures(
    temperatures: ArrayLike, weights: ArrayLike, t_global: float
) -> NDArray[np.float64]:
    """``exp(w log T + (1 - w) log T_global)`` elementwise (``T`` unchanged where ``w`` = 1)."""
    t = np.asarray(temperatures, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    blended = np.exp(w * np.log(t) + (1.0 - w) * math.log(t_global))
    out: NDArray[np.float64] = np.where(w == 1.0, t, blended)
    return out


@dataclass(frozen=True)
class _Cv:
    heldout_nll: NDArray[np.float64]  # per cross-validated row
    final: list[Calibrator]  # per cross-validated user, fitted on all its rows (and shrunk)
    temperatures: list[float | None]  # fitted on all its rows, before shrinkage
    weights: list[float | None]  # credibility of the user's own temperature


def _cv_temperature(
    lp: LogProbs,
    rows: NDArray[np.intp],
    ecode: NDArray[np.intp],
    n_users: int,
    fold: NDArray[np.int64],
    prior: tuple[float, float],
) -> _Cv:
    """Held-out NLL of each user's shrunk temperature fitted on the other folds, and the final
    fits; ``prior`` is ``(global temperature, prior_windows)``."""
    t_global, prior_windows = prior
    heldout = np.empty(rows.size)
    for k in np.unique(fold):
        train, test = fold != k, fold == k
        temps = fit_groups(lp.take(rows[train]), ecode[train], n_users)
        w = credibility_weights(np.bincount(ecode[train], minlength=n_users), prior_windows)
        temps = shrink_temperatures(temps, w, t_global)
        heldout[test] = row_nll(lp.take(rows[test]), 1.0 / temps[ecode[test]])
    fitted = fit_groups(lp.take(rows), ecode, n_users)
    w = credibility_weights(np.bincount(ecode, minlength=n_users), prior_windows)
    final = shrink_temperatures(fitted, w, t_global)
    return _Cv(
        heldout,
        [TemperatureCalibrator(float(t)) for t in final],
        [float(t) for t in fitted],
        [float(x) for x in w],
    )


def _blended_isotonic(
    y: NDArray[np.int64],
    p: NDArray[np.float64],
    prior: tuple[IsotonicCalibrator, float],
) -> IsotonicCalibrator:
    """The user's isotonic fit on ``(y, p)`` blended with the global one (module doc)."""
    own = fit_isotonic(y, p, p.shape[1])
    global_cal, prior_positives = prior
    if prior_positives == 0:
        return own
    n = np.bincount(y, minlength=p.shape[1]).astype(np.float64)
    return blend_isotonic(own, global_cal, n / (n + prior_positives))


def _cv_isotonic(
    labeled: tuple[NDArray[np.int64], NDArray[np.float64]],
    rows: NDArray[np.intp],
    ecode: NDArray[np.intp],
    n_users: int,
    fold: NDArray[np.int64],
    prior: tuple[IsotonicCalibrator, float],
) -> _Cv:
    """As :func:`_cv_temperature`; ``prior`` is ``(global isotonic, prior_positives)``."""
    y, p = labeled
    heldout = np.empty(rows.size)
    final: list[Calibrator] = []
    order = np.argsort(ecode, kind="stable")
    bounds = np.searchsorted(ecode[order], np.arange(n_users + 1))
    for e in range(n_users):
        mine = order[bounds[e] : bounds[e + 1]]
        for k in np.unique(fold[mine]).tolist():
            tr, te = rows[mine[fold[mine] != k]], rows[mine[fold[mine] == k]]
            cal = _blended_isotonic(y[tr], p[tr], prior)
            heldout[mine[fold[mine] == k]] = picked_nll(cal.calibrate(p[te]), y[te])
        final.append(_blended_isotonic(y[rows[mine]], p[rows[mine]], prior))
    return _Cv(heldout, final, [None] * n_users, [None] * n_users)


@dataclass(frozen=True)
class CrossValidation:
    """Cross-validated users (``index``: user code -> position), their fits and gain stats."""

    index: dict[int, int]
    fits: _Cv
    stats: GainStats | None


def cross_validate(
    lp: LogProbs,
    labeled: tuple[NDArray[np.int64], NDArray[np.float64]],
    keys: tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.int64]],
    cv_users: NDArray[np.intp],
    global_rows: NDArray[np.float64],
    folds: int,
    prior: tuple[Calibrator, float],
) -> CrossValidation:
    """Each cross-validated user's held-out NLL, final fit and held-out gain over global.

    ``labeled`` is ``(y, p)``; ``keys`` is ``(user codes, day keys, days per user)``;
    ``prior`` is ``(global calibrator, its weight)``, the weight in windows for a temperature
    and in windows of a class for isotonic maps. Gain blocks are days for users with at least
    ``folds`` days, else the folds.
    """
    if not cv_users.size:
        return CrossValidation({}, _Cv(np.empty(0), [], [], []), None)
    codes, days, user_days = keys
    remap = np.full(user_days.size, -1, np.intp)
    remap[cv_users] = np.arange(cv_users.size)
    rows = np.flatnonzero(remap[codes] >= 0)
    ecode, fold = remap[codes[rows]], fold_ids(codes, days, user_days, folds)[rows]
    global_cal, weight = prior
    if isinstance(global_cal, TemperatureCalibrator):
        t_prior = (global_cal.temperature, weight)
        cv = _cv_temperature(lp, rows, ecode, cv_users.size, fold, t_prior)
    else:
        assert isinstance(global_cal, IsotonicCalibrator)
        cv = _cv_isotonic(labeled, rows, ecode, cv_users.size, fold, (global_cal, weight))
    blocks = np.where(user_days[codes[rows]] >= folds, days[rows], fold)
    stats = paired_gain_stats(global_rows[rows] - cv.heldout_nll, ecode, blocks, cv_users.size)
    return CrossValidation({int(u): e for e, u in enumerate(cv_users)}, cv, stats)
