"""Event arrays of a small events frame, built with plain Python (the online poll's path).

``EventArrays.from_frame`` selects and converts columns with pandas per event kind, which
costs milliseconds whatever the frame's size; the online loop converts the few events of one
poll each minute. :func:`small_kinds` returns exactly what the pandas path returns (tested
with random event mixes) from one ``to_numpy`` per column and plain-Python sorting, or None
when the frame is large or holds a value that path treats specially (a missing timestamp or
id, a timestamp unit other than microseconds), so the caller uses the pandas path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

SMALL_FRAME = 256  # at most this many events take the plain-Python path

KIND_COLUMNS = {  # the columns each kind needs beyond times, ids and sources
    "window": ("app_id", "title_hash", "app_category"),
    "afk": ("status",),
    "input": ("presses", "clicks", "delta_x", "delta_y", "scroll_x", "scroll_y", "backspaces",
              "shortcuts"),
    "web": ("domain_category",),
}  # fmt: skip
_KINDS = ("window", "afk", "input", "web")


def _micros(s: pd.Series) -> list[int] | None:
    """Microseconds since the epoch of a tz-aware microsecond column (None otherwise)."""
    arr = s.array
    if getattr(arr, "tz", None) is None or getattr(arr, "unit", None) != "us":
        return None
    if bool(s.isna().any()):
        return None
    values: list[int] = arr.asi8.tolist()
    return values


def _objects(values: list[Any]) -> NDArray[np.object_]:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def small_kinds(
    events: pd.DataFrame, title_columns: tuple[str, ...]
) -> tuple[dict[str, dict[str, Any]], dict[Any, tuple[Any, ...]]] | None:
    """``(kinds, titles)`` of ``EventArrays.from_frame(events)``, or None (see the module)."""
    if len(events) > SMALL_FRAME:
        return None
    start, end = _micros(events["start_ts"]), _micros(events["end_ts"])
    if start is None or end is None:
        return None
    ids = events["event_id"].to_numpy(dtype=object).tolist()
    if any(type(i) is not str for i in ids):
        return None
    kind_of = events["kind"].to_numpy(dtype=object).tolist()
    # canonical order: (start, event_id), ties kept in frame order (a stable sort)
    order = sorted(range(len(ids)), key=lambda i: (start[i], ids[i]))
    sources = events["source_id"].to_numpy(dtype=object).tolist()
    cache: dict[str, list[Any]] = {}

    def column(name: str) -> list[Any]:
        if name not in cache:
            cache[name] = events[name].to_numpy(dtype=object).tolist()
        return cache[name]

    kinds: dict[str, dict[str, Any]] = {}
    titles: dict[Any, tuple[Any, ...]] = {}
    for kind in _KINDS:
        sel = [i for i in order if kind_of[i] == kind]
        cols: dict[str, Any] = {
            "start": np.array([start[i] for i in sel], dtype=np.int64),
            "end": np.array([end[i] for i in sel], dtype=np.int64),
            "id": _objects([ids[i] for i in sel]),
            "src": _objects([sources[i] for i in sel]),
        }
        if kind == "window":
            for key, name in (("app", "app_id"), ("title", "title_hash"), ("cat", "app_category")):
                cols[key] = _objects([column(name)[i] for i in sel])
            if any(type(t) is not str for t in cols["title"].tolist()):
                return None  # the pandas path's duplicate test treats missing titles specially
            table = [column(c) for c in title_columns]
            for i in sel:  # the first event of each title hash, in canonical order
                h = column("title_hash")[i]
                if h not in titles:
                    titles[h] = tuple(c[i] for c in table)
        elif kind == "afk":
            status = column("status")
            cols["notafk"] = np.array([status[i] == "not-afk" for i in sel], dtype=bool)
        elif kind == "web":
            cols["dom"] = _objects([column("domain_category")[i] for i in sel])
        else:
            cols["vals"] = _input_values(events, sel)
        kinds[kind] = cols
    return kinds, titles


def _input_values(events: pd.DataFrame, sel: list[int]) -> NDArray[np.float64]:
    """The (events, 6) input values, computed as ``_minutes._kind_arrays`` does."""
    raw = {c: events[c].to_numpy(dtype=np.float64)[sel] for c in KIND_COLUMNS["input"]}
    dist = np.hypot(raw["delta_x"], raw["delta_y"])
    sx, sy = raw["scroll_x"], raw["scroll_y"]
    both_missing = np.isnan(sx) & np.isnan(sy)
    scroll = np.where(
        both_missing, np.nan, np.where(np.isnan(sx), 0.0, sx) + np.where(np.isnan(sy), 0.0, sy)
    )
    vals = np.column_stack(
        [raw["presses"], raw["clicks"], dist, scroll, raw["backspaces"], raw["shortcuts"]]
    ).astype(np.float64)
    return vals.reshape(len(sel), 6)
