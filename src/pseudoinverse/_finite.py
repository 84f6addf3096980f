"""The ``check_finite`` rule, written once for every namespace.

Only what is read is checked: with ``hermitian=True``, the lower triangle, diagonal
included (a NaN in the imaginary part of a diagonal entry counts, although the Hermitian
part drops that imaginary part). A matrix with NaN or Inf either raises
``numpy.linalg.LinAlgError`` (naming the first such batch index) or, with
``check_finite=False``, is computed as zeros and its result set to NaN by the caller.

No implicit rank promotion (JAX's ``jax_numpy_rank_promotion="raise"``): every
elementwise operand has the rank of ``a``.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np


def bad_members(xp: Any, a: Any, hermitian: bool) -> Any:
    """Boolean array of the batch shape: does each matrix hold NaN/Inf where it is read?

    Must be given the raw input (before any Hermitian part is taken).
    """
    fast = xp is np and a.ndim == 3 and a.flags.c_contiguous and a.size and a.dtype.isnative
    if fast and not hermitian:  # native byte order: the real view below reads the bytes
        return _bad_members_numpy(a)
    finite = xp.isfinite(a)
    if hermitian:  # the strict upper triangle is never read, so never checked
        m, n = a.shape[-2:]
        device = None if xp is np else array_api_compat.device(a)
        rows = xp.reshape(xp.arange(m, device=device), (m, 1))
        cols = xp.reshape(xp.arange(n, device=device), (1, n))
        upper = xp.reshape(rows < cols, (1,) * (a.ndim - 2) + (m, n))  # a's rank
        finite = finite | upper
    return ~xp.all(finite, axis=(-2, -1))


def _bad_members_numpy(a: np.ndarray) -> np.ndarray:
    """``bad_members`` of a C-contiguous NumPy stack, fast: a member's sum is NaN/Inf if
    it holds NaN/Inf (a product with ones, one pass), else finite unless the sum
    overflowed; only those candidates get the exact (slower, per member) test."""
    flat = a.reshape(len(a), -1)
    if flat.dtype.kind == "c":
        flat = flat.view(np.finfo(flat.dtype).dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        if flat.shape[1] <= 4096:  # short rows: one matrix-vector product is fastest
            sums = flat @ np.ones(flat.shape[1], dtype=flat.dtype)
        else:  # long rows: NumPy's pairwise sum, no vector of ones as large as a row
            sums = flat.sum(axis=1)
        candidate = ~np.isfinite(sums)
    if not candidate.any():
        return candidate
    bad = np.zeros(len(a), dtype=bool)
    bad[candidate] = ~np.isfinite(flat[candidate]).all(axis=1)
    return bad


def message(index: tuple[int, ...], what: str = "A") -> str:
    """The error for a bad matrix at ``index`` (``()`` for a single matrix)."""
    where = f" in the matrix at batch index {index}" if index else ""
    return f"{what} contains NaN or Inf{where} (pass check_finite=False for a NaN result)"


def raise_if_bad(xp: Any, bad: Any, what: str = "A") -> None:
    """Raise ``numpy.linalg.LinAlgError`` (a ``ValueError``) naming the first bad batch
    index, if any (one host sync)."""
    if not bool(xp.any(bad)):
        return
    flat = xp.reshape(xp.astype(bad, xp.int8), (-1,))
    first = int(xp.argmax(flat))
    index = np.unravel_index(first, tuple(bad.shape)) if bad.ndim else ()
    raise np.linalg.LinAlgError(message(tuple(int(i) for i in index), what))


def raise_if_bad_pair(xp: Any, bad_a: Any, bad_b: Any) -> None:
    """``raise_if_bad`` for a solve: the first bad member of ``A`` or ``B`` (both of the
    batch shape), the error naming the array that is bad there (``A`` where both are)."""
    if bad_b is None:
        raise_if_bad(xp, bad_a)
        return
    bad = bad_a | bad_b
    if not bool(xp.any(bad)):
        return
    first = int(xp.argmax(xp.reshape(xp.astype(bad, xp.int8), (-1,))))
    in_a = bool(xp.reshape(xp.broadcast_to(bad_a, bad.shape), (-1,))[first])
    raise_if_bad(xp, bad, "A" if in_a else "B")


def zero_bad(xp: Any, a: Any, bad: Any) -> Any:
    """``a`` with its bad members replaced by zero matrices (differentiable: a ``where``,
    so no NaN reaches a gradient, and the zero matrix's pseudo-inverse is finite)."""
    return xp.where(bad[..., None, None], xp.zeros_like(a), a)


def nan_bad(xp: Any, x: Any, rank: Any, bad: Any) -> tuple[Any, Any]:
    """``(x, rank)`` with the bad members' results set to all-NaN and rank 0."""
    x = xp.where(bad[..., None, None], xp.full_like(x, float("nan")), x)
    return x, xp.where(bad, xp.zeros_like(rank), rank)
