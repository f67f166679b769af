"""Title sketches: the stored text, its dense form, and the pairs the online path reads."""

from __future__ import annotations

import hmac
from collections import Counter
from hashlib import sha256

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskclf.core.errors import InputError
from taskclf.features._one import _dense_pairs, _pairs
from taskclf.features.text import (
    char_trigrams,
    sketch_to_dense,
    title_features,
    tokenize,
)

SECRET = b"k" * 32


def _bucket(domain: bytes, piece: str) -> int:
    mac = hmac.new(SECRET, domain + piece.encode("utf-8", "surrogatepass"), sha256)
    return int.from_bytes(mac.digest()[:8], "big") % 128


def _reference_sketch(domain: bytes, pieces: list[str]) -> str:
    counts = Counter(_bucket(domain, p) for p in pieces)
    return " ".join(f"{b}:{c}" for b, c in sorted(counts.items()))


def _reference_dense(sketch: str) -> np.ndarray:
    out = np.zeros(128)
    if sketch:
        for pair in sketch.split(" "):
            b, c = pair.split(":")
            out[int(b)] += float(int(c))
    total = out.sum()
    if total > 0:
        out /= total
    return out


titles = st.text(alphabet=st.sampled_from([*"ab cdé1 2-|:/·_ZY\t", "\ud800"]), max_size=80)


@settings(max_examples=200, deadline=None)
@given(titles)
def test_sketches_follow_their_definition(title: str) -> None:
    feats = title_features(SECRET, title)
    assert feats.token_sketch == _reference_sketch(b"tok:", tokenize(title))
    assert feats.char3_sketch == _reference_sketch(b"c3:", char_trigrams(title))
    for text, pairs in (
        (feats.token_sketch, feats.token_counts),
        (feats.char3_sketch, feats.char3_counts),
    ):
        assert " ".join(f"{b}:{c}" for b, c in pairs) == text
        dense = sketch_to_dense(text)
        assert np.array_equal(dense, _reference_dense(text))
    both = np.empty(256)  # what the online path's title columns take, from the pairs
    _dense_pairs(_pairs(feats.token_counts), _pairs(feats.char3_counts), both)
    want = np.concatenate(
        [sketch_to_dense(feats.token_sketch), sketch_to_dense(feats.char3_sketch)]
    )
    assert np.array_equal(both, want)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 127), st.integers(1, 10**6)), max_size=60))
def test_dense_sketch_equals_the_pairwise_definition(pairs: list[tuple[int, int]]) -> None:
    text = " ".join(f"{b}:{c}" for b, c in pairs)  # unsorted, repeated buckets too
    assert np.array_equal(sketch_to_dense(text), _reference_dense(text))


@pytest.mark.parametrize("bad", ["1", "1:2:3", "a:1", "200:1", "1:2  3:4", "-1:2", " 1:2"])
def test_malformed_sketch_text_is_an_error(bad: str) -> None:
    with pytest.raises(InputError, match="malformed"):
        sketch_to_dense(bad)
