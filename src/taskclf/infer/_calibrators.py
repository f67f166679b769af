"""The calibrators (private home; the public names live in ``taskclf.infer.calibration``).

Input policy, the three built-in calibrators and their JSON form. See
``taskclf.infer.calibration`` for the contract and the formulas.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from taskclf.core.errors import ArtifactError, InputError

#: Probabilities are floored at this value before taking logs (temperature scaling).
PROB_EPS = 1e-12
CalibrationMethod = Literal["identity", "temperature", "isotonic"]


# Input policy ----------------------------------------------------------------------------


def as_matrix(core_probs: ArrayLike) -> tuple[NDArray[np.float64], bool]:
    """Validate; return a 2-D float64 view/copy and whether the input was 1-D."""
    p = np.asarray(core_probs, dtype=np.float64)
    if p.ndim not in (1, 2) or p.shape[-1] == 0:
        raise InputError(
            f"core probabilities must have shape (k,) or (n, k) with k >= 1, got {p.shape}"
        )
    one_d = p.ndim == 1
    p2 = p.reshape(1, -1) if one_d else p
    if p2.shape[0] == 1:  # one row (the online path): plain-Python check, no array temporaries
        values = p2[0].tolist()
        # a NaN or infinity makes the sum non-finite; a failed check falls through to the
        # array check (finite values that overflow the sum are fine there)
        if min(values) >= 0.0 and math.isfinite(sum(values)):
            return p2, one_d
    bad = ~np.isfinite(p2) | (p2 < 0)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise InputError(
            f"core probabilities must be finite and >= 0; row {row}, column {col} is "
            f"{p2[row, col]!r}; check the model output (NaN/inf/negative values)"
        )
    return p2, one_d


def _row_sums(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Row sums accumulated column by column (order independent of the number of rows)."""
    if a.shape[0] == 1:
        return np.array([_sum_in_order(a[0].tolist())])
    total = a[:, 0].copy()
    for j in range(1, a.shape[1]):
        total += a[:, j]
    return total


def _sum_in_order(values: list[float]) -> float:
    """``values[0] + values[1] + ...`` left to right: one row of :func:`_row_sums`.

    Python floats are IEEE-754 doubles like float64, so the same additions in the same order
    give the same bits as the column-by-column numpy sum; a single row skips its per-column
    array calls.
    """
    total = values[0]
    for v in values[1:]:
        total += v
    return total


