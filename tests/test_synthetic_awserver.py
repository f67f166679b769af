"""Synthetic exports import into a real aw-server 0.12 via ``POST /api/0/import``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from taskclf.synthetic.generator import generate_user

pytestmark = pytest.mark.awserver


def test_export_imports_into_a_real_aw_server(aw_server: Any) -> None:
    # The noisy archetype has every bucket kind and the most window switching.
    user = generate_user(1, days=1, seed=11)
    body = json.dumps(user.export, ensure_ascii=False).encode("utf-8")
    with httpx.Client(base_url=aw_server.url, timeout=60) as client:
        response = client.post(
            "/api/0/import", content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 200, response.text[:300]
        buckets = client.get("/api/0/buckets/").json()
        assert set(buckets) == set(user.export["buckets"])
        for bucket_id, bucket in user.export["buckets"].items():
            assert buckets[bucket_id]["type"] == bucket["type"]
            assert buckets[bucket_id]["hostname"] == bucket["hostname"]
            count = client.get(f"/api/0/buckets/{bucket_id}/events/count").json()
            assert count == len(bucket["events"]) > 0, bucket_id
        window_id = next(
            b["id"] for b in user.export["buckets"].values() if b["type"] == "currentwindow"
        )
        served = client.get(f"/api/0/buckets/{window_id}/events", params={"limit": 10}).json()
    exported = user.export["buckets"][window_id]["events"][:10]
    # The newest events, compared as instants (the server drops a zero microsecond part) and
    # as sets (the order of events with equal timestamps is the server's choice).
    cutoff = _key(exported[5])[0]
    newest = sorted(_key(e) for e in exported if _key(e)[0] > cutoff)
    assert len(newest) >= 3
    assert sorted(_key(e) for e in served if _key(e)[0] > cutoff) == newest


def _key(event: dict[str, Any]) -> tuple[datetime, float, str]:
    data = json.dumps(event["data"], sort_keys=True, ensure_ascii=False)
    return datetime.fromisoformat(event["timestamp"]), event["duration"], data
