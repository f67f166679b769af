"""Calibrate and reject one minute's probabilities: :func:`~taskclf.infer.pipeline.score_row`
with fewer interpreter steps.

For a user whose calibrator is the identity or a temperature (the default method), the
arithmetic between numpy's ``log`` and ``exp`` (normalize, floor at ``PROB_EPS``, divide by
``T``, subtract the maximum, sum in column order, divide, argmax, threshold) runs compiled;
``log`` and ``exp`` stay numpy's ufuncs, as in the batch path, so every bit is the same as
``score_row`` (tested). Any other calibrator, and probabilities that are not finite and
non-negative, take ``score_row`` itself.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from taskclf.core._jit import njit
from taskclf.infer._calibrators import (
    PROB_EPS,
    IdentityCalibrator,
    TemperatureCalibrator,
)
from taskclf.infer.calibration import CalibratorStore
from taskclf.infer.pipeline import PipelineConfig, ScoredRow, score_row

F64 = NDArray[np.float64]
_IDENTITY, _TEMPERATURE, _OTHER = 0, 1, 2


@njit
def _normalize(raw: F64, z: F64, floor: bool) -> bool:
    """``normalize_rows`` of one row into ``z`` (floored at ``PROB_EPS`` when ``floor``);
    False when a value is not finite or negative (then ``score_row`` reports it)."""
    total = raw[0]
    for k in range(raw.size):
        v = raw[k]
        if not (v >= 0.0 and v < np.inf):
            return False
        if k:
            total += v
    if not total < np.inf:
        return False
    for k in range(raw.size):
        v = raw[k] / total if total > 0.0 else 1.0 / raw.size
        z[k] = (v if v > PROB_EPS else PROB_EPS) if floor else v
    return True


@njit
def _scale(z: F64, temperature: float) -> None:
    """``z / T`` minus its maximum, in place."""
    top = z[0] / temperature
    for k in range(z.size):
        z[k] = z[k] / temperature
        if z[k] > top:
            top = z[k]
    for k in range(z.size):
        z[k] = z[k] - top


@njit
def _finish(e: F64, out: F64, divide: bool) -> int:
    """``e / sum(e)`` (column order) into ``out`` when ``divide``; the argmax of ``out``."""
    if divide:
        total = e[0]
        for k in range(1, e.size):
            total += e[k]
        for k in range(e.size):
            out[k] = e[k] / total
    else:
        for k in range(e.size):
            out[k] = e[k]
    best = 0
    for k in range(1, out.size):
        if out[k] > out[best]:
            best = k
    return best


class OnlineScorer:
    """:func:`score_row` for one configuration, remembering each user's calibrator kind."""

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self._users: dict[str, tuple[int, float, float]] = {}
        k = len(config.label_set)
        self._z = np.zeros(k)

    def _user(self, user_id: str) -> tuple[int, float, float]:
        got = self._users.get(user_id)
        if got is None:
            config = self.config
            store = config.calibrator_store
            threshold = float(
                config.per_user_reject_thresholds.get(user_id, config.reject_threshold)
            )
            c = store.get_calibrator(user_id) if isinstance(store, CalibratorStore) else None
            if store is None or isinstance(c, IdentityCalibrator):
                got = (_IDENTITY, 1.0, threshold)
            elif isinstance(c, TemperatureCalibrator):
                got = (_TEMPERATURE, c.temperature, threshold)
            else:  # isotonic, or a store of another kind
                got = (_OTHER, 1.0, threshold)
            self._users[user_id] = got
        return got

    def score(self, raw: F64, user_id: str) -> ScoredRow:
        """``score_row(config, raw.reshape(1, -1), user_id)``, the same bits."""
        kind, temperature, threshold = self._user(user_id)
        row = raw if raw.ndim == 1 else raw.reshape(-1)
        if kind == _OTHER:
            return score_row(self.config, row.reshape(1, -1), user_id)
        z = self._z
        if not _normalize(row, z, kind == _TEMPERATURE):
            return score_row(self.config, row.reshape(1, -1), user_id)
        out = np.empty(row.size)
        if kind == _IDENTITY:
            if self.config.calibrator_store is None:  # no calibration, not even normalizing
                core = _finish(row, out, False)
            else:
                core = _finish(z, out, False)
        else:
            np.log(z, out=z)
            _scale(z, temperature)
            np.exp(z, out=z)
            core = _finish(z, out, True)
        confidence = float(out[core])
        return ScoredRow(out, core, confidence, confidence < threshold)
