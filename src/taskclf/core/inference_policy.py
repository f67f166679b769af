"""The inference policy (``models/inference_policy.json``) and the calibrator-store binding.

An :class:`InferencePolicy` is the deployment descriptor that binds one model bundle, the
calibrator store fitted for it, and the reject thresholds tuned on that store's calibrated
probabilities (DESIGN §4.5). Paths inside the home are stored relative to it, so a home can be
moved or copied; paths outside stay absolute.

:func:`validate_policy` checks, each with its own error class (all :class:`ArtifactError`):

- :class:`PolicyModelError`: the bundle is missing or does not load (checksums, schema, labels);
- :class:`PolicySchemaMismatchError`: the bundle's schema hash differs from the policy's;
- :class:`PolicyLabelSetMismatchError`: the bundle's label set differs from the policy's;
- :class:`PolicyStoreMismatchError`: the store is missing, or was fitted for another bundle,
  another schema, or with another method than the policy says.

This module also owns the calibrator store's manifest (``store.json``,
:class:`CalibratorStoreManifest`) and file names, because the binding check reads it here
without importing ``infer`` (``core`` imports nothing of ours outside ``core``).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from taskclf.core._atomic import atomic_write_json
from taskclf.core.defaults import (
    CALIBRATOR_STORE_FORMAT_VERSION,
    DEFAULT_REJECT_THRESHOLD,
    INFERENCE_POLICY_VERSION,
)
from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.model_io import (
    ModelMetadata,
    current_git_commit,
    load_metadata,
    load_model_bundle,
)
from taskclf.core.paths import Layout
from taskclf.core.time import ensure_utc, utc_now

logger = logging.getLogger(__name__)

# Calibrator store layout --------------------------------------------------------------------

STORE_MANIFEST_FILE = "store.json"
STORE_GLOBAL_FILE = "global.json"
STORE_USERS_DIR = "users"
STORE_REPORT_FILE = "calibration_report.json"  # the fit report written beside the store's files
SUPPORTED_STORE_FORMAT_VERSIONS = frozenset({1})
StoreMethod = Literal["identity", "temperature", "isotonic"]


class CalibratorStoreManifest(BaseModel):
    """``store.json`` of a calibrator store.

    ``user_files`` maps each personalized user id to its file name under ``users/``
    (``core.paths.encode_user_id(user_id) + ".json"``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: int = CALIBRATOR_STORE_FORMAT_VERSION
    method: StoreMethod
    user_count: int = Field(ge=0)
    user_ids: list[str]
    user_files: dict[str, str]
    model_bundle_id: str | None
    model_schema_hash: str | None
    created_at: datetime

    @field_validator("format_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v not in SUPPORTED_STORE_FORMAT_VERSIONS:
            raise ValueError(
                f"unknown store format version {v}; this taskclf reads "
                f"{sorted(SUPPORTED_STORE_FORMAT_VERSIONS)}, upgrade taskclf"
            )
        return v

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return ensure_utc(v, field="created_at")

    @model_validator(mode="after")
    def _counts(self) -> CalibratorStoreManifest:
        if self.user_count != len(self.user_ids) or len(set(self.user_ids)) != len(self.user_ids):
            raise ValueError(
                f"user_count {self.user_count} does not match {len(self.user_ids)} user_ids "
                "(or user_ids repeat)"
            )
        return self


def store_backup_dir(store_dir: Path) -> Path:
    """Where a save keeps the previous store while swapping in a new one."""
    return store_dir.parent / f".{store_dir.name}.old"


def existing_store_dir(store_dir: Path) -> Path:
    """``store_dir`` if it holds a store, else the backup of an interrupted save, else error."""
    if (store_dir / STORE_MANIFEST_FILE).is_file():
        return store_dir
    backup = store_backup_dir(store_dir)
    if not store_dir.exists() and (backup / STORE_MANIFEST_FILE).is_file():
        logger.warning(
            "calibrator store '%s' is missing but the previous store survives at '%s' (a save "
            "was interrupted); using it. Re-run 'taskclf train calibrate' to replace it.",
            store_dir,
            backup,
        )
        return backup
    raise ArtifactError(
        f"no calibrator store at '{store_dir}' ('{STORE_MANIFEST_FILE}' not found); run "
        "'taskclf train calibrate' to fit one"
    )


def read_store_manifest(store_dir: Path) -> CalibratorStoreManifest:
    """Parse ``store.json`` of the store at ``store_dir`` (see :func:`existing_store_dir`)."""
    path = existing_store_dir(Path(store_dir)) / STORE_MANIFEST_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"calibrator store '{path}' is not readable JSON: {exc}") from None
    try:
        return CalibratorStoreManifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ArtifactError(
            f"calibrator store '{path}': field {'.'.join(map(str, err['loc']))}: {err['msg']}; "
            "re-run 'taskclf train calibrate'"
        ) from None


# Errors -------------------------------------------------------------------------------------


class PolicyError(ArtifactError):
    """The inference policy is invalid or does not match its artifacts."""


class PolicyModelError(PolicyError):
    """The policy's model bundle is missing or does not load."""


class PolicySchemaMismatchError(PolicyError):
    """The policy's schema hash differs from its bundle's."""


class PolicyLabelSetMismatchError(PolicyError):
    """The policy's label set differs from its bundle's."""


class PolicyStoreMismatchError(PolicyError):
    """The policy's calibrator store is missing or was fitted for something else."""


# The policy ---------------------------------------------------------------------------------


def _check_threshold(value: float, who: str) -> float:
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"reject threshold of {who} must be in [0, 1], got {value!r}")
    return value


