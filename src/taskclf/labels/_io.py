"""Label files: CSV (import and export) and legacy ``labels.parquet`` (import).

CSV columns are exactly ``start_ts,end_ts,label,provenance,user_id,confidence,extend_forward``
(any order, no others). Cells: aware ISO-8601 timestamps (``Z`` or ``+hh:mm``; naive ones are
refused, never guessed); a core label; provenance (empty means ``import``); user id (empty
means the ``default_user_id`` given, else every user); confidence in [0, 1] or empty;
extend_forward ``true``/``false`` (also ``1``/``0``, ``yes``/``no``; empty means false).

The export is deterministic: spans sorted by start, user (agnostic first); timestamps as UTC
``isoformat()``; confidence as the shortest round-tripping decimal; ``\\n`` line ends. Reading
an export back gives exactly the same spans, so import-of-export is a no-op.

A file is parsed and validated completely before anything is stored: a bad row aborts the
import with an error naming the file, the row and the column, and the store is untouched.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from taskclf.core._atomic import atomic_write_text
from taskclf.core.errors import InputError, LabelError, TaskclfError
from taskclf.core.time import ensure_utc, parse_timestamp
from taskclf.core.types import LabelSpan, validate_user_id
from taskclf.labels.store import SPAN_FRAME_COLUMNS, ImportResult, LabelStore

_REQUIRED_PARQUET = ("start_ts", "end_ts", "label", "provenance")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}
_MAX_REPORTED = 5


def _bool_cell(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise InputError(f"expected true or false, got {text[:20]!r}")


def _confidence_cell(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"expected a number in [0, 1] or empty, got {text[:20]!r}") from None
    if not math.isfinite(value) or not 0.0 <= value <= 1.0:
        raise InputError(f"expected a number in [0, 1], got {text[:20]!r}")
    return value


def _build_span(fields: Mapping[str, Any]) -> LabelSpan:
    try:
        return LabelSpan(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        col = ".".join(str(p) for p in err["loc"]) or "span"
        raise InputError(f"column {col!r}: {err['msg']}") from None


class _RowErrors:
    """Collects the first few bad rows so one message lists them all."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.messages: list[str] = []
        self.count = 0

    def add(self, row: int, message: str) -> None:
        self.count += 1
        if len(self.messages) < _MAX_REPORTED:
            self.messages.append(f"row {row}: {message}")

    def raise_if_any(self) -> None:
        if self.count:
            more = f" (and {self.count - _MAX_REPORTED} more)" if self.count > 5 else ""
            raise LabelError(
                f"label file '{self.source}': {self.count} invalid row(s){more}; "
                + "; ".join(self.messages)
                + "; fix them and import again (nothing was imported)"
            )


def _parse_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    source: str,
    convert: Callable[[Mapping[str, Any], str | None], dict[str, Any]],
    default_user_id: str | None,
) -> list[LabelSpan]:
    errors = _RowErrors(source)
    spans: list[LabelSpan] = []
    for row_no, raw in rows:
        try:
            spans.append(_build_span(convert(raw, default_user_id)))
        except TaskclfError as exc:
            errors.add(row_no, str(exc))
    errors.raise_if_any()
    return spans


def _csv_fields(raw: Mapping[str, Any], default_user_id: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for col in ("start_ts", "end_ts"):
        fields[col] = parse_timestamp(str(raw[col]), field=f"column {col!r}")
    fields["label"] = str(raw["label"]).strip()
    fields["provenance"] = str(raw["provenance"]).strip() or "import"
    user = str(raw["user_id"])
    fields["user_id"] = (
        validate_user_id(user, where="in column 'user_id'") if user else default_user_id
    )
    fields["confidence"] = _in_column("confidence", _confidence_cell, str(raw["confidence"]))
    fields["extend_forward"] = _in_column("extend_forward", _bool_cell, str(raw["extend_forward"]))
    return fields


def _in_column(col: str, parse: Callable[[str], Any], text: str) -> Any:
    try:
        return parse(text)
    except InputError as exc:
        raise InputError(f"column {col!r}: {exc}") from None


def read_labels_csv(path: Path, *, default_user_id: str | None = None) -> list[LabelSpan]:
    """Parse and validate a label CSV (all rows) into spans, in file order."""
    text = _read_text(path)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = list(reader.fieldnames or [])
    _check_header(path, header, SPAN_FRAME_COLUMNS, SPAN_FRAME_COLUMNS)

    def rows() -> Iterable[tuple[int, Mapping[str, Any]]]:
        for i, raw in enumerate(reader, start=1):
            if None in raw or any(v is None for v in raw.values()):
                raise LabelError(
                    f"label file '{path}' row {i} (line {reader.line_num}): expected "
                    f"{len(header)} cells; quote cells that contain commas"
                )
            yield i, raw

    return _parse_rows(rows(), str(path), _csv_fields, default_user_id)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"label file '{path}' does not exist") from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"label file '{path}' is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV"
        ) from None
    except OSError as exc:
        raise InputError(f"label file '{path}' cannot be read: {exc.strerror}") from None


