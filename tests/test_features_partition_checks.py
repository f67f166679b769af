"""Stored feature partitions are checked on load: a corrupt one is an ArtifactError (exit 2)
naming the file, the column and what to do, never a crash or a silent cast."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taskclf.cli.main import run
from taskclf.core.errors import ArtifactError, SchemaError
from taskclf.core.paths import Layout
from taskclf.core.schema import FeatureSchemaV3
from taskclf.features.build import build_features, load_features
from test_features_helpers import T0, events

DAY = T0.date()
D = DAY.isoformat()
REBUILD = f"taskclf features build --from {D} --to {D}"


def _features(user: str) -> pd.DataFrame:
    ev = events(
        window=[(0, 600, "Code.exe", "main.py - proj"), (600, 300, "chrome.exe", "docs")],
        afk=[(0, 900, "not-afk")],
    )
    return build_features(ev, user_id=user, device_id="dev", timezone="UTC")


def _store(layout: Layout, user: str, df: pd.DataFrame) -> Path:
    path = layout.features_partition(DAY, user)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    return path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def good(layout: Layout) -> pd.DataFrame:
    df = _features("u1")
    assert len(df) == 15
    _store(layout, "u1", df)
    return df


def test_a_valid_partition_loads_unchanged(layout, good):
    loaded = load_features(layout, DAY, DAY)
    FeatureSchemaV3.validate_dataframe(loaded)
    pd.testing.assert_frame_equal(loaded, good)


def _set(df: pd.DataFrame, column: str, values: object) -> pd.DataFrame:
    out = df.copy()
    out[column] = values
    return out


# (case, corrupt the frame, the column the message must name, words the message must hold)
CORRUPTIONS = [
    ("string in an int column", lambda df: _set(df, "hour_of_day", "noon"), "hour_of_day",
     "expects int, stored as"),
    ("float in an int column", lambda df: _set(df, "day_of_week", 1.5), "day_of_week",
     "expects int, stored as double"),
    ("int in a str column", lambda df: _set(df, "app_id", 7), "app_id", "expects str"),
    ("string in a float column", lambda df: _set(df, "keys_per_min", "fast"), "keys_per_min",
     "expects float"),
    ("missing bool (would become False)",
     lambda df: _set(df, "is_browser", pd.Series([None] + [True] * 14, dtype=object)),
     "is_browser", "1 missing value(s) in 15 rows (first at row 0)"),
    ("NaN in a non-nullable float", lambda df: _set(df, "session_length_so_far", np.nan),
     "session_length_so_far", "15 missing value(s)"),
    ("string timestamps", lambda df: _set(df, "bucket_end_ts", "2024-03-04"), "bucket_end_ts",
     "expects datetime"),
    ("string for a list", lambda df: _set(df, "source_ids", "abc"), "source_ids", "expects list"),
    ("columns out of order", lambda df: df[[*df.columns[1:], df.columns[0]]], "user_id",
     "out of order"),
    ("infinite float", lambda df: _set(df, "mouse_distance", [0.0] * 3 + [np.inf] * 12),
     "mouse_distance", "must be finite, got inf at row 3"),
    ("out of range", lambda df: _set(df, "hour_of_day", [9] * 5 + [24] * 10), "hour_of_day",
     "must be <= 23"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("corrupt", "column", "words"),
    [c[1:] for c in CORRUPTIONS],
    ids=[c[0] for c in CORRUPTIONS],
)
def test_a_corrupt_partition_names_file_column_and_fix(layout, good, corrupt, column, words):
    _store(layout, "u0", _features("u0"))  # a good partition read before the bad one
    path = _store(layout, "u1", corrupt(good))
    with pytest.raises(ArtifactError) as info:
        load_features(layout, DAY, DAY)
    message = str(info.value)
    assert f"feature partition '{path}'" in message
    assert repr(column) in message and words in message
    assert REBUILD in message


def _v2_rows(layout):
    """A v2 feature frame of user u1 and the (new) folder path of its partition."""
    df = build_features(
        events(window=[(0, 120, "Code.exe", "x")]),
        user_id="u1",
        device_id=None,
        timezone="UTC",
        schema_version="v2",
    )
    path = layout.features_partition(DAY, "u1", "v2")
    path.parent.mkdir(parents=True)
    return df, path


def test_a_v2_partition_hint_names_its_schema(layout):
    df, path = _v2_rows(layout)
    pq.write_table(
        pa.Table.from_pandas(_set(df, "hour_of_day", "noon"), preserve_index=False), path
    )
    with pytest.raises(ArtifactError, match=f"{REBUILD} --schema-version v2"):
        load_features(layout, DAY, DAY, schema_version="v2")


def test_validate_table_accepts_what_the_builder_writes_and_names_the_bad_column(good):
    table = pa.Table.from_pandas(good, preserve_index=False)
    FeatureSchemaV3.validate_table(table)
    no_device = pa.Table.from_pandas(_set(good, "device_id", None), preserve_index=False)
    assert no_device.schema.field("device_id").type == pa.null()
    FeatureSchemaV3.validate_table(no_device)  # nullable and all missing: allowed
    no_app = pa.Table.from_pandas(_set(good, "app_id", None), preserve_index=False)
    with pytest.raises(SchemaError, match="'app_id' expects str, stored as null"):
        FeatureSchemaV3.validate_table(no_app)
    bad = pa.Table.from_pandas(_set(good, "hour_of_day", "noon"), preserve_index=False)
    with pytest.raises(SchemaError, match=r"'hour_of_day' expects int.*all 15 rows"):
        FeatureSchemaV3.validate_table(bad)
    with pytest.raises(SchemaError, match="missing"):
        FeatureSchemaV3.validate_table(table.drop_columns(["app_id"]))


@pytest.mark.parametrize("command", [["infer", "baseline"], ["labels", "project"]])
def test_cli_exits_2_naming_the_partition_and_writes_nothing(layout, good, command, capsys):
    path = _store(layout, "u1", _set(good, "hour_of_day", "noon"))
    before = _snapshot(layout.home)
    code = run(["--home", str(layout.home), *command, "--from", D, "--to", D])
    err = capsys.readouterr().err
    assert code == 2
    assert f"'{path}'" in err and "'hour_of_day'" in err and REBUILD in err
    assert _snapshot(layout.home) == before


def test_a_repeated_minute_names_its_partition(layout, good):
    path = _store(layout, "u1", pd.concat([good, good.iloc[[3]]], ignore_index=True))
    with pytest.raises(ArtifactError) as info:
        load_features(layout, DAY, DAY)
    message = str(info.value)
    minute = good["bucket_start_ts"].iloc[3].isoformat()
    assert f"repeat minute {minute} of user 'u1' (1 repeated row(s) in all)" in message
    assert f"in '{path}';" in message and REBUILD in message


def test_a_minute_in_two_days_partitions_names_both(layout, good):
    first = layout.features_partition(DAY, "u1")
    nxt = DAY + pd.Timedelta(days=1)
    second = layout.features_partition(nxt, "u1")
    second.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pandas(good.iloc[-2:], preserve_index=False), second)
    with pytest.raises(ArtifactError, match="2 repeated row") as info:
        load_features(layout, DAY, nxt)
    assert f"in '{first}' and '{second}'" in str(info.value)
    assert len(load_features(layout, nxt, nxt)) == 2  # each alone is fine


def test_a_repeated_minute_in_v2_is_found_by_partition_user(layout):
    df, path = _v2_rows(layout)
    other = layout.features_partition(DAY, "u2", "v2")
    for p, frame in ((path, pd.concat([df, df], ignore_index=True)), (other, df)):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), p)
    with pytest.raises(ArtifactError, match=f"of user 'u1'.*in '{path}'"):
        load_features(layout, DAY, DAY, schema_version="v2")
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    assert len(load_features(layout, DAY, DAY, schema_version="v2")) == 2 * len(df)