class InferencePolicy(BaseModel):
    """``models/inference_policy.json`` (DESIGN §4.5).

    ``model_dir`` and ``calibrator_store_dir`` are POSIX paths relative to the home when the
    artifact lies inside it, absolute otherwise. ``calibrator_store_dir`` is ``None`` when no
    calibration is applied; ``calibration_method`` is then ``None`` too.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    policy_version: int = INFERENCE_POLICY_VERSION
    model_dir: str = Field(min_length=1)
    model_schema_hash: str = Field(min_length=1)
    model_label_set: list[str]
    calibrator_store_dir: str | None = None
    calibration_method: StoreMethod | None = None
    # strict: a JSON true or "0.5" is a hand edit gone wrong, not a threshold
    reject_threshold: float = Field(strict=True)
    per_user_reject_thresholds: dict[str, Annotated[float, Field(strict=True)]] = Field(
        default_factory=dict
    )
    created_at: datetime
    source: str = Field(min_length=1, max_length=64)
    git_commit: str | None = None

    @field_validator("policy_version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v != INFERENCE_POLICY_VERSION:
            raise ValueError(
                f"unknown policy_version {v}; this taskclf reads {INFERENCE_POLICY_VERSION}"
            )
        return v

    @field_validator("model_dir", "calibrator_store_dir")
    @classmethod
    def _path(cls, v: str | None) -> str | None:
        if v is not None and "\x00" in v:
            raise ValueError("a path must not contain a NUL character")
        return v

    @field_validator("reject_threshold")
    @classmethod
    def _thr(cls, v: float) -> float:
        return _check_threshold(v, "the policy")

    @field_validator("per_user_reject_thresholds")
    @classmethod
    def _thrs(cls, v: dict[str, float]) -> dict[str, float]:
        for uid, thr in v.items():
            _check_threshold(thr, f"user {uid[:60]!r}")
        return dict(sorted(v.items()))

    @field_validator("created_at")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return ensure_utc(v, field="created_at")

    @model_validator(mode="after")
    def _store_method(self) -> InferencePolicy:
        if (self.calibrator_store_dir is None) != (self.calibration_method is None):
            raise ValueError("calibrator_store_dir and calibration_method must be set together")
        return self

    def resolve_model_dir(self, home: Path) -> Path:
        """Absolute bundle directory (relative paths are taken from ``home``)."""
        return _from_policy_path(self.model_dir, home)

    def resolve_calibrator_store_dir(self, home: Path) -> Path | None:
        """Absolute store directory, or ``None`` when the policy applies no calibration."""
        if self.calibrator_store_dir is None:
            return None
        return _from_policy_path(self.calibrator_store_dir, home)

    def threshold_for(self, user_id: str) -> float:
        """The user's reject threshold, else the global one."""
        return self.per_user_reject_thresholds.get(user_id, self.reject_threshold)


