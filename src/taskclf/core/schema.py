"""Feature schemas v1, v2, v3: ordered columns, their hash, and validation.

The schema hash is the first 12 hex characters of SHA-256 over the compact JSON of the ordered
``[column_name, python_type_name]`` pairs (DESIGN §4.2). Nullability does not enter the hash.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from taskclf.core.defaults import TITLE_SKETCH_BUCKETS
from taskclf.core.errors import SchemaError

SchemaVersion = Literal["v1", "v2", "v3"]
TypeName = Literal["str", "datetime", "list", "bool", "int", "float"]


@dataclass(frozen=True)
class Column:
    """One schema column: name, python type name, nullability and optional value range."""

    name: str
    type: TypeName
    nullable: bool = False
    min_value: float | None = None
    max_value: float | None = None


def _c(
    name: str,
    type_: TypeName,
    nullable: bool = False,
    lo: float | None = None,
    hi: float | None = None,
) -> Column:
    return Column(name, type_, nullable, lo, hi)


_NONNEG = 0.0
_BASE_V1: tuple[Column, ...] = (
    _c("user_id", "str"),
    _c("device_id", "str", True),
    _c("session_id", "str"),
    _c("bucket_start_ts", "datetime"),
    _c("bucket_end_ts", "datetime"),
    _c("schema_version", "str"),
    _c("schema_hash", "str"),
    _c("source_ids", "list"),
    _c("app_id", "str"),
    _c("app_category", "str"),
    _c("window_title_hash", "str"),
    _c("is_browser", "bool"),
    _c("is_editor", "bool"),
    _c("is_terminal", "bool"),
    _c("app_switch_count_last_5m", "int", lo=_NONNEG),
    _c("app_foreground_time_ratio", "float", lo=0.0, hi=1.0),
    _c("app_change_count", "int", lo=_NONNEG),
    _c("app_dwell_time_seconds", "float", lo=_NONNEG),
    _c("app_entropy_5m", "float", True, lo=_NONNEG),
    _c("app_entropy_15m", "float", True, lo=_NONNEG),
    _c("top2_app_concentration_15m", "float", True, lo=0.0, hi=1.0),
    _c("idle_return_indicator", "bool"),
    _c("keys_per_min", "float", True, lo=_NONNEG),
    _c("backspace_ratio", "float", True, lo=0.0, hi=1.0),
    _c("shortcut_rate", "float", True, lo=_NONNEG),
    _c("clicks_per_min", "float", True, lo=_NONNEG),
    _c("scroll_events_per_min", "float", True, lo=_NONNEG),
    _c("mouse_distance", "float", True, lo=_NONNEG),
    _c("active_seconds_keyboard", "float", True, lo=0.0, hi=60.0),
    _c("active_seconds_mouse", "float", True, lo=0.0, hi=60.0),
    _c("active_seconds_any", "float", True, lo=0.0, hi=60.0),
    _c("max_idle_run_seconds", "float", True, lo=0.0, hi=60.0),
    _c("event_density", "float", True, lo=_NONNEG),
    _c("domain_category", "str"),
    _c("window_title_bucket", "int", lo=0, hi=255),
    _c("title_repeat_count_session", "int", lo=_NONNEG),
    _c("keys_per_min_rolling_5", "float", True, lo=_NONNEG),
    _c("keys_per_min_rolling_15", "float", True, lo=_NONNEG),
    _c("mouse_distance_rolling_5", "float", True, lo=_NONNEG),
    _c("mouse_distance_rolling_15", "float", True, lo=_NONNEG),
    _c("keys_per_min_delta", "float", True),
    _c("clicks_per_min_delta", "float", True),
    _c("mouse_distance_delta", "float", True),
    _c("app_switch_count_last_15m", "int", lo=_NONNEG),
    _c("hour_of_day", "int", lo=0, hi=23),
    _c("day_of_week", "int", lo=0, hi=6),
    _c("session_length_so_far", "float", lo=_NONNEG),
)

TITLE_TOKEN_SKETCH_COLUMNS: tuple[str, ...] = tuple(
    f"title_token_sketch_{i:03d}" for i in range(TITLE_SKETCH_BUCKETS)
)
TITLE_CHAR3_SKETCH_COLUMNS: tuple[str, ...] = tuple(
    f"title_char3_sketch_{i:03d}" for i in range(TITLE_SKETCH_BUCKETS)
)
_TITLE_V3: tuple[Column, ...] = (
    *(_c(n, "float", lo=0.0, hi=1.0) for n in TITLE_TOKEN_SKETCH_COLUMNS),
    *(_c(n, "float", lo=0.0, hi=1.0) for n in TITLE_CHAR3_SKETCH_COLUMNS),
    _c("title_char_count", "int", lo=_NONNEG),
    _c("title_token_count", "int", lo=_NONNEG),
    _c("title_unique_token_ratio", "float", lo=0.0, hi=1.0),
    _c("title_digit_ratio", "float", lo=0.0, hi=1.0),
    _c("title_separator_count", "int", lo=_NONNEG),
)

# Identifiers and bookkeeping columns: never model features.
NON_FEATURE_COLUMNS: frozenset[str] = frozenset(
    {
        "device_id",
        "session_id",
        "bucket_start_ts",
        "bucket_end_ts",
        "schema_version",
        "schema_hash",
        "source_ids",
        "window_title_hash",
    }
)
CATEGORICAL_FEATURES_BASE: tuple[str, ...] = ("app_id", "app_category", "domain_category")


def compute_schema_hash(columns: tuple[Column, ...]) -> str:
    """First 12 hex chars of SHA-256 over compact JSON of ``[[name, type], ...]``."""
    pairs = [[c.name, c.type] for c in columns]
    payload = json.dumps(pairs, separators=(",", ":"))
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:12]


class FeatureSchema:
    """Base for the versioned feature schemas; subclasses fix ``VERSION`` and ``COLUMNS``."""

    VERSION: ClassVar[SchemaVersion]
    COLUMN_SPECS: ClassVar[tuple[Column, ...]]
    COLUMNS: ClassVar[tuple[str, ...]]
    SCHEMA_HASH: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.COLUMNS = tuple(c.name for c in cls.COLUMN_SPECS)
        cls.SCHEMA_HASH = compute_schema_hash(cls.COLUMN_SPECS)

    @classmethod
    def feature_columns(cls) -> tuple[str, ...]:
        """Model feature columns in schema order."""
        drop = set(NON_FEATURE_COLUMNS)
        if cls.VERSION != "v1":
            drop.add("user_id")
        return tuple(c for c in cls.COLUMNS if c not in drop)

    @classmethod
    def categorical_columns(cls) -> tuple[str, ...]:
        """Categorical model features (``user_id`` too in v1)."""
        if cls.VERSION == "v1":
            return ("user_id", *CATEGORICAL_FEATURES_BASE)
        return CATEGORICAL_FEATURES_BASE

    @classmethod
    def validate_row(cls, row: Mapping[str, Any]) -> None:
        """Validate one row (a mapping); raise :class:`SchemaError` naming the bad column."""
        _check_column_set(cls, set(row))
        for spec in cls.COLUMN_SPECS:
            _check_value(cls, spec, row[spec.name], where="row")
        _check_identity(cls, row["schema_version"], row["schema_hash"], where="row")

    @classmethod
    def validate_dataframe(cls, df: pd.DataFrame) -> None:
        """Validate a frame: exact column set, dtypes, nulls and value ranges."""
        _check_column_set(cls, set(map(str, df.columns)))
        for spec in cls.COLUMN_SPECS:
            _check_series(cls, spec, df[spec.name])
        if len(df):
            versions = set(df["schema_version"].unique())
            hashes = set(df["schema_hash"].unique())
            if versions != {cls.VERSION} or hashes != {cls.SCHEMA_HASH}:
                raise SchemaError(
                    f"schema {cls.VERSION}: column 'schema_version'/'schema_hash' must be "
                    f"{cls.VERSION!r}/{cls.SCHEMA_HASH!r}, got {sorted(versions)}/{sorted(hashes)}"
                )

    @classmethod
    def validate_table(cls, table: pa.Table) -> None:
        """Validate a stored (Parquet) table before it is cast to the schema's dtypes.

        Checks what the cast would otherwise hide or crash on: the exact columns in schema
        order, a storage type per column that casts losslessly (``int`` from integers only,
        ``float`` from floats or integers, ``str`` from strings, ...; an all-missing column
        of a nullable one may be typed ``null``) and no missing value in a non-nullable
        column (pandas stores NaN as missing). Only the table's metadata and null bitmaps
        are read; value checks (ranges, infinities) stay with :meth:`validate_dataframe`.

        Raises:
            SchemaError: Naming the column, the expected and stored type or the missing
                values' count and first row.
        """
        names = [str(n) for n in table.column_names]
        _check_column_set(cls, set(names))
        if tuple(names) != cls.COLUMNS:
            i = next(i for i, (a, b) in enumerate(zip(names, cls.COLUMNS, strict=True)) if a != b)
            raise SchemaError(
                f"schema {cls.VERSION}: columns out of order; position {i} holds {names[i]!r}, "
                f"expected {cls.COLUMNS[i]!r}"
            )
        for spec in cls.COLUMN_SPECS:
            column = table.column(spec.name)
            prefix = f"schema {cls.VERSION}: column {spec.name!r}"
            if not _storage_type_ok(spec, column.type):
                raise SchemaError(
                    f"{prefix} expects {spec.type}, stored as {column.type} "
                    f"(all {table.num_rows} rows)"
                )
            if column.null_count and not spec.nullable:
                nulls = column.is_null().to_numpy(zero_copy_only=False)
                raise SchemaError(
                    f"{prefix} is not nullable, got {column.null_count} missing value(s) in "
                    f"{table.num_rows} rows (first at row {int(np.flatnonzero(nulls)[0])})"
                )


def _storage_type_ok(spec: Column, dtype: pa.DataType) -> bool:
    """Whether a Parquet/Arrow column of ``dtype`` casts losslessly to ``spec``'s type."""
    if pa.types.is_null(dtype):
        return spec.nullable
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if spec.type == "list":
        if not (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)):
            return False
        dtype = dtype.value_type
        return bool(pa.types.is_null(dtype)) or _is_text(dtype)  # list<null>: all lists empty
    return bool(
        {
            "int": pa.types.is_integer,
            "float": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
            "bool": pa.types.is_boolean,
            "str": _is_text,
            "datetime": pa.types.is_timestamp,
        }[spec.type](dtype)
    )


