"""Per-user calibration from arrays: eligibility, k-fold keep-or-fallback, per-user fits.

The pure-array core of ``train.calibrate.fit_calibrator_store`` (no booster, no frames), so it
can be tested and benchmarked on its own. See ``train.calibrate`` for the rules and
``train._keep`` for the keep test (a paired, day-blocked comparison with the global calibrator).

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
the model's bias for that class. On the real mouse-stress study (``tests/test_calibration_real.
py``: 7 classes, 8-30 windows per user) unblended per-user maps were worse than the global
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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

from taskclf.core.defaults import (
    DEFAULT_CALIBRATION_METHOD,
    DEFAULT_MIN_DISTINCT_LABELS,
    DEFAULT_MIN_LABELED_DAYS,
    DEFAULT_MIN_LABELED_WINDOWS,
    DEFAULT_PERSONAL_CV_FOLDS,
    ISOTONIC_MIN_ROWS_WARNING,
)
from taskclf.core.errors import InputError
from taskclf.infer.calibration import Calibrator, IsotonicCalibrator, TemperatureCalibrator
from taskclf.train._calibration_math import (
    LogProbs,
    blend_isotonic,
    check_pair,
    fit_groups,
    fit_isotonic,
    fit_temperature,
    group_mean,
    picked_nll,
    row_nll,
)
from taskclf.train._keep import (
    DEFAULT_KEEP_Z,
    GainStats,
    KeepRule,
    ineligible_reason,
    paired_gain_stats,
)

Method = Literal["temperature", "isotonic"]
#: A per-user calibrator is kept only if it lowers held-out NLL by more than this (nats/window)
#: and by at least ``DEFAULT_KEEP_Z`` standard errors (``train._keep``).
DEFAULT_MIN_NLL_GAIN = 1e-3
#: Weight of the global temperature in a user's temperature, in labeled windows (module doc).
DEFAULT_PRIOR_WINDOWS = 250
#: Weight of the global isotonic map of a class in a user's map, in the user's windows of that
#: class (module doc).
DEFAULT_PRIOR_POSITIVES = 20


class IsotonicSmallSampleWarning(UserWarning):
    """Isotonic calibrators were fitted on fewer rows than ``ISOTONIC_MIN_ROWS_WARNING``."""


class PersonalizationEligibility(BaseModel):
    """Whether a user qualifies for per-user calibration (all three thresholds met)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    labeled_windows: int
    labeled_days: int
    distinct_labels: int
    is_eligible: bool


class UserCalibrationReport(BaseModel):
    """Eligibility, the keep-or-fallback decision and its numbers for one user.

    ``nll_raw``/``nll_global``: mean NLL of the raw and the globally calibrated probabilities
    on the user's rows. ``nll_personal_cv``: mean held-out NLL of per-user calibrators fitted on
    the user's other folds (``None`` when no cross-validation ran). ``nll_gain``: the held-out
    gain over global, mean of per-row ``ℓ_global - ℓ_cv`` (``nll_global - nll_personal_cv``),
    ``nll_gain_se`` its standard error in the keep test and ``gain_blocks`` the number of day
    (or time) blocks behind it (``train._keep``). ``personal_temperature``:
    the temperature fitted on all the user's rows (temperature method, cross-validated users),
    whether or not it was kept; ``credibility`` its weight ``w`` in the blend with the global
    temperature and ``shrunk_temperature`` the blended temperature, the one a kept user gets.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    labeled_windows: int
    labeled_days: int
    distinct_labels: int
    is_eligible: bool
    kept: bool
    reason: str
    nll_raw: float
    nll_global: float
    nll_personal_cv: float | None = None
    nll_gain: float | None = None
    nll_gain_se: float | None = None
    gain_blocks: int | None = None
    personal_temperature: float | None = None
    credibility: float | None = None
    shrunk_temperature: float | None = None

    def eligibility(self) -> PersonalizationEligibility:
        """The seed's eligibility record of this user."""
        return PersonalizationEligibility(
            user_id=self.user_id,
            labeled_windows=self.labeled_windows,
            labeled_days=self.labeled_days,
            distinct_labels=self.distinct_labels,
            is_eligible=self.is_eligible,
        )


@dataclass(frozen=True)
class PersonalizationFit:
    """Result of :func:`fit_personalized_calibrators` (reports sorted by user id)."""

    global_calibrator: Calibrator
    user_calibrators: dict[str, Calibrator]
    users: list[UserCalibrationReport]
    nll_raw: float
    nll_global: float
    method: Method
    folds: int
    keep_z: float = DEFAULT_KEEP_Z
    design_effect: float | None = None  # pooled δ of the keep test (None: nobody was tested)


