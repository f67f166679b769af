"""Core value types: labels, label spans, feature rows and window predictions."""

from __future__ import annotations

import math
import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from taskclf.core.defaults import MAX_USER_ID_LENGTH, MIXED_UNKNOWN
from taskclf.core.errors import InputError, LabelError


class CoreLabel(StrEnum):
    """The eight core task types; documented ids 0..7 follow this declaration order."""

    Build = "Build"
    Debug = "Debug"
    Review = "Review"
    Write = "Write"
    ReadResearch = "ReadResearch"
    Communicate = "Communicate"
    Meet = "Meet"
    BreakIdle = "BreakIdle"


#: Documented label ids (0..7) in declaration order.
CORE_LABEL_IDS: dict[str, int] = {label.value: i for i, label in enumerate(CoreLabel)}
#: The bundle label set: sorted alphabetically. Probability columns follow this order.
LABEL_SET_V1: tuple[str, ...] = tuple(sorted(label.value for label in CoreLabel))
#: The reject label; never a training label.
REJECT_LABEL: str = MIXED_UNKNOWN


def validate_label(label: str, *, where: str = "") -> str:
    """Return ``label`` if it is a core label, else raise :class:`LabelError`."""
    if label not in CORE_LABEL_IDS:
        loc = f" {where}" if where else ""
        raise LabelError(
            f"unknown label{loc}: {label!r}; expected one of {', '.join(LABEL_SET_V1)}"
        )
    return label


def validate_user_id(user_id: str, *, where: str = "") -> str:
    """Check that ``user_id`` is an acceptable identifier.

    User ids are opaque strings of 1..128 printable characters without path separators,
    control characters or surrounding whitespace, and never ``.`` or ``..``. Paths encode
    them anyway (``core.paths.encode_user_id``); this check refuses ids that are surely
    mistakes or attacks before anything is stored.
    """
    loc = f" {where}" if where else ""
    if not isinstance(user_id, str):
        raise InputError(f"user id{loc} must be a string, got {type(user_id).__name__}")
    problem = None
    if not user_id:
        problem = "is empty"
    elif len(user_id) > MAX_USER_ID_LENGTH:
        problem = f"is {len(user_id)} characters long (max {MAX_USER_ID_LENGTH})"
    elif user_id in (".", ".."):
        problem = "is a relative path component"
    elif any(ch in user_id for ch in "/\\"):
        problem = "contains a path separator"
    elif any(unicodedata.category(ch).startswith("C") for ch in user_id):
        problem = "contains a control or unassigned character"
    elif user_id != user_id.strip():
        problem = "has leading or trailing whitespace"
    if problem:
        shown = user_id[:40].encode("unicode_escape").decode("ascii")
        raise InputError(
            f"user id{loc} {problem}: {shown!r}; use 1-{MAX_USER_ID_LENGTH} printable "
            "characters without '/' or '\\'"
        )
    return user_id


def _require_aware_utc(value: datetime, field: str) -> datetime:
    from taskclf.core.time import ensure_utc

    return ensure_utc(value, field=field)


class LabelSpan(BaseModel):
    """A labeled time span ``[start_ts, end_ts)`` (DESIGN §4.1)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start_ts: datetime
    end_ts: datetime
    label: str
    provenance: str = "manual"
    user_id: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    extend_forward: bool = False

    @field_validator("start_ts", "end_ts")
    @classmethod
    def _aware(cls, v: datetime, info: Any) -> datetime:
        return _require_aware_utc(v, info.field_name)

    @field_validator("label")
    @classmethod
    def _label(cls, v: str) -> str:
        return validate_label(v)

    @field_validator("user_id")
    @classmethod
    def _user(cls, v: str | None) -> str | None:
        return None if v is None else validate_user_id(v)

    @field_validator("provenance")
    @classmethod
    def _provenance(cls, v: str) -> str:
        if not v or len(v) > 64 or any(unicodedata.category(c).startswith("C") for c in v):
            raise LabelError(f"provenance must be 1-64 printable characters, got {v[:64]!r}")
        return v

    @field_validator("confidence")
    @classmethod
    def _confidence(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise LabelError(f"confidence must be finite in [0, 1], got {v!r}")
        return v

    @model_validator(mode="after")
    def _order(self) -> LabelSpan:
        if self.end_ts <= self.start_ts:
            raise LabelError(
                f"label span end_ts {self.end_ts.isoformat()} must be after start_ts "
                f"{self.start_ts.isoformat()}"
            )
        return self


class FeatureRow(BaseModel):
    """The identifying and base columns of one per-minute feature row.

    Feature frames are validated column-wise by ``core.schema``; this model is the typed view
    of one row's bookkeeping part for code that handles rows one at a time.
    """

    model_config = ConfigDict(frozen=True, extra="allow")

    user_id: str | None = None
    device_id: str | None = None
    session_id: str
    bucket_start_ts: datetime
    bucket_end_ts: datetime
    schema_version: str
    schema_hash: str
    app_id: str
    app_category: str

    @field_validator("bucket_start_ts", "bucket_end_ts")
    @classmethod
    def _aware(cls, v: datetime, info: Any) -> datetime:
        return _require_aware_utc(v, info.field_name)


class WindowPrediction(BaseModel):
    """One output record (DESIGN §4.6); probabilities are finite and sum to 1."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: str
    bucket_start_ts: datetime
    core_label: str
    confidence: float = Field(ge=0.0, le=1.0)
    is_rejected: bool
    predicted_label: str
    mapped_label: str
    core_probs: list[float]
    model_id: str

    @field_validator("bucket_start_ts")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return _require_aware_utc(v, "bucket_start_ts")

    @field_validator("core_label")
    @classmethod
    def _core(cls, v: str) -> str:
        return validate_label(v, where="core_label")

    @field_validator("predicted_label")
    @classmethod
    def _pred(cls, v: str) -> str:
        if v == REJECT_LABEL:
            return v
        return validate_label(v, where="predicted_label")

    @field_validator("core_probs")
    @classmethod
    def _probs(cls, v: list[float]) -> list[float]:
        if len(v) != len(LABEL_SET_V1):
            raise InputError(f"core_probs must have {len(LABEL_SET_V1)} entries, got {len(v)}")
        if not all(math.isfinite(p) and p >= 0.0 for p in v):
            raise InputError(f"core_probs must be finite and non-negative, got {v}")
        total = math.fsum(v)
        if abs(total - 1.0) > 1e-6:
            raise InputError(f"core_probs must sum to 1, got {total!r}")
        return v
