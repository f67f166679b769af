from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import f1_score, log_loss

from taskclf.core.defaults import CALIBRATION_ECE_BINS
from taskclf.core.errors import InputError
from taskclf.core.metrics import (
    BIN_SCHEME,
    bin_indices,
    brier_score,
    calibration_summary,
    classification_summary,
    classwise_ece,
    confusion_matrix,
    ece_top_label,
    evaluate_gates,
    mean_classwise_ece,
    nll,
    reject_rate,
    reliability_bins,
    top_confusions,
)
from taskclf.core.types import LABEL_SET_V1

LABELS = list(LABEL_SET_V1)


def _dirichlet(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    return rng.dirichlet(np.ones(k), size=n)


# NLL / Brier against hand-computed values -------------------------------------------------


def test_nll_hand_computed():
    p = np.array([[0.8, 0.2], [0.4, 0.6], [0.5, 0.5]])
    y = np.array([0, 1, 0])
    expected = -(math.log(0.8) + math.log(0.6) + math.log(0.5)) / 3
    assert nll(y, p) == pytest.approx(expected, rel=1e-12)


def test_nll_clips_zero_probability():
    p = np.array([[1.0, 0.0]])
    assert nll(np.array([1]), p) == pytest.approx(-math.log(1e-15))


def test_brier_hand_computed():
    # row 1: (0.8-1)^2 + 0.2^2 = 0.08; row 2: 0.4^2 + (0.6-1)^2 = 0.32;
    # row 3 (true class 0): (0.3-1)^2 + 0.7^2 = 0.98
    p = np.array([[0.8, 0.2], [0.4, 0.6], [0.3, 0.7]])
    y = np.array([0, 1, 0])
    assert brier_score(y, p) == pytest.approx((0.08 + 0.32 + 0.98) / 3, rel=1e-12)


def test_brier_three_class_hand_computed():
    p = np.array([[0.5, 0.3, 0.2]])
    # (0.5)^2 + (0.3-1)^2 + 0.2^2 = 0.25 + 0.49 + 0.04
    assert brier_score(np.array([1]), p) == pytest.approx(0.78)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), k=st.integers(2, 8))
def test_nll_matches_sklearn_log_loss(seed, n, k):
    rng = np.random.default_rng(seed)
    p = 0.9 * _dirichlet(rng, n, k) + 0.1 / k  # away from 0 so clipping never matters
    y = rng.integers(0, k, size=n)
    assert nll(y, p) == pytest.approx(log_loss(y, p, labels=list(range(k))), rel=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 60), k=st.integers(2, 8))
def test_brier_bounds_and_extremes(seed, n, k):
    rng = np.random.default_rng(seed)
    p = _dirichlet(rng, n, k)
    y = rng.integers(0, k, size=n)
    assert 0.0 <= brier_score(y, p) <= 2.0
    onehot = np.eye(k)[y]
    assert brier_score(y, onehot) == 0.0
    wrong = np.eye(k)[(y + 1) % k]
    assert brier_score(y, wrong) == pytest.approx(2.0)


# Bins and ECE -----------------------------------------------------------------------------


def test_bin_scheme_is_equal_width_right_closed():
    m = CALIBRATION_ECE_BINS
    assert m == 15
    edges = np.linspace(0, 1, m + 1)
    values = np.concatenate([[0.0], edges[1:], np.nextafter(edges[1:-1], 2.0)])
    got = bin_indices(values, m)
    assert got[0] == 0  # 0 belongs to the first bin
    np.testing.assert_array_equal(got[1 : m + 1], np.arange(m))  # upper edge is inclusive
    np.testing.assert_array_equal(got[m + 1 :], np.arange(1, m))  # just above an edge
    assert "(b/M, (b+1)/M]" in BIN_SCHEME


def test_ece_zero_for_exactly_calibrated_bins():
    # 10 rows at confidence 0.7 of which exactly 7 correct; 10 at 0.9 with 9 correct.
    conf = np.array([0.7] * 10 + [0.9] * 10)
    p = np.stack([conf, 1 - conf], axis=1)
    y = np.array([0] * 7 + [1] * 3 + [0] * 9 + [1] * 1)
    assert ece_top_label(y, p) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_perfectly_calibrated_random_data_is_near_zero():
    rng = np.random.default_rng(7)
    n, k = 200_000, 4
    p = _dirichlet(rng, n, k)
    # Draw each label from its own predicted distribution: calibrated by construction.
    u = rng.random(n)[:, None]
    y = (u > np.cumsum(p, axis=1)).sum(axis=1)
    assert ece_top_label(y, p) < 0.01
    assert mean_classwise_ece(y, p) < 0.01


def test_ece_of_overconfident_model():
    p = np.array([[1.0, 0.0]] * 10)
    y = np.array([0] * 5 + [1] * 5)
    assert ece_top_label(y, p) == pytest.approx(0.5)


def test_classwise_ece_hand_computed():
    # class 0 probs 0.6 (bin (0.533, 0.6]) for both rows, frequency of class 0 = 1/2
    p = np.array([[0.6, 0.4], [0.6, 0.4]])
    y = np.array([0, 1])
    np.testing.assert_allclose(classwise_ece(y, p), [0.1, 0.1])
    assert mean_classwise_ece(y, p) == pytest.approx(0.1)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 80), k=st.integers(2, 8))
