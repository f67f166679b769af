"""Time helpers: aware UTC everywhere, minute alignment, user time zones."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from taskclf.core.errors import ConfigError, InputError


def ensure_utc(value: datetime, *, field: str = "timestamp") -> datetime:
    """Return ``value`` converted to UTC; a naive datetime is an error, never guessed."""
    if not isinstance(value, datetime):
        raise InputError(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise InputError(
            f"{field} {value.isoformat()} has no time zone; give an aware timestamp "
            "(e.g. '2026-01-01T09:00:00Z')"
        )
    return value.astimezone(UTC)


def parse_timestamp(text: str, *, field: str = "timestamp") -> datetime:
    """Parse an ISO-8601 timestamp that carries a zone (``Z`` or ``+hh:mm``) into UTC."""
    try:
        parsed = datetime.fromisoformat(text.strip())
    except (ValueError, AttributeError):
        raise InputError(f"{field}: not an ISO-8601 timestamp: {str(text)[:40]!r}") from None
    return ensure_utc(parsed, field=field)


def floor_minute(value: datetime) -> datetime:
    """Floor an aware datetime to the start of its UTC minute."""
    v = ensure_utc(value)
    return v.replace(second=0, microsecond=0)


def floor_bucket(value: datetime, bucket_seconds: int = 60) -> datetime:
    """Floor an aware datetime to the start of its ``bucket_seconds`` bucket (epoch aligned)."""
    v = ensure_utc(value)
    epoch = int(v.timestamp() // bucket_seconds) * bucket_seconds
    return datetime.fromtimestamp(epoch, tz=UTC)


def get_zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise :class:`ConfigError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Warsaw'"
        ) from None


#: IANA names of UTC itself (reported as ``"UTC"``).
UTC_ALIASES: Final = frozenset(
    {"UTC", "UCT", "Universal", "Zulu", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich"}
    | {f"Etc/{n}" for n in ("UTC", "UCT", "Universal", "Zulu", "GMT", "GMT0", "GMT+0", "GMT-0")}
    | {"Etc/Greenwich"}
)


def local_timezone(*, etc: Path = Path("/etc")) -> str:
    """The machine's IANA time zone name; ``"UTC"`` when it cannot be told.

    Looked up in order: the ``TZ`` variable when it names an IANA zone (``:Europe/Warsaw``
    too), the zone ``/etc/localtime`` links to (Linux, macOS), then ``/etc/timezone``
    (Debian). A name that is not a known zone is skipped; UTC's aliases are reported as "UTC".
    """
    names = [os.environ.get("TZ", "").removeprefix(":")]
    with contextlib.suppress(OSError):
        target = os.readlink(etc / "localtime")
        names.append(target.split("zoneinfo/", 1)[1] if "zoneinfo/" in target else "")
    with contextlib.suppress(OSError, UnicodeDecodeError):
        names.append((etc / "timezone").read_text(encoding="utf-8").strip())
    for name in names:
        if not name or name.startswith("/") or ".." in name:
            continue
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            continue
        return "UTC" if name in UTC_ALIASES else name
    return "UTC"


def local_date(value: datetime, tz: str) -> date:
    """The calendar date of ``value`` in zone ``tz``."""
    return ensure_utc(value).astimezone(get_zone(tz)).date()


def day_bounds_utc(day: date, tz: str) -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` of local calendar day ``day`` in zone ``tz`` (DST-aware)."""
    zone = get_zone(tz)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return start, end


def date_range_utc(date_from: date, date_to: date, tz: str = "UTC") -> tuple[datetime, datetime]:
    """UTC ``[start, end)`` covering local days ``date_from..date_to`` inclusive."""
    if date_to < date_from:
        raise InputError(
            f"date range is empty: --to {date_to.isoformat()} is before --from "
            f"{date_from.isoformat()}"
        )
    return day_bounds_utc(date_from, tz)[0], day_bounds_utc(date_to, tz)[1]


#: Dates the product handles: local days, shifted by any UTC offset and a day of context, must
#: stay inside ``datetime``'s range (years 1..9999).
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(9998, 12, 31)


def parse_date(text: str, *, field: str = "date") -> date:
    """Parse ``YYYY-MM-DD`` (between :data:`MIN_DATE` and :data:`MAX_DATE`)."""
    try:
        value = date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{field}: expected YYYY-MM-DD, got {text!r}") from None
    if not MIN_DATE <= value <= MAX_DATE:
        raise InputError(
            f"{field}: {value.isoformat()} is outside the supported dates "
            f"{MIN_DATE.isoformat()}..{MAX_DATE.isoformat()}"
        )
    return value


def utc_now() -> datetime:
    """The current time, aware UTC (the one clock read in the product)."""
    return datetime.now(UTC)
