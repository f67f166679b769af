"""Honest evaluation of a model bundle on its test days, and the model registry views.

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
acceptance gates of ``core.metrics.evaluate_gates``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

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
from taskclf.core.model_io import (
    ModelMetadata,
    get_active_model,
    list_bundles,
    load_metadata,
    load_model_bundle,
    verify_bundle_files,
)
from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1
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
    )


# Plots ------------------------------------------------------------------------------------


def _png_writer(draw: Callable[[Any], None], size: tuple[float, float]) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, dpi=100)
        FigureCanvasAgg(fig)
        draw(fig)
        fig.savefig(tmp, format="png", metadata={"Software": None})

    return write


def _draw_reliability(calib: CalibrationSummary) -> Callable[[Any], None]:
    def draw(fig: Any) -> None:
        ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        bins = calib.reliability
        centers = [(b.lower + b.upper) / 2 for b in bins]
        width = 1.0 / calib.n_bins
        acc = [b.accuracy if b.accuracy is not None else 0.0 for b in bins]
        ax.bar(centers, acc, width=width * 0.9, color="#4c72b0", label="accuracy")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(
            f"Reliability (top label, {calib.n_bins} equal-width bins) - "
            f"ECE {calib.ece_top_label:.3f}, NLL {calib.nll:.3f}"
        )
        ax.legend(loc="upper left")
        hist.bar(centers, [b.count for b in bins], width=width * 0.9, color="#8c8c8c")
        hist.set_xlabel("confidence (max probability)")
        hist.set_ylabel("rows")
        fig.tight_layout()

    return draw


def _draw_confusion(summary: ClassificationSummary) -> Callable[[Any], None]:
    def draw(fig: Any) -> None:
        cm = np.asarray(summary.confusion_matrix, dtype=np.float64)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax = fig.subplots()
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        names = summary.label_names
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if cm[i, j]:
                    color = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(
                        j, i, str(int(cm[i, j])), ha="center", va="center", color=color, fontsize=8
                    )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"Confusion matrix (test) - macro F1 {summary.macro_f1:.3f}")
        fig.tight_layout()

    return draw


def write_evaluation(out_dir: Path, report: EvaluationReport) -> EvaluationReport:
    """Write the two PNGs and ``evaluation.json`` (last) atomically; return the stored report."""
    atomic_write_with(
        out_dir / RELIABILITY_PNG, _png_writer(_draw_reliability(report.calibration), (7.0, 6.0))
    )
    atomic_write_with(
        out_dir / CONFUSION_PNG, _png_writer(_draw_confusion(report.classification), (7.0, 6.0))
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
    except (OSError, ValueError) as exc:
        raise ArtifactError(
            f"'{path}' is not a valid evaluation report ({exc}); re-run 'taskclf train "
            f"evaluate --model-dir {layout.run_dir(run_id)}'"
        ) from None


# Registry views ---------------------------------------------------------------------------


class ModelSummary(BaseModel):
    """One row of ``taskclf model list``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    created_at: datetime | None
    schema_version: str | None
    data_provenance: str | None
    val_macro_f1: float | None
    test_macro_f1: float | None
    gates_passed: bool | None
    failed_gates: list[str]
    active: bool
    problem: str | None = None


def _read_metrics(run_dir: Path) -> dict[str, Any]:
    try:
        data = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"'{run_dir / 'metrics.json'}' is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"'{run_dir / 'metrics.json'}' must hold a JSON object")
    return data


def _summarize(layout: Layout, run_dir: Path, active: Path | None) -> ModelSummary:
    is_active = active is not None and active.name == run_dir.name
    try:
        meta = load_metadata(run_dir)
        metrics = _read_metrics(run_dir)
        evaluation = load_evaluation(layout, run_dir.name)
    except ArtifactError as exc:
        return ModelSummary(
            run_id=run_dir.name,
            created_at=None,
            schema_version=None,
            data_provenance=None,
            val_macro_f1=None,
            test_macro_f1=None,
            gates_passed=None,
            failed_gates=[],
            active=is_active,
            problem=str(exc),
        )
    macro = metrics.get("macro_f1")
    return ModelSummary(
        run_id=run_dir.name,
        created_at=meta.created_at,
        schema_version=meta.schema_version,
        data_provenance=meta.data_provenance,
        val_macro_f1=float(macro) if isinstance(macro, int | float) else None,
        test_macro_f1=evaluation.classification.macro_f1 if evaluation else None,
        gates_passed=evaluation.gates.passed if evaluation else None,
        failed_gates=evaluation.gates.failed if evaluation else [],
        active=is_active,
    )


def list_models(layout: Layout) -> list[ModelSummary]:
    """Every bundle under ``models/`` (sorted by run id) with its scores and gate outcome."""
    active = get_active_model(layout)
    return [_summarize(layout, run_dir, active) for run_dir in list_bundles(layout)]


@dataclass(frozen=True)
class ModelInspection:
    """Everything ``taskclf model inspect`` shows."""

    run_dir: Path
    metadata: ModelMetadata
    metrics: dict[str, Any]
    evaluation: EvaluationReport | None
    active: bool


def inspect_model(layout: Layout, run_dir: Path) -> ModelInspection:
    """Verify a bundle's files and collect its metadata, metrics and stored evaluation."""
    verify_bundle_files(run_dir)
    active = get_active_model(layout)
    return ModelInspection(
        run_dir=run_dir,
        metadata=load_metadata(run_dir),
        metrics=_read_metrics(run_dir),
        evaluation=load_evaluation(layout, run_dir.name),
        active=active is not None and active.name == run_dir.name,
    )
