"""Probability calibrators and the per-user :class:`CalibratorStore` (DESIGN §4.4).

A calibrator maps the model's core probabilities (columns in the bundle's sorted ``label_set``
order) to calibrated probabilities. Every implementation follows one contract, checked by one
test battery run over all of them:

- ``calibrate(core_probs)`` accepts shape ``(k,)`` or ``(n, k)`` and returns the same shape,
  float64, finite, each row summing to 1; it is deterministic and never mutates its input;
  calibrating rows one at a time gives bit-for-bit the batch result.
- Input policy: probabilities must be finite and non-negative (anything else is an
  :class:`~taskclf.core.errors.InputError` naming the row and column). Each row is first
  rescaled to sum to 1; an all-zero row becomes uniform. Row sums are taken column by column in
  a fixed order, so a row's result never depends on the other rows of the batch.

Implementations:

- :class:`IdentityCalibrator`: the normalized input.
- :class:`TemperatureCalibrator` (Guo et al. 2017, "On Calibration of Modern Neural Networks"):
  ``q = softmax(log(max(p, PROB_EPS)) / T)``. ``T > 1`` softens, ``T < 1`` sharpens, ``T = 1`` is
  the identity (up to the ``PROB_EPS`` floor). A monotone map per row: the argmax is kept.
- :class:`IsotonicCalibrator` (Zadrozny & Elkan 2002, "Transforming Classifier Scores into
  Accurate Multiclass Probability Estimates"): one monotone piecewise-linear map per class,
  ``q_c = interp(p_c; x_c, y_c)`` through the stored threshold points (inputs outside
  ``[x_c[0], x_c[-1]]`` are clipped to the end values, like scikit-learn's
  ``out_of_bounds="clip"``), then renormalized; an all-zero result row becomes uniform.

On disk (format version :data:`CALIBRATOR_STORE_FORMAT_VERSION`)::

    <store_dir>/store.json        CalibratorStoreManifest (core.inference_policy)
    <store_dir>/global.json       {"type": ..., ...}
    <store_dir>/users/<f>.json    {"type": ..., ..., "user_id": "<the real id>"}

where ``<f>`` is ``core.paths.encode_user_id(user_id)``; ``store.json`` also lists each user's
file name, so a store keeps loading even if the encoding ever changes. Calibrator JSON is
``{"type": "identity"}``, ``{"type": "temperature", "temperature": T}`` or
``{"type": "isotonic", "regressors": [{"x": [...], "y": [...]}, ...]}``; a missing or unknown
``type`` is an :class:`~taskclf.core.errors.ArtifactError` naming the file, never identity.
A store is written as a whole: built in a hidden directory beside the target and swapped in by
two renames; if a crash interrupts the swap, :func:`load_calibrator_store` loads the previous
store from its backup (``.<name>.old`` beside the target).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import ValidationError

from taskclf.core._atomic import atomic_write_json, dumps_json, fsync_dir
from taskclf.core.defaults import CALIBRATOR_STORE_FORMAT_VERSION
from taskclf.core.errors import ArtifactError, InputError
from taskclf.core.inference_policy import (
    STORE_GLOBAL_FILE,
    STORE_MANIFEST_FILE,
    STORE_REPORT_FILE,
    STORE_USERS_DIR,
    CalibratorStoreManifest,
    existing_store_dir,
    store_backup_dir,
)
from taskclf.core.paths import encode_user_id
from taskclf.core.time import ensure_utc, utc_now
from taskclf.infer._calibrators import (
    PROB_EPS,
    CalibrationMethod,
    Calibrator,
    IdentityCalibrator,
    IsotonicCalibrator,
    IsotonicMap,
    TemperatureCalibrator,
    apply_normalized,
    as_matrix,
    calibrator_from_json,
    calibrator_method,
    calibrator_to_json,
    normalize_probs,
    normalize_rows,
)

logger = logging.getLogger(__name__)
_USER_FILE = re.compile(r"[A-Za-z0-9._~%-]+\.json")

__all__ = [
    "PROB_EPS",
    "CalibrationMethod",
    "Calibrator",
    "CalibratorStore",
    "IdentityCalibrator",
    "IsotonicCalibrator",
    "IsotonicMap",
    "TemperatureCalibrator",
    "calibrator_from_json",
    "calibrator_method",
    "calibrator_to_json",
    "check_store_target",
    "load_calibrator",
    "load_calibrator_store",
    "normalize_probs",
    "save_calibrator",
    "save_calibrator_store",
]


# The store --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibratorStore:
    """A global calibrator plus per-user calibrators for personalized users.

    Attributes:
        global_calibrator: Used for every user without a dedicated calibrator.
        user_calibrators: ``user_id -> calibrator`` (read-only mapping).
        method: ``temperature``, ``isotonic`` or ``identity``; every calibrator is of this type.
        model_bundle_id: Run directory name of the model bundle the store was fitted for.
        model_schema_hash: That bundle's schema hash.
        created_at: When the store was fitted (aware UTC).
    """

    global_calibrator: Calibrator
    user_calibrators: Mapping[str, Calibrator]
    method: CalibrationMethod
    model_bundle_id: str | None = None
    model_schema_hash: str | None = None
    created_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        users = dict(self.user_calibrators)
        for uid in users:
            if not isinstance(uid, str):
                raise InputError(f"calibrator store user ids must be strings, got {uid!r}")
        for who, cal in [("global", self.global_calibrator), *users.items()]:
            kind = calibrator_method(cal)
            if kind != self.method:
                raise InputError(
                    f"calibrator store method is {self.method!r} but the calibrator of "
                    f"{who!r} is {kind!r}; all calibrators of a store use one method"
                )
        object.__setattr__(self, "user_calibrators", MappingProxyType(users))
        object.__setattr__(self, "created_at", ensure_utc(self.created_at, field="created_at"))

    @property
    def user_ids(self) -> list[str]:
        """Users with a dedicated calibrator, sorted."""
        return sorted(self.user_calibrators)

    def get_calibrator(self, user_id: str) -> Calibrator:
        """The user's calibrator, else the global one."""
        return self.user_calibrators.get(user_id, self.global_calibrator)

    def calibrate_batch(
        self, core_probs: ArrayLike, user_ids: Sequence[str] | NDArray[Any]
    ) -> NDArray[np.float64]:
        """Calibrate rows of many users: one vectorized call per personalized user.

        Rows are grouped by user (``pandas.factorize`` + a stable sort of the codes); rows of
        users without a dedicated calibrator go through the global one in a single call.

        Args:
            core_probs: Shape ``(n, k)``.
            user_ids: Length ``n``, one string per row.

        Returns:
            Shape ``(n, k)``, row ``i`` equal to ``get_calibrator(user_ids[i]).calibrate(p[i])``.
        """
        p, one_d = as_matrix(core_probs)
        if one_d:
            raise InputError(f"calibrate_batch needs shape (n, k), got {p.shape[1:]}")
        if len(p) == 1 and len(user_ids) == 1 and isinstance(user_ids[0], str):
            # one row of one user (the online path): no grouping
            return apply_normalized(self.get_calibrator(user_ids[0]), normalize_rows(p))
        uids = np.asarray(user_ids, dtype=object)
        if uids.shape != (p.shape[0],):
            raise InputError(
                f"user_ids has shape {uids.shape}, probabilities have {p.shape[0]} rows"
            )
        p = normalize_rows(p)
        if not self.user_calibrators:
            return apply_normalized(self.global_calibrator, p)
        codes, uniques = pd.factorize(uids, use_na_sentinel=True)
        if (codes < 0).any():
            raise InputError(f"user_ids[{int(np.flatnonzero(codes < 0)[0])}] is missing")
        bad = [u for u in uniques if not isinstance(u, str)]
        if bad:
            raise InputError(f"user ids must be strings, got {type(bad[0]).__name__}")
        personal = np.fromiter((u in self.user_calibrators for u in uniques), bool, len(uniques))
        out = np.empty_like(p)
        rest = np.flatnonzero(~personal[codes])
        if rest.size:
            out[rest] = apply_normalized(self.global_calibrator, p[rest])
        order = np.argsort(codes, kind="stable")
        counts = np.bincount(codes, minlength=len(uniques))
        starts = np.cumsum(counts) - counts
        for j in np.flatnonzero(personal):
            idx = order[starts[j] : starts[j] + counts[j]]
            out[idx] = apply_normalized(self.user_calibrators[uniques[j]], p[idx])
        return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"calibrator file '{path}' is missing; re-run 'taskclf train calibrate'"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ArtifactError(f"calibrator file '{path}' is not readable JSON: {exc}") from None


