"""CSV / Parquet import and export: round trips, merges, conflicts and hostile input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taskclf.core.errors import InputError, LabelConflictError, LabelError
from taskclf.core.types import LabelSpan
from taskclf.labels._io import format_labels_csv, read_labels_csv
from taskclf.labels.store import LabelStore

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HEADER = "start_ts,end_ts,label,provenance,user_id,confidence,extend_forward\n"


def _at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _span(a: float, b: float, label: str = "Build", user: str | None = "u1", **kw) -> LabelSpan:
    return LabelSpan(start_ts=_at(a), end_ts=_at(b), label=label, user_id=user, **kw)


def _snapshot(store: LabelStore) -> list[tuple[int, LabelSpan]]:
    return [(r.span_id, r.span) for r in store.list_records(resolve_extend=False)]


@pytest.fixture
def store(tmp_path) -> LabelStore:
    return LabelStore(tmp_path / "labels.sqlite")


def test_export_format_is_exact_and_deterministic(store, tmp_path):
    store.add(_span(10, 20, "Meet", user=None, confidence=0.1))
    store.add(_span(0, 10, "Write", user='bob, the "builder"', extend_forward=True))
    store.add(_span(0, 10, "Debug", user="alice", provenance="import"))
    out = tmp_path / "out.csv"
    assert store.export_csv(out) == 3
    assert out.read_text(encoding="utf-8") == (
        HEADER
        + "2026-01-05T09:00:00+00:00,2026-01-05T09:10:00+00:00,Debug,import,alice,,false\n"
        + '2026-01-05T09:00:00+00:00,2026-01-05T09:10:00+00:00,Write,manual,"bob, the ""builder""",'
        + ",true\n"
        + "2026-01-05T09:10:00+00:00,2026-01-05T09:20:00+00:00,Meet,manual,,0.1,false\n"
    )


def test_reimport_of_the_same_file_changes_nothing(store, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        HEADER
        + "2026-01-05T09:00:00Z,2026-01-05T09:30:00Z,Build,manual,u1,0.9,false\n"
        + "2026-01-05T10:30:00+01:00,2026-01-05T09:45:00Z,Debug,,u1,,\n",
        encoding="utf-8",
    )
    first = store.import_file(path)
    assert len(first.added) == 2 and first.conflicts == () and first.duplicates == ()
    snap = _snapshot(store)
    assert snap[1][1].provenance == "import"  # empty provenance cell
    assert snap[1][1].start_ts == _at(30)  # 10:30+01:00 is 09:30Z
    second = store.import_file(path)
    assert second.added == () and second.duplicates == (1, 2)
    assert _snapshot(store) == snap


def test_conflicts_are_reported_and_the_rest_is_added(store, tmp_path):
    store.add(_span(0, 30, "Build"))
    path = tmp_path / "labels.csv"
    path.write_text(
        HEADER
        + "2026-01-05T09:20:00Z,2026-01-05T09:40:00Z,Meet,manual,u1,,false\n"
        + "2026-01-05T10:00:00Z,2026-01-05T10:30:00Z,Write,manual,u1,,false\n"
        + "2026-01-05T10:10:00Z,2026-01-05T10:20:00Z,Review,manual,u1,,false\n",
        encoding="utf-8",
    )
    before = _snapshot(store)
    with pytest.raises(LabelConflictError, match=r"strict.*2 of 3.*row 1"):
        store.import_file(path, strict=True)
    assert _snapshot(store) == before
    result = store.import_file(path)
    assert [c.row for c in result.conflicts] == [1, 3]
    assert "span #1" in result.conflicts[0].message
    assert [row for row, _ in result.added] == [2]
    assert len(store.list_spans()) == 2
    forced = store.import_file(path, overwrite=True)
    assert [row for row, _ in forced.added] == [1, 3] and forced.duplicates == (2,)


