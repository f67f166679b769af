"""Deterministic multiclass LightGBM training and the ``train lgbm`` run.

Classes are the eight core labels in ``label_set`` order (``core.types.LABEL_SET_V1``, sorted);
a label string becomes its index in that tuple, and probability column ``j`` of the model is
``LABEL_SET_V1[j]``. The feature matrix comes from the one encoding in ``core.encoding``
(missing values stay NaN, unknown categories map to ``__unknown__``); categorical columns are
LightGBM native categoricals.

Determinism: ``deterministic=True``, ``force_col_wise=True``, a fixed ``num_threads``
(:data:`DEFAULT_NUM_THREADS`) and every LightGBM seed set from ``random_state``: the same
inputs give a byte-identical ``model.txt`` and ``metrics.json``.

Class weights are per-row sample weights. ``balanced`` gives class ``c`` the weight
``n / (m * n_c)`` computed on the training rows (``m`` = classes present in training, as
scikit-learn's ``compute_class_weight``); validation rows get the same per-class weights so
early stopping watches the very loss being minimized (a class absent from training weighs 1).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.preprocessing import LabelEncoder

from taskclf.core.defaults import (
    DEFAULT_EARLY_STOPPING_ROUNDS,
    DEFAULT_NUM_BOOST_ROUND,
    DEFAULT_RANDOM_STATE,
    DEFAULT_TIMEZONE,
    DEFAULT_TRAIN_RATIO,
    DEFAULT_VAL_RATIO,
)
from taskclf.core.encoding import (
    MatrixEncoder,
    categorical_columns,
    categorical_feature_indices,
    feature_columns,
    fit_categorical_encoders,
)
from taskclf.core.errors import InputError, LabelError
from taskclf.core.metrics import calibration_summary, classification_summary
from taskclf.core.model_io import (
    build_metadata,
    generate_run_id,
    get_active_model,
    save_model_bundle,
    set_active_model,
)
from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1
from taskclf.train.dataset import (
    DataProvenance,
    SplitSummary,
    dataset_hash,
    load_labeled_dataset,
    split_by_time,
)

#: Model features of schema v1 (legacy: ``user_id`` is a categorical feature).
FEATURE_COLUMNS: list[str] = feature_columns("v1")
#: Model features of schema v2 (user-agnostic).
FEATURE_COLUMNS_V2: list[str] = feature_columns("v2")
#: Model features of schema v3 (v2 plus title sketches and statistics; the default).
FEATURE_COLUMNS_V3: list[str] = feature_columns("v3")
CATEGORICAL_COLUMNS: list[str] = categorical_columns("v1")
CATEGORICAL_COLUMNS_V2: list[str] = categorical_columns("v2")
CATEGORICAL_COLUMNS_V3: list[str] = categorical_columns("v3")

#: Fixed thread count: LightGBM is only reproducible for a fixed ``num_threads``. One thread:
#: on a shared machine OpenMP threads that spin-wait for a busy core made 2-thread training
#: up to 100x slower than 1-thread training (measured under load on 2 cores).
DEFAULT_NUM_THREADS = 1
ClassWeight = Literal["balanced", "none"]
RoundHook = Callable[[int, int], None]
_RESERVED_PARAMS = {"objective": "multiclass", "num_class": len(LABEL_SET_V1)}
_LABEL_INDEX = {label: i for i, label in enumerate(LABEL_SET_V1)}


def label_indices(labels: pd.Series, *, where: str = "label") -> NDArray[np.int64]:
    """Indices of ``labels`` in ``LABEL_SET_V1``; a missing or unknown label is an error."""
    values = labels.astype(object).to_numpy()
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        idx = _LABEL_INDEX.get(value) if isinstance(value, str) else None
        if idx is None:
            raise LabelError(
                f"{where}: row {i} has label {value!r}; expected one of "
                f"{', '.join(LABEL_SET_V1)} (unlabeled rows must be dropped before training)"
            )
        out[i] = idx
    return out


def sample_weights(
    y: NDArray[np.int64], mode: ClassWeight, *, reference: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.float64], dict[str, float]]:
    """Per-row weights and the per-class weights (computed on ``reference``, default ``y``)."""
    ref = y if reference is None else reference
    k = len(LABEL_SET_V1)
    if mode == "none":
        per_class = np.ones(k)
    elif mode == "balanced":
        counts = np.bincount(ref, minlength=k).astype(np.float64)
        present = counts > 0
        per_class = np.ones(k)
        per_class[present] = ref.size / (present.sum() * counts[present])
    else:
        raise InputError(f"class_weight must be 'balanced' or 'none', got {mode!r}")
    by_label = {label: float(per_class[i]) for i, label in enumerate(LABEL_SET_V1)}
    return per_class[y], by_label


def lgbm_params(
    *, random_state: int = DEFAULT_RANDOM_STATE, extra_params: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The full LightGBM parameter set (defaults, then ``extra_params``), deterministic."""
    params: dict[str, Any] = {
        **_RESERVED_PARAMS,
        "metric": "multi_logloss",
        "learning_rate": 0.05,
        "num_leaves": 31,
        "min_data_in_leaf": 20,
        "feature_fraction": 0.8,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "max_bin": 255,
        "max_cat_to_onehot": 4,
        "cat_smooth": 10.0,
        "verbose": -1,
        "num_threads": DEFAULT_NUM_THREADS,
        "deterministic": True,
        "force_col_wise": True,
        "seed": random_state,
        "bagging_seed": random_state,
        "feature_fraction_seed": random_state,
        "data_random_seed": random_state,
        "extra_seed": random_state,
        "drop_seed": random_state,
        "objective_seed": random_state,
    }
    for key, value in (extra_params or {}).items():
        if key in _RESERVED_PARAMS and value != _RESERVED_PARAMS[key]:
            raise InputError(
                f"extra_params may not change {key!r} (must be {_RESERVED_PARAMS[key]!r}, got "
                f"{value!r}): the model is always multiclass over the eight core labels"
            )
        params[str(key)] = value
    return params