def normalize_rows(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Rows rescaled to sum to 1 (new array); an all-zero row becomes uniform."""
    if p.shape[0] == 1:  # one row: the same division, without the masking arrays
        total = _sum_in_order(p[0].tolist())
        if total <= 0.0:
            return np.full_like(p, 1.0 / p.shape[1])
        out: NDArray[np.float64] = p / total
        return out
    sums = _row_sums(p)
    zero = sums <= 0.0
    out = p / np.where(zero, 1.0, sums)[:, None]
    if zero.any():
        out[zero] = 1.0 / p.shape[1]
    return out


def normalize_probs(core_probs: ArrayLike) -> NDArray[np.float64]:
    """Validate probabilities and rescale each row to sum to 1 (all-zero rows -> uniform).

    Args:
        core_probs: Shape ``(k,)`` or ``(n, k)``, finite and non-negative.

    Returns:
        A new float64 array of the input's shape.

    Raises:
        InputError: Wrong shape, or a NaN, infinite or negative entry.
    """
    p, one_d = as_matrix(core_probs)
    out = normalize_rows(p)
    return out[0] if one_d else out


# Calibrators ------------------------------------------------------------------------------


@runtime_checkable
class Calibrator(Protocol):
    """Maps core probabilities to calibrated probabilities (module doc: the contract)."""

    def calibrate(self, core_probs: ArrayLike) -> NDArray[np.float64]:
        """Calibrate shape ``(k,)`` or ``(n, k)``; same shape, rows sum to 1."""
        ...


class _Base(abc.ABC):
    """Shared ``calibrate``: validate, run ``_apply`` on the 2-D normalized matrix, reshape.

    Single rows go through the same 2-D code path as batches (one code path, not two).
    """

    def calibrate(self, core_probs: ArrayLike) -> NDArray[np.float64]:
        """Calibrate shape ``(k,)`` or ``(n, k)``; same shape, rows sum to 1."""
        p, one_d = as_matrix(core_probs)
        out = self._apply(normalize_rows(p))
        return out[0] if one_d else out

    @abc.abstractmethod
    def _apply(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        """Map a validated, row-normalized ``(n, k)`` matrix to a new one."""


@dataclass(frozen=True)
class IdentityCalibrator(_Base):
    """No calibration: returns the (normalized) input."""

    def _apply(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        return p


def _check_temperature(value: object, where: str = "") -> float:
    loc = f"{where}: " if where else ""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise InputError(f"{loc}temperature must be a number, got {type(value).__name__}")
    t = float(value)
    if not math.isfinite(t) or t <= 0.0:
        raise InputError(f"{loc}temperature must be finite and > 0, got {t!r}")
    return t


@dataclass(frozen=True)
class TemperatureCalibrator(_Base):
    """Temperature scaling (Guo et al. 2017): ``softmax(log(max(p, PROB_EPS)) / T)``.

    Attributes:
        temperature: ``T``, finite and > 0. ``T > 1`` softens, ``T < 1`` sharpens.
    """

    temperature: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", _check_temperature(self.temperature))

    def _apply(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        if p.shape[0] == 1:
            return self._apply_row(p)
        z = np.log(np.maximum(p, PROB_EPS))
        z /= self.temperature
        z -= z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        z /= _row_sums(z)[:, None]
        return z

    def _apply_row(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        """One row of :meth:`_apply`, with fewer array calls and the same bits.

        ``log`` and ``exp`` are the same numpy ufuncs; the exact steps between them (divide
        by ``T``, subtract the maximum, sum, divide) run on Python floats, which are IEEE
        doubles like float64.
        """
        t = self.temperature
        z = [v / t for v in np.log(np.maximum(p[0], PROB_EPS)).tolist()]
        top = max(z)
        e = np.exp(np.array([v - top for v in z]))
        out: NDArray[np.float64] = (e / _sum_in_order(e.tolist())).reshape(1, -1)
        return out


@dataclass(frozen=True)
class IsotonicMap:
    """One class's monotone map: threshold points ``x`` (strictly increasing) -> ``y``.

    ``y`` is non-decreasing within ``[0, 1]``. Values between points are interpolated
    linearly; values outside ``[x[0], x[-1]]`` take the end values.
    """

    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        x = np.asarray(self.x, dtype=np.float64)
        y = np.asarray(self.y, dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or x.size == 0:
            raise InputError(
                f"isotonic map needs equally long non-empty x and y, got {x.shape} and {y.shape}"
            )
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise InputError("isotonic map points must be finite")
        if (np.diff(x) <= 0).any():
            raise InputError("isotonic map x points must be strictly increasing")
        if (np.diff(y) < 0).any() or y.min() < 0.0 or y.max() > 1.0:
            raise InputError("isotonic map y points must be non-decreasing within [0, 1]")
        object.__setattr__(self, "x", tuple(float(v) for v in x))
        object.__setattr__(self, "y", tuple(float(v) for v in y))

    def __call__(self, values: NDArray[np.float64]) -> NDArray[np.float64]:
        """Apply the map to ``values`` (any shape)."""
        out: NDArray[np.float64] = np.interp(values, np.asarray(self.x), np.asarray(self.y))
        return out


@dataclass(frozen=True)
class IsotonicCalibrator(_Base):
    """Per-class isotonic maps (Zadrozny & Elkan 2002), then renormalization.

    ``q_c = interp(p_c; x_c, y_c)`` for each class ``c`` (clipped outside the fitted range),
    then ``q / sum(q)``; a row mapped to all zeros becomes uniform.

    Attributes:
        regressors: One :class:`IsotonicMap` per class, in ``label_set`` order.
    """

    regressors: tuple[IsotonicMap, ...]
    _xs: tuple[NDArray[np.float64], ...] = field(init=False, repr=False, compare=False)
    _ys: tuple[NDArray[np.float64], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        regs = tuple(self.regressors)
        if not regs or not all(isinstance(r, IsotonicMap) for r in regs):
            raise InputError("IsotonicCalibrator needs one IsotonicMap per class (at least one)")
        object.__setattr__(self, "regressors", regs)
        object.__setattr__(self, "_xs", tuple(_frozen_array(r.x) for r in regs))
        object.__setattr__(self, "_ys", tuple(_frozen_array(r.y) for r in regs))

    @classmethod
    def from_sklearn(cls, regressors: Sequence[Any]) -> IsotonicCalibrator:
        """Wrap fitted ``sklearn.isotonic.IsotonicRegression`` objects (their thresholds)."""
        return cls(
            tuple(IsotonicMap(tuple(r.X_thresholds_), tuple(r.y_thresholds_)) for r in regressors)
        )

    @property
    def n_classes(self) -> int:
        """Number of classes (columns) this calibrator accepts."""
        return len(self.regressors)

    def _apply(self, p: NDArray[np.float64]) -> NDArray[np.float64]:
        if p.shape[1] != self.n_classes:
            raise InputError(
                f"isotonic calibrator has {self.n_classes} classes, probabilities have "
                f"{p.shape[1]} columns"
            )
        out = np.empty_like(p)
        for c in range(self.n_classes):
            out[:, c] = np.interp(p[:, c], self._xs[c], self._ys[c])
        return normalize_rows(out)


def _frozen_array(values: Sequence[float]) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    arr.setflags(write=False)
    return arr


def calibrator_method(calibrator: Calibrator) -> CalibrationMethod:
    """The ``type`` name of a built-in calibrator."""
    if isinstance(calibrator, TemperatureCalibrator):
        return "temperature"
    if isinstance(calibrator, IsotonicCalibrator):
        return "isotonic"
    if isinstance(calibrator, IdentityCalibrator):
        return "identity"
    raise ArtifactError(
        f"cannot serialize calibrator of type {type(calibrator).__name__}; only identity, "
        "temperature and isotonic calibrators have an on-disk format"
    )


def apply_normalized(calibrator: Calibrator, p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Run a calibrator on an already validated, normalized 2-D matrix."""
    if isinstance(calibrator, _Base):
        return calibrator._apply(p)
    return np.asarray(calibrator.calibrate(p), dtype=np.float64)


# JSON -------------------------------------------------------------------------------------


def calibrator_to_json(calibrator: Calibrator) -> dict[str, Any]:
    """The JSON object of a built-in calibrator (module doc: the format)."""
    kind = calibrator_method(calibrator)
    if isinstance(calibrator, TemperatureCalibrator):
        return {"type": kind, "temperature": calibrator.temperature}
    if isinstance(calibrator, IsotonicCalibrator):
        regs = [{"x": list(r.x), "y": list(r.y)} for r in calibrator.regressors]
        return {"type": kind, "regressors": regs}
    return {"type": kind}


def _expect_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(data) - allowed)
    missing = sorted(allowed - set(data))
    if missing or extra:
        raise ArtifactError(
            f"calibrator '{where}': expected fields {sorted(allowed)}, missing {missing}, "
            f"unexpected {extra}; re-run 'taskclf train calibrate'"
        )


