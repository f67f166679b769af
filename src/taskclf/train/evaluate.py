"""Honest evaluation of a model bundle on its test days (registry views: ``train.registry``).

Which rows are evaluated: the bundle records its day-blocked split (``metadata.params["split"]``,
see ``train.dataset``). Labeled rows of the requested range (default: the bundle's training
range) are re-assigned with that record, and only *test* rows are scored: the test days of
training users (seen users) and every day of held-out or new users (unseen users). No row of
a day the model was trained or early-stopped on is ever scored.

What is reported (``Layout.evaluation_run_dir(run_id)/evaluation.json`` plus
``reliability.png`` and ``confusion_matrix.png``): macro/weighted F1, per class, per user,
seen vs unseen users, the reject rate at the threshold (max probability below it), flap rate
of the raw argmax labels and after rolling-majority smoothing (per user's own time series;
pooled as total label changes over total steps), calibration (``core.metrics``: NLL, Brier,
top-label ECE and mean classwise ECE over 15 equal-width bins, reliability bins) and the
acceptance gates of ``core.metrics.evaluate_gates`` on all test rows and, when some users
are unseen, on the seen users' rows alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, ValidationError

from taskclf.core._atomic import atomic_write_json, atomic_write_with
from taskclf.core.defaults import DEFAULT_REJECT_THRESHOLD, DEFAULT_SMOOTH_WINDOW
from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.metrics import (
    CalibrationSummary,
    ClassificationSummary,
    GateReport,
    calibration_summary,
    classification_summary,
    evaluate_gates,
    reject_mask,
)
from taskclf.core.model_io import ModelMetadata, load_model_bundle
from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1
from taskclf.train._evaluation_plots import draw_confusion, draw_reliability, png_writer
from taskclf.train.dataset import (
    SplitSummary,
    assign_recorded_split,
    load_labeled_dataset,
    user_keys,
)
from taskclf.train.lgbm import label_indices, predict_proba

EVALUATION_FORMAT_VERSION = 1
EVALUATION_FILE = "evaluation.json"
RELIABILITY_PNG = "reliability.png"
CONFUSION_PNG = "confusion_matrix.png"


class GroupEvaluation(BaseModel):
    """Classification metrics of a group of rows (one user, or seen / unseen users)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    users: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    reject_rate: float


class UserEvaluation(GroupEvaluation):
    """One user's metrics on their test rows."""

    user_id: str
    seen: bool
    flap_rate_raw: float
    flap_rate_smoothed: float


class RejectSummary(BaseModel):
    """Rejection at ``threshold`` on the max probability."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    threshold: float
    reject_rate: float
    coverage: float
    accepted_accuracy: float | None


class FlapSummary(BaseModel):
    """Flicker of minute labels before and after smoothing, and F1 after smoothing."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    smooth_window: int
    raw: float
    smoothed: float
    smoothed_macro_f1: float
    smoothed_weighted_f1: float


