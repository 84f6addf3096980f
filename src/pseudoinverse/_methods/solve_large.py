"""``pinv(A) @ B`` for one large matrix without forming ``pinv(A)``, and the damped form.

``solve_one`` returns ``X = A^+ B`` (the minimum-norm least-squares solution) with the
rank decision of ``pinv`` (keep ``sigma > tol = max(atol, rtol * sigma_max)``). Routes,
in order:

1. A certified full-rank direct solve applied to ``B`` (``qr.py``'s paths, never ``X``):

   - square: LU (``getrf``, screened by ``gecon``), rank proven by the Gram matrix's
     shifted Cholesky tests (``gram.certify_rank``: ``n^3`` flops, no ``n x n`` residual
     ``X A - I`` and no inverse); then ``getrs`` and an a-posteriori gate on the residual
     ``b - A x`` (``_lu_gate``). Where the Gram test cannot decide (``kappa^2 n eps`` not
     small) the LU inverse and ``certificate.certify``'s residual decide, as in ``pinv``;
     that route alone forms ``A^{-1}`` (square input only).
   - non-square: the Gram certificate (``gram.certify_rank``), then by its rigorous
     ``kappa``: the normal equations (two triangular solves on ``W^H B``), CholeskyQR2's
     second pass (``Q1 = W R^{-1}`` is the one ``p x k`` temporary) or Householder QR
     (``geqrf`` + ``ormqr`` on ``B``). Wide ``A`` gives ``A^H (A A^H)^{-1} B`` in the same
     factorisations of ``W = A^H``. Without the certificate: the SVD below (for tall input
     ``gelsd`` costs one QR there anyway).

2. A complete orthogonal decomposition (``cod.py``: QR with column pivoting, ``tzrzf``,
   the ``gelsy`` algorithm, in double precision) where its triangular blocks show the
   rank far from the threshold (``||R22||_2`` and ``1 / ||R11^{-1}||_F`` outside the band
   below): about 4x faster than ``gelsd`` on rank-deficient input.
3. The SVD applied to ``B`` without singular vectors: LAPACK ``gelsd``. Its singular values
   are not bit for bit ``gesdd``'s (``pinv``'s), so its answer is used only where no value
   lies within ``GUARD sqrt(p) eps sigma_max`` of the threshold (``_gelsd``): on both sides
   of that band the two drivers' decisions agree. Both are backward stable and, on the
   paths used here, share the reduction (``geqrf``/``gebrd``); their singular values
   differed by at most ``18 eps sigma_max`` over the shapes and dtypes measured (64 to
   2000, square, tall, wide, complex), and ``GUARD sqrt(p) >= 64`` at ``p >= 64``. The
   worst-case bound ``c p eps sigma_max`` of two independent backward-stable SVDs would
   put every rank-deficient matrix under the default ``rtol = p eps`` in the band.
   ``gelsd`` takes ``rcond`` before it knows ``sigma_max``: ``rtol`` where ``atol = 0``,
   else ``atol`` over a power-iteration estimate, with the values between its threshold
   and ``pinv``'s counted as in the band.
4. Otherwise (in the band, or ``gelsd`` failing) ``svd._svd_one`` (``gesdd``, then
   ``gesvd``), the exact rule on its values, and ``U``, ``S``, ``V^H`` applied to ``B``.

Accuracy promise: that of ``pinv(A) @ B`` by the SVD, about ``p eps kappa`` relative
(``p = max(m, n)``, ``kappa`` of the kept part; plus the least-squares term ``p eps
kappa^2 ||r|| / (||A|| ||x||)`` of any solver for inconsistent ``B``). Single precision
runs routes 1-2 in double precision (``eps_in`` decides the certificates and route 2's
band), routes 3-4 in its own precision, as ``pinv`` does. ``solve_one_hermitian`` and
``damped_one`` document their own routes and promises.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import blas, lapack

from .._tolerance import threshold
from . import cod, gram
from .certificate import MARGIN, certify, sq_norms
from .eigh import _eigh_one
from .products import matmul
from .qr import hopeless, smax_bound
from .svd import _svd_one

GUARD = 8.0  # gelsd's band: GUARD sqrt(p) eps sigma_max (>= 3.5x the largest gap measured)
POWER_STEPS = 12  # sigma_max estimate for gelsd's rcond when atol > 0 (an estimate only)
DAMP_C = 1.0  # damped promise: ||dX||_F <= DAMP_C p eps kappa_lambda ||X||_F


def _h(x: np.ndarray) -> np.ndarray:
    return x.conj().T


def _adj_mul(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``A^H y`` for C-ordered ``a`` without a conjugated copy of ``a``."""
    return np.conj(a.T @ np.conj(y)) if np.iscomplexobj(a) else matmul(a.T, y)