def calibrator_from_json(data: object, *, where: str = "<json>") -> Calibrator:
    """Parse a calibrator JSON object; ``where`` names the file in errors.

    Raises:
        ArtifactError: Not an object, a missing or unknown ``type``, missing or extra fields,
            or invalid parameters (e.g. a temperature that is not finite and > 0).
    """
    if not isinstance(data, dict):
        raise ArtifactError(
            f"calibrator '{where}': expected a JSON object, got {type(data).__name__}"
        )
    kind = data.get("type")
    body = {k: v for k, v in data.items() if k != "user_id"}
    try:
        if kind == "identity":
            _expect_keys(body, {"type"}, where)
            return IdentityCalibrator()
        if kind == "temperature":
            _expect_keys(body, {"type", "temperature"}, where)
            return TemperatureCalibrator(_check_temperature(body["temperature"]))
        if kind == "isotonic":
            _expect_keys(body, {"type", "regressors"}, where)
            return IsotonicCalibrator(_isotonic_maps(body["regressors"]))
    except InputError as exc:
        raise ArtifactError(
            f"calibrator '{where}': {exc}; re-run 'taskclf train calibrate'"
        ) from None
    shown = "missing" if kind is None else f"unknown ({str(kind)[:40]!r})"
    raise ArtifactError(
        f"calibrator '{where}': field 'type' is {shown}; expected 'identity', 'temperature' "
        "or 'isotonic'; the file is corrupt or from a newer taskclf"
    )


def _isotonic_maps(regs: object) -> tuple[IsotonicMap, ...]:
    if not isinstance(regs, list) or not regs:
        raise InputError("'regressors' must be a non-empty list")
    maps = []
    for i, reg in enumerate(regs):
        if not isinstance(reg, dict) or set(reg) != {"x", "y"}:
            raise InputError(f"regressors[{i}] must be an object with exactly 'x' and 'y'")
        xs, ys = reg["x"], reg["y"]
        if not isinstance(xs, list) or not isinstance(ys, list):
            raise InputError(f"regressors[{i}]: 'x' and 'y' must be lists of numbers")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs + ys):
            raise InputError(f"regressors[{i}]: 'x' and 'y' must hold only numbers")
        try:
            maps.append(IsotonicMap(tuple(xs), tuple(ys)))
        except InputError as exc:
            raise InputError(f"regressors[{i}]: {exc}") from None
    return tuple(maps)