@dataclass(frozen=True)
class _Counts:
    """Per user: labeled windows, distinct days, distinct labels."""

    windows: NDArray[np.int64]
    days: NDArray[np.int64]
    labels: NDArray[np.int64]

    @classmethod
    def of(
        cls, codes: NDArray[np.intp], n_users: int, days: NDArray[np.int64], y: NDArray[np.int64]
    ) -> _Counts:
        grouped = pd.DataFrame({"u": codes, "d": days, "y": y}).groupby("u", sort=True)
        out = [np.zeros(n_users, np.int64) for _ in range(3)]
        size = grouped.size()
        idx = size.index.to_numpy()
        out[0][idx] = size.to_numpy()
        out[1][idx] = grouped["d"].nunique().to_numpy()
        out[2][idx] = grouped["y"].nunique().to_numpy()
        return cls(*out)


def factorize_users(
    user_ids: Sequence[str] | NDArray[Any], n: int
) -> tuple[NDArray[np.intp], list[str]]:
    """Codes into the sorted distinct user ids; missing or non-string ids are errors."""
    uids = np.asarray(user_ids, dtype=object)
    if uids.shape != (n,):
        raise InputError(f"user_ids has shape {uids.shape}, expected ({n},)")
    codes, uniques = pd.factorize(uids, sort=True, use_na_sentinel=True)
    if (codes < 0).any():
        raise InputError(f"user_ids[{int(np.flatnonzero(codes < 0)[0])}] is missing")
    users = list(uniques)
    if not all(isinstance(u, str) for u in users):
        raise InputError("user ids must be strings")
    return codes.astype(np.intp), users


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


def warn_small_isotonic(windows: NDArray[np.int64], *, what: str) -> None:
    """One warning, with the numbers, for isotonic fits below ``ISOTONIC_MIN_ROWS_WARNING``."""
    small = windows[windows < ISOTONIC_MIN_ROWS_WARNING]
    if small.size:
        warnings.warn(
            f"{what} fitted on fewer than {ISOTONIC_MIN_ROWS_WARNING} rows ({small.size} fits, "
            f"min {int(small.min())}, median {int(np.median(small))} rows); isotonic "
            "regression overfits small sets, consider method='temperature'",
            IsotonicSmallSampleWarning,
            stacklevel=3,
        )


def _temperature_of(cal: Calibrator) -> float | None:
    return cal.temperature if isinstance(cal, TemperatureCalibrator) else None


def _check_args(
    method: str, folds: int, min_gain: float, priors: tuple[float, float], keep_z: float
) -> None:
    if method not in ("temperature", "isotonic"):
        raise InputError(f"method must be 'temperature' or 'isotonic', got {method!r}")
    if folds < 2:
        raise InputError(f"folds must be >= 2 for keep-or-fallback validation, got {folds}")
    if not math.isfinite(min_gain) or min_gain < 0:
        raise InputError(f"min_gain must be finite and >= 0, got {min_gain!r}")
    for name, value in zip(("prior_windows", "prior_positives"), priors, strict=True):
        if not math.isfinite(value) or value < 0:
            raise InputError(f"{name} must be finite and >= 0, got {value!r}")
    if not math.isfinite(keep_z) or keep_z < 0:
        raise InputError(f"keep_z must be finite and >= 0, got {keep_z!r}")


@dataclass(frozen=True)
class _CrossValidation:
    """Cross-validated users (``index``: user code -> position), their fits and gain stats."""

    index: dict[int, int]
    fits: _Cv
    stats: GainStats | None


def _cross_validate(
    lp: LogProbs,
    labeled: tuple[NDArray[np.int64], NDArray[np.float64]],
    keys: tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.int64]],
    cv_users: NDArray[np.intp],
    global_rows: NDArray[np.float64],
    folds: int,
    prior: tuple[Calibrator, float],
) -> _CrossValidation:
    """Each cross-validated user's held-out NLL, final fit and held-out gain over global.

    ``labeled`` is ``(y, p)``; ``keys`` is ``(user codes, day keys, days per user)``;
    ``prior`` is ``(global calibrator, its weight)``, the weight in windows for a temperature
    and in windows of a class for isotonic maps. Gain blocks are days for users with at least
    ``folds`` days, else the folds.
    """
    if not cv_users.size:
        return _CrossValidation({}, _Cv(np.empty(0), [], [], []), None)
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
    return _CrossValidation({int(u): e for e, u in enumerate(cv_users)}, cv, stats)


