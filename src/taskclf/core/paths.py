"""Every path under the taskclf home (DESIGN §3). Nothing else spells paths.

A ``Layout`` is built once at start from ``--home`` / ``TASKCLF_HOME`` / the platform data
dir; never at import time.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import quote

import platformdirs

from taskclf.core.errors import InputError

HOME_ENV = "TASKCLF_HOME"
_PLAIN_ID = re.compile(r"[A-Za-z0-9._-]+")
_MAX_PLAIN_FILENAME = 120


def encode_user_id(user_id: str) -> str:
    """Encode a user id into a safe, collision-free file or directory name.

    Plain ids (``[A-Za-z0-9._-]``, not ``.``/``..``, not starting with ``~``) are kept as they
    are. Anything else is percent-encoded behind a ``~`` prefix (``~`` never appears in a plain
    id, so encoded and plain names cannot collide); an encoding longer than the file-name limit
    is replaced by ``~h`` + SHA-256 of the id.
    """
    if not isinstance(user_id, str):
        raise InputError(f"user id must be a string, got {type(user_id).__name__}")
    if (
        _PLAIN_ID.fullmatch(user_id)
        and user_id not in (".", "..")
        and len(user_id) <= _MAX_PLAIN_FILENAME
    ):
        return user_id
    encoded = "~" + quote(user_id, safe="").replace(".", "%2E")
    if len(encoded) > _MAX_PLAIN_FILENAME or user_id in ("", ".", ".."):
        return "~h" + hashlib.sha256(user_id.encode("utf-8", "surrogatepass")).hexdigest()
    return encoded


def default_home() -> Path:
    """``TASKCLF_HOME`` if set, else the platform user data dir."""
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_data_dir("taskclf", appauthor=False))


@dataclass(frozen=True)
class Layout:
    """All paths under one taskclf home."""

    home: Path

    @classmethod
    def resolve(cls, home: Path | None = None) -> Layout:
        """Layout for ``home`` if given, else :func:`default_home`."""
        return cls((home or default_home()).expanduser().absolute())

    # data -----------------------------------------------------------------
    @property
    def raw_aw_dir(self) -> Path:
        return self.home / "data" / "raw" / "aw"

    def raw_user_dir(self, user_id: str) -> Path:
        return self.raw_aw_dir / encode_user_id(user_id)

    def raw_events_partition(self, user_id: str, day: date) -> Path:
        return self.raw_user_dir(user_id) / f"date={day.isoformat()}" / "events.parquet"

    def features_dir(self, schema_version: str = "v3") -> Path:
        return self.home / "data" / "processed" / f"features_{schema_version}"

    def features_partition(self, day: date, user_id: str, schema_version: str = "v3") -> Path:
        return (
            self.features_dir(schema_version)
            / f"date={day.isoformat()}"
            / f"{encode_user_id(user_id)}.parquet"
        )

    def features_state_dir(self, schema_version: str = "v3") -> Path:
        return self.features_dir(schema_version) / "_state"

    @property
    def labels_db(self) -> Path:
        return self.home / "data" / "processed" / "labels_v1" / "labels.sqlite"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "data" / "processed" / "datasets"

    def dataset_dir(self, name: str) -> Path:
        """``datasets/<name>/`` of one built dataset (plain names only)."""
        if not re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", name) or name in (".", ".."):
            raise InputError(f"invalid dataset name {name!r}; use letters, digits, '-', '_', '.'")
        return self.datasets_dir / name

    # models ---------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def run_dir(self, run_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", run_id) or run_id in (".", ".."):
            raise InputError(f"invalid model run id {run_id!r}")
        return self.models_dir / run_id

    @property
    def active_pointer(self) -> Path:
        return self.models_dir / "active.json"

    @property
    def active_history(self) -> Path:
        return self.models_dir / "active_history.jsonl"

    @property
    def inference_policy(self) -> Path:
        return self.models_dir / "inference_policy.json"

    # artifacts ------------------------------------------------------------
    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def calibrator_store_dir(self) -> Path:
        return self.artifacts_dir / "calibrator_store"

    @property
    def predictions_dir(self) -> Path:
        return self.artifacts_dir / "predictions"

    def predictions_partition(self, day: date, user_id: str) -> Path:
        """Batch predictions of one user and local date (DESIGN §4.6 records)."""
        return (
            self.predictions_dir / f"date={day.isoformat()}" / f"{encode_user_id(user_id)}.parquet"
        )

    @property
    def segments_file(self) -> Path:
        """Segments of the latest batch run (a JSON list of segment objects)."""
        return self.predictions_dir / "segments.json"

    @property
    def reports_dir(self) -> Path:
        return self.artifacts_dir / "reports"

    def report_dir(self, user_id: str, day: date) -> Path:
        """Daily report files (``daily.json/.csv/.parquet/.png``) of one user and local date."""
        return self.reports_dir / encode_user_id(user_id) / day.isoformat()

    def online_predictions_file(self, user_id: str, day: date) -> Path:
        """Append-only JSONL of online predictions of one user and local date."""
        return self.online_dir / encode_user_id(user_id) / f"{day.isoformat()}.jsonl"

    def online_segments_file(self, user_id: str, day: date) -> Path:
        """Segments of one user's online predictions of one local date."""
        return self.online_dir / encode_user_id(user_id) / f"{day.isoformat()}.segments.json"

    def online_report_dir(self, user_id: str, day: date) -> Path:
        """Daily report files of one user's online predictions of one local date.

        Kept apart from :meth:`report_dir` (reports of batch predictions), so neither source
        overwrites the other's report of the same day.
        """
        return self.online_dir / encode_user_id(user_id) / f"{day.isoformat()}.report"

    def evaluation_run_dir(self, run_id: str) -> Path:
        """Evaluation report and plots of one model bundle."""
        return self.evaluation_dir / self.run_dir(run_id).name

    @property
    def evaluation_dir(self) -> Path:
        return self.artifacts_dir / "evaluation"

    @property
    def online_dir(self) -> Path:
        return self.artifacts_dir / "online"

    # configs --------------------------------------------------------------
    @property
    def configs_dir(self) -> Path:
        return self.home / "configs"

    @property
    def config_file(self) -> Path:
        return self.configs_dir / "config.toml"

    @property
    def taxonomy_file(self) -> Path:
        return self.configs_dir / "taxonomy.yaml"

    @property
    def title_secret(self) -> Path:
        return self.configs_dir / ".title_secret"

    def check_output(self, path: Path, *, option: str) -> Path:
        """Refuse an output path chosen by the user that would overwrite the home's own data.

        The stores the product manages (``data/``: events, features, labels; ``models/``) and
        the config and title secret are never a command's output file; the artifacts folder
        and any path outside the home are fine.

        Raises:
            InputError: ``path`` lies in a managed store or is a managed file.
        """
        target = path.expanduser().absolute()
        managed = (self.home / "data", self.models_dir)
        files = (self.config_file, self.title_secret)
        if any(target == m or target.is_relative_to(m) for m in managed) or target in files:
            raise InputError(
                f"{option} '{path}' is inside the taskclf home's own data ({self.home}); "
                "writing there would overwrite what taskclf manages. Choose another path"
            )
        return path

    def describe(self) -> dict[str, Path]:
        """The main locations, for display."""
        return {
            "home": self.home,
            "raw events": self.raw_aw_dir,
            "features (v3)": self.features_dir("v3"),
            "labels": self.labels_db,
            "models": self.models_dir,
            "calibrator store": self.calibrator_store_dir,
            "inference policy": self.inference_policy,
            "predictions": self.predictions_dir,
            "reports": self.reports_dir,
            "config": self.config_file,
        }


def user_file_name(user_id: str, suffix: str) -> str:
    """File name for a per-user file, e.g. ``users/<encoded>.json``."""
    return f"{encode_user_id(user_id)}{suffix}"
