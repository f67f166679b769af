"""The line ``taskclf infer online`` prints after each poll that wrote minutes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from taskclf.cli.infer import poll_line

T0 = datetime(2026, 1, 5, 8, 30, tzinfo=UTC)


def _records(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "bucket_start_ts": [T0 + timedelta(minutes=i) for i in range(len(rows))],
            "predicted_label": [r[0] for r in rows],
            "core_label": [r[1] for r in rows],
            "confidence": [r[2] for r in rows],
            "mapped_label": [r[3] for r in rows],
        }
    )


def test_one_minute_in_local_time() -> None:
    got = poll_line(_records(("Build", "Build", 0.8249, "Build")), "Europe/Warsaw")
    assert got == "09:30 Build 0.82"


def test_bucket_and_model_label_when_they_differ() -> None:
    rejected = _records(("Mixed/Unknown", "Debug", 0.41, "Mixed/Unknown"))
    assert poll_line(rejected, "UTC") == "08:30 Mixed/Unknown (Debug 0.41)"
    mapped = _records(("Build", "Build", 0.9, "Deep work"))
    assert poll_line(mapped, "UTC") == "08:30 Build 0.90 -> Deep work"


def test_several_minutes_show_the_span_and_the_last() -> None:
    rows = [("Write", "Write", 0.7, "Write")] * 11 + [("Meet", "Write", 0.6, "Meetings")]
    got = poll_line(_records(*rows), "America/New_York")
    assert got == "12 minutes written, 03:30-03:41; last 03:41 Meet (Write 0.60) -> Meetings"


def test_nothing_written_prints_nothing() -> None:
    assert poll_line(_records(), "UTC") is None
