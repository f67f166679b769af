"""Per-minute feature rows from normalized events (DESIGN §4.2), and their partitions.

:func:`build_features` is pure: events in, a validated-shape frame out. It runs two stages:

1. ``features._minutes.aggregate_minutes`` — per-bucket aggregates that depend only on the
   events overlapping each bucket (overlap-resolved window time per app, dominant app and
   title, AFK union with not-afk winning, input counts, browser domain, source buckets);
2. ``features._fold.fold`` — a fold over the row buckets in time order for everything that
   looks back (sessions, app runs and dwell, title repeats, 5/15-minute windows, deltas).

The online builder (``infer.feature_state.FeatureState``) runs the same two stages over the
newly closed minutes with the carried fold state; for exactly one minute it runs
``features._one``, the same definitions in plain Python. Its rows equal the batch rows
exactly (tested both ways).

Semantics worth knowing (see the stage modules for the full list): a row exists for every
bucket with window time or not-afk time; the dominant app has the most overlapping seconds
(ties: the smallest app id) and gives ``app_id``, ``app_category`` and the title features
(its title with the most seconds, ties: the smallest hash); a row without window time has app
``none`` and the empty ``window_title_hash``; input features are NaN where no input event
touches the bucket; hours and weekdays are in the user's time zone.

On disk: ``data/processed/features_<v>/date=YYYY-MM-DD/<user>.parquet`` per **UTC date**
(like the event partitions). :func:`build_features_range` builds each user's rows over the
requested days with one extra day of look-back, so sessions, runs and windows that began the
day before carry over (a session longer than a day without an idle gap is cut there).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from taskclf.adapters.activitywatch._store import list_users, load_events
from taskclf.core._atomic import atomic_path
from taskclf.core.config import load_config
from taskclf.core.defaults import DEFAULT_BUCKET_SECONDS, DEFAULT_IDLE_GAP_SECONDS
from taskclf.core.errors import ArtifactError, InputError, SchemaError
from taskclf.core.paths import Layout
from taskclf.core.schema import get_schema
from taskclf.core.time import date_range_utc, get_zone
from taskclf.core.types import validate_user_id
from taskclf.features._fold import (
    FoldParams,
    FoldState,
    RowContext,
    assemble,
    empty_frame,
    fold,
    typed_frame,
)
from taskclf.features._minutes import EventArrays, aggregate_minutes


def _check_params(schema_version: str, bucket_seconds: int, idle_gap_seconds: int) -> None:
    get_schema(schema_version)
    if bucket_seconds <= 0 or (60 % bucket_seconds and bucket_seconds % 60):
        raise InputError(
            f"bucket_seconds must divide 60 or be a multiple of 60, got {bucket_seconds}"
        )
    if idle_gap_seconds <= 0:
        raise InputError(f"idle_gap_seconds must be > 0, got {idle_gap_seconds}")


def build_features(
    events: pd.DataFrame,
    *,
    user_id: str,
    device_id: str | None,
    timezone: str,
    schema_version: str = "v3",
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
    idle_gap_seconds: int = DEFAULT_IDLE_GAP_SECONDS,
) -> pd.DataFrame:
    """Feature rows of one user's normalized events (pure).

    Args:
        events: normalized events (``adapters.activitywatch.events.EVENT_COLUMNS``).
        user_id: the user of every row.
        device_id: the ``device_id`` column value (None allowed).
        timezone: IANA zone for ``hour_of_day`` / ``day_of_week``.
        schema_version: ``v1``, ``v2`` or ``v3``.
        bucket_seconds: bucket length (60 in every schema so far).
        idle_gap_seconds: the session-splitting idle gap.

    Returns:
        One row per bucket with window or not-afk time, sorted by ``bucket_start_ts``, with
        exactly the schema's columns and dtypes.
    """
    validate_user_id(user_id)
    get_zone(timezone)
    _check_params(schema_version, bucket_seconds, idle_gap_seconds)
    params = FoldParams(bucket_seconds, idle_gap_seconds)
    arrays = EventArrays.from_frame(events)
    parts: list[dict[str, Any]] = []
    state = FoldState()
    for part, lo, hi in _chunks(arrays, params, _CHUNK_EVENTS):
        mins = aggregate_minutes(part, params.bucket_us, params.idle_gap_us, lo, hi)
        if mins.size:
            cols, state = fold(mins, state, params)
            parts.append(cols)
    if not parts:
        return empty_frame(schema_version)
    merged = parts[0] if len(parts) == 1 else {
        k: np.concatenate([p[k] for p in parts]) for k in parts[0]
    }  # fmt: skip
    ctx = RowContext(user_id, device_id, timezone, schema_version, params)
    return assemble(merged, ctx, arrays.titles)


# Rows are built in time chunks of about this many events: the fold is chunk-invariant (the
# online builder relies on that), and chunks keep every array cache-sized, so the cost per
# event stays flat as the input grows.
_CHUNK_EVENTS = 50_000


def _chunks(
    arrays: EventArrays, params: FoldParams, size: int
) -> Iterator[tuple[EventArrays, int, int]]:
    """Consecutive bucket ranges ``[lo, hi)`` with the events each one needs."""
    kinds = [c for c in arrays.kinds.values() if c["start"].size]
    if not kinds:
        return
    b_us, gap = params.bucket_us, params.idle_gap_us
    starts = np.sort(np.concatenate([c["start"] for c in kinds]))
    first = int(starts[0] // b_us)
    last = int(max(max(int(c["end"].max()), int(c["start"].max())) for c in kinds) // b_us) + 1
    cuts = np.unique(starts[size::size] // b_us)
    bounds = [first, *[int(x) for x in cuts if first < x < last], last]
    if len(bounds) == 2:
        yield arrays, first, last
        return
    longest = {k: int((c["end"] - c["start"]).max()) if c["start"].size else 0
               for k, c in arrays.kinds.items()}  # fmt: skip
    for lo, hi in itertools.pairwise(bounds):
        keep = {}
        for kind, c in arrays.kinds.items():
            start, end = c["start"], c["end"]
            horizon = lo * b_us - gap
            i0 = int(np.searchsorted(start, horizon - longest[kind], side="left"))
            i1 = int(np.searchsorted(start, hi * b_us, side="left"))
            # indices, not a full-length mask: a chunk costs its own events, not all events
            near = (end[i0:i1] > horizon) | (start[i0:i1] >= horizon)
            keep[kind] = i0 + np.flatnonzero(near)
        yield arrays.select(keep), lo, hi


@dataclass(frozen=True)
class FeatureBuildSummary:
    """Rows written per (user, UTC date)."""

    schema_version: str
    rows: dict[tuple[str, date], int]
    paths: tuple[Path, ...]


def _decode_user_dir(name: str) -> str | None:
    if name.startswith("~h"):
        return None  # hashed ids cannot be decoded; pass them with --user-id
    return unquote(name[1:]) if name.startswith("~") else name


def _device_of(events: pd.DataFrame) -> str | None:
    devices = sorted(set(events["device_id"].dropna()))
    return str(devices[0]) if len(devices) == 1 else None


def _write_partition(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    table = table.replace_schema_metadata(None)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def build_features_range(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    schema_version: str = "v3",
    bucket_seconds: int = DEFAULT_BUCKET_SECONDS,
    idle_gap_seconds: int = DEFAULT_IDLE_GAP_SECONDS,
    on_day: Callable[[str, date, int], None] | None = None,
) -> FeatureBuildSummary:
    """Build and write validated feature partitions for UTC days ``date_from..date_to``.

    ``user_ids`` defaults to every user with ingested events. ``on_day(user, day, rows)`` is
    called after each partition (progress display). Days without rows get no partition (an
    old partition of such a day is removed).
    """
    start, end = date_range_utc(date_from, date_to)
    schema = get_schema(schema_version)
    config = load_config(layout)
    if user_ids is None:
        users = [u for u in map(_decode_user_dir, list_users(layout)) if u is not None]
    else:
        users = [validate_user_id(u, where="(--user-id)") for u in user_ids]
    rows: dict[tuple[str, date], int] = {}
    paths: list[Path] = []
    for user in users:
        events = load_events(layout, user, start - timedelta(days=1), end)
        feats = build_features(
            events,
            user_id=user,
            device_id=_device_of(events),
            timezone=config.timezone_for(user),
            schema_version=schema_version,
            bucket_seconds=bucket_seconds,
            idle_gap_seconds=idle_gap_seconds,
        )
        day_of = feats["bucket_start_ts"].dt.date.to_numpy()
        day = date_from
        while day <= date_to:
            part = feats[day_of == day].reset_index(drop=True)
            path = layout.features_partition(day, user, schema_version)
            if len(part):
                schema.validate_dataframe(part)
                _write_partition(part, path)
                paths.append(path)
            elif path.exists():
                path.unlink()
            rows[(user, day)] = len(part)
            if on_day is not None:
                on_day(user, day, len(part))
            day += timedelta(days=1)
    return FeatureBuildSummary(schema_version, rows, tuple(paths))


@dataclass(frozen=True)
class _Partition:
    """One stored feature partition as read (columns and storage types checked)."""

    user: str
    day: date
    path: Path
    frame: pd.DataFrame


def _rebuild_hint(day: date, schema_version: str) -> str:
    version = "" if schema_version == "v3" else f" --schema-version {schema_version}"
    return f"rebuild it with 'taskclf features build --from {day} --to {day}{version}'"


def _read_partition(path: Path, schema_version: str, day: date) -> pd.DataFrame:
    """One partition as stored: columns and storage types checked, dtypes not yet canonical.

    Raises:
        ArtifactError: Unreadable, or a column missing, extra, out of order, of a type
            that does not cast to the schema's (a string in an int column) or with missing
            values where the schema has none; the message names the file and column.
    """
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise ArtifactError(
            f"feature partition '{path}' cannot be read ({exc}); "
            f"{_rebuild_hint(day, schema_version)}"
        ) from None
    try:
        get_schema(schema_version).validate_table(table)
    except SchemaError as exc:
        raise ArtifactError(
            f"feature partition '{path}' does not match its schema: {exc}; "
            f"{_rebuild_hint(day, schema_version)}"
        ) from None
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _blame_partition(parts: Sequence[_Partition], schema_version: str) -> None:
    """Raise :class:`ArtifactError` for the first partition that fails validation alone.

    Only called once the concatenated rows failed: validating each partition costs about
    as much as reading it, so the happy path validates once and this finds the file.
    """
    schema = get_schema(schema_version)
    for part in parts:
        try:
            schema.validate_dataframe(typed_frame(part.frame, schema_version))
        except SchemaError as exc:
            raise ArtifactError(
                f"feature partition '{part.path}' does not match its schema: {exc}; "
                f"{_rebuild_hint(part.day, schema_version)}"
            ) from None


def _check_unique_minutes(
    parts: Sequence[_Partition],
    owner: np.ndarray,
    users: np.ndarray,
    starts: pd.Series,
    schema_version: str,
) -> None:
    """Raise :class:`ArtifactError` when sorted rows hold one user's minute twice.

    ``owner`` is each row's index into ``parts``; the message names the partitions that
    hold the minute (one file with a repeated row, or two days' files that overlap).
    """
    ts = starts.to_numpy()
    same = (users[1:] == users[:-1]) & (ts[1:] == ts[:-1])
    if not same.any():
        return
    at = int(np.flatnonzero(same)[0])
    files = sorted({str(parts[int(i)].path) for i in owner[at : at + 2]})
    day = parts[int(owner[at])].day
    raise ArtifactError(
        f"feature rows repeat minute {starts.iloc[at].isoformat()} of user "
        f"{parts[int(owner[at])].user!r} ({int(same.sum())} repeated row(s) in all), "
        f"in {' and '.join(repr(f) for f in files)}; {_rebuild_hint(day, schema_version)}"
    )


def load_features(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
    schema_version: str = "v3",
) -> pd.DataFrame:
    """Validated feature rows of UTC days ``date_from..date_to`` (inclusive).

    Sorted by ``user_id`` (v2: by partition user) and ``bucket_start_ts``; an empty frame
    with the schema's columns when there are none.
    """
    date_range_utc(date_from, date_to)
    schema = get_schema(schema_version)
    wanted = None if user_ids is None else {validate_user_id(u) for u in user_ids}
    parts: list[_Partition] = []
    day = date_from
    while day <= date_to:
        if wanted is not None:
            found = [(u, layout.features_partition(day, u, schema_version)) for u in wanted]
        else:
            folder = layout.features_partition(day, "x", schema_version).parent
            paths = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
            found = [(u, p) for p in paths if (u := _decode_user_dir(p.stem)) is not None]
        for user, path in found:
            if path.exists():
                parts.append(
                    _Partition(user, day, path, _read_partition(path, schema_version, day))
                )
        day += timedelta(days=1)
    if not parts:
        return empty_frame(schema_version)
    parts.sort(key=lambda part: part.user)
    df = typed_frame(pd.concat([p.frame for p in parts], ignore_index=True), schema_version)
    owner = np.repeat(np.arange(len(parts)), [len(p.frame) for p in parts])
    if "user_id" in df.columns:
        df = df.sort_values(["user_id", "bucket_start_ts"], kind="mergesort")
        users = df["user_id"].to_numpy()
    else:
        df = (
            df.assign(_u=owner)
            .sort_values(["_u", "bucket_start_ts"], kind="mergesort")
            .drop(columns="_u")
        )
        users = np.array([p.user for p in parts], dtype=object)[owner[df.index.to_numpy()]]
    _check_unique_minutes(
        parts, owner[df.index.to_numpy()], users, df["bucket_start_ts"], schema_version
    )
    df = df.reset_index(drop=True)
    try:
        schema.validate_dataframe(df)
    except SchemaError:
        _blame_partition(parts, schema_version)
        raise
    return df
