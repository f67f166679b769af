"""The plain-Python small-input paths of ``features._small`` equal the generic pandas paths."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskclf.features import _small

WORDS = st.sampled_from(["", "a", "B", "b", "ab", "é", "z z", "10", "9", "None", "nan"])
VALUES = st.lists(st.one_of(WORDS, WORDS, st.none(), st.just(float("nan"))), max_size=40)


def _obj(items: list) -> np.ndarray:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _generic(monkeypatch: pytest.MonkeyPatch, fn, *args):
    with monkeypatch.context() as m:
        m.setattr(_small, "SMALL", -1)
        return fn(*args)


def _same(fast: np.ndarray, slow: np.ndarray) -> None:
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    assert fast.tolist() == slow.tolist()
    assert [type(v) for v in fast.tolist()] == [type(v) for v in slow.tolist()]


@given(items=VALUES)
def test_factorize_sorted_matches_pandas(items: list) -> None:
    mp = pytest.MonkeyPatch()
    values = _obj(items)
    for fast, slow in zip(
        _small.factorize_sorted(values),
        _generic(mp, _small.factorize_sorted, values),
        strict=True,
    ):
        _same(fast, slow)


@given(items=VALUES)
def test_factorize_first_matches_pandas(items: list) -> None:
    mp = pytest.MonkeyPatch()
    values = _obj(items)
    for fast, slow in zip(
        _small.factorize_first(values), _generic(mp, _small.factorize_first, values), strict=True
    ):
        _same(fast, slow)


@given(
    pairs=st.lists(
        st.tuples(st.integers(0, 3), st.one_of(WORDS, st.none(), st.just(float("nan")))),
        max_size=40,
    )
)
def test_pair_cumcount_matches_groupby(pairs: list) -> None:
    mp = pytest.MonkeyPatch()
    first = np.array([p[0] for p in pairs], dtype=np.int64)
    second = _obj([p[1] for p in pairs])
    _same(_small.pair_cumcount(first, second), _generic(mp, _small.pair_cumcount, first, second))
