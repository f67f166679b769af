"""CalibratorStore: per-user routing, on-disk format, hostile user ids, atomic replacement."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.paths import encode_user_id
from taskclf.infer import calibration as calmod
from taskclf.infer.calibration import (
    CalibratorStore,
    IdentityCalibrator,
    IsotonicCalibrator,
    IsotonicMap,
    TemperatureCalibrator,
    load_calibrator,
    load_calibrator_store,
    save_calibrator,
    save_calibrator_store,
)

K = 8
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HOSTILE_IDS = ["../x", "a/b", "", "u" * 300, "zoë-😀", "..", ".", "~h123", "a\\b", "CON"]


def _store(user_ts: dict[str, float], global_t: float = 1.5) -> CalibratorStore:
    return CalibratorStore(
        global_calibrator=TemperatureCalibrator(global_t),
        user_calibrators={u: TemperatureCalibrator(t) for u, t in user_ts.items()},
        method="temperature",
        model_bundle_id="2026-03-01_120000_run-ab12",
        model_schema_hash="7f29b4b8795e",
        created_at=CREATED,
    )


def _probs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.full(K, 0.4), size=n)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 40),
    seed=st.integers(0, 1000),
    pool=st.lists(st.sampled_from(["a", "b", "c", "../x", "zoë"]), min_size=1, max_size=5),
)
def test_calibrate_batch_equals_each_rows_own_calibrator(
    n: int, seed: int, pool: list[str]
) -> None:
    store = _store({"a": 0.5, "../x": 3.0, "zoë": 1.1})
    rng = np.random.default_rng(seed)
    users = np.array([pool[i] for i in rng.integers(0, len(pool), size=n)], dtype=object)
    p = _probs(n, seed)
    out = store.calibrate_batch(p, users)
    assert out.shape == (n, K)
    for i in range(n):
        np.testing.assert_array_equal(out[i], store.get_calibrator(users[i]).calibrate(p[i]))


def test_calibrate_batch_calls_each_calibrator_once_per_user_group() -> None:
    calls: list[int] = []

    class Counting(TemperatureCalibrator):
        def _apply(self, p: np.ndarray) -> np.ndarray:
            calls.append(len(p))
            return super()._apply(p)

    store = CalibratorStore(
        Counting(1.0), {"a": Counting(0.5), "b": Counting(2.0)}, method="temperature"
    )
    users = np.array(["a", "x", "b", "a", "y", "b", "a"], dtype=object)
    store.calibrate_batch(_probs(7), users)
    assert sorted(calls) == [2, 2, 3]  # global (x, y), b, a


def test_get_calibrator_falls_back_to_global_and_user_ids_are_sorted() -> None:
    store = _store({"b": 0.5, "a": 2.0})
    assert store.user_ids == ["a", "b"]
    assert store.get_calibrator("nobody") is store.global_calibrator
    assert store.get_calibrator("a") == TemperatureCalibrator(2.0)


def test_calibrate_batch_input_errors() -> None:
    store = _store({"a": 0.5})
    with pytest.raises(InputError, match="user_ids"):
        store.calibrate_batch(_probs(3), ["a", "b"])
    with pytest.raises(InputError, match="missing"):
        store.calibrate_batch(_probs(2), np.array(["a", None], dtype=object))
    with pytest.raises(InputError, match="finite"):
        store.calibrate_batch(np.full((2, K), np.nan), ["a", "a"])


def test_a_store_uses_one_method() -> None:
    with pytest.raises(InputError, match="one method"):
        CalibratorStore(TemperatureCalibrator(1.0), {"a": IdentityCalibrator()}, "temperature")


def test_store_round_trip_keeps_outputs_and_metadata(tmp_path: Path) -> None:
    store = _store({"alice": 0.7, "bob": 2.2})
    save_calibrator_store(store, tmp_path / "store")
    loaded = load_calibrator_store(tmp_path / "store")
    assert loaded.user_ids == ["alice", "bob"]
    assert (loaded.method, loaded.model_bundle_id, loaded.model_schema_hash) == (
        store.method,
        store.model_bundle_id,
        store.model_schema_hash,
    )
    assert loaded.created_at == CREATED
    users = np.array(["alice", "bob", "carol"] * 3, dtype=object)
    p = _probs(9)
    np.testing.assert_array_equal(loaded.calibrate_batch(p, users), store.calibrate_batch(p, users))
    manifest = json.loads((tmp_path / "store" / "store.json").read_text())
    assert manifest["user_count"] == 2 and manifest["user_ids"] == ["alice", "bob"]
    assert manifest["format_version"] == 1 and manifest["method"] == "temperature"


def test_isotonic_store_round_trip(tmp_path: Path) -> None:
    maps = tuple(IsotonicMap((0.0, 0.5, 1.0), (0.0, 0.3 + c / 100, 1.0)) for c in range(K))
    cal = IsotonicCalibrator(maps)
    store = CalibratorStore(cal, {"u": cal}, method="isotonic", created_at=CREATED)
    save_calibrator_store(store, tmp_path / "s")
    loaded = load_calibrator_store(tmp_path / "s")
    p = _probs(5)
    np.testing.assert_array_equal(loaded.calibrate_batch(p, ["u"] * 5), cal.calibrate(p))


def test_saving_is_deterministic(tmp_path: Path) -> None:
    store = _store({"alice": 0.7, "../x": 2.2})
    for name in ("one", "two"):
        save_calibrator_store(store, tmp_path / name)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.json"))
    assert files == sorted(
        p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.json")
    )
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()


def test_hostile_user_ids_round_trip_and_stay_inside_users(tmp_path: Path) -> None:
    ts = {uid: 0.5 + i / 10 for i, uid in enumerate(HOSTILE_IDS)}
    store_dir = tmp_path / "home" / "store"
    save_calibrator_store(_store(ts), store_dir)
    loaded = load_calibrator_store(store_dir)
    assert loaded.user_ids == sorted(HOSTILE_IDS)
    for uid, t in ts.items():
        assert loaded.get_calibrator(uid) == TemperatureCalibrator(t)
    users_dir = (store_dir / "users").resolve()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    user_files = [p for p in written if p.parent.resolve() == users_dir]
    assert len(user_files) == len(HOSTILE_IDS)
    assert {p.resolve() for p in written} == {
        *(p.resolve() for p in user_files),
        (store_dir / "store.json").resolve(),
        (store_dir / "global.json").resolve(),
    }
    for p in user_files:
        assert len(p.name) <= 130 and "/" not in p.name
        assert json.loads(p.read_text())["user_id"] in ts


def _write_store(tmp_path: Path) -> Path:
    store_dir = tmp_path / "store"
    save_calibrator_store(_store({"alice": 0.7}), store_dir)
    return store_dir


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"temperature": 1.0}, "'type' is missing"),
        ({"type": "platt", "a": 1.0}, "unknown"),
        ({"type": "temperature", "temperature": -1.0}, "finite and > 0"),
        ({"type": "temperature", "temperature": 0}, "finite and > 0"),
        ({"type": "temperature"}, "missing \\['temperature'\\]"),
        ({"type": "identity", "extra": 1}, "unexpected \\['extra'\\]"),
        ({"type": "isotonic", "regressors": [{"x": [0.5, 0.1], "y": [0, 1]}]}, "increasing"),
        ("not an object", "expected a JSON object"),
    ],
)
def test_bad_global_calibrator_is_an_artifact_error_naming_the_file(
    tmp_path: Path, body: object, match: str
) -> None:
    store_dir = _write_store(tmp_path)
    (store_dir / "global.json").write_text(json.dumps(body))
    with pytest.raises(ArtifactError, match=match) as err:
        load_calibrator_store(store_dir)
    assert "global.json" in str(err.value)


def test_tampered_user_file_is_refused(tmp_path: Path) -> None:
    store_dir = _write_store(tmp_path)
    path = store_dir / "users" / "alice.json"
    path.write_text(json.dumps({"type": "temperature", "temperature": 1.0, "user_id": "mallory"}))
    with pytest.raises(ArtifactError, match="alice.json"):
        load_calibrator_store(store_dir)
    path.unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_calibrator_store(store_dir)


def test_manifest_problems_are_artifact_errors(tmp_path: Path) -> None:
    store_dir = _write_store(tmp_path)
    manifest = json.loads((store_dir / "store.json").read_text())
    (store_dir / "store.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format version 99"):
        load_calibrator_store(store_dir)
    (store_dir / "store.json").write_text(
        json.dumps({**manifest, "user_files": {"alice": "../x.json"}})
    )
    with pytest.raises(ArtifactError, match="unsafe user file name"):
        load_calibrator_store(store_dir)
    with pytest.raises(ArtifactError, match="no calibrator store"):
        load_calibrator_store(tmp_path / "nothing-here")


def test_single_calibrator_files(tmp_path: Path) -> None:
    for cal in (IdentityCalibrator(), TemperatureCalibrator(0.8)):
        save_calibrator(cal, tmp_path / "c.json")
        assert load_calibrator(tmp_path / "c.json") == cal
    (tmp_path / "c.json").write_text("{broken")
    with pytest.raises(ArtifactError, match="c.json"):
        load_calibrator(tmp_path / "c.json")


def test_a_crash_during_the_swap_leaves_the_old_store_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / "store"
    save_calibrator_store(_store({"alice": 0.7}), store_dir)
    real_rename = os.rename
    calls: list[int] = []

    def crash_on_second_rename(src: object, dst: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("power cut")
        real_rename(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(calmod.os, "rename", crash_on_second_rename)
    with pytest.raises(OSError, match="power cut"):
        save_calibrator_store(_store({"bob": 2.0}), store_dir)
    monkeypatch.undo()
    assert not store_dir.exists()  # crashed between the renames
    assert load_calibrator_store(store_dir).user_ids == ["alice"]  # the previous store
    save_calibrator_store(_store({"bob": 2.0}), store_dir)  # the next save recovers
    assert load_calibrator_store(store_dir).user_ids == ["bob"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_a_failure_while_building_leaves_the_old_store_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dir = tmp_path / "store"
    save_calibrator_store(_store({"alice": 0.7}), store_dir)
    before = {p.name: p.read_bytes() for p in store_dir.rglob("*.json")}

    def boom(path: Path, obj: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(calmod, "_write_synced", boom)
    with pytest.raises(OSError, match="disk full"):
        save_calibrator_store(_store({"bob": 2.0}), store_dir)
    assert {p.name: p.read_bytes() for p in store_dir.rglob("*.json")} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_user_file_names_come_from_encode_user_id(tmp_path: Path) -> None:
    save_calibrator_store(_store({"../x": 1.0, "plain-id_1.2": 2.0}), tmp_path / "s")
    names = sorted(p.name for p in (tmp_path / "s" / "users").iterdir())
    assert names == sorted(encode_user_id(u) + ".json" for u in ("../x", "plain-id_1.2"))


def test_a_directory_that_is_not_a_store_is_never_replaced(tmp_path: Path) -> None:
    other = tmp_path / "models"  # e.g. a mistyped --out
    (other / "run-1").mkdir(parents=True)
    (other / "active.json").write_text("{}")
    before = sorted(str(p.relative_to(other)) for p in other.rglob("*"))
    with pytest.raises(ArtifactError, match="not a calibrator store") as info:
        save_calibrator_store(_store({"alice": 0.7}), other)
    assert "not a calibrator store: 2 other entries (e.g. 'active.json')" in str(info.value)
    assert sorted(str(p.relative_to(other)) for p in other.rglob("*")) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models"]  # no staging left
    (tmp_path / "file").write_text("x")
    with pytest.raises(ArtifactError, match="exists and is not a directory"):
        save_calibrator_store(_store({"alice": 0.7}), tmp_path / "file")
    # allowed: an empty directory, a store, and a store that lost its manifest
    (tmp_path / "empty").mkdir()
    save_calibrator_store(_store({"alice": 0.7}), tmp_path / "empty")
    (tmp_path / "empty" / "calibration_report.json").write_text("{}")
    save_calibrator_store(_store({"bob": 0.7}), tmp_path / "empty")
    (tmp_path / "empty" / "store.json").unlink()
    save_calibrator_store(_store({"carol": 0.7}), tmp_path / "empty")
    assert load_calibrator_store(tmp_path / "empty").user_ids == ["carol"]
    (tmp_path / "empty" / "my-notes.txt").write_text("mine")  # a store with a file of mine
    with pytest.raises(ArtifactError, match="a calibrator store with 1 other entries"):
        save_calibrator_store(_store({"dave": 0.7}), tmp_path / "empty")
    assert (tmp_path / "empty" / "my-notes.txt").read_text() == "mine"
