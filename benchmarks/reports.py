"""Daily reports: what writing many reports costs, drawn here and in worker processes.

No DESIGN §7 bar covers reports; this prints information for ``infer batch`` and
``report daily`` over many user-days (a study or a team), where the PNG chart is most of the
cost (about 0.2 s a chart, against about 12 µs a minute for the whole pipeline).

Input: 64 synthetic user-days of predictions, each a workday of about 35 segments (as in the
real Ania export), written once with one process and once with the default workers
(:func:`taskclf.report.plots.chart_workers`). The outputs are checked to be the same bytes.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from taskclf.core.paths import Layout
from taskclf.core.types import LABEL_SET_V1
from taskclf.infer.taxonomy import default_taxonomy, map_labels
from taskclf.report import plots
from taskclf.report.daily import DailyReport, build_daily_reports
from taskclf.report.daily_files import write_daily_reports

USERS, DAYS = 8, 8
FIRST = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def predictions(seed: int = 0) -> pd.DataFrame:
    """A workday per user and day: runs of 5-30 minutes of random labels, 8 to 16 hours."""
    rng = np.random.default_rng(seed)
    frames = []
    for u in range(USERS):
        for d in range(DAYS):
            labels: list[str] = []
            minutes = int(rng.integers(8 * 60, 16 * 60))
            while len(labels) < minutes:
                labels += [str(rng.choice(LABEL_SET_V1))] * int(rng.integers(5, 30))
            labels = labels[:minutes]
            frames.append(
                pd.DataFrame(
                    {
                        "user_id": f"user-{u:02d}",
                        "bucket_start_ts": pd.date_range(
                            FIRST + timedelta(days=d), periods=minutes, freq="min"
                        ),
                        "core_label": labels,
                        "confidence": 0.8,
                        "is_rejected": False,
                        "predicted_label": labels,
                        "mapped_label": map_labels(labels, default_taxonomy()),
                        "core_probs": "[0.125,0.125,0.125,0.125,0.125,0.125,0.125,0.125]",
                        "model_id": "bench",
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


def timed_write(reports: list[DailyReport], workers: int) -> tuple[float, list[bytes]]:
    """Seconds to write the reports to a new home, and the chart bytes."""
    layout = Layout.resolve(Path(tempfile.mkdtemp(prefix="taskclf-bench-reports-")))
    t0 = time.perf_counter()
    written = write_daily_reports(layout, reports, workers=workers)
    seconds = time.perf_counter() - t0
    return seconds, [paths[3].read_bytes() for paths in written]


def main() -> int:
    reports = build_daily_reports(predictions(), None)
    segments = np.mean([r.segment_count for r in reports])
    t0 = time.perf_counter()
    for r in reports[:8]:
        plots.render_daily_png(r)
    chart = (time.perf_counter() - t0) / 8
    serial, one = timed_write(reports, 1)
    workers = plots.chart_workers()
    parallel, many = timed_write(reports, workers)
    assert many == one, "charts drawn in workers differ from charts drawn here"
    print(
        f"{len(reports)} daily reports ({segments:.0f} segments a day on average); one chart "
        f"{chart * 1000:.0f} ms"
    )
    print(
        f"(information) writing them: {serial:.2f} s in one process, {parallel:.2f} s with "
        f"{workers} chart worker(s) (speed-up {serial / parallel:.2f}x, same bytes)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
