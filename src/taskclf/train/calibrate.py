"""Per-user probability calibration: eligibility checks and calibrator fitting.

Training-side logic of personalization (seed page ``train.calibrate``). After a model is
trained, calibrators are fitted on validation rows so that confidences reflect accuracy::

    model + labeled_df -> predict -> fit global calibrator
                       -> check each user's eligibility
                       -> fit per-user calibrators (eligible users), keep each only if it
                          beats the global one on the user's held-out folds by clearly more
                          than the noise
                       -> CalibratorStore + eligibility reports

**Temperature fitting is exact.** The NLL of temperature scaling (Guo et al. 2017),
``f(T) = -1/n Σ_i log softmax(l_i / T)[y_i]`` with ``l_i = log max(p_i, PROB_EPS)``, is convex
in ``β = 1/T``, hence unimodal in ``log T``. :func:`fit_temperature_calibrator` minimizes it
with a bounded 1-D optimizer over ``log T`` (``scipy.optimize.minimize_scalar``, method
``bounded``, ``xatol`` 1e-10) on ``TEMPERATURE_BOUNDS`` widened to contain the documented grid.
The documented two-pass grid (:func:`grid_search_temperature`: coarse 0.1..5.0 step 0.1, then
the best ± 0.1 step 0.01, non-positive points dropped) is the floor: by unimodality the grid's
best point is one of the grid points next to the optimum, so those (three per pass) are
evaluated as well and the better temperature is returned. Its NLL is never above the grid's
(up to the float rounding of an NLL, ~1e-15).

**Per-user fitting is vectorized** (:func:`fit_group_temperatures`): one safeguarded Newton
iteration on ``β`` runs for all users at once (per-user gradient and curvature are ``bincount``
sums over user codes), followed by the same per-user grid-floor check.

**Keep-or-fallback** (beyond the seed): an eligible user's calibrator (fitted on the user's other
folds and shrunk toward the global temperature, as deployed) is scored on each held-out row
against the global calibrator. It is kept only if the mean per-row gain ``ĝ`` (nats per window)
is above ``min_gain`` (:data:`DEFAULT_MIN_NLL_GAIN`) *and* at least ``keep_z`` standard errors
(:data:`DEFAULT_KEEP_Z`, a one-sided 5 % test), the standard error being day-blocked (a user's
miscalibration moves from day to day, so rows of one day are not independent evidence) with the
design effect pooled over users (``train._keep``). Folds (``DEFAULT_PERSONAL_CV_FOLDS``) are the
user's local days dealt round-robin when the user has at least that many days, else contiguous
blocks of the user's rows in time order. Otherwise the user falls back to the global calibrator;
:func:`fit_calibrator_store_with_report` says why, with the gain and its standard error.
Eligibility counts calendar days in each user's time zone (UTC unless given).

**Isotonic maps never say 0** (beyond the seed). scikit-learn's fit maps every score below a
class's lowest-scored positive to exactly 0; new days and new people have such rows, and each
costs the NLL floor (on the demo's test days 0.5-5 % of minutes got probability 0 for their
true class; the unseen user's NLL was 5.0, against 1.8 raw and 2.0 now). That block becomes a
ramp from (0, 0) (``train._calibration_math.ramp_zero_block``). **Per-user isotonic maps are
blended with the global ones**, class by class with weight ``n_c / (n_c + 20)`` for a user
with ``n_c`` windows of class ``c`` (``train._personal_cv``): a map fitted on a user's few
windows of a class overfits them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Final, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from sklearn.preprocessing import LabelEncoder

from taskclf.core._atomic import atomic_write_json
from taskclf.core.defaults import (
    DEFAULT_CALIBRATION_METHOD,
    DEFAULT_MIN_DISTINCT_LABELS,
    DEFAULT_MIN_LABELED_DAYS,
    DEFAULT_MIN_LABELED_WINDOWS,
    DEFAULT_PERSONAL_CV_FOLDS,
    DEFAULT_TIMEZONE,
)
from taskclf.core.encoding import MatrixEncoder, categorical_columns
from taskclf.core.errors import ArtifactError, InputError, LabelError, SchemaError
from taskclf.core.inference_policy import STORE_REPORT_FILE
from taskclf.core.paths import Layout
from taskclf.core.time import get_zone, utc_now
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.calibration import (
    CalibratorStore,
    IsotonicCalibrator,
    TemperatureCalibrator,
    check_store_target,
    save_calibrator_store,
)
from taskclf.train import _calibration_math as _m
from taskclf.train._keep import DEFAULT_KEEP_Z
from taskclf.train._personalize import (
    DEFAULT_MIN_NLL_GAIN,
    IsotonicSmallSampleWarning,
    Method,
    PersonalizationEligibility,
    PersonalizationFit,
    UserCalibrationReport,
    fit_personalized_calibrators,
    warn_small_isotonic,
)

__all__ = [
    "CALIBRATION_REPORT_FILE",
    "DEFAULT_KEEP_Z",
    "DEFAULT_MIN_NLL_GAIN",
    "CalibrationReport",
    "CalibrationRun",
    "IsotonicSmallSampleWarning",
    "PersonalizationEligibility",
    "PersonalizationFit",
    "UserCalibrationReport",
    "check_personalization_eligible",
    "fit_calibrator_store",
    "fit_calibrator_store_with_report",
    "fit_group_temperatures",
    "fit_isotonic_calibrator",
    "fit_personalized_calibrators",
    "fit_temperature_calibrator",
    "frame_label_indices",
    "grid_search_temperature",
    "load_validation_rows",
    "predict_core_probs",
    "run_calibration",
    "temperature_nll",
]

logger = logging.getLogger(__name__)
_LABEL_INDEX = {label: i for i, label in enumerate(LABEL_SET_V1)}


# Fitting single calibrators -----------------------------------------------------------------


def temperature_nll(y_true_indices: ArrayLike, y_proba: ArrayLike, temperature: float) -> float:
    """Mean NLL of ``TemperatureCalibrator(temperature)`` applied to ``y_proba``.

    Args:
        y_true_indices: Shape ``(n,)`` int class indices into the columns.
        y_proba: Shape ``(n, k)`` raw probabilities.
        temperature: ``T``, finite and > 0.
    """
    y, p = _m.check_pair(y_true_indices, y_proba)
    t = TemperatureCalibrator(temperature).temperature
    return float(np.mean(_m.row_nll(_m.LogProbs.build(y, p), 1.0 / t)))


def grid_search_temperature(y_true_indices: ArrayLike, y_proba: ArrayLike) -> float:
    """The documented two-pass grid search: the floor :func:`fit_temperature_calibrator` beats.

    Coarse ``T`` = 0.1, 0.2, ..., 5.0; fine = the coarse best ± 0.1 in steps of 0.01
    (non-positive points dropped); ties go to the smaller ``T``. Kept as the reference.

    Args:
        y_true_indices: Shape ``(n,)`` int class indices.
        y_proba: Shape ``(n, k)`` raw probabilities.

    Returns:
        The grid's best temperature.
    """
    y, p = _m.check_pair(y_true_indices, y_proba)
    return _m.grid_search(_m.LogProbs.build(y, p))


def fit_temperature_calibrator(
    y_true_indices: ArrayLike, y_proba: ArrayLike
) -> TemperatureCalibrator:
    """Find the temperature that minimizes NLL on validation data (Guo et al. 2017).

    Exact bounded minimization over ``log T``, never worse than the documented two-pass grid
    on the same input (module doc). Deterministic.

    Args:
        y_true_indices: Integer-encoded true labels, shape ``(n,)``.
        y_proba: Raw model probabilities, shape ``(n, n_classes)``.

    Returns:
        A fitted :class:`~taskclf.infer.calibration.TemperatureCalibrator`.

    Raises:
        InputError: Empty input, mismatched shapes, invalid labels or probabilities.
    """
    y, p = _m.check_pair(y_true_indices, y_proba)
    return TemperatureCalibrator(_m.fit_temperature(_m.LogProbs.build(y, p)))


def fit_group_temperatures(
    y_true_indices: ArrayLike,
    y_proba: ArrayLike,
    group_codes: ArrayLike,
    n_groups: int | None = None,
) -> NDArray[np.float64]:
    """NLL-optimal temperature of every group (user) at once, vectorized over groups.

    Exact per group (safeguarded Newton on ``1/T``) and never worse than the documented grid
    on that group's rows.

    Args:
        y_true_indices: Shape ``(n,)`` int class indices.
        y_proba: Shape ``(n, k)`` raw probabilities.
        group_codes: Shape ``(n,)`` int group of each row, in ``[0, n_groups)``.
        n_groups: Number of groups (default ``max(group_codes) + 1``).

    Returns:
        Shape ``(n_groups,)`` temperatures; a group without rows gets 1.0.
    """
    y, p = _m.check_pair(y_true_indices, y_proba)
    codes = np.asarray(group_codes)
    if codes.shape != y.shape or not np.issubdtype(codes.dtype, np.integer):
        raise InputError(f"group_codes must be {y.shape} integers, got {codes.shape} {codes.dtype}")
    n = int(codes.max()) + 1 if n_groups is None else int(n_groups)
    if codes.min() < 0 or codes.max() >= n:
        raise InputError(f"group_codes must lie in [0, {n})")
    return _m.fit_groups(_m.LogProbs.build(y, p), codes.astype(np.intp), n)


def fit_isotonic_calibrator(
    y_true_indices: ArrayLike, y_proba: ArrayLike, n_classes: int
) -> IsotonicCalibrator:
    """Fit per-class isotonic regression on validation data (Zadrozny & Elkan 2002).

    For each class ``c``, ``IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip")`` is
    fitted on ``(y_proba[:, c], y_true == c)`` and its threshold points are stored, except
    that the points it maps to 0 become one point ``(0, 0)`` (a ramp up to the first positive
    point; the identity for a class without positives; module doc). Warns
    (:class:`IsotonicSmallSampleWarning`) below ``ISOTONIC_MIN_ROWS_WARNING`` rows.

    Args:
        y_true_indices: Integer-encoded true labels, shape ``(n,)``.
        y_proba: Raw model probabilities, shape ``(n, n_classes)``.
        n_classes: Number of classes.

    Returns:
        A fitted :class:`~taskclf.infer.calibration.IsotonicCalibrator`.
    """
    y, p = _m.check_pair(y_true_indices, y_proba, n_classes)
    warn_small_isotonic(np.array([y.size]), what="an isotonic calibrator was")
    return _m.fit_isotonic(y, p, n_classes)


# Eligibility --------------------------------------------------------------------------------


def check_personalization_eligible(
    df: pd.DataFrame,
    user_id: str,
    *,
    min_windows: int = DEFAULT_MIN_LABELED_WINDOWS,
    min_days: int = DEFAULT_MIN_LABELED_DAYS,
    min_labels: int = DEFAULT_MIN_DISTINCT_LABELS,
    timezone: str = DEFAULT_TIMEZONE,
) -> PersonalizationEligibility:
    """Check whether ``user_id`` has enough labeled data for per-user calibration.

    Counts the user's rows with a core label, their distinct calendar days (in ``timezone``,
    from ``bucket_start_ts``) and distinct core labels. A user absent from ``df`` gets all
    counts 0 and ``is_eligible=False``.

    Args:
        df: Labeled rows with ``user_id``, ``bucket_start_ts`` and ``label``.
        user_id: The user to check.
        min_windows: Minimum labeled window count.
        min_days: Minimum number of distinct calendar days.
        min_labels: Minimum number of distinct core labels observed.
        timezone: IANA zone that defines calendar days.
    """
    for col in ("user_id", "bucket_start_ts", "label"):
        if col not in df.columns:
            raise SchemaError(f"eligibility check needs column {col!r}; the frame lacks it")
    rows = df[(df["user_id"] == user_id) & df["label"].isin(list(LABEL_SET_V1))]
    windows = len(rows)
    days = 0
    if windows:
        days = len(np.unique(_day_keys(_utc_series(rows["bucket_start_ts"]), timezone)))
    labels = int(rows["label"].nunique())
    return PersonalizationEligibility(
        user_id=user_id,
        labeled_windows=windows,
        labeled_days=days,
        distinct_labels=labels,
        is_eligible=windows >= min_windows and days >= min_days and labels >= min_labels,
    )


# Frames -> arrays -------------------------------------------------------------------------


def _utc_series(values: pd.Series) -> pd.Series:
    ts = pd.Series(values)
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        raise SchemaError(
            f"column 'bucket_start_ts' must be tz-aware datetimes, got dtype {ts.dtype}"
        )
    out: pd.Series = ts.dt.tz_convert("UTC")
    return out


def _day_keys(ts: pd.Series, timezone: str) -> NDArray[np.int64]:
    """Local calendar day of each (aware) timestamp as days since 1970-01-01."""
    get_zone(timezone)
    local = ts.dt.tz_convert(timezone).dt.tz_localize(None)
    out: NDArray[np.int64] = local.to_numpy().astype("datetime64[D]").astype(np.int64)
    return out


def _frame_schema_version(df: pd.DataFrame) -> str:
    if "schema_version" not in df.columns:
        raise SchemaError("labeled_df has no 'schema_version' column; pass validated feature rows")
    versions = sorted({str(v) for v in df["schema_version"].dropna().unique()})
    if len(versions) != 1:
        raise SchemaError(f"labeled_df must hold one schema_version, got {versions}")
    return versions[0]


def frame_label_indices(df: pd.DataFrame) -> NDArray[np.int64]:
    """Indices into ``LABEL_SET_V1`` of ``df['label']``; a missing or unknown label is an error."""
    if "label" not in df.columns:
        raise InputError("labeled_df has no 'label' column; project labels first")
    values = df["label"].astype(object).to_numpy()
    out = np.fromiter((_LABEL_INDEX.get(v, -1) for v in values), np.int64, len(values))
    bad = np.flatnonzero(out < 0)
    if bad.size:
        i = int(bad[0])
        raise LabelError(
            f"labeled_df row {i}: label {values[i]!r} is not a core label ({bad.size} such rows); "
            f"expected one of {', '.join(LABEL_SET_V1)}; pass only labeled rows"
        )
    return out


def predict_core_probs(
    model: lgb.Booster,
    df: pd.DataFrame,
    cat_encoders: Mapping[str, LabelEncoder] | None,
) -> NDArray[np.float64]:
    """Raw model probabilities of ``df``, shape ``(n, 8)`` in ``LABEL_SET_V1`` order.

    The frame is encoded with ``core.encoding`` for its ``schema_version`` column.

    Raises:
        InputError: ``cat_encoders`` is None but the schema has categorical features.
        ArtifactError: The booster does not fit the encoded matrix or the label set.
    """
    version = _frame_schema_version(df)
    if cat_encoders is None:
        if categorical_columns(version):
            raise InputError(
                f"cat_encoders is required for schema {version} (categorical features "
                f"{categorical_columns(version)}); pass the bundle's encoders from "
                "load_model_bundle"
            )
        cat_encoders = {}
    matrix = MatrixEncoder(cat_encoders, version).encode_frame(df)
    if model.num_model_per_iteration() != len(LABEL_SET_V1):
        raise ArtifactError(
            f"model has {model.num_model_per_iteration()} classes, the label set has "
            f"{len(LABEL_SET_V1)}"
        )
    try:
        raw = model.predict(matrix)
    except lgb.basic.LightGBMError as exc:
        raise ArtifactError(f"model cannot predict schema {version} features: {exc}") from None
    return np.asarray(raw, dtype=np.float64).reshape(len(df), len(LABEL_SET_V1))


def _frame_arrays(
    df: pd.DataFrame, timezones: Mapping[str, str], default_timezone: str
) -> tuple[pd.DataFrame, NDArray[np.int64], NDArray[Any] | None, NDArray[np.int64]]:
    """Sorted frame, labels, user ids (None without a user_id column) and local day keys."""
    if len(df) == 0:
        raise InputError("labeled_df is empty; calibration needs labeled validation rows")
    if "bucket_start_ts" not in df.columns:
        raise SchemaError("labeled_df has no 'bucket_start_ts' column")
    y_given = frame_label_indices(df)  # errors name rows in the caller's order
    has_users = "user_id" in df.columns
    keys = ["user_id", "bucket_start_ts"] if has_users else ["bucket_start_ts"]
    order = df.reset_index(drop=True).sort_values(keys, kind="mergesort").index.to_numpy()
    frame = df.iloc[order].reset_index(drop=True)
    y = y_given[order]
    ts = _utc_series(frame["bucket_start_ts"])
    days = np.empty(len(frame), np.int64)
    users = frame["user_id"].astype(object).to_numpy() if has_users else None
    if users is None:
        days[:] = _day_keys(ts, default_timezone)
    else:
        zone_of = {u: timezones.get(u, default_timezone) for u in pd.unique(users)}
        zones = pd.Series(users, dtype=object).map(zone_of)
        for zone in sorted(set(zones)):
            mask = (zones == zone).to_numpy()
            days[mask] = _day_keys(ts[mask], zone)
    return frame, y, users, days


# The store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationReport:
    """:func:`fit_calibrator_store_with_report` result: the store and per-user decisions."""

    store: CalibratorStore
    users: list[UserCalibrationReport]
    n_rows: int
    nll_raw: float
    nll_global: float
    method: Method
    folds: int
    min_gain: float
    keep_z: float = DEFAULT_KEEP_Z
    design_effect: float | None = None

    @property
    def eligibility(self) -> list[PersonalizationEligibility]:
        """The seed's eligibility reports, one per user (sorted by user id)."""
        return [u.eligibility() for u in self.users]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready summary (no calibrator parameters beyond per-user temperatures)."""
        return {
            "method": self.method,
            "n_rows": self.n_rows,
            "folds": self.folds,
            "min_gain": self.min_gain,
            "keep_z": self.keep_z,
            "design_effect": self.design_effect,
            "nll_raw": self.nll_raw,
            "nll_global": self.nll_global,
            "model_bundle_id": self.store.model_bundle_id,
            "model_schema_hash": self.store.model_schema_hash,
            "created_at": self.store.created_at.isoformat(),
            "personalized_users": self.store.user_ids,
            "users": [u.model_dump(mode="json") for u in self.users],
        }


def fit_calibrator_store_with_report(
    model: lgb.Booster,
    labeled_df: pd.DataFrame,
    *,
    cat_encoders: Mapping[str, LabelEncoder] | None = None,
    method: Method = DEFAULT_CALIBRATION_METHOD,
    min_windows: int = DEFAULT_MIN_LABELED_WINDOWS,
    min_days: int = DEFAULT_MIN_LABELED_DAYS,
    min_labels: int = DEFAULT_MIN_DISTINCT_LABELS,
    model_bundle_id: str | None = None,
    model_schema_hash: str | None = None,
    folds: int = DEFAULT_PERSONAL_CV_FOLDS,
    min_gain: float = DEFAULT_MIN_NLL_GAIN,
    keep_z: float = DEFAULT_KEEP_Z,
    timezones: Mapping[str, str] | None = None,
    default_timezone: str = DEFAULT_TIMEZONE,
    created_at: datetime | None = None,
) -> CalibrationReport:
    """:func:`fit_calibrator_store` plus the per-user keep-or-fallback report.

    Extra arguments: ``folds``/``min_gain``/``keep_z`` (module doc),
    ``timezones``/``default_timezone`` (define users' calendar days), ``created_at`` (default:
    now). A frame without a ``user_id`` column (schema v2) gets a global calibrator only.
    """
    frame, y, users, days = _frame_arrays(labeled_df, timezones or {}, default_timezone)
    proba = predict_core_probs(model, frame, cat_encoders)
    if users is None:
        users = np.full(len(frame), "", dtype=object)
        min_windows = max(min_windows, len(frame) + 1)  # nobody is eligible without user ids
    fit = fit_personalized_calibrators(
        y,
        proba,
        users,
        days,
        method=method,
        min_windows=min_windows,
        min_days=min_days,
        min_labels=min_labels,
        folds=folds,
        min_gain=min_gain,
        keep_z=keep_z,
    )
    store = CalibratorStore(
        global_calibrator=fit.global_calibrator,
        user_calibrators=fit.user_calibrators,
        method=method,
        model_bundle_id=model_bundle_id,
        model_schema_hash=model_schema_hash,
        created_at=created_at or utc_now(),
    )
    user_reports = fit.users if "user_id" in labeled_df.columns else []
    for r in user_reports:
        logger.info("calibration %s: %s", r.user_id[:60], r.reason)
    return CalibrationReport(
        store,
        user_reports,
        len(frame),
        fit.nll_raw,
        fit.nll_global,
        method,
        folds,
        min_gain,
        keep_z,
        fit.design_effect,
    )


def fit_calibrator_store(
    model: lgb.Booster,
    labeled_df: pd.DataFrame,
    *,
    cat_encoders: Mapping[str, LabelEncoder] | None = None,
    method: Method = DEFAULT_CALIBRATION_METHOD,
    min_windows: int = DEFAULT_MIN_LABELED_WINDOWS,
    min_days: int = DEFAULT_MIN_LABELED_DAYS,
    min_labels: int = DEFAULT_MIN_DISTINCT_LABELS,
    model_bundle_id: str | None = None,
    model_schema_hash: str | None = None,
) -> tuple[CalibratorStore, list[PersonalizationEligibility]]:
    """Fit a global calibrator and per-user calibrators for eligible users.

    Predicts on ``labeled_df``, fits the global calibrator on all rows, checks each user's
    eligibility and fits per-user calibrators, keeping each only when it beats the global one
    on the user's held-out folds by clearly more than the noise (module doc).

    Args:
        model: Trained LightGBM booster (frozen, not retrained).
        labeled_df: Labeled validation rows: the schema's feature columns, ``schema_version``,
            ``user_id``, ``bucket_start_ts`` and ``label`` (core label strings).
        cat_encoders: The bundle's categorical encoders (required when the schema has
            categorical features).
        method: ``temperature`` or ``isotonic``.
        min_windows: Minimum labeled windows for per-user eligibility.
        min_days: Minimum distinct days for per-user eligibility.
        min_labels: Minimum distinct labels for per-user eligibility.
        model_bundle_id: Run directory name of the bundle, recorded in the store.
        model_schema_hash: Schema hash of the bundle, recorded in the store.

    Returns:
        The store and one eligibility report per unique user (sorted by user id).
    """
    report = fit_calibrator_store_with_report(
        model,
        labeled_df,
        cat_encoders=cat_encoders,
        method=method,
        min_windows=min_windows,
        min_days=min_days,
        min_labels=min_labels,
        model_bundle_id=model_bundle_id,
        model_schema_hash=model_schema_hash,
    )
    return report.store, report.eligibility


# Orchestration (I/O) ----------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationRun:
    """What ``taskclf train calibrate`` did."""

    report: CalibrationReport
    store_dir: Path
    report_path: Path
    model_dir: Path
    date_from: date
    date_to: date
    split_source: Literal["recorded", "recomputed"]


#: File name of the fit report written beside the store's files.
CALIBRATION_REPORT_FILE: Final = STORE_REPORT_FILE


def load_validation_rows(
    layout: Layout, model_dir: Path, date_from: date | None, date_to: date | None
) -> tuple[pd.DataFrame, Any, Any, Any, date, date, Literal["recorded", "recomputed"], Any]:
    """Labeled validation rows of a bundle: ``(val, booster, metadata, encoders, from, to,
    split source, split)``.

    The range defaults to the bundle's training range. Validation days come from the split the
    bundle recorded (``metadata.params['split']``), else from a fresh day-blocked split.
    """
    from taskclf.core.config import load_config
    from taskclf.core.model_io import load_model_bundle
    from taskclf.train.dataset import assign_recorded_split, load_labeled_features, split_by_time
    from taskclf.train.evaluate import recorded_split

    booster, metadata, encoders = load_model_bundle(model_dir)
    start = date_from or metadata.train_date_from
    end = date_to or metadata.train_date_to
    if start is None or end is None:
        raise InputError(f"model bundle '{model_dir}' records no training range; give --from/--to")
    if end < start:
        raise InputError(f"--to {end} is before --from {start}; swap them")
    frame = load_labeled_features(layout, start, end, schema_version=metadata.schema_version)
    split = recorded_split(metadata, model_dir)
    if split is not None:
        val = assign_recorded_split(frame, split).val
        source: Literal["recorded", "recomputed"] = "recorded"
    else:
        config = load_config(layout)
        val = split_by_time(
            frame, timezones=config.user_timezones, default_timezone=config.timezone
        ).val
        source = "recomputed"
    if len(val) == 0:
        raise InputError(
            f"no validation rows for model '{model_dir.name}' in {start}..{end}; widen the "
            "range to the model's training days or label more days"
        )
    return val, booster, metadata, encoders, start, end, source, split


def _timezones_of(layout: Layout, split: Any) -> tuple[dict[str, str], str]:
    if split is not None:
        return {u.user_id: u.timezone for u in split.users}, split.default_timezone
    from taskclf.core.config import load_config

    config = load_config(layout)
    return dict(config.user_timezones), config.timezone


def run_calibration(
    layout: Layout,
    model_dir: Path,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    method: Method = DEFAULT_CALIBRATION_METHOD,
    min_windows: int = DEFAULT_MIN_LABELED_WINDOWS,
    min_days: int = DEFAULT_MIN_LABELED_DAYS,
    min_labels: int = DEFAULT_MIN_DISTINCT_LABELS,
    out_dir: Path | None = None,
) -> CalibrationRun:
    """``taskclf train calibrate``: fit on the bundle's validation days and write the store.

    The store (default ``layout.calibrator_store_dir``) records the bundle's directory name and
    schema hash; the report is written beside its files as ``calibration_report.json``.
    """
    store_target = out_dir or layout.calibrator_store_dir
    check_store_target(store_target)  # before the fit: a wrong --out fails fast
    val, booster, metadata, encoders, start, end, source, split = load_validation_rows(
        layout, model_dir, date_from, date_to
    )
    zones, default_zone = _timezones_of(layout, split)
    report = fit_calibrator_store_with_report(
        booster,
        val,
        cat_encoders=encoders,
        method=method,
        min_windows=min_windows,
        min_days=min_days,
        min_labels=min_labels,
        model_bundle_id=Path(model_dir).name,
        model_schema_hash=metadata.schema_hash,
        timezones=zones,
        default_timezone=default_zone,
    )
    store_dir = save_calibrator_store(report.store, store_target)
    report_path = store_dir / CALIBRATION_REPORT_FILE
    atomic_write_json(report_path, report.to_json())
    return CalibrationRun(report, store_dir, report_path, Path(model_dir), start, end, source)
