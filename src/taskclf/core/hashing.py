"""Hashing: salted title hashes, keyed sketches and stable content hashes."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from taskclf.core.defaults import TITLE_BUCKETS, TITLE_HASH_CHARS


def title_hash(secret: bytes, title: str) -> str:
    """First 12 hex chars of SHA-256(secret + title) (DESIGN §4.2)."""
    digest = hashlib.sha256(secret + title.encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:TITLE_HASH_CHARS]


def title_bucket(hash_hex: str) -> int:
    """``window_title_hash`` mod 256."""
    return int(hash_hex, 16) % TITLE_BUCKETS


def keyed_bucket(secret: bytes, token: str, n_buckets: int, *, domain: bytes = b"") -> int:
    """HMAC-SHA-256(secret, domain + token) mod ``n_buckets``."""
    mac = hmac.new(secret, domain + token.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return int.from_bytes(mac.digest()[:8], "big") % n_buckets


def stable_hash(obj: Any, *, length: int = 16) -> str:
    """Deterministic SHA-256 of the canonical JSON of ``obj`` (sorted keys, compact)."""
    payload = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def sha256_file(path: Any, chunk: int = 1 << 20) -> str:
    """Full SHA-256 hex of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
