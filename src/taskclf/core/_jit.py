"""numba's ``njit`` with the project's settings, typed for mypy.

The online minute (``features._kernel``) runs compiled: closing one minute in plain Python
costs a few hundred microseconds of interpreter time, several times the model's own
prediction. Compiled functions are cached on disk next to their module (numba's ``cache``),
so only the first run on a machine pays the compilation.

``error_model="numpy"``: a float division by zero gives inf/NaN as numpy does instead of
raising (the kernels guard every division the Python definitions guard, so this only drops
the checks).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])


def njit(fn: F) -> F:
    """Compile ``fn`` in nopython mode (cached, GIL released, numpy error model)."""
    return cast(F, numba.njit(cache=True, nogil=True, error_model="numpy")(fn))
