"""Normalized, privacy-safe events: the table between ActivityWatch and feature building.

One row per (deduplicated) event, of one of four kinds — ``window``, ``afk``, ``input``,
``web`` — with the columns :data:`EVENT_COLUMNS`. Raw titles and URLs never enter this table:
window titles become a salted hash, keyed sketches and statistics
(``features.text.title_features``), URLs become a domain category and a keyed host hash.

Event ids are deterministic: SHA-256 over the kind, source bucket, start time and the event's
identity (window: app and title hash; afk: status; web: keyed URL hash; input: its counts),
first 16 hex. The duration is not part of the id, so an event that a live server reports again
with a longer duration (heartbeat merging), and the "same start, several durations" duplicates
of real AFK buckets, collapse to one row keeping the longest end.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from typing import Any, Final

import numpy as np
import pandas as pd

from taskclf.adapters.activitywatch.export import (
    AFK,
    INPUT,
    WEB,
    WINDOW,
    ParsedBucket,
)
from taskclf.adapters.activitywatch.mapping import AppInfo, map_app
from taskclf.core.hashing import title_hash
from taskclf.features.domain import domain_category, host_hash, url_host
from taskclf.features.text import TitleFeatures, title_features

KIND_OF_TYPE: Final[dict[str, str]] = {WINDOW: "window", AFK: "afk", INPUT: "input", WEB: "web"}
KINDS: Final[tuple[str, ...]] = ("afk", "input", "web", "window")

STR_COLUMNS: Final[tuple[str, ...]] = (
    "event_id",
    "kind",
    "source_id",
    "device_id",
    "app_name",
    "app_id",
    "app_category",
    "title_hash",
    "title_token_sketch",
    "title_char3_sketch",
    "status",
    "domain_category",
    "host_hash",
)
FLOAT_COLUMNS: Final[tuple[str, ...]] = (
    "title_char_count",
    "title_token_count",
    "title_unique_token_ratio",
    "title_digit_ratio",
    "title_separator_count",
    "presses",
    "clicks",
    "delta_x",
    "delta_y",
    "scroll_x",
    "scroll_y",
    "backspaces",
    "shortcuts",
)
TIME_COLUMNS: Final[tuple[str, ...]] = ("start_ts", "end_ts")
#: Column order of the normalized events table.
EVENT_COLUMNS: Final[tuple[str, ...]] = (
    "event_id",
    "kind",
    "source_id",
    "device_id",
    "start_ts",
    "end_ts",
    "app_name",
    "app_id",
    "app_category",
    "title_hash",
    "title_char_count",
    "title_token_count",
    "title_unique_token_ratio",
    "title_digit_ratio",
    "title_separator_count",
    "title_token_sketch",
    "title_char3_sketch",
    "status",
    "domain_category",
    "host_hash",
    "presses",
    "clicks",
    "delta_x",
    "delta_y",
    "scroll_x",
    "scroll_y",
    "backspaces",
    "shortcuts",
)
_INPUT_MAP: Final = (
    ("presses", "presses"),
    ("clicks", "clicks"),
    ("delta_x", "deltaX"),
    ("delta_y", "deltaY"),
    ("scroll_x", "scrollX"),
    ("scroll_y", "scrollY"),
    ("backspaces", "backspaces"),
    ("shortcuts", "shortcuts"),
)
_TS_DTYPE: Final = "datetime64[us, UTC]"


def event_id(kind: str, source: str, start_us: int, identity: str) -> str:
    payload = f"{kind}\x1f{source}\x1f{start_us}\x1f{identity}".encode("utf-8", "surrogatepass")
    return hashlib.sha256(payload).hexdigest()[:16]


def _keyed(secret: bytes, domain: bytes, text: str) -> str:
    mac = hmac.new(secret, domain + text.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return mac.hexdigest()[:16]


_EMPTY_ROW: Final[dict[str, Any]] = {
    **dict.fromkeys(STR_COLUMNS),
    **dict.fromkeys(FLOAT_COLUMNS, np.nan),
}


def _empty_row(kind: str, source: str, device: str, start_us: int, end_us: int) -> dict[str, Any]:
    row = _EMPTY_ROW.copy()
    row.update(kind=kind, source_id=source, device_id=device, start_ts=start_us, end_ts=end_us)
    return row


def window_fields(
    data: Any, titles: dict[str, TitleFeatures], secret: bytes
) -> tuple[str, AppInfo, TitleFeatures]:
    """A window event's app name (``unknown`` when missing), app info and title features."""
    app = data.get("app")
    title = data.get("title") or ""
    feats = titles.get(title)
    if feats is None:
        feats = titles[title] = title_features(secret, title)
    name = app if isinstance(app, str) and app else "unknown"
    return name, map_app(app), feats


