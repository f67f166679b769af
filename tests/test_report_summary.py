"""``taskclf report summary``: every user's days in one table, and totals over the range."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from taskclf.cli.main import run
from taskclf.core.config import Config, save_config
from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.time import local_date
from taskclf.infer.prediction import write_prediction_partitions
from taskclf.report.daily import build_daily_reports
from taskclf.report.export import TABLE_COLUMNS, report_table
from taskclf.report.summary import SUMMARY_CSV, run_range_summary, summary_dir, user_totals
from test_report_daily import ANN_DAY_START, TZ, _preds, _two_users

MIN = pd.Timedelta(minutes=1)


def _predictions() -> pd.DataFrame:
    # ann: her 25-hour DST day, then 90 minutes of the next day (1 of them Mixed)
    ann_next = _preds(
        "ann", ANN_DAY_START + 25 * 60 * MIN, ["Build"] * 60 + [MIXED_UNKNOWN] + ["Meet"] * 29
    )
    return pd.concat([_two_users(), ann_next], ignore_index=True)


def test_totals_add_the_users_days() -> None:
    reports = build_daily_reports(_predictions(), None, timezones=TZ)
    ann, bob = user_totals(reports)
    assert (ann.user_id, ann.days, ann.minutes) == ("ann", 2, 25 * 60 + 90)
    assert ann.minutes_by_label["Build"] == 660 and ann.minutes_by_label["Meet"] == 329
    assert ann.minutes_by_mapped_label["Deep work"] == 660 and ann.rejected_minutes == 1
    assert ann.mixed_by_core_label == {"Build": 1}
    assert ann.top(2) == [("Deep work", 660), ("Break", 600)]
    assert (bob.days, bob.minutes, bob.rejected_minutes) == (1, 23 * 60, 30)
    assert bob.mixed_by_core_label == {"Build": 30}


def _home(tmp_path):
    from taskclf.core.paths import Layout

    layout = Layout.resolve(tmp_path / "home")
    save_config(layout, Config(user_id="ann", timezone="UTC", user_timezones=TZ))
    preds = _predictions()
    pairs = zip(preds["user_id"], preds["bucket_start_ts"], strict=True)
    days = pd.Series([local_date(t, TZ[u]) for u, t in pairs])
    write_prediction_partitions(layout, preds, days)
    return layout


def test_the_summary_table_is_every_report_in_order_and_deterministic(tmp_path) -> None:
    layout = _home(tmp_path)
    lo, hi = date(2026, 3, 1), date(2026, 10, 31)
    first = run_range_summary(layout, lo, hi, timezones=TZ)
    csv = first.paths[0].read_bytes()
    assert first.paths[0] == summary_dir(layout, lo, hi) / SUMMARY_CSV
    assert "=" in first.paths[0].parent.name  # never a user's report folder
    table = pd.read_parquet(first.paths[1])
    assert list(table.columns) == list(TABLE_COLUMNS)
    reports = sorted(
        build_daily_reports(_predictions(), None, timezones=TZ), key=lambda r: (r.user_id, r.date)
    )
    want = pd.concat([report_table(r) for r in reports], ignore_index=True)
    pd.testing.assert_frame_equal(table, want)
    again = run_range_summary(layout, lo, hi, timezones=TZ)
    assert again.paths[0].read_bytes() == csv
    assert [p.name for p in first.paths[2:]] == ["ann.png", "bob.png"]
    for chart, same in zip(first.paths[2:], again.paths[2:], strict=True):
        assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert chart.read_bytes() == same.read_bytes()
    only_bob = run_range_summary(layout, lo, hi, user_ids=["bob"], timezones=TZ)
    assert [t.user_id for t in only_bob.totals] == ["bob"]


def test_report_summary_command(tmp_path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    from taskclf.cli._common import console

    monkeypatch.setattr(console, "_width", 200)
    layout = _home(tmp_path)
    home = str(layout.home)
    code = run(["--home", home, "report", "summary", "--from", "2026-03-01", "--to", "2026-10-31"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0, out
    assert "ann 2 26.5 Deep work 11.0 h, Break 10.0 h, Collaboration 5.5 h Build 0.0 h 0%" in out
    assert "bob 1 23.0 Deep work 11.5 h, Learning 11.0 h, Mixed/Unknown 0.5 h Build 0.5 h 2%" in out
    code = run(["--home", home, "report", "summary", "--from", "2027-01-01", "--to", "2027-01-02"])
    assert code == 2 and "no predictions" in capsys.readouterr().err
    code = run(["--home", home, "report", "summary", "--from", "2026-03-02", "--to", "2026-03-01"])
    assert code == 2


def test_the_range_chart_stacks_each_days_buckets() -> None:
    from io import BytesIO

    import numpy as np
    from PIL import Image

    from taskclf.report.plots import mapped_colors
    from taskclf.report.range_plot import render_range_png

    reports = [r for r in build_daily_reports(_predictions(), None, timezones=TZ)]
    ann = [r for r in reports if r.user_id == "ann"]
    png = render_range_png("ann", ann)
    rgb = np.asarray(Image.open(BytesIO(png)).convert("RGB"))
    colors = mapped_colors(["Deep work", "Break", "Collaboration"], None)

    def pixels(name: str) -> int:
        want = np.array([int(colors[name][i : i + 2], 16) for i in (1, 3, 5)])
        return int((rgb == want).all(axis=-1).sum())

    # hours over both days: Deep work 11.0, Break 10.0, Collaboration 5.5 (bars and legend)
    deep, brk, collab = pixels("Deep work"), pixels("Break"), pixels("Collaboration")
    assert deep > brk > collab > 0
    assert 1.5 < deep / collab < 2.5


def test_without_dates_the_summary_covers_the_last_seven_days(tmp_path, capsys) -> None:
    from datetime import timedelta

    from taskclf.core.time import utc_now

    layout = _home(tmp_path)  # predictions of 2026: none in the last week
    today = local_date(utc_now(), "UTC")
    assert run(["--home", str(layout.home), "report", "summary"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"for {today - timedelta(days=6)}..{today}" in err
    # and says which dates do have predictions
    import re

    assert re.search(r"\(there are predictions for 2026-\d\d-\d\d\.\.2026-\d\d-\d\d\)", err)


@pytest.mark.parametrize(
    ("part", "total", "want"),
    [(1, 1000, "<1%"), (5, 1000, "<1%"), (0, 1000, "0%"), (6, 1000, "1%"), (1, 2, "50%")],
)
def test_chart_title_shares_never_show_a_present_bucket_as_zero(part, total, want) -> None:
    from taskclf.report.range_plot import _share

    assert _share(part, total) == want
