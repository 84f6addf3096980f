"""The ``check_finite`` rule, written once for every namespace.

Only what is read is checked: with ``hermitian=True``, the lower triangle. A matrix with
NaN or Inf either raises (naming the first such batch index) or, with
``check_finite=False``, is computed as zeros and its result set to NaN by the caller.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np


def bad_members(xp: Any, a: Any, hermitian: bool) -> Any:
    """Boolean array of the batch shape: does each matrix hold NaN/Inf where it is read?"""
    finite = xp.isfinite(a)
    if hermitian:  # the strict upper triangle is never read, so never checked
        m, n = a.shape[-2:]
        device = None if xp is np else array_api_compat.device(a)
        upper = xp.arange(m, device=device)[:, None] < xp.arange(n, device=device)[None, :]
        finite = finite | upper
    return ~xp.all(finite, axis=(-2, -1))


def message(index: tuple[int, ...]) -> str:
    """The error for a bad matrix at ``index`` (``()`` for a single matrix)."""
    where = f" in the matrix at batch index {index}" if index else ""
    return f"A contains NaN or Inf{where} (pass check_finite=False for a NaN result)"


def raise_if_bad(xp: Any, bad: Any) -> None:
    """Raise ``ValueError`` naming the first bad batch index, if any (one host sync)."""
    if not bool(xp.any(bad)):
        return
    flat = xp.reshape(xp.astype(bad, xp.int8), (-1,))
    first = int(xp.argmax(flat))
    index = np.unravel_index(first, tuple(bad.shape)) if bad.ndim else ()
    raise ValueError(message(tuple(int(i) for i in index)))
