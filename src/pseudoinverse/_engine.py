"""The compute beneath every adapter: NumPy stacks and the portable Array API core.

Both take validated input (``_api`` checked it) and share the non-finite rule of
``_finite``: a matrix with NaN/Inf raises (``check_finite=True``) or gets an all-NaN
result and rank 0, the others are computed normally. On NumPy stacks only the good
members reach a method, each scaled first by a power of two where its entries are
extreme; the portable core uses masks only (jit, vmap and Dask stay static). Nothing
here imports the public layer above it.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from . import _finite, _methods


def compute_numpy(
    a: np.ndarray,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple[np.ndarray, np.ndarray]:
    *batch, m, n = a.shape
    stack = np.ascontiguousarray(a.reshape(-1, m, n), dtype=dtype)
    bad = _finite.bad_members(np, stack, hermitian)
    any_bad = bool(bad.any())
    if any_bad and check_finite:
        _finite.raise_if_bad(np, bad.reshape(batch))
    atol, rtol = atol.reshape(-1), rtol.reshape(-1)
    if any_bad:  # only the good members are computed (a method may refuse a zero matrix)
        good = ~bad
        x = np.full((len(stack), n, m), np.nan, dtype=stack.dtype)
        rank = np.zeros(len(stack), dtype=np.int64)
        if good.any():
            x[good], rank[good] = _run(method, stack[good], atol[good], rtol[good], hermitian)
    else:
        x, rank = _run(method, stack, atol, rtol, hermitian)
    return x.reshape(*batch, n, m), rank.reshape(batch)


def _run(
    method: str, stack: np.ndarray, atol: np.ndarray, rtol: np.ndarray, hermitian: bool
) -> tuple[np.ndarray, np.ndarray]:
    """A finite stack through the method, scaled first where its entries are extreme."""
    stack, atol, scale = _scaled(stack, atol, hermitian)
    x, rank = _methods.run_numpy(method, stack, atol, rtol, hermitian)
    if scale is not None:  # pinv(A) = s pinv(s A), exact for a power of two s
        x = _times(x, scale)
    return x, rank


# Entries of magnitude within [2**-E, 2**E] leave every method's sums of squares and Gram
# matrices (up to ~1e10 terms) clear of overflow and of gradual underflow in the dtype
# in which it computes; outside, the matrix is scaled first.
_SAFE_EXPONENT = {4: 32, 8: 256}  # float32 / float64 (by the real dtype's itemsize)


def _real_view(stack: np.ndarray) -> np.ndarray:
    """A C-contiguous stack as reals: a complex one as pairs ``(B, m, 2 n)`` (a view)."""
    if stack.dtype.kind != "c":
        return stack
    return np.ascontiguousarray(stack).view(np.finfo(stack.dtype).dtype)


def _times(stack: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``stack`` times a power of two per member, in its dtype: exact, and real
    arithmetic only (a complex product would turn an unread Inf into NaN)."""
    with np.errstate(over="ignore", under="ignore"):  # only if the true value is
        parts = _real_view(stack) * scale[:, None, None]  # out of range; float64: exact
    return parts.astype(np.finfo(stack.dtype).dtype).view(stack.dtype)


def _scaled(
    stack: np.ndarray, atol: np.ndarray, hermitian: bool
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Scale the members whose largest entry is outside the safe range by a power of two.

    ``pinv(s A) = pinv(A) / s`` and ``sigma(s A) = s sigma(A)``: with ``atol`` scaled
    alike the rank decision is unchanged, and a power of two is exact, so the result
    ``s pinv(s A)`` is that of the unscaled computation where that one does not overflow
    (``OverflowError``/``ZeroDivisionError`` in the certificates, lost accuracy in a
    squared norm). With ``hermitian`` only the lower triangle, the part that is read,
    sets the scale. Returns ``(stack, atol, s or None)``; ``stack`` is not modified.
    """
    limit = _SAFE_EXPONENT[np.finfo(stack.dtype).dtype.itemsize]
    flat = _real_view(np.tril(stack) if hermitian else stack).reshape(len(stack), -1)
    big = np.maximum(flat.max(axis=1), -flat.min(axis=1)).astype(np.float64)
    _, exponent = np.frexp(big)  # big = f 2**exponent, f in [0.5, 1)
    outside = (big > 0) & np.isfinite(big) & (np.abs(exponent) > limit)
    if not outside.any():
        return stack, atol, None
    # 2**1000 stays finite: a subnormal maximum (exponent < -1000) ends within the range
    scale = np.ldexp(1.0, np.where(outside, np.clip(-exponent, -1000, 1000), 0))
    with np.errstate(over="ignore", under="ignore"):
        atol = atol * scale
    return _times(stack, scale), atol, scale


def compute_xp(
    xp: Any,
    a: Any,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple[Any, Any]:
    """The portable path: any Array API namespace, masks only, no data-dependent shape."""
    device = array_api_compat.device(a)
    a = xp.astype(a, dtype)
    bad = _finite.bad_members(xp, a, hermitian)
    if check_finite:
        _finite.raise_if_bad(xp, bad)
    a = xp.where(bad[..., None, None], xp.zeros_like(a), a)
    real = xp.float32 if dtype in (xp.float32, xp.complex64) else xp.float64
    atol_x = xp.asarray(atol, dtype=real, device=device)
    rtol_x = xp.asarray(rtol, dtype=real, device=device)
    scale = _scale_xp(xp, a, real)
    a, atol_x = a * xp.astype(scale, a.dtype)[..., None, None], atol_x * scale
    x, rank = _methods.run_xp(xp, method, a, atol_x, rtol_x, hermitian)
    x = x * xp.astype(scale, x.dtype)[..., None, None]  # pinv(A) = s pinv(s A)
    nan = xp.full_like(x, float("nan"))
    x = xp.where(bad[..., None, None], nan, x)
    return x, xp.where(bad, xp.zeros_like(rank), rank)


def _scale_xp(xp: Any, a: Any, real: Any) -> Any:
    """``_scaled``'s rule in Array API operations, with no host sync (jit, vmap stay
    static): per matrix ``2**-e`` where its largest entry ``~2**e`` is outside the safe
    range, else 1 (exact); the backend's SVD then sees no overflowing squares and no
    subnormal input (on which LAPACK's SVD returned NaN or failed to converge)."""
    limit = _SAFE_EXPONENT[8 if real == xp.float64 else 4]
    clip = 1000 if real == xp.float64 else 126  # 2**clip stays finite in the dtype
    big = xp.max(xp.abs(a), axis=(-2, -1))
    exponent = xp.floor(xp.log2(xp.where(big > 0, big, xp.ones_like(big))))
    outside = xp.abs(exponent) > limit
    shift = xp.clip(-exponent, min=-clip, max=clip)
    two = xp.full_like(big, 2.0)
    return xp.where(outside, xp.pow(two, shift), xp.ones_like(big))
