"""A small REST client for a running ActivityWatch server (``aw-server`` / ``aw-server-rust``).

Transport failures are retried a bounded number of times with exponential backoff; what is
left is raised as one of the typed source errors (``core.errors``):

- :class:`~taskclf.core.errors.SourceUnreachableError` — connection refused, DNS failure, a
  server error page (``aw-server --testing`` answers server errors with an HTML debugger
  page, which is reported without its body), or a non-JSON answer;
- :class:`~taskclf.core.errors.SourceTimeoutError` — no answer within ``timeout``;
- :class:`~taskclf.core.errors.SourceNotFoundError` — the bucket or endpoint does not exist.

A 400 answer is not retried: aw-server answers 400 to a ``Host`` header other than
``localhost``/``127.0.0.1``, so the message says to use one of those.

Tests pass ``transport=`` (any ``httpx.BaseTransport``) or point the client at a real
``aw-server --testing`` on 127.0.0.1.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from taskclf.core.defaults import DEFAULT_AW_HOST, DEFAULT_AW_RETRIES, DEFAULT_AW_TIMEOUT_SECONDS
from taskclf.core.errors import (
    InputError,
    SourceError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceUnreachableError,
)

_RETRY_STATUS = frozenset({500, 502, 503, 504})


class AWClient:
    """Read-only access to an ActivityWatch server's REST API (``/api/0``).

    Args:
        base_url: the server, e.g. ``http://localhost:5600``.
        timeout: seconds for connect and read of one request.
        retries: extra attempts after a failed one (connection errors, timeouts, 5xx).
        backoff_seconds: the first wait between attempts; it doubles each retry.
        transport: an httpx transport (tests).
    """

    def __init__(
        self,
        base_url: str = DEFAULT_AW_HOST,
        *,
        timeout: float = DEFAULT_AW_TIMEOUT_SECONDS,
        retries: int = DEFAULT_AW_RETRIES,
        backoff_seconds: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if retries < 0 or timeout <= 0 or backoff_seconds < 0:
            raise InputError(
                f"AWClient: need retries >= 0, timeout > 0, backoff >= 0; got {retries}, "
                f"{timeout}, {backoff_seconds}"
            )
        if not base_url.startswith(("http://", "https://")):
            raise InputError(
                f"ActivityWatch host {base_url!r} must start with http:// or https:// "
                f"(e.g. {DEFAULT_AW_HOST})"
            )
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._client = httpx.Client(
            base_url=self.base_url + "/api/0",
            timeout=timeout,
            transport=transport,
            headers={"Accept": "application/json"},
        )

    # context manager ------------------------------------------------------
    def __enter__(self) -> AWClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    # requests -------------------------------------------------------------
    def _get(self, path: str, params: dict[str, str] | None = None, *, what: str) -> Any:
        attempt = 0
        while True:
            try:
                response = self._client.get(path, params=params)
            except httpx.TimeoutException:
                err: SourceError = SourceTimeoutError(
                    f"ActivityWatch server {self.base_url} did not answer {what} within "
                    f"{self._client.timeout.read} s (after {attempt + 1} attempts); is it busy? "
                    "retry later or raise the timeout"
                )
            except httpx.TransportError as exc:
                err = SourceUnreachableError(
                    f"ActivityWatch server {self.base_url} is unreachable for {what} "
                    f"({type(exc).__name__}; after {attempt + 1} attempts); start ActivityWatch "
                    "or pass the right --aw-host"
                )
            else:
                if response.status_code not in _RETRY_STATUS:
                    return self._decode(response, what)
                err = SourceUnreachableError(
                    f"ActivityWatch server {self.base_url} failed on {what} with HTTP "
                    f"{response.status_code} (after {attempt + 1} attempts); check the server log"
                )
            if attempt >= self.retries:
                raise err
            time.sleep(self.backoff_seconds * (2**attempt))
            attempt += 1

    def _decode(self, response: httpx.Response, what: str) -> Any:
        code = response.status_code
        if code == 404:
            raise SourceNotFoundError(
                f"ActivityWatch server {self.base_url}: {what} not found (HTTP 404); list the "
                "buckets with the web UI or check the bucket id"
            )
        if code == 400:
            raise SourceUnreachableError(
                f"ActivityWatch server {self.base_url} rejected {what} (HTTP 400); aw-server only "
                "accepts the host names localhost or 127.0.0.1 — use e.g. http://127.0.0.1:5600"
            )
        if code >= 400:
            raise SourceUnreachableError(
                f"ActivityWatch server {self.base_url} answered HTTP {code} for {what}"
            )
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "unknown content type")
            raise SourceUnreachableError(
                f"ActivityWatch server {self.base_url} sent a non-JSON answer ({kind}) for "
                f"{what}; is {self.base_url} really an ActivityWatch server?"
            ) from None

    # API --------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Server info (``GET /api/0/info``): hostname, version, testing flag."""
        data = self._get("/info", what="server info")
        if not isinstance(data, dict):
            raise SourceUnreachableError(f"{self.base_url}: /info did not return an object")
        return data

    def list_buckets(self) -> dict[str, dict[str, Any]]:
        """All buckets: id → metadata (type, hostname, client, created)."""
        data = self._get("/buckets/", what="the bucket list")
        if not isinstance(data, dict):
            raise SourceUnreachableError(f"{self.base_url}: /buckets/ did not return an object")
        return {str(k): v for k, v in data.items() if isinstance(v, dict)}

    def find_buckets(self, bucket_type: str, *, host: str | None = None) -> list[str]:
        """Sorted ids of buckets of ``bucket_type`` (optionally on ``host``)."""
        return sorted(
            bid
            for bid, meta in self.list_buckets().items()
            if meta.get("type") == bucket_type and (host is None or meta.get("hostname") == host)
        )

    def get_events(self, bucket_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Raw events of ``bucket_id`` overlapping ``[start, end)``.

        The server trims events to the range. aw-server treats ``end`` as inclusive and returns
        an event starting exactly at ``end`` with a made-up 1 ms duration; such events (start
        >= ``end``) are dropped here. Returns the server's dicts (``{timestamp, duration,
        data}``, newest first).
        """
        for name, value in (("start", start), ("end", end)):
            if value.tzinfo is None:
                raise InputError(f"get_events: {name} {value.isoformat()} must be timezone-aware")
        params = {
            "start": start.astimezone(UTC).isoformat(),
            "end": end.astimezone(UTC).isoformat(),
            "limit": "-1",
        }
        path = f"/buckets/{quote(bucket_id, safe='')}/events"
        data = self._get(path, params, what=f"events of bucket {bucket_id!r}")
        if not isinstance(data, list):
            raise SourceUnreachableError(
                f"{self.base_url}: events of bucket {bucket_id!r} are not a list"
            )
        return [e for e in data if not _starts_at_or_after(e, end)]


def _starts_at_or_after(event: Any, end: datetime) -> bool:
    """True when ``event`` has a parseable aware timestamp >= ``end`` (else False)."""
    if not isinstance(event, dict) or not isinstance(event.get("timestamp"), str):
        return False
    try:
        ts = datetime.fromisoformat(event["timestamp"])
    except ValueError:
        return False
    return ts.tzinfo is not None and ts >= end
