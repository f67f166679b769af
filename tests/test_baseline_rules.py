"""Rule baseline: every rule of the table, priorities, NaN inputs and probability contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.defaults import DEFAULT_REJECT_THRESHOLD
from taskclf.core.errors import SchemaError
from taskclf.core.schema import FeatureSchemaV3
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.baseline import (
    BASELINE_PROB_COLUMNS,
    RULES,
    baseline_probabilities,
    predict_baseline,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NAN = float("nan")

# A neutral minute: an unknown app, somewhat active, no input watcher.
NEUTRAL: dict[str, Any] = {
    "app_category": "other",
    "domain_category": "non_browser",
    "is_browser": False,
    "is_editor": False,
    "is_terminal": False,
    "active_seconds_any": 40.0,
    "max_idle_run_seconds": 5.0,
    "keys_per_min": NAN,
    "scroll_events_per_min": NAN,
}
BROWSER = {"app_category": "browser", "is_browser": True, "domain_category": "other"}
EDITOR = {"app_category": "editor", "is_editor": True}

# One minute per rule that this rule (and no earlier rule) decides.
RULE_CASES: dict[str, dict[str, Any]] = {
    "lockscreen": {"app_category": "lockscreen", "keys_per_min": 80.0},
    "no_window": {"app_category": "none"},
    "idle_run": {"max_idle_run_seconds": 50.0, **EDITOR},
    "inactive": {"active_seconds_any": 2.0, **BROWSER},
    "meeting": {"app_category": "meeting"},
    "messaging": {**BROWSER, "domain_category": "email_web"},
    "code_review_web": {**BROWSER, "domain_category": "code_hosting"},
    "editor_typing": {**EDITOR, "keys_per_min": 60.0},
    "terminal_devtools": {"app_category": "terminal", "is_terminal": True},
    "editor": {**EDITOR, "keys_per_min": 5.0},
    "docs_typing": {"app_category": "docs", "keys_per_min": 45.0},
    "docs": {"app_category": "docs"},
    "reading_web": {**BROWSER, "domain_category": "search"},
    "scrolling_browser": {**BROWSER, "scroll_events_per_min": 12.0, "keys_per_min": 2.0},
    "design": {"app_category": "design"},
    "leisure": {"app_category": "media"},
    "browser": {**BROWSER, "scroll_events_per_min": 12.0, "keys_per_min": 40.0},
    "typing_elsewhere": {"keys_per_min": 30.0},
    "fallback": {},
}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame([{**NEUTRAL, **row} for row in rows], columns=list(NEUTRAL))
    df.insert(0, "user_id", "ann")
    df.insert(1, "bucket_start_ts", pd.date_range(T0, periods=len(rows), freq="min", tz="UTC"))
    return df


def test_rule_table_is_complete():
    assert [rule.name for rule in RULES] == list(RULE_CASES)
    assert all(rule.label in LABEL_SET_V1 for rule in RULES)
    assert all(1 / len(LABEL_SET_V1) < rule.strength < 1 for rule in RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.name)
def test_each_rule_fires(rule):
    out = predict_baseline(_frame([RULE_CASES[rule.name]]))
    assert out["rule"].iloc[0] == rule.name
    assert out["core_label"].iloc[0] == rule.label
    assert out["confidence"].iloc[0] == pytest.approx(rule.strength)


def test_priority_and_missing_input_features():
    out = predict_baseline(
        _frame(
            [
                {**EDITOR, "keys_per_min": NAN},  # no input watcher: not "typing"
                {**EDITOR, "active_seconds_any": NAN, "max_idle_run_seconds": NAN},
                {"app_category": "lockscreen", "active_seconds_any": 60.0, "keys_per_min": 90.0},
                {**BROWSER, "scroll_events_per_min": 20.0, "keys_per_min": NAN},
            ]
        )
    )
    assert out["rule"].tolist() == ["editor", "editor", "lockscreen", "scrolling_browser"]
    assert out["core_label"].tolist() == ["Build", "Build", "BreakIdle", "ReadResearch"]


def test_output_contract_and_index():
    rows = [RULE_CASES[rule.name] for rule in RULES]
    df = _frame(rows)
    df.index = pd.Index([f"r{i}" for i in range(len(df))])
    out = predict_baseline(df)
    assert list(out.index) == list(df.index)
    assert list(out.columns) == [
        "user_id",
        "bucket_start_ts",
        "core_label",
        "confidence",
        "rule",
        *BASELINE_PROB_COLUMNS,
    ]
    probs = out[list(BASELINE_PROB_COLUMNS)].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    np.testing.assert_array_equal(probs, baseline_probabilities(df))
    assert [LABEL_SET_V1[i] for i in probs.argmax(axis=1)] == out["core_label"].tolist()
    np.testing.assert_allclose(out["confidence"], probs.max(axis=1))
    # Weak rules fall below the default reject threshold; strong ones pass it.
    weak = {rule.name for rule in RULES if rule.strength < DEFAULT_REJECT_THRESHOLD}
    assert weak == {"editor", "design", "leisure", "browser", "typing_elsewhere", "fallback"}


ROW = st.fixed_dictionaries(
    {
        "app_category": st.sampled_from(
            ["browser", "editor", "terminal", "chat", "meeting", "docs", "media", "none", "x"]
        ),
        "domain_category": st.sampled_from(
            ["non_browser", "unknown", "search", "code_hosting", "video", "chat", "other"]
        ),
        "is_browser": st.booleans(),
        "is_editor": st.booleans(),
        "is_terminal": st.booleans(),
        "active_seconds_any": st.one_of(st.just(NAN), st.floats(0, 60)),
        "max_idle_run_seconds": st.one_of(st.just(NAN), st.floats(0, 60)),
        "keys_per_min": st.one_of(st.just(NAN), st.floats(0, 300)),
        "scroll_events_per_min": st.one_of(st.just(NAN), st.floats(0, 100)),
    }
)


@settings(max_examples=40, deadline=None)
@given(rows=st.lists(ROW, min_size=1, max_size=30))
def test_probability_contract_property(rows):
    out = predict_baseline(_frame(rows))
    probs = out[list(BASELINE_PROB_COLUMNS)].to_numpy()
    assert np.all(probs > 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    strengths = {rule.name: rule.strength for rule in RULES}
    np.testing.assert_allclose(out["confidence"], out["rule"].map(strengths).to_numpy(float))
    # Row order does not matter: each row is decided on its own.
    reversed_out = predict_baseline(_frame(rows[::-1]))
    assert reversed_out["rule"].tolist() == out["rule"].tolist()[::-1]


def _v3_frame(n: int) -> pd.DataFrame:
    defaults = {"str": "x", "bool": False, "int": 0, "float": 0.0, "list": ["w"], "datetime": T0}
    data: dict[str, Any] = {
        spec.name: [defaults[spec.type]] * n for spec in FeatureSchemaV3.COLUMN_SPECS
    }
    starts = pd.date_range(T0, periods=n, freq="min", tz="UTC")
    data.update(
        bucket_start_ts=starts,
        bucket_end_ts=starts + timedelta(minutes=1),
        schema_version="v3",
        schema_hash=FeatureSchemaV3.SCHEMA_HASH,
        device_id=None,
        app_category=["editor", "browser", "chat"][:n],
        is_editor=[True, False, False][:n],
        is_browser=[False, True, False][:n],
        domain_category=["non_browser", "search", "non_browser"][:n],
        active_seconds_any=[50.0, 45.0, 30.0][:n],
        keys_per_min=[80.0, NAN, NAN][:n],
    )
    return pd.DataFrame(data)


def test_full_v3_feature_frame():
    df = _v3_frame(3)
    FeatureSchemaV3.validate_dataframe(df)
    out = predict_baseline(df)
    assert out["core_label"].tolist() == ["Build", "ReadResearch", "Communicate"]
    assert out["user_id"].tolist() == ["x"] * 3


def test_missing_or_bad_columns_are_schema_errors():
    df = _frame([{}]).drop(columns=["keys_per_min", "domain_category"])
    with pytest.raises(SchemaError, match=r"\['domain_category', 'keys_per_min'\]"):
        predict_baseline(df)
    bad = _frame([{}])
    bad["keys_per_min"] = "fast"
    with pytest.raises(SchemaError, match="keys_per_min"):
        predict_baseline(bad)


def test_empty_frame():
    out = predict_baseline(_frame([]))
    assert out.empty and "core_label" in out.columns
