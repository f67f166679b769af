"""Deterministic, atomic writers for report artifacts (JSON, CSV, Parquet, PNG, segments).

Every writer replaces its target atomically (``core._atomic``) and produces the same bytes for
the same input: JSON with sorted keys, CSV with ``\\n`` line ends and a fixed column order,
Parquet through pyarrow without the pandas index, PNG bytes rendered without dates.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from taskclf.core._atomic import atomic_write_bytes, atomic_write_json, atomic_write_with
from taskclf.core.errors import ArtifactError, InputError
from taskclf.infer.smooth import Segment

if TYPE_CHECKING:
    from taskclf.report.daily import DailyReport

#: File names inside ``Layout.report_dir(user_id, day)``.
REPORT_JSON: Final = "daily.json"
REPORT_CSV: Final = "daily.csv"
REPORT_PARQUET: Final = "daily.parquet"
REPORT_PNG: Final = "daily.png"

#: Columns of the tabular report (CSV and Parquet): one row per value.
TABLE_COLUMNS: Final[tuple[str, ...]] = ("user_id", "date", "kind", "name", "value")
_METRICS: Final[tuple[str, ...]] = (
    "total_minutes",
    "segment_count",
    "context_switches",
    "switches_per_hour",
    "flap_rate_raw",
    "flap_rate_smoothed",
    "reject_rate",
    "mean_confidence",
)


def write_json(path: Path, obj: Any) -> Path:
    """Write ``obj`` as pretty JSON with sorted keys, atomically."""
    atomic_write_json(path, obj)
    return path


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as UTF-8 CSV (no index, ``\\n`` line ends), atomically."""
    text = frame.to_csv(index=False, lineterminator="\n")
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def write_parquet(path: Path, frame: pd.DataFrame) -> Path:
    """Write ``frame`` as Parquet (no index), atomically."""
    table = pa.Table.from_pandas(frame, preserve_index=False)

    def writer(tmp: Path) -> None:
        pq.write_table(table, tmp)

    atomic_write_with(path, writer)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    """Write raw bytes (e.g. a rendered PNG), atomically."""
    atomic_write_bytes(path, data)
    return path


def report_table(report: DailyReport) -> pd.DataFrame:
    """The report as a long table: columns :data:`TABLE_COLUMNS`, ``value`` float.

    ``kind`` is ``metric`` (the scalar fields), ``label_minutes`` (minutes per predicted
    label), ``mixed_minutes`` (the Mixed/Unknown minutes by the model's most likely core
    label) or ``mapped_minutes`` (minutes per taxonomy bucket); names are sorted within a kind.
    """
    rows: list[tuple[str, str, float]] = [
        ("metric", name, float(getattr(report, name))) for name in _METRICS
    ]
    rows += [("label_minutes", k, float(v)) for k, v in sorted(report.minutes_by_label.items())]
    rows += [("mixed_minutes", k, float(v)) for k, v in sorted(report.mixed_by_core_label.items())]
    rows += [
        ("mapped_minutes", k, float(v)) for k, v in sorted(report.minutes_by_mapped_label.items())
    ]
    return pd.DataFrame(
        {
            "user_id": pd.Series([report.user_id] * len(rows), dtype="str"),
            "date": pd.Series([report.date.isoformat()] * len(rows), dtype="str"),
            "kind": pd.Series([r[0] for r in rows], dtype="str"),
            "name": pd.Series([r[1] for r in rows], dtype="str"),
            "value": pd.Series([r[2] for r in rows], dtype="float64"),
        },
        columns=list(TABLE_COLUMNS),
    )


def write_segments(path: Path, segments: Sequence[Segment]) -> Path:
    """Write ``segments.json`` (a JSON list of segment records), atomically."""
    atomic_write_json(path, segments_to_records(segments))
    return path


def read_segments(path: Path) -> list[Segment]:
    """Read ``segments.json``.

    Raises:
        ArtifactError: The file is not valid JSON or a record is invalid.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(
            f"'{path}': not valid JSON ({exc}); re-run 'taskclf infer batch' to rewrite it"
        ) from None
    return segments_from_records(data, where=str(path))


def segments_to_records(segments: Sequence[Segment]) -> list[dict[str, Any]]:
    """JSON-ready ``[{user_id, start_ts, end_ts, label, bucket_count}]`` (ISO UTC times)."""
    return [
        {
            "user_id": s.user_id,
            "start_ts": s.start_ts.astimezone(UTC).isoformat(),
            "end_ts": s.end_ts.astimezone(UTC).isoformat(),
            "label": s.label,
            "bucket_count": s.bucket_count,
        }
        for s in segments
    ]


def segments_from_records(records: object, *, where: str = "segments.json") -> list[Segment]:
    """Inverse of :func:`segments_to_records`, validating every record.

    Raises:
        ArtifactError: Not a list of segment objects, naming the bad record.
    """
    if not isinstance(records, list):
        raise ArtifactError(f"'{where}': expected a JSON list of segments, got {type(records)}")
    out: list[Segment] = []
    for i, record in enumerate(records):
        try:
            out.append(Segment.model_validate(record))
        except (ValidationError, InputError) as exc:
            detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
            raise ArtifactError(
                f"'{where}': segment #{i} is invalid: {detail}; re-run 'taskclf infer batch'"
            ) from None
    return out
