"""Batch and online run the same pipeline: identical records for the same minutes."""

from __future__ import annotations

import functools
import json

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.encoding import (
    MatrixEncoder,
    encode_features,
    feature_columns,
    fit_categorical_encoders,
)
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.online import OnlinePredictor
from taskclf.infer.pipeline import (
    PipelineConfig,
    predict_frame,
    predict_raw,
    run_pipeline,
    segments_of,
)
from taskclf.infer.prediction import record_to_json
from taskclf.infer.smooth import merge_short_segments, rolling_majority_by_user, segmentize


class _PerUserTemperature:
    def __init__(self, temps: dict[str, float]) -> None:
        self.temps = temps

    def calibrate_batch(self, probs, user_ids):
        out = np.empty_like(probs)
        users = np.asarray(user_ids, dtype=str)
        for u in np.unique(users):
            m = users == u
            logits = np.log(np.clip(probs[m], 1e-12, 1)) / self.temps.get(u, 1.0)
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            out[m] = e / e.sum(axis=1, keepdims=True)
        return out


def _features(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = feature_columns("v2")
    frames = []
    for user, offset in (("alice", 0), ("bob", 7)):
        starts = pd.date_range("2026-01-05 09:00", periods=120, freq="min", tz="UTC")
        starts = starts.delete(range(50, 60))  # a 10-minute gap (> idle gap)
        n = len(starts)
        data = {c: rng.random(n) for c in cols}
        data["app_id"] = rng.choice(["code", "slack", "zoom", "chrome"], n)
        data["app_category"] = rng.choice(["editor", "chat", "meeting", "browser"], n)
        data["domain_category"] = rng.choice(["non_browser", "docs"], n)
        frame = pd.DataFrame(data)
        frame["user_id"] = user
        frame["bucket_start_ts"] = starts + pd.Timedelta(seconds=offset * 0)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    df = _features()
    enc = fit_categorical_encoders(df, "v2")
    x = encode_features(df, enc, "v2")
    y = (x[:, 0] * 4 + x[:, 1] * 4).astype(int) % len(LABEL_SET_V1)
    params = {
        "objective": "multiclass",
        "num_class": 8,
        "verbose": -1,
        "num_threads": 1,
        "deterministic": True,
        "seed": 1,
        "min_data_in_leaf": 5,
    }
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=10)
    return PipelineConfig(
        booster=booster,
        cat_encoders=enc,
        schema_version="v2",
        model_id="m-test",
        calibrator_store=_PerUserTemperature({"alice": 0.7, "bob": 1.6}),
        reject_threshold=0.3,
        per_user_reject_thresholds={"bob": 0.25},
        label_mapper=lambda labels: [f"bucket:{x}" for x in labels],
    )


def test_online_records_equal_batch_records(config):
    features = _features()
    batch = run_pipeline(features, config).predictions
    online = OnlinePredictor(config)
    emitted = []
    order = features.sort_values(["bucket_start_ts", "user_id"], kind="mergesort")
    for row in order.to_dict("records"):
        emitted.append(online.predict_bucket(row))
    emitted.append(online.flush())
    online_df = pd.concat(emitted, ignore_index=True).sort_values(
        ["user_id", "bucket_start_ts"], kind="mergesort"
    )
    assert len(online_df) == len(batch) == len(features)
    assert not online_df.duplicated(["user_id", "bucket_start_ts"]).any()
    batch_lines = [record_to_json(r) for r in batch.to_dict("records")]
    online_lines = [record_to_json(r) for r in online_df.to_dict("records")]
    assert online_lines == batch_lines


def test_pipeline_semantics(config):
    features = _features()
    result = run_pipeline(features, config)
    p = result.predictions
    probs = np.array([json.loads(x) for x in p["core_probs"]])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-8)
    assert (p["confidence"].to_numpy() == probs.max(axis=1).round(10)).all()
    thr = np.where(p["user_id"] == "bob", 0.25, 0.3)
    np.testing.assert_array_equal(p["is_rejected"].to_numpy(), p["confidence"].to_numpy() < thr)
    assert set(p["predicted_label"]) <= {*LABEL_SET_V1, MIXED_UNKNOWN}
    assert (p["mapped_label"] == "bucket:" + p["predicted_label"]).all()
    # segments partition each user's minutes and never span the 10-minute gap
    assert sum(s.bucket_count for s in result.segments) == len(p)
    gap_start = pd.Timestamp("2026-01-05 09:50", tz="UTC")
    for seg in result.segments:
        assert not (seg.start_ts < gap_start < seg.end_ts)


def test_batch_is_deterministic(config):
    a = run_pipeline(_features(), config).predictions
    b = run_pipeline(_features().sample(frac=1, random_state=3), config).predictions
    pd.testing.assert_frame_equal(a, b)


def test_prediction_partitions_round_trip(config, tmp_path):
    from datetime import date

    from taskclf.core.paths import Layout
    from taskclf.infer.prediction import (
        local_dates,
        read_prediction_partitions,
        write_prediction_partitions,
    )

    layout = Layout.resolve(tmp_path)
    preds = run_pipeline(_features(), config).predictions
    shuffled = preds.sample(frac=1, random_state=1)
    days = local_dates(
        shuffled["bucket_start_ts"], shuffled["user_id"], {"bob": "Pacific/Kiritimati"}, "UTC"
    )
    paths = write_prediction_partitions(layout, shuffled, days)
    assert len(paths) == 3  # alice: 01-05; bob (UTC+14): 23:00 on 01-05 to 01:00 on 01-06
    back = read_prediction_partitions(layout, date(2026, 1, 4), date(2026, 1, 6))
    pd.testing.assert_frame_equal(back, preds)


def test_chunked_prediction_equals_whole_matrix_prediction(config, monkeypatch):
    df = _features(3)
    whole = predict_raw(config, config.encoder().encode_frame(df))
    monkeypatch.setattr(
        MatrixEncoder,
        "iter_chunks",
        functools.partialmethod(MatrixEncoder.iter_chunks, chunk_rows=7),
    )  # many chunks and a short tail
    np.testing.assert_array_equal(predict_frame(config, df), whole)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pipeline_smoothing_and_segments_equal_the_smooth_functions(config, seed):
    features = _features(seed).sample(frac=1, random_state=seed)  # any input order
    result = run_pipeline(features, config)
    p = result.predictions
    reject_labels = np.where(p["is_rejected"], MIXED_UNKNOWN, p["core_label"]).tolist()
    expected = rolling_majority_by_user(
        p["user_id"].tolist(),
        reject_labels,
        config.smooth_window,
        bucket_starts=p["bucket_start_ts"],
    )
    assert p["predicted_label"].tolist() == expected
    segments = merge_short_segments(
        segmentize(p["bucket_start_ts"], expected, user_ids=p["user_id"].tolist()),
        config.min_block_seconds,
    )
    assert result.segments == segments
    assert segments_of(config, p.sample(frac=1, random_state=1)) == segments
