"""`taskclf report daily` end to end over stored prediction partitions."""

from __future__ import annotations

import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from taskclf.cli.main import run
from taskclf.core.config import Config, save_config
from taskclf.infer.prediction import local_dates, normalize_predictions
from taskclf.infer.smooth import Segment
from taskclf.infer.taxonomy import default_taxonomy, save_taxonomy
from taskclf.report.daily_files import load_report, run_daily_reports
from taskclf.report.export import write_segments

sys.path.insert(0, str(Path(__file__).parent))
from test_report_daily import TZ, _two_users


@pytest.fixture
def home(layout):
    """A home with predictions stored per user and local date, as 'infer batch' stores them."""
    save_config(layout, Config(timezone="Europe/Warsaw", user_timezones={"bob": TZ["bob"]}))
    preds = normalize_predictions(_two_users())
    days = local_dates(preds["bucket_start_ts"], preds["user_id"], TZ, "UTC")
    for (user, day), part in preds.groupby([preds["user_id"], days.to_numpy()]):
        path = layout.predictions_partition(day, str(user))
        path.parent.mkdir(parents=True, exist_ok=True)
        part.to_parquet(path, index=False)
    return layout


def _files(layout, user: str, day: date) -> dict[str, bytes]:
    folder = layout.report_dir(user, day)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_report_daily_range_twice_is_byte_identical(home, capsys):
    args = [
        "--home",
        str(home.home),
        "report",
        "daily",
        "--from",
        "2026-03-01",
        "--to",
        "2026-10-31",
    ]
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "2 report(s) written" in out and "ann" in out and "bob" in out
    first = {
        ("ann", "2026-10-25"): _files(home, "ann", date(2026, 10, 25)),
        ("bob", "2026-03-08"): _files(home, "bob", date(2026, 3, 8)),
    }
    assert all(set(files) == {"daily.json", "daily.csv", "daily.parquet", "daily.png"}
               for files in first.values())  # fmt: skip
    assert run(args) == 0
    assert _files(home, "ann", date(2026, 10, 25)) == first[("ann", "2026-10-25")]
    assert _files(home, "bob", date(2026, 3, 8)) == first[("bob", "2026-03-08")]
    ann = load_report(home.report_dir("ann", date(2026, 10, 25)) / "daily.json")
    assert ann.total_minutes == 1500 and ann.timezone == "Europe/Warsaw"


def test_report_daily_single_date_user_filter_and_taxonomy(home, tmp_path, capsys):
    tax = save_taxonomy(default_taxonomy(), tmp_path / "tax.yaml")
    args = ["--home", str(home.home), "report", "daily", "--date", "2026-03-08"]
    assert run([*args, "--user-id", "bob", "--taxonomy", str(tax)]) == 0
    assert "1 report(s) written" in capsys.readouterr().out
    assert not home.report_dir("ann", date(2026, 10, 25)).exists()
    bob = load_report(home.report_dir("bob", date(2026, 3, 8)) / "daily.json")
    assert bob.minutes_by_mapped_label["Learning"] == 660


def test_report_daily_uses_segments_file(home):
    preds = _two_users()
    bob = preds[preds["user_id"] == "bob"].sort_values("bucket_start_ts")
    # A segments file that differs from what recomputation gives (one block for the day).
    whole = Segment(
        user_id="bob",
        start_ts=bob["bucket_start_ts"].iloc[0].to_pydatetime(),
        end_ts=bob["bucket_start_ts"].iloc[-1].to_pydatetime() + timedelta(minutes=1),
        label="Write",
        bucket_count=len(bob),
    )
    write_segments(home.segments_file, [whole])
    assert run(["--home", str(home.home), "report", "daily", "--date", "2026-03-08"]) == 0
    report = load_report(home.report_dir("bob", date(2026, 3, 8)) / "daily.json")
    assert report.segment_count == 1 and report.context_switches == 0
    # ann has no segments in the file: hers are recomputed from the predictions.
    assert run(["--home", str(home.home), "report", "daily", "--date", "2026-10-25"]) == 0
    ann = load_report(home.report_dir("ann", date(2026, 10, 25)) / "daily.json")
    assert ann.segment_count == 3


def test_report_daily_errors_exit_2(home, capsys):
    base = ["--home", str(home.home), "report", "daily"]
    assert run([*base, "--date", "2025-01-01"]) == 2
    assert "taskclf infer batch" in capsys.readouterr().err
    assert run([*base, "--date", "2026-03-08", "--from", "2026-03-01"]) == 2
    assert run([*base, "--from", "2026-03-09", "--to", "2026-03-01"]) == 2
    assert run([*base, "--from", "2026-03-09"]) == 2
    assert run([*base, "--date", "08/03/2026"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err
    home.segments_file.parent.mkdir(parents=True, exist_ok=True)
    home.segments_file.write_text("{not json", encoding="utf-8")
    assert run([*base, "--date", "2026-03-08"]) == 2
    assert "segments.json" in capsys.readouterr().err


def test_run_daily_reports_reports_progress(home):
    calls: list[tuple[int, int]] = []
    written = run_daily_reports(
        home,
        date(2026, 3, 1),
        date(2026, 10, 31),
        timezones=TZ,
        progress=lambda done, total: calls.append((done, total)),
    )
    assert [(w.report.user_id, w.report.date) for w in written] == [
        ("ann", date(2026, 10, 25)),
        ("bob", date(2026, 3, 8)),
    ]
    assert calls == [(1, 2), (2, 2)]


def test_report_daily_draws_charts_in_workers_from_the_cli_only(home, monkeypatch):
    from taskclf.report import plots

    # two reports; drawn in workers once the threshold allows it and more than one core is used
    monkeypatch.setattr(plots, "PARALLEL_MIN_CHARTS", 2)
    monkeypatch.setattr(plots, "chart_workers", lambda: 2)
    spawned: list[str] = []
    real_context = plots.multiprocessing.get_context
    monkeypatch.setattr(
        plots.multiprocessing, "get_context", lambda m: spawned.append(m) or real_context(m)
    )
    run_daily_reports(  # as the CLI calls it, with the home's time zones
        home,
        date(2026, 3, 1),
        date(2026, 10, 31),
        timezones={"bob": TZ["bob"]},
        default_timezone="Europe/Warsaw",
    )
    assert spawned == []  # the library default is one process (safe in unguarded scripts)
    serial = _files(home, "ann", date(2026, 10, 25))
    args = ["--home", str(home.home), "report", "daily", "--from", "2026-03-01"]
    assert run([*args, "--to", "2026-10-31"]) == 0
    assert spawned == ["spawn"]
    assert _files(home, "ann", date(2026, 10, 25)) == serial
