"""The evaluation's two charts: reliability diagram and confusion matrix (matplotlib, Agg).

``png_writer(draw, size)`` returns a writer for ``core._atomic.atomic_write_with``: it draws a
new figure off-screen and saves it as PNG without the matplotlib version in the metadata, so
the same report gives byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from taskclf.core.metrics import CalibrationSummary, ClassificationSummary


def png_writer(draw: Callable[[Any], None], size: tuple[float, float]) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=size, dpi=100)
        FigureCanvasAgg(fig)
        draw(fig)
        fig.savefig(tmp, format="png", metadata={"Software": None})

    return write


def draw_reliability(calib: CalibrationSummary) -> Callable[[Any], None]:
    def draw(fig: Any) -> None:
        ax, hist = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        bins = calib.reliability
        centers = [(b.lower + b.upper) / 2 for b in bins]
        width = 1.0 / calib.n_bins
        acc = [b.accuracy if b.accuracy is not None else 0.0 for b in bins]
        ax.bar(centers, acc, width=width * 0.9, color="#4c72b0", label="accuracy")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
        ax.set_ylabel("accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(
            f"Reliability (top label, {calib.n_bins} equal-width bins) - "
            f"ECE {calib.ece_top_label:.3f}, NLL {calib.nll:.3f}"
        )
        ax.legend(loc="upper left")
        hist.bar(centers, [b.count for b in bins], width=width * 0.9, color="#8c8c8c")
        hist.set_xlabel("confidence (max probability)")
        hist.set_ylabel("rows")
        fig.tight_layout()

    return draw


def draw_confusion(summary: ClassificationSummary) -> Callable[[Any], None]:
    def draw(fig: Any) -> None:
        cm = np.asarray(summary.confusion_matrix, dtype=np.float64)
        rows = cm.sum(axis=1, keepdims=True)
        norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
        ax = fig.subplots()
        ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
        names = summary.label_names
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        for i in range(cm.shape[0]):
            for j in range(cm.shape[1]):
                if cm[i, j]:
                    color = "white" if norm[i, j] > 0.5 else "black"
                    ax.text(
                        j, i, str(int(cm[i, j])), ha="center", va="center", color=color, fontsize=8
                    )
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"Confusion matrix (test) - macro F1 {summary.macro_f1:.3f}")
        fig.tight_layout()

    return draw
