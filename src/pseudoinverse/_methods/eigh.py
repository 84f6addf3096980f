"""The Hermitian method: ``A^+ = V diag(1/w kept) V^H`` from ``A = V diag(w) V^H``.

Only the lower triangle of ``A`` is read. The threshold applies to ``|w|``, the singular
values of a Hermitian matrix. Accuracy promise: that of LAPACK ``syevd``/``heevd``
(falling back to ``syevr``/``heevr``), the same as ``numpy.linalg.pinv(hermitian=True)``
and ``scipy.linalg.pinvh``: about ``n * eps * kappa_r`` relative.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np
import scipy.linalg

from .._tolerance import count, threshold
from .svd import _ct


def _eigh_one(a: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """``evd`` then ``evr`` on one matrix, lower triangle."""
    for driver in ("evd", "evr"):
        try:
            return scipy.linalg.eigh(a, lower=True, driver=driver, check_finite=False)
        except np.linalg.LinAlgError as err:
            last = err
    raise np.linalg.LinAlgError(
        f"pinv: the eigendecomposition of batch member {index} did not converge"
    ) from last


def _eigh_member(a: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One member of a failed stack: NumPy's ``evd`` as in the stack, then ``_eigh_one``."""
    try:
        return np.linalg.eigh(a, UPLO="L")
    except np.linalg.LinAlgError:
        return _eigh_one(a, index)


def eigh_batch(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of a stack ``(B, n, n)`` from its lower triangles, by NumPy's
    ``evd`` whatever ``B`` (a matrix gets the same result alone and in any stack); a
    member that fails is redone alone, down the driver chain."""
    try:
        return np.linalg.eigh(a, UPLO="L")
    except np.linalg.LinAlgError:
        pass
    parts = [_eigh_member(a[i], i) for i in range(a.shape[0])]
    return np.stack([p[0] for p in parts]), np.stack([p[1] for p in parts])


def pinv_eigh(
    a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-inverse of a finite Hermitian stack ``(B, n, n)``; returns ``(X, rank)``."""
    w, v = eigh_batch(a)
    absw = np.abs(w)
    tol = threshold(absw.max(axis=-1), atol, rtol)
    keep = absw > tol[:, None]
    w_inv = np.where(keep, 1 / np.where(keep, w, 1), 0).astype(w.dtype)
    x = (v * w_inv[:, None, :]) @ v.conj().transpose(0, 2, 1)
    return x, keep.sum(axis=-1, dtype=np.int64)


def hermitian_from_lower(xp: Any, a: Any) -> Any:
    """The Hermitian matrix that ``a``'s lower triangle defines (the upper is never read).

    ``A``'s strict lower triangle, its conjugate transpose above, and the real part of
    the diagonal (LAPACK's Hermitian routines ignore its imaginary part too). Masks with
    ``where``, never multiplication: NaN/Inf in the unread upper triangle stays out, and
    gradients land on the lower triangle only.
    """
    n = a.shape[-1]
    index = xp.arange(n, device=None if xp is np else array_api_compat.device(a))
    lead = (1,) * (a.ndim - 2)  # masks of a's rank: no implicit rank promotion (JAX)
    rows = xp.reshape(index, (*lead, n, 1))
    cols = xp.reshape(index, (*lead, 1, n))
    zero = xp.zeros_like(a)
    strict = xp.where(rows > cols, a, zero)
    diag = xp.where(rows == cols, a, zero)
    if xp.isdtype(a.dtype, "complex floating"):
        diag = xp.astype(xp.real(diag), a.dtype)
    return strict + _ct(xp, strict) + diag


def pinv_eigh_xp(xp: Any, a: Any, atol: Any, rtol: Any, *, hermitian: bool = True) -> tuple:
    """The same method against the Array API standard; masks, never slices."""
    w, v = xp.linalg.eigh(hermitian_from_lower(xp, a))
    absw = xp.abs(w)
    tol = xp.maximum(atol, rtol * xp.max(absw, axis=-1))
    keep = absw > tol[..., None]
    w_inv = xp.where(keep, 1 / xp.where(keep, w, xp.ones_like(w)), xp.zeros_like(w))
    return (v * xp.astype(w_inv, a.dtype)[..., None, :]) @ _ct(xp, v), count(xp, keep)
