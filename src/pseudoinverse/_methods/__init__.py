"""The methods, one file each, all with one signature, and the rule ``"auto"`` follows.

Every NumPy implementation is called as ``fn(a, atol, rtol, hermitian=...)`` on a finite
C-contiguous stack ``a`` of shape ``(B, m, n)`` (``B, m, n >= 1``; float32, float64,
complex64 or complex128) with float64 tolerances of shape ``(B,)``, must not modify
``a``, and returns ``(X, rank)``: ``X`` of shape ``(B, n, m)`` and ``a``'s dtype, ``rank``
int64 of shape ``(B,)``. Portable (Array API) implementations take ``xp`` first and any
batch shape.

The ``"auto"`` rule (for NumPy-backed input):

1. ``hermitian=True``: ``"eigh"``.
2. otherwise ``"svd"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .eigh import hermitian_from_lower, pinv_eigh, pinv_eigh_xp
from .svd import pinv_svd, pinv_svd_xp

NumpyMethod = Callable[..., tuple[np.ndarray, np.ndarray]]

# name -> (NumPy implementation, portable implementation, requires hermitian=True)
_REGISTRY: dict[str, tuple[NumpyMethod, Callable[..., tuple], bool]] = {
    "svd": (pinv_svd, pinv_svd_xp, False),
    "eigh": (pinv_eigh, pinv_eigh_xp, True),
}

METHODS: tuple[str, ...] = ("auto", *_REGISTRY)


def validate(method: Any, hermitian: bool) -> str:
    """Check a method name against the registry and ``hermitian``; return it."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(METHODS)}")
    if method != "auto" and _REGISTRY[method][2] and not hermitian:
        raise ValueError(f'method="{method}" needs hermitian=True (it reads one triangle only)')
    return method


def choose(method: str, hermitian: bool, shape: tuple[int, ...], dtype: np.dtype) -> str:
    """The concrete method for ``method`` (``"auto"`` resolved by the rule above)."""
    if method != "auto":
        return method
    return "eigh" if hermitian else "svd"


def run_numpy(
    method: str, a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, hermitian: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Run a NumPy implementation on a stack ``(B, m, n)``."""
    name = choose(method, hermitian, a.shape, a.dtype)
    fn, _, reads_lower = _REGISTRY[name]
    if hermitian and not reads_lower:  # a general method sees the matrix the lower triangle defines
        a = hermitian_from_lower(np, a)
    return fn(a, atol, rtol, hermitian=hermitian)


def run_xp(xp: Any, method: str, a: Any, atol: Any, rtol: Any, hermitian: bool) -> tuple[Any, Any]:
    """Run the portable implementation of ``method`` (``"auto"``: svd, or eigh)."""
    name = "eigh" if hermitian and method in ("auto", "eigh") else "svd"
    if hermitian and name != "eigh":
        a = hermitian_from_lower(xp, a)
    return _REGISTRY[name][1](xp, a, atol, rtol, hermitian=hermitian)
