"""NumPy arrays and array-likes: the engine's NumPy stacks (LAPACK, compiled kernels).

Every adapter has this interface: ``pinv(req)`` and ``solve(req)`` return
``(x, rank, method)``, ``damped(req)`` returns ``x``, all in the input's library; the
request (``_validate.Request``) is validated and non-empty.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _engine, _methods


def chosen(req: Any) -> str:
    """The method that runs on NumPy stacks (``"auto"`` resolved: ``_methods.choose``)."""
    shape = (math.prod(req.batch), req.m, req.n)
    return _methods.chosen_name(req.method, req.hermitian, shape, req.dtype)


def pinv(req: Any) -> tuple[np.ndarray, np.ndarray, str]:
    x, rank = _engine.compute_numpy(
        req.a,
        req.atol,
        req.rtol,
        dtype=req.dtype,
        hermitian=req.hermitian,
        method=req.method,
        check_finite=req.check_finite,
    )
    return x, rank, chosen(req)


def solve(req: Any) -> tuple[np.ndarray, np.ndarray, str]:
    x, rank = _engine.solve_numpy(
        req.a,
        req.b,
        req.atol,
        req.rtol,
        dtype=req.dtype,
        hermitian=req.hermitian,
        method=req.method,
        check_finite=req.check_finite,
    )
    return x, rank, chosen(req)


def damped(req: Any) -> np.ndarray:
    return _engine.damped_numpy(
        req.a,
        np.asarray(req.damping, dtype=np.float64),
        req.b,
        dtype=req.dtype,
        hermitian=req.hermitian,
        check_finite=req.check_finite,
    )
