"""Labeled datasets: loading labeled feature rows, content hashes, writing split datasets.

The day-blocked train/validation/test splitting rule lives in :mod:`taskclf.train._split`;
its public names are re-exported here (``split_by_time``, ``SplitSummary``, ...).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from taskclf.core._atomic import atomic_write_json, atomic_write_with
from taskclf.core.defaults import DEFAULT_BUCKET_SECONDS, DEFAULT_TIMEZONE
from taskclf.core.encoding import feature_columns
from taskclf.core.errors import InputError
from taskclf.core.paths import Layout
from taskclf.train._split import (
    SINGLE_USER_KEY,
    SPLIT_FORMAT_VERSION,
    SPLIT_NAMES,
    DatasetSplits,
    DayRange,
    SplitName,
    SplitStats,
    SplitSummary,
    UserSplit,
    allocate_days,
    assign_recorded_split,
    choose_holdout_users,
    split_by_time,
    user_keys,
)

__all__ = [
    "SINGLE_USER_KEY",
    "SPLIT_FORMAT_VERSION",
    "SPLIT_NAMES",
    "BuiltDataset",
    "DataProvenance",
    "DatasetSplits",
    "DayRange",
    "LabeledData",
    "SplitName",
    "SplitStats",
    "SplitSummary",
    "UserSplit",
    "allocate_days",
    "assign_recorded_split",
    "build_dataset",
    "choose_holdout_users",
    "dataset_dir",
    "dataset_hash",
    "load_labeled_dataset",
    "load_labeled_features",
    "split_by_time",
    "user_keys",
    "write_dataset",
]

DataProvenance = Literal["real", "synthetic", "mixed"]
_SYNTHETIC = "synthetic"


# Hashing ----------------------------------------------------------------------------------


def dataset_hash(df: pd.DataFrame, schema_version: str = "v3") -> str:
    """Stable 16-hex content hash of a labeled frame (model features, label, user, time).

    Row order matters (frames from :func:`split_by_time` are sorted); the index does not.
    """
    cols = [c for c in ("user_id", "bucket_start_ts") if c in df.columns]
    cols += [c for c in feature_columns(schema_version) if c not in cols]
    cols.append("label")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(f"cannot hash the dataset: columns {missing[:8]} are missing")
    h = hashlib.sha256(json.dumps(cols).encode("utf-8"))
    for col in cols:
        series = df[col]
        if series.dtype.kind in "biuf":
            values = series.to_numpy(dtype=np.float64, na_value=np.nan)
            h.update(np.ascontiguousarray(values).tobytes())
        else:
            # Strings and timestamps go through one canonical text form.
            text = series.astype(object).map(lambda v: "\x00" if _is_missing(v) else str(v))
            h.update("\x1f".join(text.tolist()).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return h.hexdigest()[:16]


def _is_missing(value: object) -> bool:
    return (
        value is None
        or value is pd.NA
        or value is pd.NaT
        or (isinstance(value, float) and math.isnan(value))
    )


# Loading labeled rows ---------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledData:
    """Labeled feature rows and where their labels came from."""

    frame: pd.DataFrame
    data_provenance: DataProvenance
    feature_rows: int
    span_count: int


def _provenance(features: pd.DataFrame, spans: pd.DataFrame, labeled: pd.Series) -> DataProvenance:
    """Where the labels of the ``labeled`` rows come from.

    ``synthetic`` if every labeled row is covered by spans of provenance ``synthetic`` only,
    ``real`` if by other spans only (manual, import, weak rules, ...), else ``mixed``.
    """
    from taskclf.labels.projection import project_blocks_to_windows

    synthetic = spans["provenance"].astype(str) == _SYNTHETIC
    if synthetic.all():
        return "synthetic"
    if not synthetic.any():
        return "real"
    only_synth = project_blocks_to_windows(features, spans[synthetic])["label"].notna()
    only_real = project_blocks_to_windows(features, spans[~synthetic])["label"].notna()
    if (only_synth[labeled] & ~only_real[labeled]).all():
        return "synthetic"
    if (only_real[labeled] & ~only_synth[labeled]).all():
        return "real"
    return "mixed"


def _load_features_with_users(
    layout: Layout,
    span_users: Sequence[str],
    date_from: date,
    date_to: date,
    user_ids: Sequence[str] | None,
    schema_version: str,
) -> pd.DataFrame:
    """Feature rows, with a ``user_id`` column even for schemas that lack one (v2).

    v2 rows carry no user, but label spans do: when some span belongs to a user, the rows are
    loaded user by user (``user_ids``, else every user that has spans of its own) and tagged
    with a ``user_id`` identifier column (never a v2 model feature), so projection matches
    each user's spans and the split keeps per-user days. Rows of users without spans of their
    own are then left out.
    """
    from taskclf.features.build import load_features

    features = load_features(
        layout, date_from, date_to, user_ids=user_ids, schema_version=schema_version
    )
    if "user_id" in features.columns or len(features) == 0 or not span_users:
        return features
    parts = []
    for user in list(user_ids) if user_ids else span_users:
        part = load_features(
            layout, date_from, date_to, user_ids=[user], schema_version=schema_version
        )
        if len(part):
            part.insert(0, "user_id", pd.Series([user] * len(part), dtype=object))
            parts.append(part)
    return pd.concat(parts, ignore_index=True) if parts else features.iloc[:0]


def load_labeled_dataset(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    schema_version: str = "v3",
) -> LabeledData:
    """Feature rows of ``date_from..date_to`` (inclusive) with projected labels, labeled only.

    Dates are the UTC days of the feature partitions. For schema v2 the frame also gets a
    ``user_id`` identifier column (see :func:`_load_features_with_users`).

    Raises:
        InputError: No feature rows in the range, or none of them is covered by labels.
    """
    from taskclf.labels.projection import project_blocks_to_windows
    from taskclf.labels.store import LabelStore

    who = f"users {list(user_ids)}" if user_ids else "any user"
    span = f"{date_from.isoformat()}..{date_to.isoformat()}"
    store = LabelStore.for_layout(layout)
    features = _load_features_with_users(
        layout, store.user_ids(), date_from, date_to, user_ids, schema_version
    )
    if len(features) == 0:
        raise InputError(
            f"no feature rows (schema {schema_version}) for {who} in {span} under "
            f"'{layout.features_dir(schema_version)}'; run 'taskclf features build --from "
            f"{date_from.isoformat()} --to {date_to.isoformat()}' first"
        )
    starts = features["bucket_start_ts"]
    spans = store.spans_frame(
        start=starts.min().to_pydatetime(),
        end=(starts.max() + pd.Timedelta(seconds=DEFAULT_BUCKET_SECONDS)).to_pydatetime(),
    )
    projected = project_blocks_to_windows(features, spans)
    labeled = projected["label"].notna()
    if not labeled.any():
        raise InputError(
            f"none of the {len(features)} feature rows for {who} in {span} is covered by a "
            f"label span ({len(spans)} spans in '{layout.labels_db}'); add labels with "
            "'taskclf labels import' or 'taskclf labels add-block'"
        )
    frame = projected[labeled].reset_index(drop=True)
    return LabeledData(
        frame=frame,
        data_provenance=_provenance(features, spans, labeled),
        feature_rows=len(features),
        span_count=len(spans),
    )


def load_labeled_features(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    schema_version: str = "v3",
) -> pd.DataFrame:
    """Features + projected ``label`` column, only labeled rows (see load_labeled_dataset)."""
    return load_labeled_dataset(
        layout, date_from, date_to, user_ids=user_ids, schema_version=schema_version
    ).frame


# Writing a dataset ------------------------------------------------------------------------


def dataset_dir(layout: Layout, name: str) -> Path:
    """``<datasets_dir>/<name>/`` (see ``Layout.dataset_dir``)."""
    return layout.dataset_dir(name)


def _parquet_writer(frame: pd.DataFrame) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        frame.to_parquet(tmp, index=False)

    return write


def write_dataset(layout: Layout, splits: DatasetSplits, name: str) -> Path:
    """Write ``{train,val,test}.parquet`` and ``splits.json`` under :func:`dataset_dir`."""
    out = dataset_dir(layout, name)
    out.mkdir(parents=True, exist_ok=True)
    for split in SPLIT_NAMES:
        atomic_write_with(out / f"{split}.parquet", _parquet_writer(splits.frame(split)))
    atomic_write_json(out / "splits.json", splits.summary.model_dump(mode="json"))
    return out


@dataclass(frozen=True)
class BuiltDataset:
    """What :func:`build_dataset` wrote."""

    path: Path
    name: str
    summary: SplitSummary
    data_provenance: DataProvenance
    dataset_hash: str


def build_dataset(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    schema_version: str = "v3",
    holdout_user_fraction: float = 0.0,
    seed: int = 0,
    timezones: Mapping[str, str] | None = None,
    default_timezone: str = DEFAULT_TIMEZONE,
    name: str | None = None,
) -> BuiltDataset:
    """Load labeled rows, split them by day, and write the dataset (``taskclf train
    build-dataset``).

    The default name is ``<from>_<to>_<schema>_<hash8>`` where ``hash8`` starts the content
    hash of all labeled rows, so the same inputs always land in the same folder.
    """
    data = load_labeled_dataset(
        layout, date_from, date_to, user_ids=user_ids, schema_version=schema_version
    )
    splits = split_by_time(
        data.frame,
        holdout_user_fraction=holdout_user_fraction,
        timezones=timezones,
        default_timezone=default_timezone,
        seed=seed,
    )
    ordered = pd.concat([splits.train, splits.val, splits.test], ignore_index=True)
    digest = dataset_hash(ordered, schema_version)
    folder = name or f"{date_from.isoformat()}_{date_to.isoformat()}_{schema_version}_{digest[:8]}"
    path = write_dataset(layout, splits, folder)
    return BuiltDataset(
        path=path,
        name=folder,
        summary=splits.summary,
        data_provenance=data.data_provenance,
        dataset_hash=digest,
    )
