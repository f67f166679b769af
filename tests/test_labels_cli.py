"""`taskclf labels ...`: commands end to end, hostile input exits 2 with the store untouched."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import httpx
import pandas as pd
import pytest

from taskclf.cli._common import console
from taskclf.cli.main import run
from taskclf.core.paths import Layout
from taskclf.core.types import LabelSpan
from taskclf.labels.queue import enqueue_from_predictions
from taskclf.labels.store import LabelStore

HEADER = "start_ts,end_ts,label,provenance,user_id,confidence,extend_forward\n"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    monkeypatch.setattr(console, "_width", 200)


@pytest.fixture
def home(tmp_path):
    path = tmp_path / "home"
    (path / "configs").mkdir(parents=True)
    (path / "configs" / "config.toml").write_text(
        'user_id = "me"\ntimezone = "Europe/Warsaw"\n', encoding="utf-8"
    )
    return path


def labels(home, *args: str) -> int:
    return run(["--home", str(home), "labels", *args])


def _snapshot(home) -> list[LabelSpan]:
    return LabelStore.for_layout(Layout.resolve(home)).list_spans(resolve_extend=False)


def test_add_block_list_delete(home, capsys):
    assert (
        labels(
            home,
            "add-block",
            "--start",
            "2026-01-05T09:00:00Z",
            "--end",
            "2026-01-05T10:00:00+00:00",
            "--label",
            "Build",
        )
        == 0
    )
    assert "Stored span #1" in capsys.readouterr().out
    (span,) = _snapshot(home)
    assert (span.user_id, span.label, span.provenance) == ("me", "Build", "manual")
    assert (
        labels(
            home,
            "add-block",
            "--start",
            "2026-01-05T09:30:00Z",
            "--end",
            "2026-01-05T11:00:00Z",
            "--label",
            "Meet",
            "--all-users",
        )
        == 2
    )
    assert "span #1" in capsys.readouterr().err
    assert (
        labels(
            home,
            "add-block",
            "--start",
            "2026-01-05T09:30:00Z",
            "--end",
            "2026-01-05T11:00:00Z",
            "--label",
            "Meet",
            "--overwrite",
        )
        == 0
    )
    assert "cut span #1" in capsys.readouterr().out
    assert labels(home, "list", "--from", "2026-01-05", "--to", "2026-01-05") == 0
    out = capsys.readouterr().out
    assert "Label spans (2)" in out and "Meet" in out and "2026-01-05 09:30:00" in out
    assert labels(home, "list", "--from", "2026-01-06", "--to", "2026-01-07") == 0
    assert "Label spans (0)" in capsys.readouterr().out
    assert labels(home, "delete", "1") == 0
    assert [s.label for s in _snapshot(home)] == ["Meet"]
    assert labels(home, "delete", "1") == 2


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--start", "2026-01-05T09:00:00", "--end", "2026-01-05T10:00:00Z"], "no time zone"),
        (["--start", "2026-01-05T10:00:00Z", "--end", "2026-01-05T09:00:00Z"], "must be after"),
        (["--start", "soon", "--end", "2026-01-05T09:00:00Z"], "ISO-8601"),
        (["--user-id", "../x"], "path separator"),
        (["--user-id", "a/b"], "path separator"),
        (["--user-id", ""], "user id is empty"),  # not the configured user
        (["--user-id", "x" * 300], "300 characters"),
        (["--user-id", "u", "--all-users"], "not both"),
        (["--confidence", "2"], ""),
        (["--label", "Coding"], ""),
    ],
)
def test_add_block_hostile_input_exits_2(home, capsys, args, match):
    labels(
        home,
        "add-block",
        "--start",
        "2026-01-04T09:00:00Z",
        "--end",
        "2026-01-04T10:00:00Z",
        "--label",
        "Write",
    )
    before = _snapshot(home)
    base = {"--start": "2026-01-05T09:00:00Z", "--end": "2026-01-05T10:00:00Z", "--label": "Build"}
    argv: list[str] = []
    given = set(args[::2])
    for key, value in base.items():
        if key not in given:
            argv += [key, value]
    assert labels(home, "add-block", *argv, *args) == 2
    captured = capsys.readouterr()
    assert match in captured.err
    assert "Traceback" not in captured.err
    assert _snapshot(home) == before


def test_import_export_and_conflicts(home, tmp_path, capsys):
    src = tmp_path / "in.csv"
    src.write_text(
        HEADER
        + "2026-01-05T09:00:00Z,2026-01-05T09:30:00Z,Build,manual,,,false\n"
        + "2026-01-05T09:15:00Z,2026-01-05T09:45:00Z,Debug,manual,,,false\n",
        encoding="utf-8",
    )
    assert labels(home, "import", str(src), "--strict") == 2
    assert "strict" in capsys.readouterr().err and _snapshot(home) == []
    assert labels(home, "import", str(src), "--user-id", "bob") == 0
    out = capsys.readouterr().out
    assert "1 added" in out and "1 conflicting" in out and "row" in out and "--overwrite" in out
    assert labels(home, "import", str(src), "--user-id", "bob") == 0
    assert "0 added, 1 already present" in capsys.readouterr().out
    dst = tmp_path / "out.csv"
    assert labels(home, "export", str(dst), "--user-id", "bob") == 0
    assert dst.read_text(encoding="utf-8") == (
        HEADER + "2026-01-05T09:00:00+00:00,2026-01-05T09:30:00+00:00,Build,manual,bob,,false\n"
    )
    assert labels(home, "export", str(tmp_path / "none.csv"), "--from", "2026-01-06") == 0
    assert (tmp_path / "none.csv").read_text(encoding="utf-8") == HEADER


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (HEADER + "2026-01-05T09:00:00Z,2026-01-05T08:00:00Z,Build,manual,,,false\n", "after"),
        (HEADER + "2026-01-05T09:00:00Z,2026-01-05T10:00:00Z,Nope,manual,,,false\n", "Nope"),
        (HEADER + "2026-01-05T09:00:00,2026-01-05T10:00:00Z,Build,manual,,,false\n", "zone"),
        (HEADER.replace(",label", "") + "2026-01-05T09:00:00Z\n", "missing column"),
        (HEADER + "2026-01-05T09:00:00Z,2026-01-05T10:00:00Z,Build,manual,../x,,false\n", "sep"),
    ],
)
def test_import_hostile_files_exit_2(home, tmp_path, capsys, content, match):
    labels(
        home,
        "add-block",
        "--start",
        "2026-01-04T09:00:00Z",
        "--end",
        "2026-01-04T10:00:00Z",
        "--label",
        "Write",
    )
    before = _snapshot(home)
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    assert labels(home, "import", str(path)) == 2
    assert match in capsys.readouterr().err
    assert _snapshot(home) == before


def test_bad_dates_exit_2(home, tmp_path, capsys):
    assert labels(home, "list", "--from", "2026-13-01") == 2
    assert labels(home, "list", "--from", "2026-01-05", "--to", "2026-01-01") == 2
    assert labels(home, "project", "--from", "2026-01-05") == 2
    assert "give both --from and --to" in capsys.readouterr().err


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_label_now_without_a_server_still_records(home, capsys):
    url = f"http://127.0.0.1:{_closed_port()}"
    before = datetime.now(UTC)
    assert labels(home, "label-now", "--minutes", "15", "--label", "Write", "--aw-host", url) == 0
    out = capsys.readouterr().out
    assert "unreachable" in out
    (span,) = _snapshot(home)
    assert span.label == "Write" and span.user_id == "me"
    assert span.end_ts - span.start_ts == timedelta(minutes=15)
    assert before <= span.end_ts <= datetime.now(UTC)


def test_label_now_bad_minutes_exit_2(home, capsys):
    assert labels(home, "label-now", "--minutes", "0", "--label", "Write") == 2
    assert labels(home, "label-now", "--minutes", "5", "--label", "Write", "--user-id", "") == 2
    assert "user id is empty" in capsys.readouterr().err
    assert _snapshot(home) == []


@pytest.mark.awserver
def test_label_now_shows_what_activitywatch_saw(home, aw_server, capsys):
    bucket = "aw-watcher-window_testhost"
    api = f"{aw_server.url}/api/0"
    httpx.post(
        f"{api}/buckets/{bucket}",
        json={"client": "test", "type": "currentwindow", "hostname": "testhost"},
    ).raise_for_status()
    now = datetime.now(UTC)
    events = [
        (now - timedelta(minutes=8), 120, "Code.exe", "secret title one"),
        (now - timedelta(minutes=6), 60, "firefox.exe", "secret title two"),
        (now - timedelta(minutes=5), 180, "Code.exe", "secret title three"),
        (now - timedelta(hours=3), 60, "Slack.exe", "old"),
    ]
    payload = [
        {"timestamp": t.isoformat(), "duration": d, "data": {"app": app, "title": title}}
        for t, d, app, title in events
    ]
    httpx.post(f"{api}/buckets/{bucket}/events", json=payload).raise_for_status()
    code = labels(
        home, "label-now", "--minutes", "10", "--label", "Build", "--aw-host", aw_server.url
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "What ActivityWatch saw" in out
    lines = [ln for ln in out.splitlines() if ".exe" in ln]
    assert "Code.exe" in lines[0] and "300" in lines[0]
    assert "firefox.exe" in lines[1] and "60" in lines[1]
    assert "Slack.exe" not in out and "secret" not in out
    assert [s.label for s in _snapshot(home)] == ["Build"]


def test_show_queue(home, capsys):
    store = LabelStore.for_layout(Layout.resolve(home))
    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    preds = pd.DataFrame(
        {
            "user_id": ["me", "me", "you"],
            "bucket_start_ts": pd.Series(
                [t0, t0 + timedelta(minutes=1), t0], dtype="datetime64[us, UTC]"
            ),
            "core_label": ["Build", "Debug", "Meet"],
            "confidence": [0.31, 0.22, 0.4],
            "is_rejected": [True, True, True],
            "predicted_label": ["Mixed/Unknown"] * 3,
            "model_id": ["m"] * 3,
        }
    )
    enqueue_from_predictions(store, preds)
    assert labels(home, "show-queue", "--user-id", "me", "--limit", "5") == 0
    out = capsys.readouterr().out
    assert "Labeling queue (2)" in out
    assert out.index("0.22") < out.index("0.31") and "you" not in out
    assert labels(home, "show-queue", "--user-id", "../x") == 2


# --- commands over feature partitions (features.build.load_features) --------------------


def _feature_rows(user: str, start: datetime, cats: list[str]) -> pd.DataFrame:
    """Valid schema-v3 rows, one per minute from ``start``, with the given app categories."""
    from taskclf.core.schema import FeatureSchemaV3

    n = len(cats)
    ts = pd.Series([start + timedelta(minutes=i) for i in range(n)], dtype="datetime64[us, UTC]")
    values: dict[str, object] = {}
    for spec in FeatureSchemaV3.COLUMN_SPECS:
        if spec.type == "str":
            values[spec.name] = ["x"] * n
        elif spec.type == "bool":
            values[spec.name] = [False] * n
        elif spec.type == "int":
            values[spec.name] = [0] * n
        elif spec.type == "float":
            values[spec.name] = [0.0] * n
        elif spec.type == "list":
            values[spec.name] = [["src"] for _ in range(n)]
    frame = pd.DataFrame(values)
    frame["user_id"] = user
    frame["bucket_start_ts"] = ts
    frame["bucket_end_ts"] = ts + pd.Timedelta(minutes=1)
    frame["schema_version"] = "v3"
    frame["schema_hash"] = FeatureSchemaV3.SCHEMA_HASH
    frame["app_category"] = cats
    frame["domain_category"] = "non_browser"
    frame["hour_of_day"] = ts.dt.hour.astype("int64")
    frame["day_of_week"] = ts.dt.day_of_week.astype("int64")
    frame = frame[list(FeatureSchemaV3.COLUMNS)]
    FeatureSchemaV3.validate_dataframe(frame)
    return frame


@pytest.fixture
def featured_home(home):
    layout = Layout.resolve(home)
    day = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    cats = ["editor"] * 10 + ["meeting"] * 5 + ["chat"] * 3 + ["lockscreen"] * 2
    for user in ("me", "you"):
        path = layout.features_partition(day.date(), user)
        path.parent.mkdir(parents=True, exist_ok=True)
        _feature_rows(user, day, cats).to_parquet(path, index=False)
    return home


def test_project_prints_coverage_and_writes_labeled_rows(featured_home, tmp_path, capsys):
    home = featured_home
    labels(
        home,
        "add-block",
        "--start",
        "2026-01-05T09:00:00Z",
        "--end",
        "2026-01-05T09:05:30Z",
        "--label",
        "Build",
    )
    labels(
        home,
        "add-block",
        "--start",
        "2026-01-05T09:10:00Z",
        "--end",
        "2026-01-05T09:12:00Z",
        "--label",
        "Meet",
        "--all-users",
    )
    capsys.readouterr()
    out = tmp_path / "labeled.parquet"
    assert (
        labels(home, "project", "--from", "2026-01-05", "--to", "2026-01-05", "--out", str(out))
        == 0
    )
    text = capsys.readouterr().out
    assert "(40 minutes)" in text and "Wrote 9 labeled row(s)" in text
    rows = pd.read_parquet(out)
    assert sorted(rows.groupby(["user_id", "label"]).size().items()) == [
        (("me", "Build"), 5),
        (("me", "Meet"), 2),
        (("you", "Meet"), 2),
    ]
    assert (
        labels(home, "project", "--from", "2026-01-05", "--to", "2026-01-05", "--user-id", "you")
        == 0
    )
    assert "(20 minutes)" in capsys.readouterr().out


def test_weak_rules_dry_run_then_apply(featured_home, capsys):
    home = featured_home
    labels(
        home,
        "add-block",
        "--start",
        "2026-01-05T09:10:00Z",
        "--end",
        "2026-01-05T09:12:00Z",
        "--label",
        "Review",
    )
    before = _snapshot(home)
    capsys.readouterr()
    assert labels(home, "weak-rules", "--from", "2026-01-05", "--to", "2026-01-05") == 0
    out = capsys.readouterr().out
    assert "weak:meeting" in out and "weak:lockscreen" in out and "Dry run: 6 span(s)" in out
    assert _snapshot(home) == before
    assert (
        labels(
            home,
            "weak-rules",
            "--from",
            "2026-01-05",
            "--to",
            "2026-01-05",
            "--user-id",
            "me",
            "--apply",
        )
        == 0
    )
    assert "Stored 3 weak span(s) (8 of 10 proposed minutes)" in capsys.readouterr().out
    store = LabelStore.for_layout(Layout.resolve(home))
    assert store.list_spans(provenance="manual") == before
    assert {s.user_id for s in store.list_spans(provenance="weak:")} == {"me"}