def _is_text(dtype: pa.DataType) -> bool:
    return bool(
        pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    )  # fmt: skip


def _check_column_set(cls: type[FeatureSchema], got: set[str]) -> None:
    expected = set(cls.COLUMNS)
    missing = sorted(expected - got)
    extra = sorted(got - expected)
    if missing or extra:
        raise SchemaError(
            f"schema {cls.VERSION}: column set mismatch; missing {missing[:10]}"
            f"{'...' if len(missing) > 10 else ''}, unexpected {extra[:10]}"
            f"{'...' if len(extra) > 10 else ''}"
        )


def _check_identity(cls: type[FeatureSchema], version: Any, hash_: Any, where: str) -> None:
    if version != cls.VERSION or hash_ != cls.SCHEMA_HASH:
        raise SchemaError(
            f"schema {cls.VERSION} {where}: schema_version/schema_hash must be "
            f"{cls.VERSION!r}/{cls.SCHEMA_HASH!r}, got {version!r}/{hash_!r}"
        )


def _is_missing(value: Any) -> bool:
    if value is None or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def _check_value(cls: type[FeatureSchema], spec: Column, value: Any, where: str) -> None:
    prefix = f"schema {cls.VERSION} {where}: column {spec.name!r}"
    if _is_missing(value):
        if not spec.nullable:
            raise SchemaError(f"{prefix} is not nullable, got {value!r}")
        return
    ok = {
        "str": lambda v: isinstance(v, str),
        "datetime": lambda v: isinstance(v, datetime) and v.tzinfo is not None,
        "list": lambda v: isinstance(v, list | tuple | np.ndarray),
        "bool": lambda v: isinstance(v, bool | np.bool_),
        "int": lambda v: isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_),
        "float": lambda v: (
            isinstance(v, float | int | np.floating | np.integer)
            and not isinstance(v, bool | np.bool_)
        ),
    }[spec.type](value)
    if not ok:
        raise SchemaError(f"{prefix} expects {spec.type}, got a {type(value).__name__}")
    if spec.type in ("int", "float"):
        v = float(value)
        if not math.isfinite(v):
            raise SchemaError(f"{prefix} must be finite, got {value!r}")
        if spec.min_value is not None and v < spec.min_value:
            raise SchemaError(f"{prefix} must be >= {spec.min_value}, got {value!r}")
        if spec.max_value is not None and v > spec.max_value:
            raise SchemaError(f"{prefix} must be <= {spec.max_value}, got {value!r}")