def _trsm(r: np.ndarray, y: np.ndarray, trans: int) -> np.ndarray:
    """``R^{-1} y`` (``trans=0``) or ``R^{-H} y`` (``trans=2``), ``R`` upper."""
    (trsm,) = blas.get_blas_funcs(("trsm",), (r,))
    return trsm(1.0, r, y, side=0, lower=0, trans_a=trans)


def _gamma(dtype: np.dtype) -> float:
    """Unit rounding per operation of the work dtype (complex: twice, Higham sec. 3.6)."""
    return float(np.finfo(dtype).eps) * (2 if np.dtype(dtype).kind == "c" else 1)


# --- route 1: certified full-rank direct solves ---------------------------------------


def _lu_gate(a: np.ndarray, b: np.ndarray, x: np.ndarray, fro: float) -> bool:
    """Is ``x`` the solution of a backward stable solve of ``A x = b``? The computed
    residual ``fl(b - A x)`` is within ``gamma_{n+1} (||A||_F ||x||_F + ||b||_F)`` of the
    exact one (Higham eq. (3.13)); accept a normwise backward error of ``2 (n + 1) eps``
    (Rigal-Gaches). Then ``||x - x*|| <= (||r|| + that) / sigma_min <= 6 (n + 1) eps K
    ||x*||`` with the certificate's ``K >= kappa`` (no growth-factor assumption)."""
    n = a.shape[0]
    res = b - matmul(a, x)
    scale = fro * math.sqrt(float(sq_norms(x))) + math.sqrt(float(sq_norms(b)))
    return math.sqrt(float(sq_norms(res))) <= 2 * (n + 1) * _gamma(a.dtype) * scale


def _lu_solve(
    a: np.ndarray, b: np.ndarray, atol: float, rtol: float, eps_in: float
) -> np.ndarray | None:
    n = a.shape[0]
    at = a.T  # Fortran A^T: its LU, solved transposed, is A's
    getrf, getrs, getri, getri_lwork, gecon, lange = lapack.get_lapack_funcs(
        ("getrf", "getrs", "getri", "getri_lwork", "gecon", "lange"), (at,)
    )
    fro, smax_up = smax_bound(at, lange)
    one = float(lange("1", at))
    lu, piv, info = getrf(at)  # a copy: `a` is never modified
    if info != 0:
        return None
    rcond, info = gecon(lu, one, norm="1")
    if info != 0 or rcond <= 0 or hopeless(1 / (rcond * one), n, fro / math.sqrt(n), atol, rtol):
        return None  # rank-deficient or near the threshold: the cheap exit (2/3 n^3)
    if gram.certify_rank(a, atol, rtol, fro, smax_up, eps_in) is not None:
        x, info = getrs(lu, piv, b, trans=1)
        return x if info == 0 and _lu_gate(a, b, x, fro) else None
    # beyond the Gram test's reach (kappa^2 n eps not small): pinv's residual certificate
    lwork, info = getri_lwork(n)
    inv, info = getri(lu, piv, lwork=max(int(lwork.real), 1), overwrite_lu=1)
    if info != 0:
        return None
    xinv = inv.T  # C-ordered A^{-1}
    eps = float(np.finfo(a.dtype).eps)
    verdict = certify(xinv, a, atol, rtol, eps_in, work_eps=eps, s_up=smax_up, w_fro=fro)
    return matmul(xinv, b) if verdict.accepted else None