def test_user_id_option_fills_empty_cells_only(store, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text(
        HEADER
        + "2026-01-05T09:00:00Z,2026-01-05T09:30:00Z,Build,manual,,,false\n"
        + "2026-01-05T09:00:00Z,2026-01-05T09:30:00Z,Build,manual,zoe,,false\n",
        encoding="utf-8",
    )
    store.import_file(path, user_id="me")
    assert sorted(s.user_id for s in store.list_spans()) == ["me", "zoe"]


def _write(tmp_path: Path, rows: str, header: str = HEADER) -> Path:
    path = tmp_path / "bad.csv"
    path.write_text(header + rows, encoding="utf-8")
    return path


GOOD = "2026-01-05T09:00:00Z,2026-01-05T09:30:00Z,Build,manual,u1,,false\n"


@pytest.mark.parametrize(
    ("header", "rows", "match"),
    [
        (HEADER, "2026-01-05T09:30:00Z,2026-01-05T09:00:00Z,Build,manual,u1,,false\n", "row 2"),
        (HEADER, "2026-01-05T09:30:00Z,2026-01-05T10:00:00Z,Nope,manual,u1,,false\n", "Nope"),
        (HEADER, "2026-01-05T09:30:00,2026-01-05T10:00:00Z,Build,manual,u1,,false\n", "no time"),
        (HEADER, "yesterday,2026-01-05T10:00:00Z,Build,manual,u1,,false\n", "ISO-8601"),
        (HEADER, "2026-01-05T09:30:00Z,2026-01-05T10:00:00Z,Build,manual,../x,,false\n", "sep"),
        (HEADER, "2026-01-05T09:30:00Z,2026-01-05T10:00:00Z,Build,manual,a/b,,false\n", "sep"),
        (
            HEADER,
            f"2026-01-05T09:30:00Z,2026-01-05T10:00:00Z,Build,manual,{'x' * 300},,false\n",
            "300 characters",
        ),
        (HEADER, "2026-01-05T09:30:00Z,2026-01-05T10:00:00Z,Build,manual,u1,1.5,false\n", "conf"),
        (HEADER, "2026-01-05T09:30:00Z,2026-01-05T10:00:00Z,Build,manual,u1,,maybe\n", "exten"),
        (HEADER, "2026-01-05T09:30:00Z,2026-01-05T10:00:00Z,Build\n", "cells"),
        (HEADER.replace(",extend_forward", ""), "", "missing column.*extend_forward"),
        (HEADER.replace("user_id", "user"), "", "unexpected column.*'user'"),
    ],
)
def test_hostile_csv_is_refused_and_the_store_untouched(store, tmp_path, header, rows, match):
    store.add(_span(200, 210))
    before = _snapshot(store)
    path = _write(tmp_path, GOOD + rows, header=header)
    with pytest.raises(InputError, match=match):
        store.import_file(path)
    assert _snapshot(store) == before


def test_error_message_lists_rows_and_never_partially_imports(store, tmp_path):
    rows = "".join(
        f"2026-01-05T09:30:00Z,2026-01-05T10:00:00Z,Bad{i},manual,u1,,false\n" for i in range(8)
    )
    path = _write(tmp_path, GOOD + rows)
    with pytest.raises(LabelError) as info:
        store.import_file(path)
    msg = str(info.value)
    assert "8 invalid row(s)" in msg and "row 2" in msg and "and 3 more" in msg
    assert "nothing was imported" in msg
    assert store.count() == 0


def test_missing_file_and_bad_suffix(store, tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        store.import_file(tmp_path / "nope.csv")
    other = tmp_path / "labels.json"
    other.write_text("{}")
    with pytest.raises(InputError, match=".csv or .parquet"):
        store.import_file(other)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="UTF-8"):
        store.import_file(binary)


def test_parquet_import_of_the_earlier_tool(store, tmp_path):
    path = tmp_path / "labels.parquet"
    pd.DataFrame(
        {
            "start_ts": pd.Series([_at(0), _at(30)], dtype="datetime64[ns, UTC]"),
            "end_ts": pd.Series([_at(30), _at(60)], dtype="datetime64[ns, UTC]"),
            "label": ["Build", "Meet"],
            "provenance": ["manual", "manual"],
            "user_id": [None, "u7"],
        }
    ).to_parquet(path)
    result = store.import_file(path, user_id="me")
    assert len(result.added) == 2
    assert [(s.user_id, s.label, s.extend_forward) for s in store.list_spans()] == [
        ("me", "Build", False),
        ("u7", "Meet", False),
    ]
    assert store.import_file(path, user_id="me").duplicates == (1, 2)


def test_parquet_with_naive_timestamps_is_refused(store, tmp_path):
    path = tmp_path / "labels.parquet"
    pd.DataFrame(
        {
            "start_ts": pd.to_datetime(["2026-01-05 09:00"]),
            "end_ts": pd.to_datetime(["2026-01-05 09:30"]),
            "label": ["Build"],
            "provenance": ["manual"],
        }
    ).to_parquet(path)
    with pytest.raises(LabelError, match="without a time zone"):
        store.import_file(path)
    assert store.count() == 0


def test_read_csv_tolerates_bom_and_column_order(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(
        "\ufefflabel,user_id,start_ts,end_ts,provenance,confidence,extend_forward\n"
        "Meet,u1,2026-01-05T09:00:00Z,2026-01-05T09:05:00Z,manual,,TRUE\n",
        encoding="utf-8",
    )
    (s,) = read_labels_csv(path)
    assert (s.label, s.user_id, s.extend_forward) == ("Meet", "u1", True)


_user = st.one_of(
    st.none(),
    st.text(
        alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S", "Zs"]),
        min_size=1,
        max_size=12,
    ).filter(lambda u: u == u.strip() and "/" not in u and "\\" not in u and u not in (".", "..")),
)
_rows = st.lists(
    st.tuples(
        st.integers(0, 10**9),  # microseconds
        st.integers(1, 10**9),
        st.sampled_from(["Build", "Meet", "BreakIdle"]),
        st.sampled_from(["manual", "import", "weak:chat", 'x,y "z"']),
        _user,
        st.one_of(st.none(), st.floats(0, 1)),
        st.booleans(),
    ),
    max_size=12,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=_rows)
def test_import_of_an_export_round_trips_exactly(tmp_path_factory, rows):
    base = tmp_path_factory.mktemp("rt")
    src = LabelStore(base / "a.sqlite")
    for a, d, label, prov, user, conf, ef in rows:
        s = LabelSpan(
            start_ts=T0 + timedelta(microseconds=a),
            end_ts=T0 + timedelta(microseconds=a + d),
            label=label,
            provenance=prov,
            user_id=user,
            confidence=conf,
            extend_forward=ef,
        )
        src.import_spans([s])
    first = base / "first.csv"
    src.export_csv(first)
    dst = LabelStore(base / "b.sqlite")
    result = dst.import_file(first)
    assert result.conflicts == ()
    assert [s for _, s in _snapshot(dst)] == [s for _, s in _snapshot(src)]
    assert dst.list_spans() == src.list_spans()
    second = base / "second.csv"
    dst.export_csv(second)
    assert second.read_bytes() == first.read_bytes()
    assert dst.import_file(second).added == ()
    assert format_labels_csv(dst.list_spans(resolve_extend=False)) == first.read_text("utf-8")
