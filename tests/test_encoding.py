from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from taskclf.core.encoding import (
    MatrixEncoder,
    categorical_feature_indices,
    encode_features,
    encoders_from_json,
    encoders_to_json,
    feature_columns,
    fit_categorical_encoders,
)
from taskclf.core.errors import ArtifactError, SchemaError


def _frame(n: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(3)
    cols = feature_columns("v2")
    data: dict[str, object] = {c: rng.random(n) for c in cols}
    data["app_id"] = ["code", "slack", None, "code", "zoom", "code"][:n]
    data["app_category"] = ["editor", "chat", "other", "editor", "meeting", "editor"][:n]
    data["domain_category"] = ["non_browser"] * n
    data["is_browser"] = np.array([True, False] * (n // 2))
    keys = np.array(rng.random(n))
    keys[1] = np.nan
    data["keys_per_min"] = keys
    return pd.DataFrame(data)


def test_frame_and_row_encodings_agree_and_unknowns_map_to_reserved_code():
    df = _frame()
    enc = fit_categorical_encoders(df.iloc[:4], "v2")
    assert "__unknown__" in list(enc["app_id"].classes_)
    matrix = encode_features(df, enc, "v2")
    assert matrix.shape == (6, len(feature_columns("v2")))
    me = MatrixEncoder(enc, "v2")
    for i, row in enumerate(df.to_dict("records")):
        np.testing.assert_array_equal(me.encode_row(row)[0], matrix[i])
    app_j = feature_columns("v2").index("app_id")
    unknown = list(enc["app_id"].classes_).index("__unknown__")
    assert matrix[4, app_j] == unknown  # 'zoom' not seen in training rows
    assert np.isnan(matrix[2, app_j])  # missing stays missing
    assert np.isnan(matrix[1, feature_columns("v2").index("keys_per_min")])
    assert categorical_feature_indices("v2") == [
        feature_columns("v2").index(c) for c in ("app_id", "app_category", "domain_category")
    ]


def test_encoder_json_round_trip_and_validation():
    enc = fit_categorical_encoders(_frame(), "v2")
    back = encoders_from_json(encoders_to_json(enc))
    assert encoders_to_json(back) == encoders_to_json(enc)
    with pytest.raises(ArtifactError, match="sorted"):
        encoders_from_json({"app_id": ["b", "a", "__unknown__"]})


def test_missing_columns_refused():
    df = _frame()
    enc = fit_categorical_encoders(df, "v2")
    with pytest.raises(SchemaError, match="lacks model columns"):
        encode_features(df.drop(columns=["hour_of_day"]), enc, "v2")
    with pytest.raises(ArtifactError, match="encoders missing"):
        encode_features(df, {}, "v2")


@pytest.mark.parametrize("chunk_rows", [1, 4, 5, 6, 100])
def test_chunks_equal_the_whole_matrix_for_every_chunk_size(chunk_rows: int) -> None:
    df = _frame()
    df["hour_of_day"] = pd.array([1, None, 3, 4, None, 6], dtype="Int64")  # nullable ints
    df["is_browser"] = pd.array([True, None, False, True, False, None], dtype="boolean")
    enc = fit_categorical_encoders(df, "v2")
    me = MatrixEncoder(enc, "v2")
    whole = me.encode_frame(df)
    assert np.isnan(whole[1, feature_columns("v2").index("hour_of_day")])
    parts = [(rows, m.copy()) for rows, m in me.iter_chunks(df, chunk_rows)]
    assert [r.start for r, _ in parts] == list(range(0, len(df), chunk_rows))
    np.testing.assert_array_equal(np.vstack([m for _, m in parts]), whole)
    assert list(me.iter_chunks(df.iloc[:0], chunk_rows)) == []
    for i, row in enumerate(df.to_dict("records")):  # pd.NA, None and numpy scalars per row
        np.testing.assert_array_equal(me.encode_row(row)[0], whole[i])
    with pytest.raises(ValueError, match="chunk_rows"):
        next(me.iter_chunks(df, 0))


def test_encode_row_into_a_given_buffer_equals_the_frame_encoding() -> None:
    df = _frame()
    enc = fit_categorical_encoders(df.iloc[:4], "v2")
    me = MatrixEncoder(enc, "v2")
    whole = me.encode_frame(df)
    buffer = np.full((1, len(me.columns)), -1.0)
    for i, row in enumerate(df.to_dict("records")):
        assert me.encode_row(row, out=buffer) is buffer
        np.testing.assert_array_equal(buffer[0], whole[i])  # every column written, none stale
