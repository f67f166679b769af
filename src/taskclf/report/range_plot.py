"""The chart of a range summary: one user's hours per bucket, day by day (matplotlib Agg).

One stacked bar per local day of the range that has predictions (days without any are left
out, so a month of weekdays does not show as gaps), each bucket in its taxonomy color
(``report.plots.mapped_colors``), buckets stacked largest-over-the-range first; the title
gives the range's hours and the top buckets' shares. Drawn on an explicit ``Figure`` and saved
without the ``Software`` metadata: the same reports give byte-identical PNGs.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from taskclf.infer.taxonomy import TaxonomyConfig
from taskclf.report.plots import mapped_colors

if TYPE_CHECKING:
    from taskclf.report.daily import DailyReport

_MAX_DAY_LABELS = 31  # more days than this: label every k-th day


def render_range_png(
    user_id: str, reports: Sequence[DailyReport], *, taxonomy: TaxonomyConfig | None = None
) -> bytes:
    """Render the user's days (``reports`` of that one user, any order) as PNG bytes."""
    days = sorted(reports, key=lambda r: r.date)
    totals: dict[str, int] = {}
    for report in days:
        for name, minutes in report.minutes_by_mapped_label.items():
            totals[name] = totals.get(name, 0) + minutes
    order = [n for n, m in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])) if m > 0]
    colors = mapped_colors(order, taxonomy)
    fig = Figure(figsize=(max(7.5, min(16.0, 2.0 + 0.35 * len(days))), 4.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = list(range(len(days)))
    bottom = [0.0] * len(days)
    for name in order:
        hours = [r.minutes_by_mapped_label.get(name, 0) / 60.0 for r in days]
        ax.bar(x, hours, bottom=bottom, color=colors[name], label=name, width=0.8)
        bottom = [b + h for b, h in zip(bottom, hours, strict=True)]
    step = max(1, -(-len(days) // _MAX_DAY_LABELS))
    ax.set_xticks(
        x[::step],
        labels=[r.date.strftime("%a %d %b") for r in days][::step],
        rotation=60,
        ha="right",
        fontsize=7,
    )
    ax.set_ylim(0.0, max(bottom, default=0.0) * 1.06 or 1.0)  # room above the longest day
    ax.set_ylabel("hours", fontsize=8)
    ax.tick_params(axis="y", labelsize=8)
    if order:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    total = sum(totals.values())
    shares = ", ".join(f"{n} {_share(totals[n], total)}" for n in order[:3]) if total else "-"
    span = f"{days[0].date} to {days[-1].date}" if days else "no days"
    head = f"{user_id} · {span} · {len(days)} days · {total / 60:.1f} h"
    ax.set_title(f"{head}\n{shares}", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _share(part: int, total: int) -> str:
    """``part`` of ``total`` as a whole percentage; a nonzero share that rounds to 0 is "<1%"."""
    text = f"{part / total:.0%}"
    return "<1%" if part > 0 and text == "0%" else text
