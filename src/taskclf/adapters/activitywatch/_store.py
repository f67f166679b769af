"""Event partitions on disk: ``data/raw/aw/<user>/date=YYYY-MM-DD/events.parquet``.

Partitioning is by **UTC date**, and an event is stored in the partition of every UTC day it
overlaps (a zero-duration event in the day of its timestamp). Reading a date range therefore
needs no look-back for long events (real AFK events last days), and the same event read from
two partitions is the same row (deduplicated by ``event_id``). UTC (not the user's zone) keeps
partitions stable when a configured time zone changes; feature rows get local hours from the
configured zone.

Writes merge with what is there (deduplicated by ``event_id``, keeping the longest end) and
replace each partition atomically; a partition whose content does not change is not rewritten,
so re-ingesting the same data leaves every file byte-identical.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from taskclf.adapters.activitywatch.events import (
    EVENT_COLUMNS,
    FLOAT_COLUMNS,
    TIME_COLUMNS,
    coerce_events,
    dedupe_events,
    empty_events,
)
from taskclf.core._atomic import atomic_path
from taskclf.core.errors import ArtifactError
from taskclf.core.paths import Layout

_DAY_US: Final = 86_400 * 1_000_000
_EPOCH_DATE: Final = date(1970, 1, 1)

ARROW_SCHEMA: Final = pa.schema(
    [
        (
            c,
            pa.timestamp("us", tz="UTC")
            if c in TIME_COLUMNS
            else pa.float64()
            if c in FLOAT_COLUMNS
            else pa.string(),
        )
        for c in EVENT_COLUMNS
    ]
)


@dataclass(frozen=True)
class PartitionWrite:
    """What one partition write did."""

    day: date
    path: Path
    added: int
    updated: int
    total: int
    rewritten: bool


def _us(series: pd.Series) -> NDArray[np.int64]:
    """Microseconds since the epoch of a tz-aware datetime series."""
    naive = series.dt.tz_convert("UTC").dt.tz_localize(None)
    out: NDArray[np.int64] = naive.to_numpy(dtype="datetime64[us]").view(np.int64)
    return out


def days_of(events: pd.DataFrame) -> dict[date, NDArray[np.intp]]:
    """Row positions of ``events`` per UTC day they overlap."""
    if events.empty:
        return {}
    start = _us(events["start_ts"])
    end = _us(events["end_ts"])
    first = start // _DAY_US
    last = np.maximum(end - 1, start) // _DAY_US
    counts = last - first + 1
    rows = np.repeat(np.arange(len(events)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    days = np.repeat(first, counts) + offsets
    out: dict[date, NDArray[np.intp]] = {}
    for d in np.unique(days):
        out[_EPOCH_DATE + timedelta(days=int(d))] = rows[days == d]
    return out


def read_partition(path: Path) -> pd.DataFrame:
    """Read one events partition (canonical dtypes)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise ArtifactError(
            f"events partition '{path}' cannot be read ({exc}); delete it and re-ingest"
        ) from None
    return coerce_events(table.to_pandas())


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    arrays = []
    for col in EVENT_COLUMNS:
        if col in TIME_COLUMNS:
            arrays.append(
                pa.array(_us(df[col]), type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
            )
        elif col in FLOAT_COLUMNS:
            arrays.append(pa.array(df[col].to_numpy(dtype=np.float64), type=pa.float64()))
        else:
            arrays.append(pa.array(df[col].tolist(), type=pa.string()))
    table = pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_events(layout: Layout, user_id: str, events: pd.DataFrame) -> list[PartitionWrite]:
    """Merge ``events`` into the user's daily partitions (atomic per partition).

    Returns one :class:`PartitionWrite` per touched day, sorted by day.
    """
    events = coerce_events(events)
    results: list[PartitionWrite] = []
    for day, rows in sorted(days_of(events).items()):
        path = layout.raw_events_partition(user_id, day)
        new = events.iloc[rows]
        old = read_partition(path) if path.exists() else empty_events()
        merged = dedupe_events(pd.concat([old, new], ignore_index=True))
        old_end = dict(zip(old["event_id"], _us(old["end_ts"]), strict=True))
        added = sum(1 for e in new["event_id"] if e not in old_end)
        merged_end = dict(zip(merged["event_id"], _us(merged["end_ts"]), strict=True))
        updated = sum(1 for e, v in old_end.items() if merged_end[e] != v)
        changed = added > 0 or updated > 0
        if changed:
            _write_parquet(merged, path)
        results.append(PartitionWrite(day, path, added, updated, len(merged), changed))
    return results


def load_events(layout: Layout, user_id: str, start: datetime, end: datetime) -> pd.DataFrame:
    """Events of ``user_id`` overlapping ``[start, end)`` (deduplicated, canonical order).

    Zero-duration events count as overlapping when their timestamp is in the range.
    """
    s_us = int(
        (start.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)
    )
    e_us = int((end.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1))
    frames = []
    day = _EPOCH_DATE + timedelta(days=s_us // _DAY_US)
    last = _EPOCH_DATE + timedelta(days=(max(e_us - 1, s_us)) // _DAY_US)
    while day <= last:
        path = layout.raw_events_partition(user_id, day)
        if path.exists():
            frames.append(read_partition(path))
        day += timedelta(days=1)
    if not frames:
        return empty_events()
    df = dedupe_events(pd.concat(frames, ignore_index=True))
    st, en = _us(df["start_ts"]), _us(df["end_ts"])
    keep = ((st < e_us) & (en > s_us)) | ((st == en) & (st >= s_us) & (st < e_us))
    out: pd.DataFrame = df.loc[keep].reset_index(drop=True)
    return out


def list_event_days(layout: Layout, user_id: str) -> list[date]:
    """UTC days with an events partition for ``user_id``, sorted."""
    root = layout.raw_user_dir(user_id)
    if not root.is_dir():
        return []
    days = []
    for child in root.iterdir():
        if child.name.startswith("date=") and (child / "events.parquet").exists():
            try:
                days.append(date.fromisoformat(child.name[5:]))
            except ValueError:
                continue
    return sorted(days)


def list_users(layout: Layout) -> list[str]:
    """Encoded user directory names under the raw events root (plain ids are unchanged)."""
    root = layout.raw_aw_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir())
