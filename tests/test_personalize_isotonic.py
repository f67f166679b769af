"""Per-user isotonic maps blended with the global map of each class (train._personalize)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.errors import InputError
from taskclf.infer.calibration import IsotonicCalibrator, IsotonicMap
from taskclf.train._calibration_math import blend_isotonic, ramp_zero_block
from taskclf.train._personalize import DEFAULT_PRIOR_POSITIVES, fit_personalized_calibrators
from taskclf.train.calibrate import IsotonicSmallSampleWarning, fit_isotonic_calibrator

K = 8


def _map(draw: st.DrawFn) -> IsotonicMap:
    xs = draw(st.lists(st.floats(0, 1), min_size=1, max_size=6, unique=True))
    ys = draw(st.lists(st.floats(0, 1), min_size=len(xs), max_size=len(xs)))
    return IsotonicMap(tuple(sorted(xs)), tuple(sorted(ys)))


maps = st.composite(_map)


@settings(max_examples=200, deadline=None)
@given(maps(), maps(), st.floats(0, 1), st.lists(st.floats(-0.5, 1.5), min_size=1, max_size=20))
def test_the_blend_is_the_pointwise_mix_of_both_maps(
    own: IsotonicMap, prior: IsotonicMap, w: float, points: list[float]
) -> None:
    blended = blend_isotonic(IsotonicCalibrator((own,)), IsotonicCalibrator((prior,)), [w])
    got = blended.regressors[0](np.array(points))
    want = w * own(np.array(points)) + (1 - w) * prior(np.array(points))
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-12)


def test_weights_one_and_zero_take_either_map_unchanged() -> None:
    a = IsotonicMap((0.1, 0.5), (0.0, 0.7))
    b = IsotonicMap((0.2, 0.3, 0.9), (0.1, 0.2, 0.8))
    out = blend_isotonic(IsotonicCalibrator((a, b)), IsotonicCalibrator((b, a)), [1.0, 0.0])
    assert out.regressors == (a, a)


@pytest.mark.parametrize("weights", [[0.5], [0.5, 0.5, 0.5], [1.5, 0.0], [np.nan, 0.0]])
def test_bad_blend_weights_are_input_errors(weights: list[float]) -> None:
    a = IsotonicMap((0.1, 0.5), (0.0, 0.7))
    cal = IsotonicCalibrator((a, a))
    with pytest.raises(InputError, match="blend_isotonic"):
        blend_isotonic(cal, cal, weights)


@pytest.mark.parametrize(
    ("x", "y", "want"),
    [
        ((0.1, 0.2, 0.6), (0.0, 0.0, 0.5), ((0.0, 0.6), (0.0, 0.5))),
        (
            (0.1, 0.2, 0.6, 0.9),
            (0.0, 0.25, 0.5, 1.0),
            ((0.0, 0.2, 0.6, 0.9), (0.0, 0.25, 0.5, 1.0)),
        ),
        ((0.05, 0.6), (0.1, 0.5), ((0.05, 0.6), (0.1, 0.5))),  # no zero block: unchanged
        ((0.0, 0.3), (0.0, 0.4), ((0.0, 0.3), (0.0, 0.4))),
        ((0.1, 0.7), (0.0, 0.0), ((0.0, 1.0), (0.0, 1.0))),  # no positive: the identity
    ],
)
def test_the_zero_block_becomes_a_ramp_from_the_origin(
    x: tuple[float, ...], y: tuple[float, ...], want: tuple[tuple[float, ...], ...]
) -> None:
    assert ramp_zero_block(x, y) == IsotonicMap(*want)


def _data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Users ``a``..``e`` with every class; ``narrow`` labels only classes 0-2, and the model is
    over-confident for it (it says class 0 with 0.9 when the truth is 0, 1 or 2)."""
    rng = np.random.default_rng(3)
    ys, ps, users, days = [], [], [], []
    for user in "abcde":
        y = rng.integers(0, K, 600)
        z = rng.normal(size=(600, K))
        z[np.arange(600), y] += 2.0
        ys.append(y)
        ps.append(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True))
        users += [user] * 600
        days.append(np.repeat(np.arange(6), 100))
    y = rng.integers(0, 3, 600)
    p = np.full((600, K), 0.1 / (K - 1))
    p[:, 0] = 0.9
    p[np.arange(600), rng.integers(0, K, 600)] += 0.05  # some spread in every column
    ys.append(y)
    ps.append(p / p.sum(axis=1, keepdims=True))
    users += ["narrow"] * 600
    days.append(np.repeat(np.arange(6), 100))
    return np.concatenate(ys), np.concatenate(ps), np.array(users), np.concatenate(days)


@pytest.mark.parametrize("prior_positives", [DEFAULT_PRIOR_POSITIVES, 0.0])
def test_a_class_the_user_never_labeled_keeps_the_global_map(prior_positives: float) -> None:
    y, p, users, days = _data()
    with pytest.warns(IsotonicSmallSampleWarning):  # below 1,000 rows per user
        fit = fit_personalized_calibrators(
            y, p, users, days, method="isotonic", prior_positives=prior_positives
        )
    assert "narrow" in fit.user_calibrators  # it helps this user a lot, blended or not
    cal = fit.user_calibrators["narrow"]
    assert isinstance(cal, IsotonicCalibrator)
    assert isinstance(fit.global_calibrator, IsotonicCalibrator)
    mine = users == "narrow"
    with pytest.warns(IsotonicSmallSampleWarning):
        own = fit_isotonic_calibrator(y[mine], p[mine], K)
    counts = np.bincount(y[mine], minlength=K)
    points = np.linspace(0, 1, 101)
    for c in range(K):
        w = 1.0 if prior_positives == 0 else counts[c] / (counts[c] + prior_positives)
        want = w * own.regressors[c](points) + (1 - w) * fit.global_calibrator.regressors[c](points)
        np.testing.assert_allclose(cal.regressors[c](points), want, atol=1e-12)
    assert counts[3] == 0  # a class the user never labeled:
    if prior_positives == 0:  # their own map of it is the identity
        assert cal.regressors[3] == IsotonicMap((0.0, 1.0), (0.0, 1.0))
    else:  # the global map of it
        assert cal.regressors[3] == fit.global_calibrator.regressors[3]


def test_bad_prior_positives_are_input_errors() -> None:
    y, p, users, days = _data()
    with pytest.raises(InputError, match="prior_positives"):
        fit_personalized_calibrators(y, p, users, days, method="isotonic", prior_positives=-1)