def _window_row(
    row: dict[str, Any], data: Any, titles: dict[str, TitleFeatures], secret: bytes
) -> str:
    name, info, feats = window_fields(data, titles, secret)
    row.update(
        app_name=name,
        app_id=info.app_id,
        app_category=info.category,
        title_hash=feats.title_hash,
        title_char_count=float(feats.char_count),
        title_token_count=float(feats.token_count),
        title_unique_token_ratio=feats.unique_token_ratio,
        title_digit_ratio=feats.digit_ratio,
        title_separator_count=float(feats.separator_count),
        title_token_sketch=feats.token_sketch,
        title_char3_sketch=feats.char3_sketch,
    )
    return f"{name}\x1f{feats.title_hash}"


def web_identity(data: Any, secret: bytes) -> tuple[str, str, str]:
    """A tab event's URL and title (empty when missing) and its identity (keyed hashes)."""
    url = data.get("url") or ""
    title = data.get("title") or ""
    return url, title, _keyed(secret, b"url:", url) + "\x1f" + _keyed(secret, b"title:", title)


def _web_row(row: dict[str, Any], data: Any, secret: bytes) -> str:
    url, title, identity = web_identity(data, secret)
    row.update(
        domain_category=domain_category(url),
        host_hash=host_hash(secret, url_host(url)),
        # only the tab title's hash is kept (a web event has no title sketch or statistics)
        title_hash=title_hash(secret, title) if title else None,
    )
    return identity


INPUT_KEYS: Final = tuple(key for _, key in _INPUT_MAP)


def input_values(data: Any) -> tuple[list[float], str]:
    """An input event's counts in :data:`_INPUT_MAP` order (NaN when missing), and identity."""
    return input_counts([data.get(key) for key in INPUT_KEYS])


def input_counts(raw: Sequence[Any]) -> tuple[list[float], str]:
    """:func:`input_values` of the raw values of :data:`INPUT_KEYS` (None when missing)."""
    values = [float(abs(v)) if v is not None else np.nan for v in raw]
    return values, ",".join(map(repr, values))


def _input_row(row: dict[str, Any], data: Any) -> str:
    values, identity = input_values(data)
    for (col, _), v in zip(_INPUT_MAP, values, strict=True):
        row[col] = v
    return identity


def normalize_buckets(
    buckets: Iterable[ParsedBucket], *, secret: bytes, device_id: str | None = None
) -> pd.DataFrame:
    """Turn parsed buckets into the normalized events table (deduplicated, sorted).

    Args:
        buckets: validated buckets of supported types.
        secret: the per-install title secret (``core.config.load_or_create_title_secret``).
        device_id: the device of every event; None uses each bucket's hostname (else
            ``"unknown-device"``).

    Returns:
        A frame with exactly :data:`EVENT_COLUMNS`; see :func:`dedupe_events` for order.
    """
    return frame_from_rows(normalize_records(buckets, secret=secret, device_id=device_id))


