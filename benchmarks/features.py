"""Feature building is linear: 10x the events costs <= 12x the time (DESIGN §7).

Events are the real Ania export (window events + AFK CSV, normalized with a fixed secret),
tiled forward in time (each copy shifted by the data's span rounded up to whole days) until
there are 1M events; the 10k / 100k / 1M inputs are the first N events of that stream.
Prints build time per 1k events at each size (the best of 3 builds, and the slowest for
information), the two 10x ratios as bars, and, for information, the online cost of closing one
minute with ``FeatureState``. Memory is warmed and kept in the process first
(``_common.warm_memory``), so the bars measure the algorithm, not this VM's cost of backing
fresh memory: the 1M build writes a 1.4 GB frame, and on fresh memory that alone cost 2-5 s of
kernel time, which made the 1000k/100k ratio flap between 9.8 and 17.
"""

from __future__ import annotations

import itertools
import sys
import time
from datetime import timedelta

import numpy as np
import pandas as pd

from _common import REAL_DATA, report_bar, warm_memory
from taskclf.adapters.activitywatch.events import normalize_buckets
from taskclf.adapters.activitywatch.export import parse_afk_csv, parse_export
from taskclf.features.build import build_features
from taskclf.infer.feature_state import FeatureState

SIZES = (10_000, 100_000, 1_000_000)
BAR = 12.0
REPEAT = 3
KW = {"user_id": "bench", "device_id": "dev", "timezone": "Europe/Warsaw"}


def base_events() -> pd.DataFrame:
    parsed = parse_export(REAL_DATA / "aw_twd_ania_window_export.json")
    afk = parse_afk_csv(REAL_DATA / "aw_twd_ania_afk.csv", bucket_id="aw-watcher-afk_bench")
    return normalize_buckets([*parsed.buckets, afk], secret=b"benchmark-secret" * 2)


def tiled(base: pd.DataFrame, n: int) -> pd.DataFrame:
    span = base["end_ts"].max() - base["start_ts"].min()
    shift = pd.Timedelta(days=int(np.ceil(span / pd.Timedelta(days=1))) + 1)
    copies = []
    total = 0
    k = 0
    while total < n:
        c = base.copy()
        c["start_ts"] = c["start_ts"] + shift * k
        c["end_ts"] = c["end_ts"] + shift * k
        c["event_id"] = c["event_id"] + f"-{k}"
        copies.append(c)
        total += len(c)
        k += 1
    out = pd.concat(copies, ignore_index=True)
    return (
        out.sort_values(["start_ts", "event_id"], kind="mergesort").head(n).reset_index(drop=True)
    )


def online_minute_ms(events: pd.DataFrame, *, records: bool) -> float:
    """Median ms to close one minute that has a row (events of the busiest day)."""
    day = events["start_ts"].dt.floor("D").value_counts().idxmax()
    ev = events[(events["start_ts"] >= day) & (events["start_ts"] < day + pd.Timedelta(days=1))]
    state = FeatureState(**KW)
    state.add_events(ev)
    t = day.to_pydatetime()
    times = []
    for _ in range(24 * 60):
        t = t + timedelta(minutes=1)
        t0 = time.perf_counter()
        rows = state.close_until_records(t) if records else state.close_until(t)
        if len(rows):
            times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000) if times else float("nan")


def timed_builds(events: pd.DataFrame, repeat: int) -> tuple[float, float, int, float]:
    """Best wall seconds and best process-CPU seconds of ``repeat`` builds, the rows, and the
    slowest wall seconds (for information: the first build at a new size touches memory the
    process has not used yet)."""
    wall, cpu, rows, slowest = float("inf"), float("inf"), 0, 0.0
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        rows = len(build_features(events, **KW))
        wall = min(wall, time.perf_counter() - w0)
        slowest = max(slowest, time.perf_counter() - w0)
        cpu = min(cpu, time.process_time() - c0)
    return wall, cpu, rows, slowest


def main() -> int:
    if not warm_memory(6.0):
        print("(glibc did not take the memory settings: timings include first touches)")
    base = base_events()
    print(f"base: {len(base)} normalized events (window + AFK), tiled to {SIZES[-1]:,}")
    stream = tiled(base, SIZES[-1])
    seconds: dict[int, float] = {}
    cpu: dict[int, float] = {}
    for n in SIZES:
        ev = stream.head(n)
        # every size is timed the same way: the best of REPEAT builds
        seconds[n], cpu[n], rows, slowest = timed_builds(ev, REPEAT)
        print(
            f"{n:>9,} events: {seconds[n]:.3f} s  ({seconds[n] / n * 1000 * 1000:.3f} ms per 1k "
            f"events, {rows} rows, best of {REPEAT}; process CPU {cpu[n]:.3f} s; slowest "
            f"{slowest:.3f} s)",
            flush=True,
        )
    ok = True
    for small, big in itertools.pairwise(SIZES):
        ok &= report_bar(
            f"features {big // 1000}k/{small // 1000}k time", seconds[big] / seconds[small], BAR
        )
    print(
        "information (process CPU time: no waiting for a core, but still page-fault and "
        "memory-bandwidth stalls): "
        + ", ".join(
            f"{big // 1000}k/{small // 1000}k CPU {cpu[big] / cpu[small]:.2f}x"
            for small, big in itertools.pairwise(SIZES)
        )
    )
    frame_ms = online_minute_ms(base, records=False)
    record_ms = online_minute_ms(base, records=True)
    print(
        f"online (information): closing one minute takes {frame_ms:.2f} ms median as a frame, "
        f"{record_ms:.2f} ms as a record"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
