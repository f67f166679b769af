"""Daily report chart: a timeline of the day's segments and bar summaries (matplotlib Agg).

The figure is drawn on an explicit ``Figure`` with an Agg canvas (no pyplot global state) and
saved without the ``Software`` metadata, so the same report gives byte-identical PNGs.
A chart takes about 0.2 s (mostly matplotlib's ticks and text), so :func:`render_daily_pngs`
spreads many charts over worker processes.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import signal
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from taskclf.core.defaults import MIXED_UNKNOWN
from taskclf.core.time import get_zone
from taskclf.infer.taxonomy import MIXED_COLOR, PALETTE, TaxonomyConfig, default_taxonomy

if TYPE_CHECKING:
    from taskclf.report.daily import DailyReport

#: Fixed colors of the core labels and the reject label.
CORE_COLORS: Final[dict[str, str]] = {
    "Build": "#1f77b4",
    "Debug": "#d62728",
    "Review": "#e377c2",
    "Write": "#17becf",
    "ReadResearch": "#2ca02c",
    "Communicate": "#ff7f0e",
    "Meet": "#8c564b",
    "BreakIdle": "#9467bd",
    MIXED_UNKNOWN: MIXED_COLOR,
}
_UNKNOWN_COLOR: Final = "#000000"
#: Fewer charts than this are drawn in the calling process: starting a worker (a new
#: interpreter importing matplotlib and the report modules) costs about a second.
PARALLEL_MIN_CHARTS: Final = 32
_MAX_WORKERS: Final = 8


def mapped_colors(names: Iterable[str], taxonomy: TaxonomyConfig | None) -> dict[str, str]:
    """Color of each mapped (bucket) name: the taxonomy's (else the default taxonomy's), else
    the core label's own color (predictions without a taxonomy map each label to itself),
    else a palette color by sorted position among the remaining names."""
    known = (taxonomy or default_taxonomy()).colors()
    out: dict[str, str] = {}
    rest: list[str] = []
    for name in sorted(set(names)):
        if name in known or name in CORE_COLORS:
            out[name] = known.get(name) or CORE_COLORS[name]
        else:
            rest.append(name)
    out.update({name: PALETTE[i % len(PALETTE)] for i, name in enumerate(rest)})
    return out


def render_daily_png(report: DailyReport, *, taxonomy: TaxonomyConfig | None = None) -> bytes:
    """Render the report chart as PNG bytes.

    Top: the day's segments on a local-time axis, one lane colored by predicted label and one
    by mapped label. Bottom: minutes per predicted label and per mapped label; inside the
    Mixed/Unknown bar, a thinner stacked bar splits those minutes by the model's most likely
    core label (largest first, in the labels' colors).
    """
    fig = Figure(figsize=(11.0, 5.6), dpi=100)
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(2, 2, height_ratios=(1.0, 1.6), hspace=0.55, wspace=0.45)
    timeline = fig.add_subplot(grid[0, :])
    label_bars = fig.add_subplot(grid[1, 0])
    mapped_bars = fig.add_subplot(grid[1, 1])
    mapped = mapped_colors(
        [*report.minutes_by_mapped_label, *(s.mapped_label for s in report.segments)], taxonomy
    )
    _timeline(timeline, report, mapped)
    _bars(label_bars, report.minutes_by_label, CORE_COLORS, "minutes per label")
    _mixed_guesses(label_bars, report)
    _bars(mapped_bars, report.minutes_by_mapped_label, mapped, "minutes per bucket")
    fig.suptitle(
        f"{report.user_id} · {report.date.isoformat()} ({report.timezone}) · "
        f"{report.total_minutes} min · {report.segment_count} segments · "
        f"{report.switches_per_hour:.1f} switches/h · reject {report.reject_rate:.0%}",
        fontsize=10,
    )
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def chart_workers() -> int:
    """How many processes render charts: the cores this process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, _MAX_WORKERS))


