"""Parse ActivityWatch data: export JSON files, AFK CSV files and raw REST event lists.

Export format (``GET /api/0/export``): ``{"buckets": {id: bucket, ...}}`` or
``{"buckets": [bucket, ...]}``; a bucket has ``id`` (else its key), ``type``, optional
``hostname`` and ``client``, and ``events``: a list of ``{"timestamp", "duration", "data"}``
in any order (exports are newest-first). Buckets of several hosts may appear together.

Supported bucket types (:data:`SUPPORTED_TYPES`): ``currentwindow``, ``afkstatus``,
``os.hid.input`` and ``web.tab.current``; other types are skipped with a note.

Every event is checked: an aware ISO-8601 timestamp, a finite duration >= 0, a ``data`` object
with the fields of its type. A problem raises :class:`~taskclf.core.errors.InputError` that
names the file, bucket and event index (or CSV line) — parsing finishes before anything is
written, so a bad file writes nothing.

Documented handling of odd but valid input: zero durations are kept (they count as events but
cover no time); a window event without ``title`` has the empty title; a window event without
``app`` has the app ``unknown``; overlapping and duplicated events are kept here and resolved
later (see ``features.windows``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from taskclf.core.errors import InputError

WINDOW: Final = "currentwindow"
AFK: Final = "afkstatus"
INPUT: Final = "os.hid.input"
WEB: Final = "web.tab.current"
SUPPORTED_TYPES: Final[tuple[str, ...]] = (WINDOW, AFK, INPUT, WEB)
AFK_STATUSES: Final = frozenset({"afk", "not-afk"})
INPUT_FIELDS: Final[tuple[str, ...]] = (
    "presses",
    "clicks",
    "deltaX",
    "deltaY",
    "scrollX",
    "scrollY",
    "backspaces",
    "shortcuts",
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class AWEvent:
    """One validated event: start in µs since the epoch (UTC), duration in µs, data."""

    start_us: int
    duration_us: int
    data: Mapping[str, Any]


@dataclass(frozen=True)
class ParsedBucket:
    """One validated bucket of a supported type."""

    bucket_id: str
    bucket_type: str
    hostname: str | None
    events: tuple[AWEvent, ...]


@dataclass(frozen=True)
class ParsedExport:
    """The supported buckets of an export, plus notes about what was skipped."""

    buckets: tuple[ParsedBucket, ...]
    notes: tuple[str, ...] = field(default=())


def to_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact integer arithmetic)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


#: Event times the product handles (local days and a day of context stay inside datetime's
#: range; see ``core.time.MIN_DATE``), and the longest event an export can hold: a
#: watcher's event spans at most a few weeks of one computer session.
MIN_EVENT_TIME: Final = datetime(1970, 1, 1, tzinfo=UTC)
MAX_EVENT_TIME: Final = datetime(9997, 12, 31, tzinfo=UTC)  # + the longest event
MAX_EVENT_SECONDS: Final = 366 * 86_400
_TIME_CHARS: Final = re.compile(r"[0-9TZWtzw:+\-., ]{1,40}")
_WORD_CHARS: Final = re.compile(r"[A-Za-z_\-]{1,16}")
_TYPE_CHARS: Final = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # bucket types: 'app.editor.activity'


def shown(value: Any, allowed: re.Pattern[str] = _TIME_CHARS) -> str:
    """``value`` for an error message when it cannot be text from a title; else its kind.

    Values that are not what a field should hold may be anything, a window title included,
    so only short values of the field's own characters are echoed.
    """
    if isinstance(value, str) and allowed.fullmatch(value):
        return repr(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return repr(value)
    size = f" of {len(value)} characters" if isinstance(value, str) else ""
    return f"a {type(value).__name__}{size}"


def _parse_ts(value: Any, where: str) -> int:
    if not isinstance(value, str):
        raise InputError(f"{where}: 'timestamp' must be an ISO-8601 string, got {shown(value)}")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InputError(f"{where}: 'timestamp' is not ISO-8601: {shown(value)}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InputError(
            f"{where}: 'timestamp' {shown(value)} has no time zone; ActivityWatch writes UTC "
            "timestamps such as '2024-01-01T09:00:00+00:00' — fix or re-export the file"
        )
    try:
        utc = parsed.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not MIN_EVENT_TIME <= utc <= MAX_EVENT_TIME:
        raise InputError(
            f"{where}: 'timestamp' {shown(value)} is outside {MIN_EVENT_TIME.year}.."
            f"{MAX_EVENT_TIME.year}; the file is corrupt — re-export it from ActivityWatch"
        )
    return to_us(utc)


def _parse_duration(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{where}: 'duration' must be a number of seconds, got {shown(value)}")
    seconds = float(value) if abs(value) < 1e300 else math.inf
    if not math.isfinite(seconds) or not 0 <= seconds <= MAX_EVENT_SECONDS:
        raise InputError(
            f"{where}: 'duration' must be between 0 and {MAX_EVENT_SECONDS} seconds (366 days), "
            f"got {shown(value)}; the file is corrupt — re-export it from ActivityWatch"
        )
    return round(seconds * 1_000_000)


def clean_text(value: str) -> str:
    """``value`` with lone UTF-16 surrogates (possible in Windows window data) as U+FFFD.

    Stored text must be valid UTF-8; titles are hashed as they are and never stored.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def _check_data(bucket_type: str, data: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise InputError(f"{where}: 'data' must be an object, got {type(data).__name__}")
    checked: dict[str, Any] = data
    if bucket_type == WINDOW:
        for key in ("app", "title"):  # null counts as missing, as for a web tab's title
            if data.get(key) is not None and not isinstance(data[key], str):
                raise InputError(
                    f"{where}: data.{key} must be a string, got a {type(data[key]).__name__}"
                )
        app = data.get("app")
        if isinstance(app, str) and clean_text(app) != app:
            checked = {**data, "app": clean_text(app)}
    elif bucket_type == AFK:
        status = data.get("status")
        if not isinstance(status, str) or status not in AFK_STATUSES:
            raise InputError(
                f"{where}: data.status must be 'afk' or 'not-afk', got {shown(status, _WORD_CHARS)}"
            )
    elif bucket_type == WEB:
        url = data.get("url", "")
        if not isinstance(url, str):
            raise InputError(f"{where}: data.url must be a string, got {type(url).__name__}")
        if "title" in data and not isinstance(data["title"], str | None):
            raise InputError(f"{where}: data.title must be a string")
    elif bucket_type == INPUT:
        for key in INPUT_FIELDS:
            v = data.get(key)
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise InputError(f"{where}: data.{key} must be a finite number, got {shown(v)}")
    return checked


def parse_events(
    bucket_id: str, bucket_type: str, events: Any, *, where: str
) -> tuple[AWEvent, ...]:
    """Validate a list of raw AW event dicts of one bucket.

    Args:
        bucket_id: the bucket id (for messages).
        bucket_type: one of :data:`SUPPORTED_TYPES`.
        events: the raw list.
        where: the source (file name or server URL) for messages.

    Raises:
        InputError: naming the bucket and event index of the first bad event.
    """
    if not isinstance(events, list):
        raise InputError(
            f"{where}: bucket {bucket_id!r}: 'events' must be a list, got {type(events).__name__}"
        )
    out: list[AWEvent] = []
    for i, ev in enumerate(events):
        loc = f"{where}: bucket {bucket_id!r} event {i}"
        if not isinstance(ev, dict):
            raise InputError(f"{loc}: must be an object, got {type(ev).__name__}")
        for key in ("timestamp", "duration"):
            if key not in ev:
                raise InputError(f"{loc}: missing {key!r}")
        start = _parse_ts(ev["timestamp"], loc)
        duration = _parse_duration(ev["duration"], loc)
        data = _check_data(bucket_type, ev.get("data", {}), loc)
        out.append(AWEvent(start, duration, data))
    return tuple(out)


@dataclass(frozen=True)
class ServerEvents:
    """A live server's events of one bucket: the readable ones and what was skipped.

    ``kept[j]`` is the index in the server's list of ``events[j]``; ``problems`` holds one
    message per skipped event (none of them shows a title).
    """

    events: tuple[AWEvent, ...]
    kept: tuple[int, ...]
    problems: tuple[str, ...]


def parse_server_events(
    bucket_id: str, bucket_type: str, events: Any, *, where: str
) -> ServerEvents:
    """:func:`parse_events` for a live server: an event taskclf cannot read is skipped.

    A file is re-exported when it is corrupt; a server keeps returning its bad event on
    every query, so one odd event must not stop every other one from being read.

    Raises:
        InputError: ``events`` is not a list.
    """
    if not isinstance(events, list):
        raise InputError(
            f"{where}: bucket {bucket_id!r}: 'events' must be a list, got {type(events).__name__}"
        )
    out: list[AWEvent] = []
    kept: list[int] = []
    problems: list[str] = []
    for i, ev in enumerate(events):
        try:
            (parsed,) = parse_events(bucket_id, bucket_type, [ev], where=where)
        except InputError as exc:
            problems.append(str(exc).replace(" event 0:", f" event {i}:", 1))
            continue
        out.append(parsed)
        kept.append(i)
    return ServerEvents(tuple(out), tuple(kept), tuple(problems))


def _bucket_list(raw: Any, where: str) -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(raw, dict) or "buckets" not in raw:
        raise InputError(
            f"{where}: not an ActivityWatch export; expected an object with a 'buckets' key "
            "(from the ActivityWatch web UI: Settings → Export all buckets as JSON)"
        )
    buckets = raw["buckets"]
    items: list[tuple[str, Any]]
    if isinstance(buckets, dict):
        items = [(str(k), v) for k, v in buckets.items()]
    elif isinstance(buckets, list):
        items = []
        for i, b in enumerate(buckets):
            if not isinstance(b, dict) or not isinstance(b.get("id"), str):
                raise InputError(f"{where}: bucket {i} of the list has no string 'id'")
            items.append((b["id"], b))
    else:
        raise InputError(f"{where}: 'buckets' must be an object or a list")
    seen: set[str] = set()
    out: list[tuple[str, dict[str, Any]]] = []
    for key, b in items:
        if not isinstance(b, dict):
            raise InputError(f"{where}: bucket {key!r} must be an object")
        bid = b.get("id", key)
        if not isinstance(bid, str) or not bid:
            raise InputError(f"{where}: bucket {key!r} has an invalid 'id'")
        if bid in seen:
            raise InputError(f"{where}: bucket id {bid!r} appears twice")
        seen.add(bid)
        out.append((bid, b))
    return out


def parse_export_data(raw: Any, *, where: str = "export") -> ParsedExport:
    """Validate an already-decoded export object (see the module docstring)."""
    buckets: list[ParsedBucket] = []
    notes: list[str] = []
    for bid, b in _bucket_list(raw, where):
        btype = b.get("type")
        if btype not in SUPPORTED_TYPES:
            n = len(b["events"]) if isinstance(b.get("events"), list) else 0
            notes.append(
                f"bucket {clean_text(bid)!r} of type {shown(btype, _TYPE_CHARS)} ignored "
                f"({n} events)"
            )
            continue
        host = b.get("hostname")
        events = parse_events(bid, str(btype), b.get("events"), where=where)
        buckets.append(
            ParsedBucket(
                clean_text(bid),
                str(btype),
                clean_text(host) if isinstance(host, str) else None,
                events,
            )
        )
    buckets.sort(key=lambda x: x.bucket_id)
    if not buckets:
        notes.append("no bucket of a supported type (" + ", ".join(SUPPORTED_TYPES) + ")")
    return ParsedExport(tuple(buckets), tuple(notes))


def _read_text(path: Path, *, what: str = "an export JSON file") -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"input file '{path}' does not exist") from None
    except IsADirectoryError:
        raise InputError(f"input '{path}' is a directory; give {what}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"'{path}' is not UTF-8 text (byte {exc.start}); is it {what}?") from None


def parse_export(path: Path) -> ParsedExport:
    """Read and validate an ActivityWatch export JSON file.

    Raises:
        InputError: the file is missing, not JSON (with line and column), or malformed.
    """
    text = _read_text(path)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"'{path}' is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "the file may be truncated — export it again from ActivityWatch"
        ) from None
    except RecursionError:
        raise InputError(
            f"'{path}' nests JSON arrays or objects too deeply to be an ActivityWatch export; "
            "export it again from ActivityWatch"
        ) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InputError(f"'{path}' is not an ActivityWatch export: {exc}") from None
    return parse_export_data(raw, where=f"'{path}'")


