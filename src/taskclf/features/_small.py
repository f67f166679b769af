"""Plain-Python versions of a few group-by steps, for the tiny inputs of one online minute.

Closing one minute online runs the batch feature code over a handful of values, where the
fixed cost of pandas' factorize / group-by machinery dominates. Each function here returns
exactly what its generic counterpart returns (tested against it with random inputs); callers
use it only below a size limit (:data:`SMALL`) and, for factorizing, only when every value is
a ``str`` (the generic path treats missing values specially).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

I64 = NDArray[np.int64]
ObjArr = NDArray[np.object_]

SMALL = 64  # at most this many values take the plain-Python path


def _all_str(values: list[Any]) -> bool:
    return all(type(v) is str for v in values)


def factorize_sorted(values: ObjArr) -> tuple[I64, ObjArr]:
    """Codes into the lexically sorted unique values (as ``pd.factorize(..., sort=True)``)."""
    if values.size <= SMALL:
        items = values.tolist()
        if _all_str(items):
            uniq = sorted(set(items))
            index = {u: i for i, u in enumerate(uniq)}
            codes = np.array([index[v] for v in items], dtype=np.int64)
            out = np.empty(len(uniq), dtype=object)
            out[:] = uniq
            return codes, out
    got, uniques = pd.factorize(pd.Series(values, dtype=object), sort=True)
    return got.astype(np.int64), np.asarray(uniques, dtype=object)


def factorize_first(values: ObjArr) -> tuple[NDArray[np.intp], ObjArr]:
    """Codes into the unique values in order of appearance (as ``pd.factorize``)."""
    if values.size <= SMALL:
        items = values.tolist()
        if _all_str(items):
            index: dict[str, int] = {}
            codes = np.array([index.setdefault(v, len(index)) for v in items], dtype=np.intp)
            out = np.empty(len(index), dtype=object)
            out[:] = list(index)
            return codes, out
    got, uniques = pd.factorize(pd.Series(values, dtype=object))
    return np.asarray(got, dtype=np.intp), np.asarray(uniques, dtype=object)


def pair_cumcount(first: I64, second: ObjArr) -> I64:
    """How many earlier positions had the same ``(first, str(second))`` pair."""
    if first.size <= SMALL:
        seen: dict[tuple[int, str], int] = {}
        out = []
        for key in zip(first.tolist(), second.astype(str).tolist(), strict=True):
            c = seen.get(key, 0)
            out.append(c)
            seen[key] = c + 1
        return np.array(out, dtype=np.int64)
    index = pd.MultiIndex.from_arrays([first, second.astype(str)])
    counts = pd.Series(np.zeros(first.size), index=index).groupby(level=[0, 1], sort=False)
    return counts.cumcount().to_numpy().astype(np.int64)


def isin_sorted(values: I64, sorted_unique: I64) -> NDArray[np.bool_]:
    """``np.isin(values, sorted_unique)`` for a sorted array of unique integers."""
    if values.size > SMALL or sorted_unique.size == 0:
        return np.isin(values, sorted_unique)
    pos = np.searchsorted(sorted_unique, values)
    hit: NDArray[np.bool_] = sorted_unique[np.minimum(pos, sorted_unique.size - 1)] == values
    return hit


def row_name_lists(row: I64, names: ObjArr, n: int) -> ObjArr | None:
    """Per row, the sorted distinct ``names`` at that row (None unless few ``str`` names).

    The same lists as the bit-mask grouping of ``_minutes._sources`` (which sorts names
    lexically), without its factorize / unique steps.
    """
    items = names.tolist()
    if row.size > SMALL or not _all_str(items):
        return None
    per: list[set[str]] = [set() for _ in range(n)]
    for r, name in zip(row.tolist(), items, strict=True):
        per[r].add(name)
    out = np.empty(n, dtype=object)
    for i, found in enumerate(per):
        out[i] = sorted(found)
    return out
