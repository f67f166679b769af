from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from conftest import REAL_DATA
from taskclf.adapters.activitywatch._ingest import ingest_export
from taskclf.cli.main import run
from taskclf.core.errors import ArtifactError
from taskclf.core.paths import Layout
from taskclf.core.schema import FeatureSchemaV2
from taskclf.features.build import build_features_range, load_features

MHACKS = REAL_DATA / "aw_mhacks_LAPTOP-MCRJASPH_export.json"


def test_features_build_cli_roundtrip(tmp_path, capsys):
    home = tmp_path / "home"
    layout = Layout.resolve(home)
    assert run(["--home", str(home), "ingest", "aw", "--input", str(MHACKS), "--user-id", "m"]) == 0
    args = ["--home", str(home), "features", "build", "--from", "2023-11-18", "--to", "2023-11-19"]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "2023-11-19" in out and "rows in 2 partitions" in out
    first = {p: p.read_bytes() for p in sorted(layout.features_dir("v3").rglob("*.parquet"))}
    assert len(first) == 2
    assert run(args) == 0  # deterministic: rebuilding gives byte-identical partitions
    assert {p: p.read_bytes() for p in first} == first
    feats = load_features(layout, date(2023, 11, 18), date(2023, 11, 19), user_ids=["m"])
    assert feats["user_id"].eq("m").all()
    assert feats["bucket_start_ts"].is_monotonic_increasing
    assert load_features(layout, date(2023, 11, 18), date(2023, 11, 19), user_ids=["x"]).empty
    assert run([*args, "--schema-version", "v2", "--user-id", "m"]) == 0
    v2 = load_features(layout, date(2023, 11, 18), date(2023, 11, 19), schema_version="v2")
    assert tuple(v2.columns) == FeatureSchemaV2.COLUMNS
    pd.testing.assert_series_equal(v2["bucket_start_ts"], feats["bucket_start_ts"])


def test_features_build_cli_errors(tmp_path, capsys):
    home = str(tmp_path / "home")
    assert run(["--home", home, "features", "build", "--from", "2023-11-18"]) == 2
    assert "--from and --to" in capsys.readouterr().err
    assert run(["--home", home, "features", "build", "--from", "18.11.2023", "--to", "x"]) == 2
    code = run(
        [
            "--home",
            home,
            "features",
            "build",
            "--from",
            "2023-11-18",
            "--to",
            "2023-11-18",
            "--schema-version",
            "v9",
        ]
    )
    assert code == 2


def test_corrupt_partition_is_reported(tmp_path):
    layout = Layout.resolve(tmp_path / "home")
    path = layout.features_partition(date(2024, 1, 1), "u")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not parquet")
    with pytest.raises(ArtifactError, match="rebuild"):
        load_features(layout, date(2024, 1, 1), date(2024, 1, 1))


def test_odd_user_ids_roundtrip(tmp_path):
    layout = Layout.resolve(tmp_path / "home")
    odd = "zoë müller #2"
    long_id = "u" * 125 + "é"
    for uid in (odd, long_id):
        ingest_export(layout, MHACKS, user_id=uid)
    build_features_range(layout, date(2023, 11, 19), date(2023, 11, 19))  # listed users
    build_features_range(layout, date(2023, 11, 19), date(2023, 11, 19), user_ids=[long_id])
    both = load_features(layout, date(2023, 11, 19), date(2023, 11, 19), user_ids=[odd, long_id])
    assert set(both["user_id"]) == {odd, long_id}
    listed = load_features(layout, date(2023, 11, 19), date(2023, 11, 19))
    assert set(listed["user_id"]) == {odd}  # hash-encoded ids need --user-id
