"""The spectral filter that every method shares, applied to a right-hand side.

With ``A = U diag(sigma) V^H``, a filtered inverse is ``V diag(f(sigma)) U^H``:

* ``pinv``: ``f = 1/sigma`` where ``sigma > tol`` (``tol = max(atol, rtol sigma_max)``),
  else 0;
* ``damped_pinv`` (Tikhonov, damped least squares): ``f = sigma / (sigma^2 + lambda^2)``,
  written ``1 / (sigma (1 + (lambda/sigma)^2))`` or ``r / (lambda (1 + r^2))``
  (``r = sigma/lambda``) by whichever ratio is at most 1, so that nothing overflows or
  underflows on the way; ``f = 0`` where ``sigma = lambda = 0`` (``lambda = 0`` is then
  exactly the pseudo-inverse with ``atol = rtol = 0``, with no NaN at exactly zero
  singular values).

A solve applies the filter to ``B`` without forming the matrix:
``X B = V (f * (U^H B))``, ``O((m + n) p k)`` after the SVD instead of ``O(m n p)``.

The decompositions are those of ``svd.py`` and ``eigh.py`` (NumPy's batched ``gesdd``
for stacks, the ``gesdd``/``gesvd`` chain per matrix; wide matrices through ``A^H``,
exactly as ``pinv_svd``), so the singular values, hence the rank, are those ``pinv``
computes. Accuracy: that of the SVD method (``svd.py``): backward stable, error about
``max(m, n) eps kappa`` relative for ``pinv``; for the damped filter, the SVD's
perturbation ``eps sigma_max`` of each ``sigma`` moves ``f`` by at most
``eps sigma_max / lambda^2``... the measured figures are in ``damped_pinv``'s docstring.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._tolerance import threshold
from .eigh import eigh_batch
from .svd import svd_batch


def _ch(x: np.ndarray) -> np.ndarray:
    """Conjugate transpose of a stack's last two axes (a view for real data)."""
    x = x.transpose(0, 2, 1)
    return x.conj() if np.iscomplexobj(x) else x