def _check_header(
    path: Path, header: Sequence[str], required: Sequence[str], allowed: Sequence[str]
) -> None:
    missing = [c for c in required if c not in header]
    unknown = [c for c in header if c not in allowed]
    dupes = sorted({c for c in header if header.count(c) > 1})
    if missing or unknown or dupes:
        parts = []
        if missing:
            parts.append(f"missing column(s) {missing}")
        if unknown:
            parts.append(f"unexpected column(s) {[c[:40] for c in unknown]}")
        if dupes:
            parts.append(f"duplicated column(s) {dupes}")
        raise LabelError(
            f"label file '{path}': {', '.join(parts)}; expected the columns "
            f"{','.join(SPAN_FRAME_COLUMNS)}"
        )


def _cell_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _parquet_ts(value: Any, col: str) -> datetime:
    if isinstance(value, str):
        return parse_timestamp(value, field=f"column {col!r}")
    if isinstance(value, pd.Timestamp | datetime) and not _cell_missing(value):
        ts = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
        return ensure_utc(ts, field=f"column {col!r}")
    raise InputError(f"column {col!r}: expected an aware timestamp, got {str(value)[:40]!r}")


def _parquet_fields(raw: Mapping[str, Any], default_user_id: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {c: _parquet_ts(raw[c], c) for c in ("start_ts", "end_ts")}
    for col in ("label", "provenance"):
        if _cell_missing(raw[col]):
            raise InputError(f"column {col!r} is empty")
        fields[col] = str(raw[col])
    user = raw.get("user_id")
    fields["user_id"] = default_user_id if _cell_missing(user) or user == "" else user
    conf = raw.get("confidence")
    fields["confidence"] = None if _cell_missing(conf) else conf
    ef = raw.get("extend_forward")
    fields["extend_forward"] = False if _cell_missing(ef) else ef
    if not isinstance(fields["extend_forward"], bool):
        fields["extend_forward"] = _bool_cell(str(fields["extend_forward"]))
    return fields


def read_labels_parquet(path: Path, *, default_user_id: str | None = None) -> list[LabelSpan]:
    """Parse a ``labels.parquet`` of the earlier tool (the same seven columns).

    ``start_ts``, ``end_ts``, ``label`` and ``provenance`` are required; ``user_id``,
    ``confidence`` and ``extend_forward`` may be absent (None, None, false). Naive timestamp
    columns are refused: the earlier tool wrote local times without a zone, and guessing
    the zone would shift every label.
    """
    if not path.exists():
        raise InputError(f"label file '{path}' does not exist")
    try:
        df = pd.read_parquet(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"label file '{path}' is not a readable Parquet file: {exc}") from None
    header = [str(c) for c in df.columns]
    _check_header(path, header, _REQUIRED_PARQUET, SPAN_FRAME_COLUMNS)
    for col in ("start_ts", "end_ts"):
        dtype = df[col].dtype
        if pd.api.types.is_datetime64_dtype(dtype) and not isinstance(dtype, pd.DatetimeTZDtype):
            raise LabelError(
                f"label file '{path}': column {col!r} holds timestamps without a time zone "
                f"({dtype}); convert them to UTC (e.g. tz_localize) and import again"
            )
    records: list[dict[str, Any]] = [
        {str(k): v for k, v in rec.items()} for rec in df.to_dict(orient="records")
    ]
    rows = ((i, rec) for i, rec in enumerate(records, start=1))
    return _parse_rows(rows, str(path), _parquet_fields, default_user_id)


def read_labels_file(path: Path, *, default_user_id: str | None = None) -> list[LabelSpan]:
    """Read a ``.csv`` or ``.parquet`` label file (chosen by suffix)."""
    if default_user_id is not None:
        validate_user_id(default_user_id, where="given with --user-id")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return read_labels_parquet(path, default_user_id=default_user_id)
    if suffix in (".csv", ".txt"):
        return read_labels_csv(path, default_user_id=default_user_id)
    raise InputError(f"label file '{path}': expected a .csv or .parquet file, got {suffix!r}")


def format_labels_csv(spans: Sequence[LabelSpan]) -> str:
    """The export text of ``spans`` (in the given order)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(SPAN_FRAME_COLUMNS)
    for s in spans:
        writer.writerow(
            [
                s.start_ts.isoformat(),
                s.end_ts.isoformat(),
                s.label,
                s.provenance,
                "" if s.user_id is None else s.user_id,
                "" if s.confidence is None else repr(float(s.confidence)),
                "true" if s.extend_forward else "false",
            ]
        )
    return buf.getvalue()


def import_labels(
    store: LabelStore,
    path: Path,
    *,
    overwrite: bool = False,
    strict: bool = False,
    user_id: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Validate a label file completely, then merge it into ``store`` in one transaction.

    See :meth:`LabelStore.import_spans` for duplicates, conflicts and ``strict``;
    ``user_id`` is given to rows whose ``user_id`` cell is empty.
    """
    spans = read_labels_file(path, default_user_id=user_id)
    return store.import_spans(spans, overwrite=overwrite, strict=strict, progress=progress)


def export_labels(
    store: LabelStore,
    path: Path,
    *,
    user_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> int:
    """Write the stored spans (stored ends) as CSV atomically; return the number written.

    With ``user_id`` the spans that apply to that user are written (its own and the
    user-agnostic ones); ``start``/``end`` keep spans overlapping ``[start, end)``.
    """
    spans = store.list_spans(user_id=user_id, start=start, end=end, resolve_extend=False)
    atomic_write_text(path, format_labels_csv(spans))
    return len(spans)
