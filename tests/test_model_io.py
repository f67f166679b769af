from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskclf.core import _atomic, model_io
from taskclf.core.encoding import make_encoder
from taskclf.core.errors import ArtifactError
from taskclf.core.model_io import (
    build_metadata,
    generate_run_id,
    get_active_model,
    list_bundles,
    load_model_bundle,
    save_model_bundle,
    set_active_model,
)
from taskclf.core.types import LABEL_SET_V1


def _save(layout, booster, **meta_overrides) -> Path:
    meta = build_metadata(
        label_set=list(LABEL_SET_V1),
        schema_version=meta_overrides.pop("schema_version", "v3"),
        train_date_from=date(2026, 1, 1),
        train_date_to=date(2026, 1, 10),
        params={"num_boost_round": 5},
        dataset_hash="abc",
        data_provenance="synthetic",
        git_commit="0" * 40,
    )
    if meta_overrides:
        meta = meta.model_copy(update=meta_overrides)
    cm = pd.DataFrame(np.eye(8, dtype=int), index=LABEL_SET_V1, columns=LABEL_SET_V1)
    encoders = {c: make_encoder(["a", "b"]) for c in ("app_id", "app_category", "domain_category")}
    run_dir = layout.run_dir(generate_run_id(layout.models_dir))
    metrics = {"macro_f1": 0.5, "weighted_f1": 0.6, "label_names": list(LABEL_SET_V1)}
    return save_model_bundle(run_dir, booster, meta, metrics, cm, encoders)


def test_round_trip(layout, tiny_booster):
    run_dir = _save(layout, tiny_booster)
    booster, meta, enc = load_model_bundle(run_dir)
    x = np.random.default_rng(1).normal(size=(10, 5))
    np.testing.assert_array_equal(booster.predict(x), tiny_booster.predict(x))
    assert meta.label_set == list(LABEL_SET_V1)
    assert meta.schema_hash == "7f29b4b8795e"
    assert list(enc["app_id"].classes_) == ["__unknown__", "a", "b"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["format_version"] == 1
    assert set(manifest["files"]) == {
        "model.txt",
        "metadata.json",
        "metrics.json",
        "confusion_matrix.csv",
        "categorical_encoders.json",
    }
    assert list_bundles(layout) == [run_dir]


def test_run_ids_never_reuse_an_existing_run_and_are_formatted(layout):
    # The suffix is random (4 hex digits), so two ids drawn without creating the first may
    # collide; the contract is that an id never names a run that already exists.
    ids = set()
    for _ in range(50):
        run_id = generate_run_id(layout.models_dir)
        (layout.models_dir / run_id).mkdir(parents=True)
        ids.add(run_id)
    assert len(ids) == 50
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d_\d{6}_run-[0-9a-f]{4}", i) for i in ids)


def test_run_id_skips_a_taken_suffix(layout, monkeypatch):
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    suffixes = iter(["aaaa", "aaaa", "bbbb"])
    monkeypatch.setattr(model_io.secrets, "token_hex", lambda _n: next(suffixes))
    (layout.models_dir / "2026-01-02_030405_run-aaaa").mkdir(parents=True)
    assert generate_run_id(layout.models_dir, now=now) == "2026-01-02_030405_run-bbbb"


def test_tampered_model_refused(layout, tiny_booster):
    run_dir = _save(layout, tiny_booster)
    with open(run_dir / "model.txt", "a") as fh:
        fh.write("\n")
    with pytest.raises(ArtifactError, match="checksum mismatch for 'model.txt'"):
        load_model_bundle(run_dir)


def _rewrite_with_manifest(run_dir: Path, name: str, text: str | bytes) -> None:
    from taskclf.core.hashing import sha256_file

    if isinstance(text, bytes):
        (run_dir / name).write_bytes(text)
    else:
        (run_dir / name).write_text(text)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["files"][name] = sha256_file(run_dir / name)
    (run_dir / "manifest.json").write_text(json.dumps(manifest))


def test_wrong_schema_hash_refused(layout, tiny_booster):
    run_dir = _save(layout, tiny_booster)
    meta = json.loads((run_dir / "metadata.json").read_text())
    meta["schema_hash"] = "4077fe0dba70"  # v1 hash on a v3 bundle
    _rewrite_with_manifest(run_dir, "metadata.json", json.dumps(meta))
    with pytest.raises(ArtifactError, match="does not match schema v3"):
        load_model_bundle(run_dir)
    load_model_bundle(run_dir, validate_schema=False)


@pytest.mark.parametrize("threshold", ["NaN", "1.5", "-0.2"])
def test_advisory_threshold_outside_0_1_refused(layout, tiny_booster, threshold):
    run_dir = _save(layout, tiny_booster)
    meta = json.loads((run_dir / "metadata.json").read_text())
    text = json.dumps(meta | {"reject_threshold": "X"}).replace('"X"', threshold)
    _rewrite_with_manifest(run_dir, "metadata.json", text)
    with pytest.raises(ArtifactError, match="metadata.json': field reject_threshold"):
        load_model_bundle(run_dir)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda t: t[: len(t) // 2], "trees but tree_sizes lists"),
        (lambda t: t.replace("num_class=8", "num_class=3", 1), "num_class=3 but the label set"),
        (lambda t: t.replace("end of trees", "end of tree", 1), "no 'end of trees' marker"),
        (lambda t: "tee" + t[4:], "no 'tree' header"),
    ],
)
def test_inconsistent_model_text_is_an_error_not_an_abort(layout, tiny_booster, edit, match):
    # LightGBM aborts the process on these (exit 134); the header checks come first
    run_dir = _save(layout, tiny_booster)
    text = (run_dir / "model.txt").read_text(encoding="utf-8")
    _rewrite_with_manifest(run_dir, "model.txt", edit(text))
    with pytest.raises(ArtifactError, match=re.escape(match)):
        load_model_bundle(run_dir)


