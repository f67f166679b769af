"""Reject threshold tuning: the documented objective, per-user thresholds, the curve."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.metrics import reject_rate
from taskclf.train.tune_reject import (
    RejectTuningResult,
    choose_threshold,
    eligible_users,
    risk_coverage_curve,
    tune_reject_threshold,
)

BOUNDS = (0.05, 0.30)


def _brute_force(correct: np.ndarray, conf: np.ndarray, target: float) -> tuple[float, str]:
    """The objective evaluated directly on every distinct confidence as a cut point."""
    cands = []
    for t in np.unique(np.concatenate(([0.0], conf))):
        accepted = conf >= t
        rate = 1 - accepted.mean()
        cands.append((t, rate, correct[accepted].mean()))
    feasible = [c for c in cands if BOUNDS[0] - 1e-12 <= c[1] <= BOUNDS[1] + 1e-12]
    meets = [c for c in feasible if c[2] >= target]
    if meets:
        return min(meets, key=lambda c: c[1])[1], "target_met"
    if feasible:
        return min(feasible, key=lambda c: (-c[2], c[1]))[1], "max_accuracy_in_bounds"
    dist = [max(BOUNDS[0] - c[1], c[1] - BOUNDS[1]) for c in cands]
    return cands[int(np.argmin(dist))][1], "closest_to_bounds"


population = st.integers(1, 80).flatmap(
    lambda n: st.tuples(
        hnp.arrays(np.bool_, n),
        hnp.arrays(np.float64, n, elements=st.sampled_from([0.2, 0.35, 0.5, 0.61, 0.7, 0.9, 1.0])),
    )
)


@settings(max_examples=80, deadline=None)
@given(data=population, target=st.sampled_from([0.5, 0.8, 0.95]))
def test_choice_follows_the_documented_objective(
    data: tuple[np.ndarray, np.ndarray], target: float
) -> None:
    correct, conf = data
    choice = choose_threshold(correct, conf, target_accuracy=target, reject_rate_bounds=BOUNDS)
    expected_rate, expected_rule = _brute_force(correct, conf, target)
    assert choice.rule == expected_rule
    assert choice.reject_rate == pytest.approx(expected_rate)
    # the threshold really rejects that share (reject when confidence < threshold)
    assert np.mean(conf < choice.threshold) == pytest.approx(choice.reject_rate)
    assert choice.selective_accuracy == pytest.approx(correct[conf >= choice.threshold].mean())
    assert choice.coverage == pytest.approx(1 - choice.reject_rate)


def test_target_met_within_bounds_picks_the_highest_coverage() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0.3, 1.0, size=2000)
    correct = rng.random(2000) < conf  # calibrated: accuracy grows with confidence
    choice = choose_threshold(correct, conf, target_accuracy=0.75)
    assert choice.rule == "target_met"
    assert 0.05 <= choice.reject_rate <= 0.30 and choice.selective_accuracy >= 0.75
    lower = conf[conf < choice.threshold].max()  # one more accepted window breaks a rule
    with_one_more = conf >= lower
    assert correct[with_one_more].mean() < 0.75 or 1 - with_one_more.mean() < 0.05


def test_a_perfect_model_still_rejects_the_minimum_share() -> None:
    conf = np.linspace(0.5, 1.0, 100)
    choice = choose_threshold(np.ones(100, bool), conf)
    assert choice.rule == "target_met" and choice.reject_rate == pytest.approx(0.05)


def test_unreachable_target_takes_the_best_accuracy_within_bounds() -> None:
    conf = np.linspace(0.2, 0.9, 100)
    correct = np.arange(100) % 2 == 0  # 50 % everywhere, best at some cut
    choice = choose_threshold(correct, conf, target_accuracy=0.99)
    assert choice.rule == "max_accuracy_in_bounds"
    assert 0.05 <= choice.reject_rate <= 0.30


def test_tied_confidences_take_the_rate_closest_to_the_bounds() -> None:
    conf = np.array([0.5] * 50 + [0.9] * 50)  # reject 0 % or 50 %
    choice = choose_threshold(np.ones(100, bool), conf)
    assert choice.rule == "closest_to_bounds" and choice.reject_rate == 0.0


def test_curve_is_ordered_and_matches_core_reject_rate() -> None:
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.full(8, 0.5), size=500)
    conf = proba.max(axis=1)
    correct = rng.random(500) < conf
    thresholds, rates, acc = risk_coverage_curve(correct, conf)
    assert thresholds[0] == 0.0 and (np.diff(thresholds) > 0).all()
    assert (np.diff(rates) > 0).all() and rates[0] == 0.0
    for t, r in zip(thresholds[::50], rates[::50], strict=True):
        assert reject_rate(proba, t) == pytest.approx(r)
    assert acc[0] == pytest.approx(correct.mean())


def _users_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ys, ps, us = [], [], []
    for user, sharp in (("sharp", 0.15), ("vague", 1.5), ("small", 0.5)):
        n = 300 if user != "small" else 50
        p = rng.dirichlet(np.full(8, sharp), size=n)
        y = np.array([rng.choice(8, p=row) for row in p])
        ys.append(y)
        ps.append(p)
        us.append([user] * n)
    return np.concatenate(ys), np.concatenate(ps), np.concatenate(us).astype(object)


def test_per_user_thresholds_for_personalized_users_with_enough_rows() -> None:
    y, p, users = _users_data(2)
    result = tune_reject_threshold(
        y, p, user_ids=users, personalized_users=["sharp", "vague", "small", "gone"]
    )
    assert isinstance(result, RejectTuningResult)
    assert set(result.per_user_reject_thresholds) == {"sharp", "vague"}
    assert result.skipped_users == {
        "gone": "no validation windows",
        "small": "50 validation windows < 200",
    }
    for user, choice in result.users.items():
        mine = users == user
        alone = choose_threshold(mine[mine] & (p[mine].argmax(1) == y[mine]), p[mine].max(1))
        assert choice.threshold == alone.threshold and choice.user_id == user
    assert result.per_user_reject_thresholds["sharp"] != result.reject_threshold
    only_global = tune_reject_threshold(y, p)
    assert only_global.users == {} and only_global.reject_threshold == result.reject_threshold
    data = result.model_dump(mode="json")
    assert RejectTuningResult.model_validate(data) == result
    assert len(data["global_choice"]["curve"]) <= 102
    assert len(data["users"]["sharp"]["curve"]) <= 22


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target_accuracy": 0.0}, "target accuracy"),
        ({"reject_rate_bounds": (0.4, 0.2)}, "bounds"),
        ({"user_ids": ["a"]}, "one"),
    ],
)
def test_tuning_input_errors(kwargs: dict, match: str) -> None:
    y, p, _ = _users_data(3)
    with pytest.raises(InputError, match=match):
        tune_reject_threshold(y, p, **kwargs)


def _report(folder, bundle: str, users: dict[str, bool]) -> None:
    rows = [{"user_id": u, "is_eligible": ok, "kept": False} for u, ok in users.items()]
    report = {"model_bundle_id": bundle, "users": rows}
    (folder / "calibration_report.json").write_text(json.dumps(report), encoding="utf-8")


def test_eligible_users_include_fallbacks_and_refuse_stale_reports(tmp_path) -> None:
    # no report: the store's personalized users
    assert eligible_users(tmp_path, "run-1", ["b", "a"]) == ["a", "b"]
    # eligible users whose calibrator fell back to global get a threshold too
    _report(tmp_path, "run-1", {"a": True, "b": True, "c": False})
    assert eligible_users(tmp_path, "run-1", ["a"]) == ["a", "b"]
    _report(tmp_path, "run-0", {"a": True})
    with pytest.raises(ArtifactError, match="is for model 'run-0'"):
        eligible_users(tmp_path, "run-1", ["a"])
    (tmp_path / "calibration_report.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ArtifactError, match="cannot be read"):
        eligible_users(tmp_path, "run-1", ["a"])