def damped_filter(s: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """``sigma / (sigma^2 + lambda^2)`` elementwise, with neither overflow nor NaN.

    ``s`` (B, p) >= 0, ``lam`` (B,) >= 0, in ``s``'s dtype. 0 where both are 0.
    """
    lam = np.broadcast_to(lam[:, None], s.shape).astype(s.dtype)
    big = np.maximum(s, lam)
    small = np.minimum(s, lam)
    safe = np.where(big > 0, big, 1)
    r = small / safe  # <= 1: r**2 cannot overflow
    # over/divide: only where the true value is out of range (lambda = 0 and a tiny
    # sigma, as pinv(A, atol=0, rtol=0) gives)
    with np.errstate(under="ignore", over="ignore", divide="ignore"):
        denom = safe * (1 + r * r)
        f = np.where(s >= lam, 1 / denom, r / denom)
    # lambda = 0 and a sigma whose reciprocal overflows: the largest finite value, not
    # inf (inf * 0 in the products would be NaN where the exact entry is finite)
    return np.minimum(np.where(big > 0, f, 0), np.finfo(s.dtype).max).astype(s.dtype)


def _decompose(a: np.ndarray, hermitian: bool):
    """``(u, s, vh)``, with ``A = u diag(s) vh`` of the tall orientation, and whether the
    stack was transposed: ``A^H = u s vh`` for wide input (as ``pinv_svd`` does)."""
    m, n = a.shape[1:]
    if hermitian:
        w, v = eigh_batch(a)
        return v * np.sign(np.where(w == 0, 1, w))[:, None, :], np.abs(w), _ch(v), False
    if m < n:
        u, s, vh = svd_batch(np.ascontiguousarray(_ch(a)))
        return u, s, vh, True
    u, s, vh = svd_batch(a)
    return u, s, vh, False


def _apply(u, f, vh, b, wide: bool) -> np.ndarray:
    """``V diag(f) U^H B`` from the factors of ``A`` (``wide``: of ``A^H``)."""
    if wide:  # A^H = u s vh -> A = vh^H s u^H, A^+ = u f vh
        return u @ (f[:, :, None].astype(u.dtype) * (vh @ b))
    return _ch(vh) @ (f[:, :, None].astype(u.dtype) * (_ch(u) @ b))


def _matrix(u, f, vh, wide: bool) -> np.ndarray:
    if wide:
        return (u * f[:, None, :].astype(u.dtype)) @ vh
    return (_ch(vh) * f[:, None, :].astype(u.dtype)) @ _ch(u)


def solve_svd(
    a: np.ndarray, b: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``pinv(A) @ B`` for a finite stack ``a (B, m, n)``, ``b (B, m, k)``: ``(x, rank)``.

    The SVD (with ``hermitian``, the eigendecomposition of the lower triangle: the
    threshold applies to ``|w|``) applied to ``B`` with the filter ``1/sigma`` kept.
    """
    u, s, vh, wide = _decompose(a, hermitian)
    tol = threshold(s.max(axis=-1, initial=0), atol, rtol)
    keep = s > tol[:, None]
    f = np.where(keep, 1 / np.where(keep, s, 1), 0).astype(s.dtype)
    return _apply(u, f, vh, b, wide), keep.sum(axis=-1, dtype=np.int64)


def damped_svd(
    a: np.ndarray, lam: np.ndarray, b: np.ndarray | None = None, *, hermitian: bool = False
) -> np.ndarray:
    """The damped inverse ``V diag(sigma / (sigma^2 + lambda^2)) U^H`` of a finite stack
    ``a (B, m, n)`` (``lam`` float (B,) >= 0), or its product with ``b (B, m, k)``."""
    u, s, vh, wide = _decompose(a, hermitian)
    f = damped_filter(s, lam)
    if b is None:
        return _matrix(u, f, vh, wide)
    return _apply(u, f, vh, b, wide)


def damped_factors(t: np.ndarray, lam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X, P)`` of a finite tall stack ``t (B, M, N)`` (``M >= N``; ``lam`` (B,)):
    ``X = V diag(f) U^H`` and ``P = V diag(1 / (sigma^2 + lambda^2)) V^H`` (0 where both
    are 0), the forward pass of ``_damped``'s derivative rules, from the SVD."""
    u, s, vh = svd_batch(t)
    f = damped_filter(s, lam)
    lam2 = np.broadcast_to(lam[:, None], s.shape).astype(s.dtype)
    with np.errstate(over="ignore", under="ignore", divide="ignore"):
        d = s * s + lam2 * lam2
        g = np.where(d > 0, 1 / np.where(d > 0, d, 1), 0)
        g = np.minimum(g, np.finfo(s.dtype).max).astype(s.dtype)  # as damped_filter
    v = _ch(vh)
    return _matrix(u, f, vh, False), (v * g[:, None, :].astype(v.dtype)) @ vh


def damped_factors_xp(xp: Any, t: Any, lam: Any) -> tuple[Any, Any]:
    """``(X, P)`` of a tall stack ``t (..., M, N)``, ``lam`` real of the batch shape.

    ``t`` is scaled so that its entries are at most about 1 (the engine's rule), so
    ``sigma^2 + lambda^2`` neither overflows nor underflows where it matters.
    """
    u, s, vh = xp.linalg.svd(t, full_matrices=False)
    lam = lam[..., None]
    d = s * s + lam * lam
    pos = d > 0
    safe = xp.where(pos, d, xp.ones_like(d))
    f = xp.where(pos, s / safe, xp.zeros_like(s))
    g = xp.where(pos, 1 / safe, xp.zeros_like(s))
    v = _ct_xp(xp, vh)
    x = (v * xp.astype(f, t.dtype)[..., None, :]) @ _ct_xp(xp, u)
    p = (v * xp.astype(g, t.dtype)[..., None, :]) @ vh
    return x, p


def _ct_xp(xp: Any, x: Any) -> Any:
    x = xp.matrix_transpose(x)
    return xp.conj(x) if xp.isdtype(x.dtype, "complex floating") else x
