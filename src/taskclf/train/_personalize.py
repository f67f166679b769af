"""Per-user calibration from arrays: eligibility, k-fold keep-or-fallback, per-user fits.

The pure-array core of ``train.calibrate.fit_calibrator_store`` (no booster, no frames), so it
can be tested and benchmarked on its own. See ``train.calibrate`` for the rules,
``train._personal_cv`` for the cross-validated per-user fits (folds, credibility shrinkage of
temperatures, blending of isotonic maps) and ``train._keep`` for the keep test (a paired,
day-blocked comparison with the global calibrator).
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
from taskclf.infer.calibration import Calibrator, TemperatureCalibrator
from taskclf.train._calibration_math import (
    LogProbs,
    check_pair,
    fit_isotonic,
    fit_temperature,
    group_mean,
    picked_nll,
    row_nll,
)
from taskclf.train._keep import DEFAULT_KEEP_Z, KeepRule, ineligible_reason
from taskclf.train._personal_cv import (
    DEFAULT_PRIOR_POSITIVES,
    DEFAULT_PRIOR_WINDOWS,
    credibility_weights,
    cross_validate,
    fold_ids,
    shrink_temperatures,
)

__all__ = [
    "DEFAULT_MIN_NLL_GAIN",
    "DEFAULT_PRIOR_POSITIVES",
    "DEFAULT_PRIOR_WINDOWS",
    "IsotonicSmallSampleWarning",
    "Method",
    "PersonalizationEligibility",
    "PersonalizationFit",
    "UserCalibrationReport",
    "credibility_weights",
    "factorize_users",
    "fit_personalized_calibrators",
    "fold_ids",
    "shrink_temperatures",
    "warn_small_isotonic",
]

Method = Literal["temperature", "isotonic"]
#: A per-user calibrator is kept only if it lowers held-out NLL by more than this (nats/window)
#: and by at least ``DEFAULT_KEEP_Z`` standard errors (``train._keep``).
DEFAULT_MIN_NLL_GAIN = 1e-3


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
            in windows (``train._personal_cv``); 0 = none. Temperature method only.
        prior_positives: Blend of each per-user isotonic map with the global map of its class,
            in the user's windows of that class (``train._personal_cv``); 0 = none. Isotonic
            method only.
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
    cv = cross_validate(lp, (y, p), keys, cv_users, global_rows, folds, prior)
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
