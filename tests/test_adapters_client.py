from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from taskclf.adapters.activitywatch.client import AWClient
from taskclf.core.errors import (
    InputError,
    SourceNotFoundError,
    SourceTimeoutError,
    SourceUnreachableError,
)

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


def _seed(url: str) -> None:
    for bid, btype in (
        ("win_h", "currentwindow"),
        ("afk_h", "afkstatus"),
        ("win_g", "currentwindow"),
    ):
        host = "h" if bid.endswith("_h") else "g"
        r = httpx.post(
            f"{url}/api/0/buckets/{bid}",
            json={"client": "test", "type": btype, "hostname": host},
        )
        assert r.status_code in (200, 304), r.text
    events = [
        {
            "timestamp": (T0 + timedelta(minutes=i)).isoformat(),
            "duration": 30.0,
            "data": {"app": "Code.exe", "title": f"t{i}"},
        }
        for i in range(5)
    ]
    assert httpx.post(f"{url}/api/0/buckets/win_h/events", json=events).status_code == 200


@pytest.mark.awserver
def test_real_server_roundtrip(aw_server):
    _seed(aw_server.url)
    with AWClient(aw_server.url) as client:
        assert "version" in client.info()
        buckets = client.list_buckets()
        assert set(buckets) == {"win_h", "afk_h", "win_g"}
        assert buckets["win_h"]["type"] == "currentwindow"
        assert client.find_buckets("currentwindow") == ["win_g", "win_h"]
        assert client.find_buckets("currentwindow", host="h") == ["win_h"]
        events = client.get_events("win_h", T0, T0 + timedelta(hours=1))
        assert len(events) == 5
        assert {e["data"]["title"] for e in events} == {f"t{i}" for i in range(5)}
        # the server trims to the range
        part = client.get_events("win_h", T0 + timedelta(seconds=70), T0 + timedelta(minutes=2))
        assert len(part) == 1 and part[0]["duration"] == pytest.approx(20.0)
        with pytest.raises(SourceNotFoundError, match="no-such-bucket"):
            client.get_events("no-such-bucket", T0, T0 + timedelta(hours=1))
        with pytest.raises(InputError, match="timezone-aware"):
            client.get_events("win_h", T0.replace(tzinfo=None), T0)


@pytest.mark.awserver
def test_stopped_server_is_unreachable_after_bounded_retries(aw_server):
    url = aw_server.url
    aw_server.stop()
    client = AWClient(url, retries=2, backoff_seconds=0.01, timeout=2)
    t0 = time.monotonic()
    with pytest.raises(SourceUnreachableError, match="unreachable.*3 attempts"):
        client.info()
    assert time.monotonic() - t0 < 5
    aw_server.start()  # the fixture stops it again
    with AWClient(aw_server.url) as again:
        assert again.list_buckets() == {}


def test_silent_server_times_out():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.1)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except TimeoutError:
                continue

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        client = AWClient(f"http://127.0.0.1:{port}", timeout=0.3, retries=1, backoff_seconds=0)
        with pytest.raises(SourceTimeoutError, match="within 0.3 s.*2 attempts"):
            client.info()
        client.close()
    finally:
        stop.set()
        th.join(2)
        for c in conns:
            c.close()
        srv.close()


def test_html_error_page_is_retried_then_reported_without_body():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        return httpx.Response(500, html="<html>Traceback SECRET-DEBUG-PAGE</html>")

    client = AWClient(
        "http://127.0.0.1:5600",
        retries=2,
        backoff_seconds=0,
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(SourceUnreachableError) as info:
        client.list_buckets()
    assert len(calls) == 3
    assert "HTTP 500" in str(info.value)
    assert "SECRET-DEBUG-PAGE" not in str(info.value)


def test_bad_host_400_and_non_json_are_clear():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/info"):
            return httpx.Response(400, text="Bad Request")
        return httpx.Response(200, text="<html>not json</html>")

    client = AWClient("http://localhost:5600", transport=httpx.MockTransport(handler))
    with pytest.raises(SourceUnreachableError, match="localhost or 127.0.0.1"):
        client.info()
    with pytest.raises(SourceUnreachableError, match="non-JSON"):
        client.list_buckets()


def test_bad_arguments():
    with pytest.raises(InputError, match="http"):
        AWClient("localhost:5600")
    with pytest.raises(InputError):
        AWClient(retries=-1)
