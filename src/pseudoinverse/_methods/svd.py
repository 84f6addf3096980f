"""The plain SVD method: ``A^+ = V diag(1/sigma kept) U^H``.

Accuracy promise: backward stable SVD (LAPACK ``gesdd``, falling back to ``gesvd``);
the result's error is that of ``numpy.linalg.pinv``: about
``max(m, n) * eps * kappa_r`` relative, where ``kappa_r = sigma_max / sigma_r`` is the
condition number of the kept part. Rank decisions follow the rule exactly, on the
computed singular values.

Wide matrices (``m < n``) go through their conjugate transpose, since
``pinv(A) = pinv(A^H)^H`` and LAPACK's tall path is the faster one.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from .._backends import count
from .._tolerance import threshold


def _svd_stacked(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy's batched ``gesdd``: fast for many small matrices, all-or-nothing on failure."""
    return np.linalg.svd(a, full_matrices=False)


def _svd_lapack(a: np.ndarray, driver: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One matrix through SciPy's LAPACK wrapper; raises ``LinAlgError`` on no convergence."""
    return scipy.linalg.svd(a, full_matrices=False, lapack_driver=driver, check_finite=False)


def _svd_one(a: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``gesdd``, then ``gesvd`` (slower, but converges where ``gesdd`` does not)."""
    try:
        return _svd_lapack(a, "gesdd")
    except np.linalg.LinAlgError:
        pass
    try:
        return _svd_lapack(a, "gesvd")
    except np.linalg.LinAlgError as err:
        raise np.linalg.LinAlgError(
            f"pinv: the SVD of batch member {index} did not converge with gesdd nor gesvd"
        ) from err


def svd_batch(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of a stack ``(B, m, n)``; a member that fails ``gesdd`` is redone alone."""
    if a.shape[0] > 1:
        try:
            return _svd_stacked(a)
        except np.linalg.LinAlgError:
            pass  # some member failed: redo each with the fallback driver chain below
    parts = [_svd_one(a[i], i) for i in range(a.shape[0])]
    return tuple(np.stack(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]


def pinv_svd(
    a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-inverse of a finite stack ``(B, m, n)`` by the SVD; returns ``(X, rank)``."""
    m, n = a.shape[-2:]
    if m < n:
        xh, rank = pinv_svd(a.conj().transpose(0, 2, 1), atol, rtol)
        return np.ascontiguousarray(xh.conj().transpose(0, 2, 1)), rank
    u, s, vh = svd_batch(a)
    tol = threshold(s[:, 0], atol, rtol)
    keep = s > tol[:, None]
    s_inv = np.where(keep, 1 / np.where(keep, s, 1), 0).astype(s.dtype)
    x = (vh.conj().transpose(0, 2, 1) * s_inv[:, None, :]) @ u.conj().transpose(0, 2, 1)
    return x, keep.sum(axis=-1, dtype=np.int64)


def pinv_svd_xp(xp: Any, a: Any, atol: Any, rtol: Any, *, hermitian: bool = False) -> tuple:
    """The same method written once against the Array API standard (any backend).

    ``a`` is ``(..., m, n)``; ``atol``/``rtol`` are real arrays of the batch shape.
    Masks, not slices: the rank never shapes an array (jit, vmap and Dask stay static).
    """
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    smax = xp.max(s, axis=-1) if s.shape[-1] else xp.zeros(s.shape[:-1], dtype=s.dtype)
    tol = xp.maximum(atol, rtol * smax)
    keep = s > tol[..., None]
    s_inv = xp.where(keep, 1 / xp.where(keep, s, xp.ones_like(s)), xp.zeros_like(s))
    vs = _ct(xp, vh) * xp.astype(s_inv, a.dtype)[..., None, :]
    return vs @ _ct(xp, u), count(xp, keep)


def _ct(xp: Any, x: Any) -> Any:
    """Conjugate transpose of the last two axes."""
    x = xp.matrix_transpose(x)
    return xp.conj(x) if xp.isdtype(x.dtype, "complex floating") else x
