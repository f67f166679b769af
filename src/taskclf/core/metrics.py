"""Classification and calibration metrics, and the acceptance gates.

Pure functions over arrays; nothing here touches files. Conventions:

- ``y_true`` / ``y_pred``: shape ``(n,)`` integer class indices into a label list (the bundle's
  sorted ``label_set``); ``proba``: shape ``(n, k)`` float64, rows are probability vectors.
- Per-class precision is ``tp / predicted`` and undefined (``None``) when the class was never
  predicted; recall is ``tp / support`` and undefined when the class is absent from ``y_true``.
  F1 of a class with an undefined part is 0 (scikit-learn's ``zero_division=0``); a class that
  is neither present nor predicted is left out of the macro average, exactly as
  ``sklearn.metrics.f1_score(average="macro")`` does with its default label set.
- Calibration bins (ECE and reliability diagrams): ``n_bins`` equal-width bins over ``[0, 1]``,
  bin ``b`` = ``(b/M, (b+1)/M]`` with bin 0 also holding 0 exactly; ``M`` defaults to
  ``CALIBRATION_ECE_BINS`` (15, the choice of Guo et al. 2017).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict

from taskclf.core.defaults import (
    CALIBRATION_ECE_BINS,
    GATE_BREAKIDLE_PRECISION,
    GATE_BREAKIDLE_RECALL,
    GATE_MACRO_F1,
    GATE_MIN_CLASS_PRECISION,
    GATE_WEIGHTED_F1,
    REJECT_RATE_BOUNDS,
)
from taskclf.core.errors import InputError

#: Probabilities are clipped to this floor before taking logs in :func:`nll`.
NLL_EPS = 1e-15
#: Tolerance on ``sum(row) == 1`` when validating probability matrices.
PROBA_SUM_TOL = 1e-6
BIN_SCHEME = "equal-width bins over [0, 1]; bin b = (b/M, (b+1)/M], bin 0 includes 0"


# Input checks -----------------------------------------------------------------------------


def _as_labels(y: ArrayLike, n_classes: int | None, *, name: str) -> NDArray[np.int64]:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise InputError(f"{name} must be 1-D class indices, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if n_classes is not None and out.size and (out.min() < 0 or out.max() >= n_classes):
        bad = int(np.flatnonzero((out < 0) | (out >= n_classes))[0])
        raise InputError(
            f"{name}[{bad}] = {int(out[bad])} is not a class index in [0, {n_classes})"
        )
    return out


def _as_proba(proba: ArrayLike) -> NDArray[np.float64]:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise InputError(f"probabilities must have shape (n, k>=2), got {p.shape}")
    if not np.isfinite(p).all():
        row = int(np.flatnonzero(~np.isfinite(p).all(axis=1))[0])
        raise InputError(f"probabilities must be finite; row {row} is not")
    if (p < 0).any() or (p > 1 + PROBA_SUM_TOL).any():
        row = int(np.flatnonzero(((p < 0) | (p > 1 + PROBA_SUM_TOL)).any(axis=1))[0])
        raise InputError(f"probabilities must lie in [0, 1]; row {row} does not")
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > PROBA_SUM_TOL
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise InputError(f"probability rows must sum to 1; row {row} sums to {sums[row]!r}")
    return p


def _check_pair(
    y_true: ArrayLike, proba: ArrayLike
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    p = _as_proba(proba)
    y = _as_labels(y_true, p.shape[1], name="y_true")
    if y.shape[0] != p.shape[0]:
        raise InputError(f"y_true has {y.shape[0]} rows but probabilities have {p.shape[0]}")
    if y.shape[0] == 0:
        raise InputError("cannot compute a metric on zero rows")
    return y, p


# Classification ---------------------------------------------------------------------------


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int) -> NDArray[np.int64]:
    """Counts ``C[i, j]`` of rows with true class ``i`` predicted as ``j``, shape ``(k, k)``."""
    yt = _as_labels(y_true, n_classes, name="y_true")
    yp = _as_labels(y_pred, n_classes, name="y_pred")
    if yt.shape != yp.shape:
        raise InputError(f"y_true has {yt.size} rows but y_pred has {yp.size}")
    flat = np.bincount(yt * n_classes + yp, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(np.int64)


class ClassMetrics(BaseModel):
    """Precision, recall and F1 of one class (``None`` where undefined)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str
    precision: float | None
    recall: float | None
    f1: float
    support: int
    predicted: int


