"""Model bundles (DESIGN §4.3) and the active-model pointer.

A bundle is an immutable directory ``models/<run_id>/`` holding ``model.txt`` (LightGBM text),
``metadata.json``, ``metrics.json``, ``confusion_matrix.csv``, ``categorical_encoders.json`` and
``manifest.json`` (format version + SHA-256 of every other file). It is assembled in a hidden
temp directory and renamed into place, so a crash never leaves a half-written bundle.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

import lightgbm as lgb
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sklearn.preprocessing import LabelEncoder

from taskclf.core._atomic import append_line_durably, atomic_write_json, dumps_json
from taskclf.core.defaults import BUNDLE_FORMAT_VERSION
from taskclf.core.encoding import encoders_from_json, encoders_to_json
from taskclf.core.errors import ArtifactError
from taskclf.core.hashing import sha256_file
from taskclf.core.paths import Layout
from taskclf.core.schema import SCHEMAS
from taskclf.core.time import utc_now
from taskclf.core.types import LABEL_SET_V1

BUNDLE_FILES: tuple[str, ...] = (
    "model.txt",
    "metadata.json",
    "metrics.json",
    "confusion_matrix.csv",
    "categorical_encoders.json",
)
MANIFEST = "manifest.json"
SUPPORTED_FORMAT_VERSIONS = frozenset({1})


class ModelMetadata(BaseModel):
    """``metadata.json`` of a bundle."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: str
    schema_hash: str
    label_set: list[str]
    train_date_from: date | None
    train_date_to: date | None
    params: dict[str, Any]
    git_commit: str | None
    dataset_hash: str
    reject_threshold: float | None = Field(default=None, ge=0.0, le=1.0)  # NaN fails these
    data_provenance: Literal["real", "synthetic", "mixed"]
    created_at: datetime


def generate_run_id(models_dir: Path | None = None, *, now: datetime | None = None) -> str:
    """A new ``YYYY-MM-DD_HHMMSS_run-XXXX`` id, never one that exists under ``models_dir``."""
    stamp = (now or utc_now()).strftime("%Y-%m-%d_%H%M%S")
    for _ in range(1000):
        run_id = f"{stamp}_run-{secrets.token_hex(2)}"
        if models_dir is None or not (models_dir / run_id).exists():
            return run_id
    raise ArtifactError(f"could not find an unused run id under '{models_dir}'")


