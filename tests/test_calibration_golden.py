"""Golden calibrator stores (format version 1): they keep loading and give the same outputs."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from taskclf.infer.calibration import (
    IsotonicCalibrator,
    TemperatureCalibrator,
    load_calibrator_store,
    save_calibrator_store,
)

GOLDEN = Path(__file__).parent / "golden" / "calibrator_store_v1"
EXPECTED = json.loads((GOLDEN / "expected_outputs.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_golden_store_loads_with_its_metadata(method: str) -> None:
    store = load_calibrator_store(GOLDEN / method)
    assert store.method == method
    assert store.model_bundle_id == "2026-03-01_120000_run-g01d"
    assert store.model_schema_hash == "7f29b4b8795e"
    assert store.created_at == datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    expected_users = ["../evil", "alice", "zoë"] if method == "temperature" else ["bob"]
    assert store.user_ids == expected_users


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_golden_store_outputs_are_unchanged(method: str) -> None:
    store = load_calibrator_store(GOLDEN / method)
    probs = np.array(EXPECTED["probs"])
    out = store.calibrate_batch(probs, EXPECTED["user_ids"])
    np.testing.assert_allclose(out, np.array(EXPECTED[method]), rtol=1e-12, atol=1e-15)


def test_golden_temperatures_follow_the_formula() -> None:
    store = load_calibrator_store(GOLDEN / "temperature")
    expected = {"../evil": 2.5, "alice": 0.62, "zoë": 1.05, "anyone else": 1.37}
    probs = np.array(EXPECTED["probs"][0])
    for user, t in expected.items():
        cal = store.get_calibrator(user)
        assert cal == TemperatureCalibrator(t)
        logits = np.log(probs) / t
        np.testing.assert_allclose(
            cal.calibrate(probs), np.exp(logits) / np.exp(logits).sum(), rtol=1e-12
        )


def test_golden_isotonic_maps_are_the_stored_points() -> None:
    store = load_calibrator_store(GOLDEN / "isotonic")
    data = json.loads((GOLDEN / "isotonic" / "global.json").read_text(encoding="utf-8"))
    cal = store.global_calibrator
    assert isinstance(cal, IsotonicCalibrator)
    assert [list(r.x) for r in cal.regressors] == [r["x"] for r in data["regressors"]]
    assert [list(r.y) for r in cal.regressors] == [r["y"] for r in data["regressors"]]


@pytest.mark.parametrize("method", ["temperature", "isotonic"])
def test_the_writer_still_produces_the_golden_bytes(method: str, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(GOLDEN / method, copy)
    save_calibrator_store(load_calibrator_store(copy), tmp_path / "again")
    golden_files = sorted(p.relative_to(GOLDEN / method) for p in (GOLDEN / method).rglob("*.json"))
    again_files = sorted(
        p.relative_to(tmp_path / "again") for p in (tmp_path / "again").rglob("*.json")
    )
    assert golden_files == again_files
    for rel in golden_files:
        assert (tmp_path / "again" / rel).read_bytes() == (GOLDEN / method / rel).read_bytes()
