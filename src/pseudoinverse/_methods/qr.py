"""Certified full-rank fast path: ``A^+`` as an inverse (LU) or ``R^{-1} Q^H`` (QR).

When ``A`` (``m x n``) has full rank ``k = min(m, n)`` and every singular value is
kept by the tolerance rule, ``A^+ = A^{-1}`` (square, LU: ``getrf`` + ``getri``, about
``2 n^3`` flops) or ``A^+ = R^{-1} Q^H`` from ``A = QR`` (tall; wide input through
``A^H``, Householder ``geqrf`` + ``orgqr``/``ungqr`` + ``trsm``, about ``4 m n^2``), a
fraction of the SVD's ``~22 n^3``. This path is only taken when the rule below *proves*
that the SVD path would keep every singular value, so the result and the rank are those
of the SVD method up to rounding.

The certificate (a posteriori)
------------------------------
The candidate ``X`` is accepted only when ``certificate.certify`` (bound, acceptance
test and proof in ``certificate.py``) proves from the residual of one product -- ``X A``
(``n x n``) for square and tall ``A``, ``A X`` (``m x m``) for wide -- that
``sigma_min(A) >= s := (1 - r) / ||X||_F > MARGIN * max(atol, rtol S, p eps S)`` with
``r >= ||X A - I||_2`` rigorous (Higham eq. (3.13)), ``S = min(||A||_F, sqrt(||A||_1
||A||_inf)) >= sigma_max`` (computed by ``lange``) and ``MARGIN = 4``; then the SVD
path provably keeps every singular value, so the rank ``min(m, n)`` is its rank. No
a-priori error model (growth factor, ``c_n`` constants) is assumed: the bound holds
whatever LU, QR or CholeskyQR2 computed. The product is one ``gemm`` (``2 n^3`` flops
for square, ``2 m n^2`` otherwise), formed by blocks of rows of ``D`` (about 16 MB at a
time, not a second ``k x k`` matrix). A matrix with a
singular value within a factor ``4 S / sigma_max`` of the threshold never passes and
goes to the SVD.

Before the (expensive) inversion, the LAPACK condition estimate (``gecon``/``trcon``/
``pocon``, Hager-Higham 1-norm estimator) screens out hopeless matrices. The estimate
``est <= ||A^{-1}||_1`` is a *lower* bound, so ``sigma_min <= sqrt(n) / est`` is an
*upper* bound on ``sigma_min`` and rejecting when ``sqrt(n) / est <= MARGIN *
max(atol, rtol ||A||_F / sqrt(n))`` only ever sends a matrix to the SVD that could not
have passed (its slack is on the safe side; it never accepts).

Accuracy promise: relative error about ``p * eps * kappa`` (``kappa = sigma_max /
sigma_min``), the same order as the SVD path's (Higham, ch. 14 and 19): for square
``A``, ``||X - A^{-1}||_2 <= r ||A^{-1}||_2`` with the certificate's accuracy gate
``r <= 2 p eps kappa_F``; for non-square ``A``, Householder QR is backward stable and
CholeskyQR2 is taken only under its ``kappa`` condition, checked with the rigorous
``kappa <= S / s``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas, lapack

from .certificate import MARGIN, Verdict, certify


def _eps(dtype: np.dtype) -> float:
    return float(np.finfo(dtype).eps)


def smax_bound(at: np.ndarray, lange) -> tuple[float, float]:
    """``(||A||_F, min(||A||_F, sqrt(||A||_1 ||A||_inf)) >= sigma_max)`` of Fortran ``at``."""
    fro = float(lange("F", at))
    return fro, min(fro, math.sqrt(float(lange("1", at)) * float(lange("I", at))))


def hopeless(est_inv_1: float, k: int, smax_lo: float, atol: float, rtol: float) -> bool:
    """Pre-screen: ``est_inv_1 <= ||A^{-1}||_1``; true when the certificate cannot pass."""
    if not (math.isfinite(est_inv_1) and est_inv_1 > 0):
        return True
    return math.sqrt(k) / est_inv_1 <= MARGIN * max(atol, rtol * smax_lo)


def _lu_inverse(a: np.ndarray, atol: float, rtol: float) -> np.ndarray | None:
    """``A^{-1}`` of a square C-ordered ``a`` by LU, or ``None`` when not certified."""
    n = a.shape[0]
    at = a.T  # Fortran-ordered A^T: LU of A^T, whose inverse read in C order is A^{-1}
    getrf, getri, getri_lwork, gecon, lange = lapack.get_lapack_funcs(
        ("getrf", "getri", "getri_lwork", "gecon", "lange"), (at,)
    )
    fro, smax_up = smax_bound(at, lange)
    one = float(lange("1", at))
    lu, piv, info = getrf(at)  # copies: `a` is never modified
    if info != 0:
        return None  # an exactly zero pivot: singular
    rcond, info = gecon(lu, one, norm="1")
    if info != 0 or rcond <= 0 or hopeless(1 / (rcond * one), n, fro / math.sqrt(n), atol, rtol):
        return None
    lwork, info = getri_lwork(n)
    inv, info = getri(lu, piv, lwork=max(int(lwork.real), 1), overwrite_lu=1)
    if info != 0:
        return None
    x = inv.T  # C-contiguous A^{-1}
    if not certify(x, a, atol, rtol, _eps(a.dtype), s_up=smax_up, w_fro=fro).accepted:
        return None  # the residual X A - I does not prove sigma_min clear of the threshold
    return x


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
    fro, smax_up = smax_bound(a.T, lange)  # norms of the Fortran view A^T: the same bounds
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
    x = np.ascontiguousarray(x_f) if wide else x_f.T  # A^+ (n x m), C-contiguous
    if not _certified(x, a, atol, rtol, fro, smax_up):
        return None
    return x


def _cholqr2_inverse(a: np.ndarray, atol: float, rtol: float) -> np.ndarray | None:
    """Non-square ``A^+`` by CholeskyQR2, or ``None`` (then Householder QR is tried).

    CholeskyQR2 (Yamamoto, Nakatsukasa, Yanagisawa & Fukaya, ETNA 44, 2015): with
    ``W = A`` (tall) or ``A^H`` (wide), ``W^H W = R1^H R1``, ``Q1 = W R1^{-1}``,
    ``Q1^H Q1 = R2^H R2``; then ``W = Q R`` with ``Q = Q1 R2^{-1}``, ``R = R2 R1`` and
    ``W^+ = R1^{-1} (Q1^H Q1)^{-1} Q1^H``. All of it is ``gemm``/``syrk``/``trsm``
    (five ``m n^2``-sized products at BLAS-3 speed, against Householder's BLAS-2
    panels). Their Theorem: if ``8 kappa sqrt(m n eps + n (n + 1) eps) <= 1``, ``Q``
    is orthonormal and ``QR = W`` to ``O(eps)``, as Householder's; this condition,
    with the rigorous ``kappa <= S / s`` of the certificate, is required on top of it.
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
    fro, smax_up = smax_bound(a.T, lange)
    verdict = _certified(x, a, atol, rtol, fro, smax_up)
    if verdict is None or smax_up > kappa_max * verdict.smin:  # kappa <= S / s
        return None
    return x


def _certified(
    x: np.ndarray, a: np.ndarray, atol: float, rtol: float, fro: float, smax_up: float
) -> Verdict | None:
    """The residual certificate of a non-square ``X = A^+`` (``n x m``): the ``k x k``
    product ``X A`` when tall, ``A X`` when wide (by rows of the left factor); the
    verdict if accepted, else ``None``."""
    wide = a.shape[0] < a.shape[1]
    verdict = certify(
        x,
        a,
        atol,
        rtol,
        _eps(a.dtype),
        s_up=smax_up,
        w_fro=fro,
        product=(lambda x, w, rows: w[rows] @ x) if wide else (lambda x, w, rows: x[rows] @ w),
    )
    return verdict if verdict.accepted else None


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
