from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from taskclf.core.errors import SchemaError
from taskclf.core.schema import (
    FeatureSchemaV1,
    FeatureSchemaV2,
    FeatureSchemaV3,
    compute_schema_hash,
    get_schema,
)


@pytest.mark.parametrize(
    ("schema", "expected_hash", "n_columns"),
    [
        (FeatureSchemaV1, "4077fe0dba70", 47),
        (FeatureSchemaV2, "a15f4751a947", 46),
        (FeatureSchemaV3, "7f29b4b8795e", 308),
    ],
)
def test_schema_hash_and_column_count(schema, expected_hash, n_columns):
    assert expected_hash == schema.SCHEMA_HASH
    assert len(schema.COLUMNS) == n_columns
    assert compute_schema_hash(schema.COLUMN_SPECS) == expected_hash


def test_feature_columns_exclude_identifiers():
    assert "user_id" in FeatureSchemaV1.feature_columns()
    assert "user_id" not in FeatureSchemaV2.feature_columns()
    assert "user_id" not in FeatureSchemaV3.feature_columns()
    for schema in (FeatureSchemaV1, FeatureSchemaV2, FeatureSchemaV3):
        cols = schema.feature_columns()
        for ident in ("session_id", "bucket_start_ts", "schema_hash", "window_title_hash"):
            assert ident not in cols
    assert FeatureSchemaV1.categorical_columns() == (
        "user_id",
        "app_id",
        "app_category",
        "domain_category",
    )
    assert FeatureSchemaV3.categorical_columns() == ("app_id", "app_category", "domain_category")


def _valid_row(schema) -> dict:
    ts = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
    row: dict = {}
    for spec in schema.COLUMN_SPECS:
        row[spec.name] = {
            "str": "x",
            "datetime": ts,
            "list": ["e1"],
            "bool": False,
            "int": 0,
            "float": 0.0,
        }[spec.type]
    row["schema_version"] = schema.VERSION
    row["schema_hash"] = schema.SCHEMA_HASH
    return row


@pytest.mark.parametrize("schema", [FeatureSchemaV1, FeatureSchemaV2, FeatureSchemaV3])
def test_valid_row_and_frame_pass(schema):
    row = _valid_row(schema)
    schema.validate_row(row)
    df = pd.DataFrame([row, row])
    schema.validate_dataframe(df)


def test_row_errors_name_the_column_and_value():
    row = _valid_row(FeatureSchemaV3)
    row["hour_of_day"] = 24
    with pytest.raises(SchemaError, match=r"'hour_of_day'.*<= 23.*24"):
        FeatureSchemaV3.validate_row(row)
    row = _valid_row(FeatureSchemaV3)
    row["app_id"] = None
    with pytest.raises(SchemaError, match="'app_id' is not nullable"):
        FeatureSchemaV3.validate_row(row)
    row = _valid_row(FeatureSchemaV3)
    row["keys_per_min"] = None  # nullable
    FeatureSchemaV3.validate_row(row)
    row["is_browser"] = "yes"
    with pytest.raises(SchemaError, match="'is_browser' expects bool"):
        FeatureSchemaV3.validate_row(row)


def test_frame_errors():
    row = _valid_row(FeatureSchemaV2)
    df = pd.DataFrame([row] * 3)
    with pytest.raises(SchemaError, match="missing"):
        FeatureSchemaV2.validate_dataframe(df.drop(columns=["app_id"]))
    with pytest.raises(SchemaError, match="unexpected"):
        FeatureSchemaV2.validate_dataframe(df.assign(user_id="u"))
    bad = df.copy()
    bad.loc[2, "app_foreground_time_ratio"] = 1.5
    with pytest.raises(SchemaError, match=r"'app_foreground_time_ratio'.*1.5 at row 2"):
        FeatureSchemaV2.validate_dataframe(bad)
    bad = df.copy()
    bad["keys_per_min"] = np.inf
    with pytest.raises(SchemaError, match="finite"):
        FeatureSchemaV2.validate_dataframe(bad)
    bad = df.copy()
    bad["bucket_start_ts"] = bad["bucket_start_ts"].dt.tz_localize(None)
    with pytest.raises(SchemaError, match="timezone-aware"):
        FeatureSchemaV2.validate_dataframe(bad)
    with pytest.raises(SchemaError, match="schema_version"):
        FeatureSchemaV2.validate_dataframe(df.assign(schema_hash="000000000000"))


def test_get_schema_unknown():
    with pytest.raises(SchemaError, match="v9"):
        get_schema("v9")
