"""Ingest: ActivityWatch export files or a live server → privacy-safe event partitions.

Both paths parse and validate everything first, normalize it (titles and URLs hashed with the
per-install secret, then dropped), and only then write — a bad input writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd

from taskclf.adapters.activitywatch._store import PartitionWrite, write_events
from taskclf.adapters.activitywatch.client import AWClient
from taskclf.adapters.activitywatch.events import normalize_buckets
from taskclf.adapters.activitywatch.export import (
    AFK,
    SUPPORTED_TYPES,
    WINDOW,
    AWEvent,
    ParsedBucket,
    hosts_of,
    parse_afk_csv,
    parse_export,
    parse_server_events,
    to_us,
)
from taskclf.core.config import load_config, load_or_create_title_secret
from taskclf.core.errors import InputError, SourceNotFoundError
from taskclf.core.paths import Layout
from taskclf.core.time import date_range_utc
from taskclf.core.types import validate_user_id


@dataclass(frozen=True)
class IngestSummary:
    """What an ingest did."""

    user_id: str
    events_in: int
    events_by_kind: dict[str, int]
    partitions: tuple[PartitionWrite, ...]
    notes: tuple[str, ...] = field(default=())

    @property
    def added(self) -> int:
        return sum(p.added for p in self.partitions)

    @property
    def updated(self) -> int:
        return sum(p.updated for p in self.partitions)


def _resolve_user(layout: Layout, user_id: str | None) -> str:
    uid = user_id if user_id is not None else load_config(layout).user_id
    return validate_user_id(uid, where="(--user-id)")


def _store(
    layout: Layout,
    user_id: str,
    buckets: list[ParsedBucket],
    notes: list[str],
    device_id: str | None,
) -> IngestSummary:
    secret = load_or_create_title_secret(layout)
    events = normalize_buckets(buckets, secret=secret, device_id=device_id)
    writes = write_events(layout, user_id, events)
    counts = events["kind"].value_counts().sort_index()
    return IngestSummary(
        user_id=user_id,
        events_in=sum(len(b.events) for b in buckets),
        events_by_kind={str(k): int(v) for k, v in counts.items()},
        partitions=tuple(writes),
        notes=tuple(notes),
    )


def ingest_export(
    layout: Layout,
    input_path: Path,
    *,
    afk_csv: Path | None = None,
    user_id: str | None = None,
    device_id: str | None = None,
) -> IngestSummary:
    """Ingest an ActivityWatch export (and optionally an AFK CSV of the same person).

    Args:
        layout: the taskclf home.
        input_path: export JSON (``buckets`` as an object or a list).
        afk_csv: AFK events as CSV (``timestamp,duration,status`` or ``...,data/status``);
            they become bucket ``aw-watcher-afk_<host>`` where ``<host>`` is the window
            bucket's host when the export has exactly one, else ``csv``.
        user_id: defaults to the configured user.
        device_id: defaults to each bucket's hostname.

    Returns:
        An :class:`IngestSummary`; re-ingesting the same input adds nothing.
    """
    uid = _resolve_user(layout, user_id)
    parsed = parse_export(input_path)
    buckets = list(parsed.buckets)
    notes = list(parsed.notes)
    if afk_csv is not None:
        hosts = hosts_of(buckets, WINDOW) or hosts_of(buckets)
        host = hosts[0] if len(hosts) == 1 else None
        bucket_id = f"aw-watcher-afk_{host or 'csv'}"
        if any(b.bucket_id == bucket_id for b in buckets):
            raise InputError(
                f"AFK CSV '{afk_csv}': the export already has bucket {bucket_id!r}; ingest the "
                "CSV separately or drop --afk-csv"
            )
        buckets.append(parse_afk_csv(afk_csv, bucket_id=bucket_id, hostname=host))
        if not any(b.bucket_type == WINDOW for b in buckets):
            notes.append("the export has no currentwindow bucket to pair the AFK CSV with")
    elif not any(b.bucket_type == AFK for b in buckets):
        notes.append("no afkstatus bucket: idle features will be missing (NaN)")
    return _store(layout, uid, buckets, notes, device_id)


def ingest_live(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    aw_host: str | None = None,
    user_id: str | None = None,
    device_id: str | None = None,
    client_factory: Callable[[str], AWClient] | None = None,
    on_bucket: Callable[[str, int], None] | None = None,
) -> IngestSummary:
    """Pull the UTC days ``date_from..date_to`` (inclusive) from a running server.

    Every bucket of a supported type is read (the server trims events to the range, so an
    event crossing the range edge is stored clipped). ``aw_host`` defaults to the configured
    host. ``on_bucket(bucket_id, n_events)`` is called after each bucket (progress display).
    """
    uid = _resolve_user(layout, user_id)
    host = aw_host or load_config(layout).aw_host
    start, end = date_range_utc(date_from, date_to)
    end_us = to_us(end)
    factory = client_factory or (lambda url: AWClient(url))
    buckets: list[ParsedBucket] = []
    notes: list[str] = []
    with factory(host) as client:
        metas = client.list_buckets()
        for bid in sorted(metas):
            meta = metas[bid]
            btype = meta.get("type")
            if btype not in SUPPORTED_TYPES:
                notes.append(f"bucket {bid!r} of type {btype!r} ignored")
                continue
            try:
                raw = client.get_events(bid, start, end)
            except SourceNotFoundError:  # listed but unreadable (an id with '/', or deleted)
                notes.append(f"bucket {bid!r} is listed but its events are not found; skipped")
                continue
            got = parse_server_events(bid, str(btype), raw, where=f"server {host}")
            # the server clips events to the range but adds 1 ms at its end: trim to it
            events = tuple(
                e
                if e.start_us + e.duration_us <= end_us
                else AWEvent(e.start_us, max(0, end_us - e.start_us), e.data)
                for e in got.events
            )
            if got.problems:
                notes.append(
                    f"{len(got.problems)} event(s) of bucket {bid!r} skipped: taskclf cannot "
                    f"read them; the first: {got.problems[0]}"
                )
            hostname = meta.get("hostname")
            buckets.append(
                ParsedBucket(
                    bid, str(btype), hostname if isinstance(hostname, str) else None, events
                )
            )
            if on_bucket is not None:
                on_bucket(bid, len(events))
    if not buckets:
        notes.append(f"server {host} has no bucket of a supported type")
    return _store(layout, uid, buckets, notes, device_id)


def events_frame_summary(events: pd.DataFrame) -> dict[str, int]:
    """Count of events per kind (for display)."""
    return {str(k): int(v) for k, v in events["kind"].value_counts().sort_index().items()}
