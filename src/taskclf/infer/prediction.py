"""The one prediction record (DESIGN §4.6) and how it is stored.

Batch runs write one Parquet partition per user and local date
(``Layout.predictions_partition``); the online loop appends the same records as JSON lines
(``Layout.online_predictions_file``) through an :class:`OnlineRecordWriter`. Both go through
:func:`record_to_json` / :func:`frame_from_records`, so a record from either path compares
byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import weakref
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from taskclf.core._atomic import atomic_write_with
from taskclf.core.defaults import DEFAULT_ONLINE_FSYNC_MINUTES
from taskclf.core.errors import ArtifactError
from taskclf.core.paths import Layout
from taskclf.infer._record_checks import (
    PREDICTION_COLUMNS,
    RecordSource,
    check_dtypes,
    check_records,
)

_PROB_DECIMALS = 10
_json_str = json.encoder.encode_basestring  # what json.dumps(..., ensure_ascii=False) uses


def probs_to_json(probs: Sequence[float] | np.ndarray) -> str:
    """Canonical JSON list of probabilities (rounded so batch and online agree exactly).

    The text of ``json.dumps([round(float(p), 10) for p in probs], separators=(",", ":"))``
    (tested equal). JSON writes a finite float as its ``repr``; for values in ``[1e-4, 1]``
    that is the ``"%.10f"`` text without its trailing zeros: ``"%.10f"`` rounds correctly to
    10 decimals, as ``round`` does, and the double nearest that decimal prints as the
    decimal, since its spacing (at most 2.2e-16 here) is far below the 1e-10 between
    decimals of 10 places. So a row of such values is formatted in one call. Other values
    (``repr`` uses an exponent below 1e-4) take ``repr(round(...))`` value by value, and
    ``json`` for NaN and infinity.
    """
    values = (
        np.asarray(probs, dtype=np.float64).tolist()
        if isinstance(probs, np.ndarray)
        else [float(p) for p in probs]
    )
    if not values:
        return "[]"
    fmt = _FORMATS.get(len(values))
    if fmt is None:
        fmt = _FORMATS[len(values)] = ",".join(["%.10f"] * len(values))
    text = fmt % tuple(values)
    if "0.0000" in text or "-" in text or "n" in text or max(values) > 1.0:
        return _probs_json_by_value(values)
    text = _TRAILING_ZEROS.sub("", text).replace(".,", ".0,")
    return "[" + (text + "0" if text[-1] == "." else text) + "]"


_FORMATS: dict[int, str] = {}
_TRAILING_ZEROS = re.compile(r"0+(?=,|$)")


def _probs_json_by_value(values: list[float]) -> str:
    rounded = [round(v, _PROB_DECIMALS) for v in values]
    text = "[" + ",".join(map(repr, rounded)) + "]"
    if "n" in text:  # 'nan' or 'inf': no finite float's repr has an 'n'
        return json.dumps(rounded, separators=(",", ":"))
    return text


def empty_predictions() -> pd.DataFrame:
    """An empty predictions frame with the record columns and dtypes."""
    return pd.DataFrame(
        {
            "user_id": pd.Series([], dtype=object),
            "bucket_start_ts": pd.Series([], dtype="datetime64[us, UTC]"),
            "core_label": pd.Series([], dtype=object),
            "confidence": pd.Series([], dtype=np.float64),
            "is_rejected": pd.Series([], dtype=bool),
            "predicted_label": pd.Series([], dtype=object),
            "mapped_label": pd.Series([], dtype=object),
            "core_probs": pd.Series([], dtype=object),
            "model_id": pd.Series([], dtype=object),
        }
    )


def normalize_predictions(df: pd.DataFrame) -> pd.DataFrame:
    """Columns in record order with canonical dtypes, sorted by user and time."""
    missing = [c for c in PREDICTION_COLUMNS if c not in df.columns]
    if missing:
        raise ArtifactError(f"predictions lack columns {missing}")
    out = df.loc[:, list(PREDICTION_COLUMNS)].copy()
    out["bucket_start_ts"] = pd.to_datetime(out["bucket_start_ts"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    out["confidence"] = out["confidence"].astype(np.float64).round(_PROB_DECIMALS)
    out["is_rejected"] = out["is_rejected"].astype(bool)
    for col in ("user_id", "core_label", "predicted_label", "mapped_label", "model_id"):
        out[col] = out[col].astype(object)
    out["core_probs"] = out["core_probs"].astype(object)
    out = out.sort_values(["user_id", "bucket_start_ts"], kind="mergesort")
    return out.reset_index(drop=True)


def record_to_json(record: Mapping[str, Any]) -> str:
    """One record as a canonical JSON line (used by the online log and parity tests).

    The text of ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)`` for ``obj`` =
    the record's fields in :data:`PREDICTION_COLUMNS` order (strings, the confidence rounded
    to 10 decimals as a float, ``is_rejected`` as a bool), assembled directly with the string
    escaper ``json.dumps`` itself uses (tested equal): the online loop writes one per minute.
    """
    ts = record["bucket_start_ts"]
    if type(ts) is datetime and ts.tzinfo is not None:
        # the online fast path: no pandas per line
        ts_text = (ts if ts.tzinfo is UTC else ts.astimezone(UTC)).isoformat()
    else:
        ts_text = pd.Timestamp(ts).tz_convert(UTC).isoformat()
    confidence = round(float(record["confidence"]), _PROB_DECIMALS)
    return _RECORD % (
        _escaped(str(record["user_id"])),
        _json_str(ts_text),
        _escaped(str(record["core_label"])),
        repr(confidence) if math.isfinite(confidence) else json.dumps(confidence),
        "true" if record["is_rejected"] else "false",
        _escaped(str(record["predicted_label"])),
        _escaped(str(record["mapped_label"])),
        _json_str(str(record["core_probs"])),
        _escaped(str(record["model_id"])),
    )


_RECORD = (
    '{"user_id":%s,"bucket_start_ts":%s,"core_label":%s,"confidence":%s,"is_rejected":%s,'
    '"predicted_label":%s,"mapped_label":%s,"core_probs":%s,"model_id":%s}'
)
_ESCAPED: dict[str, str] = {}


def _escaped(text: str) -> str:
    """``_json_str(text)``, remembered (user ids, labels and model ids repeat every line)."""
    got = _ESCAPED.get(text)
    if got is None:
        if len(_ESCAPED) > 4096:
            _ESCAPED.clear()
        got = _ESCAPED[text] = _json_str(text)
    return got


def frame_from_records(lines: Iterable[str]) -> pd.DataFrame:
    """Parse JSON-line records back into a normalized predictions frame."""
    rows = [json.loads(line) for line in lines if line.strip()]
    if not rows:
        return empty_predictions()
    return normalize_predictions(pd.DataFrame(rows))


def write_prediction_partitions(
    layout: Layout, predictions: pd.DataFrame, local_dates: pd.Series
) -> list[Path]:
    """Write one Parquet file per (user, local date); each atomically. Returns the paths."""
    keyed = predictions.reset_index(drop=True).assign(_day=local_dates.to_numpy())
    keyed["bucket_start_ts"] = pd.to_datetime(keyed["bucket_start_ts"], utc=True)
    keyed = keyed.sort_values(["user_id", "bucket_start_ts"], kind="mergesort")
    df = normalize_predictions(keyed).assign(_day=keyed["_day"].to_numpy())
    written: list[Path] = []
    for (user_id, day), part in df.groupby(["user_id", "_day"], sort=True):
        path = layout.predictions_partition(_as_date(day), str(user_id))
        frame = part.drop(columns="_day").reset_index(drop=True)
        _write_parquet(path, frame)
        written.append(path)
    return written


def _write_parquet(path: Path, frame: pd.DataFrame) -> None:
    def writer(tmp: Path) -> None:
        frame.to_parquet(tmp, index=False)

    atomic_write_with(path, writer)


def _as_date(value: Any) -> date:
    if isinstance(value, date):
        return value
    return pd.Timestamp(value).date()


def read_prediction_partitions(
    layout: Layout,
    date_from: date,
    date_to: date,
    *,
    user_ids: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read batch predictions of local dates ``date_from..date_to`` (inclusive).

    Every partition is checked against the record contract (``_record_checks``) before
    anything uses it.

    Raises:
        ArtifactError: A partition that cannot be read or breaks the contract; the message
            names the file, the column and the first bad row, and how to rewrite it.
    """
    frames: list[pd.DataFrame] = []
    sources: list[RecordSource] = []
    base = layout.predictions_dir
    if base.is_dir():
        for day_dir in sorted(base.glob("date=*")):
            day = _partition_day(day_dir)
            if not date_from <= day <= date_to:
                continue
            for path in sorted(day_dir.glob("*.parquet")):
                frame, source = _read_partition(path, day)
                frames.append(frame)
                sources.append(source)
    if not frames:
        return empty_predictions()
    df = normalize_predictions(
        check_records(pd.concat(frames, ignore_index=True), sources, [len(f) for f in frames])
    )
    if user_ids is not None:
        df = df[df["user_id"].isin(list(user_ids))].reset_index(drop=True)
    return df


