from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from taskclf.core._atomic import dumps_json
from taskclf.core.encoding import encode_features
from taskclf.core.errors import InputError, LabelError
from taskclf.core.model_io import build_metadata, load_model_bundle, save_model_bundle
from taskclf.core.schema import FeatureSchemaV1, FeatureSchemaV2
from taskclf.core.types import LABEL_SET_V1
from taskclf.train.dataset import split_by_time
from taskclf.train.lgbm import (
    CATEGORICAL_COLUMNS,
    CATEGORICAL_COLUMNS_V2,
    DEFAULT_NUM_THREADS,
    FEATURE_COLUMNS,
    FEATURE_COLUMNS_V2,
    FEATURE_COLUMNS_V3,
    lgbm_params,
    predict_proba,
    sample_weights,
    train_lgbm,
)
from test_train_frames import make_labeled_frame

ROUNDS = 20


@pytest.fixture(scope="module")
def splits_v3():
    frame = make_labeled_frame(n_users=3, n_days=6, minutes_per_day=60, seed=1)
    return split_by_time(frame, seed=0)


@pytest.fixture(scope="module")
def trained_v3(splits_v3):
    return train_lgbm(splits_v3.train, splits_v3.val, num_boost_round=ROUNDS)


def test_feature_column_constants():
    assert "user_id" in FEATURE_COLUMNS and "user_id" in CATEGORICAL_COLUMNS
    assert "user_id" not in FEATURE_COLUMNS_V2 and "user_id" not in CATEGORICAL_COLUMNS_V2
    assert len(FEATURE_COLUMNS) == len(FEATURE_COLUMNS_V2) + 1
    assert CATEGORICAL_COLUMNS_V2 == ["app_id", "app_category", "domain_category"]
    assert set(FEATURE_COLUMNS_V2) < set(FEATURE_COLUMNS_V3)
    assert set(FEATURE_COLUMNS) <= set(FeatureSchemaV1.COLUMNS)
    assert set(FEATURE_COLUMNS_V2) <= set(FeatureSchemaV2.COLUMNS)
    for bookkeeping in ("bucket_start_ts", "session_id", "window_title_hash", "source_ids"):
        assert bookkeeping not in FEATURE_COLUMNS_V3


def test_training_learns_and_reports_the_contract(trained_v3, splits_v3):
    booster, metrics, cm_df, params, encoders = trained_v3
    assert metrics["label_names"] == list(LABEL_SET_V1)
    assert metrics["macro_f1"] > 0.6  # informative features; chance is ~0.12
    assert metrics["n_val"] == len(splits_v3.val)
    cm = np.asarray(metrics["confusion_matrix"])
    assert cm.sum() == len(splits_v3.val)
    assert list(cm_df.index) == list(LABEL_SET_V1) and list(cm_df.columns) == list(LABEL_SET_V1)
    np.testing.assert_array_equal(cm_df.to_numpy(), cm)
    assert params["num_boost_round"] == ROUNDS
    assert 1 <= params["best_iteration"] == params["num_boost_round_used"] <= ROUNDS
    assert booster.current_iteration() == params["best_iteration"]
    assert params["deterministic"] is True and params["num_threads"] == DEFAULT_NUM_THREADS
    assert params["objective"] == "multiclass" and params["num_class"] == 8
    assert set(encoders) == {"app_id", "app_category", "domain_category"}
    assert "__unknown__" in list(encoders["app_id"].classes_)
    dumps_json(metrics)  # finite, JSON-serializable (no NaN)


def test_probability_columns_follow_label_set(trained_v3, splits_v3):
    booster, _, _, _, encoders = trained_v3
    proba = predict_proba(booster, splits_v3.test, encoders, "v3")
    assert proba.shape == (len(splits_v3.test), 8)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    truth = np.array([LABEL_SET_V1.index(v) for v in splits_v3.test["label"]])
    assert (proba.argmax(axis=1) == truth).mean() > 0.6


def test_unknown_categories_and_missing_values_predict(trained_v3, splits_v3):
    booster, _, _, _, encoders = trained_v3
    rows = splits_v3.test.head(5).copy()
    rows["app_id"] = "never-seen-app"
    rows["keys_per_min"] = np.nan
    x = encode_features(rows, encoders, "v3")
    assert np.isnan(x[:, FEATURE_COLUMNS_V3.index("keys_per_min")]).all()
    unknown = list(encoders["app_id"].classes_).index("__unknown__")
    assert (x[:, FEATURE_COLUMNS_V3.index("app_id")] == unknown).all()
    proba = predict_proba(booster, rows, encoders, "v3")
    assert np.isfinite(proba).all()