_STATUS_HEADERS: Final = ("status", "data/status", "data.status", "data_status")


def parse_afk_csv(path: Path, *, bucket_id: str, hostname: str | None = None) -> ParsedBucket:
    """Read AFK events from a CSV with columns ``timestamp,duration,status``.

    The status column may also be spelled ``data/status`` or ``data.status``. Each row becomes
    an ``afkstatus`` event of bucket ``bucket_id``.

    Raises:
        InputError: naming the line of the first bad row.
    """
    text = _read_text(path, what="an AFK CSV")
    try:
        return _afk_rows(path, csv.reader(io.StringIO(text)), bucket_id, hostname)
    except csv.Error as exc:
        raise InputError(f"AFK CSV '{path}' is not valid CSV: {exc}") from None


def _afk_rows(
    path: Path, reader: Iterator[list[str]], bucket_id: str, hostname: str | None
) -> ParsedBucket:
    header = next(reader, None)
    if header is None:
        raise InputError(f"AFK CSV '{path}' is empty; expected a header timestamp,duration,status")
    cols = [h.strip().lower() for h in header]
    status_col = next((c for c in _STATUS_HEADERS if c in cols), None)
    if "timestamp" not in cols or "duration" not in cols or status_col is None:
        # a wrong file's first row may be any text: name only the plain-word columns
        named = [repr(h) for h in header if _WORD_CHARS.fullmatch(h.strip())][:8]
        listed = f": {', '.join(named)}" if named else ""
        raise InputError(
            f"AFK CSV '{path}': the header has {len(header)} column(s){listed}, not timestamp, "
            "duration and status (or data/status); is it an AFK CSV?"
        )
    i_ts, i_dur, i_st = cols.index("timestamp"), cols.index("duration"), cols.index(status_col)
    events: list[AWEvent] = []
    for line_no, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        loc = f"AFK CSV '{path}' line {line_no}"
        if len(row) != len(cols):
            raise InputError(f"{loc}: expected {len(cols)} fields, got {len(row)}")
        try:
            dur: Any = float(row[i_dur])
        except ValueError:
            dur = row[i_dur]
        start = _parse_ts(row[i_ts], loc)
        duration = _parse_duration(dur, loc)
        data = _check_data(AFK, {"status": row[i_st].strip()}, loc)
        events.append(AWEvent(start, duration, data))
    return ParsedBucket(bucket_id, AFK, hostname, tuple(events))


def hosts_of(buckets: Sequence[ParsedBucket], bucket_type: str | None = None) -> list[str]:
    """Sorted distinct hostnames of ``buckets`` (optionally of one type)."""
    return sorted(
        {
            b.hostname
            for b in buckets
            if b.hostname and (bucket_type is None or b.bucket_type == bucket_type)
        }
    )
