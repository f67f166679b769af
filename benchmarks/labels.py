"""Label projection at scale: 1M minute rows against 100k spans.

Bar: ``project_blocks_to_windows`` (full rule: per-user scope, agnostic spans, agreement,
full coverage, object label column) takes at most 10x one plain ``np.searchsorted`` of the
same 1M row times into the same 100k sorted span starts. The plain call answers only "which
span starts last before each row"; the ratio shows the projection stays a handful of
vectorized passes, not a per-row or per-span Python loop.

Run: ``.venv/bin/python benchmarks/labels.py``
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from _common import best_of, report_bar
from taskclf.core.types import LABEL_SET_V1
from taskclf.labels.projection import project_blocks_to_windows

N_ROWS = 1_000_000
N_SPANS = 100_000
N_USERS = 10
BAR_RATIO = 10.0
T0_US = 1_767_225_600_000_000  # 2026-01-01T00:00Z
MINUTE_US = 60_000_000


def _data(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    per_user = N_ROWS // N_USERS
    users = np.repeat([f"user{i:02d}" for i in range(N_USERS)], per_user)
    minutes = np.tile(np.arange(per_user, dtype=np.int64), N_USERS)
    rows = pd.DataFrame(
        {
            "user_id": users,
            "bucket_start_ts": pd.to_datetime(T0_US + minutes * MINUTE_US, unit="us", utc=True),
        }
    )
    # Per user: disjoint spans tiling ~70% of its minutes; 2% of spans are user-agnostic.
    spans_per_user = N_SPANS // N_USERS
    gaps = rng.integers(0, 4, size=(N_USERS, spans_per_user))
    lengths = rng.integers(1, 15, size=(N_USERS, spans_per_user))
    starts = np.cumsum(gaps + lengths, axis=1) - lengths
    starts_us = T0_US + (starts * MINUTE_US + rng.integers(0, 60, starts.shape) * 1_000_000)
    ends_us = starts_us + lengths * MINUTE_US
    span_users = np.repeat([f"user{i:02d}" for i in range(N_USERS)], spans_per_user).astype(object)
    span_users[rng.random(N_SPANS) < 0.02] = None
    spans = pd.DataFrame(
        {
            "start_ts": pd.to_datetime(starts_us.ravel(), unit="us", utc=True),
            "end_ts": pd.to_datetime(ends_us.ravel(), unit="us", utc=True),
            "label": np.asarray(LABEL_SET_V1, dtype=object)[rng.integers(0, 8, N_SPANS)],
            "user_id": span_users,
        }
    )
    return rows, spans


def main() -> int:
    rows, spans = _data()
    row_us = rows["bucket_start_ts"].dt.tz_localize(None).to_numpy("datetime64[us]").view("i8")
    starts_sorted = np.sort(spans["start_ts"].dt.tz_localize(None).to_numpy("datetime64[us]"))
    starts_sorted = starts_sorted.view("i8")

    t0 = time.perf_counter()
    out = project_blocks_to_windows(rows, spans)
    first = time.perf_counter() - t0
    labeled = int(out["label"].notna().sum())
    t_proj = best_of(lambda: project_blocks_to_windows(rows, spans), repeat=3)
    t_plain = best_of(lambda: np.searchsorted(starts_sorted, row_us, side="right"), repeat=5)
    ratio = t_proj / t_plain
    print(
        f"projection of {N_ROWS:,} rows x {N_SPANS:,} spans ({N_USERS} users): "
        f"{t_proj * 1000:.0f} ms (first call {first * 1000:.0f} ms), {labeled:,} rows labeled; "
        f"plain searchsorted {t_plain * 1000:.1f} ms; ratio {ratio:.1f}"
    )
    ok = report_bar("labels.projection_vs_searchsorted", ratio, BAR_RATIO)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
