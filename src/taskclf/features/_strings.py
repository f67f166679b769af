"""Interned values for the compiled online minute: codes, and each string's lexical rank.

The kernel (``features._kernel``) works on integers, but feature building compares strings:
it picks the lexically smallest app, title or domain on ties and sums app shares in lexical
order. :class:`Interned` gives each distinct value a code and each string code a rank whose
integer order is the strings' order (Python's code-point order), kept as new strings arrive:
a new rank goes halfway between its neighbours' ranks, and all ranks are renumbered in the
rare case that no integer is left between them.

Values that are not strings (a missing ``None``, a NaN from pandas) get a code of their own,
flagged in :attr:`Interned.is_str`, and keep the object itself, so the batch code gets the
exact values back (:meth:`Interned.values_of`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from typing import Any

import numpy as np
from numpy.typing import NDArray

_SPACING = 1 << 32  # rank gap after a renumbering: 32 halvings before the next one


class Interned:
    """Codes ``0..n-1`` for values; :attr:`rank` and :attr:`is_str` indexed by code.

    :attr:`rank` and :attr:`is_str` may be replaced by larger arrays when values are added
    (read them after adding). The rank of a non-string code is 0 and is never compared.
    """

    def __init__(self, capacity: int = 64) -> None:
        self.values: list[Any] = []
        self._codes: dict[str, int] = {}
        self._sorted: list[str] = []  # the string values in order
        self._keys: list[int] = []  # their ranks, same order
        self.rank: NDArray[np.int64] = np.zeros(capacity, dtype=np.int64)
        self.is_str: NDArray[np.bool_] = np.zeros(capacity, dtype=np.bool_)

    def __len__(self) -> int:
        return len(self.values)

    def code(self, value: Any) -> int:
        """The code of ``value`` (a new one for a new string, and for every non-string)."""
        if type(value) is str:
            got = self._codes.get(value)
            return got if got is not None else self._add_str(value)
        return self._add(value, is_str=False)

    def codes(self, values: Iterable[Any]) -> list[int]:
        get = self._codes.get
        out = []
        for v in values:
            c = get(v) if type(v) is str else None
            out.append(c if c is not None else self.code(v))
        return out

    def get(self, value: str) -> int | None:
        """The code of a string already interned, else None."""
        return self._codes.get(value)

    def values_of(self, codes: NDArray[np.int64]) -> NDArray[np.object_]:
        """The values of ``codes`` as an object array."""
        table = np.empty(len(self.values), dtype=object)
        table[:] = self.values
        out: NDArray[np.object_] = table[codes] if codes.size else np.zeros(0, dtype=object)
        return out

    def _add(self, value: Any, *, is_str: bool) -> int:
        code = len(self.values)
        if code == self.rank.size:
            self.rank = np.concatenate([self.rank, np.zeros(code, dtype=np.int64)])
            self.is_str = np.concatenate([self.is_str, np.zeros(code, dtype=np.bool_)])
        self.values.append(value)
        self.is_str[code] = is_str
        return code

    def _add_str(self, value: str) -> int:
        code = self._add(value, is_str=True)
        self._codes[value] = code
        pos = bisect.bisect_left(self._sorted, value)
        lo = self._keys[pos - 1] if pos > 0 else None
        hi = self._keys[pos] if pos < len(self._keys) else None
        if lo is None and hi is None:
            key: int | None = 0
        elif lo is None:
            key = hi - _SPACING  # type: ignore[operator]
        elif hi is None:
            key = lo + _SPACING
        else:
            key = lo + (hi - lo) // 2 if hi - lo > 1 else None
        self._sorted.insert(pos, value)
        if key is None:
            self._keys.insert(pos, 0)
            self._renumber()
        else:
            self._keys.insert(pos, key)
            self.rank[code] = key
        return code

    def _renumber(self) -> None:
        self._keys = [i * _SPACING for i in range(len(self._sorted))]
        for s, key in zip(self._sorted, self._keys, strict=True):
            self.rank[self._codes[s]] = key

    def compact(self, live: NDArray[np.int64]) -> NDArray[np.int64]:
        """Keep only the codes in ``live`` (renumbered in their order); return old -> new.

        Codes not kept map to -1. Ranks keep their order.
        """
        keep = np.unique(live[live >= 0])
        remap = np.full(len(self.values), -1, dtype=np.int64)
        remap[keep] = np.arange(keep.size)
        old_values, old_rank, old_str = self.values, self.rank, self.is_str
        self.values = [old_values[int(c)] for c in keep]
        capacity = max(64, 2 * keep.size)
        self.rank = np.zeros(capacity, dtype=np.int64)
        self.is_str = np.zeros(capacity, dtype=np.bool_)
        self.rank[: keep.size] = old_rank[keep]
        self.is_str[: keep.size] = old_str[keep]
        self._codes = {v: i for i, v in enumerate(self.values) if self.is_str[i]}
        pairs = sorted((v, int(self.rank[i])) for v, i in self._codes.items())
        self._sorted = [v for v, _ in pairs]
        self._keys = [k for _, k in pairs]
        return remap