def fit_personalized_calibrators(
    y_true_indices: ArrayLike,
    y_proba: ArrayLike,
    user_ids: Sequence[str] | NDArray[Any],
    day_keys: ArrayLike,
    *,
    method: Method = DEFAULT_CALIBRATION_METHOD,
    min_windows: int = DEFAULT_MIN_LABELED_WINDOWS,
    min_days: int = DEFAULT_MIN_LABELED_DAYS,
    min_labels: int = DEFAULT_MIN_DISTINCT_LABELS,
    folds: int = DEFAULT_PERSONAL_CV_FOLDS,
    min_gain: float = DEFAULT_MIN_NLL_GAIN,
    prior_windows: float = DEFAULT_PRIOR_WINDOWS,
    prior_positives: float = DEFAULT_PRIOR_POSITIVES,
    keep_z: float = DEFAULT_KEEP_Z,
) -> PersonalizationFit:
    """Global calibrator, eligibility, and kept-or-fallback per-user calibrators from arrays.

    Args:
        y_true_indices: Shape ``(n,)`` int class indices.
        y_proba: Shape ``(n, k)`` raw model probabilities.
        user_ids: Shape ``(n,)`` user id (string) of each row.
        day_keys: Shape ``(n,)`` int local calendar day of each row (e.g. days since epoch).
            A user's rows should be in time order (positional folds follow it).
        method: ``temperature`` or ``isotonic``.
        min_windows: Eligibility: minimum labeled windows.
        min_days: Eligibility: minimum distinct days.
        min_labels: Eligibility: minimum distinct labels.
        folds: Folds of the keep-or-fallback cross-validation (>= 2).
        min_gain: Held-out NLL improvement over global required to keep (nats per window).
        prior_windows: Credibility shrinkage of per-user temperatures toward the global one,
            in windows (module doc); 0 = none. Temperature method only.
        prior_positives: Blend of each per-user isotonic map with the global map of its class,
            in the user's windows of that class (module doc); 0 = none. Isotonic method only.
        keep_z: The improvement must also be at least this many standard errors (one-sided
            test, ``train._keep``); 0 keeps any improvement above ``min_gain``.
    """
    _check_args(method, folds, min_gain, (prior_windows, prior_positives), keep_z)
    y, p = check_pair(y_true_indices, y_proba)
    codes, users = factorize_users(user_ids, y.size)
    days = np.asarray(day_keys).astype(np.int64)
    if days.shape != y.shape:
        raise InputError(f"day_keys has shape {days.shape}, expected {y.shape}")
    lp = LogProbs.build(y, p)
    global_cal: Calibrator
    if method == "temperature":
        t_global = fit_temperature(lp)
        global_cal, global_rows = TemperatureCalibrator(t_global), row_nll(lp, 1.0 / t_global)
    else:
        warn_small_isotonic(np.array([y.size]), what="the global isotonic calibrator was")
        global_cal = fit_isotonic(y, p, p.shape[1])
        global_rows = picked_nll(global_cal.calibrate(p), y)
    c = _Counts.of(codes, len(users), days, y)
    thresholds = (min_windows, min_days, min_labels)
    eligible = (c.windows >= min_windows) & (c.days >= min_days) & (c.labels >= min_labels)
    counts = c.windows.astype(np.float64)
    cv_users = np.flatnonzero(eligible & (c.windows >= folds))
    if method == "isotonic" and cv_users.size:
        warn_small_isotonic(c.windows[cv_users], what="per-user isotonic calibrators were")
    prior = (global_cal, float(prior_windows if method == "temperature" else prior_positives))
    keys = (codes, days, c.days)
    cv = _cross_validate(lp, (y, p), keys, cv_users, global_rows, folds, prior)
    rule = KeepRule(folds, min_gain, keep_z)
    raw_u, glob_u = (group_mean(v, codes, counts) for v in (picked_nll(p, y), global_rows))
    reports, kept_cals = [], {}
    fields: dict[str, Any]
    for u, uid in enumerate(users):
        n3 = (int(c.windows[u]), int(c.days[u]), int(c.labels[u]))
        e = cv.index.get(u)
        kept, fields = False, {}  # fields: a cross-validated user's numbers
        if not eligible[u]:
            reason = ineligible_reason(n3, thresholds)
        elif e is None or cv.stats is None:
            reason = f"fallback: {n3[0]} windows are too few for {folds}-fold validation"
        else:
            gain, se = float(cv.stats.gain[e]), float(cv.stats.se[e])
            kept, reason = rule.decide(n3, gain, se)
            fields = {
                "nll_personal_cv": float(glob_u[u]) - gain,
                "nll_gain": gain,
                "nll_gain_se": se,
                "gain_blocks": int(cv.stats.blocks[e]),
                "personal_temperature": cv.fits.temperatures[e],
                "credibility": cv.fits.weights[e],
                "shrunk_temperature": _temperature_of(cv.fits.final[e]),
            }
            if kept:
                kept_cals[uid] = cv.fits.final[e]
        reports.append(
            UserCalibrationReport(
                user_id=uid,
                labeled_windows=n3[0],
                labeled_days=n3[1],
                distinct_labels=n3[2],
                is_eligible=bool(eligible[u]),
                kept=kept,
                reason=reason,
                nll_raw=float(raw_u[u]),
                nll_global=float(glob_u[u]),
                **fields,
            )
        )
    return PersonalizationFit(
        global_cal,
        kept_cals,
        reports,
        float(picked_nll(p, y).mean()),
        float(global_rows.mean()),
        method,
        folds,
        keep_z,
        cv.stats.design_effect if cv.stats is not None else None,
    )
