"""Helpers shared by benchmark scripts.

Every script prints its DESIGN §7 bars through :func:`report_bar` so ``benchmarks/run_all.py``
can collect them into one table: a line ``BAR|<name>|<measured>|<bar>|<PASS or FAIL>``.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

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


def warm_memory(gigabytes: float) -> bool:
    """Back ``gigabytes`` of memory once and keep it in the process for later allocations.

    On the VMs these benchmarks run on, the first touch of memory the host has not backed yet
    costs 0.5-3 s/GB of kernel time, charged to whichever step first reaches a new peak (the
    1M runs) and saying nothing about the algorithm. Touching a block once is not enough by
    itself: glibc hands large freed blocks back to the kernel (``munmap``, heap trimming), the
    host reclaims them, and the next large allocation pays again (the 1M feature build spent
    2.3-2.8 s of kernel time in one ``np.take`` filling its fresh 1.2 GB sketch block). So
    glibc is first told to keep freed memory (``mallopt``: no ``mmap`` for large blocks, no
    trimming), then the block is touched and freed into the process's heap.

    Returns:
        Whether glibc took the settings (False elsewhere: timings then include first touches).
    """
    kept = False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        pass
    else:
        m_trim_threshold, m_mmap_max = -1, -4  # <malloc.h>; a trim threshold of -1 disables it
        kept = bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, -1))
    block = np.ones(int(gigabytes * 1e9 / 8))
    del block
    return kept