def test_non_utf8_model_text_refused(layout, tiny_booster):
    run_dir = _save(layout, tiny_booster)
    _rewrite_with_manifest(run_dir, "model.txt", b"tree\n\xff\xfe")
    with pytest.raises(ArtifactError, match="not UTF-8 text"):
        load_model_bundle(run_dir)


def test_different_label_set_refused(layout, tiny_booster):
    run_dir = _save(layout, tiny_booster)
    meta = json.loads((run_dir / "metadata.json").read_text())
    meta["label_set"] = [*sorted(LABEL_SET_V1)[:-1], "Writing"]
    _rewrite_with_manifest(run_dir, "metadata.json", json.dumps(meta))
    with pytest.raises(ArtifactError, match="label_set"):
        load_model_bundle(run_dir)


def test_missing_file_refused(layout, tiny_booster):
    run_dir = _save(layout, tiny_booster)
    (run_dir / "categorical_encoders.json").unlink()
    with pytest.raises(ArtifactError, match="missing required file 'categorical_encoders.json'"):
        load_model_bundle(run_dir)


def test_unknown_format_version_refused(layout, tiny_booster):
    run_dir = _save(layout, tiny_booster)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["format_version"] = 99
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="unknown manifest format version 99"):
        load_model_bundle(run_dir)


def test_existing_run_dir_never_overwritten(layout, tiny_booster):
    run_dir = _save(layout, tiny_booster)
    before = (run_dir / "model.txt").read_bytes()
    meta = build_metadata(label_set=LABEL_SET_V1, git_commit="x")
    with pytest.raises(ArtifactError, match="already exists"):
        save_model_bundle(run_dir, tiny_booster, meta, {}, pd.DataFrame(), {})
    assert (run_dir / "model.txt").read_bytes() == before


def test_exception_mid_write_keeps_previous_file(tmp_path):
    target = tmp_path / "x.json"
    _atomic.atomic_write_json(target, {"v": 1})

    with pytest.raises(RuntimeError), _atomic.atomic_path(target) as tmp:
        tmp.write_text('{"v": 2, "partial')
        raise RuntimeError("crash in the middle")
    assert json.loads(target.read_text()) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_bundle_write_failure_leaves_nothing(layout, tiny_booster, monkeypatch):
    calls = {"n": 0}
    real = _atomic.dumps_json

    def failing(obj):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        return real(obj)

    monkeypatch.setattr("taskclf.core.model_io.dumps_json", failing)
    with pytest.raises(OSError, match="disk full"):
        _save(layout, tiny_booster)
    assert list(layout.models_dir.iterdir()) == []


def test_active_pointer_and_history(layout, tiny_booster):
    assert get_active_model(layout) is None
    a = _save(layout, tiny_booster)
    b = _save(layout, tiny_booster)
    set_active_model(layout, a.name)
    set_active_model(layout, b.name, reason="retrained")
    assert get_active_model(layout) == b
    history = [json.loads(line) for line in layout.active_history.read_text().splitlines()]
    assert [h["run_id"] for h in history] == [a.name, b.name]
    with open(b / "model.txt", "a") as fh:
        fh.write("x")
    with pytest.raises(ArtifactError):
        set_active_model(layout, b.name)
    assert get_active_model(layout) == b  # pointer unchanged by the refused switch


def test_atomic_files_get_normal_permissions_and_secret_stays_private(tmp_path):
    import os
    import stat

    from taskclf.core.config import load_or_create_title_secret
    from taskclf.core.paths import Layout

    target = tmp_path / "plain.json"
    _atomic.atomic_write_json(target, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    layout = Layout.resolve(tmp_path / "home")
    secret = load_or_create_title_secret(layout)
    assert len(secret) == 32
    assert stat.S_IMODE(layout.title_secret.stat().st_mode) == 0o600
    assert load_or_create_title_secret(layout) == secret