class EvaluationReport(BaseModel):
    """``evaluation.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = EVALUATION_FORMAT_VERSION
    run_id: str
    schema_version: str
    label_names: list[str]
    date_from: date | None
    date_to: date | None
    rows: int
    users: int
    user_days: int
    classification: ClassificationSummary
    calibration: CalibrationSummary
    reject: RejectSummary
    flap: FlapSummary
    per_user: list[UserEvaluation]
    seen_users: GroupEvaluation | None
    unseen_users: GroupEvaluation | None
    gates: GateReport
    plots: list[str]
    #: The gates on the seen users' rows alone, when there are unseen users too: the bar for
    #: the people the model was trained on (None in reports written before it).
    gates_seen: GateReport | None = None


# Pure evaluation --------------------------------------------------------------------------


def _group(
    y: NDArray[np.int64], pred: NDArray[np.int64], rejected: NDArray[np.bool_], n_users: int
) -> GroupEvaluation:
    s = classification_summary(y, pred, LABEL_SET_V1)
    return GroupEvaluation(
        rows=int(y.size),
        users=n_users,
        accuracy=s.accuracy,
        macro_f1=s.macro_f1,
        weighted_f1=s.weighted_f1,
        reject_rate=float(rejected.mean()),
    )


def _smoothed_labels(
    groups: dict[str, NDArray[np.intp]], starts: pd.Series, raw: NDArray[np.object_], window: int
) -> tuple[NDArray[np.object_], dict[str, tuple[float, float]]]:
    """Per-user rolling majority and ``{user: (flap_raw, flap_smoothed)}``."""
    from taskclf.infer.smooth import flap_rate, rolling_majority

    smoothed = np.empty(raw.shape[0], dtype=object)
    flaps: dict[str, tuple[float, float]] = {}
    for user, idx in groups.items():
        labels = raw[idx].tolist()
        smooth = rolling_majority(labels, window, bucket_starts=starts.iloc[idx])
        smoothed[idx] = smooth
        flaps[user] = (flap_rate(labels), flap_rate(smooth))
    return smoothed, flaps


def _pooled_flap(flaps: dict[str, tuple[float, float]], sizes: dict[str, int], k: int) -> float:
    steps = {u: max(sizes[u] - 1, 0) for u in flaps}
    total = sum(steps.values())
    return sum(flaps[u][k] * steps[u] for u in flaps) / total if total else 0.0


def evaluate_predictions(
    test_df: pd.DataFrame,
    proba: NDArray[np.float64],
    *,
    seen_users: Iterable[str],
    run_id: str = "",
    schema_version: str = "v3",
    reject_threshold: float = DEFAULT_REJECT_THRESHOLD,
    smooth_window: int = DEFAULT_SMOOTH_WINDOW,
    user_days: int | None = None,
    date_range: tuple[date | None, date | None] = (None, None),
) -> EvaluationReport:
    """Score ``proba`` (shape ``(n, 8)``, ``label_set`` order) against ``test_df['label']``.

    ``test_df`` must be sorted by user and time (as split frames are). Pure: no I/O.
    """
    if len(test_df) == 0:
        raise InputError("no test rows to evaluate")
    labels = list(LABEL_SET_V1)
    y = label_indices(test_df["label"], where="test rows")
    pred = proba.argmax(axis=1).astype(np.int64)
    rejected = reject_mask(proba, reject_threshold)
    users = user_keys(test_df).to_numpy(dtype=object)
    raw_labels = np.asarray(labels, dtype=object)[pred]
    groups = {
        str(u): np.asarray(idx, dtype=np.intp)
        for u, idx in pd.Series(users).groupby(users, sort=True).indices.items()
    }
    smoothed, flaps = _smoothed_labels(
        groups, test_df["bucket_start_ts"], raw_labels, smooth_window
    )
    smoothed_idx = label_indices(pd.Series(smoothed), where="smoothed labels")
    summary = classification_summary(y, pred, labels)
    smooth_summary = classification_summary(y, smoothed_idx, labels)
    seen = set(seen_users)
    sizes: dict[str, int] = {}
    per_user: list[UserEvaluation] = []
    for user, m in groups.items():
        sizes[user] = int(m.size)
        g = _group(y[m], pred[m], rejected[m], 1)
        per_user.append(
            UserEvaluation(
                **g.model_dump(),
                user_id=user,
                seen=user in seen,
                flap_rate_raw=flaps[user][0],
                flap_rate_smoothed=flaps[user][1],
            )
        )
    is_seen = np.isin(users, sorted(seen))
    gates_seen = None
    if is_seen.any() and not is_seen.all():
        seen_summary = classification_summary(y[is_seen], pred[is_seen], labels)
        gates_seen = evaluate_gates(seen_summary, float(rejected[is_seen].mean()))
    by_seen: list[GroupEvaluation | None] = []
    for mask in (is_seen, ~is_seen):
        n_users = len(set(users[mask].tolist()))
        by_seen.append(_group(y[mask], pred[mask], rejected[mask], n_users) if mask.any() else None)
    accepted = ~rejected
    reject = RejectSummary(
        threshold=reject_threshold,
        reject_rate=float(rejected.mean()),
        coverage=float(accepted.mean()),
        accepted_accuracy=float((pred[accepted] == y[accepted]).mean()) if accepted.any() else None,
    )
    flap = FlapSummary(
        smooth_window=smooth_window,
        raw=_pooled_flap(flaps, sizes, 0),
        smoothed=_pooled_flap(flaps, sizes, 1),
        smoothed_macro_f1=smooth_summary.macro_f1,
        smoothed_weighted_f1=smooth_summary.weighted_f1,
    )
    return EvaluationReport(
        run_id=run_id,
        schema_version=schema_version,
        label_names=labels,
        date_from=date_range[0],
        date_to=date_range[1],
        rows=int(y.size),
        users=len(per_user),
        user_days=user_days if user_days is not None else 0,
        classification=summary,
        calibration=calibration_summary(y, proba, labels),
        reject=reject,
        flap=flap,
        per_user=per_user,
        seen_users=by_seen[0],
        unseen_users=by_seen[1],
        gates=evaluate_gates(summary, reject.reject_rate),
        plots=[],
        gates_seen=gates_seen,
    )


def write_evaluation(out_dir: Path, report: EvaluationReport) -> EvaluationReport:
    """Write the two PNGs and ``evaluation.json`` (last) atomically; return the stored report."""
    atomic_write_with(
        out_dir / RELIABILITY_PNG, png_writer(draw_reliability(report.calibration), (7.0, 6.0))
    )
    atomic_write_with(
        out_dir / CONFUSION_PNG, png_writer(draw_confusion(report.classification), (7.0, 6.0))
    )
    stored = report.model_copy(update={"plots": [RELIABILITY_PNG, CONFUSION_PNG]})
    atomic_write_json(out_dir / EVALUATION_FILE, stored.model_dump(mode="json"))
    return stored


# Bundle evaluation ------------------------------------------------------------------------


@dataclass(frozen=True)
class EvaluationResult:
    """The report and where it was written."""

    report: EvaluationReport
    out_dir: Path


def recorded_split(metadata: ModelMetadata, run_dir: Path) -> SplitSummary | None:
    """The split stored in ``metadata.params['split']`` (None if the bundle has none)."""
    raw = metadata.params.get("split")
    if raw is None:
        return None
    try:
        return SplitSummary.model_validate(raw)
    except ValidationError as exc:
        raise ArtifactError(
            f"'{run_dir / 'metadata.json'}': params.split is invalid: {exc.errors()[0]['msg']}"
        ) from None


def _test_rows(
    frame: pd.DataFrame,
    split: SplitSummary | None,
    metadata: ModelMetadata,
    span: tuple[date, date],
    run_dir: Path,
) -> tuple[pd.DataFrame, set[str], int]:
    """Test rows, the users seen in training, and the number of test user-days."""
    if split is not None:
        parts = assign_recorded_split(frame, split)
        return parts.test, set(split.splits["train"].users), parts.summary.splits["test"].days
    lo, hi = metadata.train_date_from, metadata.train_date_to
    if lo is not None and hi is not None and span[0] <= hi and span[1] >= lo:
        raise ArtifactError(
            f"model bundle '{run_dir}' records no train/test split and {span[0]}..{span[1]} "
            f"overlaps its training range {lo}..{hi}; evaluate on days after {hi}"
        )
    users = user_keys(frame).to_numpy(dtype=object)
    days = frame["bucket_start_ts"].dt.date.to_numpy()
    return frame, set(), len(set(zip(users.tolist(), days.tolist(), strict=True)))


def evaluate_bundle(
    layout: Layout,
    run_dir: Path,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    reject_threshold: float | None = None,
    smooth_window: int = DEFAULT_SMOOTH_WINDOW,
) -> EvaluationResult:
    """Evaluate the bundle at ``run_dir`` on its test rows and write the evaluation files.

    The range defaults to the bundle's training range; the threshold to the bundle's advisory
    ``reject_threshold``, else ``DEFAULT_REJECT_THRESHOLD``.
    """
    booster, metadata, encoders = load_model_bundle(run_dir)
    start = date_from or metadata.train_date_from
    end = date_to or metadata.train_date_to
    if start is None or end is None:
        raise InputError(f"model bundle '{run_dir}' records no training range; give --from/--to")
    if end < start:
        raise InputError(f"--to {end} is before --from {start}; swap them")
    data = load_labeled_dataset(layout, start, end, schema_version=metadata.schema_version)
    split = recorded_split(metadata, run_dir)
    test, seen, user_days = _test_rows(data.frame, split, metadata, (start, end), run_dir)
    if len(test) == 0:
        raise InputError(
            f"no test rows for model '{run_dir.name}' in {start}..{end}: every labeled row lies "
            "on a training or validation day; label later days or pass a later --from/--to"
        )
    threshold = (
        reject_threshold
        if reject_threshold is not None
        else (
            metadata.reject_threshold
            if metadata.reject_threshold is not None
            else DEFAULT_REJECT_THRESHOLD
        )
    )
    proba = predict_proba(booster, test, encoders, metadata.schema_version)
    report = evaluate_predictions(
        test,
        proba,
        seen_users=seen,
        run_id=run_dir.name,
        schema_version=metadata.schema_version,
        reject_threshold=threshold,
        smooth_window=smooth_window,
        user_days=user_days,
        date_range=(start, end),
    )
    out_dir = layout.evaluation_run_dir(run_dir.name)
    return EvaluationResult(report=write_evaluation(out_dir, report), out_dir=out_dir)


def load_evaluation(layout: Layout, run_id: str) -> EvaluationReport | None:
    """The stored evaluation of ``run_id`` (None when it was never evaluated)."""
    path = layout.evaluation_run_dir(run_id) / EVALUATION_FILE
    if not path.exists():
        return None
    try:
        return EvaluationReport.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, RecursionError) as exc:
        raise ArtifactError(
            f"'{path}' is not a valid evaluation report ({exc}); re-run 'taskclf train "
            f"evaluate --model-dir {layout.run_dir(run_id)}'"
        ) from None
