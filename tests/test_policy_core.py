"""core.inference_policy: build, save/load/remove, portable paths, and validation errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import pandas as pd
import pytest

from taskclf.core.errors import ArtifactError
from taskclf.core.inference_policy import (
    InferencePolicy,
    PolicyError,
    PolicyLabelSetMismatchError,
    PolicyModelError,
    PolicySchemaMismatchError,
    PolicyStoreMismatchError,
    build_inference_policy,
    check_store_binding,
    load_inference_policy,
    remove_inference_policy,
    save_inference_policy,
    validate_policy,
)
from taskclf.core.model_io import build_metadata, save_model_bundle
from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.calibration import CalibratorStore, TemperatureCalibrator, save_calibrator_store

CREATED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RUN = "2026-03-01_120000_run-aa01"
OTHER_RUN = "2026-03-01_130000_run-bb02"


def _bundle(layout: Layout, booster: lgb.Booster, run_id: str = RUN, **meta: object) -> Path:
    metadata = build_metadata(
        label_set=LABEL_SET_V1, schema_version="v3", git_commit="0" * 40, created_at=CREATED, **meta
    )
    return save_model_bundle(layout.run_dir(run_id), booster, metadata, {}, pd.DataFrame(), {})


def _store(layout: Layout, run_id: str = RUN, schema_hash: str = "7f29b4b8795e") -> Path:
    store = CalibratorStore(
        TemperatureCalibrator(1.3),
        {"amy": TemperatureCalibrator(0.8)},
        method="temperature",
        model_bundle_id=run_id,
        model_schema_hash=schema_hash,
        created_at=CREATED,
    )
    return save_calibrator_store(store, layout.calibrator_store_dir)


@pytest.fixture
def bound(layout: Layout, tiny_booster: lgb.Booster) -> tuple[Layout, Path, Path]:
    return layout, _bundle(layout, tiny_booster), _store(layout)


def _policy(
    layout: Layout, model_dir: Path, store_dir: Path | None, **kw: object
) -> InferencePolicy:
    return build_inference_policy(
        layout,
        model_dir,
        calibrator_store_dir=store_dir,
        created_at=CREATED,
        git_commit="f" * 40,
        **kw,  # type: ignore[arg-type]
    )


def test_build_binds_bundle_and_store_with_home_relative_paths(bound: tuple) -> None:
    layout, model_dir, store_dir = bound
    policy = _policy(layout, model_dir, store_dir, per_user_reject_thresholds={"z": 0.6, "a": 0.4})
    assert policy.model_dir == f"models/{RUN}"
    assert policy.calibrator_store_dir == "artifacts/calibrator_store"
    assert policy.model_schema_hash == "7f29b4b8795e"
    assert policy.model_label_set == list(LABEL_SET_V1)
    assert policy.calibration_method == "temperature"
    assert list(policy.per_user_reject_thresholds) == ["a", "z"]
    assert policy.reject_threshold == 0.55  # no advisory threshold in the bundle
    assert policy.threshold_for("z") == 0.6 and policy.threshold_for("nobody") == 0.55
    assert policy.resolve_model_dir(layout.home) == model_dir
    assert validate_policy(policy, layout).calibrator_store_dir == store_dir


def test_bundle_advisory_threshold_is_the_default(
    layout: Layout, tiny_booster: lgb.Booster
) -> None:
    model_dir = _bundle(layout, tiny_booster, reject_threshold=0.42)
    assert _policy(layout, model_dir, None).reject_threshold == 0.42
    assert _policy(layout, model_dir, None, reject_threshold=0.7).reject_threshold == 0.7


def test_paths_outside_the_home_stay_absolute_and_homes_are_portable(
    tmp_path: Path, tiny_booster: lgb.Booster
) -> None:
    home = Layout.resolve(tmp_path / "a")
    model_dir = _bundle(home, tiny_booster)
    _store(home)
    policy = _policy(home, model_dir, home.calibrator_store_dir)
    save_inference_policy(policy, home)
    elsewhere = Layout.resolve(tmp_path / "elsewhere")
    absolute = _policy(elsewhere, model_dir, None)
    assert absolute.model_dir == str(model_dir.resolve())
    moved = Layout.resolve(tmp_path / "b")
    (tmp_path / "a").rename(tmp_path / "b")
    loaded = load_inference_policy(moved)
    assert loaded == policy
    assert validate_policy(loaded, moved).model_dir == moved.run_dir(RUN)


def test_save_load_remove_round_trip(bound: tuple) -> None:
    layout, model_dir, store_dir = bound
    assert load_inference_policy(layout) is None
    policy = _policy(layout, model_dir, store_dir)
    path = save_inference_policy(policy, layout)
    assert path == layout.inference_policy
    assert load_inference_policy(layout) == policy
    text = path.read_text()
    assert json.loads(text)["policy_version"] == 1 and text.endswith("\n")
    save_inference_policy(policy, layout.home / "copy.json")
    assert (layout.home / "copy.json").read_text() == text  # deterministic
    assert remove_inference_policy(layout) is True
    assert remove_inference_policy(layout) is False
    assert load_inference_policy(layout) is None


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"policy_version": 7}, "policy_version"),
        ({"reject_threshold": 1.5}, "reject_threshold"),
        ({"reject_threshold": True}, "reject_threshold"),
        ({"model_dir": "models/a\x00b"}, "field model_dir: Value error, a path must not contain"),
        ({"reject_threshold": "0.5"}, "reject_threshold"),
        ({"per_user_reject_thresholds": {"a": "0.5"}}, "per_user_reject_thresholds"),
        ({"per_user_reject_thresholds": {"a": -0.1}}, "per_user_reject_thresholds"),
        ({"calibration_method": None}, "set together"),
        ({"extra": 1}, "extra"),
    ],
)
def test_invalid_policy_files_are_policy_errors_naming_the_field(
    bound: tuple, change: dict, match: str
) -> None:
    layout, model_dir, store_dir = bound
    data = _policy(layout, model_dir, store_dir).model_dump(mode="json") | change
    layout.inference_policy.write_text(json.dumps(data))
    with pytest.raises(PolicyError, match=match):
        load_inference_policy(layout)
    layout.inference_policy.write_text("{not json")
    with pytest.raises(PolicyError, match="not readable JSON"):
        load_inference_policy(layout)


def test_schema_hash_mismatch(bound: tuple) -> None:
    layout, model_dir, store_dir = bound
    policy = _policy(layout, model_dir, store_dir).model_copy(
        update={"model_schema_hash": "4077fe0dba70"}
    )
    with pytest.raises(PolicySchemaMismatchError, match="model_schema_hash '4077fe0dba70'"):
        validate_policy(policy, layout)


def test_label_set_mismatch(bound: tuple) -> None:
    layout, model_dir, store_dir = bound
    labels = [*LABEL_SET_V1[:-1], "Coding"]
    policy = _policy(layout, model_dir, store_dir).model_copy(update={"model_label_set": labels})
    with pytest.raises(PolicyLabelSetMismatchError, match="model_label_set"):
        validate_policy(policy, layout)


def test_store_fitted_for_another_model(bound: tuple) -> None:
    layout, model_dir, _ = bound
    store_dir = _store(layout, run_id=OTHER_RUN)
    policy = _policy(layout, model_dir, store_dir)
    with pytest.raises(PolicyStoreMismatchError, match=f"fitted for model '{OTHER_RUN}'"):
        validate_policy(policy, layout)


def test_store_fitted_for_another_schema(bound: tuple) -> None:
    layout, model_dir, _ = bound
    store_dir = _store(layout, schema_hash="a15f4751a947")
    with pytest.raises(PolicyStoreMismatchError, match="schema hash 'a15f4751a947'"):
        validate_policy(_policy(layout, model_dir, store_dir), layout)
    with pytest.raises(PolicyStoreMismatchError):
        check_store_binding(store_dir, model_bundle_id=RUN, model_schema_hash="7f29b4b8795e")


def test_store_method_and_missing_store(bound: tuple) -> None:
    layout, model_dir, store_dir = bound
    policy = _policy(layout, model_dir, store_dir)
    with pytest.raises(PolicyStoreMismatchError, match="calibration_method"):
        validate_policy(policy.model_copy(update={"calibration_method": "isotonic"}), layout)
    missing = policy.model_copy(update={"calibrator_store_dir": "artifacts/nowhere"})
    with pytest.raises(PolicyStoreMismatchError, match="no calibrator store"):
        validate_policy(missing, layout)


def test_missing_or_broken_model(bound: tuple) -> None:
    layout, model_dir, store_dir = bound
    policy = _policy(layout, model_dir, store_dir)
    (model_dir / "model.txt").write_text("tampered")
    with pytest.raises(PolicyModelError, match="checksum mismatch"):
        validate_policy(policy, layout)
    gone = policy.model_copy(update={"model_dir": "models/2026-01-01_000000_run-dead"})
    with pytest.raises(PolicyModelError, match="does not exist"):
        validate_policy(gone, layout)


def test_each_mismatch_has_its_own_error_class() -> None:
    classes = [
        PolicyModelError,
        PolicySchemaMismatchError,
        PolicyLabelSetMismatchError,
        PolicyStoreMismatchError,
    ]
    for cls in classes:
        assert issubclass(cls, PolicyError) and issubclass(cls, ArtifactError)
        assert not any(issubclass(cls, other) for other in classes if other is not cls)


def test_policy_without_store_validates(layout: Layout, tiny_booster: lgb.Booster) -> None:
    model_dir = _bundle(layout, tiny_booster)
    policy = _policy(layout, model_dir, None)
    assert policy.calibrator_store_dir is None and policy.calibration_method is None
    assert validate_policy(policy, layout).calibrator_store_dir is None