class ClassificationSummary(BaseModel):
    """Accuracy, macro/weighted F1, per-class metrics and the confusion matrix."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_rows: int
    accuracy: float
    macro_f1: float
    weighted_f1: float
    label_names: list[str]
    per_class: list[ClassMetrics]
    confusion_matrix: list[list[int]]
    averaged_labels: list[str]

    def by_label(self) -> dict[str, ClassMetrics]:
        """Per-class metrics keyed by label."""
        return {m.label: m for m in self.per_class}


def per_class_metrics(cm: NDArray[np.int64], label_names: Sequence[str]) -> list[ClassMetrics]:
    """Per-class precision/recall/F1 from a confusion matrix (rows true, columns predicted)."""
    out: list[ClassMetrics] = []
    for k, label in enumerate(label_names):
        tp = int(cm[k, k])
        support = int(cm[k, :].sum())
        predicted = int(cm[:, k].sum())
        precision = tp / predicted if predicted else None
        recall = tp / support if support else None
        if precision is None or recall is None or precision + recall == 0:
            f1 = 0.0
        else:
            f1 = 2 * precision * recall / (precision + recall)
        out.append(
            ClassMetrics(
                label=label,
                precision=precision,
                recall=recall,
                f1=f1,
                support=support,
                predicted=predicted,
            )
        )
    return out


def classification_summary(
    y_true: ArrayLike, y_pred: ArrayLike, label_names: Sequence[str]
) -> ClassificationSummary:
    """Accuracy, macro F1 (over classes present or predicted), support-weighted F1, per class."""
    names = list(label_names)
    cm = confusion_matrix(y_true, y_pred, len(names))
    n = int(cm.sum())
    if n == 0:
        raise InputError("cannot compute classification metrics on zero rows")
    per_class = per_class_metrics(cm, names)
    used = [m for m in per_class if m.support or m.predicted]
    macro = float(np.mean([m.f1 for m in used]))
    weighted = float(sum(m.f1 * m.support for m in per_class) / n)
    return ClassificationSummary(
        n_rows=n,
        accuracy=float(np.trace(cm) / n),
        macro_f1=macro,
        weighted_f1=weighted,
        label_names=names,
        per_class=per_class,
        confusion_matrix=cm.tolist(),
        averaged_labels=[m.label for m in used],
    )


def top_confusions(
    cm: NDArray[np.int64] | list[list[int]], label_names: Sequence[str], k: int = 5
) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells as ``(true, predicted, count)``, count > 0."""
    arr = np.asarray(cm, dtype=np.int64)
    cells = [
        (str(label_names[i]), str(label_names[j]), int(arr[i, j]))
        for i in range(arr.shape[0])
        for j in range(arr.shape[1])
        if i != j and arr[i, j] > 0
    ]
    cells.sort(key=lambda c: (-c[2], c[0], c[1]))
    return cells[:k]


# Calibration ------------------------------------------------------------------------------


def nll(y_true: ArrayLike, proba: ArrayLike, *, eps: float = NLL_EPS) -> float:
    """Mean negative log-likelihood ``-1/n Σ_i log p_i[y_i]`` (probabilities clipped at eps)."""
    y, p = _check_pair(y_true, proba)
    picked = np.clip(p[np.arange(y.size), y], eps, 1.0)
    return float(-np.mean(np.log(picked)))


