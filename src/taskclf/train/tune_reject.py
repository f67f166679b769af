"""Reject thresholds: a global threshold and one per eligible user (DESIGN §4.5).

A window is rejected (``Mixed/Unknown``) when its calibrated confidence (max probability) is
below the threshold. On calibrated validation probabilities, each candidate threshold gives a
*coverage* (share of windows accepted), a *reject rate* (``1 - coverage``) and a *selective
accuracy* (accuracy on the accepted windows); their list is the risk-coverage curve
(risk = ``1 - selective accuracy``; Geifman & El-Yaniv 2017, "Selective Classification for
Deep Neural Networks").

Candidates: accept everything (threshold 0), or reject exactly the windows below each distinct
confidence value ``u_j`` (threshold = midpoint between ``u_j`` and the next lower value).

Objective, in order:

1. Among thresholds whose reject rate lies within ``reject_rate_bounds`` (default 5-30 %,
   ``REJECT_RATE_BOUNDS``) and whose selective accuracy reaches ``target_accuracy`` (default
   ``DEFAULT_TARGET_SELECTIVE_ACCURACY``), take the one with the highest coverage.
2. If the target cannot be met within the bounds, take the threshold with the highest
   selective accuracy within the bounds (ties: highest coverage).
3. If no threshold has a reject rate within the bounds (heavily tied confidences), take the
   one whose reject rate is closest to the bounds (ties: highest coverage).

Each choice records which rule applied. Per-user thresholds are tuned the same way on the
user's own rows, for every user eligible for personalization (the calibration report's
``is_eligible``: enough labeled windows, days and labels — whether their own calibrator was
kept or they fell back to the global one, whose probabilities are then tuned) with at least
``min_user_windows`` validation rows; other users use the global threshold.

``taskclf train tune-reject`` writes the result as ``reject_tuning.json`` into the calibrator
store directory (the thresholds belong to that store's calibrated probabilities; refitting the
store replaces the directory and so drops stale tuning) and, with ``--write-policy``, writes
the inference policy binding model, store and thresholds.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

from taskclf.core._atomic import atomic_write_json
from taskclf.core.defaults import (
    DEFAULT_MIN_LABELED_WINDOWS,
    DEFAULT_TARGET_SELECTIVE_ACCURACY,
    REJECT_RATE_BOUNDS,
)
from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.inference_policy import (
    InferencePolicy,
    build_inference_policy,
    check_store_binding,
    save_inference_policy,
    validate_policy,
)
from taskclf.core.model_io import load_metadata
from taskclf.core.paths import Layout
from taskclf.core.time import utc_now
from taskclf.infer.calibration import load_calibrator_store, normalize_probs

#: File name of the tuning result inside the calibrator store directory.
REJECT_TUNING_FILE: Final = "reject_tuning.json"
REJECT_TUNING_FORMAT_VERSION: Final = 1
Rule = Literal["target_met", "max_accuracy_in_bounds", "closest_to_bounds"]
OBJECTIVE: Final = (
    "highest coverage whose selective accuracy >= target with the reject rate within bounds; "
    "else the highest selective accuracy within bounds; else the reject rate closest to bounds"
)


class RiskCoveragePoint(BaseModel):
    """One point of the risk-coverage curve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float
    coverage: float
    reject_rate: float
    selective_accuracy: float


class ThresholdChoice(BaseModel):
    """The chosen threshold of one population (global, or one user) and its curve."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str | None
    n_rows: int
    threshold: float
    coverage: float
    reject_rate: float
    selective_accuracy: float
    accuracy_without_reject: float
    rule: Rule
    curve: list[RiskCoveragePoint]


class RejectTuningResult(BaseModel):
    """``reject_tuning.json``: the objective, the global and per-user choices."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = REJECT_TUNING_FORMAT_VERSION
    objective: str = OBJECTIVE
    target_selective_accuracy: float
    reject_rate_bounds: tuple[float, float]
    min_user_windows: int
    global_choice: ThresholdChoice
    users: dict[str, ThresholdChoice]
    skipped_users: dict[str, str]
    model_bundle_id: str | None = None
    model_schema_hash: str | None = None
    calibration_method: str | None = None
    created_at: datetime

    @property
    def reject_threshold(self) -> float:
        """The global threshold."""
        return self.global_choice.threshold

    @property
    def per_user_reject_thresholds(self) -> dict[str, float]:
        """``user_id -> threshold`` of the users tuned individually."""
        return {uid: c.threshold for uid, c in sorted(self.users.items())}


