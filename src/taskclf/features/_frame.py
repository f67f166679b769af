"""Assembly of a wide feature frame from typed 2-D blocks, without copying them again.

A v3 feature frame has ~300 columns, 282 of them float64 (256 title sketch columns).
``pd.DataFrame(dict)`` copies every column into consolidated per-dtype blocks and
``pd.concat`` adds the sketch block beside them, so each float cell was written two or three
times into fresh memory (>1 GB at 1M events). Here each float column is written once, into
one preallocated ``(columns, rows)`` block, ints and bools likewise, and the frame wraps the
blocks as they are (``pandas.api.internals.create_dataframe_from_blocks``).

Column dtypes are exactly those ``pd.DataFrame(dict)`` would give for the same arrays: numeric
numpy arrays keep their dtype, and an object array is inferred the way pandas infers it
(all strings: the ``str`` dtype; otherwise object).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

# public since pandas 3.0; pandas-stubs does not describe it yet
from pandas.api.internals import create_dataframe_from_blocks  # type: ignore[import-not-found]

F64 = NDArray[np.float64]


class BlockFrame:
    """Columns of one frame grouped by dtype; float rows can be reserved for the caller.

    Args:
        n: number of rows.
        columns: column name → 1-D values of length ``n`` (numpy array, ``DatetimeIndex`` or
            pandas extension array).
        reserve: names of extra float64 columns the caller fills through :meth:`reserved`.
    """

    def __init__(self, n: int, columns: Mapping[str, Any], reserve: Sequence[str] = ()) -> None:
        self.n = n
        groups: dict[np.dtype[Any], list[str]] = {np.dtype(np.float64): list(reserve)}
        self._other: dict[str, Any] = {}
        for name, values in columns.items():
            if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
                groups.setdefault(values.dtype, []).append(name)
            else:
                self._other[name] = _inferred(values)
        self._blocks: list[tuple[NDArray[Any], list[str]]] = []
        for dtype, names in groups.items():
            if not names:
                continue
            block = np.empty((len(names), n), dtype=dtype)
            for i, name in enumerate(names):
                if name in columns:
                    block[i] = columns[name]
            self._blocks.append((block, names))
        self._n_reserved = len(reserve)

    def reserved(self) -> F64:
        """The ``(len(reserve), n)`` float64 rows to fill, in ``reserve`` order (a view)."""
        block, _ = self._blocks[0]
        rows: F64 = block[: self._n_reserved]
        return rows

    def frame(self, order: Sequence[str]) -> pd.DataFrame:
        """The frame with columns ``order`` (every column exactly once) and a RangeIndex."""
        pos = {name: i for i, name in enumerate(order)}
        have = [*(c for _, names in self._blocks for c in names), *self._other]
        if len(pos) != len(order) or sorted(pos) != sorted(have):
            raise ValueError(
                f"BlockFrame.frame: order must name every column exactly once; columns "
                f"{sorted(set(have) ^ set(pos))[:5]} are missing or unknown"
            )
        blocks: list[tuple[Any, NDArray[np.intp]]] = []
        for block, names in self._blocks:
            blocks.append((block, np.array([pos[c] for c in names], dtype=np.intp)))
        for name, values in self._other.items():
            blocks.append((values, np.array([pos[name]], dtype=np.intp)))
        frame: pd.DataFrame = create_dataframe_from_blocks(
            blocks, index=pd.RangeIndex(self.n), columns=pd.Index(list(order))
        )
        return frame


def _inferred(values: Any) -> Any:
    """A block for non-numeric values: a 1-D extension array or a ``(1, n)`` object array."""
    if isinstance(values, pd.DatetimeIndex):
        return values.array
    if isinstance(values, np.ndarray):
        array = pd.Series(values, copy=False).array  # the dtype pd.DataFrame would infer
        if isinstance(array, pd.arrays.NumpyExtensionArray):
            return array.to_numpy().reshape(1, -1)
        return array
    return values