def to_policy_path(path: Path, home: Path) -> str:
    """``path`` relative to ``home`` (POSIX) when inside it, else absolute."""
    absolute = Path(path).expanduser().resolve()
    try:
        return absolute.relative_to(Path(home).expanduser().resolve()).as_posix()
    except ValueError:
        return str(absolute)


def _from_policy_path(text: str, home: Path) -> Path:
    path = Path(text)
    return path if path.is_absolute() else Path(home) / path


def _policy_file(layout_or_path: Layout | Path) -> Path:
    return (
        layout_or_path.inference_policy
        if isinstance(layout_or_path, Layout)
        else Path(layout_or_path)
    )


def build_inference_policy(
    layout: Layout,
    model_dir: Path,
    *,
    calibrator_store_dir: Path | None = None,
    reject_threshold: float | None = None,
    per_user_reject_thresholds: Mapping[str, float] | None = None,
    source: str = "manual",
    created_at: datetime | None = None,
    git_commit: str | None = None,
) -> InferencePolicy:
    """Assemble a policy from a bundle (its metadata) and optionally a store (its manifest).

    Args:
        layout: The home; paths inside it are stored relative to it.
        model_dir: The bundle directory.
        calibrator_store_dir: The calibrator store fitted for that bundle, or ``None``.
        reject_threshold: Global threshold; ``None`` takes the bundle's advisory
            ``reject_threshold``, else ``DEFAULT_REJECT_THRESHOLD``.
        per_user_reject_thresholds: ``user_id -> threshold`` for personalized users.
        source: What created the policy (``tune-reject``, ``manual``, ...).
        created_at: Creation time (default: now).
        git_commit: Code version (default: the working tree's commit, if any).

    Raises:
        ArtifactError: The bundle metadata or the store manifest cannot be read.
        InputError: A threshold outside ``[0, 1]``.
    """
    metadata = load_metadata(Path(model_dir))
    method: StoreMethod | None = None
    store_text: str | None = None
    if calibrator_store_dir is not None:
        method = read_store_manifest(calibrator_store_dir).method
        store_text = to_policy_path(calibrator_store_dir, layout.home)
    if reject_threshold is None:
        reject_threshold = (
            metadata.reject_threshold
            if metadata.reject_threshold is not None
            else DEFAULT_REJECT_THRESHOLD
        )
    try:
        return InferencePolicy(
            model_dir=to_policy_path(model_dir, layout.home),
            model_schema_hash=metadata.schema_hash,
            model_label_set=list(metadata.label_set),
            calibrator_store_dir=store_text,
            calibration_method=method,
            reject_threshold=float(reject_threshold),
            per_user_reject_thresholds=dict(per_user_reject_thresholds or {}),
            created_at=created_at or utc_now(),
            source=source,
            git_commit=git_commit if git_commit is not None else current_git_commit(),
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise InputError(
            f"inference policy field {'.'.join(map(str, err['loc']))}: {err['msg']}"
        ) from None


def save_inference_policy(policy: InferencePolicy, layout_or_path: Layout | Path) -> Path:
    """Write the policy atomically (to ``layout.inference_policy`` or the given file)."""
    path = _policy_file(layout_or_path)
    atomic_write_json(path, policy.model_dump(mode="json"))
    return path


def load_inference_policy(layout_or_path: Layout | Path) -> InferencePolicy | None:
    """Read the policy; ``None`` when the file does not exist.

    Raises:
        ArtifactError: The file exists but is not a valid policy (names the file and field).
    """
    path = _policy_file(layout_or_path)
    if not path.exists():
        return None
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PolicyError(f"inference policy '{path}' is not readable JSON: {exc}") from None
    try:
        return InferencePolicy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise PolicyError(
            f"inference policy '{path}': field {'.'.join(map(str, err['loc']))}: {err['msg']}; "
            "recreate it with 'taskclf train tune-reject --write-policy' or 'taskclf policy create'"
        ) from None


def remove_inference_policy(layout_or_path: Layout | Path) -> bool:
    """Delete the policy file; return whether one existed."""
    path = _policy_file(layout_or_path)
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


@dataclass(frozen=True)
class ValidatedPolicy:
    """A policy whose artifacts were checked, with its paths resolved."""

    policy: InferencePolicy
    model_dir: Path
    calibrator_store_dir: Path | None
    metadata: ModelMetadata


def check_store_binding(
    store_dir: Path, *, model_bundle_id: str, model_schema_hash: str, where: str = ""
) -> CalibratorStoreManifest:
    """Check that the store at ``store_dir`` was fitted for the given bundle.

    Raises:
        PolicyStoreMismatchError: Missing store, or another bundle id or schema hash.
    """
    prefix = f"{where}: " if where else ""
    try:
        manifest = read_store_manifest(store_dir)
    except ArtifactError as exc:
        raise PolicyStoreMismatchError(f"{prefix}{exc}") from None
    if manifest.model_bundle_id != model_bundle_id:
        raise PolicyStoreMismatchError(
            f"{prefix}calibrator store '{store_dir}' was fitted for model "
            f"{manifest.model_bundle_id!r}, not {model_bundle_id!r}; re-run 'taskclf train "
            f"calibrate --model-dir <that model>' or point at the matching store"
        )
    if manifest.model_schema_hash != model_schema_hash:
        raise PolicyStoreMismatchError(
            f"{prefix}calibrator store '{store_dir}' records schema hash "
            f"{manifest.model_schema_hash!r}, the model has {model_schema_hash!r}; re-run "
            "'taskclf train calibrate' for this model"
        )
    return manifest


def validate_policy(policy: InferencePolicy, layout: Layout) -> ValidatedPolicy:
    """Check that the policy's model loads and matches it, and its store was fitted for it.

    Raises:
        PolicyModelError, PolicySchemaMismatchError, PolicyLabelSetMismatchError,
        PolicyStoreMismatchError: see the module doc.
    """
    where = f"inference policy '{layout.inference_policy}'"
    model_dir = policy.resolve_model_dir(layout.home)
    try:
        _, metadata, _ = load_model_bundle(model_dir)
    except ArtifactError as exc:
        raise PolicyModelError(f"{where}: model_dir {policy.model_dir!r}: {exc}") from None
    store_dir = policy.resolve_calibrator_store_dir(layout.home)
    method = None
    if store_dir is not None:
        method = check_store_binding(
            store_dir,
            model_bundle_id=model_dir.name,
            model_schema_hash=metadata.schema_hash,
            where=where,
        ).method
    check_policy_matches(policy, metadata, model_dir, store_dir, method, where=where)
    return ValidatedPolicy(policy, model_dir, store_dir, metadata)


def check_policy_matches(
    policy: InferencePolicy,
    metadata: ModelMetadata,
    model_dir: Path,
    store_dir: Path | None,
    store_method: str | None,
    *,
    where: str,
) -> None:
    """Check what the policy recorded against its loaded bundle and store.

    ``store_method`` is the method of the store at ``store_dir`` (None without a store).

    Raises:
        PolicySchemaMismatchError, PolicyLabelSetMismatchError, PolicyStoreMismatchError.
    """
    if metadata.schema_hash != policy.model_schema_hash:
        raise PolicySchemaMismatchError(
            f"{where}: model_schema_hash {policy.model_schema_hash!r} but the bundle "
            f"'{model_dir}' has {metadata.schema_hash!r}; recreate the policy for this model"
        )
    if list(metadata.label_set) != list(policy.model_label_set):
        raise PolicyLabelSetMismatchError(
            f"{where}: model_label_set {policy.model_label_set} but the bundle '{model_dir}' "
            f"has {list(metadata.label_set)}; recreate the policy for this model"
        )
    if store_method is not None and store_method != policy.calibration_method:
        raise PolicyStoreMismatchError(
            f"{where}: calibration_method {policy.calibration_method!r} but the store "
            f"'{store_dir}' uses {store_method!r}; recreate the policy"
        )