def current_git_commit(cwd: Path | None = None) -> str | None:
    """The git commit of the working tree, if any (recorded for provenance only)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd or Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    text = out.stdout.strip()
    return text if out.returncode == 0 and len(text) == 40 else None


def build_metadata(
    *,
    label_set: list[str] | tuple[str, ...],
    schema_version: str = "v3",
    train_date_from: date | None = None,
    train_date_to: date | None = None,
    params: Mapping[str, Any] | None = None,
    dataset_hash: str = "",
    data_provenance: Literal["real", "synthetic", "mixed"] = "real",
    reject_threshold: float | None = None,
    git_commit: str | None = None,
    created_at: datetime | None = None,
) -> ModelMetadata:
    """Assemble bundle metadata; the schema hash is taken from ``schema_version``."""
    if schema_version not in SCHEMAS:
        raise ArtifactError(f"unknown schema version {schema_version!r}")
    return ModelMetadata(
        schema_version=schema_version,
        schema_hash=SCHEMAS[schema_version].SCHEMA_HASH,
        label_set=sorted(label_set),
        train_date_from=train_date_from,
        train_date_to=train_date_to,
        params=dict(params or {}),
        git_commit=git_commit if git_commit is not None else current_git_commit(),
        dataset_hash=dataset_hash,
        reject_threshold=reject_threshold,
        data_provenance=data_provenance,
        created_at=created_at or utc_now(),
    )


def save_model_bundle(
    run_dir: Path,
    booster: lgb.Booster,
    metadata: ModelMetadata,
    metrics: Mapping[str, Any],
    confusion_df: pd.DataFrame,
    cat_encoders: Mapping[str, LabelEncoder],
) -> Path:
    """Write a bundle to ``run_dir`` (which must not exist) atomically; return ``run_dir``."""
    if run_dir.exists():
        raise ArtifactError(f"model bundle '{run_dir}' already exists; run ids are never reused")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{run_dir.name}.", dir=run_dir.parent))
    try:
        (staging / "model.txt").write_text(booster.model_to_string(), encoding="utf-8")
        (staging / "metadata.json").write_text(
            dumps_json(metadata.model_dump(mode="json")), encoding="utf-8"
        )
        (staging / "metrics.json").write_text(dumps_json(dict(metrics)), encoding="utf-8")
        (staging / "confusion_matrix.csv").write_text(
            confusion_df.to_csv(lineterminator="\n"), encoding="utf-8"
        )
        (staging / "categorical_encoders.json").write_text(
            dumps_json(encoders_to_json(cat_encoders)), encoding="utf-8"
        )
        manifest = {
            "format_version": BUNDLE_FORMAT_VERSION,
            "files": {name: sha256_file(staging / name) for name in BUNDLE_FILES},
        }
        (staging / MANIFEST).write_text(dumps_json(manifest), encoding="utf-8")
        for name in (*BUNDLE_FILES, MANIFEST):
            with open(staging / name, "rb") as fh:
                os.fsync(fh.fileno())
        os.rename(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return run_dir


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"'{path}' is not readable JSON: {exc}") from None


def verify_bundle_files(run_dir: Path) -> dict[str, Any]:
    """Check presence, manifest format version and every checksum; return the manifest."""
    if not run_dir.is_dir():
        raise ArtifactError(
            f"model bundle '{run_dir}' does not exist or is not a directory; 'taskclf model "
            "list' shows the bundles there are"
        )
    for name in (*BUNDLE_FILES, MANIFEST):
        if not (run_dir / name).is_file():
            raise ArtifactError(
                f"model bundle '{run_dir}' is missing required file '{name}'; "
                "the bundle is incomplete, retrain or restore it"
            )
    manifest = _read_json(run_dir / MANIFEST)
    version = manifest.get("format_version") if isinstance(manifest, dict) else None
    if version not in SUPPORTED_FORMAT_VERSIONS:
        raise ArtifactError(
            f"model bundle '{run_dir}': unknown manifest format version {version!r}; "
            f"this taskclf reads {sorted(SUPPORTED_FORMAT_VERSIONS)}, upgrade taskclf"
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise ArtifactError(f"model bundle '{run_dir}': manifest has no 'files' table")
    for name in BUNDLE_FILES:
        expected = files.get(name)
        actual = sha256_file(run_dir / name)
        if expected != actual:
            raise ArtifactError(
                f"model bundle '{run_dir}': checksum mismatch for '{name}' (manifest "
                f"{str(expected)[:12]}..., file {actual[:12]}...); the file was modified"
            )
    return dict(manifest)


def load_metadata(run_dir: Path) -> ModelMetadata:
    """Parse ``metadata.json`` of a bundle (no checksum verification)."""
    data = _read_json(run_dir / "metadata.json")
    try:
        return ModelMetadata.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ArtifactError(
            f"'{run_dir / 'metadata.json'}': field {'.'.join(map(str, err['loc']))}: {err['msg']}"
        ) from None


def check_model_text(text: str, n_classes: int, *, where: str) -> None:
    """Check a LightGBM text model's header against its trees before LightGBM parses it.

    LightGBM aborts the whole process (not an exception) on some inconsistent model files,
    e.g. a truncated one or a changed ``num_class``; these checks turn those into errors:
    the ``tree`` header, ``num_class`` and ``num_tree_per_iteration`` equal to the label
    set's size, one ``Tree=`` block per ``tree_sizes`` entry (a whole number of iterations),
    and the ``end of trees`` marker.

    Raises:
        ArtifactError: naming ``where`` and the inconsistency.
    """
    head, sep, _ = text.partition("\n\nTree=")
    fields = dict(line.split("=", 1) for line in head.splitlines()[1:] if "=" in line)
    problem = None
    if not text.startswith("tree\n") or not sep:
        problem = "no 'tree' header followed by trees"
    elif fields.get("num_class") != str(n_classes):
        problem = f"num_class={fields.get('num_class')} but the label set has {n_classes}"
    elif fields.get("num_tree_per_iteration") != str(n_classes):
        problem = f"num_tree_per_iteration={fields.get('num_tree_per_iteration')}, not {n_classes}"
    else:
        sizes = len(fields.get("tree_sizes", "").split())
        trees = text.count("\nTree=")
        if sizes != trees or trees % n_classes:
            problem = f"{trees} trees but tree_sizes lists {sizes} (truncated or edited?)"
        elif "\nend of trees\n" not in text:
            problem = "no 'end of trees' marker (truncated?)"
    if problem is not None:
        raise ArtifactError(
            f"{where} is not a complete LightGBM model: {problem}; retrain with "
            "'taskclf train lgbm' or restore the bundle"
        )


def load_model_bundle(
    run_dir: Path,
    *,
    validate_schema: bool = True,
    validate_labels: bool = True,
) -> tuple[lgb.Booster, ModelMetadata, dict[str, LabelEncoder]]:
    """Load and verify a bundle; return ``(booster, metadata, cat_encoders)``."""
    run_dir = Path(run_dir)
    verify_bundle_files(run_dir)
    metadata = load_metadata(run_dir)
    if validate_schema:
        schema = SCHEMAS.get(metadata.schema_version)
        if schema is None:
            raise ArtifactError(
                f"model bundle '{run_dir}': unknown schema_version {metadata.schema_version!r}"
            )
        if metadata.schema_hash != schema.SCHEMA_HASH:
            raise ArtifactError(
                f"model bundle '{run_dir}': schema_hash {metadata.schema_hash!r} does not match "
                f"schema {metadata.schema_version} ({schema.SCHEMA_HASH!r}); the bundle was "
                "trained on a different feature contract"
            )
    if validate_labels and list(metadata.label_set) != list(LABEL_SET_V1):
        raise ArtifactError(
            f"model bundle '{run_dir}': label_set {metadata.label_set} differs from the core "
            f"label set {list(LABEL_SET_V1)}"
        )
    model_path = run_dir / "model.txt"
    try:
        text = model_path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ArtifactError(f"'{model_path}' is not a LightGBM model: not UTF-8 text") from None
    check_model_text(text, len(metadata.label_set), where=f"'{model_path}'")
    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise ArtifactError(f"'{model_path}' is not a LightGBM model: {exc}") from None
    encoders = encoders_from_json(
        _read_json(run_dir / "categorical_encoders.json"),
        where=str(run_dir / "categorical_encoders.json"),
    )
    if booster.num_model_per_iteration() != len(metadata.label_set):
        raise ArtifactError(
            f"model bundle '{run_dir}': model has {booster.num_model_per_iteration()} classes, "
            f"label_set has {len(metadata.label_set)}"
        )
    return booster, metadata, encoders


# Active-model pointer ---------------------------------------------------------------------


class ActivePointer(BaseModel):
    """``models/active.json``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    run_id: str
    set_at: datetime
    reason: str


def set_active_model(layout: Layout, run_id: str, *, reason: str = "manual") -> ActivePointer:
    """Point ``models/active.json`` at a verified bundle; append to the history log."""
    run_dir = layout.run_dir(run_id)
    load_model_bundle(run_dir)
    pointer = ActivePointer(run_id=run_id, set_at=utc_now(), reason=reason)
    record = pointer.model_dump(mode="json")
    atomic_write_json(layout.active_pointer, record)
    append_line_durably(layout.active_history, json.dumps(record, sort_keys=True))
    return pointer


def get_active_model(layout: Layout) -> Path | None:
    """The active bundle's directory, or None when no model was activated yet."""
    path = layout.active_pointer
    if not path.exists():
        return None
    try:
        pointer = ActivePointer.model_validate(_read_json(path))
    except ValidationError as exc:
        raise ArtifactError(f"'{path}' is invalid: {exc.errors()[0]['msg']}") from None
    return layout.run_dir(pointer.run_id)


def list_bundles(layout: Layout) -> list[Path]:
    """Bundle directories under ``models/`` (sorted by run id, i.e. creation time)."""
    if not layout.models_dir.is_dir():
        return []
    return sorted(
        p
        for p in layout.models_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).exists()
    )