def save_calibrator(calibrator: Calibrator, path: Path) -> None:
    """Write one calibrator as JSON to ``path`` atomically."""
    atomic_write_json(Path(path), calibrator_to_json(calibrator))


def load_calibrator(path: Path) -> Calibrator:
    """Read a calibrator written by :func:`save_calibrator` (errors name the file)."""
    path = Path(path)
    return calibrator_from_json(_read_json(path), where=str(path))


# Store on disk ----------------------------------------------------------------------------


def _write_synced(path: Path, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(dumps_json(obj))
        fh.flush()
        os.fsync(fh.fileno())


def _user_files(user_ids: Sequence[str]) -> dict[str, str]:
    files = {uid: encode_user_id(uid) + ".json" for uid in user_ids}
    if len(set(files.values())) != len(files):  # pragma: no cover - encode_user_id is injective
        raise ArtifactError("two user ids encode to the same file name")
    return files


def save_calibrator_store(store: CalibratorStore, store_dir: Path) -> Path:
    """Write ``store`` to ``store_dir`` as a whole, replacing any previous store atomically.

    The files are written into a hidden directory beside ``store_dir`` and fsynced; then the
    previous store is renamed to ``.<name>.old``, the new one renamed into place, and the
    backup removed. A crash before the second rename leaves the previous store loadable
    (from its backup, see :func:`load_calibrator_store`).

    Returns:
        ``store_dir``.
    """
    store_dir = Path(store_dir)
    check_store_target(store_dir)
    store_dir.parent.mkdir(parents=True, exist_ok=True)
    files = _user_files(store.user_ids)
    manifest = CalibratorStoreManifest(
        format_version=CALIBRATOR_STORE_FORMAT_VERSION,
        method=store.method,
        user_count=len(files),
        user_ids=store.user_ids,
        user_files=files,
        model_bundle_id=store.model_bundle_id,
        model_schema_hash=store.model_schema_hash,
        created_at=store.created_at,
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{store_dir.name}.new-", dir=store_dir.parent))
    try:
        (staging / STORE_USERS_DIR).mkdir()
        _write_synced(staging / STORE_GLOBAL_FILE, calibrator_to_json(store.global_calibrator))
        for uid, name in files.items():
            body = {**calibrator_to_json(store.user_calibrators[uid]), "user_id": uid}
            _write_synced(staging / STORE_USERS_DIR / name, body)
        _write_synced(staging / STORE_MANIFEST_FILE, manifest.model_dump(mode="json"))
        _swap_into_place(staging, store_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return store_dir


_STORE_ENTRIES = frozenset(
    {STORE_MANIFEST_FILE, STORE_GLOBAL_FILE, STORE_USERS_DIR, STORE_REPORT_FILE}
)


def check_store_target(store_dir: Path) -> None:
    """Refuse to replace a directory that is not a calibrator store (a wrong ``--out``).

    A store is replaced as a whole, so only a new or empty directory, or one holding nothing
    but a store's own entries (its manifest, global and users' files, fit report), may go: a
    file of the user's own inside would be deleted with it. A path that exists and is not a
    directory is refused as well.

    Raises:
        ArtifactError: ``store_dir`` is something else.
    """
    if store_dir.exists() and not store_dir.is_dir():
        raise ArtifactError(f"calibrator store path '{store_dir}' exists and is not a directory")
    if not store_dir.is_dir():
        return
    names = {p.name for p in store_dir.iterdir()}
    foreign = sorted(names - _STORE_ENTRIES)
    if not foreign:
        return
    what = "a calibrator store with" if STORE_MANIFEST_FILE in names else "not a calibrator store:"
    raise ArtifactError(
        f"'{store_dir}' is {what} {len(foreign)} other entries (e.g. {foreign[0][:40]!r}); "
        "writing the store there would replace the directory as a whole. Move them out, or "
        "choose a new or empty directory for the store"
    )


def _swap_into_place(staging: Path, store_dir: Path) -> None:
    backup = store_backup_dir(store_dir)
    if store_dir.exists():
        shutil.rmtree(backup, ignore_errors=True)
        os.rename(store_dir, backup)
    os.rename(staging, store_dir)
    fsync_dir(store_dir.parent)
    shutil.rmtree(backup, ignore_errors=True)


def _load_manifest(store_dir: Path) -> CalibratorStoreManifest:
    path = store_dir / STORE_MANIFEST_FILE
    data = _read_json(path)
    try:
        return CalibratorStoreManifest.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ArtifactError(
            f"calibrator store '{path}': field {'.'.join(map(str, err['loc']))}: {err['msg']}; "
            "re-run 'taskclf train calibrate'"
        ) from None


def _load_user(users_dir: Path, uid: str, name: str) -> Calibrator:
    if not _USER_FILE.fullmatch(name) or name.startswith("."):
        raise ArtifactError(
            f"calibrator store '{users_dir.parent}': unsafe user file name {name[:60]!r}"
        )
    path = users_dir / name
    data = _read_json(path)
    stored = data.get("user_id") if isinstance(data, dict) else None
    if stored != uid:
        raise ArtifactError(
            f"calibrator '{path}': holds user_id {str(stored)[:60]!r} but store.json maps "
            f"{uid[:60]!r} to it; the store was modified by hand, re-run 'taskclf train calibrate'"
        )
    return calibrator_from_json(data, where=str(path))


def load_calibrator_store(store_dir: Path) -> CalibratorStore:
    """Load a store written by :func:`save_calibrator_store`.

    If ``store_dir`` is missing but the backup of an interrupted save exists beside it, the
    backup (the previous store) is loaded and a warning logged.

    Raises:
        ArtifactError: No store, a missing or corrupt file, an unknown format version, a user
            file that does not hold the user store.json maps to it.
    """
    store_dir = existing_store_dir(Path(store_dir))
    manifest = _load_manifest(store_dir)
    users_dir = store_dir / STORE_USERS_DIR
    if set(manifest.user_files) != set(manifest.user_ids):
        raise ArtifactError(
            f"calibrator store '{store_dir / STORE_MANIFEST_FILE}': user_files and user_ids "
            "list different users; re-run 'taskclf train calibrate'"
        )
    users = {uid: _load_user(users_dir, uid, manifest.user_files[uid]) for uid in manifest.user_ids}
    global_path = store_dir / STORE_GLOBAL_FILE
    global_cal = calibrator_from_json(_read_json(global_path), where=str(global_path))
    try:
        return CalibratorStore(
            global_calibrator=global_cal,
            user_calibrators=users,
            method=manifest.method,
            model_bundle_id=manifest.model_bundle_id,
            model_schema_hash=manifest.model_schema_hash,
            created_at=manifest.created_at,
        )
    except InputError as exc:
        raise ArtifactError(f"calibrator store '{store_dir}': {exc}") from None
