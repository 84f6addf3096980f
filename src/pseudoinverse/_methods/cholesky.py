"""Hermitian positive definite fast path: ``A^+ = A^{-1}`` by Cholesky (about ``n^3``).

Only the lower triangle of ``A`` is read: the C-ordered ``a`` seen as a Fortran array is
``A^T = conj(A)``, whose *upper* triangle is ``A``'s lower one, so ``potrf``/``pocon``/
``potri`` run with ``uplo="U"`` on it, and the inverse of ``conj(A)`` read back in C
order is ``conj(A^{-1})^T = A^{-1}``. ``potrf`` succeeding proves positive definiteness
(in floating point); then ``|eigenvalues| = singular values`` and the a-posteriori
residual certificate (``certificate.certify``; proof in ``certificate.py``) proves that
the eigh path would keep every eigenvalue, so the rank is ``n``. Its product ``X W`` has
``W`` the Hermitian matrix the lower triangle defines, formed by ``symm``/``hemm``,
which read that triangle only (in the Fortran view: ``conj(X) conj(A)``, the conjugate
of ``X A``, same singular values); ``sigma_max <= ||W||_F``, computed from the lower
triangle with ``lantr``. Anything else (not PD, or not certified) returns ``None`` and
the caller takes ``eigh``. Cost: ``n^3`` (Cholesky and ``potri``) plus ``2 n^3`` for
the residual product, formed by blocks of rows (a bounded buffer).

Accuracy promise: relative error about ``n * eps * kappa``, that of ``eigh``.

``pinv_eigh_one`` is the lean eigh path for one large matrix: with ``Y = V
diag(|w|^-1/2)`` on the kept eigenvalues, ``A^+ = Y_+ Y_+^H - Y_- Y_-^H`` (the columns of
positive and negative eigenvalues), two ``syrk``/``herk`` updates of one triangle: half
the flops of the ``gemm`` that ``numpy.linalg.pinv(hermitian=True)`` spends, no
temporary beyond ``V`` and ``X``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas, lapack

from .._tolerance import threshold
from .certificate import certify
from .eigh import _eigh_one
from .qr import _eps, hopeless

_BLOCK = 256  # rows per block when mirroring the triangle (bounded temporaries)


def mirror_lower(z: np.ndarray) -> None:
    """Fill the strict upper triangle of C-ordered ``z`` with the conjugate of its lower."""
    n = z.shape[0]
    for r0 in range(0, n, _BLOCK):
        r1 = min(r0 + _BLOCK, n)
        d = z[r0:r1, r0:r1]
        d[...] = np.tril(d) + np.tril(d, -1).conj().T
        if r1 < n:
            z[r0:r1, r1:] = z[r1:, r0:r1].conj().T


def cholesky_inverse(
    a: np.ndarray, atol: float, rtol: float, eps_in: float | None = None
) -> np.ndarray | None:
    """Certified ``A^{-1}`` of a Hermitian PD ``a`` (lower triangle), or ``None``;
    ``eps_in`` is that of the precision eigh would run in (default ``a``'s)."""
    n = a.shape[0]
    at = a.T  # Fortran view; its upper triangle is a's lower triangle
    potrf, pocon, potri, lantr = lapack.get_lapack_funcs(
        ("potrf", "pocon", "potri", "lantr"), (at,)
    )
    tri = float(lantr("F", at, uplo="U", diag="N"))
    diag = float(np.linalg.norm(np.diagonal(a)))
    fro = math.sqrt(max(2 * tri * tri - diag * diag, 0.0))  # ||A||_F from one triangle
    c, info = potrf(at, lower=0, clean=0)  # copies: `a` is never modified
    if info != 0:
        return None  # not positive definite
    rcond, info = pocon(c, 1.0, uplo="U")  # anorm = 1: rcond = 1 / est(||A^{-1}||_1)
    if info != 0 or rcond <= 0 or hopeless(1 / rcond, n, fro / math.sqrt(n), atol, rtol):
        return None
    inv, info = potri(c, lower=0, overwrite_c=1)
    if info != 0:
        return None
    z = inv.T  # C order: its lower triangle is that of A^{-1}
    mirror_lower(z)  # now `inv` (Fortran) is all of conj(A^{-1})
    (hemm,) = blas.get_blas_funcs(("hemm" if np.iscomplexobj(a) else "symm",), (at,))

    def product(x: np.ndarray, _: None, rows: slice) -> np.ndarray:
        # rows of conj(X) conj(A), A from the upper triangle of the Fortran view (a's lower)
        return hemm(1.0, at, x[rows], side=1, lower=0)

    eps = _eps(a.dtype)
    eps_in = eps if eps_in is None else eps_in
    verdict = certify(inv, None, atol, rtol, eps_in, work_eps=eps, w_fro=fro, product=product)
    if not verdict.accepted:
        return None
    return z


def pinv_eigh_one(a: np.ndarray, atol: float, rtol: float, index: int = 0) -> tuple:
    """``(A^+, rank)`` of one Hermitian matrix (lower triangle) by ``eigh`` and ``herk``."""
    n = a.shape[0]
    w, v = _eigh_one(a, index)  # ascending eigenvalues; v is ours (Fortran order)
    absw = np.abs(w)
    tol = threshold(absw.max(initial=0.0), np.float64(atol), np.float64(rtol))
    keep = absw > tol
    v = np.asfortranarray(v)
    v *= np.where(keep, 1 / np.sqrt(np.where(keep, absw, 1)), 0).astype(v.real.dtype)
    neg = int(np.count_nonzero(w < 0))
    name = "herk" if np.iscomplexobj(v) else "syrk"
    (rk,) = blas.get_blas_funcs((name,), (v,))
    c = np.zeros((n, n), dtype=a.dtype, order="F")
    if neg < n:
        c = rk(1.0, v[:, neg:], beta=0.0, c=c, lower=0, overwrite_c=1)
    if neg > 0:
        c = rk(-1.0, v[:, :neg], beta=1.0, c=c, lower=0, overwrite_c=1)
    x = c.T  # C order; its lower triangle is the conjugate of X's (Fortran upper)
    mirror_lower(x)
    if np.iscomplexobj(x):
        np.conjugate(x, out=x)
    return x, int(np.count_nonzero(keep))