@dataclass(frozen=True)
class _Curve:
    thresholds: NDArray[np.float64]
    reject_rate: NDArray[np.float64]
    selective_accuracy: NDArray[np.float64]


def risk_coverage_curve(
    correct: NDArray[np.bool_], confidence: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Every candidate threshold with its reject rate and selective accuracy.

    Args:
        correct: Shape ``(n,)`` whether the argmax is right.
        confidence: Shape ``(n,)`` max calibrated probability.

    Returns:
        ``(thresholds, reject_rate, selective_accuracy)``, each shape ``(m,)`` with ``m`` the
        number of distinct confidences; thresholds increase, starting at 0 (reject nothing).
    """
    curve = _curve(correct, confidence)
    return curve.thresholds, curve.reject_rate, curve.selective_accuracy


def _curve(correct: NDArray[np.bool_], confidence: NDArray[np.float64]) -> _Curve:
    order = np.argsort(confidence, kind="stable")
    conf, hits = confidence[order], correct[order].astype(np.float64)
    values, first = np.unique(conf, return_index=True)
    n = conf.size
    cum = np.concatenate(([0.0], np.cumsum(hits)))
    accepted = n - first
    selective = (cum[-1] - cum[first]) / accepted
    mids = (values[:-1] + values[1:]) / 2.0
    thresholds = np.concatenate(([0.0], np.where(mids > values[:-1], mids, values[1:])))
    return _Curve(thresholds, first / n, selective)


def _choose(curve: _Curve, target: float, bounds: tuple[float, float]) -> tuple[int, Rule]:
    rate, acc = curve.reject_rate, curve.selective_accuracy
    lo, hi = bounds
    feasible = (rate >= lo - 1e-12) & (rate <= hi + 1e-12)
    meets = feasible & (acc >= target)
    if meets.any():
        return int(np.flatnonzero(meets)[0]), "target_met"
    if feasible.any():
        idx = np.flatnonzero(feasible)
        return int(idx[np.argmax(acc[idx])]), "max_accuracy_in_bounds"
    distance = np.maximum(lo - rate, rate - hi)
    return int(np.argmin(distance)), "closest_to_bounds"


def choose_threshold(
    correct: NDArray[np.bool_],
    confidence: NDArray[np.float64],
    *,
    target_accuracy: float = DEFAULT_TARGET_SELECTIVE_ACCURACY,
    reject_rate_bounds: tuple[float, float] = REJECT_RATE_BOUNDS,
    curve_points: int = 101,
    user_id: str | None = None,
) -> ThresholdChoice:
    """Choose the reject threshold of one population by the module's objective.

    Args:
        correct: Shape ``(n >= 1,)`` whether the argmax is right.
        confidence: Shape ``(n,)`` max calibrated probability.
        target_accuracy: Selective accuracy to reach.
        reject_rate_bounds: ``(lo, hi)`` allowed reject rates.
        curve_points: At most this many curve points are kept (plus the chosen one).
        user_id: The population's user (``None`` = global).
    """
    if confidence.size == 0:
        raise InputError("cannot tune a reject threshold on zero rows")
    curve = _curve(correct, confidence)
    j, rule = _choose(curve, target_accuracy, reject_rate_bounds)
    m = curve.thresholds.size
    keep = np.unique(np.concatenate((np.linspace(0, m - 1, max(curve_points, 2)).round(), [j])))
    points = [
        RiskCoveragePoint(
            threshold=float(curve.thresholds[i]),
            coverage=float(1.0 - curve.reject_rate[i]),
            reject_rate=float(curve.reject_rate[i]),
            selective_accuracy=float(curve.selective_accuracy[i]),
        )
        for i in keep.astype(np.int64)
    ]
    return ThresholdChoice(
        user_id=user_id,
        n_rows=int(confidence.size),
        threshold=float(curve.thresholds[j]),
        coverage=float(1.0 - curve.reject_rate[j]),
        reject_rate=float(curve.reject_rate[j]),
        selective_accuracy=float(curve.selective_accuracy[j]),
        accuracy_without_reject=float(curve.selective_accuracy[0]),
        rule=rule,
        curve=points,
    )


def _check_args(target: float, bounds: tuple[float, float]) -> None:
    if not 0.0 < target <= 1.0:
        raise InputError(f"target accuracy must be in (0, 1], got {target!r}")
    lo, hi = bounds
    if not 0.0 <= lo <= hi < 1.0:
        raise InputError(f"reject rate bounds must satisfy 0 <= lo <= hi < 1, got {bounds}")


def tune_reject_threshold(
    y_true_indices: ArrayLike,
    calibrated_proba: ArrayLike,
    *,
    user_ids: Sequence[str] | NDArray[Any] | None = None,
    personalized_users: Collection[str] | None = None,
    target_accuracy: float = DEFAULT_TARGET_SELECTIVE_ACCURACY,
    reject_rate_bounds: tuple[float, float] = REJECT_RATE_BOUNDS,
    min_user_windows: int = DEFAULT_MIN_LABELED_WINDOWS,
    curve_points: int = 101,
    user_curve_points: int = 21,
    model_bundle_id: str | None = None,
    model_schema_hash: str | None = None,
    calibration_method: str | None = None,
    created_at: datetime | None = None,
) -> RejectTuningResult:
    """Tune the global reject threshold and per-user thresholds (module doc: the objective).

    Args:
        y_true_indices: Shape ``(n,)`` int true classes.
        calibrated_proba: Shape ``(n, k)`` calibrated probabilities (``label_set`` order).
        user_ids: Shape ``(n,)`` user of each row; ``None`` tunes the global threshold only.
        personalized_users: Users to tune individually (default: every user in ``user_ids``);
            only those with at least ``min_user_windows`` rows get a threshold.
        target_accuracy: Selective accuracy to reach.
        reject_rate_bounds: Allowed reject rates ``(lo, hi)``.
        min_user_windows: Minimum rows for a per-user threshold.
        curve_points: Curve points kept for the global curve.
        user_curve_points: Curve points kept per user.
        model_bundle_id: Recorded for traceability.
        model_schema_hash: Recorded for traceability.
        calibration_method: Recorded for traceability.
        created_at: Creation time (default: now).
    """
    _check_args(target_accuracy, reject_rate_bounds)
    normalize_probs(calibrated_proba)  # validation only: confidences are used as given,
    p = np.asarray(calibrated_proba, dtype=np.float64)  # exactly as the pipeline sees them
    y = np.asarray(y_true_indices)
    if p.ndim != 2 or y.shape != (p.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise InputError(f"need y (n,) ints and probabilities (n, k); got {y.shape}, {p.shape}")
    correct = p.argmax(axis=1) == y
    confidence = p.max(axis=1)

    def choose(rows: NDArray[np.intp] | None, points: int, uid: str | None) -> ThresholdChoice:
        c, conf = (correct, confidence) if rows is None else (correct[rows], confidence[rows])
        return choose_threshold(
            c,
            conf,
            target_accuracy=target_accuracy,
            reject_rate_bounds=reject_rate_bounds,
            curve_points=points,
            user_id=uid,
        )

    global_choice = choose(None, curve_points, None)
    users: dict[str, ThresholdChoice] = {}
    skipped: dict[str, str] = {}
    if user_ids is not None:
        codes, uniques = pd.factorize(np.asarray(user_ids, dtype=object), sort=True)
        if codes.shape != y.shape or (codes < 0).any():
            raise InputError("user_ids must give one (non-missing) user per row")
        wanted = set(uniques) if personalized_users is None else set(personalized_users)
        counts = np.bincount(codes, minlength=len(uniques))
        order, starts = np.argsort(codes, kind="stable"), np.cumsum(counts) - counts
        for j, uid in enumerate(uniques):
            if uid not in wanted:
                continue
            if counts[j] < min_user_windows:
                skipped[uid] = f"{counts[j]} validation windows < {min_user_windows}"
                continue
            rows = order[starts[j] : starts[j] + counts[j]]
            users[uid] = choose(rows, user_curve_points, uid)
        for uid in sorted(wanted - set(uniques)):
            skipped[uid] = "no validation windows"
    return RejectTuningResult(
        target_selective_accuracy=target_accuracy,
        reject_rate_bounds=reject_rate_bounds,
        min_user_windows=min_user_windows,
        global_choice=global_choice,
        users=users,
        skipped_users=dict(sorted(skipped.items())),
        model_bundle_id=model_bundle_id,
        model_schema_hash=model_schema_hash,
        calibration_method=calibration_method,
        created_at=created_at or utc_now(),
    )


# Orchestration (I/O) ----------------------------------------------------------------------


@dataclass(frozen=True)
class RejectTuningRun:
    """What ``taskclf train tune-reject`` did."""

    result: RejectTuningResult
    tuning_path: Path
    policy: InferencePolicy | None
    policy_path: Path | None
    date_from: date
    date_to: date


def eligible_users(
    store_dir: Path, model_bundle_id: str | None, personalized: Sequence[str]
) -> list[str]:
    """The users eligible for personalization, from the store's calibration report.

    A store without a report (fitted elsewhere, or by an older version) gives its personalized
    users; they passed the eligibility check to get a calibrator.

    Raises:
        ArtifactError: The report cannot be read or belongs to another model bundle.
    """
    from taskclf.train.calibrate import CALIBRATION_REPORT_FILE

    path = Path(store_dir) / CALIBRATION_REPORT_FILE
    if not path.exists():
        return sorted(personalized)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        bundle = report["model_bundle_id"]
        users = {str(u["user_id"]) for u in report["users"] if u["is_eligible"] is True}
    except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ArtifactError(
            f"calibration report '{path}' cannot be read ({type(exc).__name__}); re-run "
            "'taskclf train calibrate'"
        ) from None
    if bundle != model_bundle_id:
        raise ArtifactError(
            f"calibration report '{path}' is for model {bundle!r}, the store for "
            f"{model_bundle_id!r}; re-run 'taskclf train calibrate'"
        )
    return sorted(users | set(personalized))


def run_reject_tuning(
    layout: Layout,
    model_dir: Path,
    store_dir: Path,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    write_policy: bool = False,
    target_accuracy: float = DEFAULT_TARGET_SELECTIVE_ACCURACY,
) -> RejectTuningRun:
    """``taskclf train tune-reject``: tune on the bundle's calibrated validation rows.

    Checks that the store was fitted for the bundle, calibrates the validation rows (same
    rows as ``train calibrate``), tunes, writes ``reject_tuning.json`` into the store
    directory and, with ``write_policy``, validates and writes the inference policy.
    """
    from taskclf.train.calibrate import (
        frame_label_indices,
        load_validation_rows,
        predict_core_probs,
    )

    model_dir, store_dir = Path(model_dir), Path(store_dir)
    metadata = load_metadata(model_dir)
    check_store_binding(
        store_dir, model_bundle_id=model_dir.name, model_schema_hash=metadata.schema_hash
    )
    _check_args(target_accuracy, REJECT_RATE_BOUNDS)
    val, booster, metadata, encoders, start, end, _, _ = load_validation_rows(
        layout, model_dir, date_from, date_to
    )
    store = load_calibrator_store(store_dir)
    eligible = eligible_users(store_dir, store.model_bundle_id, store.user_ids)
    users = val["user_id"].astype(object).to_numpy() if "user_id" in val.columns else None
    raw = predict_core_probs(booster, val, encoders)
    calibrated = store.calibrate_batch(raw, users if users is not None else [""] * len(val))
    result = tune_reject_threshold(
        frame_label_indices(val),
        calibrated,
        user_ids=users,
        personalized_users=eligible,
        target_accuracy=target_accuracy,
        model_bundle_id=model_dir.name,
        model_schema_hash=metadata.schema_hash,
        calibration_method=store.method,
    )
    tuning_path = store_dir / REJECT_TUNING_FILE
    atomic_write_json(tuning_path, result.model_dump(mode="json"))
    policy, policy_path = None, None
    if write_policy:
        policy = build_inference_policy(
            layout,
            model_dir,
            calibrator_store_dir=store_dir,
            reject_threshold=result.reject_threshold,
            per_user_reject_thresholds=result.per_user_reject_thresholds,
            source="tune-reject",
        )
        validate_policy(policy, layout)
        policy_path = save_inference_policy(policy, layout)
    return RejectTuningRun(result, tuning_path, policy, policy_path, start, end)
