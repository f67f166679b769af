"""Credibility shrinkage of per-user temperatures toward the global one (train._personalize)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.errors import InputError
from taskclf.core.metrics import nll
from taskclf.infer.calibration import CalibratorStore, TemperatureCalibrator
from taskclf.train._keep import DEFAULT_KEEP_Z
from taskclf.train._personalize import (
    DEFAULT_PRIOR_WINDOWS,
    credibility_weights,
    fit_personalized_calibrators,
    fold_ids,
)
from taskclf.train.calibrate import fit_temperature_calibrator

K = 8
ROWS_PER_DAY = 100


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _day(rng: np.random.Generator, a: float) -> tuple[np.ndarray, np.ndarray]:
    """One day of rows whose probabilities are ``softmax(a z)`` for labels ~ ``softmax(z)``."""
    z = rng.normal(scale=1.6, size=(ROWS_PER_DAY, K))
    cum = np.cumsum(_softmax(z), axis=1)
    y = np.minimum((rng.random(ROWS_PER_DAY)[:, None] > cum).sum(axis=1), K - 1)
    return y, _softmax(a * z)


def _users(
    seed: int, means: dict[str, float], days: int, day_sd: float
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per user ``(y, p, day)``; each day's miscalibration is the user's mean times noise."""
    rng = np.random.default_rng(seed)
    out = {}
    for user, mean in means.items():
        parts = [_day(rng, mean * math.exp(rng.normal(0, day_sd))) for _ in range(days)]
        y = np.concatenate([p[0] for p in parts])
        p = np.concatenate([p[1] for p in parts])
        out[user] = (y, p, np.repeat(np.arange(days), ROWS_PER_DAY))
    return out


def _fit(
    data: dict, prior_windows: float, keep_z: float = DEFAULT_KEEP_Z
) -> tuple[CalibratorStore, list]:
    users = np.concatenate([[u] * len(v[0]) for u, v in data.items()]).astype(object)
    fit = fit_personalized_calibrators(
        np.concatenate([v[0] for v in data.values()]),
        np.concatenate([v[1] for v in data.values()]),
        users,
        np.concatenate([v[2] for v in data.values()]),
        prior_windows=prior_windows,
        keep_z=keep_z,
    )
    store = CalibratorStore(fit.global_calibrator, fit.user_calibrators, method="temperature")
    return store, fit.users


@settings(max_examples=50, deadline=None)
@given(n=st.integers(0, 100_000), k=st.floats(0, 1e5, allow_nan=False))
def test_credibility_is_n_over_n_plus_k(n: int, k: float) -> None:
    w = float(credibility_weights(np.array([n]), k)[0])
    if k == 0:
        assert w == 1.0
    else:
        assert w == pytest.approx(n / (n + k))
        assert 0.0 <= w <= 1.0
        assert float(credibility_weights(np.array([n + 1]), k)[0]) >= w


@pytest.fixture(scope="module")
def strong() -> dict:
    """Clearly miscalibrated users (steady over days): shrinkage must not hide them."""
    return _users(3, {"over": 2.5, "under": 0.5, "mid-a": 1.0, "mid-b": 1.0}, 4, 0.02)


def test_without_a_prior_the_kept_temperature_is_the_users_own_fit(strong: dict) -> None:
    store, reports = _fit(strong, 0)
    for r in reports:
        if r.kept:
            cal = store.get_calibrator(r.user_id)
            assert isinstance(cal, TemperatureCalibrator)
            assert cal.temperature == r.personal_temperature == r.shrunk_temperature
            assert r.credibility == 1.0


def test_the_kept_temperature_is_the_credibility_blend(strong: dict) -> None:
    store, reports = _fit(strong, DEFAULT_PRIOR_WINDOWS)
    t_global = store.global_calibrator.temperature
    kept = {r.user_id: r for r in reports if r.kept}
    assert {"over", "under"} <= set(kept)
    for user, r in kept.items():
        w = r.labeled_windows / (r.labeled_windows + DEFAULT_PRIOR_WINDOWS)
        assert r.credibility == pytest.approx(w)
        own = r.personal_temperature
        assert own is not None
        expected = math.exp(w * math.log(own) + (1 - w) * math.log(t_global))
        assert store.get_calibrator(user).temperature == pytest.approx(expected, rel=1e-12)
        lo, hi = sorted((own, t_global))
        assert lo < r.shrunk_temperature < hi


def test_cross_validation_scores_the_shrunk_calibrator(strong: dict) -> None:
    """The keep decision uses what would be deployed: each fold's fit, shrunk."""
    store, reports = _fit(strong, DEFAULT_PRIOR_WINDOWS)
    t_global = store.global_calibrator.temperature
    report = {r.user_id: r for r in reports}["over"]
    y, p, day = strong["over"]
    fold = fold_ids(np.zeros(y.size, np.intp), day, np.array([4]), 3)
    losses = []
    for k in range(3):
        train, test = fold != k, fold == k
        own = fit_temperature_calibrator(y[train], p[train]).temperature
        w = train.sum() / (train.sum() + DEFAULT_PRIOR_WINDOWS)
        t = math.exp(w * math.log(own) + (1 - w) * math.log(t_global))
        losses.append(nll(y[test], TemperatureCalibrator(t).calibrate(p[test])) * test.sum())
    assert report.nll_personal_cv == pytest.approx(sum(losses) / y.size, rel=1e-6)


def test_shrinkage_lowers_heldout_nll_when_days_vary_more_than_users_differ() -> None:
    """Users close to the global calibration whose days vary a lot: their own temperature
    from three days overfits those days; the blend does better on the next days.

    The keep test's noise margin (train._keep) is off here (``keep_z=0``, only ``min_gain``) so
    that the comparison measures the shrinkage, not which of these near-global users pass it
    (with it on, most fall back)."""
    means = {f"u{i}": m for i, m in enumerate((0.8, 0.9, 1.0, 1.1, 1.25, 0.85, 1.15, 0.95))}
    data = _users(11, means, 7, 0.35)
    fit_part = {u: tuple(a[v[2] < 3] for a in v) for u, v in data.items()}
    test_part = {u: (v[0][v[2] >= 3], v[1][v[2] >= 3]) for u, v in data.items()}

    def mean_heldout(prior: float) -> float:
        store, _ = _fit(fit_part, prior, keep_z=0.0)
        return float(
            np.mean(
                [nll(y, store.calibrate_batch(p, [u] * len(y))) for u, (y, p) in test_part.items()]
            )
        )

    assert mean_heldout(DEFAULT_PRIOR_WINDOWS) < mean_heldout(0)


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_bad_prior_windows_are_input_errors(strong: dict, bad: float) -> None:
    with pytest.raises(InputError, match="prior_windows"):
        _fit(strong, bad)