def test_same_inputs_give_byte_identical_bundle_files(splits_v3, layout, tmp_path):
    outs = []
    for i in range(2):
        booster, metrics, cm_df, params, enc = train_lgbm(
            splits_v3.train, splits_v3.val, num_boost_round=ROUNDS, random_state=7
        )
        meta = build_metadata(
            label_set=list(LABEL_SET_V1),
            params=params,
            dataset_hash="x",
            data_provenance="synthetic",
            git_commit="0" * 40,
            train_date_from=date(2026, 1, 5),
            train_date_to=date(2026, 1, 10),
        )
        outs.append(save_model_bundle(tmp_path / f"run-{i}", booster, meta, metrics, cm_df, enc))
    for name in ("model.txt", "metrics.json", "confusion_matrix.csv", "categorical_encoders.json"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name
    other = train_lgbm(splits_v3.train, splits_v3.val, num_boost_round=ROUNDS, random_state=8)
    assert other[0].model_to_string() != (outs[0] / "model.txt").read_text()


def test_bundle_round_trip_predicts_identically(trained_v3, splits_v3, tmp_path):
    booster, metrics, cm_df, params, enc = trained_v3
    meta = build_metadata(label_set=list(LABEL_SET_V1), params=params, git_commit=None)
    run_dir = save_model_bundle(tmp_path / "run", booster, meta, metrics, cm_df, enc)
    loaded, meta2, enc2 = load_model_bundle(run_dir)
    assert meta2.params["best_iteration"] == params["best_iteration"]
    np.testing.assert_array_equal(
        predict_proba(loaded, splits_v3.test, enc2, "v3"),
        predict_proba(booster, splits_v3.test, enc, "v3"),
    )


def test_early_stopping_keeps_only_the_best_iteration():
    # Pure noise: validation loss stops improving almost at once.
    frame = make_labeled_frame(n_users=2, n_days=4, minutes_per_day=40, noise=1.0, seed=3)
    frame["title_token_sketch_000"] = 0.0
    s = split_by_time(frame)
    booster, _, _, params, _ = train_lgbm(
        s.train, s.val, num_boost_round=300, early_stopping_rounds=5, schema_version="v3"
    )
    assert params["best_iteration"] < 300
    assert booster.current_iteration() == params["best_iteration"]


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_older_schemas_train(version):
    frame = make_labeled_frame(n_users=2, n_days=4, minutes_per_day=40, schema_version=version)
    s = split_by_time(frame)
    booster, metrics, _, _, enc = train_lgbm(
        s.train, s.val, num_boost_round=10, schema_version=version
    )
    assert booster.num_feature() == len(FEATURE_COLUMNS if version == "v1" else FEATURE_COLUMNS_V2)
    assert ("user_id" in enc) == (version == "v1")
    assert 0.0 <= metrics["macro_f1"] <= 1.0


def test_balanced_weights_equalize_class_mass():
    y = np.array([0] * 6 + [1] * 3 + [5] * 1)
    w, per_class = sample_weights(y, "balanced")
    mass = np.bincount(y, weights=w, minlength=8)
    np.testing.assert_allclose(mass[[0, 1, 5]], len(y) / 3)
    assert per_class[LABEL_SET_V1[0]] == pytest.approx(10 / 18)
    assert per_class[LABEL_SET_V1[2]] == 1.0  # absent class
    w_none, _ = sample_weights(y, "none")
    assert (w_none == 1.0).all()
    w_val, _ = sample_weights(np.array([1, 0]), "balanced", reference=y)
    np.testing.assert_allclose(w_val, [10 / 9, 10 / 18])


def test_balanced_and_none_give_different_models(splits_v3, trained_v3):
    plain = train_lgbm(splits_v3.train, splits_v3.val, num_boost_round=ROUNDS, class_weight="none")
    assert plain[0].model_to_string() != trained_v3[0].model_to_string()
    assert plain[3]["class_weight"] == "none"


def _tiny(labels: list[str]) -> pd.DataFrame:
    frame = make_labeled_frame(n_users=1, n_days=1, minutes_per_day=len(labels))
    frame["label"] = pd.Series(labels, dtype=object)
    return frame


@pytest.mark.parametrize(
    ("train", "val", "error", "match"),
    [
        (["Build"] * 30, ["Build", "Write"], InputError, "at least two"),
        ([], ["Build"], InputError, "no training rows"),
        (["Build", "Write"] * 10, [], InputError, "no validation rows"),
        (["Build", "Write", "Coding"] * 5, ["Build"], LabelError, "Coding"),
    ],
)
def test_bad_training_input(train, val, error, match):
    train_df = _tiny(train) if train else _tiny(["Build"]).iloc[:0]
    val_df = _tiny(val) if val else _tiny(["Build"]).iloc[:0]
    with pytest.raises(error, match=match):
        train_lgbm(train_df, val_df, num_boost_round=5)


def test_extra_params_cannot_change_the_task():
    with pytest.raises(InputError, match="objective"):
        lgbm_params(extra_params={"objective": "binary"})
    assert lgbm_params(extra_params={"num_leaves": 7})["num_leaves"] == 7
