"""The one inference pipeline (DESIGN §1), shared by batch and online.

Canonical order for every row: features → encode categoricals → model probabilities →
calibrate (per user) → reject (per-user threshold, else global) → smooth (rolling majority over
the user's own time series) → segments (merge short) → taxonomy mapping of the smoothed label →
output record.

Batch calls :func:`run_pipeline` on a frame of many users; online calls
``OnlinePredictor.predict_row`` (``infer._online_predictor``, public in ``infer.online``) with
one closed minute. Up to the reject decision online uses the one-row forms of the batch steps,
each tested equal to its batch form bit for bit: LightGBM's prepared single-row prediction
(``SingleRowPredictor``) for ``booster.predict``, and :func:`score_row` for
:func:`score_matrix`. Both then apply the same smoothing rule (the online smoother is the fold
form of the batch smoother, with a lag of ``window // 2`` minutes), so the records they produce
are identical.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.preprocessing import LabelEncoder

from taskclf.core.defaults import (
    DEFAULT_BUCKET_SECONDS,
    DEFAULT_IDLE_GAP_SECONDS,
    DEFAULT_MIN_BLOCK_SECONDS,
    DEFAULT_REJECT_THRESHOLD,
    DEFAULT_SMOOTH_WINDOW,
    MIXED_UNKNOWN,
)
from taskclf.core.encoding import MatrixEncoder
from taskclf.core.errors import InputError
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer._record_checks import PREDICTION_COLUMNS
from taskclf.infer._segments import SegmentTable, merge_short, table_from_sorted
from taskclf.infer.prediction import (
    empty_predictions,
    normalize_predictions,
    probs_to_json,
)
from taskclf.infer.smooth import (
    Segment,
    check_window,
    majority_codes,
    run_breaks,
    segments_from_table,
    timestamps_to_ns,
)


class BatchCalibrator(Protocol):
    """What the pipeline needs of a calibrator store."""

    def calibrate_batch(
        self, core_probs: NDArray[np.float64], user_ids: Sequence[str] | NDArray[Any]
    ) -> NDArray[np.float64]: ...


LabelMapper = Callable[[Sequence[str]], list[str]]

_CONFIDENCE_DECIMALS = 10


@dataclass(frozen=True)
class PipelineConfig:
    """Everything the pipeline needs, resolved once (see ``infer.resolve``)."""

    booster: lgb.Booster | None
    cat_encoders: Mapping[str, LabelEncoder]
    schema_version: str
    model_id: str
    label_set: tuple[str, ...] = LABEL_SET_V1
    calibrator_store: BatchCalibrator | None = None
    reject_threshold: float = DEFAULT_REJECT_THRESHOLD
    per_user_reject_thresholds: Mapping[str, float] = field(default_factory=dict)
    smooth_window: int = DEFAULT_SMOOTH_WINDOW
    label_mapper: LabelMapper | None = None
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS
    idle_gap_seconds: int = DEFAULT_IDLE_GAP_SECONDS
    min_block_seconds: int = DEFAULT_MIN_BLOCK_SECONDS
    num_threads: int = 0

    def __post_init__(self) -> None:
        if tuple(self.label_set) != tuple(sorted(self.label_set)):
            raise InputError(f"label_set must be sorted, got {list(self.label_set)}")
        for uid, thr in {
            "<global>": self.reject_threshold,
            **self.per_user_reject_thresholds,
        }.items():
            if not 0.0 <= float(thr) <= 1.0:
                raise InputError(f"reject threshold of {uid} must be in [0, 1], got {thr!r}")

    def encoder(self) -> MatrixEncoder:
        return MatrixEncoder(self.cat_encoders, self.schema_version)

    def map_labels(self, labels: Sequence[str]) -> list[str]:
        if self.label_mapper is None:
            return list(labels)
        return self.label_mapper(labels)


@dataclass(frozen=True)
class Scored:
    """Per-row results up to the reject decision, aligned with the input rows."""

    probs: NDArray[np.float64]  # calibrated, shape (n, k), label_set order
    core_index: NDArray[np.intp]
    confidence: NDArray[np.float64]
    is_rejected: NDArray[np.bool_]
    label_set: tuple[str, ...]

    @property
    def label_codes(self) -> NDArray[np.intp]:
        """Position in :attr:`label_names` of each row's label after the reject decision."""
        return np.where(self.is_rejected, len(self.label_set), self.core_index)

    @property
    def label_names(self) -> NDArray[np.object_]:
        """The label set, then Mixed/Unknown (the reject label)."""
        return np.asarray([*self.label_set, MIXED_UNKNOWN], dtype=object)

    @property
    def reject_labels(self) -> list[str]:
        """Core label, or Mixed/Unknown when rejected, per row."""
        return [str(x) for x in self.label_names[self.label_codes]]


