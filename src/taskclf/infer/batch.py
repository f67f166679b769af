"""Batch inference over a date range, for any number of users (a thin user of the pipeline).

``run_batch_inference`` loads the feature partitions that cover the users' local dates, runs
:func:`taskclf.infer.pipeline.run_pipeline`, and writes predictions (one Parquet per user and
local date), ``segments.json``, the daily reports, and queues unsure minutes for labeling.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.config import Config
from taskclf.core.errors import InputError
from taskclf.core.paths import Layout
from taskclf.core.types import validate_user_id
from taskclf.features.build import load_features
from taskclf.infer.pipeline import (
    PipelineConfig,
    PipelineResult,
    predict_frame,
    run_pipeline,
    run_pipeline_from_probs,
    score_matrix,
)
from taskclf.infer.prediction import local_dates, write_prediction_partitions
from taskclf.infer.resolve import InferenceSettings, load_pipeline_config, taxonomy_mapper
from taskclf.report.daily import build_daily_reports
from taskclf.report.daily_files import write_daily_reports
from taskclf.report.export import write_segments

Progress = Callable[[str], None]


def predict_proba(features: pd.DataFrame, config: PipelineConfig) -> NDArray[np.float64]:
    """Calibrated probabilities of ``features`` (rows in input order), shape ``(n, k)``."""
    if features.empty:
        return np.zeros((0, len(config.label_set)))
    raw = predict_frame(config, features)
    users = features["user_id"].astype(str).to_numpy(dtype=object)
    return score_matrix(config, raw, users).probs


def predict_labels(features: pd.DataFrame, config: PipelineConfig) -> pd.DataFrame:
    """Full records (after reject, smoothing and mapping), sorted by user and time."""
    return run_pipeline(features, config).predictions


@dataclass(frozen=True)
class BatchResult:
    """What a batch run produced and where."""

    rows: int
    users: list[str]
    predictions: pd.DataFrame
    result: PipelineResult
    prediction_files: list[Path]
    segments_file: Path
    report_files: list[Path]
    queued: int
    replaced: dict[str, int] = field(default_factory=dict)  # model id -> day files replaced


def load_range_features(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    config: Config,
    schema_version: str,
    user_ids: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.Series]:
    """Feature rows whose LOCAL date (user time zone) lies in ``date_from..date_to``.

    Feature partitions are by UTC day, so one day is read on each side and filtered.
    Returns the rows and their local dates.
    """
    features = load_features(
        layout,
        date_from - timedelta(days=1),
        date_to + timedelta(days=1),
        user_ids=user_ids,
        schema_version=schema_version,
    )
    if features.empty:
        return features, pd.Series([], dtype=object)
    for uid in features["user_id"].unique().tolist():  # before any file is named after one
        validate_user_id(
            uid,
            where=f"in the feature rows of {date_from - timedelta(days=1)}.."
            f"{date_to + timedelta(days=1)} under '{layout.features_dir(schema_version)}' "
            "(rebuild them with 'taskclf features build')",
        )
    days = local_dates(
        features["bucket_start_ts"], features["user_id"], config.user_timezones, config.timezone
    )
    keep = ((days >= date_from) & (days <= date_to)).to_numpy(dtype=bool)
    return features[keep].reset_index(drop=True), days[keep].reset_index(drop=True)


def run_batch_inference(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    settings: InferenceSettings,
    config: Config,
    user_ids: Sequence[str] | None = None,
    write_reports: bool = True,
    enqueue: bool = True,
    progress: Progress | None = None,
    chart_workers: int = 1,
) -> BatchResult:
    """Predict every minute of the range and write predictions, segments and reports.

    ``chart_workers`` > 1 draws the reports' charts in that many processes
    (:func:`~taskclf.report.daily_files.write_daily_reports`).
    """
    step = progress or (lambda _msg: None)
    step("loading model, calibrators and policy")
    pipeline_config = load_pipeline_config(settings)
    label_store = None
    if enqueue:  # opened (and checked) before anything is written
        from taskclf.labels.store import LabelStore

        label_store = LabelStore.for_layout(layout)
    step("loading features")
    features, _ = load_range_features(
        layout,
        date_from,
        date_to,
        config=config,
        schema_version=pipeline_config.schema_version,
        user_ids=user_ids,
    )
    if features.empty:
        who = f" for user(s) {', '.join(user_ids)}" if user_ids else ""
        raise InputError(
            f"no feature rows between {date_from} and {date_to}{who}; run 'taskclf features "
            "build' for that range first"
        )
    step(f"predicting {len(features):,} minutes")
    result = run_pipeline(features, pipeline_config)
    predictions = result.predictions
    days = local_dates(
        predictions["bucket_start_ts"],
        predictions["user_id"],
        config.user_timezones,
        config.timezone,
    )
    step("writing predictions and segments")
    files = write_prediction_partitions(layout, predictions, days)
    segments_path = write_segments(layout.segments_file, result.segments)
    report_files: list[Path] = []
    if write_reports:
        step("building daily reports")
        taxonomy = None
        if settings.taxonomy_path.value is not None:
            from taskclf.infer.taxonomy import load_taxonomy

            taxonomy = load_taxonomy(settings.taxonomy_path.value)
        reports = build_daily_reports(
            predictions,
            result.segments,
            timezones=config.user_timezones,
            default_timezone=config.timezone,
            taxonomy=taxonomy,
        )
        step(f"writing daily reports (0/{len(reports):,})")
        written = write_daily_reports(
            layout,
            reports,
            taxonomy=taxonomy,
            progress=lambda i, n: step(f"writing daily reports ({i:,}/{n:,})"),
            workers=chart_workers,
        )
        report_files.extend(path for paths in written for path in paths)
    queued = 0
    if label_store is not None:
        from taskclf.labels.queue import enqueue_from_predictions

        step("queueing unsure minutes for labeling")
        queued = enqueue_from_predictions(
            label_store,
            predictions,
            confidence_threshold=pipeline_config.reject_threshold,
            timezone=config.timezone,
            user_timezones=config.user_timezones,
        )
    users = sorted(predictions["user_id"].unique().tolist())
    return BatchResult(
        rows=len(predictions),
        users=users,
        predictions=predictions,
        result=result,
        prediction_files=files,
        segments_file=segments_path,
        report_files=report_files,
        queued=queued,
    )


def run_baseline_inference(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    config: Config,
    reject_threshold: float,
    user_ids: Sequence[str] | None = None,
    schema_version: str = "v3",
    taxonomy: Path | None = None,
) -> BatchResult:
    """Rule baseline for day-one users: same reject/smooth/segment steps, no model needed.

    ``taxonomy`` maps the labels as in ``infer batch`` (default: the home's taxonomy file, if
    there is one).
    """
    from taskclf.infer.baseline import BASELINE_PROB_COLUMNS, predict_baseline

    if taxonomy is None and layout.taxonomy_file.exists():
        taxonomy = layout.taxonomy_file
    mapper = taxonomy_mapper(taxonomy)  # a bad taxonomy fails before any work

    features, _ = load_range_features(
        layout,
        date_from,
        date_to,
        config=config,
        schema_version=schema_version,
        user_ids=user_ids,
    )
    if features.empty:
        raise InputError(
            f"no feature rows between {date_from} and {date_to}; run 'taskclf features build' first"
        )
    rules = predict_baseline(features)
    probs = rules[list(BASELINE_PROB_COLUMNS)].to_numpy(dtype=np.float64)
    pipeline_config = PipelineConfig(
        booster=None,
        cat_encoders={},
        schema_version=schema_version,
        model_id="baseline-rules",
        reject_threshold=reject_threshold,
        label_mapper=mapper,
    )
    result = run_pipeline_from_probs(features, probs, pipeline_config)
    predictions = result.predictions
    days = local_dates(
        predictions["bucket_start_ts"],
        predictions["user_id"],
        config.user_timezones,
        config.timezone,
    )
    replaced = _models_in(layout, predictions, days, keep=pipeline_config.model_id)
    files = write_prediction_partitions(layout, predictions, days)
    segments_path = write_segments(layout.segments_file, result.segments)
    return BatchResult(
        replaced=replaced,
        rows=len(predictions),
        users=sorted(predictions["user_id"].unique().tolist()),
        predictions=predictions,
        result=result,
        prediction_files=files,
        segments_file=segments_path,
        report_files=[],
        queued=0,
    )


def _models_in(
    layout: Layout, predictions: pd.DataFrame, days: pd.Series, *, keep: str
) -> dict[str, int]:
    """Models other than ``keep`` whose day files these predictions will replace, with counts.

    Reads only the ``model_id`` column of the existing files (an unreadable one counts as
    ``"unreadable"``).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    found: dict[str, int] = {}
    pairs = pd.DataFrame({"user": predictions["user_id"], "day": days}).drop_duplicates()
    for user, day in pairs.itertuples(index=False):
        path = layout.predictions_partition(day, user)
        if not path.exists():
            continue
        try:
            ids = set(pq.read_table(path, columns=["model_id"]).column(0).to_pylist())
        except (OSError, KeyError, pa.ArrowException):  # replaced all the same
            ids = {"unreadable"}
        for model in sorted(str(i) for i in ids - {keep}):
            found[model] = found.get(model, 0) + 1
    return found
