"""The online log writer: complete lines, a torn tail dropped once, fsync on a cadence."""

from __future__ import annotations

import gc
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from taskclf.infer.pipeline import records_frame
from taskclf.infer.prediction import (
    OnlineRecordWriter,
    read_online_records,
    record_to_json,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def _records(n: int, first: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "user_id": "amy",
            "bucket_start_ts": T0 + timedelta(minutes=first + i),
            "core_label": "Build",
            "confidence": 0.5 + i / 1000,
            "is_rejected": i % 3 == 0,
            "predicted_label": "Build" if i % 3 else "Mixed/Unknown",
            "mapped_label": "Deep work — “quoted”",
            "core_probs": "[0.5,0.5]",
            "model_id": "m",
        }
        for i in range(n)
    ]


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The descriptors passed to ``os.fsync`` (which still runs)."""
    calls: list[int] = []
    real = os.fsync

    def spy(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def test_records_written_are_the_records_read_back(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "day.jsonl"
    records = _records(25)
    with OnlineRecordWriter(path) as writer:
        assert writer.write(records[:1]) == 1
        assert writer.write([]) == 0
        assert writer.write(records[1:20]) == 19
        # visible to readers before any fsync or close
        assert len(read_online_records(path)) == 20
        writer.write(records[20:])
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines == [record_to_json(r) for r in records]
    pd.testing.assert_frame_equal(read_online_records(path), records_frame(records))
    # appending later (new writers) continues the same file
    with OnlineRecordWriter(path) as writer:
        writer.write(_records(2, first=25))
    with OnlineRecordWriter(path) as writer:
        writer.write(_records(1, first=27))
    assert len(read_online_records(path)) == 28


def test_fsync_every_n_minutes_of_records_and_on_close(tmp_path: Path, fsyncs: list[int]) -> None:
    writer = OnlineRecordWriter(tmp_path / "day.jsonl", fsync_every=3)
    for i in range(7):  # one minute per write, as the loop writes them
        writer.write(_records(1, first=i))
    assert writer.fsyncs == len(fsyncs) == 2  # after minutes 3 and 6
    writer.flush()  # minute 7 was not yet synced
    assert writer.fsyncs == 3
    writer.flush()  # nothing new: no fsync
    assert len(fsyncs) == 3
    writer.write(_records(5, first=7))  # one write past the cadence: synced at once
    assert len(fsyncs) == 4
    writer.write(_records(1, first=12))
    writer.close()  # one minute unsynced: close syncs it
    assert len(fsyncs) == 5 and writer.fsyncs == 5
    assert len(set(fsyncs)) == 1  # all on the one descriptor kept open
    writer.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        writer.write(_records(1, first=13))
    with pytest.raises(ValueError, match=">= 1"):
        OnlineRecordWriter(tmp_path / "other.jsonl", fsync_every=0)


def test_a_torn_tail_is_dropped_once_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    records = _records(4)
    with OnlineRecordWriter(path) as writer:
        writer.write(records[:2])
    torn = record_to_json(records[2])
    with path.open("a", encoding="utf-8") as fh:
        fh.write(torn[: len(torn) // 2])  # a crash mid-write
    assert len(read_online_records(path)) == 2
    with OnlineRecordWriter(path) as writer:
        assert path.read_text(encoding="utf-8").endswith("\n")  # cut at open
        writer.write(records[2:])
    assert path.read_text(encoding="utf-8").splitlines() == [record_to_json(r) for r in records]


def test_a_write_that_fails_part_way_is_cut_back_to_complete_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "day.jsonl"
    writer = OnlineRecordWriter(path)
    writer.write(_records(2))
    real_write = os.write

    def half_then_full_disk(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full_disk)
    with pytest.raises(OSError, match="No space"):
        writer.write(_records(3, first=2))
    monkeypatch.setattr(os, "write", real_write)
    assert path.read_text(encoding="utf-8").splitlines() == [record_to_json(r) for r in _records(2)]
    writer.write(_records(1, first=2))  # the writer goes on after the disk has room again
    writer.close()
    assert [json.loads(line)["bucket_start_ts"] for line in path.read_text().splitlines()] == [
        (T0 + timedelta(minutes=i)).isoformat() for i in range(3)
    ]


def test_a_writer_dropped_without_close_syncs_and_closes_its_file(
    tmp_path: Path, fsyncs: list[int]
) -> None:
    writer = OnlineRecordWriter(tmp_path / "day.jsonl")
    writer.write(_records(1))
    fd = writer._fd
    del writer
    gc.collect()
    assert fsyncs == [fd]
    with pytest.raises(OSError):
        os.fstat(fd)
