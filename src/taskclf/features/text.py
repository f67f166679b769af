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
from typing import Final, cast

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
    #: the sketches as sorted ``(bucket, count)`` pairs (what the texts spell out)
    token_counts: tuple[tuple[int, int], ...] = ()
    char3_counts: tuple[tuple[int, int], ...] = ()


_MAX_CACHED_PIECES = 1 << 17
_BUCKETS: dict[tuple[bytes, bytes], dict[str, int]] = {}


def _bucket(secret: bytes, domain: bytes, piece: str) -> int:
    return keyed_bucket(secret, piece, TITLE_SKETCH_BUCKETS, domain=domain)


def _sketch(secret: bytes, domain: bytes, pieces: list[str]) -> tuple[tuple[int, int], ...]:
    """The sketch of ``pieces``: their keyed buckets counted, as pairs sorted by bucket.

    Buckets are remembered per (secret, domain) and piece (tokens and trigrams repeat
    across titles); the memory holds at most :data:`_MAX_CACHED_PIECES` pieces per domain.
    """
    known = _BUCKETS.get((secret, domain))
    if known is None or len(known) > _MAX_CACHED_PIECES:
        known = _BUCKETS[(secret, domain)] = {}
    found = list(map(known.get, pieces))
    if None in found:
        for i, b in enumerate(found):
            if b is None:
                piece = pieces[i]
                got = known.get(piece)
                found[i] = known[piece] = _bucket(secret, domain, piece) if got is None else got
    buckets = cast(list[int], found)
    return tuple(sorted(Counter(buckets).items()))


def _sketch_text(pairs: tuple[tuple[int, int], ...]) -> str:
    return " ".join([f"{b}:{c}" for b, c in pairs])


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
    digits = sum(map(str.isdigit, text))
    h = title_hash(secret, title)
    token_counts = _sketch(secret, _TOKEN_DOMAIN, tokens)
    char3_counts = _sketch(secret, _CHAR3_DOMAIN, char_trigrams(text))
    return TitleFeatures(
        title_hash=h,
        title_bucket=title_bucket(h),
        char_count=len(title),
        token_count=len(tokens),
        unique_token_ratio=(len(set(tokens)) / len(tokens)) if tokens else 0.0,
        digit_ratio=(digits / len(text)) if text else 0.0,
        separator_count=sum(map(SEPARATOR_CHARS.__contains__, text)),
        token_sketch=_sketch_text(token_counts),
        char3_sketch=_sketch_text(char3_counts),
        token_counts=token_counts,
        char3_counts=char3_counts,
    )


_PAIRS = re.compile(r"[0-9]{1,9}:[0-9]{1,9}(?: [0-9]{1,9}:[0-9]{1,9})*")


def sketch_to_dense(sketch: str, n_buckets: int = TITLE_SKETCH_BUCKETS) -> NDArray[np.float64]:
    """Expand a stored sparse sketch into normalized counts, shape ``(n_buckets,)`` float64.

    Each pair adds its count to its bucket (in text order), then the counts are divided by
    their total (``ndarray.sum``) when it is positive.

    Raises:
        InputError: if the text is not ``bucket:count`` pairs with buckets in range.
    """
    if not sketch:
        return np.zeros(n_buckets, dtype=np.float64)
    if _PAIRS.fullmatch(sketch):  # the stored form: one parse for all pairs
        pairs = np.fromstring(sketch.replace(":", " "), dtype=np.int64, sep=" ").reshape(-1, 2)
        if int(pairs[:, 0].max()) < n_buckets:
            weights = pairs[:, 1].astype(np.float64)
            counts = np.bincount(pairs[:, 0], weights=weights, minlength=n_buckets)
            return _normalized(counts.astype(np.float64, copy=False))
    out: NDArray[np.float64] = np.zeros(n_buckets, dtype=np.float64)
    try:
        for pair in sketch.split(" "):
            b, c = pair.split(":")
            if int(b) < 0:  # a negative index would wrap around to the last buckets
                raise IndexError(b)
            out[int(b)] += float(int(c))
    except (ValueError, IndexError):
        raise InputError(
            f"stored title sketch is malformed: {sketch[:60]!r}; expected 'bucket:count' pairs "
            "with buckets in [0, 128); re-ingest the events"
        ) from None
    return _normalized(out)


def _normalized(out: NDArray[np.float64]) -> NDArray[np.float64]:
    total = out.sum()
    if total > 0:
        out /= total
    return out
