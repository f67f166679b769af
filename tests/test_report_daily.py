"""Daily reports: local days (two zones, DST), counts, segments, flap/switch stats, files."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.errors import ArtifactError, InputError
from taskclf.infer.smooth import Segment, segmentize
from taskclf.infer.taxonomy import TaxonomyBucket, TaxonomyConfig, default_taxonomy
from taskclf.report.daily import DailyReport, build_daily_reports
from taskclf.report.daily_files import load_report, write_daily_report
from taskclf.report.export import TABLE_COLUMNS, report_table

MIN = timedelta(minutes=1)
TZ = {"ann": "Europe/Warsaw", "bob": "America/New_York"}
# Warsaw leaves DST on 2026-10-25 (a 25-hour day); New York enters it on 2026-03-08 (23 hours).
ANN_DAY_START = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)
BOB_DAY_START = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
MAPPING = {label: name for name, labels in [
    ("Deep work", ["Build", "Debug", "Write"]),
    ("Collaboration", ["Review", "Communicate", "Meet"]),
    ("Learning", ["ReadResearch"]),
    ("Break", ["BreakIdle"]),
    (MIXED_UNKNOWN, [MIXED_UNKNOWN]),
] for label in labels}  # fmt: skip


def _preds(
    user: str,
    start: datetime,
    predicted: list[str],
    core: list[str] | None = None,
    rejected: list[bool] | None = None,
) -> pd.DataFrame:
    n = len(predicted)
    core = core if core is not None else [p if p != MIXED_UNKNOWN else "Build" for p in predicted]
    rejected = rejected if rejected is not None else [p == MIXED_UNKNOWN for p in predicted]
    return pd.DataFrame(
        {
            "user_id": [user] * n,
            "bucket_start_ts": pd.date_range(start, periods=n, freq="min", tz="UTC"),
            "core_label": core,
            "confidence": np.linspace(0.4, 0.9, n) if n else [],
            "is_rejected": rejected,
            "predicted_label": predicted,
            "mapped_label": [MAPPING[p] for p in predicted],
            "core_probs": ["[0.125,0.125,0.125,0.125,0.125,0.125,0.125,0.125]"] * n,
            "model_id": ["run-1"] * n,
        }
    )


def _two_users() -> pd.DataFrame:
    ann = _preds("ann", ANN_DAY_START, ["Build"] * 600 + ["Meet"] * 300 + ["BreakIdle"] * 600)
    bob_labels = ["Write"] * 690 + [MIXED_UNKNOWN] * 30 + ["ReadResearch"] * 660
    bob = _preds("bob", BOB_DAY_START, bob_labels)
    return pd.concat([bob, ann], ignore_index=True).sample(frac=1.0, random_state=3)


def test_two_zones_and_dst_days():
    reports = build_daily_reports(_two_users(), None, timezones=TZ, default_timezone="UTC")
    assert [(r.user_id, r.date) for r in reports] == [
        ("ann", date(2026, 10, 25)),
        ("bob", date(2026, 3, 8)),
    ]
    ann, bob = reports
    assert ann.day_end_utc - ann.day_start_utc == timedelta(hours=25)
    assert bob.day_end_utc - bob.day_start_utc == timedelta(hours=23)
    assert ann.total_minutes == 25 * 60 and bob.total_minutes == 23 * 60
    assert ann.timezone == "Europe/Warsaw" and bob.timezone == "America/New_York"
    assert ann.minutes_by_label["Build"] == 600 and ann.minutes_by_label["Meet"] == 300
    assert set(ann.minutes_by_label) == {*MAPPING}  # every label, zeros included
    assert bob.minutes_by_label[MIXED_UNKNOWN] == 30
    assert bob.mixed_by_core_label == {"Build": 30} and ann.mixed_by_core_label == {}
    assert bob.minutes_by_mapped_label == {"Deep work": 690, MIXED_UNKNOWN: 30, "Learning": 660}
    for r in reports:
        assert sum(r.minutes_by_label.values()) == r.total_minutes
        assert sum(r.minutes_by_mapped_label.values()) == r.total_minutes
        assert sum(s.bucket_count for s in r.segments) == r.total_minutes
    assert bob.reject_rate == pytest.approx(30 / 1380, abs=1e-6)
    assert ann.segment_count == 3 and ann.context_switches == 2
    assert ann.switches_per_hour == pytest.approx(2 / 25, abs=1e-6)
    assert ann.model_ids == ("run-1",)


def test_same_minutes_in_utc_split_differently():
    reports = build_daily_reports(_two_users(), None, default_timezone="UTC")
    days = {(r.user_id, r.date): r.total_minutes for r in reports}
    assert days == {
        ("ann", date(2026, 10, 24)): 120,
        ("ann", date(2026, 10, 25)): 1380,
        ("bob", date(2026, 3, 8)): 1140,
        ("bob", date(2026, 3, 9)): 240,
    }
    # A segment crossing UTC midnight is clipped; each part counts its own minutes.
    first = next(r for r in reports if r.date == date(2026, 10, 24))
    assert [(s.label, s.bucket_count) for s in first.segments] == [("Build", 120)]
    assert first.segments[0].end_ts == datetime(2026, 10, 25, tzinfo=UTC)


def test_flap_rates_before_and_after_smoothing():
    predicted = ["Build"] * 6
    core = ["Build", "Debug", "Build", "Build", "Write", "Build"]
    report = build_daily_reports(
        _preds("ann", ANN_DAY_START, predicted, core=core), None, timezones=TZ
    )[0]
    assert report.flap_rate_raw == pytest.approx(4 / 5, abs=1e-6)
    assert report.flap_rate_smoothed == 0.0
    assert report.context_switches == 0 and report.segment_count == 1


def test_given_segments_are_used_when_they_cover_the_minutes():
    preds = _preds("ann", ANN_DAY_START, ["Build"] * 3 + ["Debug"] * 1 + ["Build"] * 3)
    merged = [
        Segment(
            user_id="ann",
            start_ts=ANN_DAY_START,
            end_ts=ANN_DAY_START + 7 * MIN,
            label="Build",
            bucket_count=7,
        )
    ]
    used = build_daily_reports(preds, merged, timezones=TZ)[0]
    assert [(s.label, s.bucket_count, s.mapped_label) for s in used.segments] == [
        ("Build", 7, "Deep work")
    ]
    # Segments of a different range do not cover these minutes: recomputed instead.
    other = segmentize(
        [ANN_DAY_START - timedelta(days=3)], ["Meet"], user_ids="ann", idle_gap_seconds=300
    )
    recomputed = build_daily_reports(preds, other, timezones=TZ)[0]
    assert sum(s.bucket_count for s in recomputed.segments) == 7
    assert {s.label for s in recomputed.segments} == {"Build"}  # the 1-minute Debug merged


def test_taxonomy_remaps_and_lists_every_bucket():
    tax = TaxonomyConfig(
        mixed_name="Unsure", buckets=(TaxonomyBucket(name="Code", labels=("Build", "Debug")),)
    )
    labels = ["Build"] * 4 + ["Meet"] * 4 + [MIXED_UNKNOWN] * 4
    preds = _preds("ann", ANN_DAY_START, labels).drop(columns="mapped_label")
    report = build_daily_reports(preds, None, timezones=TZ, taxonomy=tax)[0]
    assert report.minutes_by_mapped_label == {"Code": 4, "Other": 4, "Unsure": 4}
    assert [s.mapped_label for s in report.segments] == ["Code", "Other", "Unsure"]


def test_input_errors():
    preds = _preds("ann", ANN_DAY_START, ["Build", "Build"])
    with pytest.raises(InputError, match="mapped_label"):
        build_daily_reports(preds.drop(columns="mapped_label"), None)
    naive = preds.assign(bucket_start_ts=preds["bucket_start_ts"].dt.tz_localize(None))
    with pytest.raises(InputError, match="aware"):
        build_daily_reports(naive, None)
    with pytest.raises(InputError, match="twice"):
        build_daily_reports(pd.concat([preds, preds.iloc[:1]]), None)
    assert build_daily_reports(preds.iloc[:0], None) == []


def test_written_files_are_deterministic_and_roundtrip(layout):
    report = build_daily_reports(_two_users(), None, timezones=TZ)[0]
    paths = write_daily_report(layout, report, taxonomy=default_taxonomy())
    assert [p.name for p in paths] == ["daily.json", "daily.csv", "daily.parquet", "daily.png"]
    assert all(p.parent == layout.report_dir("ann", date(2026, 10, 25)) for p in paths)
    first = [p.read_bytes() for p in paths]
    again = write_daily_report(layout, build_daily_reports(_two_users(), None, timezones=TZ)[0])
    assert [p.read_bytes() for p in again[:3]] == first[:3]
    # Colors come from the taxonomy; the default taxonomy gives the same chart.
    assert again[3].read_bytes() == first[3]
    assert load_report(paths[0]) == report
    payload = json.loads(first[0])
    assert payload["report_version"] == 1 and payload["date"] == "2026-10-25"
    table = pd.read_parquet(paths[2])
    pd.testing.assert_frame_equal(table, report_table(report))
    csv = pd.read_csv(paths[1])
    assert list(csv.columns) == list(TABLE_COLUMNS)
    assert csv.loc[csv["name"] == "total_minutes", "value"].item() == 1500.0
    png = first[3]
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"Software" not in png and b"Creation" not in png
    leftovers = [p for p in paths[0].parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_report_model_is_frozen_and_versioned():
    report = build_daily_reports(_preds("ann", ANN_DAY_START, ["Build"]), None)[0]
    assert isinstance(report, DailyReport) and report.report_version == 1
    with pytest.raises(Exception, match="frozen"):
        report.total_minutes = 5  # type: ignore[misc]


# Format version 1 of daily.json as written by the first release; it must keep loading.
REPORT_V1_JSON = """{
  "context_switches": 1, "date": "2026-10-25", "day_end_utc": "2026-10-25T23:00:00Z",
  "day_start_utc": "2026-10-24T22:00:00Z", "flap_rate_raw": 0.142857,
  "flap_rate_smoothed": 0.142857, "mean_confidence": 0.65,
  "minutes_by_label": {"BreakIdle": 0, "Build": 4, "Communicate": 0, "Debug": 0, "Meet": 4,
                       "Mixed/Unknown": 0, "ReadResearch": 0, "Review": 0, "Write": 0},
  "minutes_by_mapped_label": {"Collaboration": 4, "Deep work": 4}, "model_ids": ["run-1"],
  "reject_rate": 0.0, "report_version": 1, "segment_count": 2,
  "segments": [
    {"bucket_count": 4, "end_ts": "2026-10-24T22:04:00Z", "label": "Build",
     "mapped_label": "Deep work", "start_ts": "2026-10-24T22:00:00Z"},
    {"bucket_count": 4, "end_ts": "2026-10-24T22:08:00Z", "label": "Meet",
     "mapped_label": "Collaboration", "start_ts": "2026-10-24T22:04:00Z"}],
  "switches_per_hour": 7.5, "timezone": "Europe/Warsaw", "total_minutes": 8, "user_id": "ann"
}"""


def test_report_v1_format_is_stable(tmp_path):
    path = tmp_path / "daily.json"
    path.write_text(REPORT_V1_JSON, encoding="utf-8")
    assert (
        load_report(path)
        == build_daily_reports(
            _preds("ann", ANN_DAY_START, ["Build"] * 4 + ["Meet"] * 4), None, timezones=TZ
        )[0]
    )
    path.write_text(REPORT_V1_JSON.replace('"report_version": 1', '"report_version": 9'))
    with pytest.raises(ArtifactError, match="report_version|Input should be 1"):
        load_report(path)


def _rgb(png: bytes) -> np.ndarray:
    from io import BytesIO

    from PIL import Image

    return np.asarray(Image.open(BytesIO(png)).convert("RGB"))


def _is_color(rgb: np.ndarray, color: str) -> np.ndarray:
    return (rgb == np.array([int(color[i : i + 2], 16) for i in (1, 3, 5)])).all(axis=-1)


def test_chart_timeline_lanes_are_colored_by_each_segments_label():
    from taskclf.report.plots import CORE_COLORS, render_daily_png

    # many segments, alternating all day: 15 minutes of Build, then 5 of Debug
    predicted = (["Build"] * 15 + ["Debug"] * 5) * 60
    report = build_daily_reports(_preds("ann", ANN_DAY_START, predicted), None, timezones=TZ)[0]
    assert report.segment_count == 120
    rgb = _rgb(render_daily_png(report))
    build, debug = _is_color(rgb, CORE_COLORS["Build"]), _is_color(rgb, CORE_COLORS["Debug"])
    # the label lane: the topmost band of rows showing Debug (the bars panel is further down)
    rows = np.flatnonzero(debug.any(axis=1))
    lane = rows[: int(np.argmax(np.diff(rows) > 1)) + 1]
    assert 30 < lane.size < 80
    in_lane = slice(lane[0], lane[-1] + 1)
    # 3 minutes of Build per minute of Debug, as runs of 15 and 5 (antialiased edges aside)
    ratio = build[in_lane].sum() / debug[in_lane].sum()
    assert 2.7 < ratio < 3.3
    runs = np.flatnonzero(np.diff(debug[lane[lane.size // 2]].astype(np.int8)) == 1)
    assert runs.size == 60


def test_charts_drawn_in_worker_processes_are_the_charts_drawn_here(monkeypatch):
    from taskclf.report import plots

    monkeypatch.setattr(plots, "PARALLEL_MIN_CHARTS", 4)
    labels = ["Build", "Debug", "Meet", MIXED_UNKNOWN, "ReadResearch"]
    days = [
        _preds(
            "ann",
            ANN_DAY_START + timedelta(days=d),
            [labels[(i // (5 + d)) % len(labels)] for i in range(300 + 10 * d)],
        )
        for d in range(6)
    ]
    reports = build_daily_reports(pd.concat(days, ignore_index=True), None, timezones=TZ)
    assert len(reports) == 6
    here = [plots.render_daily_png(r, taxonomy=default_taxonomy()) for r in reports]
    assert len(set(here)) == len(reports)
    spawned: list[str] = []
    real_context = plots.multiprocessing.get_context

    def context(method: str) -> object:
        spawned.append(method)
        return real_context(method)

    monkeypatch.setattr(plots.multiprocessing, "get_context", context)
    workers = list(plots.render_daily_pngs(reports, taxonomy=default_taxonomy(), workers=2))
    assert spawned == ["spawn"]  # the charts were drawn in worker processes
    assert workers == here


def test_bucket_colors_follow_the_taxonomy_then_the_core_labels_then_a_palette():
    from taskclf.infer.taxonomy import PALETTE
    from taskclf.report.plots import CORE_COLORS, mapped_colors

    # without a taxonomy, predictions map each label to itself: the same colors in both lanes
    names = ["Review", "BreakIdle", MIXED_UNKNOWN, "Build"]
    assert mapped_colors(names, None) == {n: CORE_COLORS[n] for n in names}
    taxonomy = default_taxonomy()
    colors = mapped_colors(["Deep work", "Build", "Zeta", "Alpha"], taxonomy)
    assert colors["Deep work"] == taxonomy.colors()["Deep work"]
    assert colors["Build"] == CORE_COLORS["Build"]
    assert (colors["Alpha"], colors["Zeta"]) == (PALETTE[0], PALETTE[1])


def test_chart_workers_leave_ctrl_c_to_the_parent():
    import subprocess
    import sys

    # the pool's initializer: a worker survives the SIGINT a terminal sends to the whole group
    code = (
        "import os, signal\n"
        "from taskclf.report.plots import _ignore_interrupts\n"
        "_ignore_interrupts()\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "print('still drawing')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout.strip()) == (0, "still drawing"), proc.stderr


def test_mixed_minutes_by_best_guess_in_the_report_its_table_and_chart():
    from taskclf.report.plots import CORE_COLORS, render_daily_png

    predicted = ["Write"] * 20 + [MIXED_UNKNOWN] * 40 + ["Write"] * 10
    core = ["Write"] * 20 + ["Review"] * 30 + ["Debug"] * 10 + ["Write"] * 10
    rejected = [p == MIXED_UNKNOWN for p in predicted]
    rejected[5] = True  # rejected, then smoothed into its neighbours' Write: not Mixed
    rows = _preds("bob", BOB_DAY_START, predicted, core=core, rejected=rejected)
    report = build_daily_reports(rows, None, timezones=TZ)[0]
    assert report.mixed_by_core_label == {"Debug": 10, "Review": 30}
    assert sum(report.mixed_by_core_label.values()) == report.minutes_by_label[MIXED_UNKNOWN]
    table = report_table(report)
    mixed = table[table["kind"] == "mixed_minutes"]
    assert dict(zip(mixed["name"], mixed["value"], strict=True)) == {"Debug": 10.0, "Review": 30.0}
    # the chart shows the guesses inside the Mixed/Unknown bar, in the labels' colors
    rgb = _rgb(render_daily_png(report))
    review, debug = _is_color(rgb, CORE_COLORS["Review"]), _is_color(rgb, CORE_COLORS["Debug"])
    row = int(np.argmax(review.sum(axis=1)))
    cols = np.flatnonzero(review[row])
    start, end = cols[0], cols[-1]  # Review, the larger guess, first; then Debug after it
    after = np.flatnonzero(debug[row, end + 1 :])
    assert after.size and after[0] <= 2
    run = after[: int(np.argmax(np.diff(after) > 1)) + 1] if (np.diff(after) > 1).any() else after
    assert 2.5 < (end - start + 1) / run.size < 3.5  # 30 minutes of Review, 10 of Debug
    plain = _rgb(render_daily_png(report.model_copy(update={"mixed_by_core_label": {}})))
    assert not _is_color(plain, CORE_COLORS["Review"]).any()
