"""Certified full-rank fast path: ``A^+`` as an inverse (LU) or ``R^{-1} Q^H`` (QR).

When ``A`` (``m x n``) has full rank ``k = min(m, n)`` and every singular value is
kept by the tolerance rule, ``A^+ = A^{-1}`` (square, LU: ``getrf`` + ``getri``, about
``2 n^3`` flops) or ``A^+ = R^{-1} Q^H`` from ``A = QR`` (tall; wide input through
``A^H``, Householder ``geqrf`` + ``orgqr``/``ungqr`` + ``trsm``, about ``4 m n^2``), a
fraction of the SVD's ``~22 n^3``. This path is only taken when the rule below *proves*
that the SVD path would keep every singular value, so the result and the rank are those
of the SVD method up to rounding.

The certificate (``certified``)
-------------------------------
Notation: ``p = max(m, n)``, ``eps`` the unit roundoff of the dtype, ``X`` the exact
pseudo-inverse and ``X~`` the computed one; ``tol = max(atol, rtol * sigma_max)``.

1. ``S = min(||A||_F, sqrt(||A||_1 ||A||_inf)) >= sigma_max`` (both bound ``||A||_2``;
   computed exactly by ``lange``).
2. ``nu = min(||X~||_F, sqrt(||X~||_1 ||X~||_inf)) >= ||X~||_2`` (likewise, on the
   computed inverse: no estimator, no estimator slack).
3. Forward error of the inverse: LU, QR and Cholesky inverses satisfy
   ``||X~ - X|| <= rho ||X||`` with ``rho <= g p eps kappa`` (Higham, *Accuracy and
   Stability of Numerical Algorithms*, 2nd ed., sections 14.1-14.3, 19.3; ``g`` is the
   growth factor ``max|U| / max|A|`` for LU, 1 for QR and Cholesky). With
   ``kappa = sigma_max ||X||_2 <= S ||X||_2``, ``q = g p eps S nu <= 1/8`` gives
   ``rho (1 - rho) <= q``, hence ``rho <= 0.1465`` (smaller root of
   ``r^2 - r + 1/8``) and ``||X||_2 <= nu / (1 - rho)``:
   ``sigma_min = 1 / ||X||_2 >= s := 0.85 / nu``.
4. Accept iff ``q <= 1/8`` and ``s > MARGIN * max(atol, rtol * S)`` (``MARGIN = 4``).

Proof that the SVD path then keeps every value (so the rank ``min(m, n)`` is its rank):
a backward stable SVD returns ``sigma~_i`` with ``|sigma~_i - sigma_i| <= p eps
sigma_max`` (Weyl's inequality; LAPACK Users' Guide, "Error bounds for the SVD", with
``p(m, n) <= p``). From ``q <= 1/8``: ``p eps S <= 1/(8 nu) = s / 6.8``, so
``sigma~_min >= s - p eps S >= 0.85 s > 3.4 max(atol, rtol S)``, while the SVD's own
threshold is ``max(atol, rtol sigma~_max) <= max(atol, rtol S (1 + p eps)) < 1.01
max(atol, rtol S)``. Hence ``sigma~_min`` exceeds it by a factor above 3: no rank
decision can differ. A matrix with a singular value within a factor ``4 S/sigma_max``
of the threshold never passes and goes to the SVD.

Before the (expensive) inversion, the LAPACK condition estimate (``gecon``/``trcon``/
``pocon``, Hager-Higham 1-norm estimator) screens out hopeless matrices. The estimate
``est <= ||A^{-1}||_1`` is a *lower* bound, so ``sigma_min <= sqrt(n) / est`` is an
*upper* bound on ``sigma_min`` and rejecting when ``sqrt(n) / est <= MARGIN *
max(atol, rtol ||A||_F / sqrt(n))`` only ever sends a matrix to the SVD that could not
have passed (its slack is on the safe side; it never accepts).

Accuracy promise: relative error about ``p * eps * kappa`` (``kappa = sigma_max /
sigma_min``), the same order as the SVD path's (Higham, ch. 14 and 19), and
``kappa <= 1 / (6.8 p eps)`` by construction.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas, lapack

MARGIN = 4.0  # safety factor between sigma_min's lower bound and the threshold (see above)
_Q_MAX = 0.125  # bound on g * p * eps * S * nu, so that rho <= 0.1465 (see step 3)
_SMIN_FACTOR = 0.85  # 1 - 0.1465 rounded down


def _eps(dtype: np.dtype) -> float:
    return float(np.finfo(dtype).eps)


def _norms(x_f: np.ndarray) -> tuple[float, float]:
    """``(||x||_F, min(||x||_F, sqrt(||x||_1 ||x||_inf)))`` of a Fortran-ordered matrix."""
    (lange,) = lapack.get_lapack_funcs(("lange",), (x_f,))
    fro = float(lange("F", x_f))
    return fro, min(fro, math.sqrt(float(lange("1", x_f)) * float(lange("I", x_f))))


def certified(
    smax_up: float, nu: float, growth: float, atol: float, rtol: float, p: int, eps: float
) -> bool:
    """Step 4 of the module docstring: does ``sigma_min`` provably clear the threshold?"""
    if not (math.isfinite(nu) and nu > 0 and math.isfinite(smax_up) and smax_up > 0):
        return False
    if growth * p * eps * smax_up * nu > _Q_MAX:
        return False
    return _SMIN_FACTOR / nu > MARGIN * max(atol, rtol * smax_up)


def hopeless(est_inv_1: float, k: int, smax_lo: float, atol: float, rtol: float) -> bool:
    """Pre-screen: ``est_inv_1 <= ||A^{-1}||_1``; true when the certificate cannot pass."""
    if not (math.isfinite(est_inv_1) and est_inv_1 > 0):
        return True
    return math.sqrt(k) / est_inv_1 <= MARGIN * max(atol, rtol * smax_lo)


def _lu_inverse(a: np.ndarray, atol: float, rtol: float) -> np.ndarray | None:
    """``A^{-1}`` of a square C-ordered ``a`` by LU, or ``None`` when not certified."""
    n = a.shape[0]
    at = a.T  # Fortran-ordered A^T: LU of A^T, whose inverse read in C order is A^{-1}
    getrf, getri, getri_lwork, gecon, lange, lantr = lapack.get_lapack_funcs(
        ("getrf", "getri", "getri_lwork", "gecon", "lange", "lantr"), (at,)
    )
    fro = float(lange("F", at))
    one = float(lange("1", at))
    smax_up = min(fro, math.sqrt(one * float(lange("I", at))))
    lu, piv, info = getrf(at)  # copies: `a` is never modified
    if info != 0:
        return None  # an exactly zero pivot: singular
    rcond, info = gecon(lu, one, norm="1")
    if info != 0 or rcond <= 0 or hopeless(1 / (rcond * one), n, fro / math.sqrt(n), atol, rtol):
        return None
    amax = float(lange("M", at))
    growth = max(1.0, float(lantr("M", lu, uplo="U", diag="N")) / amax)
    lwork, info = getri_lwork(n)
    inv, info = getri(lu, piv, lwork=max(int(lwork.real), 1), overwrite_lu=1)
    if info != 0:
        return None
    _, nu = _norms(inv)
    if not certified(smax_up, nu, growth, atol, rtol, n, _eps(a.dtype)):
        return None
    return inv.T  # C-contiguous A^{-1}


def _qr_inverse(a: np.ndarray, atol: float, rtol: float) -> np.ndarray | None:
    """``R^{-1} Q^H`` (tall) or ``Q R^{-H}`` of ``A^H = QR`` (wide), or ``None``."""
    m, n = a.shape
    wide = m < n
    complex_ = np.iscomplexobj(a)
    w = np.array(a.T if wide else a, order="F")  # our work copy: A, or A^H for wide input
    if wide and complex_:
        np.conjugate(w, out=w)
    rows, k = w.shape
    geqrf, geqrf_lwork, trcon, lange = lapack.get_lapack_funcs(
        ("geqrf", "geqrf_lwork", "trcon", "lange"), (w,)
    )
    orgqr = lapack.get_lapack_funcs("ungqr" if complex_ else "orgqr", (w,))
    (trsm,) = blas.get_blas_funcs(("trsm",), (w,))
    at = a.T  # Fortran view for norms (norms of A^T bound those of A the same way)
    fro = float(lange("F", at))
    smax_up = min(fro, math.sqrt(float(lange("1", at)) * float(lange("I", at))))
    lwork, _ = geqrf_lwork(rows, k)
    qr, tau, _, info = geqrf(w, lwork=max(int(lwork.real), 1), overwrite_a=1)
    r = np.asfortranarray(np.triu(qr[:k, :]))
    if not np.all(np.diagonal(r) != 0):
        return None
    rcond, info = trcon(r, norm="1", uplo="U")
    r1 = float(lange("1", r))
    if info != 0 or rcond <= 0 or hopeless(1 / (rcond * r1), k, fro / math.sqrt(k), atol, rtol):
        return None
    q, _, info = orgqr(qr, tau, lwork=max(int(lwork.real), 1) * 2, overwrite_a=1)
    if wide:  # A^+ = (A^H)^{+H} = Q R^{-H}: Fortran (n x m), copied to C order below
        y = trsm(1.0, r, q, side=1, lower=0, trans_a=2, overwrite_b=1)
        x_f = y
    else:  # A^+ = R^{-1} Q^H, built as its transpose conj(Q) R^{-T} (Fortran m x n)
        if complex_:
            np.conjugate(q, out=q)
        x_f = trsm(1.0, r, q, side=1, lower=0, trans_a=1, overwrite_b=1)
    _, nu = _norms(x_f)
    if not certified(smax_up, nu, 1.0, atol, rtol, max(m, n), _eps(a.dtype)):
        return None
    return np.ascontiguousarray(x_f) if wide else x_f.T


def _cholqr2_inverse(a: np.ndarray, atol: float, rtol: float) -> np.ndarray | None:
    """Non-square ``A^+`` by CholeskyQR2, or ``None`` (then Householder QR is tried).

    CholeskyQR2 (Yamamoto, Nakatsukasa, Yanagisawa & Fukaya, ETNA 44, 2015): with
    ``W = A`` (tall) or ``A^H`` (wide), ``W^H W = R1^H R1``, ``Q1 = W R1^{-1}``,
    ``Q1^H Q1 = R2^H R2``; then ``W = Q R`` with ``Q = Q1 R2^{-1}``, ``R = R2 R1`` and
    ``W^+ = R1^{-1} (Q1^H Q1)^{-1} Q1^H``. All of it is ``gemm``/``syrk``/``trsm``
    (five ``m n^2``-sized products at BLAS-3 speed, against Householder's BLAS-2
    panels). Their Theorem: if ``8 kappa sqrt(m n eps + n (n + 1) eps) <= 1``, ``Q``
    is orthonormal and ``QR = W`` to ``O(eps)``, as Householder's; this condition,
    with ``kappa <= S nu``, is required on top of ``certified``.
    """
    m, n = a.shape
    wide = m < n
    p, q = max(m, n), min(m, n)
    eps = _eps(a.dtype)
    kappa_max = 1 / (8 * math.sqrt((p * q + q * (q + 1)) * eps))
    # W^H W, Fortran-ordered for LAPACK (NumPy uses syrk for real a.T @ a and a @ a.T)
    g1 = np.asfortranarray(a @ a.conj().T if wide else a.conj().T @ a)
    potrf, potri, trcon, lange = lapack.get_lapack_funcs(
        ("potrf", "potri", "trcon", "lange"), (g1,)
    )
    (trsm,) = blas.get_blas_funcs(("trsm",), (g1,))
    r1, info = potrf(g1, lower=0, overwrite_a=1)
    if info != 0:
        return None
    rcond, info = trcon(r1, norm="1", uplo="U")
    # kappa_2(A) = kappa_2(R1) >= est(kappa_1) / q: this rejection is never wrong
    if info != 0 or not rcond > 0 or 1 / rcond > q * kappa_max:
        return None
    if wide:  # Q1^H = R1^{-H} A: left solve on a Fortran copy of A (Fortran m x n)
        q1 = trsm(1.0, r1, np.asfortranarray(a), side=0, lower=0, trans_a=2, overwrite_b=1)
    else:  # Q1^T = R1^{-T} A^T: left solve on the Fortran view a.T, read back as C
        q1 = trsm(1.0, r1, a.T, side=0, lower=0, trans_a=1).T  # C-ordered (m, n)
    # the Gram matrix of Q1 (m x n when tall; for wide, q1 holds Q1^H, n x ... m rows)
    g2 = np.asfortranarray(q1 @ q1.conj().T if wide else q1.conj().T @ q1)
    r2, info = potrf(g2, lower=0, overwrite_a=1)
    if info != 0:
        return None
    g2inv, info = potri(r2, lower=0, overwrite_c=1)  # (Q1^H Q1)^{-1}, upper triangle
    if info != 0:
        return None
    g2inv = np.triu(g2inv) + np.triu(g2inv, 1).conj().T
    t = trsm(1.0, r1, np.asfortranarray(g2inv), side=0, lower=0, overwrite_b=1)
    if wide:  # A^+ = (W^+)^H = (T Q1^H)^H: T Q1^H into Fortran (m x n), read as (n x m)
        z = np.empty((m, n), dtype=a.dtype, order="F")
        np.matmul(t, q1, out=z)
        x = z.T
        if np.iscomplexobj(x):
            np.conjugate(x, out=x)
    else:  # A^+ = W^+ = T Q1^H
        x = np.empty((n, m), dtype=a.dtype)
        np.matmul(t, q1.conj().T, out=x)
    at = a.T
    fro = float(lange("F", at))
    smax_up = min(fro, math.sqrt(float(lange("1", at)) * float(lange("I", at))))
    _, nu = _norms(x.T)
    if smax_up * nu > kappa_max or not certified(smax_up, nu, 1.0, atol, rtol, p, eps):
        return None
    return x


def full_rank_inverse(a: np.ndarray, atol: float, rtol: float) -> np.ndarray | None:
    """Certified ``A^+`` of one C-ordered matrix, or ``None``: LU if square, else
    CholeskyQR2, else Householder QR."""
    m, n = a.shape
    if m == n:
        return _lu_inverse(a, atol, rtol)
    x = _cholqr2_inverse(a, atol, rtol)
    return x if x is not None else _qr_inverse(a, atol, rtol)


def pinv_qr(
    a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``method="qr"``: the certified full-rank path, a ``ValueError`` where it fails.

    Householder QR of ``A`` (``A^H`` if wide), ``A^+ = R^{-1} Q^H``, for every shape
    (square too: use ``"auto"`` for LU there). Raises ``ValueError`` naming the batch
    member when the certificate cannot prove that all ``min(m, n)`` singular values
    are kept (rank-deficient by the rule, or too close to the threshold to tell).
    """
    b, m, n = a.shape
    x = np.empty((b, n, m), dtype=a.dtype)
    for i in range(b):
        xi = _qr_inverse(a[i], float(atol[i]), float(rtol[i]))
        if xi is None:
            raise ValueError(
                f'method="qr": matrix {i} of the batch cannot be certified to have full rank '
                f"{min(m, n)} under the tolerance (rank-deficient, or a singular value within "
                f'a factor {MARGIN:g} of the threshold); use method="svd" or "auto"'
            )
        x[i] = xi
    return x, np.full(b, min(m, n), dtype=np.int64)
