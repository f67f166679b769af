"""Events as Python lists: small frames and event records converted without pandas.

``EventArrays.from_frame`` selects and converts columns with pandas per event kind, which
costs milliseconds whatever the frame's size; a small frame, or a poll's few event records,
convert faster in plain Python:

- :func:`small_rows` converts a small normalized events frame with one ``to_numpy`` per
  column and a plain-Python sort into per-kind column lists (None when the frame is large or
  holds a value the pandas path treats specially: a missing timestamp or id, a timestamp unit
  other than microseconds, a missing window title); :func:`record_rows` does the same for
  normalized event records (``events.normalize_records``, which never become a frame);
  :func:`lists_to_arrays` turns them into the arrays ``EventArrays.from_frame`` returns
  (tested equal), and :func:`arrays_to_lists` goes the other way.

The online builder's buffer (``features._buffer.EventBuffer``) takes these lists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

SMALL_FRAME = 256  # at most this many events take the plain-Python path
NAN = float("nan")

KINDS = ("window", "afk", "input", "web")
KIND_COLUMNS = {  # the frame columns each kind needs beyond times, ids and sources
    "window": ("app_id", "title_hash", "app_category"),
    "afk": ("status",),
    "input": ("presses", "clicks", "delta_x", "delta_y", "scroll_x", "scroll_y", "backspaces",
              "shortcuts"),
    "web": ("domain_category",),
}  # fmt: skip
LIST_COLUMNS = {  # the per-kind lists (array names of EventArrays, plus input activity flags)
    "window": ("start", "end", "id", "src", "app", "title", "cat"),
    "afk": ("start", "end", "id", "src", "notafk"),
    "input": ("start", "end", "id", "src", "vals", "kb", "mouse"),
    "web": ("start", "end", "id", "src", "dom"),
}
Lists = dict[str, dict[str, list[Any]]]
Titles = dict[Any, tuple[Any, ...]]


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


def _activity(vals: list[list[float]]) -> tuple[list[bool], list[bool]]:
    """Keyboard / mouse activity of input events, as ``_minutes._input_cols`` tests it.

    ``np.nan_to_num(v) > 0``: NaN compares False, as its replacement 0.0 would.
    """
    kb = [v[0] > 0 for v in vals]
    mouse = [v[1] > 0 or v[2] > 0 or v[3] > 0 for v in vals]
    return kb, mouse


def small_rows(events: pd.DataFrame, title_columns: tuple[str, ...]) -> tuple[Lists, Titles] | None:
    """Per-kind column lists and the title table of a small frame, or None (see the module)."""
    if len(events) > SMALL_FRAME:
        return None
    start, end = _micros(events["start_ts"]), _micros(events["end_ts"])
    if start is None or end is None:
        return None

    def column(name: str) -> list[Any]:
        values: list[Any] = events[name].to_numpy(dtype=object).tolist()
        return values

    return _rows(start, end, column, title_columns)


def record_rows(
    records: Sequence[Mapping[str, Any]], title_columns: tuple[str, ...]
) -> tuple[Lists, Titles] | None:
    """:func:`small_rows` of normalized event records (``events.normalize_records``).

    The records are the rows of the frame ``events.frame_from_rows`` would build from them,
    times as integer microseconds; the result equals ``small_rows`` of that frame (tested).
    """
    if len(records) > SMALL_FRAME:
        return None
    start = [r["start_ts"] for r in records]
    end = [r["end_ts"] for r in records]
    if any(type(v) is not int for v in start) or any(type(v) is not int for v in end):
        return None

    def column(name: str) -> list[Any]:
        return [r[name] for r in records]

    return _rows(start, end, column, title_columns)


def _rows(
    start: list[int],
    end: list[int],
    read: Callable[[str], list[Any]],
    title_columns: tuple[str, ...],
) -> tuple[Lists, Titles] | None:
    """The lists of :func:`small_rows` from event times and a column reader."""
    ids = read("event_id")
    if any(type(i) is not str for i in ids):
        return None
    kind_of = read("kind")
    # canonical order: (start, event_id), ties kept in input order (a stable sort)
    order = sorted(range(len(ids)), key=lambda i: (start[i], ids[i]))
    sources = read("source_id")
    cache: dict[str, list[Any]] = {}

    def column(name: str) -> list[Any]:
        if name not in cache:
            cache[name] = read(name)
        return cache[name]

    kinds: Lists = {}
    titles: Titles = {}
    for kind in KINDS:
        sel = [i for i in order if kind_of[i] == kind]
        cols: dict[str, list[Any]] = {
            "start": [start[i] for i in sel],
            "end": [end[i] for i in sel],
            "id": [ids[i] for i in sel],
            "src": [sources[i] for i in sel],
        }
        if kind == "window":
            for key, name in (("app", "app_id"), ("title", "title_hash"), ("cat", "app_category")):
                cols[key] = [column(name)[i] for i in sel]
            if any(type(t) is not str for t in cols["title"]):
                return None  # the pandas path's duplicate test treats missing titles specially
            table = [column(c) for c in title_columns]
            for i in sel:  # the first event of each title hash, in canonical order
                h = column("title_hash")[i]
                if h not in titles:
                    titles[h] = tuple(c[i] for c in table)
        elif kind == "afk":
            status = column("status")
            cols["notafk"] = [status[i] == "not-afk" for i in sel]
        elif kind == "web":
            cols["dom"] = [column("domain_category")[i] for i in sel]
        else:
            cols["vals"] = _input_values(column, sel)
            cols["kb"], cols["mouse"] = _activity(cols["vals"])
        kinds[kind] = cols
    return kinds, titles


def _input_values(column: Callable[[str], list[Any]], sel: list[int]) -> list[list[float]]:
    """The input values of the selected events, as ``_minutes._kind_arrays`` computes them.

    Per event: presses, clicks, mouse distance (numpy's ``hypot``, which is what the batch
    code calls), scroll (x + y with a missing one counted as 0; NaN when both are missing),
    backspaces, shortcuts. The scroll sum is the same IEEE addition on Python floats.
    """
    raw = {c: [float(column(c)[i]) for i in sel] for c in KIND_COLUMNS["input"]}
    dist: list[float] = np.hypot(raw["delta_x"], raw["delta_y"]).tolist()
    out = []
    for j in range(len(sel)):
        sx, sy = raw["scroll_x"][j], raw["scroll_y"][j]
        if sx != sx and sy != sy:
            scroll = NAN
        else:
            scroll = (0.0 if sx != sx else sx) + (0.0 if sy != sy else sy)
        out.append(
            [
                raw["presses"][j],
                raw["clicks"][j],
                dist[j],
                scroll,
                raw["backspaces"][j],
                raw["shortcuts"][j],
            ]
        )
    return out


def lists_to_arrays(kinds: Lists) -> dict[str, dict[str, Any]]:
    """The arrays of ``EventArrays.kinds`` (dtypes as ``from_frame`` makes them)."""
    out: dict[str, dict[str, Any]] = {}
    for kind in KINDS:
        cols = kinds[kind]
        arrays: dict[str, Any] = {
            "start": np.array(cols["start"], dtype=np.int64),
            "end": np.array(cols["end"], dtype=np.int64),
        }
        for key in LIST_COLUMNS[kind][2:]:
            if key in ("kb", "mouse"):
                continue
            if key == "notafk":
                arrays[key] = np.array(cols[key], dtype=bool)
            elif key == "vals":
                arrays[key] = np.array(cols[key], dtype=np.float64).reshape(len(cols[key]), 6)
            else:
                arrays[key] = _objects(cols[key])
        out[kind] = arrays
    return out


def arrays_to_lists(kinds: dict[str, dict[str, Any]]) -> Lists:
    """Per-kind column lists of ``EventArrays.kinds`` (the inverse of :func:`lists_to_arrays`)."""
    out: Lists = {}
    for kind in KINDS:
        got = kinds.get(kind)
        if got is None:
            out[kind] = {k: [] for k in LIST_COLUMNS[kind]}
            continue
        cols = {k: v.tolist() for k, v in got.items()}
        if kind == "input":
            cols["kb"], cols["mouse"] = _activity(cols["vals"])
        out[kind] = cols
    return out
