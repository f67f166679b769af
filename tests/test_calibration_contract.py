"""One contract battery over every calibrator, plus each method's own properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from taskclf.core.errors import InputError
from taskclf.infer.calibration import (
    Calibrator,
    IdentityCalibrator,
    IsotonicCalibrator,
    IsotonicMap,
    TemperatureCalibrator,
    calibrator_from_json,
    calibrator_to_json,
    normalize_probs,
)

K = 5
SETTINGS = settings(max_examples=40, deadline=None)


def _iso_map(rng: np.random.Generator) -> IsotonicMap:
    m = int(rng.integers(1, 6))
    x = np.sort(rng.choice(np.linspace(0.0, 1.0, 101), size=m, replace=False))
    y = np.sort(rng.random(m))
    return IsotonicMap(tuple(x), tuple(y))


def _isotonic(seed: int) -> IsotonicCalibrator:
    rng = np.random.default_rng(seed)
    return IsotonicCalibrator(tuple(_iso_map(rng) for _ in range(K)))


CALIBRATORS: dict[str, Calibrator] = {
    "identity": IdentityCalibrator(),
    "temperature-0.3": TemperatureCalibrator(0.3),
    "temperature-1.0": TemperatureCalibrator(1.0),
    "temperature-4.5": TemperatureCalibrator(4.5),
    "isotonic-a": _isotonic(1),
    "isotonic-b": _isotonic(2),
}

# Probability rows: non-negative, some exact zeros, occasionally an all-zero row.
_entry = st.one_of(st.just(0.0), st.floats(1e-9, 1.0), st.floats(0.0, 1e-3))
probs_2d = hnp.arrays(np.float64, st.tuples(st.integers(1, 12), st.just(K)), elements=_entry)


def _rows_are_distributions(out: np.ndarray) -> None:
    assert np.isfinite(out).all()
    assert (out >= 0).all()
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
@SETTINGS
@given(p=probs_2d)
def test_contract_battery(name: str, p: np.ndarray) -> None:
    cal = CALIBRATORS[name]
    before = p.copy()
    out = cal.calibrate(p)
    # shape kept, rows sum to 1, finite
    assert out.shape == p.shape and out.dtype == np.float64
    _rows_are_distributions(out)
    # input not mutated, deterministic
    np.testing.assert_array_equal(p, before)
    np.testing.assert_array_equal(cal.calibrate(p), out)
    # batch equals row by row, bit for bit (1-D rows go through the same code path)
    rows = np.stack([cal.calibrate(row) for row in p])
    np.testing.assert_array_equal(rows, out)
    assert cal.calibrate(p[0]).shape == (K,)
    # JSON round trip gives identical output
    text = json.dumps(calibrator_to_json(cal))
    again = calibrator_from_json(json.loads(text))
    assert type(again) is type(cal)
    np.testing.assert_array_equal(again.calibrate(p), out)


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
@pytest.mark.parametrize(
    "bad", [np.nan, np.inf, -np.inf, -0.1], ids=["nan", "inf", "-inf", "negative"]
)
def test_invalid_probabilities_are_refused_with_row_and_column(name: str, bad: float) -> None:
    p = np.full((3, K), 0.2)
    p[2, 1] = bad
    with pytest.raises(InputError, match="row 2, column 1"):
        CALIBRATORS[name].calibrate(p)
    with pytest.raises(InputError, match="row 0, column 1"):  # one row: its own fast check
        CALIBRATORS[name].calibrate(p[2])


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
@pytest.mark.parametrize("shape", [(0,), (2, 3, K), (4, 0)])
def test_bad_shapes_are_refused(name: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(InputError, match="shape"):
        CALIBRATORS[name].calibrate(np.zeros(shape))


@pytest.mark.parametrize("name", sorted(CALIBRATORS))
def test_all_zero_row_becomes_a_distribution_and_empty_batch_is_kept(name: str) -> None:
    cal = CALIBRATORS[name]
    out = cal.calibrate(np.zeros((2, K)))
    _rows_are_distributions(out)
    assert cal.calibrate(np.zeros((0, K))).shape == (0, K)


def test_identity_and_temperature_map_an_all_zero_row_to_uniform() -> None:
    for cal in (IdentityCalibrator(), TemperatureCalibrator(2.0)):
        np.testing.assert_allclose(cal.calibrate(np.zeros(K)), np.full(K, 1 / K))


def test_isotonic_all_zero_output_row_becomes_uniform() -> None:
    zero_map = IsotonicMap((0.0, 1.0), (0.0, 0.0))
    cal = IsotonicCalibrator(tuple([zero_map] * K))
    np.testing.assert_array_equal(cal.calibrate(np.full(K, 0.2)), np.full(K, 1 / K))


def test_normalize_probs_rescales_rows() -> None:
    out = normalize_probs(np.array([[2.0, 2.0, 4.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(out, [[0.25, 0.25, 0.5], [1 / 3, 1 / 3, 1 / 3]])


# Temperature ------------------------------------------------------------------------------

temperatures = st.floats(0.05, 20.0)


@SETTINGS
@given(p=probs_2d, t=temperatures)
def test_temperature_keeps_the_argmax(p: np.ndarray, t: float) -> None:
    out = TemperatureCalibrator(t).calibrate(p)
    nonzero = p.sum(axis=1) > 0
    top = p[nonzero].max(axis=1)
    picked = p[nonzero][np.arange(int(nonzero.sum())), out[nonzero].argmax(axis=1)]
    # the calibrated argmax is a top class of the input (ties within float rounding aside)
    np.testing.assert_allclose(picked, top, rtol=1e-12)
    distinct = np.sort(p, axis=1)[:, -2] < 0.999 * p.max(axis=1)
    rows = nonzero & distinct
    np.testing.assert_array_equal(out[rows].argmax(axis=1), p[rows].argmax(axis=1))


@SETTINGS
@given(p=probs_2d)
def test_temperature_one_is_identity(p: np.ndarray) -> None:
    np.testing.assert_allclose(
        TemperatureCalibrator(1.0).calibrate(p), IdentityCalibrator().calibrate(p), atol=1e-10
    )


@SETTINGS
@given(p=probs_2d, t=temperatures, perm=st.permutations(range(K)))
def test_relabelling_classes_permutes_temperature_output(
    p: np.ndarray, t: float, perm: list[int]
) -> None:
    cal = TemperatureCalibrator(t)
    np.testing.assert_allclose(cal.calibrate(p[:, perm]), cal.calibrate(p)[:, perm], atol=1e-12)


@SETTINGS
@given(t=st.floats(1.01, 20.0))
def test_temperature_above_one_softens_and_below_one_sharpens(t: float) -> None:
    p = np.array([0.7, 0.2, 0.05, 0.04, 0.01])
    assert TemperatureCalibrator(t).calibrate(p).max() < 0.7
    assert TemperatureCalibrator(1.0 / t).calibrate(p).max() > 0.7


def test_temperature_formula() -> None:
    p = np.array([0.5, 0.3, 0.2, 0.0, 0.0])
    logits = np.log(np.maximum(p, 1e-12)) / 2.5
    expected = np.exp(logits) / np.exp(logits).sum()
    np.testing.assert_allclose(TemperatureCalibrator(2.5).calibrate(p), expected, rtol=1e-12)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), True])
def test_temperature_must_be_finite_and_positive(bad: float) -> None:
    with pytest.raises(InputError, match="temperature"):
        TemperatureCalibrator(bad)


# Isotonic ---------------------------------------------------------------------------------


@SETTINGS
@given(seed=st.integers(0, 10_000), values=hnp.arrays(np.float64, 20, elements=st.floats(0, 1)))
def test_isotonic_maps_are_monotone_and_clip_outside_their_range(
    seed: int, values: np.ndarray
) -> None:
    m = _iso_map(np.random.default_rng(seed))
    xs = np.sort(values)
    ys = m(xs)
    assert (np.diff(ys) >= 0).all()
    assert ys.min() >= m.y[0] and ys.max() <= m.y[-1]
    np.testing.assert_array_equal(m(np.array([-1.0, 2.0])), [m.y[0], m.y[-1]])


@SETTINGS
@given(seed=st.integers(0, 10_000), p=probs_2d)
def test_isotonic_applies_each_class_map_then_renormalizes(seed: int, p: np.ndarray) -> None:
    cal = _isotonic(seed)
    q = normalize_probs(p)
    mapped = np.stack([cal.regressors[c](q[:, c]) for c in range(K)], axis=1)
    sums = mapped.sum(axis=1, keepdims=True)
    expected = np.where(sums > 0, mapped / np.where(sums > 0, sums, 1), 1 / K)
    np.testing.assert_allclose(cal.calibrate(p), expected, atol=1e-12)


def test_isotonic_refuses_a_wrong_number_of_columns() -> None:
    with pytest.raises(InputError, match="5 classes"):
        _isotonic(0).calibrate(np.full((2, 3), 1 / 3))


@pytest.mark.parametrize(
    ("x", "y"),
    [((0.5, 0.5), (0.1, 0.2)), ((0.1, 0.2), (0.5, 0.4)), ((0.1,), (1.5,)), ((), ())],
    ids=["x-not-increasing", "y-decreasing", "y-above-1", "empty"],
)
def test_isotonic_map_validation(x: tuple[float, ...], y: tuple[float, ...]) -> None:
    with pytest.raises(InputError):
        IsotonicMap(x, y)
