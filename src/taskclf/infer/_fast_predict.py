"""One-row LightGBM prediction through the C API's "fast" single-row entry points.

``booster.predict`` on one row spends most of its time in Python: it builds an
``_InnerPredictor``, deep-copies the parameters, converts the matrix and allocates the output,
every call. LightGBM's C API has a path for exactly this case:
``LGBM_BoosterPredictForMatSingleRowFastInit`` prepares the prediction once (type, iterations,
parameters, column count) and ``LGBM_BoosterPredictForMatSingleRowFast`` then predicts one
dense row into a caller-owned buffer. It runs the same trees with the same arithmetic as
``LGBM_BoosterPredictForMat`` (what ``booster.predict`` calls), so the probabilities are equal
bit for bit (tested). The online path predicts one closed minute at a time with it.

LightGBM keeps that prepared state inside the booster, one per prediction type, and replaces
it whenever any prediction on the booster asks for other settings (another ``num_iteration``,
even through ``booster.predict`` of a matrix). A predictor sharing its booster could then
silently use the wrong trees, so :class:`SingleRowPredictor` prepares its state on a private
copy of the booster (loaded from the booster's own model text: the same trees, bit for bit).

If the loaded LightGBM library lacks these symbols, :class:`SingleRowPredictor` falls back to
``booster.predict`` (same values, just slower) and says so in :attr:`SingleRowPredictor.fast`.

Faster still, for the multiclass models taskclf trains: :class:`~taskclf.infer._forest.Forest`
evaluates the same trees in compiled code with LightGBM's arithmetic (checked bit for bit
against ``booster.predict`` when built); :class:`SingleRowPredictor` uses it whenever it
takes the model (:attr:`SingleRowPredictor.compiled`), else the C API path.
"""

from __future__ import annotations

import ctypes
import logging
import weakref
from typing import Any

import lightgbm as lgb
import numpy as np
from numpy.typing import NDArray

from taskclf.infer._forest import Forest

log = logging.getLogger(__name__)

# c_api.h: C_API_PREDICT_NORMAL, C_API_DTYPE_FLOAT64
_PREDICT_NORMAL = 0
_DTYPE_FLOAT64 = 1


def _c_api() -> tuple[Any, Any, Any, Any] | None:
    """LightGBM's loaded library and its three fast single-row functions, if it has them."""
    lib: Any = getattr(lgb.basic, "_LIB", None)
    try:
        init = lib.LGBM_BoosterPredictForMatSingleRowFastInit
        fast = ctypes.cast(lib.LGBM_BoosterPredictForMatSingleRowFast, ctypes.c_void_p).value
        free = ctypes.cast(lib.LGBM_FastConfigFree, ctypes.c_void_p).value
    except AttributeError:  # no library object, or one without the symbols
        return None
    if fast is None or free is None:
        return None
    # Own prototypes (ctypes function objects built from the addresses), so pointers are
    # passed as pointers without touching the shared ``_LIB`` attributes' argtypes.
    fast_fn = ctypes.CFUNCTYPE(
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_void_p,
        ctypes.POINTER(ctypes.c_int64),
        ctypes.POINTER(ctypes.c_double),
    )(fast)
    free_fn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)(free)
    return lib, init, fast_fn, free_fn


def _free_config(free_fn: Any, handle: ctypes.c_void_p, booster: lgb.Booster) -> None:
    """Free the FastConfig (the booster is passed only to keep it alive until then)."""
    del booster
    free_fn(handle)


def _last_error(lib: Any) -> str:
    message: bytes = lib.LGBM_GetLastError()
    return message.decode("utf-8", errors="replace")


def _check(lib: Any, status: int) -> None:
    if status != 0:
        raise lgb.basic.LightGBMError(_last_error(lib))