def predict_raw(config: PipelineConfig, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
    """Model probabilities, shape ``(n, k)`` in ``label_set`` order."""
    if config.booster is None:
        raise InputError("this pipeline has no model; give probabilities (rule baseline)")
    if matrix.shape[0] == 0:
        return np.zeros((0, len(config.label_set)))
    if config.num_threads:
        out = config.booster.predict(matrix, num_threads=config.num_threads)
    else:
        out = config.booster.predict(matrix)
    probs = np.asarray(out, dtype=np.float64)
    return probs.reshape(matrix.shape[0], len(config.label_set))


def predict_frame(config: PipelineConfig, features: pd.DataFrame) -> NDArray[np.float64]:
    """Model probabilities of a feature frame, encoded and predicted in row chunks.

    Same values as ``predict_raw(config, config.encoder().encode_frame(features))``, without
    materializing the whole matrix (see :meth:`MatrixEncoder.iter_chunks`).
    """
    out = np.empty((len(features), len(config.label_set)), dtype=np.float64)
    if config.booster is None:
        raise InputError("this pipeline has no model; give probabilities (rule baseline)")
    for rows, matrix in config.encoder().iter_chunks(features):
        out[rows] = predict_raw(config, matrix)
    return out


def score_matrix(
    config: PipelineConfig, raw_probs: NDArray[np.float64], user_ids: NDArray[Any]
) -> Scored:
    """Calibrate per user, then reject below the user's threshold (else the global one)."""
    probs = raw_probs
    if config.calibrator_store is not None and len(probs):
        probs = config.calibrator_store.calibrate_batch(raw_probs, user_ids)
    core_index = np.argmax(probs, axis=1) if len(probs) else np.zeros(0, dtype=np.intp)
    confidence = probs[np.arange(len(probs)), core_index] if len(probs) else np.zeros(0)
    thresholds = _thresholds_for(config, user_ids)
    is_rejected = confidence < thresholds
    return Scored(probs, core_index, confidence, is_rejected, tuple(config.label_set))


def _thresholds_for(config: PipelineConfig, user_ids: NDArray[Any]) -> NDArray[np.float64]:
    out = np.full(len(user_ids), float(config.reject_threshold))
    if config.per_user_reject_thresholds and len(user_ids) == 1:  # the online path
        out[0] = config.per_user_reject_thresholds.get(str(user_ids[0]), config.reject_threshold)
    elif config.per_user_reject_thresholds and len(user_ids):
        uniq, inverse = np.unique(np.asarray(user_ids, dtype=str), return_inverse=True)
        per = np.array(
            [config.per_user_reject_thresholds.get(u, config.reject_threshold) for u in uniq],
            dtype=np.float64,
        )
        out = per[inverse]
    return out


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """:class:`Scored` of one row, as Python scalars (the online path)."""

    probs: NDArray[np.float64]  # calibrated, shape (k,), label_set order
    core_index: int
    confidence: float
    is_rejected: bool


def score_row(config: PipelineConfig, raw_probs: NDArray[np.float64], user_id: str) -> ScoredRow:
    """:func:`score_matrix` of one row of one user (the online path); tested equal to it.

    The same calibrator call on the ``(1, k)`` matrix; the argmax, confidence and threshold
    comparison are the same operations on scalars, without the batch's per-call arrays.
    """
    probs = raw_probs
    if config.calibrator_store is not None:
        probs = config.calibrator_store.calibrate_batch(raw_probs, (user_id,))
    row = probs[0]
    core = int(row.argmax())
    confidence = float(row[core])
    threshold = float(config.per_user_reject_thresholds.get(user_id, config.reject_threshold))
    return ScoredRow(row, core, confidence, confidence < threshold)


_CONFIDENCE_SCALE = 10.0**_CONFIDENCE_DECIMALS


def round_confidence(value: float) -> float:
    """``float(np.round(value, _CONFIDENCE_DECIMALS))`` without the numpy call (tested equal).

    numpy rounds to ``d >= 0`` decimals as ``rint(x * 10**d) / 10**d`` (``PyArray_Round``);
    Python's ``round`` of a float is the same round-half-to-even ``rint``, and ``copysign``
    keeps the sign of a result that rounds to zero. Non-finite values go to numpy.
    """
    scaled = value * _CONFIDENCE_SCALE
    if not math.isfinite(scaled):
        return float(np.round(value, _CONFIDENCE_DECIMALS))
    return math.copysign(round(scaled) / _CONFIDENCE_SCALE, scaled)


@dataclass(frozen=True)
class PipelineResult:
    """Batch output: records (DESIGN §4.6) in (user, time) order, and merged segments.

    ``core_probs`` of the records is rendered to JSON lazily (:attr:`predictions`); the
    calibrated probabilities themselves are in :attr:`probs`. Segments are computed with the
    records and kept as arrays; :attr:`segments` turns them into objects on first use.
    """

    records: pd.DataFrame  # every record column except core_probs
    probs: NDArray[np.float64]  # calibrated, (n, k), aligned with records
    segment_table: SegmentTable  # merged segments, as arrays

    @cached_property
    def segments(self) -> list[Segment]:
        """The merged segments as :class:`Segment` objects (built on first use)."""
        return segments_from_table(self.segment_table)

    @property
    def predictions(self) -> pd.DataFrame:
        """The full records, ``core_probs`` as canonical JSON strings."""
        frame = self.records.copy()
        frame["core_probs"] = [probs_to_json(row) for row in self.probs]
        return normalize_predictions(frame)


@dataclass(frozen=True)
class _Sorted:
    """The rows of a feature frame in (user, time) order."""

    order: NDArray[np.intp]  # input row of each sorted row
    user_codes: NDArray[np.intp]  # codes into ``users`` (sorted, so codes ascend)
    users: list[str]
    starts: pd.Series  # aware UTC, sorted
    starts_ns: NDArray[np.int64]

    @property
    def user_ids(self) -> NDArray[np.object_]:
        return np.asarray(self.users, dtype=object)[self.user_codes]


def _user_time_order(
    codes: NDArray[np.intp], ts: NDArray[np.int64]
) -> tuple[NDArray[np.intp] | None, int | None]:
    """Order of rows by (user code, time): ``None`` when already sorted (the common case).

    Also the sorted position of the first duplicate minute of a user, if any.
    """
    step = np.diff(ts)
    if np.all(codes[1:] >= codes[:-1]) and np.all(step[codes[1:] == codes[:-1]] > 0):
        return None, None
    order = np.lexsort((ts, codes))
    same = (np.diff(codes[order]) == 0) & (np.diff(ts[order]) == 0)
    dup = np.flatnonzero(same)
    return order, (int(dup[0]) + 1 if dup.size else None)


def _sort_rows(features: pd.DataFrame) -> _Sorted:
    for col in ("user_id", "bucket_start_ts"):
        if col not in features.columns:
            raise InputError(f"feature frame lacks {col!r}; cannot run inference")
    starts = pd.to_datetime(features["bucket_start_ts"], utc=True)
    codes, uniques = pd.factorize(features["user_id"].astype(str), sort=True)
    ts = starts.to_numpy(dtype="datetime64[ns]").astype(np.int64)
    order, dup = _user_time_order(codes, ts)
    if order is None:
        order = np.arange(len(codes))
    else:
        if dup is not None:
            i = int(order[dup])
            raise InputError(
                f"feature frame has duplicate minutes, e.g. user {uniques[codes[i]]!r} at "
                f"{starts.iloc[i]}; rebuild features for that range"
            )
        codes, ts = codes[order], ts[order]
        starts = starts.iloc[order]
    return _Sorted(
        order,
        np.asarray(codes, dtype=np.intp),
        [str(u) for u in uniques],
        starts.reset_index(drop=True),
        ts,
    )


def run_pipeline(features: pd.DataFrame, config: PipelineConfig) -> PipelineResult:
    """Run every step on a feature frame of any number of users (any row order)."""
    return run_pipeline_from_probs(features, predict_frame(config, features), config)


def run_pipeline_from_probs(
    features: pd.DataFrame, raw_probs: NDArray[np.float64], config: PipelineConfig
) -> PipelineResult:
    """The steps after the model (calibrate → reject → smooth → segments → taxonomy).

    ``raw_probs`` is aligned with the rows of ``features`` (shape ``(n, k)``); the rule
    baseline enters here with its rule probabilities. Labels travel as integer codes
    (``label_set`` positions, then Mixed/Unknown) until the records are built; smoothing is
    ``smooth.rolling_majority_by_user``'s vote on those codes, segments
    ``smooth.segmentize`` + ``merge_short_segments`` on them (tested equal).
    """
    if raw_probs.shape != (len(features), len(config.label_set)):
        raise InputError(
            f"probabilities have shape {raw_probs.shape}, expected "
            f"({len(features)}, {len(config.label_set)})"
        )
    rows = _sort_rows(features)
    user_ids = rows.user_ids
    scored = score_matrix(config, raw_probs[rows.order], user_ids)
    names = scored.label_names
    codes = scored.label_codes
    breaks = run_breaks(rows.starts_ns, config.bucket_seconds, config.idle_gap_seconds)
    breaks[1:] |= rows.user_codes[1:] != rows.user_codes[:-1]
    smoothed = majority_codes(codes, breaks, check_window(config.smooth_window) // 2)
    mapped = np.asarray(config.map_labels([str(x) for x in names]), dtype=object)
    records = pd.DataFrame(
        {
            "user_id": user_ids,
            "bucket_start_ts": rows.starts.astype("datetime64[us, UTC]").array,
            "core_label": names[scored.core_index],
            "confidence": np.round(scored.confidence, _CONFIDENCE_DECIMALS),
            "is_rejected": scored.is_rejected,
            "predicted_label": names[smoothed],
            "mapped_label": mapped[smoothed],
            "model_id": config.model_id,
        }
    )
    table = _merged_segments(
        config, rows.user_codes, rows.users, rows.starts_ns, smoothed, [str(x) for x in names]
    )
    return PipelineResult(records, scored.probs, table)


def _merged_segments(
    config: PipelineConfig,
    user_codes: NDArray[np.intp],
    users: list[str],
    starts_ns: NDArray[np.int64],
    labels: NDArray[Any],
    names: list[str] | None = None,
) -> SegmentTable:
    """Segments of rows sorted by (user, time), short ones merged (config's rules)."""
    table = table_from_sorted(
        user_codes,
        list(users),
        starts_ns,
        labels,
        bucket_seconds=config.bucket_seconds,
        idle_gap_seconds=config.idle_gap_seconds,
        names=names,
    )
    return merge_short(table, config.min_block_seconds, idle_gap_seconds=config.idle_gap_seconds)


def segments_of(config: PipelineConfig, records: pd.DataFrame) -> list[Segment]:
    """Merged segments of records (``user_id``, ``bucket_start_ts``, ``predicted_label``)."""
    return segments_from_table(segment_table_of(config, records))


def segment_table_of(config: PipelineConfig, records: pd.DataFrame) -> SegmentTable:
    """:func:`segments_of` as a :class:`SegmentTable` (records in any order)."""
    codes, uniques = pd.factorize(records["user_id"].astype(str), sort=True)
    starts_ns = timestamps_to_ns(records["bucket_start_ts"])
    labels = records["predicted_label"].to_numpy(dtype=object)
    order, dup = _user_time_order(codes, starts_ns)
    if dup is not None:
        raise InputError(
            f"records have a duplicate minute of user {uniques[codes[order][dup]]!r}; "
            "one record per user and minute"
        )
    if order is not None:
        codes, starts_ns, labels = codes[order], starts_ns[order], labels[order]
    users = [str(u) for u in uniques]
    return _merged_segments(config, np.asarray(codes, dtype=np.intp), users, starts_ns, labels)


OnlineRecord = dict[str, Any]
"""A finalized record as a plain dict: the :data:`PREDICTION_COLUMNS` keys, the bucket start
an aware UTC ``datetime`` (cheap to write as a JSON line; see :func:`records_frame`)."""


def records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Online records (dicts) as a normalized predictions frame."""
    if not records:
        return empty_predictions()
    return normalize_predictions(pd.DataFrame(list(records), columns=list(PREDICTION_COLUMNS)))