def test_reliability_bins_partition_rows_and_ece_agrees(seed, n, k):
    rng = np.random.default_rng(seed)
    p = _dirichlet(rng, n, k)
    y = rng.integers(0, k, size=n)
    bins = reliability_bins(y, p)
    assert len(bins) == CALIBRATION_ECE_BINS
    assert sum(b.count for b in bins) == n
    ece = sum(
        b.count / n * abs(b.accuracy - b.mean_confidence)
        for b in bins
        if b.count and b.accuracy is not None and b.mean_confidence is not None
    )
    assert ece_top_label(y, p) == pytest.approx(ece, abs=1e-12)
    for b in bins:
        if b.count:
            assert b.mean_confidence is not None
            assert b.lower - 1e-12 <= b.mean_confidence <= b.upper + 1e-12
    assert 0.0 <= ece <= 1.0


def test_calibration_summary_states_bins_and_names_classes():
    rng = np.random.default_rng(1)
    p = _dirichlet(rng, 50, 8)
    y = rng.integers(0, 8, size=50)
    s = calibration_summary(y, p, LABELS)
    assert s.n_bins == 15 and s.bin_scheme == BIN_SCHEME
    assert list(s.classwise_ece) == LABELS
    assert s.nll == pytest.approx(nll(y, p))
    assert s.classwise_ece_mean == pytest.approx(np.mean(list(s.classwise_ece.values())))


# Classification ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    y_true=st.lists(st.integers(0, 7), min_size=1, max_size=60),
    data=st.data(),
)
def test_classification_matches_sklearn(y_true, data):
    y_pred = data.draw(st.lists(st.integers(0, 7), min_size=len(y_true), max_size=len(y_true)))
    s = classification_summary(y_true, y_pred, LABELS)
    assert s.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert s.weighted_f1 == pytest.approx(
        f1_score(y_true, y_pred, average="weighted", zero_division=0)
    )
    np.testing.assert_array_equal(
        np.array(s.confusion_matrix), sk_confusion_matrix(y_true, y_pred, labels=range(8))
    )
    assert sum(m.support for m in s.per_class) == len(y_true)


def test_undefined_precision_and_recall_are_none():
    s = classification_summary([0, 0, 1], [0, 0, 0], LABELS)
    by = s.by_label()
    assert by[LABELS[1]].precision is None  # never predicted
    assert by[LABELS[1]].recall == 0.0
    assert by[LABELS[2]].recall is None and by[LABELS[2]].precision is None
    assert s.averaged_labels == LABELS[:2]


def test_top_confusions_sorted():
    cm = confusion_matrix([0, 0, 0, 1, 1, 2], [1, 1, 2, 0, 1, 2], 3)
    assert top_confusions(cm, ["a", "b", "c"]) == [("a", "b", 2), ("a", "c", 1), ("b", "a", 1)]


def test_reject_rate():
    p = np.array([[0.5, 0.5], [0.9, 0.1], [0.54, 0.46], [0.55, 0.45]])
    assert reject_rate(p, 0.55) == pytest.approx(0.75 - 0.25)


# Gates ------------------------------------------------------------------------------------


def _idx(label: str) -> int:
    return LABELS.index(label)


def test_gates_pass_on_good_predictions_and_exempt_absent_classes():
    y = [_idx("Build")] * 40 + [_idx("BreakIdle")] * 20 + [_idx("Meet")] * 10
    pred = list(y)
    pred[0] = _idx("Meet")  # one Build mistaken for Meet
    report = evaluate_gates(classification_summary(y, pred, LABELS), 0.10)
    assert report.passed, report
    assert set(report.exempt_classes) == set(LABELS) - {"Build", "BreakIdle", "Meet"}
    gate = {g.name: g for g in report.gates}
    assert gate["min_class_precision"].status == "pass"
    assert "exempt" in gate["min_class_precision"].detail


def test_gates_fail_reasons():
    y = [_idx("Build")] * 10 + [_idx("BreakIdle")] * 10
    pred = [_idx("Build")] * 10 + [_idx("Build")] * 5 + [_idx("BreakIdle")] * 5
    report = evaluate_gates(classification_summary(y, pred, LABELS), 0.40)
    assert not report.passed
    assert set(report.failed) >= {"breakidle_recall", "reject_rate"}
    gate = {g.name: g for g in report.gates}
    assert gate["breakidle_precision"].status == "pass"
    assert gate["breakidle_recall"].value == pytest.approx(0.5)


def test_gates_breakidle_absent_is_not_applicable_and_never_predicted_counts_zero():
    y = [_idx("Build")] * 10 + [_idx("Write")] * 10
    pred = [_idx("Build")] * 20
    report = evaluate_gates(classification_summary(y, pred, LABELS), 0.10)
    gate = {g.name: g for g in report.gates}
    assert gate["breakidle_precision"].status == "not_applicable"
    assert gate["breakidle_recall"].status == "not_applicable"
    assert gate["min_class_precision"].status == "fail"
    assert gate["min_class_precision"].value == 0.0
    assert "Write" in gate["min_class_precision"].detail


@pytest.mark.parametrize(
    ("y", "p"),
    [
        ([0], [[0.5, 0.6]]),  # row does not sum to 1
        ([0], [[np.nan, 1.0]]),
        ([2], [[0.5, 0.5]]),  # label out of range
        ([0, 1], [[0.5, 0.5]]),  # length mismatch
        ([], np.empty((0, 2))),
    ],
)
def test_bad_inputs_raise_input_error(y, p):
    with pytest.raises(InputError):
        nll(np.asarray(y, dtype=np.int64), np.asarray(p, dtype=float))
