"""The online path's one-row forms equal the batch forms they stand in for, bit for bit.

``score_row`` vs ``score_matrix``, ``round_confidence`` vs ``np.round``, and the JSON texts
(``probs_to_json``, ``record_to_json``) vs ``json.dumps`` of the same values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from taskclf.core.encoding import feature_columns, fit_categorical_encoders
from taskclf.core.errors import InputError
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer._online_scorer import OnlineScorer
from taskclf.infer.calibration import (
    CalibratorStore,
    IsotonicCalibrator,
    IsotonicMap,
    TemperatureCalibrator,
)
from taskclf.infer.pipeline import (
    PipelineConfig,
    round_confidence,
    score_matrix,
    score_row,
)
from taskclf.infer.prediction import probs_to_json, record_to_json

K = len(LABEL_SET_V1)
USERS = ("amy", "bob", "cy")


def _isotonic(seed: int) -> IsotonicCalibrator:
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(K):
        x = np.sort(rng.choice(np.linspace(0.0, 1.0, 51), size=4, replace=False))
        maps.append(IsotonicMap(tuple(x), tuple(np.sort(rng.random(4)))))
    return IsotonicCalibrator(tuple(maps))


def _stores() -> dict[str, CalibratorStore | None]:
    return {
        "none": None,
        "temperature": CalibratorStore(
            TemperatureCalibrator(1.3),
            {"amy": TemperatureCalibrator(0.55), "bob": TemperatureCalibrator(2.4)},
            "temperature",
        ),
        "isotonic": CalibratorStore(_isotonic(1), {"bob": _isotonic(2)}, "isotonic"),
    }


STORES = _stores()


def _config(store: CalibratorStore | None) -> PipelineConfig:
    frame = pd.DataFrame({c: [0.0] for c in feature_columns("v2")})
    for col in ("app_id", "app_category", "domain_category"):
        frame[col] = ["x"]
    return PipelineConfig(
        booster=None,
        cat_encoders=fit_categorical_encoders(frame, "v2"),
        schema_version="v2",
        model_id="m",
        calibrator_store=store,
        reject_threshold=0.35,
        per_user_reject_thresholds={"bob": 0.2, "cy": 0.6},
    )


# model-like rows: positive, summing to about 1, some near ties and some tiny entries
_prob_rows = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 30), st.just(K)),
    elements=st.one_of(st.floats(1e-9, 1.0), st.just(0.125), st.floats(0.0, 1e-6)),
)


@pytest.mark.parametrize("store", sorted(STORES))
@settings(max_examples=40, deadline=None)
@given(raw=_prob_rows, seed=st.integers(0, 2**16))
def test_score_row_equals_score_matrix(store: str, raw: np.ndarray, seed: int) -> None:
    config = _config(STORES[store])
    raw = raw / raw.sum(axis=1, keepdims=True) if (raw.sum(axis=1) > 0).all() else raw
    users = np.random.default_rng(seed).choice(USERS, len(raw)).astype(object)
    batch = score_matrix(config, raw, users)
    for i, user in enumerate(users):
        one = score_row(config, raw[i : i + 1], str(user))
        assert np.array_equal(one.probs, batch.probs[i])
        assert one.core_index == int(batch.core_index[i])
        assert one.confidence == float(batch.confidence[i])
        assert one.is_rejected == bool(batch.is_rejected[i])
        assert round_confidence(one.confidence) == float(np.round(batch.confidence, 10)[i])


@pytest.mark.parametrize("store", sorted(STORES))
@settings(max_examples=40, deadline=None)
@given(raw=_prob_rows, seed=st.integers(0, 2**16))
def test_online_scorer_equals_score_row(store: str, raw: np.ndarray, seed: int) -> None:
    """The compiled steps around numpy's log and exp give score_row's bits (every store)."""
    config = _config(STORES[store])
    scorer = OnlineScorer(config)
    users = np.random.default_rng(seed).choice(USERS, len(raw))
    for i, user in enumerate(users.tolist()):
        want = score_row(config, raw[i : i + 1], user)
        got = scorer.score(raw[i], user)
        assert np.array_equal(got.probs, want.probs)
        assert (got.core_index, got.confidence, got.is_rejected) == (
            want.core_index,
            want.confidence,
            want.is_rejected,
        )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -0.1])
def test_online_scorer_reports_bad_probabilities_as_score_row_does(bad: float) -> None:
    config = _config(STORES["temperature"])
    raw = np.full(K, 1.0 / K)
    raw[3] = bad
    with pytest.raises(InputError, match="finite and >= 0") as want:
        score_row(config, raw.reshape(1, -1), "amy")
    with pytest.raises(InputError) as got:
        OnlineScorer(config).score(raw, "amy")
    assert str(got.value) == str(want.value)


def test_score_row_uses_the_users_threshold_and_calibrator() -> None:
    config = _config(STORES["temperature"])
    raw = np.array([[0.5, 0.2, 0.1, 0.08, 0.05, 0.03, 0.02, 0.02]])
    scored = {u: score_row(config, raw, u) for u in USERS}
    assert scored["bob"].confidence < raw[0, 0] < scored["amy"].confidence  # T > 1, T < 1
    assert not scored["bob"].is_rejected  # below the global 0.35, above bob's 0.2
    assert scored["cy"].is_rejected  # cy's own threshold 0.6
    assert not scored["amy"].is_rejected


@settings(max_examples=300, deadline=None)
@given(value=st.floats(allow_nan=True, allow_infinity=True))
def test_round_confidence_equals_numpy_round(value: float) -> None:
    with np.errstate(over="ignore", invalid="ignore"):  # huge values overflow in both
        expected = float(np.round(value, 10))
        got = round_confidence(value)
    assert got == expected or (np.isnan(got) and np.isnan(expected))
    assert np.signbit(got) == np.signbit(expected)


def test_round_confidence_equals_numpy_round_on_many_probabilities() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [
            rng.random(200_000),
            rng.random(50_000) * 1e-6,
            (np.arange(1, 20_001) + 0.5) * 1e-10,  # halfway points (to the nearest double)
            [0.0, -0.0, 1.0, 5e-11, 1.5e-10, 2.5e-10, -2.5e-11],
        ]
    )
    expected = np.round(values, 10)
    got = np.array([round_confidence(v) for v in values.tolist()])
    assert np.array_equal(got, expected)
    assert np.array_equal(np.signbit(got), np.signbit(expected))


def _probs_reference(probs: Any) -> str:
    return json.dumps([round(float(p), 10) for p in probs], separators=(",", ":"))


@settings(max_examples=200, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=10),
    dtype=st.sampled_from([np.float64, np.float32]),
)
def test_probs_json_equals_json_dumps(values: list[float], dtype: type) -> None:
    assert probs_to_json(values) == _probs_reference(values)
    with np.errstate(over="ignore"):
        array = np.asarray(values, dtype=dtype)
    assert probs_to_json(array) == _probs_reference(array)


def _record_reference(record: dict[str, Any]) -> str:
    """The record's JSON as ``json.dumps`` writes it (the format's definition)."""
    ts = pd.Timestamp(record["bucket_start_ts"]).tz_convert(UTC).isoformat()
    obj = {
        "user_id": str(record["user_id"]),
        "bucket_start_ts": ts,
        "core_label": str(record["core_label"]),
        "confidence": round(float(record["confidence"]), 10),
        "is_rejected": bool(record["is_rejected"]),
        "predicted_label": str(record["predicted_label"]),
        "mapped_label": str(record["mapped_label"]),
        "core_probs": str(record["core_probs"]),
        "model_id": str(record["model_id"]),
    }
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


_T0 = datetime(2026, 3, 29, 0, 30, tzinfo=UTC)  # around a DST switch in Europe


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(st.text(max_size=12), min_size=6, max_size=6),
    confidence=st.floats(allow_nan=True, allow_infinity=True),
    rejected=st.sampled_from([True, False, np.True_, np.False_]),
    minute=st.integers(0, 600),
    zone=st.sampled_from([UTC, ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata")]),
    as_timestamp=st.booleans(),
)
def test_record_json_equals_json_dumps(
    text: list[str],
    confidence: float,
    rejected: bool,
    minute: int,
    zone: Any,
    as_timestamp: bool,
) -> None:
    start = (_T0 + timedelta(minutes=minute)).astimezone(zone)
    record = {
        "user_id": text[0],
        "bucket_start_ts": pd.Timestamp(start) if as_timestamp else start,
        "core_label": text[1],
        "confidence": confidence,
        "is_rejected": rejected,
        "predicted_label": text[2],
        "mapped_label": text[3],
        "core_probs": text[4],
        "model_id": text[5],
    }
    line = record_to_json(record)
    assert line == _record_reference(record)
    if np.isfinite(confidence):
        assert json.loads(line)["user_id"] == text[0]
