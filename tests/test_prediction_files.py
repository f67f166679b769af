"""Stored prediction records (batch Parquet partitions, online JSONL) are checked when read:
a corrupt file is an ArtifactError (exit 2) naming the file, column and first bad row, and
the failing command writes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskclf.cli.main import run
from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.errors import ArtifactError
from taskclf.core.paths import Layout
from taskclf.infer.prediction import (
    OnlineRecordWriter,
    normalize_predictions,
    read_online_records,
    read_prediction_partitions,
    record_to_json,
    write_prediction_partitions,
)

DAY = date(2026, 1, 5)
D = DAY.isoformat()
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
PROBS = "[0.1,0.3,0.1,0.1,0.1,0.1,0.1,0.1]"
RERUN = f"re-run 'taskclf infer batch --from {D} --to {D}'"
TITLE = "Secret plan.docx - https://intranet.example/x?token=1"


def _records(user: str, n: int = 20) -> pd.DataFrame:
    labels = ["Build"] * (n // 2) + [MIXED_UNKNOWN] * (n - n // 2)
    return normalize_predictions(
        pd.DataFrame(
            {
                "user_id": user,
                "bucket_start_ts": pd.date_range(START, periods=n, freq="min"),
                "core_label": "Build",
                "confidence": np.linspace(0.3, 0.9, n),
                "is_rejected": [p == MIXED_UNKNOWN for p in labels],
                "predicted_label": labels,
                "mapped_label": ["Deep work" if p == "Build" else p for p in labels],
                "core_probs": PROBS,
                "model_id": "run-1",
            }
        )
    )


def _snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def home(layout: Layout) -> Layout:
    """Two users' batch predictions of one day, written by the batch writer."""
    records = pd.concat([_records("ann"), _records("bob")], ignore_index=True)
    days = pd.Series([DAY] * len(records))
    write_prediction_partitions(layout, records, days)
    return layout


def _rewrite(layout: Layout, user: str, change) -> Path:
    path = layout.predictions_partition(DAY, user)
    df = pd.read_parquet(path)
    change(df)
    df.to_parquet(path, index=False)
    return path


def test_valid_partitions_read_back(home):
    got = read_prediction_partitions(home, DAY, DAY)
    expected = pd.concat([_records("ann"), _records("bob")], ignore_index=True)
    pd.testing.assert_frame_equal(got, normalize_predictions(expected))


def _set(column: str, value: object, rows: slice = slice(None)):
    def change(df: pd.DataFrame) -> None:
        if rows == slice(None):
            df[column] = value
        else:
            df[column] = df[column].astype(object)
            df.loc[df.index[rows], column] = value

    return change


# (case, change to bob's partition, column, words the message holds)
CORRUPTIONS = [
    ("confidence NaN", _set("confidence", np.nan, slice(3, 5)), "confidence",
     "must be a finite number in [0, 1]; 2 of 20 rows fail, the first at row 3: nan"),
    ("confidence 2.0", _set("confidence", 2.0), "confidence", "first at row 0: 2.0"),
    ("confidence negative", _set("confidence", -0.1, slice(7, 8)), "confidence", "row 7: -0.1"),
    ("confidence as text", _set("confidence", "0.5"), "confidence", "must hold numbers"),
    ("unknown predicted label", _set("predicted_label", "Sleeping"), "predicted_label",
     "must be a core label or 'Mixed/Unknown'; 20 of 20 rows fail, the first at row 0: "
     "'Sleeping'"),
    ("reject label as core label", _set("core_label", MIXED_UNKNOWN, slice(2, 3)), "core_label",
     "must be a core label (BreakIdle, Build"),
    ("empty mapped label", _set("mapped_label", " ", slice(4, 6)), "mapped_label",
     "must be a non-empty string; 2 of 20 rows fail, the first at row 4;"),
    ("missing is_rejected", _set("is_rejected", None, slice(1, 2)), "is_rejected",
     "must hold true/false values, stored as object; 1 of 20 rows fail, the first at row 1"),
    ("probabilities not a list", _set("core_probs", "0.5,0.5"), "core_probs",
     "must be a JSON list of finite non-negative numbers"),
    ("empty probabilities", _set("core_probs", "[]", slice(9, 10)), "core_probs", "at row 9"),
    ("negative probability", _set("core_probs", "[-0.1,1.1]"), "core_probs", "JSON list"),
    ("NaN probability", _set("core_probs", "[NaN,0.3,0.1,0.1,0.1,0.1,0.1,0.1]"), "core_probs",
     "JSON list"),
    ("missing user id", _set("user_id", None, slice(0, 1)), "user_id", "non-empty string"),
    ("missing column", lambda df: df.pop("model_id"), "model_id",
     "are missing"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "column", "words"),
    [c[1:] for c in CORRUPTIONS],
    ids=[c[0] for c in CORRUPTIONS],
)
def test_report_daily_exits_2_naming_file_column_row_and_writes_nothing(
    home, change, column, words, capsys
):
    path = _rewrite(home, "bob", change)
    before = _snapshot(home.home)
    assert run(["--home", str(home.home), "report", "daily", "--from", D, "--to", D]) == 2
    err = capsys.readouterr().err
    assert f"predictions '{path}'" in err and repr(column) in err and words in err
    assert RERUN in err
    assert _snapshot(home.home) == before  # no report files
    assert not home.report_dir("ann", DAY).exists()


