"""Per-user calibration on synthetic users that differ: fit on some days, evaluate on later days.

Each user's "model" reports ``softmax(a_u * z)`` while labels follow ``softmax(z)``: a user with
``a_u > 1`` gets over-confident probabilities, ``a_u < 1`` under-confident ones, so the ideal
per-user temperature is ``a_u``. A single global temperature cannot fit them all.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskclf.core.metrics import ece_top_label, nll
from taskclf.infer.calibration import CalibratorStore, TemperatureCalibrator
from taskclf.train._personalize import DEFAULT_PRIOR_WINDOWS
from taskclf.train.calibrate import fit_personalized_calibrators

K = 8
ROWS_PER_DAY = 120
FIT_DAYS, TEST_DAYS = 5, 3
# user -> (miscalibration factor a_u, fitted days)
USERS = {
    "over-strong": (3.0, FIT_DAYS),
    "over": (1.8, FIT_DAYS),
    "neutral-a": (1.2, FIT_DAYS),
    "neutral-b": (1.2, FIT_DAYS),
    "under": (0.6, FIT_DAYS),
    "under-strong": (0.4, FIT_DAYS),
    "few-days": (3.0, 2),  # not eligible: 2 days < 3
}


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _user_rows(
    rng: np.random.Generator, a: float, days: range
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = ROWS_PER_DAY * len(days)
    z = rng.normal(scale=1.6, size=(n, K))
    y = np.minimum((rng.random(n)[:, None] > np.cumsum(_softmax(z), axis=1)).sum(axis=1), K - 1)
    day = np.repeat(np.array(list(days)), ROWS_PER_DAY)
    return y, _softmax(a * z), day


def _dataset(seed: int) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = {}
    for user, (a, fit_days) in USERS.items():
        y, p, day = _user_rows(rng, a, range(fit_days + TEST_DAYS))
        fit = day < fit_days
        out[user] = {"y": y[fit], "p": p[fit], "day": day[fit]}
        out[user] |= {"y_test": y[~fit], "p_test": p[~fit]}
    return out


def _concat(data: dict[str, dict[str, np.ndarray]], key: str) -> np.ndarray:
    return np.concatenate([data[u][key] for u in data])


@pytest.fixture(scope="module")
def fitted() -> tuple[dict[str, dict[str, np.ndarray]], CalibratorStore, list]:
    data = _dataset(seed=20260301)
    users = np.concatenate([[u] * len(data[u]["y"]) for u in data]).astype(object)
    fit = fit_personalized_calibrators(
        _concat(data, "y"), _concat(data, "p"), users, _concat(data, "day")
    )
    store = CalibratorStore(fit.global_calibrator, fit.user_calibrators, method="temperature")
    return data, store, fit.users


def _heldout(store: CalibratorStore, data: dict, user: str) -> tuple[float, float, float, float]:
    y, p = data[user]["y_test"], data[user]["p_test"]
    personal = store.calibrate_batch(p, [user] * len(y))
    glob = store.global_calibrator.calibrate(p)
    return nll(y, personal), nll(y, glob), ece_top_label(y, personal), ece_top_label(y, glob)


def test_per_user_store_lowers_mean_heldout_nll_and_ece(fitted: tuple) -> None:
    data, store, _ = fitted
    rows = np.array([_heldout(store, data, u) for u in USERS])
    nll_store, nll_global, ece_store, ece_global = rows.mean(axis=0)
    assert nll_store < nll_global - 0.01
    assert ece_store < ece_global - 0.01


def test_no_kept_per_user_calibrator_is_worse_for_its_user(fitted: tuple) -> None:
    data, store, _ = fitted
    assert store.user_ids  # something was personalized
    for user in store.user_ids:
        nll_personal, nll_global, _, _ = _heldout(store, data, user)
        assert nll_personal <= nll_global, user


def test_strongly_miscalibrated_users_are_kept_and_recover_their_temperature(
    fitted: tuple,
) -> None:
    _, store, reports = fitted
    by_user = {r.user_id: r for r in reports}
    t_global = store.global_calibrator.temperature
    for user in ("over-strong", "under-strong", "under"):
        report = by_user[user]
        assert report.kept, report.reason
        assert report.personal_temperature == pytest.approx(USERS[user][0], rel=0.15)
        # what the user gets is that fit moved toward the global one by its credibility
        w = report.labeled_windows / (report.labeled_windows + DEFAULT_PRIOR_WINDOWS)
        assert report.credibility == pytest.approx(w)
        cal = store.get_calibrator(user)
        assert isinstance(cal, TemperatureCalibrator)
        expected = math.exp(
            w * math.log(report.personal_temperature) + (1 - w) * math.log(t_global)
        )
        assert cal.temperature == pytest.approx(expected, rel=1e-12)
        assert cal.temperature == report.shrunk_temperature
        lo, hi = sorted((t_global, report.personal_temperature))
        assert lo < cal.temperature < hi
        assert report.nll_personal_cv < report.nll_global


def test_ineligible_user_falls_back_with_the_reason_and_numbers(fitted: tuple) -> None:
    _, store, reports = fitted
    report = {r.user_id: r for r in reports}["few-days"]
    assert not report.is_eligible and not report.kept
    assert report.labeled_days == 2 and report.labeled_windows == 2 * ROWS_PER_DAY
    assert report.reason == "not eligible: 2 days < 3"
    assert "few-days" not in store.user_ids
    assert report.nll_personal_cv is None


def test_global_calibration_beats_raw_probabilities_on_heldout_days(fitted: tuple) -> None:
    data, store, _ = fitted
    y, p = _concat(data, "y_test"), _concat(data, "p_test")
    calibrated = store.global_calibrator.calibrate(p)
    assert nll(y, calibrated) < nll(y, p)
    assert ece_top_label(y, calibrated) < ece_top_label(y, p)


def test_users_like_the_global_model_fall_back_when_personal_gain_is_too_small() -> None:
    rng = np.random.default_rng(5)
    ys, ps, days, users = [], [], [], []
    for user in ("a", "b", "c"):
        y, p, day = _user_rows(rng, 1.5, range(5))
        ys.append(y)
        ps.append(p)
        days.append(day)
        users += [user] * len(y)
    fit = fit_personalized_calibrators(
        np.concatenate(ys), np.concatenate(ps), np.array(users, dtype=object), np.concatenate(days)
    )
    # all users share one miscalibration: per-user calibrators cannot beat the global one
    assert fit.user_calibrators == {}
    assert all(r.is_eligible and r.reason.startswith("fallback: held-out NLL") for r in fit.users)