def prepare_xy(
    df: pd.DataFrame, cat_encoders: Mapping[str, LabelEncoder], schema_version: str, *, where: str
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Model matrix (``(n, n_features)`` float64) and label indices (``(n,)`` int64)."""
    if "label" not in df.columns:
        raise InputError(f"{where}: the frame has no 'label' column")
    x = MatrixEncoder(cat_encoders, schema_version).encode_frame(df)
    return x, label_indices(df["label"], where=where)


def predict_proba(
    booster: lgb.Booster,
    df: pd.DataFrame,
    cat_encoders: Mapping[str, LabelEncoder],
    schema_version: str,
) -> NDArray[np.float64]:
    """Probabilities, shape ``(n, 8)``, columns in ``LABEL_SET_V1`` order."""
    x = MatrixEncoder(cat_encoders, schema_version).encode_frame(df)
    proba = np.asarray(booster.predict(x, num_threads=DEFAULT_NUM_THREADS), dtype=np.float64)
    return proba.reshape(len(df), len(LABEL_SET_V1))


def _check_training_frames(train_df: pd.DataFrame, val_df: pd.DataFrame) -> None:
    if len(train_df) == 0:
        raise InputError("no training rows: the train split is empty; label more days")
    if len(val_df) == 0:
        raise InputError(
            "no validation rows: the validation split is empty (a user needs at least two "
            "labeled days to contribute a validation day); label more days"
        )
    n_classes = train_df["label"].nunique(dropna=True) if "label" in train_df.columns else 0
    if n_classes < 2:
        only = sorted(map(str, train_df["label"].dropna().unique())) if n_classes else []
        raise InputError(
            f"the training rows hold {n_classes} distinct label(s) {only}; a classifier needs "
            "at least two; label minutes of other task types"
        )


def _round_callback(total: int, hook: RoundHook) -> Callable[[Any], None]:
    def callback(env: Any) -> None:
        hook(int(env.iteration) + 1, total)

    return callback


def train_lgbm(
    train_df: pd.DataFrame,
    val_df: pd.DataFrame,
    *,
    num_boost_round: int = DEFAULT_NUM_BOOST_ROUND,
    extra_params: Mapping[str, Any] | None = None,
    class_weight: ClassWeight = "balanced",
    schema_version: str = "v3",
    random_state: int = DEFAULT_RANDOM_STATE,
    early_stopping_rounds: int = DEFAULT_EARLY_STOPPING_ROUNDS,
    on_round: RoundHook | None = None,
) -> tuple[lgb.Booster, dict[str, Any], pd.DataFrame, dict[str, Any], dict[str, LabelEncoder]]:
    """Train on ``train_df`` with early stopping on ``val_df``; keep the best iteration.

    Args:
        train_df: Labeled feature rows (schema columns + ``label``) of the training days.
        val_df: Labeled rows of the validation days (early stopping and reported metrics).
        num_boost_round: Maximum boosting rounds.
        extra_params: LightGBM parameters overriding :func:`lgbm_params` defaults.
        class_weight: ``balanced`` or ``none`` (see the module doc).
        schema_version: Feature schema of the frames.
        random_state: Seed of every LightGBM random stream.
        early_stopping_rounds: Stop after this many rounds without validation improvement.
        on_round: Called as ``on_round(done, total)`` after every round (progress display).

    Returns:
        ``(booster, metrics, confusion_df, params, cat_encoders)``: the booster truncated to
        its best iteration; validation metrics (``macro_f1``, ``weighted_f1``,
        ``confusion_matrix``, ``label_names``, per class, NLL/ECE, row counts); the confusion
        matrix (rows true, columns predicted, ``label_set`` order); every LightGBM parameter
        plus ``num_boost_round``, ``best_iteration``, ``num_boost_round_used``,
        ``early_stopping_rounds``, ``class_weight`` and ``class_weights``; the encoders.

    Raises:
        InputError: Empty train or validation rows, or fewer than two training classes.
        LabelError: A missing or unknown label.
    """
    if num_boost_round < 1:
        raise InputError(f"--num-boost-round must be >= 1, got {num_boost_round}")
    _check_training_frames(train_df, val_df)
    params = lgbm_params(random_state=random_state, extra_params=extra_params)
    encoders = fit_categorical_encoders(train_df, schema_version)
    x_train, y_train = prepare_xy(train_df, encoders, schema_version, where="training rows")
    x_val, y_val = prepare_xy(val_df, encoders, schema_version, where="validation rows")
    w_train, per_class = sample_weights(y_train, class_weight)
    w_val, _ = sample_weights(y_val, class_weight, reference=y_train)
    names = feature_columns(schema_version)
    cats = categorical_feature_indices(schema_version)
    train_set = lgb.Dataset(
        x_train,
        label=y_train,
        weight=w_train,
        feature_name=names,
        categorical_feature=cats,
        params={"verbose": -1},
        free_raw_data=True,
    )
    val_set = lgb.Dataset(x_val, label=y_val, weight=w_val, reference=train_set)
    callbacks: list[Callable[[Any], None]] = [
        lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False)
    ]
    if on_round is not None:
        callbacks.append(_round_callback(num_boost_round, on_round))
    full = lgb.train(
        params,
        train_set,
        num_boost_round=num_boost_round,
        valid_sets=[val_set],
        valid_names=["val"],
        callbacks=callbacks,
    )
    best = int(full.best_iteration) if full.best_iteration > 0 else full.current_iteration()
    booster = lgb.Booster(model_str=full.model_to_string(num_iteration=best))
    raw = booster.predict(x_val, num_threads=DEFAULT_NUM_THREADS)
    proba = np.asarray(raw, dtype=np.float64).reshape(len(val_df), -1)
    metrics = validation_metrics(y_val, proba, n_train=len(train_df), best_iteration=best)
    confusion_df = confusion_frame(metrics["confusion_matrix"])
    all_params = {
        **params,
        "num_boost_round": num_boost_round,
        "best_iteration": best,
        "num_boost_round_used": best,
        "early_stopping_rounds": early_stopping_rounds,
        "class_weight": class_weight,
        "class_weights": per_class,
    }
    return booster, metrics, confusion_df, all_params, encoders


def confusion_frame(cm: Sequence[Sequence[int]]) -> pd.DataFrame:
    """Confusion matrix as a frame: index ``true`` labels, columns predicted labels."""
    labels = list(LABEL_SET_V1)
    frame = pd.DataFrame(np.asarray(cm, dtype=np.int64), index=labels, columns=labels)
    frame.index.name = "true"
    return frame


def validation_metrics(
    y_val: NDArray[np.int64], proba: NDArray[np.float64], *, n_train: int, best_iteration: int
) -> dict[str, Any]:
    """``metrics.json`` content: classification and calibration metrics on validation."""
    labels = list(LABEL_SET_V1)
    summary = classification_summary(y_val, proba.argmax(axis=1), labels)
    calib = calibration_summary(y_val, proba, labels)
    return {
        "split": "val",
        "label_names": labels,
        "macro_f1": summary.macro_f1,
        "weighted_f1": summary.weighted_f1,
        "accuracy": summary.accuracy,
        "confusion_matrix": summary.confusion_matrix,
        "per_class": {m.label: m.model_dump(exclude={"label"}) for m in summary.per_class},
        "nll": calib.nll,
        "brier": calib.brier,
        "ece_top_label": calib.ece_top_label,
        "classwise_ece_mean": calib.classwise_ece_mean,
        "n_train": n_train,
        "n_val": int(y_val.size),
        "best_iteration": best_iteration,
    }


# The `train lgbm` run ---------------------------------------------------------------------


@dataclass(frozen=True)
class TrainRunResult:
    """What :func:`train_and_save` produced."""

    run_id: str
    run_dir: Path
    metrics: dict[str, Any]
    params: dict[str, Any]
    split: SplitSummary
    data_provenance: DataProvenance
    dataset_hash: str
    activated: bool


@dataclass(frozen=True)
class TrainRunOptions:
    """Options of :func:`train_and_save` (the ``train lgbm`` flags)."""

    schema_version: str = "v3"
    num_boost_round: int = DEFAULT_NUM_BOOST_ROUND
    class_weight: ClassWeight = "balanced"
    seed: int = DEFAULT_RANDOM_STATE
    holdout_user_fraction: float = 0.0
    user_ids: Sequence[str] | None = None
    timezones: Mapping[str, str] | None = None
    default_timezone: str = DEFAULT_TIMEZONE
    train_ratio: float = DEFAULT_TRAIN_RATIO
    val_ratio: float = DEFAULT_VAL_RATIO


def train_and_save(
    layout: Layout,
    date_from: date,
    date_to: date,
    options: TrainRunOptions | None = None,
    *,
    on_stage: Callable[[str], None] | None = None,
    on_round: RoundHook | None = None,
) -> TrainRunResult:
    """Load labeled rows, split by days, train, save a bundle, activate it if none is active.

    ``metadata.params`` holds every LightGBM parameter, the rounds used, and under ``split``
    the :class:`~taskclf.train.dataset.SplitSummary` (so evaluation finds the test days).
    ``data_provenance`` is ``synthetic`` when every labeled row comes from spans of
    provenance ``synthetic``, ``real`` when none does, else ``mixed``.
    """
    opts = options or TrainRunOptions()
    stage = on_stage or (lambda _msg: None)
    stage("loading labeled feature rows")
    data = load_labeled_dataset(
        layout, date_from, date_to, user_ids=opts.user_ids, schema_version=opts.schema_version
    )
    stage(f"splitting {len(data.frame)} labeled rows by day")
    splits = split_by_time(
        data.frame,
        train_ratio=opts.train_ratio,
        val_ratio=opts.val_ratio,
        holdout_user_fraction=opts.holdout_user_fraction,
        timezones=opts.timezones,
        default_timezone=opts.default_timezone,
        seed=opts.seed,
    )
    stage(f"training on {len(splits.train)} rows, validating on {len(splits.val)}")
    booster, metrics, cm_df, params, encoders = train_lgbm(
        splits.train,
        splits.val,
        num_boost_round=opts.num_boost_round,
        class_weight=opts.class_weight,
        schema_version=opts.schema_version,
        random_state=opts.seed,
        on_round=on_round,
    )
    params["split"] = splits.summary.model_dump(mode="json")
    digest = dataset_hash(
        pd.concat([splits.train, splits.val], ignore_index=True), opts.schema_version
    )
    metadata = build_metadata(
        label_set=list(LABEL_SET_V1),
        schema_version=opts.schema_version,
        train_date_from=date_from,
        train_date_to=date_to,
        params=params,
        dataset_hash=digest,
        data_provenance=data.data_provenance,
    )
    stage("saving the model bundle")
    run_id = generate_run_id(layout.models_dir)
    run_dir = save_model_bundle(layout.run_dir(run_id), booster, metadata, metrics, cm_df, encoders)
    activated = get_active_model(layout) is None
    if activated:
        set_active_model(layout, run_id, reason="first trained model")
    return TrainRunResult(
        run_id=run_id,
        run_dir=run_dir,
        metrics=metrics,
        params=params,
        split=splits.summary,
        data_provenance=data.data_provenance,
        dataset_hash=digest,
        activated=activated,
    )
