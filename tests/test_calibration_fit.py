"""Fitting calibrators: exact temperature (never worse than the documented grid), isotonic."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.isotonic import IsotonicRegression

from taskclf.core.errors import InputError
from taskclf.train.calibrate import (
    IsotonicSmallSampleWarning,
    fit_group_temperatures,
    fit_isotonic_calibrator,
    fit_temperature_calibrator,
    grid_search_temperature,
    temperature_nll,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _generated(n: int, k: int, t_true: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z); the 'model' reports softmax(t_true * z), so the
    calibrating temperature is t_true."""
    rng = np.random.default_rng(seed)
    z = rng.normal(scale=1.5, size=(n, k))
    q = _softmax(z)
    y = np.minimum((rng.random(n)[:, None] > np.cumsum(q, axis=1)).sum(axis=1), k - 1)
    return y, _softmax(t_true * z)


@st.composite
def labeled_probs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    k = draw(st.integers(2, 6))
    entries = st.one_of(st.just(0.0), st.floats(1e-6, 1.0))
    p = draw(hnp.arrays(np.float64, (n, k), elements=entries))
    y = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    scale = draw(st.sampled_from([1.0, 4.0, 0.25]))
    return y, p**scale


@settings(max_examples=60, deadline=None)
@given(data=labeled_probs())
def test_fit_is_never_worse_than_the_documented_grid(data: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = data
    fitted = fit_temperature_calibrator(y, p).temperature
    grid = grid_search_temperature(y, p)
    assert temperature_nll(y, p, fitted) <= temperature_nll(y, p, grid) + 1e-12


@settings(max_examples=25, deadline=None)
@given(t_true=st.floats(0.3, 4.0), seed=st.integers(0, 10_000))
def test_fit_is_never_worse_than_the_grid_on_model_like_data(t_true: float, seed: int) -> None:
    y, p = _generated(300, 8, t_true, seed)
    fitted = fit_temperature_calibrator(y, p).temperature
    assert temperature_nll(y, p, fitted) <= temperature_nll(y, p, grid_search_temperature(y, p))


@pytest.mark.parametrize("t_true", [0.5, 1.0, 1.7, 3.0])
def test_fit_recovers_a_known_temperature(t_true: float) -> None:
    y, p = _generated(20_000, 8, t_true, seed=int(t_true * 10))
    fitted = fit_temperature_calibrator(y, p).temperature
    assert fitted == pytest.approx(t_true, rel=0.05)
    # exact, not a grid point: a nearby temperature is never better
    nll = temperature_nll(y, p, fitted)
    for t in (fitted * (1 - 1e-4), fitted * (1 + 1e-4)):
        assert nll <= temperature_nll(y, p, t)


def test_fit_is_deterministic_and_lowers_nll() -> None:
    y, p = _generated(2000, 8, 2.0, seed=3)
    first = fit_temperature_calibrator(y, p).temperature
    assert fit_temperature_calibrator(y, p).temperature == first
    assert temperature_nll(y, p, first) < temperature_nll(y, p, 1.0)


def test_degenerate_inputs_stay_finite_and_beat_the_grid() -> None:
    y = np.arange(40) % 8
    cases = {
        "one-hot right": np.eye(8)[y],
        "one-hot wrong": np.eye(8)[(y + 1) % 8],
        "uniform": np.full((40, 8), 1 / 8),
        "independent labels": _generated(40, 8, 1.0, 5)[1],
    }
    for name, p in cases.items():
        fitted = fit_temperature_calibrator(y, p).temperature
        assert np.isfinite(fitted) and fitted > 0, name
        grid = grid_search_temperature(y, p)
        assert temperature_nll(y, p, fitted) <= temperature_nll(y, p, grid) + 1e-12, name


def test_group_fit_matches_separate_fits_and_the_grid_floor() -> None:
    rng = np.random.default_rng(7)
    parts = [_generated(400, 8, t, seed=i) for i, t in enumerate([0.6, 1.0, 2.5, 4.0])]
    y = np.concatenate([part[0] for part in parts])
    p = np.concatenate([part[1] for part in parts])
    codes = np.repeat(np.arange(4), 400)
    perm = rng.permutation(len(y))  # row order must not matter
    temps = fit_group_temperatures(y[perm], p[perm], codes[perm], n_groups=5)
    assert temps[4] == 1.0  # empty group
    for g in range(4):
        mine = codes == g
        alone = fit_temperature_calibrator(y[mine], p[mine]).temperature
        assert temps[g] == pytest.approx(alone, rel=1e-5)
        grid = grid_search_temperature(y[mine], p[mine])
        assert temperature_nll(y[mine], p[mine], temps[g]) <= temperature_nll(
            y[mine], p[mine], grid
        )


@settings(max_examples=80, deadline=None)
@given(data=labeled_probs(), n_groups=st.integers(1, 4), seed=st.integers(0, 100))
def test_group_fit_is_never_worse_than_the_grid_per_group(
    data: tuple[np.ndarray, np.ndarray], n_groups: int, seed: int
) -> None:
    y, p = data
    codes = np.random.default_rng(seed).integers(0, n_groups, size=len(y))
    temps = fit_group_temperatures(y, p, codes, n_groups=n_groups)
    for g in np.unique(codes):
        mine = codes == g
        grid = grid_search_temperature(y[mine], p[mine])
        assert temperature_nll(y[mine], p[mine], temps[g]) <= (
            temperature_nll(y[mine], p[mine], grid) + 1e-12
        )


@pytest.mark.parametrize(
    ("y", "p", "match"),
    [
        (np.zeros(0, int), np.zeros((0, 3)), "n >= 1"),
        (np.array([0, 3]), np.full((2, 3), 1 / 3), "not a class index"),
        (np.array([0.0, 1.0]), np.full((2, 3), 1 / 3), "integers"),
        (np.array([0]), np.full((2, 3), 1 / 3), "shape"),
        (np.array([0, 1]), np.array([[0.5, np.nan], [0.5, 0.5]]), "finite"),
    ],
)
def test_fit_input_errors(y: np.ndarray, p: np.ndarray, match: str) -> None:
    with pytest.raises(InputError, match=match):
        fit_temperature_calibrator(y, p)


def test_isotonic_fit_is_sklearn_per_class_with_a_ramp_for_its_zero_block() -> None:
    y, p = _generated(3000, 8, 2.5, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 3000 rows: no small-sample warning
        cal = fit_isotonic_calibrator(y, p, 8)
    probe = _generated(200, 8, 2.5, seed=12)[1]
    mapped = np.empty_like(probe)
    ramps = 0
    for c in range(8):
        reg = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        reg.fit(p[:, c], (y == c).astype(float))
        first = int(np.flatnonzero(reg.y_thresholds_ > 0)[0])
        x1, y1 = reg.X_thresholds_[first], reg.y_thresholds_[first]
        below = probe[:, c] < x1
        ramps += int(first > 0 and below.any())
        mapped[:, c] = np.where(below, probe[:, c] * y1 / x1, reg.predict(probe[:, c]))
        np.testing.assert_allclose(cal.regressors[c](probe[:, c]), mapped[:, c], atol=1e-12)
    assert ramps >= 4  # most classes have a zero block the probe reaches
    assert (cal.calibrate(probe) > 0).all()
    np.testing.assert_allclose(
        cal.calibrate(probe), mapped / mapped.sum(axis=1, keepdims=True), atol=1e-12
    )
    nll_raw = -np.mean(np.log(p[np.arange(len(y)), y]))
    q = cal.calibrate(p)
    assert -np.mean(np.log(np.maximum(q[np.arange(len(y)), y], 1e-15))) < nll_raw


def test_isotonic_warns_below_a_thousand_rows_with_the_numbers() -> None:
    y, p = _generated(300, 8, 1.0, seed=1)
    with pytest.warns(IsotonicSmallSampleWarning, match="fewer than 1000 rows.*300"):
        fit_isotonic_calibrator(y, p, 8)
    with pytest.raises(InputError, match="n_classes"):
        fit_isotonic_calibrator(y, p, 5)
