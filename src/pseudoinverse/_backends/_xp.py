"""Any other Array API library (array-api-strict, CuPy, ...): the engine's portable core.

Masks only, no data-dependent shapes. ``solve`` multiplies the portable ``pinv`` into
``B``; ``damped`` is the pseudo-inverse of the augmented matrix ``[A; lambda I]``
(``_engine.augmented``).
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from .. import _engine


def name(req: Any) -> str:
    """What runs on the portable path: the SVD, or eigh for Hermitian input."""
    return "eigh" if req.hermitian and req.method in ("auto", "eigh") else "svd"


def pinv(req: Any) -> tuple[Any, Any, str]:
    x, rank = _engine.compute_xp(
        req.xp,
        req.a,
        req.atol,
        req.rtol,
        dtype=req.dtype,
        hermitian=req.hermitian,
        method=req.method,
        check_finite=req.check_finite,
    )
    return x, rank, name(req)


def solve(req: Any) -> tuple[Any, Any, str]:
    x, rank = _engine.solve_xp(
        req.xp,
        req.a,
        req.b,
        req.atol,
        req.rtol,
        dtype=req.dtype,
        hermitian=req.hermitian,
        method=req.method,
        check_finite=req.check_finite,
    )
    return x, rank, name(req)


def damped(req: Any) -> Any:
    xp = req.xp
    lam = xp.asarray(np.asarray(req.damping), device=array_api_compat.device(req.a))
    return _engine.damped_xp(
        xp,
        req.a,
        lam,
        req.b,
        dtype=req.dtype,
        hermitian=req.hermitian,
        check_finite=req.check_finite,
    )
