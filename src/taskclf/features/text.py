"""Privacy-safe window-title features: salted hash, keyed sketches and statistics.

A raw title is used once, in memory, at ingest and then dropped (DESIGN §4.2). What is kept:

- ``title_hash``: first 12 hex chars of SHA-256(secret + title) (``core.hashing.title_hash``);
  ``window_title_bucket`` is that hash mod 256.
- Two sparse sketches of 128 buckets each: lower-cased word tokens (runs of letters/digits)
  and character trigrams of the lower-cased, whitespace-collapsed title, each hashed into a
  bucket with HMAC-SHA-256 keyed by the per-install secret (``core.hashing.keyed_bucket``,
  domains ``tok:`` and ``c3:``). They are stored as text ``"bucket:count bucket:count ..."``
  (sorted by bucket) and expanded at feature time into normalized counts (each bucket's count
  divided by the total, so a sketch sums to 1, or is all zero for a title without tokens).
- Statistics: character count, token count, unique-token ratio, digit ratio and the number of
  separator characters (``- | — – : / \\ · • » «``).

Hostile input: titles are processed over their first :data:`MAX_TITLE_CHARS` characters
(``title_char_count`` still reports the full length and the hash covers the full title), so a
10^6-character title costs no more than a normal one.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

import numpy as np
from numpy.typing import NDArray

from taskclf.core.defaults import TITLE_SKETCH_BUCKETS
from taskclf.core.errors import InputError
from taskclf.core.hashing import keyed_bucket, title_bucket, title_hash

MAX_TITLE_CHARS: Final = 4096
SEPARATOR_CHARS: Final = frozenset("-|—–:/\\·•»«")
_TOKEN = re.compile(r"[^\W_]+")
_TOKEN_DOMAIN: Final = b"tok:"
_CHAR3_DOMAIN: Final = b"c3:"


@dataclass(frozen=True)
class TitleFeatures:
    """Everything kept of one window title."""

    title_hash: str
    title_bucket: int
    char_count: int
    token_count: int
    unique_token_ratio: float
    digit_ratio: float
    separator_count: int
    token_sketch: str
    char3_sketch: str


@lru_cache(maxsize=1 << 17)
def _bucket(secret: bytes, domain: bytes, piece: str) -> int:
    return keyed_bucket(secret, piece, TITLE_SKETCH_BUCKETS, domain=domain)


def _sketch_text(counts: Counter[int]) -> str:
    return " ".join(f"{b}:{c}" for b, c in sorted(counts.items()))


def tokenize(text: str) -> list[str]:
    """Lower-cased runs of letters and digits."""
    return _TOKEN.findall(text.lower())


def char_trigrams(text: str) -> list[str]:
    """Character trigrams of the lower-cased, whitespace-collapsed text."""
    norm = " ".join(text.lower().split())
    return [norm[i : i + 3] for i in range(len(norm) - 2)]


def title_features(secret: bytes, title: str) -> TitleFeatures:
    """Hash, sketch and measure ``title`` (see the module docstring)."""
    if not isinstance(title, str):
        raise InputError(f"window title must be a string, got {type(title).__name__}")
    text = title[:MAX_TITLE_CHARS]
    tokens = tokenize(text)
    token_counts = Counter(_bucket(secret, _TOKEN_DOMAIN, t) for t in tokens)
    char3_counts = Counter(_bucket(secret, _CHAR3_DOMAIN, g) for g in char_trigrams(text))
    digits = sum(ch.isdigit() for ch in text)
    h = title_hash(secret, title)
    return TitleFeatures(
        title_hash=h,
        title_bucket=title_bucket(h),
        char_count=len(title),
        token_count=len(tokens),
        unique_token_ratio=(len(set(tokens)) / len(tokens)) if tokens else 0.0,
        digit_ratio=(digits / len(text)) if text else 0.0,
        separator_count=sum(ch in SEPARATOR_CHARS for ch in text),
        token_sketch=_sketch_text(token_counts),
        char3_sketch=_sketch_text(char3_counts),
    )


def sketch_to_dense(sketch: str, n_buckets: int = TITLE_SKETCH_BUCKETS) -> NDArray[np.float64]:
    """Expand a stored sparse sketch into normalized counts, shape ``(n_buckets,)`` float64.

    Raises:
        InputError: if the text is not ``bucket:count`` pairs with buckets in range.
    """
    out = np.zeros(n_buckets, dtype=np.float64)
    if not sketch:
        return out
    try:
        for pair in sketch.split(" "):
            b, c = pair.split(":")
            out[int(b)] += float(int(c))
    except (ValueError, IndexError):
        raise InputError(
            f"stored title sketch is malformed: {sketch[:60]!r}; expected 'bucket:count' pairs "
            "with buckets in [0, 128); re-ingest the events"
        ) from None
    total = out.sum()
    if total > 0:
        out /= total
    return out
