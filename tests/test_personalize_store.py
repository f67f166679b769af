"""fit_calibrator_store on feature frames with a real LightGBM booster; eligibility checks."""

from __future__ import annotations

from datetime import UTC, datetime

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from taskclf.core.encoding import encode_features, feature_columns, fit_categorical_encoders
from taskclf.core.errors import InputError, LabelError, SchemaError
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.calibration import TemperatureCalibrator
from taskclf.train.calibrate import (
    IsotonicSmallSampleWarning,
    PersonalizationEligibility,
    check_personalization_eligible,
    fit_calibrator_store,
    fit_calibrator_store_with_report,
    predict_core_probs,
)

ROWS_PER_DAY = 80
START = pd.Timestamp("2026-02-02T08:00:00Z")


def _frame(users: dict[str, int], schema: str = "v3", seed: int = 0) -> pd.DataFrame:
    """Feature rows: ``users`` maps user -> number of days (ROWS_PER_DAY minutes each)."""
    rng = np.random.default_rng(seed)
    parts = []
    for u_idx, (user, days) in enumerate(users.items()):
        n = days * ROWS_PER_DAY
        day = np.repeat(np.arange(days), ROWS_PER_DAY)
        minute = np.tile(np.arange(ROWS_PER_DAY), days)
        ts = START + pd.to_timedelta(day, unit="D") + pd.to_timedelta(minute, unit="min")
        part = {c: rng.random(n) for c in feature_columns(schema)}
        label_idx = rng.integers(0, len(LABEL_SET_V1), size=n)
        # a noisy signal: one feature carries the label, more sharply for some users
        part["keys_per_min"] = label_idx + rng.normal(scale=0.6 + u_idx * 0.3, size=n)
        part["app_id"] = rng.choice(["code", "slack", "zoom"], size=n)
        part["app_category"] = rng.choice(["editor", "chat"], size=n)
        part["domain_category"] = "non_browser"
        part |= {
            "bucket_start_ts": ts,
            "schema_version": schema,
            "label": np.asarray(LABEL_SET_V1, dtype=object)[label_idx],
        }
        if schema != "v2":
            part["user_id"] = user
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def trained() -> tuple[lgb.Booster, dict]:
    train = _frame({"t1": 3, "t2": 3}, seed=1)
    encoders = fit_categorical_encoders(train, "v3")
    x = encode_features(train, encoders, "v3")
    y = train["label"].map({lab: i for i, lab in enumerate(LABEL_SET_V1)}).to_numpy()
    params = {
        "objective": "multiclass",
        "num_class": len(LABEL_SET_V1),
        "verbose": -1,
        "num_threads": 1,
        "seed": 0,
        "deterministic": True,
    }
    return lgb.train(params, lgb.Dataset(x, label=y), num_boost_round=15), encoders


def test_fit_calibrator_store_returns_store_and_one_eligibility_per_user(trained: tuple) -> None:
    booster, encoders = trained
    df = _frame({"zed": 4, "amy": 4, "bob": 1}, seed=2)
    store, reports = fit_calibrator_store(
        booster,
        df.sample(frac=1.0, random_state=0),  # row order must not matter
        cat_encoders=encoders,
        model_bundle_id="2026-02-10_120000_run-0001",
        model_schema_hash="7f29b4b8795e",
    )
    assert [r.user_id for r in reports] == ["amy", "bob", "zed"]
    assert all(isinstance(r, PersonalizationEligibility) for r in reports)
    for r in reports:
        assert r == check_personalization_eligible(df, r.user_id)
    assert not reports[1].is_eligible  # bob: 80 windows, 1 day
    assert store.model_bundle_id == "2026-02-10_120000_run-0001"
    assert store.model_schema_hash == "7f29b4b8795e"
    assert store.method == "temperature"
    assert set(store.user_ids) <= {"amy", "zed"}
    assert isinstance(store.global_calibrator, TemperatureCalibrator)


def test_report_numbers_are_consistent(trained: tuple) -> None:
    booster, encoders = trained
    df = _frame({"amy": 4, "zed": 4}, seed=3)
    report = fit_calibrator_store_with_report(booster, df, cat_encoders=encoders)
    assert report.n_rows == len(df)
    assert report.nll_global <= report.nll_raw  # fitted on the same rows
    for u in report.users:
        assert u.is_eligible and u.nll_personal_cv is not None
        assert u.kept == (u.user_id in report.store.user_ids)
        assert u.reason.startswith("kept:" if u.kept else "fallback:")
        assert "3-fold by day" in u.reason
        assert u.nll_gain is not None and u.nll_gain_se is not None and u.gain_blocks == 4
        assert u.kept == (u.nll_gain > report.min_gain and u.nll_gain >= 1.645 * u.nll_gain_se)
    data = report.to_json()
    assert data["personalized_users"] == report.store.user_ids
    assert [u["user_id"] for u in data["users"]] == ["amy", "zed"]
    assert data["keep_z"] == 1.645 and data["design_effect"] >= 1.0
    assert {"nll_gain", "nll_gain_se", "gain_blocks"} <= set(data["users"][0])