def render_daily_pngs(
    reports: Sequence[DailyReport],
    *,
    taxonomy: TaxonomyConfig | None = None,
    workers: int = 1,
) -> Iterator[bytes]:
    """:func:`render_daily_png` of each report, yielded in order.

    With ``workers`` > 1 (the command line passes :func:`chart_workers`) and at least
    :data:`PARALLEL_MIN_CHARTS` reports, the charts are drawn in fresh (spawned) worker
    processes; the bytes are the same as drawn here. Serial by default because a spawned
    worker imports the caller's main module: a script calling this without an
    ``if __name__ == "__main__":`` guard would run again in every worker.
    """
    if workers <= 1 or len(reports) < PARALLEL_MIN_CHARTS:
        for report in reports:
            yield render_daily_png(report, taxonomy=taxonomy)
        return
    # spawn, not fork: the parent may hold LightGBM's OpenMP threads and a progress thread
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_ignore_interrupts
    )
    try:
        chunk = max(1, min(8, len(reports) // (4 * workers)))
        yield from pool.map(_render_one, reports, [taxonomy] * len(reports), chunksize=chunk)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ignore_interrupts() -> None:
    """Workers leave Ctrl+C to the parent, which cancels what is queued and exits quietly
    (a worker interrupted mid-chart would print a traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _render_one(report: DailyReport, taxonomy: TaxonomyConfig | None) -> bytes:
    return render_daily_png(report, taxonomy=taxonomy)


def _hours(ts: datetime, start: datetime) -> float:
    return (ts - start).total_seconds() / 3600.0


def _timeline(ax: Any, report: DailyReport, mapped: Mapping[str, str]) -> None:
    start, length = report.day_start_utc, _hours(report.day_end_utc, report.day_start_utc)
    # one collection per lane (not one per segment): a busy day has hundreds of segments
    spans = [(_hours(s.start_ts, start), _hours(s.end_ts, s.start_ts)) for s in report.segments]
    if spans:
        ax.broken_barh(
            spans,
            (1.1, 0.8),
            facecolors=[CORE_COLORS.get(s.label, _UNKNOWN_COLOR) for s in report.segments],
        )
        ax.broken_barh(
            spans,
            (0.1, 0.8),
            facecolors=[mapped.get(s.mapped_label, _UNKNOWN_COLOR) for s in report.segments],
        )
    ax.set_xlim(0.0, length)
    ax.set_ylim(0.0, 2.0)
    ax.set_yticks([0.5, 1.5], labels=["bucket", "label"])
    zone = get_zone(report.timezone)
    ticks = [float(h) for h in range(0, int(length) + 1, 2)]
    ax.set_xticks(
        ticks,
        labels=[(start + timedelta(hours=h)).astimezone(zone).strftime("%H:%M") for h in ticks],
        fontsize=8,
    )
    ax.set_xlabel("local time", fontsize=8)
    seen = list(dict.fromkeys(s.label for s in report.segments))
    handles = [Patch(color=CORE_COLORS.get(n, _UNKNOWN_COLOR), label=n) for n in seen]
    if handles:
        ax.legend(
            handles=handles,
            fontsize=7,
            ncol=min(len(handles), 9),
            loc="upper left",
            bbox_to_anchor=(0.0, -0.35),
            frameon=False,
        )


def _bars(ax: Any, minutes: Mapping[str, int], colors: Mapping[str, str], title: str) -> None:
    names = list(minutes)
    ax.barh(
        names,
        [minutes[n] for n in names],
        color=[colors.get(n, _UNKNOWN_COLOR) for n in names],
    )
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=8)
    ax.set_xlabel("minutes", fontsize=8)


def _mixed_guesses(ax: Any, report: DailyReport) -> None:
    """Stack the Mixed/Unknown minutes by best guess inside their bar (see the chart doc)."""
    names = list(report.minutes_by_label)
    guesses = sorted(
        ((n, m) for n, m in report.mixed_by_core_label.items() if m > 0),
        key=lambda kv: (-kv[1], kv[0]),
    )
    if MIXED_UNKNOWN not in names or not guesses:
        return
    row, left = names.index(MIXED_UNKNOWN), 0
    for name, minutes in guesses:
        ax.barh([row], [minutes], left=[left], height=0.4, color=CORE_COLORS.get(name))
        left += minutes
    ax.set_title("minutes per label (in Mixed/Unknown: the model's best guesses)", fontsize=9)
    longest = max(report.minutes_by_label.values())
    ax.set_xlim(0, longest * 1.5)  # room on the right for the legend
    ax.legend(
        handles=[Patch(color=CORE_COLORS.get(n, _UNKNOWN_COLOR), label=n) for n, _ in guesses],
        fontsize=7,
        loc="center right",
        title="best guess",
        title_fontsize=7,
    )