def brier_score(y_true: ArrayLike, proba: ArrayLike) -> float:
    """Multiclass Brier score (Brier 1950): ``1/n Σ_i Σ_k (p_ik - 1[y_i = k])²``, in [0, 2]."""
    y, p = _check_pair(y_true, proba)
    onehot = np.zeros_like(p)
    onehot[np.arange(y.size), y] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def bin_indices(values: ArrayLike, n_bins: int = CALIBRATION_ECE_BINS) -> NDArray[np.int64]:
    """Equal-width bin of each value in [0, 1]: ``b`` with ``b/M < v <= (b+1)/M`` (0 -> bin 0)."""
    if n_bins < 1:
        raise InputError(f"n_bins must be >= 1, got {n_bins}")
    v = np.asarray(values, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.digitize(v, edges[1:-1], right=True)
    return np.clip(idx, 0, n_bins - 1).astype(np.int64)


class ReliabilityBin(BaseModel):
    """One bin of a reliability diagram (``mean_*`` are ``None`` for an empty bin)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


def _binned(
    scores: NDArray[np.float64], hits: NDArray[np.float64], n_bins: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    idx = bin_indices(scores, n_bins)
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    score_sums = np.bincount(idx, weights=scores, minlength=n_bins).astype(np.float64)
    hit_sums = np.bincount(idx, weights=hits, minlength=n_bins).astype(np.float64)
    return counts, score_sums, hit_sums


def _ece_from_bins(
    counts: NDArray[np.float64], score_sums: NDArray[np.float64], hit_sums: NDArray[np.float64]
) -> float:
    # Σ_b (n_b / n) |acc_b - conf_b| = (1/n) Σ_b |hits_b - scores_b|
    return float(np.sum(np.abs(hit_sums - score_sums)) / counts.sum())


def reliability_bins(
    y_true: ArrayLike, proba: ArrayLike, n_bins: int = CALIBRATION_ECE_BINS
) -> list[ReliabilityBin]:
    """Top-label reliability diagram: per bin of max probability, its mean and the accuracy."""
    y, p = _check_pair(y_true, proba)
    conf = p.max(axis=1)
    hits = (p.argmax(axis=1) == y).astype(np.float64)
    counts, conf_sums, hit_sums = _binned(conf, hits, n_bins)
    out: list[ReliabilityBin] = []
    for b in range(n_bins):
        c = int(counts[b])
        out.append(
            ReliabilityBin(
                lower=b / n_bins,
                upper=(b + 1) / n_bins,
                count=c,
                mean_confidence=float(conf_sums[b] / c) if c else None,
                accuracy=float(hit_sums[b] / c) if c else None,
            )
        )
    return out


def ece_top_label(y_true: ArrayLike, proba: ArrayLike, n_bins: int = CALIBRATION_ECE_BINS) -> float:
    """Top-label expected calibration error (Naeini et al. 2015; Guo et al. 2017).

    ``ECE = Σ_b (|B_b| / n) |acc(B_b) - conf(B_b)|`` where ``conf`` is the max probability,
    ``acc`` the fraction of rows in the bin whose argmax is correct; bins as in the module doc.
    """
    y, p = _check_pair(y_true, proba)
    conf = p.max(axis=1)
    hits = (p.argmax(axis=1) == y).astype(np.float64)
    return _ece_from_bins(*_binned(conf, hits, n_bins))


def classwise_ece(
    y_true: ArrayLike, proba: ArrayLike, n_bins: int = CALIBRATION_ECE_BINS
) -> NDArray[np.float64]:
    """Per-class ECE (Kull et al. 2019), shape ``(k,)``.

    For class ``k``: ``Σ_b (|B_b| / n) |freq_b(y = k) - mean_b(p_k)|`` with bins over ``p_k``.
    Classes absent from ``y_true`` are included: their ECE is the mean probability mass the
    model puts on them.
    """
    y, p = _check_pair(y_true, proba)
    out = np.empty(p.shape[1], dtype=np.float64)
    for k in range(p.shape[1]):
        out[k] = _ece_from_bins(*_binned(p[:, k], (y == k).astype(np.float64), n_bins))
    return out


def mean_classwise_ece(
    y_true: ArrayLike, proba: ArrayLike, n_bins: int = CALIBRATION_ECE_BINS
) -> float:
    """Mean over all ``k`` classes of :func:`classwise_ece`."""
    return float(np.mean(classwise_ece(y_true, proba, n_bins)))


class CalibrationSummary(BaseModel):
    """NLL, Brier, top-label and classwise ECE, and the reliability bins, with the bin scheme."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_rows: int
    nll: float
    brier: float
    ece_top_label: float
    classwise_ece_mean: float
    classwise_ece: dict[str, float]
    n_bins: int
    bin_scheme: str
    reliability: list[ReliabilityBin]


def calibration_summary(
    y_true: ArrayLike,
    proba: ArrayLike,
    label_names: Sequence[str],
    n_bins: int = CALIBRATION_ECE_BINS,
) -> CalibrationSummary:
    """All calibration metrics of ``proba`` against ``y_true`` in one record."""
    y, p = _check_pair(y_true, proba)
    if p.shape[1] != len(label_names):
        raise InputError(f"probabilities have {p.shape[1]} columns, label_names {len(label_names)}")
    per_class = classwise_ece(y, p, n_bins)
    return CalibrationSummary(
        n_rows=int(y.size),
        nll=nll(y, p),
        brier=brier_score(y, p),
        ece_top_label=ece_top_label(y, p, n_bins),
        classwise_ece_mean=float(per_class.mean()),
        classwise_ece={str(name): float(v) for name, v in zip(label_names, per_class, strict=True)},
        n_bins=n_bins,
        bin_scheme=BIN_SCHEME,
        reliability=reliability_bins(y, p, n_bins),
    )


# Reject -----------------------------------------------------------------------------------


def reject_mask(proba: ArrayLike, threshold: float) -> NDArray[np.bool_]:
    """Rows whose max probability is below ``threshold`` (they become ``Mixed/Unknown``)."""
    p = _as_proba(proba)
    return np.asarray(p.max(axis=1) < threshold, dtype=np.bool_)


def reject_rate(proba: ArrayLike, threshold: float) -> float:
    """Fraction of rows rejected at ``threshold`` (0 for zero rows is an error)."""
    mask = reject_mask(proba, threshold)
    if mask.size == 0:
        raise InputError("cannot compute a reject rate on zero rows")
    return float(mask.mean())


# Acceptance gates -------------------------------------------------------------------------

GateStatus = Literal["pass", "fail", "not_applicable"]


class GateResult(BaseModel):
    """One acceptance gate: its value, the requirement, and the outcome."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    status: GateStatus
    value: float | None
    requirement: str
    detail: str = ""


class GateReport(BaseModel):
    """All acceptance gates; ``passed`` when none failed (not-applicable gates do not fail)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    passed: bool
    gates: list[GateResult]
    exempt_classes: list[str]

    @property
    def failed(self) -> list[str]:
        """Names of the failed gates."""
        return [g.name for g in self.gates if g.status == "fail"]


def _at_least(name: str, value: float, bound: float) -> GateResult:
    return GateResult(
        name=name,
        status="pass" if value >= bound else "fail",
        value=value,
        requirement=f">= {bound:.2f}",
    )


def _breakidle_gates(cls: ClassMetrics | None) -> list[GateResult]:
    names = ("breakidle_precision", "breakidle_recall")
    bounds = (GATE_BREAKIDLE_PRECISION, GATE_BREAKIDLE_RECALL)
    if cls is None or cls.support == 0:
        return [
            GateResult(
                name=n,
                status="not_applicable",
                value=None,
                requirement=f">= {b:.2f}",
                detail="BreakIdle is absent from the evaluated rows",
            )
            for n, b in zip(names, bounds, strict=True)
        ]
    precision = cls.precision if cls.precision is not None else 0.0
    recall = cls.recall if cls.recall is not None else 0.0
    gates = [_at_least(names[0], precision, bounds[0]), _at_least(names[1], recall, bounds[1])]
    if cls.precision is None:
        gates[0] = gates[0].model_copy(update={"detail": "BreakIdle never predicted (counted 0)"})
    return gates


def _min_precision_gate(
    summary: ClassificationSummary, bound: float
) -> tuple[GateResult, list[str]]:
    present = [m for m in summary.per_class if m.support > 0]
    exempt = [m.label for m in summary.per_class if m.support == 0]
    precisions = {m.label: (m.precision if m.precision is not None else 0.0) for m in present}
    worst = min(precisions.items(), key=lambda kv: (kv[1], kv[0]))
    failing = sorted(label for label, v in precisions.items() if v < bound)
    detail = f"lowest {worst[0]}"
    if failing:
        detail += f"; below bound: {', '.join(failing)}"
    if exempt:
        detail += f"; exempt (absent from evaluated rows): {', '.join(exempt)}"
    status: GateStatus = "fail" if failing else "pass"
    gate = GateResult(
        name="min_class_precision",
        status=status,
        value=worst[1],
        requirement=f">= {bound:.2f} for every class present",
        detail=detail,
    )
    return gate, exempt


def evaluate_gates(
    summary: ClassificationSummary,
    reject_rate_value: float,
    *,
    macro_f1_min: float = GATE_MACRO_F1,
    weighted_f1_min: float = GATE_WEIGHTED_F1,
    min_class_precision: float = GATE_MIN_CLASS_PRECISION,
    reject_rate_bounds: tuple[float, float] = REJECT_RATE_BOUNDS,
    breakidle_label: str = "BreakIdle",
) -> GateReport:
    """The acceptance gates (``core.defaults``) on a test-day classification summary.

    Gates: macro F1, weighted F1, BreakIdle precision and recall (not applicable when BreakIdle
    is absent), the lowest precision over classes present in ``y_true`` (absent classes are
    exempt and listed; a present class never predicted counts precision 0), and the reject
    rate lying within ``reject_rate_bounds`` (inclusive).
    """
    lo, hi = reject_rate_bounds
    reject_ok = lo <= reject_rate_value <= hi
    precision_gate, exempt = _min_precision_gate(summary, min_class_precision)
    gates = [
        _at_least("macro_f1", summary.macro_f1, macro_f1_min),
        _at_least("weighted_f1", summary.weighted_f1, weighted_f1_min),
        *_breakidle_gates(summary.by_label().get(breakidle_label)),
        precision_gate,
        GateResult(
            name="reject_rate",
            status="pass" if reject_ok else "fail",
            value=reject_rate_value,
            requirement=f"within [{lo:.2f}, {hi:.2f}]",
        ),
    ]
    return GateReport(
        passed=all(g.status != "fail" for g in gates), gates=gates, exempt_classes=exempt
    )
