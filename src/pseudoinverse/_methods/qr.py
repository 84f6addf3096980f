"""Certified full-rank fast path: ``A^+`` as an inverse (LU) or ``R^{-1} Q^H`` (QR).

When ``A`` (``m x n``) has full rank ``k = min(m, n)`` and every singular value is
kept by the tolerance rule, ``A^+ = A^{-1}`` (square, LU: ``getrf`` + ``getri``, about
``2 n^3`` flops) or ``A^+ = R^{-1} Q^H`` from ``A = QR`` (non-square; wide input through
``A^H``), a fraction of the SVD's ``~22 n^3``. This path is only taken when a
certificate *proves* that the SVD path would keep every singular value, so the result
and the rank are those of the SVD method up to rounding.

Square: the residual certificate
--------------------------------
The candidate ``X = A^{-1}`` is accepted only when ``certificate.certify`` (bound,
acceptance test and proof in ``certificate.py``) proves from the residual ``X A - I``
(one ``2 n^3`` product, formed by blocks of rows, about 16 MB at a time) that
``sigma_min(A) >= s := (1 - r) / ||X||_F > MARGIN * max(atol, rtol S, p eps S)`` with
``r >= ||X A - I||_2`` rigorous (Higham eq. (3.13)), ``S = min(||A||_F, sqrt(||A||_1
||A||_inf)) >= sigma_max`` (computed by ``lange``) and ``MARGIN = 4``; then the SVD
path provably keeps every singular value, so the rank ``n`` is its rank. No a-priori
error model (growth factor, ``c_n`` constants) is assumed: the bound holds whatever LU
computed. A matrix with a singular value within a factor ``4 S / sigma_max`` of the
threshold never passes and goes to the SVD.

Before the (expensive) inversion, the LAPACK condition estimate (``gecon``/``trcon``/
``pocon``, Hager-Higham 1-norm estimator) screens out hopeless matrices. The estimate
``est <= ||A^{-1}||_1`` is a *lower* bound, so ``sigma_min <= sqrt(n) / est`` is an
*upper* bound on ``sigma_min`` and rejecting when ``sqrt(n) / est <= MARGIN *
max(atol, rtol ||A||_F / sqrt(n))`` only ever sends a matrix to the SVD that could not
have passed (its slack is on the safe side; it never accepts).

Non-square: the Gram certificate
--------------------------------
``gram.certify_rank`` proves the rank from the Cholesky factor of ``W^H W`` (``W = A``
or ``A^H``; ``p k^2`` flops, no ``p x k`` residual) and bounds ``kappa``; ``A^+`` then
comes from the normal equations (``kappa <= gram.K_NE``), CholeskyQR2 (under its
``kappa`` condition) or Householder QR (``geqrf`` + ``orgqr``/``ungqr`` + ``trsm``), by
``kappa`` (``gram.py``). Where the Gram test cannot decide (``kappa^2 p eps`` not small,
or rank-deficient), Householder QR runs with the residual certificate of the ``k x k``
product ``X A`` (tall) or ``A X`` (wide), screened by ``trcon`` as above.

Accuracy promise: relative error about ``p * eps * kappa`` (``kappa = sigma_max /
sigma_min``), the same order as the SVD path's (Higham, ch. 14 and 19): for square
``A``, ``||X - A^{-1}||_2 <= r ||A^{-1}||_2`` with the certificate's accuracy gate
``r <= 2 p eps kappa_F``; for non-square ``A``, Householder QR is backward stable,
CholeskyQR2 is taken only under its ``kappa`` condition, and the normal equations only
where ``kappa <= 4``, within a factor ``8`` of the SVD's bound (``gram.py``), all
checked with the rigorous ``kappa <= S / s``.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas, lapack

from . import gram
from .certificate import MARGIN, certify, sq_norms
from .products import matmul


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


def _lu_inverse(
    a: np.ndarray, atol: float, rtol: float, eps_in: float | None = None
) -> np.ndarray | None:
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
    eps_in = _eps(a.dtype) if eps_in is None else eps_in
    tols = (atol, rtol, fro, smax_up, eps_in)
    # Can the residual's Frobenius bound (1 - r) / ||X||_F clear the threshold at all?
    # If not, the Gram matrix's tight bounds (gram.py, about n^3 flops) must prove the
    # rank, and the residual (2 n^3) is formed only to prove X accurate.
    x_fro = math.sqrt(float(sq_norms(x)))
    loose = 1 / x_fro <= MARGIN * max(atol, rtol * smax_up, n * eps_in * smax_up)
    if loose and gram.certify_rank(a, *tols) is None:
        return None
    # from here on, `loose` means that the Gram bounds have proven the rank
    work = _eps(a.dtype)
    verdict = certify(
        x, a, atol, rtol, eps_in, work_eps=work, s_up=smax_up, w_fro=fro, screen=not loose
    )
    if not verdict.accurate:
        return None  # the residual X A - I does not prove X accurate
    if verdict.accepted or loose or gram.certify_rank(a, *tols) is not None:
        return x
    return None


def _qr_inverse(
    a: np.ndarray, atol: float, rtol: float, eps_in: float | None = None, *, proven: bool = False
) -> np.ndarray | None:
    """``R^{-1} Q^H`` (tall) or ``Q R^{-H}`` of ``A^H = QR`` (wide), or ``None``; with
    ``proven`` (the Gram certificate holds) no screen nor residual certificate."""
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
    if not proven:
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
    if proven:
        return x
    # the residual certificate of the k x k product X A (tall) or A X (wide), by rows
    eps = _eps(a.dtype)
    verdict = certify(
        x,
        a,
        atol,
        rtol,
        eps if eps_in is None else eps_in,
        work_eps=eps,
        s_up=smax_up,
        w_fro=fro,
        product=(lambda x, w, rows: matmul(w[rows], x))
        if wide
        else (lambda x, w, rows: matmul(x[rows], w)),
    )
    return x if verdict.accepted else None


def _proof(
    a: np.ndarray, atol: float, rtol: float, eps_in: float | None = None
) -> gram.GramFactor | None:
    """The Gram certificate of a non-square ``a`` (``gram.py``; ``||A||_F`` from the
    Gram matrix's trace), or ``None``."""
    return gram.certify_rank(a, atol, rtol, eps_in=eps_in)


def full_rank_inverse(
    a: np.ndarray, atol: float, rtol: float, eps_in: float | None = None
) -> np.ndarray | None:
    """Certified ``A^+`` of one C-ordered matrix, or ``None``: LU if square; else, when
    the Gram certificate proves the rank (``gram.py``), the normal equations, CholeskyQR2
    or Householder QR by ``kappa``; else Householder QR with the residual certificate."""
    m, n = a.shape
    if m == n:
        return _lu_inverse(a, atol, rtol, eps_in)
    fac = _proof(a, atol, rtol, eps_in)
    if fac is None:
        return _qr_inverse(a, atol, rtol, eps_in)
    x = gram.gram_inverse(a, fac)
    return x if x is not None else _qr_inverse(a, atol, rtol, proven=True)


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
        tols = float(atol[i]), float(rtol[i])
        proven = m != n and _proof(a[i], *tols) is not None
        xi = _qr_inverse(a[i], *tols, proven=proven)
        if xi is None:
            raise ValueError(
                f'method="qr": matrix {i} of the batch cannot be certified to have full rank '
                f"{min(m, n)} under the tolerance (rank-deficient, or a singular value within "
                f'a factor {MARGIN:g} of the threshold); use method="svd" or "auto"'
            )
        x[i] = xi
    return x, np.full(b, min(m, n), dtype=np.int64)