def _check_series(cls: type[FeatureSchema], spec: Column, s: pd.Series) -> None:
    prefix = f"schema {cls.VERSION}: column {spec.name!r}"
    nulls = s.isna().to_numpy() if spec.type != "list" else s.map(_is_missing).to_numpy(bool)
    if nulls.any() and not spec.nullable:
        i = int(np.flatnonzero(nulls)[0])
        raise SchemaError(f"{prefix} is not nullable, got a missing value at row {i}")
    dtype = s.dtype
    if spec.type in ("int", "float", "bool"):
        kind = getattr(dtype, "kind", "O")
        allowed = {"int": "iu", "float": "fiu", "bool": "b"}[spec.type]
        if kind not in allowed:
            raise SchemaError(f"{prefix} expects {spec.type} dtype, got {dtype}")
        if spec.type == "bool":
            return
        values = s.to_numpy(dtype=np.float64, na_value=np.nan)
        present = values[~np.isnan(values)]
        if np.isinf(present).any():
            i = int(np.flatnonzero(np.isinf(values))[0])
            raise SchemaError(f"{prefix} must be finite, got {float(values[i])!r} at row {i}")
        _check_range(prefix, spec, values)
    elif spec.type == "datetime":
        if not isinstance(dtype, pd.DatetimeTZDtype):
            raise SchemaError(f"{prefix} expects timezone-aware datetime dtype, got {dtype}")
    elif spec.type == "str":
        present = s[~nulls]
        if len(present) and not present.map(lambda v: isinstance(v, str)).all():
            bad = present[~present.map(lambda v: isinstance(v, str))].iloc[0]
            raise SchemaError(f"{prefix} expects str values, got {type(bad).__name__} {bad!r}")