def _normal_solve(a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray:
    """``G^{-1} A^H b`` (tall) or ``A^H G^{-1} b`` (wide), ``G = R^H R``."""
    if a.shape[0] >= a.shape[1]:
        return _trsm(r, _trsm(r, _adj_mul(a, b), 2), 0)
    return _adj_mul(a, _trsm(r, _trsm(r, b, 2), 0))


def _cholqr2_solve(a: np.ndarray, b: np.ndarray, r: np.ndarray) -> np.ndarray | None:
    """CholeskyQR2's second pass: ``W = Q1 R2 R`` with ``Q1 = W R^{-1}`` (``trsm``);
    tall ``x = R^{-1} R2^{-1} R2^{-H} Q1^H b``, wide ``x = Q1 R2^{-1} R2^{-H} R^{-H} b``."""
    (trsm,) = blas.get_blas_funcs(("trsm",), (r,))
    if a.shape[0] >= a.shape[1]:  # Q1^T = R^{-T} A^T on the Fortran view; q1 is (m, n) C
        q1 = trsm(1.0, r, a.T, side=0, lower=0, trans_a=1).T
        potrf = lapack.get_lapack_funcs("potrf", (q1,))
        r2, info = potrf(gram._gram(q1), lower=0, overwrite_a=1, clean=1)
        if info != 0:
            return None
        c = _adj_mul(q1, b)
        del q1
        return _trsm(r, _trsm(r2, _trsm(r2, c, 2), 0), 0)
    q1h = trsm(1.0, r, np.asfortranarray(a), side=0, lower=0, trans_a=2, overwrite_b=1)
    rk = blas.get_blas_funcs("herk" if np.iscomplexobj(a) else "syrk", (q1h,))
    potrf = lapack.get_lapack_funcs("potrf", (q1h,))
    r2, info = potrf(rk(1.0, q1h, lower=0), lower=0, overwrite_a=1, clean=1)  # Q1^H Q1
    if info != 0:
        return None
    y = _trsm(r2, _trsm(r2, _trsm(r, b, 2), 2), 0)
    return np.conj(q1h.T @ np.conj(y)) if np.iscomplexobj(a) else matmul(q1h.T, y)  # Q1 y


def _householder_solve(a: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """Householder QR of ``W`` (``A``, or ``A^H`` wide) applied to ``b``: tall ``x = R^{-1}
    (Q^H b)[:n]``, wide ``x = Q [R^{-H} b; 0]``. One work copy of ``A``."""
    m, n = a.shape
    wide = m < n
    w = np.array(a.T if wide else a, order="F")
    if wide and np.iscomplexobj(a):
        np.conjugate(w, out=w)
    rows, k = w.shape
    geqrf, geqrf_lwork = lapack.get_lapack_funcs(("geqrf", "geqrf_lwork"), (w,))
    ormqr = lapack.get_lapack_funcs("unmqr" if np.iscomplexobj(a) else "ormqr", (w,))
    lwork, _ = geqrf_lwork(rows, k)  # the optimal (blocked) workspace
    qr, tau, _, info = geqrf(w, lwork=max(int(np.real(lwork)), 1), overwrite_a=1)
    if info != 0 or not np.all(np.diagonal(qr) != 0):
        return None
    r = np.asfortranarray(qr[:k])  # trsm reads the upper triangle only
    if wide:
        z = np.zeros((rows, b.shape[1]), dtype=a.dtype, order="F")
        z[:k] = _trsm(r, b, 2)
        trans = b"N"
    else:
        z, trans = np.array(b, order="F"), b"C" if np.iscomplexobj(a) else b"T"
    lwork = int(np.real(ormqr(b"L", trans, qr, tau, z, -1)[1][0]))
    z, _, info = ormqr(b"L", trans, qr, tau, z, max(lwork, 1), overwrite_c=1)
    if info != 0:  # pragma: no cover - only illegal arguments make ormqr fail
        return None
    return z if wide else _trsm(r, z[:k], 0)


def _direct(
    a: np.ndarray, b: np.ndarray, atol: float, rtol: float, eps_in: float
) -> np.ndarray | None:
    """Route 1, or ``None`` where its certificate does not prove full rank."""
    if a.shape[0] == a.shape[1]:
        return _lu_solve(a, b, atol, rtol, eps_in)
    # ||A||_F alone bounds sigma_max here: the shifted test's lambda_max bound is tighter,
    # and lange's 1- and inf-norms (two more passes over A) rarely change the verdict
    fro = float(lapack.get_lapack_funcs("lange", (a.T,))("F", a.T))
    fac = gram.certify_rank(a, atol, rtol, fro, fro, eps_in)
    if fac is None:
        return None
    how = gram.path(fac, a.shape, a.dtype)
    x = None
    if how == "normal":
        x = _normal_solve(a, b, fac.r)
    elif how == "cholqr2":
        x = _cholqr2_solve(a, b, fac.r)
    return x if x is not None else _householder_solve(a, b)


# --- routes 2 and 3: the SVD applied to B ----------------------------------------------


def _gelsd(
    a: np.ndarray, b: np.ndarray, atol: float, rtol: float, eps: float
) -> tuple[np.ndarray, int] | None:
    """``gelsd`` where its singular values prove pinv's rank decision (module docstring,
    route 2), else ``None``."""
    m, n = a.shape
    p, k = max(m, n), b.shape[1]
    w = np.array(a, order="F")  # gelsd overwrites its inputs
    gelsd, gelsd_lwork = lapack.get_lapack_funcs(("gelsd", "gelsd_lwork"), (w,))
    # rcond needs sigma_max before gelsd returns it: with atol > 0, from an estimate (power
    # iteration); values between gelsd's threshold and pinv's count as in the band below
    rcond = rtol
    if atol > 0:
        est = cod.power_norm(a, POWER_STEPS)
        rcond = max(atol / est, rtol) if est > 0 else 1.0
    rhs = np.zeros((p, k), dtype=a.dtype, order="F")
    rhs[:m] = b
    if np.iscomplexobj(a):
        work, rwork, iwork, info = gelsd_lwork(m, n, k, rcond)
        sizes = (int(work.real), int(rwork), int(iwork))
    else:
        work, iwork, info = gelsd_lwork(m, n, k, rcond)
        sizes = (int(work), int(iwork))
    x, s, rank, info = gelsd(w, rhs, *sizes, rcond, overwrite_a=1, overwrite_b=1)
    if info != 0:
        return None  # no convergence: the gesdd/gesvd chain decides
    smax = float(s[0])
    if smax == 0:  # the zero matrix: every SVD gives exact zeros
        return np.zeros((n, k), dtype=a.dtype), 0
    s64 = s.astype(np.float64)
    tol = float(threshold(smax, atol, rtol))
    band = GUARD * math.sqrt(p) * eps * smax
    lo, hi = min(tol, rcond * smax) - band, max(tol, rcond * smax) + band
    if np.any((s64 >= lo) & (s64 <= hi)) or int(np.count_nonzero(s64 > tol)) != rank:
        return None
    return np.array(x[:n]), int(rank)


def _svd_solve(
    a: np.ndarray, b: np.ndarray, atol: float, rtol: float, index: int
) -> tuple[np.ndarray, int]:
    """Route 3: ``gesdd``/``gesvd`` (``A^H`` for wide input, as pinv) and the exact rule."""
    m, n = a.shape
    wide = m < n
    u, s, vh = _svd_one(a.T if wide else a, index, conj=wide and np.iscomplexobj(a))
    tol = threshold(s[:1], np.asarray([atol]), np.asarray([rtol]))[0]
    rank = int(np.count_nonzero(s > tol))
    inv = (1 / s[:rank]).astype(a.dtype)[:, None]
    if wide:  # A^H = U S V^H: A^+ b = U S^-1 (V^H b)
        return matmul(u[:, :rank], inv * matmul(vh[:rank], b)), rank
    return matmul(_h(vh[:rank]), inv * matmul(_h(u[:, :rank]), b)), rank


def solve_one(
    a: np.ndarray, b: np.ndarray, atol: float, rtol: float, eps_in: float, index: int = 0
) -> tuple[np.ndarray, int]:
    """``(A^+ B, rank)`` of one large matrix, never forming ``A^+``.

    Parameters
    ----------
    a : ndarray, (m, n)
        Finite, C-contiguous, float32/float64/complex64/complex128; not modified.
    b : ndarray, (m, k)
        Same dtype as ``a``.
    atol, rtol : float
        The tolerance rule: keep ``sigma > max(atol, rtol * sigma_max)``.
    eps_in : float
        The input dtype's eps (the precision ``pinv``'s SVD runs in).
    index : int
        The batch member, named in a convergence error.

    Returns
    -------
    x : ndarray, (n, k), ``a``'s dtype
    rank : int
        ``pinv``'s rank: ``min(m, n)`` where route 1's certificate proves it, else the count
        of singular values kept by ``gelsd`` outside the guard band, or by ``gesdd``.

    Accuracy: the module docstring's promise, ``p eps kappa`` relative (square LU: at most
    ``6 (n + 1) eps K`` with ``K >= kappa`` proven, by ``_lu_gate``).
    """
    work = np.promote_types(a.dtype, np.float64)
    aw, bw = (a, b) if a.dtype == work else (a.astype(work), b.astype(work))
    x = _direct(aw, np.asfortranarray(bw), atol, rtol, eps_in)
    if x is not None:
        return np.ascontiguousarray(x, dtype=a.dtype), min(a.shape)
    eps = float(np.finfo(a.dtype).eps)
    got = cod.solve_cod(aw, bw, atol, rtol, eps)  # rank-deficient: gelsy's algorithm
    if got is not None:
        return np.ascontiguousarray(got[0], dtype=a.dtype), got[1]
    del aw, bw
    got = _gelsd(a, b, atol, rtol, eps)
    x, rank = got if got is not None else _svd_solve(a, b, atol, rtol, index)
    return np.ascontiguousarray(x, dtype=a.dtype), rank


# --- Hermitian --------------------------------------------------------------------------


def _cholesky_solve(
    a: np.ndarray, b: np.ndarray, atol: float, rtol: float, eps_in: float
) -> np.ndarray | None:
    """Certified Cholesky solve of Hermitian PD ``a`` (lower triangle). The C-ordered ``a``
    seen as Fortran is ``conj(A)``, whose upper triangle is ``a``'s lower one: ``potrf``
    (``uplo="U"``) factors ``conj(A) = C^H C`` and ``conj(x) = potrs(C, conj(b))``. Rank
    proof: Rump's shifted Cholesky tests (``gram._proven_bound``, steps 2-4 of ``gram.py``)
    applied to ``A`` itself, no Gram matrix and no squared ``kappa``:
    ``lambda_min(A) >= s > MARGIN max(atol, rtol S, n eps_in S)`` with ``S >= lambda_max``
    proven the same way (or ``||A||_F``), so ``A`` is PD, its singular values are its
    eigenvalues and eigh keeps all of them (``certificate.py``'s step-3 argument)."""
    n = a.shape[0]
    at = a.T
    potrf, potrs, lantr = lapack.get_lapack_funcs(("potrf", "potrs", "lantr"), (at,))
    c, info = potrf(at, lower=0, clean=1)
    if info != 0:
        return None
    eps = float(np.finfo(a.dtype).eps)
    gamma, rnd = _gamma(a.dtype), 1 + 2 * n * n * eps
    tri = float(lantr("F", at, uplo="U", diag="N"))
    diag = float(np.linalg.norm(np.diagonal(a).real))
    fro = math.sqrt(max(2 * tri * tri - diag * diag, 0.0)) * rnd  # ||A||_F, one triangle
    lo_est, hi_est = gram._estimates(at, c)
    if not (math.isfinite(lo_est) and math.isfinite(hi_est)):
        return None
    lam_lo = gram._proven_bound(at, lo_est, (0.8, 0.2, 0.05), 1.0, gamma, rnd)
    if lam_lo is None or not lam_lo > 0:
        return None
    big = fro
    lam_hi = gram._proven_bound(at, hi_est, (1.25, 2.0, 4.0), -1.0, gamma, rnd)
    if lam_hi is not None:
        big = min(big, lam_hi * rnd)
    if not lam_lo / rnd > MARGIN * max(atol, rtol * big, n * eps_in * big):
        return None
    cplx = np.iscomplexobj(a)
    y, info = potrs(c, np.conj(b) if cplx else b, lower=0)
    if info != 0:
        return None
    return np.conj(y) if cplx else y


def solve_one_hermitian(
    a: np.ndarray, b: np.ndarray, atol: float, rtol: float, eps_in: float, index: int = 0
) -> tuple[np.ndarray, int]:
    """``(A^+ B, rank)`` of one large Hermitian matrix (lower triangle only is read).

    Routes: a certified Cholesky solve (``_cholesky_solve``: ``n^3 / 3`` for the factor
    plus one to four shifted factorisations for the proof; single precision in double),
    else ``eigh`` (``evd``, then ``evr``) with the ``|eigenvalue|`` threshold, ``V``
    applied to ``B``. Parameters and returns as ``solve_one``. Accuracy: about ``n eps
    kappa`` relative, that of eigh's ``pinv`` (Cholesky solves are backward stable with
    no growth factor, Higham Theorem 10.4).
    """
    work = np.promote_types(a.dtype, np.float64)
    aw, bw = (a, b) if a.dtype == work else (a.astype(work), b.astype(work))
    x = _cholesky_solve(aw, np.asfortranarray(bw), atol, rtol, eps_in)
    if x is not None:
        return np.ascontiguousarray(x, dtype=a.dtype), a.shape[0]
    del aw, bw
    w, v = _eigh_one(a, index)
    absw = np.abs(w)
    keep = absw > threshold(absw.max(initial=0.0), np.float64(atol), np.float64(rtol))
    winv = np.where(keep, 1 / np.where(keep, w, 1), 0).astype(a.dtype)[:, None]
    return matmul(v, winv * matmul(_h(v), b)), int(np.count_nonzero(keep))


# --- damped (Tikhonov) ------------------------------------------------------------------


def _damped_cholesky(
    a: np.ndarray, lam: float, b: np.ndarray | None, bound: float
) -> np.ndarray | None:
    """``(W^H W + lambda^2 I)^{-1} W^H`` (``W = A`` or ``A^H``; ``X`` or ``X b``) by Cholesky
    where the rigorous error bound is ``<= bound`` relative, else ``None``.

    ``M = W^H W + lambda^2 I`` is formed (``|dG| <= gamma_p |W^H| |W|``, eq. (3.13)) and
    factored; every solve with exact data as right-hand side obeys ``(M + dM) x = w``
    with ``|dM| <= gamma_{3k+1} |R^H| |R|`` (Higham Theorem 10.4), so ``||x^ - x|| <=
    ||M^{-1}|| ||dM|| ||x^||`` with ``||M^{-1}||_2 <= 1 / lambda^2`` (``W^H W >= 0``):
    ``E = (p gamma ||A||_F^2 + 2 eps (||A||_F^2 + lambda^2) + (3k + 1) gamma ||R||_F^2) /
    lambda^2``. The tall solve form's extra rounding (``A^H b``) is bounded a posteriori
    against ``||x^||``; the wide one forms ``X`` and multiplies (``k p`` extra memory).
    """
    m, n = a.shape
    wide = m < n
    p, k = max(m, n), min(m, n)
    eps, gamma = float(np.finfo(a.dtype).eps), _gamma(a.dtype)
    lam2 = lam * lam
    rnd = 1 + 2 * p * k * eps
    fro2 = float(sq_norms(a)) * rnd
    if not (lam2 > 0 and math.isfinite(fro2) and p * gamma * fro2 / lam2 < bound):
        return None
    g = gram._gram(a)
    np.einsum("ii->i", g)[...] += lam2
    potrf = lapack.get_lapack_funcs("potrf", (g,))
    r, info = potrf(g, lower=0, overwrite_a=1, clean=1)
    if info != 0:
        return None
    err = p * gamma * fro2 + 2 * eps * (fro2 + lam2) + (3 * k + 1) * gamma * sq_norms(r) * rnd
    err /= lam2
    if not err <= bound:
        return None
    if b is None or wide:  # X_W = R^{-1} R^{-H} W^H; A^+_lambda = X_W (tall) or X_W^H
        # (wide b: x = X b from the formed X, within err + p gamma of ||X||_F ||b||_F;
        # A^H (M^{-1} b) would lose ||A|| ||M^{-1} b|| / ||x|| where x is small)
        xw = _trsm(r, _trsm(r, np.asfortranarray(a if wide else _h(a)), 2), 0)
        x = _h(xw) if wide else xw
        return np.ascontiguousarray(x) if b is None else matmul(x, b)
    # x = M^{-1} (A^H b): the rounding of A^H b adds p gamma ||A||_F ||b|| / lambda^2
    x = _trsm(r, _trsm(r, _adj_mul(a, b), 2), 0)
    extra = err * math.sqrt(float(sq_norms(x)))
    extra += p * gamma * math.sqrt(fro2 * float(sq_norms(b))) / lam2
    return x if extra * rnd <= bound * math.sqrt(float(sq_norms(x))) else None


def _damped_svd(a: np.ndarray, lam: float, b: np.ndarray | None) -> np.ndarray:
    """The SVD filter ``V diag(sigma / (sigma^2 + lambda^2)) U^H`` (or applied to ``b``);
    ``sigma / h / h`` with ``h = hypot(sigma, lambda)``: no overflow, 0 where ``h = 0``."""
    m, n = a.shape
    wide = m < n
    u, s, vh = _svd_one(a.T if wide else a, 0, conj=wide and np.iscomplexobj(a))
    h = np.hypot(s.astype(np.float64), lam)
    f = np.where(h > 0, s / np.where(h > 0, h, 1) / np.where(h > 0, h, 1), 0).astype(a.dtype)
    if wide:  # A^H = U S V^H: A^+_lambda = U F V^H
        return matmul(u, f[:, None] * (vh if b is None else matmul(vh, b)))
    if b is None:
        return matmul(_h(vh), f[:, None] * _h(u))
    return matmul(_h(vh), f[:, None] * matmul(_h(u), b))


def damped_one(a: np.ndarray, damping: float, b: np.ndarray | None = None) -> np.ndarray:
    """The Tikhonov (damped least-squares) inverse of one matrix, or its product with ``b``.

    ``X = V diag(sigma / (sigma^2 + lambda^2)) U^H = (A^H A + lambda^2 I)^{-1} A^H``,
    ``lambda = damping >= 0``; an entry with ``sigma^2 + lambda^2 = 0`` is 0 (never NaN),
    so ``damping = 0`` is ``pinv`` with ``atol = rtol = 0``.

    Parameters
    ----------
    a : ndarray, (m, n)
        Finite, C-contiguous, float32/float64/complex64/complex128; not modified.
    damping : float
        ``lambda`` (not its square), ``>= 0``.
    b : ndarray, (m, k), optional
        If given, ``X @ b`` is returned without forming ``X``.

    Returns
    -------
    ndarray
        ``X`` (n, m) or ``X @ b`` (n, k), ``a``'s dtype.

    Accuracy promise: ``||X^ - X||_F <= DAMP_C p eps ||X||_F kappa_lambda``, where
    ``kappa_lambda = sigma_max (||X||_2 + 2 / ((sigma_min^2 + lambda^2) ||X||_2)) >= 2`` is
    the first-order condition number of ``A -> X`` under perturbations of ``A`` of size
    ``p eps sigma_max`` (a backward stable SVD's): ``3 kappa`` at ``lambda = 0``, about
    ``(sigma_max / lambda)^2`` for singular ``A``. Routes: a Cholesky of the smaller Gram
    matrix ``W^H W + lambda^2 I`` where its rigorous bound (``_damped_cholesky``) is within
    ``2 DAMP_C p eps`` (the promise at ``kappa_lambda = 2``): large ``lambda``, and single
    precision input (computed in double, rounded back); else the SVD filter (``gesdd``,
    then ``gesvd``), in the input's precision. The solve form meets the same bound with
    ``||X||_F ||b||_F`` in place of ``||X||_F``.
    """
    m, n = a.shape
    eps_in = float(np.finfo(a.dtype).eps)
    work = np.promote_types(a.dtype, np.float64)
    aw = a if a.dtype == work else a.astype(work)
    bw = None if b is None else np.asfortranarray(b, dtype=work)
    bound = 2 * DAMP_C * max(m, n) * eps_in
    if a.dtype != work:
        bound -= eps_in  # the final rounding to the input dtype
    x = _damped_cholesky(aw, float(damping), bw, bound) if min(m, n) and bound > 0 else None
    if x is None:
        x = _damped_svd(a, float(damping), b)
    return np.ascontiguousarray(x, dtype=a.dtype)
