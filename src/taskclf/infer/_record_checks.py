"""The record contract of stored predictions (DESIGN §4.6), checked when records are read.

Batch partitions (Parquet) and online day files (JSONL) go through the same checks before
reports or anything else use them: each column present and of a dtype its values can be
checked in (:func:`check_dtypes`), then one vectorized pass per rule over all rows
(:func:`check_records`); an error names the file, the column, the first bad row or line and
how many rows fail, and shows a value only when it is a label (never free text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from taskclf.core.errors import ArtifactError
from taskclf.core.types import LABEL_SET_V1, REJECT_LABEL

__all__ = ["PREDICTION_COLUMNS", "RecordSource", "check_dtypes", "check_records"]

PREDICTION_COLUMNS: tuple[str, ...] = (
    "user_id",
    "bucket_start_ts",
    "core_label",
    "confidence",
    "is_rejected",
    "predicted_label",
    "mapped_label",
    "core_probs",
    "model_id",
)

# Every check is a vectorized pass over a column; the per-row type tests in
# ``check_dtypes`` run only once a column's dtype is already known to be wrong.

_PREDICTED_LABELS: tuple[str, ...] = (*LABEL_SET_V1, REJECT_LABEL)
_NUM = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?"  # finite, non-negative
_WS = "[ \t\r\n]*"
# a parseable, non-empty JSON list of finite non-negative numbers (the count is not checked)
_PROBS_PATTERN = rf"\[{_WS}{_NUM}(?:{_WS},{_WS}{_NUM})*{_WS}\]"
_SHOWN_CHARS = 40


@dataclass(frozen=True)
class RecordSource:
    """A stored file of records, for error messages.

    ``lines`` (JSONL) holds each row's line number; otherwise rows are numbered from 0.
    """

    kind: str
    path: Path
    fix: str
    lines: NDArray[np.int64] | None = None

    def error(self, column: str, problem: str, bad: NDArray[np.bool_], shown: str) -> ArtifactError:
        """The error for ``bad`` (a mask over this file's rows; may be all False)."""
        hits = np.flatnonzero(bad)
        detail = ""
        if hits.size:
            i = int(hits[0])
            where = f"line {int(self.lines[i])}" if self.lines is not None else f"row {i}"
            detail = f"; {hits.size} of {bad.size} rows fail, the first at {where}{shown}"
        return ArtifactError(
            f"{self.kind} '{self.path}': column {column!r} {problem}{detail}; {self.fix}"
        )


def _is_text(s: pd.Series) -> bool:
    if isinstance(s.dtype, pd.StringDtype):
        return True
    return s.dtype == object and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")


_DTYPES: dict[str, tuple[str, Callable[[pd.Series], bool], Callable[[Any], bool]]] = {
    # column: (what it must hold, dtype test, per-value test used for the message only)
    "bucket_start_ts": (
        "timestamps",
        lambda s: s.dtype.kind == "M" or _is_text(s),
        lambda v: isinstance(v, str | datetime),
    ),
    "confidence": (
        "numbers",
        lambda s: s.dtype.kind in "fiu",
        lambda v: isinstance(v, int | float | np.number) and not isinstance(v, bool | np.bool_),
    ),
    "is_rejected": (
        "true/false values",
        lambda s: s.dtype.kind == "b",
        lambda v: isinstance(v, bool | np.bool_),
    ),
}
_TEXT_DTYPE = ("strings", _is_text, lambda v: isinstance(v, str))


def check_dtypes(frame: pd.DataFrame, source: RecordSource) -> None:
    """Every record column present, each of a dtype the values can be checked in."""
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ArtifactError(
            f"{source.kind} '{source.path}': columns {missing} are missing (expected "
            f"{', '.join(PREDICTION_COLUMNS)}); {source.fix}"
        )
    for column in PREDICTION_COLUMNS:
        s = frame[column]
        expected, dtype_ok, value_ok = _DTYPES.get(column, _TEXT_DTYPE)
        if not dtype_ok(s):
            bad = np.fromiter((not value_ok(v) for v in s), dtype=bool, count=len(s))
            raise source.error(column, f"must hold {expected}, stored as {s.dtype}", bad, "")


def _shown(value: Any) -> str:
    """A label for a message: at most 40 characters (never a free-text column's value)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str) and len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS]) + "..."
    return repr(value)


def _blank(s: pd.Series) -> NDArray[np.bool_]:
    text = s.str.strip().eq("").to_numpy(dtype=bool, na_value=False)
    return s.isna().to_numpy(dtype=bool) | text


def _value_checks(
    df: pd.DataFrame, ts: pd.Series
) -> list[tuple[str, str, NDArray[np.bool_], bool]]:
    """(column, rule, rows that break it, whether the value may be shown) per rule."""
    confidence = df["confidence"].to_numpy(dtype=np.float64, na_value=np.nan)
    probs_ok = df["core_probs"].str.fullmatch(_PROBS_PATTERN, na=False)
    return [
        ("user_id", "must be a non-empty string", _blank(df["user_id"]), False),
        ("bucket_start_ts", "must be a timestamp", ts.isna().to_numpy(dtype=bool), False),
        (
            "core_label",
            f"must be a core label ({', '.join(LABEL_SET_V1)})",
            ~df["core_label"].isin(LABEL_SET_V1).to_numpy(dtype=bool),
            True,
        ),
        (
            "confidence",
            "must be a finite number in [0, 1]",
            ~((confidence >= 0.0) & (confidence <= 1.0)),  # NaN fails both
            True,
        ),
        (
            "predicted_label",
            f"must be a core label or {REJECT_LABEL!r}",
            ~df["predicted_label"].isin(_PREDICTED_LABELS).to_numpy(dtype=bool),
            True,
        ),
        ("mapped_label", "must be a non-empty string", _blank(df["mapped_label"]), False),
        (
            "core_probs",
            "must be a JSON list of finite non-negative numbers",
            ~probs_ok.to_numpy(dtype=bool),
            False,
        ),
        ("model_id", "must be a string", df["model_id"].isna().to_numpy(dtype=bool), False),
    ]


def check_records(
    df: pd.DataFrame, sources: Sequence[RecordSource], sizes: Sequence[int]
) -> pd.DataFrame:
    """Check the concatenated rows of ``sources`` (``sizes`` rows each, dtypes checked by
    :func:`check_dtypes`) against the record contract; return them with parsed times.

    Rules: ``user_id`` and ``mapped_label`` non-empty strings (``mapped_label`` is a
    taxonomy bucket, free text); ``bucket_start_ts`` a timestamp (ISO 8601 text in JSON);
    ``core_label`` a core label; ``predicted_label`` a core label or the reject label;
    ``confidence`` finite in [0, 1]; ``is_rejected`` boolean (its dtype); ``core_probs`` a
    non-empty JSON list of finite non-negative numbers; ``model_id`` a string.

    Raises:
        ArtifactError: For the first rule broken, naming the first file that breaks it.
    """
    ts = df["bucket_start_ts"]
    if ts.dtype.kind == "M":
        ts = pd.to_datetime(ts, utc=True)
    else:
        ts = pd.to_datetime(ts, utc=True, errors="coerce", format="ISO8601")
    starts = np.concatenate([[0], np.cumsum(sizes)])
    for column, rule, bad, show in _value_checks(df, ts):
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            k = int(np.searchsorted(starts, i, side="right")) - 1
            shown = f": {_shown(df[column].iat[i])}" if show else ""
            raise sources[k].error(column, rule, bad[starts[k] : starts[k + 1]], shown)
    return df.assign(bucket_start_ts=ts)
