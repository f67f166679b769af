"""Assemble watcher streams into an ActivityWatch export (``GET /api/0/export`` format)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import numpy as np

from taskclf.synthetic._profiles import UserProfile
from taskclf.synthetic._simulate import Event, Streams

#: Bucket event types, as ActivityWatch names them.
WINDOW_TYPE: Final = "currentwindow"
AFK_TYPE: Final = "afkstatus"
INPUT_TYPE: Final = "os.hid.input"
WEB_TYPE: Final = "web.tab.current"


def bucket_ids(profile: UserProfile) -> dict[str, str]:
    """Bucket id per event type for ``profile`` (the input bucket only with the watcher)."""
    host = profile.hostname
    ids = {
        WINDOW_TYPE: f"aw-watcher-window_{host}",
        AFK_TYPE: f"aw-watcher-afk_{host}",
        WEB_TYPE: f"aw-watcher-web-{profile.archetype.browser}_{host}",
    }
    if profile.archetype.has_input_watcher:
        ids[INPUT_TYPE] = f"aw-watcher-input_{host}"
    return ids


_CLIENTS: Final = {
    WINDOW_TYPE: "aw-watcher-window",
    AFK_TYPE: "aw-watcher-afk",
    INPUT_TYPE: "aw-watcher-input",
    WEB_TYPE: "aw-client-web",
}


def format_events(events: list[Event]) -> list[dict[str, Any]]:
    """Events newest-first as export dicts (ISO UTC timestamps, durations in seconds)."""
    if not events:
        return []
    ts = np.fromiter((e[0] for e in events), dtype=np.int64, count=len(events))
    # Newest first; among equal timestamps the later-made event first (stable, deterministic).
    order = np.argsort(-ts, kind="stable")
    stamps = np.datetime_as_string(ts[order].astype("datetime64[ms]"), unit="us")
    out: list[dict[str, Any]] = []
    for k, i in enumerate(order.tolist()):
        _, dur, data = events[i]
        out.append({"timestamp": f"{stamps[k]}+00:00", "duration": dur / 1000, "data": data})
    return out


def build_export(profile: UserProfile, streams: Streams, created: datetime) -> dict[str, Any]:
    """The export document of one user; ``created`` is the buckets' creation time."""
    by_type = {
        WINDOW_TYPE: streams.window,
        AFK_TYPE: streams.afk,
        INPUT_TYPE: streams.input,
        WEB_TYPE: streams.web,
    }
    created_iso = created.astimezone(UTC).isoformat(timespec="microseconds")
    buckets: dict[str, Any] = {}
    for event_type, bucket_id in bucket_ids(profile).items():
        buckets[bucket_id] = {
            "id": bucket_id,
            "created": created_iso,
            "name": None,
            "type": event_type,
            "client": _CLIENTS[event_type],
            "hostname": profile.hostname,
            "data": {},
            "events": format_events(by_type[event_type]),
        }
    return {"buckets": buckets}