def test_truncated_partition_exits_2_for_report_daily_and_summary(home, capsys):
    path = home.predictions_partition(DAY, "ann")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    before = _snapshot(home.home)
    for command in (["report", "daily"], ["report", "summary"]):
        assert run(["--home", str(home.home), *command, "--from", D, "--to", D]) == 2
        err = capsys.readouterr().err
        assert f"predictions '{path}' cannot be read" in err and RERUN in err
    assert _snapshot(home.home) == before


def test_free_text_values_are_never_shown(home):
    _rewrite(home, "ann", _set("core_probs", TITLE))
    with pytest.raises(ArtifactError, match="'core_probs'") as info:
        read_prediction_partitions(home, DAY, DAY)
    assert "Secret" not in str(info.value) and "intranet" not in str(info.value)


def test_a_shown_label_is_cut_to_40_characters(home):
    _rewrite(home, "ann", _set("predicted_label", TITLE))
    with pytest.raises(ArtifactError, match="'predicted_label'") as info:
        read_prediction_partitions(home, DAY, DAY)
    assert repr(TITLE[:40]) + "..." in str(info.value)
    assert TITLE[40:] not in str(info.value)


def test_not_a_date_folder_is_an_artifact_error(home):
    (home.predictions_dir / "date=soon").mkdir()
    with pytest.raises(ArtifactError, match="date=soon"):
        read_prediction_partitions(home, DAY, DAY)


def test_json_style_probabilities_with_spaces_are_accepted(home):
    _rewrite(home, "ann", _set("core_probs", "[0.1, 0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 1e-05]"))
    assert len(read_prediction_partitions(home, DAY, DAY)) == 40


# ---- online JSONL ----------------------------------------------------------------------


def _online_file(layout: Layout, records: pd.DataFrame) -> Path:
    path = layout.online_predictions_file("ann", DAY)
    with OnlineRecordWriter(path) as writer:
        writer.write(records.to_dict("records"))
    return path


def test_online_records_roundtrip_and_ignore_a_torn_tail(layout):
    records = _records("ann", 5)
    path = _online_file(layout, records)
    with open(path, "ab") as fh:
        fh.write(record_to_json(records.iloc[0].to_dict()).encode()[:30])
    pd.testing.assert_frame_equal(read_online_records(path), records)


def test_online_labels_may_hold_unicode_line_separators(layout):
    records = normalize_predictions(_records("ann", 3).assign(mapped_label="Deep\u2028work\x85"))
    path = _online_file(layout, records)
    pd.testing.assert_frame_equal(read_online_records(path), records)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("predicted_label", "Sleeping", "must be a core label or 'Mixed/Unknown'"),
        ("confidence", float("nan"), "must be a finite number in [0, 1]"),
        ("bucket_start_ts", "yesterday", "must be a timestamp"),
    ],
)
def test_online_record_errors_name_the_line(layout, field, value, words):
    records = _records("ann", 4).to_dict("records")
    path = layout.online_predictions_file("ann", DAY)
    path.parent.mkdir(parents=True)
    lines = [record_to_json(r) for r in records]
    if field == "bucket_start_ts":
        lines[2] = _with_ts(lines[2], str(value))
    else:
        lines[2] = record_to_json({**records[2], field: value})
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ArtifactError) as info:
        read_online_records(path)
    message = str(info.value)
    assert f"online predictions '{path}': column {field!r} {words}" in message
    assert "first at line 3" in message


def _with_ts(line: str, value: str) -> str:
    head, _, rest = line.partition('"bucket_start_ts":"')
    return head + '"bucket_start_ts":"' + value + rest[rest.index('"') :]