def normalize_records(
    buckets: Iterable[ParsedBucket],
    *,
    secret: bytes,
    device_id: str | None = None,
    titles: dict[str, TitleFeatures] | None = None,
) -> list[dict[str, Any]]:
    """The rows of :func:`normalize_buckets` as dicts, before the frame is built.

    The same rows in the same order (deduplicated and sorted by :func:`dedupe_records`), with
    times as integer microseconds since the epoch (UTC). The online loop adds a poll's few
    events this way, without building a frame (``FeatureState.add_records``).

    Args:
        buckets: validated buckets of supported types.
        secret: the per-install title secret.
        device_id: as for :func:`normalize_buckets`.
        titles: a cache of title features by raw title, kept in memory by a caller that
            normalizes many batches (the online loop); filled as titles are seen. Never
            written anywhere.
    """
    rows: list[dict[str, Any]] = []
    cache: dict[str, TitleFeatures] = {} if titles is None else titles
    for bucket in buckets:
        kind = KIND_OF_TYPE[bucket.bucket_type]
        device = device_id or bucket.hostname or "unknown-device"
        for ev in bucket.events:
            row = _empty_row(
                kind, bucket.bucket_id, device, ev.start_us, ev.start_us + ev.duration_us
            )
            if kind == "window":
                identity = _window_row(row, ev.data, cache, secret)
            elif kind == "afk":
                identity = row["status"] = str(ev.data["status"])
            elif kind == "web":
                identity = _web_row(row, ev.data, secret)
            else:
                identity = _input_row(row, ev.data)
            row["event_id"] = event_id(kind, bucket.bucket_id, ev.start_us, identity)
            rows.append(row)
    return dedupe_records(rows)


def title_row(feats: TitleFeatures) -> tuple[Any, ...]:
    """A title's :data:`~taskclf.features._minutes.TITLE_STAT_COLUMNS` values."""
    return (
        float(feats.char_count),
        float(feats.token_count),
        feats.unique_token_ratio,
        feats.digit_ratio,
        float(feats.separator_count),
        feats.token_sketch,
        feats.char3_sketch,
    )


def dedupe_records(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """:func:`dedupe_events` of event rows as dicts (times as integers).

    The same rule: one row per ``event_id``, the latest ``end_ts`` (the later row on ties),
    in (``start_ts``, ``kind``, ``event_id``) order.
    """
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        before = latest.get(row["event_id"])
        if before is None or row["end_ts"] >= before["end_ts"]:
            latest[row["event_id"]] = row
    return sorted(latest.values(), key=lambda r: (r["start_ts"], r["kind"], r["event_id"]))


def frame_from_rows(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Build an events frame with the canonical dtypes from row dicts (times in µs)."""
    data: dict[str, Any] = {}
    for col in EVENT_COLUMNS:
        values = [r[col] for r in rows]
        if col in TIME_COLUMNS:
            data[col] = pd.to_datetime(np.asarray(values, dtype=np.int64), unit="us", utc=True)
        elif col in FLOAT_COLUMNS:
            data[col] = np.asarray(values, dtype=np.float64)
        else:
            data[col] = pd.array(values, dtype=object)
    return coerce_events(pd.DataFrame(data))


def empty_events() -> pd.DataFrame:
    """An events frame without rows."""
    return frame_from_rows([])


def coerce_events(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with exactly :data:`EVENT_COLUMNS` in canonical dtypes.

    String columns are object dtype holding ``str`` or None, times ``datetime64[us, UTC]``,
    the rest float64.
    """
    missing = [c for c in EVENT_COLUMNS if c not in df.columns]
    if missing:
        from taskclf.core.errors import SchemaError

        raise SchemaError(f"events table lacks columns {missing}; re-ingest the data")
    out = pd.DataFrame(index=pd.RangeIndex(len(df)))
    for col in EVENT_COLUMNS:
        s = df[col]
        if col in TIME_COLUMNS:
            out[col] = pd.to_datetime(s, utc=True).astype(_TS_DTYPE).reset_index(drop=True)
        elif col in FLOAT_COLUMNS:
            out[col] = s.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            arr = s.astype(object).to_numpy()
            out[col] = pd.Series(
                [
                    None
                    if (v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)))
                    else str(v)
                    for v in arr
                ],
                dtype=object,
            )
    return out


def dedupe_events(df: pd.DataFrame) -> pd.DataFrame:
    """Collapse rows with the same ``event_id`` keeping the latest end; sort canonically.

    Order: ``start_ts``, ``kind``, ``event_id`` — a total order, so equal inputs give equal
    frames.
    """
    if df.empty:
        return df.reset_index(drop=True)
    ordered = df.sort_values(["event_id", "end_ts"], kind="mergesort")
    kept = ordered.drop_duplicates("event_id", keep="last")
    kept = kept.sort_values(["start_ts", "kind", "event_id"], kind="mergesort")
    return kept.reset_index(drop=True)
