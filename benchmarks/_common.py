"""Helpers shared by benchmark scripts.

Every script prints its DESIGN §7 bars through :func:`report_bar` so ``benchmarks/run_all.py``
can collect them into one table: a line ``BAR|<name>|<measured>|<bar>|<PASS or FAIL>``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
if not REAL_DATA.is_dir():
    REAL_DATA = Path("/work/shared/data/real")


def best_of(fn: Callable[[], object], repeat: int = 3) -> float:
    """Smallest wall time of ``repeat`` calls (seconds)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def report_bar(name: str, measured: float, bar: float, *, higher_is_better: bool = False) -> bool:
    """Print one bar line and return whether it passed."""
    ok = measured >= bar if higher_is_better else measured <= bar
    op = ">=" if higher_is_better else "<="
    print(f"BAR|{name}|{measured:.3f}|{op} {bar:g}|{'PASS' if ok else 'FAIL'}", flush=True)
    return ok
