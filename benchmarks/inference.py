"""Inference bars (DESIGN §7): batch end to end vs bare predict; online minute vs one predict.

Setup (in a temp home): synthetic ActivityWatch exports of 6 users x 7 days (one per
archetype) are ingested, features built, labels imported, and the product's own commands train
a LightGBM model (default rounds with early stopping), fit per-user calibrators, tune per-user
reject thresholds (the inference policy) and write the default taxonomy — every inference step
does real work. The home's title secret is fixed (:data:`BENCH_SECRET`), so every run trains
the same model and runs compare.

Batch: the users' real feature rows are tiled forward in time (each copy shifted by whole
weeks, user ids kept, so per-user calibration, thresholds and smoothing run over long series)
to 100k and 1M rows. Bar: ``run_pipeline`` (encode → predict → calibrate per user → reject →
smooth → segments → taxonomy; the records' JSON probability strings and the ``Segment``
objects are built lazily when first used, and timed separately, for information) <= 1.5x a
bare ``booster.predict`` of the same encoded matrix, same thread count. The pipeline encodes
and predicts in row chunks (``MatrixEncoder.iter_chunks``); the bare predict gets the whole
matrix, encoded beforehand.

Online (DESIGN §7: "one closed minute from raw events to the written record"): one user's
busiest day of raw ActivityWatch events (the synthetic export), cut into polls by start
minute; then minute by minute what ``OnlineLoop`` does: add the minute's raw events
(``FeatureState.add_buckets``: normalized straight into the typed event buffer, title
features cached across polls as the loop does), close the minute into the model's input row
(``close_until_vectors``: the compiled one-minute kernel), ``OnlinePredictor.predict_vector``
(the compiled ``Forest``, calibration and reject, smoothing, taxonomy), ``flush_idle``, and
write the records with the loop's ``OnlineRecordWriter`` (one ``os.write`` per call on a
descriptor kept open). The loop fsyncs every ``DEFAULT_ONLINE_FSYNC_MINUTES`` minutes of
records, ten minutes of wall time apart; replayed back to back they would come every few
milliseconds and the device's writeback slows the minutes after each (measured, also with
the fsync on another thread), so the timed replay fsyncs after its minutes, and the fsync's
own cost and the minutes with the fsyncs inline are printed beside. Bar: p50 of that <= 3x the
p50 of a bare single-row ``booster.predict(num_threads=1)`` on the same model, of the rows
those minutes produced, each once in order (after one pass to warm up), timed right after
the minutes; of five such rounds, the median ratio. For information:
the parts, the minute without its events (close to write), the same minutes with LightGBM's
own prepared single-row call instead of the compiled forest, and the single-row predict
measured two other ways (each row five times in a row; in the loop's place, right after the
minute's events and close).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from _common import best_of, report_bar, warm_memory
from taskclf.adapters.activitywatch._store import load_events
from taskclf.adapters.activitywatch.export import AWEvent, ParsedBucket, parse_export, to_us
from taskclf.cli.main import run
from taskclf.core.config import Config, load_or_create_title_secret, save_config
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
from taskclf.synthetic.generator import export_path, generate_dataset

USERS, DAYS = 6, 7
FIRST = date(2026, 1, 5)
SIZES = (100_000, 1_000_000)
BATCH_BAR = 1.5
ONLINE_BAR = 3.0
ONLINE_REPEATS = 5
MINUTE_US = 60_000_000


def from_us(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1e6, tz=UTC)


def _cli(home: Path, *args: str) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        code = run(["--home", str(home), *args])
    if code != 0:
        raise SystemExit(f"taskclf {' '.join(args)} failed with exit code {code}")


BENCH_SECRET = hashlib.sha256(b"taskclf inference benchmark").digest()


def build_home(root: Path) -> tuple[Layout, dict[str, str]]:
    """Synthetic data → ingest → features → labels → train → calibrate → policy → taxonomy."""
    t0 = time.perf_counter()
    dataset = generate_dataset(root / "synth", users=USERS, days=DAYS, seed=0)
    layout = Layout.resolve(root / "home")
    zones = {u.user_id: u.timezone for u in dataset.users}
    save_config(layout, Config(user_id=dataset.users[0].user_id, user_timezones=zones))
    # A fixed title secret: the per-install random one keys the title sketches, so each setup
    # trained another model (456 to 760 trees seen) and runs were not comparable.
    layout.title_secret.write_text(BENCH_SECRET.hex() + "\n", encoding="ascii")
    os.chmod(layout.title_secret, 0o600)
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


def busiest_day(layout: Layout, zones: dict[str, str]) -> tuple[str, int, int]:
    """The user and UTC day (start, end in µs) with the most ingested events."""
    best: tuple[int, str, int, int] | None = None
    for user in sorted(zones):
        for offset in range(DAYS):
            start, end = date_range_utc(
                FIRST + timedelta(days=offset), FIRST + timedelta(days=offset)
            )
            n = len(load_events(layout, user, start, end))
            if best is None or n > best[0]:
                best = (n, user, to_us(start), to_us(end))
    assert best is not None
    return best[1], best[2], best[3]


def minute_polls(export: Path, lo: int, hi: int) -> dict[int, list[ParsedBucket]]:
    """The export's raw events starting in ``[lo, hi)``, by start minute (µs), as buckets."""
    buckets = parse_export(export).buckets
    out: dict[int, list[ParsedBucket]] = {}
    for m in sorted({e.start_us // MINUTE_US for b in buckets for e in b.events}):
        if lo <= m * MINUTE_US < hi:
            out[m * MINUTE_US] = []
    for bucket in buckets:
        by: dict[int, list[AWEvent]] = {}
        for e in bucket.events:
            key = e.start_us // MINUTE_US * MINUTE_US
            if key in out:
                by.setdefault(key, []).append(e)
        for key, events in by.items():
            out[key].append(
                ParsedBucket(bucket.bucket_id, bucket.bucket_type, bucket.hostname, tuple(events))
            )
    return out


@dataclass
class _Minutes:
    costs: list[float]  # per minute with a row: raw events to written record (s)
    parts: dict[str, list[float]]
    rows: list[np.ndarray]  # the model input row of each such minute
    fsyncs: int


def _online_minutes(
    polls: dict[int, list[ParsedBucket]],
    minutes: range,
    new_state: Callable[[], FeatureState],
    predictor: OnlinePredictor,
    user: str,
    secret: bytes,
    *,
    fsync_inline: bool = False,
) -> _Minutes:
    """What the online loop does for each minute, timed (see the module docstring).

    The loop's fsync every ``DEFAULT_ONLINE_FSYNC_MINUTES`` minutes of records runs inline
    only with ``fsync_inline``; otherwise once, after the timed minutes.
    """
    state, titles = new_state(), {}
    every = DEFAULT_ONLINE_FSYNC_MINUTES if fsync_inline else 10**9
    writer = OnlineRecordWriter(Path(tempfile.mkdtemp()) / "online.jsonl", fsync_every=every)
    out = _Minutes([], {"events": [], "close": [], "predict": [], "write": []}, [], 0)
    for minute in minutes:
        t0 = time.perf_counter()
        poll = polls.get(minute)
        if poll:  # the raw events of this minute, as a poll fetches them
            state.add_buckets(poll, secret=secret, titles=titles)
        t1 = time.perf_counter()
        until = from_us(minute + MINUTE_US)
        rows = state.close_until_vectors(until, predictor.plan)
        t2 = time.perf_counter()
        records = [r for start, x in rows for r in predictor.predict_vector(user, start, x)]
        records += predictor.flush_idle(until)
        t3 = time.perf_counter()
        writer.write(records)
        t4 = time.perf_counter()
        if rows:
            out.costs.append(t4 - t0)
            for key, took in zip(out.parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
                out.parts[key].append(took)
            out.rows.append(rows[0][1].copy())
    writer.close()
    out.fsyncs = writer.fsyncs
    return out


def bench_online(
    layout: Layout, zones: dict[str, str], exports: dict[str, Path], config: PipelineConfig
) -> bool:
    user, lo, hi = busiest_day(layout, zones)
    polls = minute_polls(exports[user], lo, hi)
    secret = load_or_create_title_secret(layout)

    def new_state() -> FeatureState:
        return FeatureState(
            user_id=user, device_id=None, timezone=zones[user], schema_version=config.schema_version
        )

    minutes = range(min(polls), max(polls) + 15 * MINUTE_US, MINUTE_US)
    booster = config.booster
    assert booster is not None
    # The machines are shared and noisy, and the two timings of a ratio come from different
    # seconds: each of ONLINE_REPEATS rounds times the day's minutes, then the bare predict of
    # their rows right after; the bar is the median of the rounds' ratios.
    rounds = []
    for _ in range(ONLINE_REPEATS):
        predictor = OnlinePredictor(config)
        run = _online_minutes(polls, minutes, new_state, predictor, user, secret)
        xs = [x.reshape(1, -1) for x in run.rows]
        for x in xs:  # a pass to warm up, as the minute's loop did
            booster.predict(x, num_threads=1)
        singles = [_timed(lambda x=x: booster.predict(x, num_threads=1)) for x in xs]
        ratio = np.percentile(run.costs, 50) / np.percentile(singles, 50)
        rounds.append((ratio, run, singles))
    rounds.sort(key=lambda r: r[0])
    ratios = [r[0] for r in rounds]
    _, run, singles = rounds[len(rounds) // 2]
    inline = _online_minutes(
        polls, minutes, new_state, OnlinePredictor(config), user, secret, fsync_inline=True
    )
    fsync_s = _fsync_cost(DEFAULT_ONLINE_FSYNC_MINUTES)
    with _lightgbm_single_row():
        c_path = _online_minutes(polls, minutes, new_state, OnlinePredictor(config), user, secret)
    xs = [x.reshape(1, -1) for x in run.rows]
    repeated = [_timed(lambda x=x: booster.predict(x, num_threads=1)) for x in xs for _ in range(5)]
    model = predictor._model
    assert model is not None
    compiled = [_timed(lambda x=x: model.predict(x)) for x in xs]
    in_loop: list[float] = []  # the same predict where the minute's predict runs (a replay)
    state = new_state()
    for minute in minutes:
        poll = polls.get(minute)
        if poll:
            state.add_buckets(poll, secret=secret, titles={})
        for _, x in state.close_until_vectors(from_us(minute + MINUTE_US), predictor.plan):
            x1 = x.reshape(1, -1).copy()
            in_loop.append(_timed(lambda x=x1: booster.predict(x, num_threads=1)))
    minute_ms = np.percentile(run.costs, [50, 99]) * 1e3
    single_ms = np.percentile(singles, [50, 99]) * 1e3
    print(
        f"online, user {user}, {len(run.costs)} minutes with a row, {booster.num_trees()} trees: "
        f"one minute from its raw events to the written record p50 {minute_ms[0]:.3f} ms, "
        f"p99 {minute_ms[1]:.3f} ms; bare single-row predict of those rows (each once, in "
        f"order) p50 {single_ms[0]:.3f} ms, p99 {single_ms[1]:.3f} ms"
    )
    medians = {k: float(np.median(v)) * 1e3 for k, v in run.parts.items()}
    print(
        "(information) per-minute parts, median ms: add the minute's raw events "
        f"{medians['events']:.3f}, close the minute into the model row {medians['close']:.3f}, "
        f"predict_vector + flush_idle {medians['predict']:.3f}, write {medians['write']:.3f}"
    )
    inline_ms = np.percentile(inline.costs, [50, 99]) * 1e3
    print(
        f"(information) the loop fsyncs every {DEFAULT_ONLINE_FSYNC_MINUTES} minutes of "
        f"records: one such fsync {fsync_s * 1e3:.3f} ms here "
        f"({fsync_s * 1e3 / DEFAULT_ONLINE_FSYNC_MINUTES:.3f} ms a minute on average). "
        "The timed replay runs "
        "the day's minutes back to back, where the fsyncs, ten minutes of wall time apart in "
        "the loop, would come every few milliseconds and slow the minutes after them (the "
        "device's writeback; measured: the same after handing the fsync to another thread), "
        "so they run after the timed minutes. With them inline, as replayed back to back: p50 "
        f"{inline_ms[0]:.3f} ms ({inline_ms[0] / single_ms[0]:.2f}x), p99 {inline_ms[1]:.3f} ms "
        f"({inline.fsyncs} fsyncs)"
    )
    print(
        f"(information) the {ONLINE_REPEATS} rounds' ratios: "
        + ", ".join(f"{r:.2f}" for r in ratios)
        + " (the bar takes the median round, whose timings are shown)"
    )
    ok = report_bar(
        "online minute p50 / single-row predict p50", minute_ms[0] / single_ms[0], ONLINE_BAR
    )
    parts = run.parts
    from_row = np.percentile(np.sum([parts[k] for k in parts if k != "events"], axis=0), 50)
    c_ms = np.percentile(c_path.costs, 50) * 1e3
    print(
        "(information) online minute p99 / single-row predict p99: "
        f"{minute_ms[1] / single_ms[1]:.2f}; the minute without its events (close to write) "
        f"p50 {from_row * 1e3:.3f} ms; with LightGBM's prepared single-row call instead of "
        f"the compiled forest p50 {c_ms:.3f} ms ({c_ms / single_ms[0]:.2f}x); the compiled "
        f"forest alone p50 {np.median(compiled) * 1e3:.3f} ms; bare single-row predict p50 "
        f"measured other ways: each row 5 times in a row {np.median(repeated) * 1e3:.3f} ms, "
        f"in the loop's place (after the minute's events and close) "
        f"{np.median(in_loop) * 1e3:.3f} ms"
    )
    return ok


@contextlib.contextmanager
def _lightgbm_single_row() -> Iterator[None]:
    """Predictors built meanwhile use LightGBM's prepared C call, not the compiled forest."""
    from taskclf.infer import _fast_predict

    original = _fast_predict.Forest.from_booster
    _fast_predict.Forest.from_booster = classmethod(lambda cls, *a, **k: None)
    try:
        yield
    finally:
        _fast_predict.Forest.from_booster = original


def _fsync_cost(minutes: int, repeats: int = 5) -> float:
    """Median time of an fsync of a day file after ``minutes`` records were appended."""
    line = b'{"user_id":"user-02","bucket_start_ts":"2026-01-06T09:00:00+00:00"}' * 4 + b"\n"
    took = []
    with tempfile.TemporaryDirectory() as tmp:
        fd = os.open(Path(tmp) / "online.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            for _ in range(repeats):
                for _ in range(minutes):
                    os.write(fd, line)
                t0 = time.perf_counter()
                os.fsync(fd)
                took.append(time.perf_counter() - t0)
        finally:
            os.close(fd)
    return float(np.median(took))


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    if not warm_memory(8.0):
        print("(glibc did not take the memory settings: timings include first touches)")
    with tempfile.TemporaryDirectory(prefix="taskclf-bench-infer-") as tmp:
        layout, zones = build_home(Path(tmp))
        settings = resolve_settings(layout)
        batch_config = load_pipeline_config(settings)
        online_config = load_pipeline_config(settings, num_threads=1)
        last = FIRST + timedelta(days=DAYS)
        features = load_features(layout, FIRST - timedelta(days=1), last)
        print(f"base: {len(features):,} feature rows of {features['user_id'].nunique()} users")
        exports = {u: export_path(Path(tmp) / "synth", u) for u in zones}
        ok = bench_online(layout, zones, exports, online_config)
        ok &= bench_batch(features, batch_config)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