def _check_range(prefix: str, spec: Column, values: np.ndarray) -> None:
    with np.errstate(invalid="ignore"):
        if spec.min_value is not None:
            bad = np.flatnonzero(values < spec.min_value)
            if bad.size:
                i = int(bad[0])
                raise SchemaError(
                    f"{prefix} must be >= {spec.min_value}, got {float(values[i])!r} at row {i}"
                )
        if spec.max_value is not None:
            bad = np.flatnonzero(values > spec.max_value)
            if bad.size:
                i = int(bad[0])
                raise SchemaError(
                    f"{prefix} must be <= {spec.max_value}, got {float(values[i])!r} at row {i}"
                )


class FeatureSchemaV1(FeatureSchema):
    """Schema v1: 47 columns; ``user_id`` is a categorical model feature (legacy)."""

    VERSION: ClassVar[SchemaVersion] = "v1"
    COLUMN_SPECS: ClassVar[tuple[Column, ...]] = _BASE_V1


class FeatureSchemaV2(FeatureSchema):
    """Schema v2: v1 without ``user_id`` (46 columns); the model is user-agnostic."""

    VERSION: ClassVar[SchemaVersion] = "v2"
    COLUMN_SPECS: ClassVar[tuple[Column, ...]] = tuple(c for c in _BASE_V1 if c.name != "user_id")


class FeatureSchemaV3(FeatureSchema):
    """Schema v3 (default): v1 plus privacy-safe title sketches and statistics (308 columns).

    ``user_id`` is kept as an identifier but, as in v2, is not a model feature.
    """

    VERSION: ClassVar[SchemaVersion] = "v3"
    COLUMN_SPECS: ClassVar[tuple[Column, ...]] = _BASE_V1 + _TITLE_V3


SCHEMAS: dict[str, type[FeatureSchema]] = {
    "v1": FeatureSchemaV1,
    "v2": FeatureSchemaV2,
    "v3": FeatureSchemaV3,
}


def get_schema(version: str) -> type[FeatureSchema]:
    """Return the schema class of ``version`` or raise :class:`SchemaError`."""
    try:
        return SCHEMAS[version]
    except KeyError:
        raise SchemaError(
            f"unknown feature schema version {version!r}; expected one of {sorted(SCHEMAS)}"
        ) from None
