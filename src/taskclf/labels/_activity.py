"""What ActivityWatch saw in a time range: seconds per app (for ``labels label-now``).

Only app names are read from the ``currentwindow`` events; titles are never looked at.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from taskclf.adapters.activitywatch.export import clean_text
from taskclf.core.errors import SourceNotFoundError
from taskclf.core.time import ensure_utc

#: Short timeout: the label is stored already; the summary must not keep the user waiting.
SUMMARY_TIMEOUT_SECONDS: Final = 3.0
SUMMARY_RETRIES: Final = 1


@dataclass(frozen=True)
class AppTime:
    """Seconds of foreground time of one app."""

    app: str
    seconds: float


def app_seconds(
    events: Iterable[Mapping[str, Any]], start: datetime, end: datetime
) -> dict[str, float]:
    """Seconds per app of window ``events`` clipped to ``[start, end)`` (bad events skipped).

    One window is in the foreground at a time: events are taken in start order and each
    counts only after the previous one's end, so duplicated or overlapping events never add
    up to more than the range.
    """
    spans: list[tuple[datetime, datetime, str]] = []
    for event in events:
        data = event.get("data")
        app = data.get("app") if isinstance(data, Mapping) else None
        try:
            ts = datetime.fromisoformat(str(event.get("timestamp")))
            duration = float(event.get("duration", 0.0))
            stop = ts + timedelta(seconds=duration)
        except (TypeError, ValueError, OverflowError):
            continue
        if not isinstance(app, str) or ts.tzinfo is None or not duration > 0:
            continue
        spans.append((ts, stop, clean_text(app)))
    totals: dict[str, float] = defaultdict(float)
    covered = start
    for ts, stop, app in sorted(spans):
        lo, hi = max(ts, covered), min(stop, end)
        if hi > lo:
            totals[app] += (hi - lo).total_seconds()
            covered = hi
    return dict(totals)


def top_apps(totals: Mapping[str, float], limit: int = 5) -> list[AppTime]:
    """The ``limit`` apps with the most seconds (ties by name)."""
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))
    return [AppTime(app, round(sec, 3)) for app, sec in ranked[:limit]]


def window_activity(
    base_url: str, start: datetime, end: datetime, *, limit: int = 5
) -> list[AppTime]:
    """Top apps by foreground seconds in ``[start, end)`` over every ``currentwindow`` bucket.

    Raises the ``SourceError`` family when the server cannot be asked.
    """
    from taskclf.adapters.activitywatch.client import AWClient

    start, end = ensure_utc(start, field="start"), ensure_utc(end, field="end")
    totals: dict[str, float] = defaultdict(float)
    with AWClient(base_url, timeout=SUMMARY_TIMEOUT_SECONDS, retries=SUMMARY_RETRIES) as client:
        for bucket in client.find_buckets("currentwindow"):
            try:
                events = client.get_events(bucket, start, end)
            except SourceNotFoundError:  # listed but unreadable (an id with '/', or deleted)
                continue
            for app, sec in app_seconds(events, start, end).items():
                totals[app] += sec
    return top_apps(totals, limit)
