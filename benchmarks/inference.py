"""Inference bars (DESIGN §7): batch end to end vs bare predict; online minute vs one predict.

Setup (in a temp home): synthetic ActivityWatch exports of 6 users x 7 days (one per
archetype) are ingested, features built, labels imported, and the product's own commands train
a LightGBM model (default rounds with early stopping), fit per-user calibrators, tune per-user
reject thresholds (the inference policy) and write the default taxonomy — every inference step
does real work.

Batch: the users' real feature rows are tiled forward in time (each copy shifted by whole
weeks, user ids kept, so per-user calibration, thresholds and smoothing run over long series)
to 100k and 1M rows. Bar: ``run_pipeline`` (encode → predict → calibrate per user → reject →
smooth → segments → taxonomy; the records' JSON probability strings and the ``Segment``
objects are built lazily when first used, and timed separately, for information) <= 1.5x a
bare ``booster.predict`` of the same encoded matrix, same thread count. The pipeline encodes
and predicts in row chunks (``MatrixEncoder.iter_chunks``); the bare predict gets the whole
matrix, encoded beforehand.

Online: one user's busiest day of ingested events is added to a ``FeatureState``; then minute
by minute exactly what ``OnlineLoop.poll_once`` does per closed minute: close the minute
(``close_until_records``), ``OnlinePredictor.predict_row`` (LightGBM's prepared single-row
path), ``flush_idle``, and write the records to the JSONL log with the loop's
``OnlineRecordWriter`` (one ``os.write`` per call on a descriptor kept open; an fsync every
``DEFAULT_ONLINE_FSYNC_MINUTES`` minutes of records, so most minutes have none and the p99
includes the ones that do). Bar: p50 of that <= 3x the p50 of a bare single-row
``booster.predict(num_threads=1)`` on the same model; p99s are printed too, as are the
per-minute parts, how often the log was fsynced, and the per-minute share of fetching work
(normalize + ``add_events`` of one minute's events).
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from _common import best_of, report_bar
from taskclf.adapters.activitywatch._store import load_events
from taskclf.cli.main import run
from taskclf.core.config import Config, save_config
from taskclf.core.defaults import DEFAULT_ONLINE_FSYNC_MINUTES
from taskclf.core.paths import Layout
from taskclf.core.time import date_range_utc
from taskclf.features.build import load_features
from taskclf.infer.feature_state import FeatureState
from taskclf.infer.online import OnlinePredictor
from taskclf.infer.pipeline import (
    PipelineConfig,
    run_pipeline,
    run_pipeline_from_probs,
)
from taskclf.infer.prediction import OnlineRecordWriter
from taskclf.infer.resolve import load_pipeline_config, resolve_settings
from taskclf.infer.smooth import segments_from_table
from taskclf.synthetic.generator import generate_dataset

USERS, DAYS = 6, 7
FIRST = date(2026, 1, 5)
SIZES = (100_000, 1_000_000)
BATCH_BAR = 1.5
ONLINE_BAR = 3.0


def _cli(home: Path, *args: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        code = run(["--home", str(home), *args])
    if code != 0:
        raise SystemExit(f"taskclf {' '.join(args)} failed with exit code {code}")


def build_home(root: Path) -> tuple[Layout, dict[str, str]]:
    """Synthetic data → ingest → features → labels → train → calibrate → policy → taxonomy."""
    t0 = time.perf_counter()
    dataset = generate_dataset(root / "synth", users=USERS, days=DAYS, seed=0)
    layout = Layout.resolve(root / "home")
    zones = {u.user_id: u.timezone for u in dataset.users}
    save_config(layout, Config(user_id=dataset.users[0].user_id, user_timezones=zones))
    for user in dataset.users:
        _cli(
            layout.home, "ingest", "aw", "--input", str(user.export_path), "--user-id", user.user_id
        )
    first, last = FIRST - timedelta(days=1), FIRST + timedelta(days=DAYS)
    _cli(layout.home, "features", "build", "--from", first.isoformat(), "--to", last.isoformat())
    _cli(layout.home, "labels", "import", str(dataset.labels_csv))
    span = ("--from", FIRST.isoformat(), "--to", (last - timedelta(days=1)).isoformat())
    _cli(layout.home, "train", "lgbm", *span)
    _cli(layout.home, "train", "calibrate", *span, "--min-days", "1")
    _cli(layout.home, "train", "tune-reject", *span, "--write-policy")
    _cli(layout.home, "taxonomy", "init")
    took = time.perf_counter() - t0
    print(f"setup: {USERS} users x {DAYS} days trained and calibrated in {took:.0f} s")
    return layout, zones


def tiled(base: pd.DataFrame, n: int) -> pd.DataFrame:
    """``n`` rows: copies of ``base`` shifted by whole weeks (same users, longer series)."""
    span = base["bucket_start_ts"].max() - base["bucket_start_ts"].min()
    weeks = int(np.ceil(span / pd.Timedelta(days=7))) + 1
    copies = -(-n // len(base))
    parts = []
    for k in range(copies):
        part = base.copy()
        part["bucket_start_ts"] = part["bucket_start_ts"] + pd.Timedelta(days=7 * weeks * k)
        parts.append(part)
    return pd.concat(parts, ignore_index=True).head(n)


def bench_batch(features: pd.DataFrame, config: PipelineConfig) -> bool:
    ok = True
    booster = config.booster
    assert booster is not None
    encoder = config.encoder()
    for n in SIZES:
        frame = tiled(features, n)
        repeat = 2  # best of two even at 1M: the machines are shared and noisy
        t_encode = best_of(lambda f=frame: encoder.encode_frame(f), repeat=repeat)
        matrix = encoder.encode_frame(frame)
        raw = np.zeros(0)

        def bare(m: np.ndarray = matrix) -> None:
            nonlocal raw
            raw = np.asarray(booster.predict(m), dtype=np.float64)

        t_bare = best_of(bare, repeat=repeat)
        del matrix
        result = None

        def e2e(f: pd.DataFrame = frame) -> None:
            nonlocal result
            result = run_pipeline(f, config)

        t_e2e = best_of(e2e, repeat=repeat)
        assert result is not None
        t_after = best_of(lambda f=frame, p=raw: run_pipeline_from_probs(f, p, config), repeat)
        records = result.records
        table = result.segment_table
        t_segments = best_of(lambda t=table: segments_from_table(t), repeat=repeat)
        t0 = time.perf_counter()
        rendered = result.predictions
        t_json = time.perf_counter() - t0
        print(
            f"{n:>9,} rows: bare predict {t_bare:.2f} s, run_pipeline {t_e2e:.2f} s "
            f"({len(rendered):,} records, {len(result.segments):,} segments)",
            flush=True,
        )
        print(
            f"  (information) encode {t_encode:.2f} s; the steps after the model "
            f"{t_after:.2f} s; lazily, not in the bar: Segment objects {t_segments:.2f} s, "
            f"the records' probability JSON {t_json:.2f} s",
            flush=True,
        )
        ok &= report_bar(
            f"batch {n // 1000}k rows: pipeline / bare predict", t_e2e / t_bare, BATCH_BAR
        )
        del frame, result, records, rendered, raw
    return ok


def busiest_day(layout: Layout, zones: dict[str, str]) -> tuple[str, pd.DataFrame]:
    best: tuple[int, str, pd.DataFrame] | None = None
    for user in sorted(zones):
        for offset in range(DAYS):
            start, end = date_range_utc(
                FIRST + timedelta(days=offset), FIRST + timedelta(days=offset)
            )
            events = load_events(layout, user, start, end)
            if best is None or len(events) > best[0]:
                best = (len(events), user, events)
    assert best is not None
    return best[1], best[2]


def bench_online(layout: Layout, zones: dict[str, str], config: PipelineConfig) -> bool:
    user, events = busiest_day(layout, zones)
    state = FeatureState(
        user_id=user, device_id=None, timezone=zones[user], schema_version=config.schema_version
    )
    predictor = OnlinePredictor(config)
    writer = OnlineRecordWriter(
        Path(tempfile.mkdtemp()) / "online.jsonl", fsync_every=DEFAULT_ONLINE_FSYNC_MINUTES
    )
    by_minute = {k: g for k, g in events.groupby(events["start_ts"].dt.floor("min"), sort=True)}
    minute = min(by_minute).to_pydatetime()
    end = events["end_ts"].max().ceil("min").to_pydatetime() + timedelta(minutes=10)
    costs: list[float] = []
    adds: list[float] = []
    parts: dict[str, list[float]] = {"close": [], "predict": [], "write": []}
    rows_seen = []
    while minute < end:
        chunk = by_minute.get(pd.Timestamp(minute))
        t0 = time.perf_counter()
        if chunk is not None:  # what a poll fetched: the events that started in this minute
            state.add_events(chunk)
            adds.append(time.perf_counter() - t0)
        minute += timedelta(minutes=1)
        t0 = time.perf_counter()
        rows = state.close_until_records(minute)
        t1 = time.perf_counter()
        records = [r for row in rows for r in predictor.predict_row(row)]
        records += predictor.flush_idle(minute)
        t2 = time.perf_counter()
        writer.write(records)
        t3 = time.perf_counter()
        if rows:
            costs.append(t3 - t0)
            parts["close"].append(t1 - t0)
            parts["predict"].append(t2 - t1)
            parts["write"].append(t3 - t2)
            rows_seen.append(rows[0])
    writer.close()
    booster = config.booster
    assert booster is not None
    encoder = config.encoder()
    singles: list[float] = []
    for row in rows_seen:
        x = encoder.encode_row(row)
        for _ in range(5):
            t0 = time.perf_counter()
            booster.predict(x, num_threads=1)
            singles.append(time.perf_counter() - t0)
    minute_ms = np.percentile(costs, [50, 99]) * 1e3
    single_ms = np.percentile(singles, [50, 99]) * 1e3
    print(
        f"online, user {user}, {len(costs)} minutes with a row, {booster.num_trees()} trees: "
        f"per minute p50 {minute_ms[0]:.3f} ms, p99 {minute_ms[1]:.3f} ms; single-row predict "
        f"p50 {single_ms[0]:.3f} ms, p99 {single_ms[1]:.3f} ms"
    )
    medians = {k: float(np.median(v)) * 1e3 for k, v in parts.items()}
    print(
        "(information) per-minute parts, median ms: "
        f"close minute {medians['close']:.3f}, predict_row + flush_idle {medians['predict']:.3f}, "
        f"write {medians['write']:.3f} (mean {np.mean(parts['write']) * 1e3:.3f} with the "
        f"fsyncs: {writer.fsyncs} over {len(costs)} minutes, one per "
        f"{DEFAULT_ONLINE_FSYNC_MINUTES} minutes of records and at close); outside the bar: "
        f"add_events of one minute's new events {np.median(adds) * 1e3:.3f}"
    )
    ok = report_bar(
        "online minute p50 / single-row predict p50", minute_ms[0] / single_ms[0], ONLINE_BAR
    )
    print(
        "(information) online minute p99 / single-row predict p99: "
        f"{minute_ms[1] / single_ms[1]:.2f}"
    )
    return ok


def warm_memory(gigabytes: float = 8.0) -> None:
    """Touch memory once so timings do not include first-touch page backing.

    As in ``benchmarks/features.py``: on these VMs the first touch of guest memory costs about
    0.5 s/GB, which would be charged to whichever step first reaches a new peak (the 1M run).
    """
    block = np.ones(int(gigabytes * 1e9 / 8))
    del block


def main() -> int:
    warm_memory()
    with tempfile.TemporaryDirectory(prefix="taskclf-bench-infer-") as tmp:
        layout, zones = build_home(Path(tmp))
        settings = resolve_settings(layout)
        batch_config = load_pipeline_config(settings)
        online_config = load_pipeline_config(settings, num_threads=1)
        last = FIRST + timedelta(days=DAYS)
        features = load_features(layout, FIRST - timedelta(days=1), last)
        print(f"base: {len(features):,} feature rows of {features['user_id'].nunique()} users")
        ok = bench_online(layout, zones, online_config)
        ok &= bench_batch(features, batch_config)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