def test_isotonic_method_warns_on_small_users(trained: tuple) -> None:
    booster, encoders = trained
    df = _frame({"amy": 4, "zed": 4}, seed=4)
    with pytest.warns(IsotonicSmallSampleWarning, match="fewer than 1000 rows"):
        store, _ = fit_calibrator_store(booster, df, cat_encoders=encoders, method="isotonic")
    assert store.method == "isotonic"
    out = store.calibrate_batch(np.full((2, 8), 1 / 8), ["amy", "nobody"])
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_predictions_use_the_bundle_label_order(trained: tuple) -> None:
    booster, encoders = trained
    df = _frame({"amy": 1}, seed=5)
    proba = predict_core_probs(booster, df, encoders)
    x = encode_features(df, encoders, "v3")
    np.testing.assert_array_equal(proba, booster.predict(x))
    assert proba.shape == (len(df), len(LABEL_SET_V1))


def test_missing_encoders_unknown_labels_and_mixed_schemas_are_errors(trained: tuple) -> None:
    booster, encoders = trained
    df = _frame({"amy": 1}, seed=6)
    with pytest.raises(InputError, match="cat_encoders is required"):
        fit_calibrator_store(booster, df)
    bad = df.copy()
    bad.loc[7, "label"] = "Coding"
    with pytest.raises(LabelError, match="row 7: label 'Coding'"):
        fit_calibrator_store(booster, bad, cat_encoders=encoders)
    bad = df.copy()
    bad.loc[3, "label"] = None
    with pytest.raises(LabelError, match="row 3"):
        fit_calibrator_store(booster, bad, cat_encoders=encoders)
    mixed = df.copy()
    mixed.loc[0, "schema_version"] = "v2"
    with pytest.raises(SchemaError, match="one schema_version"):
        fit_calibrator_store(booster, mixed, cat_encoders=encoders)
    with pytest.raises(InputError, match="empty"):
        fit_calibrator_store(booster, df.iloc[:0], cat_encoders=encoders)
    naive = df.copy()
    naive["bucket_start_ts"] = naive["bucket_start_ts"].dt.tz_localize(None)
    with pytest.raises(SchemaError, match="tz-aware"):
        fit_calibrator_store(booster, naive, cat_encoders=encoders)


def test_a_frame_without_user_ids_gets_a_global_calibrator_only() -> None:
    train = _frame({"x": 2}, schema="v2", seed=7)
    encoders = fit_categorical_encoders(train, "v2")
    y = train["label"].map({lab: i for i, lab in enumerate(LABEL_SET_V1)}).to_numpy()
    params = {"objective": "multiclass", "num_class": 8, "verbose": -1, "num_threads": 1}
    booster = lgb.train(
        params, lgb.Dataset(encode_features(train, encoders, "v2"), label=y), num_boost_round=3
    )
    store, reports = fit_calibrator_store(
        booster, _frame({"x": 4}, schema="v2", seed=8), cat_encoders=encoders, min_windows=1
    )
    assert reports == [] and store.user_ids == []


def test_eligibility_counts_and_thresholds() -> None:
    df = _frame({"amy": 3}, seed=9)
    report = check_personalization_eligible(df, "amy")
    assert (report.labeled_windows, report.labeled_days) == (3 * ROWS_PER_DAY, 3)
    assert report.distinct_labels == df["label"].nunique() and report.is_eligible
    assert not check_personalization_eligible(df, "amy", min_windows=241).is_eligible
    assert not check_personalization_eligible(df, "amy", min_days=4).is_eligible
    assert not check_personalization_eligible(df, "amy", min_labels=9).is_eligible
    absent = check_personalization_eligible(df, "nobody")
    assert absent == PersonalizationEligibility(
        user_id="nobody",
        labeled_windows=0,
        labeled_days=0,
        distinct_labels=0,
        is_eligible=False,
    )


def test_eligibility_days_follow_the_users_time_zone() -> None:
    # 22:00 and 23:30 UTC on two days: two UTC days, but in UTC+3 they fall on the next days
    stamps = [
        datetime(2026, 2, d, h, m, tzinfo=UTC) for d in (2, 3) for h, m in ((10, 0), (23, 30))
    ]
    df = pd.DataFrame(
        {"user_id": "amy", "bucket_start_ts": pd.to_datetime(stamps), "label": "Build"}
    )
    assert check_personalization_eligible(df, "amy").labeled_days == 2
    assert check_personalization_eligible(df, "amy", timezone="Europe/Istanbul").labeled_days == 3
    with pytest.raises(SchemaError, match="'label'"):
        check_personalization_eligible(df.drop(columns="label"), "amy")