class SingleRowPredictor:
    """``booster.predict(row)`` for one dense row, with the C API's prepared fast path.

    Equal, bit for bit, to ``booster.predict(x)`` (or ``booster.predict(x, num_threads=n)``)
    for ``x`` of shape ``(1, n_features)``: normal (probability) output, start iteration 0 and
    ``num_iteration = booster.best_iteration`` as read at construction — what
    ``booster.predict`` uses by default (``-1``, all trees, for a loaded bundle). The trees
    are copied at construction (see the module docstring), so later training of ``booster``
    does not reach this predictor; build a new one for a new booster (e.g. after a policy hot
    reload).

    Holds a reusable input row (:attr:`row`) and output buffer, so :meth:`predict` is not
    reentrant: use one predictor per thread.

    Args:
        booster: A trained booster with normal (e.g. multiclass probability) output.
        num_threads: Passed as LightGBM's ``num_threads`` parameter when non-zero (as
            ``predict_raw`` does); one row is predicted on one thread either way.
    """

    def __init__(self, booster: lgb.Booster, *, num_threads: int = 0) -> None:
        self.booster = booster
        self.num_iteration = int(booster.best_iteration)
        self.num_threads = int(num_threads)
        self.n_features = int(booster.num_feature())
        self.row: NDArray[np.float64] = np.zeros((1, self.n_features), dtype=np.float64)
        self._call: Any = None
        self._args: tuple[Any, ...] = ()
        self._row1 = self.row[0]  # the row as 1-D (a view of :attr:`row`)
        self._forest = Forest.from_booster(booster, self.num_iteration)
        if self._forest is not None:
            self.n_outputs = self._forest.n_class
            self._out = np.zeros((1, self.n_outputs), dtype=np.float64)
            self._out1: NDArray[np.float64] = self._out[0]
            return
        api = _c_api()
        if api is None:
            log.info("LightGBM lacks the fast single-row C API; using booster.predict")
            self.n_outputs = int(booster.num_model_per_iteration())
            return
        lib, init, fast_fn, free_fn = api
        self._lib = lib
        own = lgb.Booster(model_str=booster.model_to_string(num_iteration=-1))
        n_outputs = ctypes.c_int64(0)
        _check(
            lib,
            lib.LGBM_BoosterCalcNumPredict(
                own._handle,
                ctypes.c_int(1),
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(self.num_iteration),
                ctypes.byref(n_outputs),
            ),
        )
        self.n_outputs = int(n_outputs.value)
        handle = ctypes.c_void_p()
        params = f"num_threads={self.num_threads}" if self.num_threads else ""
        _check(
            lib,
            init(
                own._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(self.num_iteration),
                ctypes.c_int(_DTYPE_FLOAT64),
                ctypes.c_int32(self.n_features),
                ctypes.c_char_p(params.encode("utf-8")),
                ctypes.byref(handle),
            ),
        )
        # The FastConfig points into the private booster: the finalizer holds it, so the
        # booster is freed only after the handle.
        weakref.finalize(self, _free_config, free_fn, handle, own)
        self._out = np.zeros((1, self.n_outputs), dtype=np.float64)
        self._out_len = ctypes.c_int64(0)
        # Everything the call needs, prepared once: the buffers never move.
        self._call = fast_fn
        self._args = (
            handle,
            ctypes.c_void_p(self.row.ctypes.data),
            ctypes.byref(self._out_len),
            self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double)),
        )

    @property
    def fast(self) -> bool:
        """Whether a fast single-row path is in use (compiled or the C API's, else
        ``booster.predict``)."""
        return self._forest is not None or self._call is not None

    @property
    def compiled(self) -> bool:
        """Whether the compiled :class:`~taskclf.infer._forest.Forest` predicts."""
        return self._forest is not None

    def predict_view(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """:meth:`predict` as shape ``(n_outputs,)``, into an array of the predictor's own:
        valid until the next call (the online loop's step: no copy)."""
        if self._forest is None:
            return self.predict(x).reshape(-1)
        if x is not self.row and x is not self._row1:
            self.row[0] = x.reshape(-1)
        self._forest.predict(self._row1, self._out1)
        return self._out1

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Probabilities of one row.

        Args:
            x: Shape ``(1, n_features)`` or ``(n_features,)``, float64. Pass :attr:`row`
                itself (e.g. filled by ``MatrixEncoder.encode_row(row, out=predictor.row)``),
                or its 1-D view ``row[0]``, to skip the copy into it.

        Returns:
            A new array of shape ``(1, n_outputs)`` (``n_outputs`` is the number of classes
            of a multiclass model).
        """
        if self._forest is not None:
            return self.predict_view(x).reshape(1, -1).copy()
        if x is not self.row and x is not self._row1:
            self.row[0] = x.reshape(-1)
        if self._call is None:
            if self.num_threads:
                out = self.booster.predict(self.row, num_threads=self.num_threads)
            else:
                out = self.booster.predict(self.row)
            return np.asarray(out, dtype=np.float64).reshape(1, -1)
        if self._call(*self._args):
            raise lgb.basic.LightGBMError(_last_error(self._lib))
        return self._out.copy()