def _partition_day(day_dir: Path) -> date:
    try:
        return date.fromisoformat(day_dir.name.removeprefix("date="))
    except ValueError:
        raise ArtifactError(
            f"'{day_dir}' is not a predictions partition folder (expected 'date=YYYY-MM-DD'); "
            "move it out of the predictions folder"
        ) from None


def _read_partition(path: Path, day: date) -> tuple[pd.DataFrame, RecordSource]:
    fix = f"re-run 'taskclf infer batch --from {day} --to {day}' to rewrite it"
    source = RecordSource("predictions", path, fix)
    try:
        frame = pd.read_parquet(path)
    except (OSError, pa.ArrowException) as exc:
        raise ArtifactError(f"predictions '{path}' cannot be read ({exc}); {fix}") from None
    check_dtypes(frame, source)
    return frame, source


def _drop_torn_tail(path: Path) -> None:
    """Truncate ``path`` after its last newline (no-op when it ends with one or is absent)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(size - 1)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        fh.truncate(data.rfind(b"\n") + 1)
        fh.flush()
        os.fsync(fh.fileno())


class OnlineRecordWriter:
    """Appends online records to one JSONL file through a descriptor it keeps open.

    Opening drops a torn last line (left by a crash mid-write) once. Each :meth:`write`
    appends its records as complete lines with one ``os.write`` on an ``O_APPEND``
    descriptor, so a crash can leave a partial line only at the end of the file, which
    :func:`read_online_records` ignores and the next open drops. A write that fails part-way
    (e.g. a full disk, Ctrl+C) is cut back to the last complete line before the error
    propagates. The writer assumes it is the file's only writer (the online loop of one user
    is the only writer of that user's day file).

    Durability: the file is fsynced once ``fsync_every`` minutes of records (one record per
    minute) were written since the last fsync, and always on :meth:`flush` and
    :meth:`close` (the online loop closes its writers when it stops), instead of once per
    minute. A per-minute fsync would protect nothing a
    user gave: predictions are derived data. A killed process loses nothing (its writes are
    in the operating system's cache); a power loss can lose the records written since the
    last fsync (fewer than ``fsync_every`` minutes' worth between writes). A restarted loop
    finds the last minute on disk (``OnlineLoop`` reads the day's file before writing to it)
    and computes every later minute again from ActivityWatch's events (those inside its
    warm-up window; ``taskclf infer batch`` recomputes any range), giving the same records
    byte for byte. No label or other acknowledged user input lives here: the label store
    (``labels.store``) keeps its synchronous durability for every write.

    Args:
        path: The JSONL file (created with its directory if missing).
        fsync_every: Minutes of records between fsyncs (>= 1; 1 is an fsync per write).
    """

    def __init__(self, path: Path, *, fsync_every: int = DEFAULT_ONLINE_FSYNC_MINUTES) -> None:
        if fsync_every < 1:
            raise ValueError(f"fsync_every must be >= 1 minute, got {fsync_every}")
        self.path = Path(path)
        self.fsync_every = fsync_every
        self.fsyncs = 0  # how many fsyncs so far (for benchmarks and tests)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _drop_torn_tail(self.path)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.path, flags, 0o666)
        self._size = os.fstat(self._fd).st_size
        self._unsynced = 0
        # if the writer is dropped without close() (or at interpreter exit): fsync and close
        self._finalizer = weakref.finalize(self, _sync_and_close, self._fd)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive

    def write(self, records: Sequence[Mapping[str, Any]]) -> int:
        """Append ``records`` (one JSON line each, one ``os.write``); return how many.

        Raises:
            ValueError: The writer is closed.
        """
        if not records:
            return 0
        if self.closed:
            raise ValueError(f"the writer of '{self.path}' is closed")
        data = "".join([record_to_json(r) + "\n" for r in records]).encode("utf-8")
        try:
            done = os.write(self._fd, data)
            while done < len(data):  # a regular file takes it whole unless the disk is full
                done += os.write(self._fd, data[done:])
        except BaseException:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)  # back to the last complete line
            raise
        self._size += len(data)
        self._unsynced += len(records)
        if self._unsynced >= self.fsync_every:
            self.flush()
        return len(records)

    def flush(self) -> None:
        """fsync now if anything was written since the last fsync."""
        if self._unsynced and not self.closed:
            os.fsync(self._fd)
            self._unsynced = 0
            self.fsyncs += 1

    def close(self) -> None:
        """fsync what is not yet synced, then close the file (idempotent)."""
        if self.closed:
            return
        try:
            self.flush()
        finally:
            self._finalizer.detach()
            os.close(self._fd)

    def __enter__(self) -> OnlineRecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _sync_and_close(fd: int) -> None:
    """Finalizer of a writer that was not closed: best-effort fsync, then close."""
    with contextlib.suppress(OSError):
        os.fsync(fd)
    with contextlib.suppress(OSError):
        os.close(fd)


def read_online_records(path: Path) -> pd.DataFrame:
    """Read an online JSONL file; a torn last line (crash mid-append) is ignored.

    Lines are split on ``\\n`` only (a record's text may hold other line separators) and
    checked against the record contract like batch partitions (``_record_checks``).

    Raises:
        ArtifactError: A line before the last that is not a JSON object, or a record that
            breaks the contract; the message names the file, column and line.
    """
    if not path.exists():
        return empty_predictions()
    pieces = path.read_bytes().split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    fix = (
        f"move '{path.name}' aside (the online loop starts a new file; 'taskclf infer batch' "
        "recomputes the day)"
    )
    rows: list[dict[str, Any]] = []
    numbers: list[int] = []
    for i, piece in enumerate(pieces):
        try:
            row = json.loads(piece.decode("utf-8"))
        except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, deep nesting
            if i == len(pieces) - 1:
                break
            raise ArtifactError(f"'{path}': line {i + 1} is not valid JSON; {fix}") from None
        if not isinstance(row, dict):
            raise ArtifactError(f"'{path}': line {i + 1} is not a JSON object; {fix}")
        rows.append(row)
        numbers.append(i + 1)
    if not rows:
        return empty_predictions()
    frame = pd.DataFrame(rows)
    source = RecordSource("online predictions", path, fix, np.asarray(numbers, dtype=np.int64))
    check_dtypes(frame, source)
    return normalize_predictions(check_records(frame, [source], [len(frame)]))


def local_dates(
    ts: pd.Series, user_ids: pd.Series, tz_for: Mapping[str, str] | None, default_tz: str
) -> pd.Series:
    """Local calendar date of each timestamp in its user's time zone."""
    out = pd.Series(index=ts.index, dtype=object)
    zones = tz_for or {}
    for uid in pd.unique(user_ids):
        mask = (user_ids == uid).to_numpy()
        tz = zones.get(str(uid), default_tz)
        out[mask] = pd.to_datetime(ts[mask], utc=True).dt.tz_convert(tz).dt.date.to_numpy()
    return out


def utc_datetime(ts: Any) -> datetime:
    """A pandas/np timestamp as an aware UTC datetime."""
    return pd.Timestamp(ts).tz_convert(UTC).to_pydatetime()
