"""The online fast path (``OnlinePredictor.predict_row``/``flush_idle``) and the JSONL log.

No server here: rows are fed in time order as the online loop feeds them, with the loop's
``flush_idle`` calls in between, and the records must equal ``run_pipeline``'s.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray

from taskclf.core.encoding import encode_features, feature_columns, fit_categorical_encoders
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.online import OnlinePredictor, warm_up
from taskclf.infer.pipeline import PipelineConfig, records_frame, run_pipeline
from taskclf.infer.prediction import OnlineRecordWriter, read_online_records, record_to_json

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
USERS = ("amy", "bob")


class _Temperature:
    """A per-user temperature calibrator (the store's ``calibrate_batch`` protocol)."""

    def __init__(self, temps: dict[str, float]) -> None:
        self.temps = temps

    def calibrate_batch(self, probs: NDArray[np.float64], user_ids: Any) -> NDArray[np.float64]:
        users = np.asarray(user_ids, dtype=str)
        t = np.array([self.temps.get(u, 1.0) for u in users])[:, None]
        logits = np.log(np.clip(probs, 1e-12, 1.0)) / t
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        out: NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
        return out


def _frame(offsets: dict[str, list[int]], seed: int) -> pd.DataFrame:
    """v2 feature rows: user -> minute offsets from T0."""
    rng = np.random.default_rng(seed)
    parts = []
    for user, minutes in offsets.items():
        n = len(minutes)
        data: dict[str, Any] = {c: rng.random(n) for c in feature_columns("v2")}
        data["app_id"] = rng.choice(["code", "slack", "zoom", "chrome"], n)
        data["app_category"] = rng.choice(["editor", "chat", "meeting", "browser"], n)
        data["domain_category"] = rng.choice(["non_browser", "docs"], n)
        data["user_id"] = user
        data["bucket_start_ts"] = [T0 + timedelta(minutes=m) for m in minutes]
        parts.append(pd.DataFrame(data))
    return pd.concat(parts, ignore_index=True)


def _config(model_id: str, seed: int, window: int = 3) -> PipelineConfig:
    df = _frame({"amy": list(range(300))}, seed)
    enc = fit_categorical_encoders(df, "v2")
    x = encode_features(df, enc, "v2")
    y = (x[:, 0] * 5 + x[:, 1] * 3).astype(int) % len(LABEL_SET_V1)
    params = {"objective": "multiclass", "num_class": 8, "verbose": -1, "num_threads": 1}
    params |= {"deterministic": True, "seed": seed, "min_data_in_leaf": 5}
    return PipelineConfig(
        booster=lgb.train(params, lgb.Dataset(x, y), num_boost_round=8),
        cat_encoders=enc,
        schema_version="v2",
        model_id=model_id,
        calibrator_store=_Temperature({"amy": 0.6, "bob": 1.8}),
        reject_threshold=0.3,
        per_user_reject_thresholds={"bob": 0.2},
        smooth_window=window,
        label_mapper=lambda labels: [f"b:{x}" for x in labels],
    )


@pytest.fixture(scope="module")
def config() -> PipelineConfig:
    return _config("m-a", seed=1)


# minute offsets with gaps below, at and above the 5-minute idle gap
_gaps = st.lists(st.sampled_from([1, 1, 1, 2, 5, 6, 7, 30]), min_size=1, max_size=40)


def _offsets(gaps: list[int]) -> list[int]:
    return np.cumsum(gaps).tolist()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(amy=_gaps, bob=_gaps, window=st.sampled_from([1, 3, 5]), seed=st.integers(0, 3))
def test_fast_path_with_idle_flushes_equals_batch(
    config: PipelineConfig, amy: list[int], bob: list[int], window: int, seed: int
) -> None:
    cfg = replace(config, smooth_window=window)
    features = _frame({"amy": _offsets(amy), "bob": _offsets(bob)}, seed=seed + 10)
    batch = run_pipeline(features, cfg).predictions
    predictor = OnlinePredictor(cfg)
    emitted: list[dict[str, Any]] = []
    by_minute = {
        start: rows.sort_values("user_id").to_dict("records")
        for start, rows in features.groupby("bucket_start_ts", sort=True)
    }
    # as the loop does: close each minute (rows or not), then flush users idle long enough
    minute = features["bucket_start_ts"].min()
    while minute <= features["bucket_start_ts"].max() + timedelta(minutes=6):
        for row in by_minute.get(minute, []):
            emitted.extend(predictor.predict_row(row))
        emitted.extend(predictor.flush_idle(minute + timedelta(minutes=1)))
        minute += timedelta(minutes=1)
    # once the idle gap has passed after everyone's last minute, nothing is pending
    assert predictor.pending() == 0
    assert predictor.flush_records() == []
    online = records_frame(emitted)
    assert len(online) == len(features)
    assert [record_to_json(r) for r in online.to_dict("records")] == [
        record_to_json(r) for r in batch.to_dict("records")
    ]


def test_flush_idle_waits_exactly_for_the_idle_gap(config: PipelineConfig) -> None:
    features = _frame({"amy": [0, 1, 2]}, seed=5)
    predictor = OnlinePredictor(config)
    for row in features.to_dict("records"):
        predictor.predict_row(row)
    assert predictor.pending("amy") == 1  # window 3: the last minute waits for one more
    last_end = T0 + timedelta(minutes=3)
    # a minute starting exactly one idle gap after the last one ended would still be bridged
    assert predictor.flush_idle(last_end + timedelta(seconds=300)) == []
    released = predictor.flush_idle(last_end + timedelta(seconds=300, microseconds=1))
    assert [r["bucket_start_ts"] for r in released] == [T0 + timedelta(minutes=2)]
    assert predictor.pending() == 0


def test_records_name_the_model_that_scored_them(config: PipelineConfig) -> None:
    other = _config("m-b", seed=2)
    features = _frame({"amy": list(range(6))}, seed=6)
    rows = features.to_dict("records")
    predictor = OnlinePredictor(config)
    out = [r for row in rows[:3] for r in predictor.predict_row(row)]
    predictor.swap_config(other)  # minute 2 is still pending, scored by m-a
    out += [r for row in rows[3:] for r in predictor.predict_row(row)]
    out += predictor.flush_records()
    assert [r["model_id"] for r in out] == ["m-a"] * 3 + ["m-b"] * 3
    expected_a = run_pipeline(features, config).predictions["core_probs"].tolist()[:3]
    expected_b = run_pipeline(features, other).predictions["core_probs"].tolist()[3:]
    assert [r["core_probs"] for r in out] == expected_a + expected_b


def test_warm_up_leaves_the_predictor_as_it_was(config: PipelineConfig) -> None:
    """The made-up minutes that compile the online path go through a scratch predictor."""
    features = _frame({"amy": list(range(6))}, seed=7)
    rows = features.to_dict("records")
    predictor = OnlinePredictor(config)
    out = [r for row in rows[:4] for r in predictor.predict_row(row)]
    pending = predictor.pending()
    assert warm_up(config, "Europe/Warsaw", predictor) >= 0.0
    assert predictor.pending() == pending and predictor.pending("warm-up") == 0
    out += [r for row in rows[4:] for r in predictor.predict_row(row)]
    out += predictor.flush_records()
    assert {r["user_id"] for r in out} == {"amy"}
    expected = run_pipeline(features, config).predictions
    assert [r["core_probs"] for r in out] == expected["core_probs"].tolist()


@settings(max_examples=30, deadline=None)
@given(minute=st.integers(0, 10**7), micro=st.sampled_from([0, 1, 999_999]))
def test_record_json_is_the_same_for_datetime_and_timestamp(minute: int, micro: int) -> None:
    ts = T0 + timedelta(minutes=minute, microseconds=micro)
    base = {
        "user_id": "amy",
        "core_label": "Build",
        "confidence": 0.123456789012345,
        "is_rejected": False,
        "predicted_label": "Build",
        "mapped_label": "Deep work",
        "core_probs": "[1.0]",
        "model_id": "m",
    }
    as_datetime = record_to_json({**base, "bucket_start_ts": ts})
    as_timestamp = record_to_json({**base, "bucket_start_ts": pd.Timestamp(ts)})
    as_other_zone = record_to_json(
        {**base, "bucket_start_ts": pd.Timestamp(ts).tz_convert("Asia/Kolkata")}
    )
    assert as_datetime == as_timestamp == as_other_zone
    assert json.loads(as_datetime)["bucket_start_ts"] == ts.isoformat()


@settings(max_examples=20, deadline=None)
@given(keep=st.integers(1, 3), cut=st.floats(0.01, 0.99))
def test_append_cuts_a_torn_last_line(
    config: PipelineConfig, tmp_path_factory: pytest.TempPathFactory, keep: int, cut: float
) -> None:
    path = tmp_path_factory.mktemp("log") / "day.jsonl"
    predictor = OnlinePredictor(config)
    records = [
        r
        for row in _frame({"amy": list(range(8))}, seed=7).to_dict("records")
        for r in predictor.predict_row(row)
    ] + predictor.flush_records()
    with OnlineRecordWriter(path) as writer:
        writer.write(records[:keep])
    torn = record_to_json(records[keep])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(torn[: max(1, int(len(torn) * cut))])  # a crash mid-append
    assert len(read_online_records(path)) == keep  # the torn tail is ignored on read
    with OnlineRecordWriter(path) as writer:  # a restart: the torn line is cut at open
        writer.write(records[keep:])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == [record_to_json(r) for r in records]
    pd.testing.assert_frame_equal(read_online_records(path), records_frame(records))
