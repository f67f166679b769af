"""Keep-or-fallback of per-user calibrators: a paired, day-blocked test of the held-out gain.

For a cross-validated user with rows ``i = 1..n``, ``d_i = ℓ_global(i) - ℓ_cv(i)`` is the NLL
gain on row ``i`` of the user's calibrator fitted on the other folds (and shrunk, as deployed)
over the global calibrator. Its mean ``ĝ = 1/n Σ d_i`` is the held-out gain.

**Noise.** Minutes of one day are strongly correlated: a user's miscalibration moves from day
to day, so the row-level standard error ``SE_row = sd(d) / √n`` understates how much ``ĝ``
would change on other days. The day-blocked (cluster-robust, Liang & Zeger 1986) standard error

    SE_block² = m / (m - 1) · Σ_j (D_j - ĝ n_j)² / n²

(``D_j``, ``n_j``: sum of ``d`` and rows of block ``j``; ``m`` blocks) accounts for it, but a
user has only a few validation days (3 in the demo, i.e. 2 degrees of freedom), so one user's
``SE_block`` is itself very noisy (a user whose three days happen to agree gets a tiny one).
The blocked variance is therefore pooled over users as a design effect (Kish 1965),
``δ = median_u SE_block,u² / SE_row,u²`` floored at 1 (the median, so one user with a wild day
does not set it for everyone; users whose ``d`` are all equal carry no information and are left
out), and each user's standard error is

    SE = SE_row · √δ.

**Rule.** A user's calibrator is kept only when ``ĝ > min_gain`` and ``ĝ ≥ z · SE``: a
one-sided test at ``z`` = :data:`DEFAULT_KEEP_Z` (1.645, 5 %) that the gain is real rather than
day-to-day noise. Blocks are the user's local days when the user has at least ``folds`` days
(the folds are whole days), else the contiguous time blocks that are the folds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: One-sided z of the keep test: keep when the held-out gain is >= this many standard errors.
DEFAULT_KEEP_Z = 1.645
Floats = NDArray[np.float64]


@dataclass(frozen=True)
class GainStats:
    """Per-group (user) held-out gain statistics, shape ``(G,)`` each, and the pooled ``δ``."""

    gain: Floats
    se_row: Floats
    se_block: Floats
    blocks: NDArray[np.int64]
    design_effect: float

    @property
    def se(self) -> Floats:
        """``SE_row · √δ``: the standard error the keep test uses."""
        out: Floats = self.se_row * math.sqrt(self.design_effect)
        return out


def paired_gain_stats(
    diff: Floats, codes: NDArray[np.intp], blocks: NDArray[np.int64], n_groups: int
) -> GainStats:
    """Gain, row-level and block-level standard errors per group, and the design effect.

    Args:
        diff: Shape ``(n,)`` per-row gain ``ℓ_global - ℓ_personal`` (nats).
        codes: Shape ``(n,)`` group of each row in ``[0, n_groups)``.
        blocks: Shape ``(n,)`` int block (e.g. local day) of each row; blocks are per group.
        n_groups: Number of groups; each must have at least two rows.
    """
    n = np.bincount(codes, minlength=n_groups).astype(np.float64)
    gain = np.bincount(codes, weights=diff, minlength=n_groups) / n
    dev = diff - gain[codes]
    var = np.bincount(codes, weights=dev * dev, minlength=n_groups) / np.maximum(n - 1.0, 1.0)
    se_row = np.sqrt(var / n)
    span = int(blocks.max() - blocks.min()) + 1
    pair = codes.astype(np.int64) * span + (blocks - blocks.min())
    keys, inverse = np.unique(pair, return_inverse=True)
    block_dev = np.bincount(inverse.ravel(), weights=dev)  # D_j - ĝ n_j
    owner = (keys // span).astype(np.intp)
    m = np.bincount(owner, minlength=n_groups).astype(np.int64)
    ss = np.bincount(owner, weights=block_dev * block_dev, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_block = np.where(m >= 2, np.sqrt(m / (m - 1.0) * ss) / n, np.nan)
        ratio = (se_block / se_row) ** 2
    usable = (m >= 2) & (se_row > 0) & np.isfinite(ratio)
    deff = max(1.0, float(np.median(ratio[usable]))) if usable.any() else 1.0
    return GainStats(gain, se_row, se_block, m, deff)


def ineligible_reason(counts: tuple[int, int, int], thresholds: tuple[int, int, int]) -> str:
    """``not eligible: ...`` naming each threshold the user misses."""
    names = ("windows", "days", "labels")
    parts = [
        f"{got} {name} < {need}"
        for got, name, need in zip(counts, names, thresholds, strict=True)
        if got < need
    ]
    return "not eligible: " + "; ".join(parts)


@dataclass(frozen=True)
class KeepRule:
    """The keep test's parameters: ``ĝ > min_gain`` and ``ĝ >= z · SE``."""

    folds: int
    min_gain: float
    z: float

    def decide(self, counts: tuple[int, int, int], gain: float, se: float) -> tuple[bool, str]:
        """Keep the cross-validated user's calibrator, or fall back to global, and why.

        ``counts`` are the user's windows, days and labels; ``gain``/``se`` its held-out gain
        over the global calibrator and the standard error of the test.
        """
        unit = "day" if counts[1] >= self.folds else "time blocks"
        numbers = (
            f"held-out NLL gain vs global {gain:+.4f} ± {se:.4f} SE "
            f"({self.folds}-fold by {unit}, SE by {unit})"
        )
        if gain <= self.min_gain:
            return False, f"fallback: {numbers}, not above {self.min_gain:g}"
        if gain < self.z * se:
            return False, f"fallback: {numbers}, within noise (< {self.z:g} SE)"
        return True, f"kept: {numbers}, >= {self.z:g} SE and > {self.min_gain:g}"
