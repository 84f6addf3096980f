"""Full-rank non-square matrices through their Gram matrix: the rank proof and ``A^+``.

With ``W = A`` (tall) or ``A^H`` (wide), ``p x k`` with ``p > k``, and ``G = W^H W``
(``k x k``), this module proves from ``G``'s Cholesky factor alone that the SVD path
would keep all ``k`` singular values, and then computes ``A^+`` with ``O(p k^2)`` flops
of ``syrk``/``gemm`` only: no ``p x k`` residual product is needed for the rank.

The rank certificate (rigorous in the standard model of floating point)
-----------------------------------------------------------------------
Let ``gamma_j = j eps`` (``eps`` the dtype's, twice the unit roundoff; ``2 j eps`` for
complex data, which covers the complex multiplication's extra rounding, Higham, *Accuracy
and Stability of Numerical Algorithms*, 2nd ed., sec. 3.6). Every computed norm is
rounded up by the factor ``1 + 2 k p eps`` of ``certificate.py``.

1. ``G^ = fl(W^H W)`` (``syrk``/``herk``, a conventional product):
   ``|G^ - W^H W| <= gamma_p |W^H| |W|``, so ``||G^ - W^H W||_2 <= gamma_p ||W||_F^2``
   (Higham eq. (3.13)).
2. A shifted Cholesky test (Rump, "Verification of positive definiteness", BIT 46,
   2006): for a shift ``t``, ``M = fl(+-(G^ - t I))`` differs from ``+-(G^ - t I)`` on
   the diagonal only, by at most ``d = eps (max_i |g_ii| + |t|)``. When ``potrf``
   succeeds on ``M`` it returns ``R_M`` with ``R_M^H R_M = M + dM``, ``|dM| <= gamma_{k+1}
   |R_M^H| |R_M|`` (Higham Theorem 10.3), so ``M + dM`` is positive semidefinite and
   ``lambda_min(M) >= -e``, ``e = gamma_{k+1} ||R_M||_F^2 + d``. With the sign ``+``
   this proves ``lambda_min(G^) >= t - e``; with ``-``, ``lambda_max(G^) <= t + e``.
   The shifts come from a few steps of inverse and power iteration (estimates only;
   a failed test retries with a safer shift, at most ``TRIES`` times).
3. Weyl's inequality for Hermitian matrices and step 1: ``sigma_min(W)^2 >=
   lambda_min(G^) - gamma_p ||W||_F^2 =: s^2`` and ``sigma_max(W)^2 <= lambda_max(G^) +
   gamma_p ||W||_F^2 =: S^2`` (``S`` no larger than the norm bounds of ``qr.py``).
4. Accept iff ``s > MARGIN * max(atol, rtol S, p eps S)``: ``certificate.py``'s step-3
   argument then proves that the SVD path keeps every singular value, so the rank is
   ``k``, the SVD's.

The test is informative while ``kappa^2 (p + k) eps`` is well below 1 (``kappa`` up to
about ``10^5`` for ``p = 20000`` in float64); beyond it the caller falls back to
Householder QR with the ``X``-residual certificate of ``certificate.py``. It also gives
the rigorous ``kappa_2(A) <= K := S / s`` that selects how ``A^+`` is formed:

- ``K <= K_NE``: the normal equations ``W^+ = G^{-1} W^H`` with ``G^{-1} = Y Y^H``: one
  ``syrk`` and one ``gemm`` in all (``3 p k^2`` flops). Their relative error is about
  ``(p + k) eps kappa^2 <= K_NE (p + k) eps kappa``: within a factor ``2 K_NE`` of the
  SVD path's ``p eps kappa`` (Higham ch. 20; the ``kappa^2`` is the price of ``G``).
- ``K <= CholeskyQR2's bound``: the second pass of CholeskyQR2 (Yamamoto, Nakatsukasa,
  Yanagisawa & Fukaya, ETNA 44, 2015): ``Q1 = W R^{-1}``, ``Q1^H Q1 = R2^H R2``,
  ``W = (Q1 R2^{-1}) (R2 R)`` with an orthonormal factor to ``O(eps)`` when ``8 kappa
  sqrt(p k eps + k (k + 1) eps) <= 1`` (their Theorem, checked with ``K``); then
  ``W^+ = Y (Q1^H Q1)^{-1} Q1^H``, accurate to about ``p eps kappa`` like Householder QR.
- otherwise the rank is proven but ``A^+`` is left to Householder QR (``qr.py``).

Square matrices (``p = k``) use steps 1-4 too: ``qr.py``'s LU path calls
``certify_rank`` where the residual proves ``X`` accurate but its Frobenius bound
``(1 - r) / ||X||_F`` is too loose (by up to ``sqrt(n)``) to clear the threshold, as for
large float32 matrices computed in float64. ``eps`` in step 4 is the input's (the
precision the SVD path would run in), the ``gamma``'s the work precision's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.linalg import blas, lapack

from .certificate import MARGIN, sq_norms
from .products import matmul

K_NE = 4.0  # the normal equations only where kappa <= K_NE (error within 2 K_NE of the SVD's)
STEPS = 30  # inverse and power iteration steps for the shifts (estimates only)
TRIES = 3  # shifted Cholesky attempts per bound
SEED = 20060101  # the iteration's start vectors: results are repeatable


class GramFactor(NamedTuple):
    """A proven full-rank Gram factorisation ``G = R^H R`` (``R`` upper, Fortran) and the
    rigorous bounds ``smin <= sigma_min(A)``, ``smax >= sigma_max(A)``."""

    r: np.ndarray
    smin: float
    smax: float

    @property
    def kappa_up(self) -> float:
        """``kappa_2(A) <= smax / smin``."""
        return self.smax / self.smin


_FUNCS: dict[tuple[str, str], object] = {}


def _lapack(name: str, like: np.ndarray):
    """``lapack.get_lapack_funcs`` for ``like``'s dtype, looked up once (the lookup costs
    more than a small matrix's ``potrf``)."""
    key = (name, like.dtype.char)
    fn = _FUNCS.get(key)
    if fn is None:
        (fn,) = lapack.get_lapack_funcs((name,), (like,))
        _FUNCS[key] = fn
    return fn


def _gram(a: np.ndarray) -> np.ndarray:
    """``G = W^H W`` (``k x k``, Fortran, upper triangle) by one ``syrk``/``herk``."""
    wide = a.shape[0] < a.shape[1]
    f = a.T  # Fortran view of A^T: no copy
    if np.iscomplexobj(a):
        (herk,) = blas.get_blas_funcs(("herk",), (f,))
        # tall: F F^H = A^T conj(A) = conj(A^H A); wide: F^H F = conj(A) A^T = conj(A A^H)
        g = herk(1.0, f, trans=2 if wide else 0)
        return np.conjugate(g, out=g)
    (syrk,) = blas.get_blas_funcs(("syrk",), (f,))
    return syrk(1.0, f, trans=1 if wide else 0)  # A A^T (wide) or A^T A (tall)


def _psd_slack(g: np.ndarray, t: float, sign: float, gamma: float, rnd: float) -> float | None:
    """Step 2: ``e`` such that ``sign * (lambda - t) >= -e`` for every eigenvalue of the
    Hermitian ``g`` (upper triangle), or ``None`` when ``potrf`` fails on the shift."""
    m = g * sign  # exact; a new Fortran array for potrf to overwrite
    diag = np.einsum("ii->i", m)  # a writable view of the diagonal
    big = float(np.abs(diag.real).max())
    diag -= sign * t
    r, info = _lapack("potrf", m)(m, lower=0, overwrite_a=1, clean=1)
    if info != 0:
        return None
    k = g.shape[0]
    return (k + 1) * gamma * float(sq_norms(r)) * rnd + 2 * gamma * (big + abs(t))


def _proven_bound(
    g: np.ndarray, est: float, shifts: tuple[float, ...], sign: float, gamma: float, rnd: float
) -> float | None:
    """Step 2 at the first shift ``t = shift * est`` it proves: ``lambda_min(g) >= t - e``
    (``sign = 1``) or ``lambda_max(g) <= t + e`` (``sign = -1``); ``None`` if none does."""
    for shift in shifts[:TRIES]:
        e = _psd_slack(g, shift * est, sign, gamma, rnd)
        if e is not None:
            return shift * est - sign * e
    return None


DIRECT_ESTIMATES = 48  # k up to which _estimates takes eigvalsh (k^3 is cheap there)


def _estimates(g: np.ndarray, r: np.ndarray) -> tuple[float, float]:
    """Rayleigh quotients near ``(lambda_min, lambda_max)`` of ``g = R^H R`` by ``STEPS``
    of inverse and power iteration (estimates: step 2 makes them rigorous)."""
    # in double precision (k x k, cheap): a float32 inverse iteration of a small-scale G
    # overflows in its norms; a non-finite estimate (NaN) makes the caller give up
    wide = np.promote_types(g.dtype, np.float64)
    g, r = g.astype(wide, copy=False), r.astype(wide, copy=False)
    if g.shape[0] <= DIRECT_ESTIMATES:  # small: LAPACK's eigenvalues, cheaper than the
        # iterations' Python steps (0.36 ms of a 200 x 20 solve); estimates all the same
        with np.errstate(over="ignore", invalid="ignore"):
            try:  # NumPy's gufunc: a sixth of scipy.linalg.eigvalsh's overhead
                w = np.linalg.eigvalsh(g, UPLO="U")
            except (np.linalg.LinAlgError, ValueError):
                return float("nan"), float("nan")
        return float(w[0]), float(w[-1])
    (potrs,) = lapack.get_lapack_funcs(("potrs",), (r,))
    (mv,) = blas.get_blas_funcs(("hemv" if np.iscomplexobj(g) else "symv",), (g,))
    v = np.random.default_rng(SEED).standard_normal((g.shape[0], 2)).astype(g.dtype)
    lo, hi = v[:, 0], v[:, 1]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(STEPS):
            lo = potrs(r, lo, lower=0)[0]
            lo /= np.linalg.norm(lo)
            hi = mv(1.0, g, hi, lower=0)  # G's upper triangle
            hi /= np.linalg.norm(hi)
        lam = [float(np.vdot(v, mv(1.0, g, v, lower=0)).real) for v in (lo, hi)]
    return lam[0], lam[1]


def certify_rank(
    a: np.ndarray,
    atol: float,
    rtol: float,
    fro: float | None = None,
    smax_up: float | None = None,
    eps_in: float | None = None,
) -> GramFactor | None:
    """Steps 1-4 of the module docstring for one non-square C-ordered ``a``; ``fro`` is
    ``||A||_F`` and ``smax_up >= sigma_max`` (``qr.smax_bound``), both by default
    ``sqrt(trace(G^))`` (``G^``'s diagonal entries are sums of squares, each within
    ``gamma_p`` of the exact one, and their sum within ``gamma_k`` more: ``rnd`` covers
    both); ``eps_in`` the eps of the precision the SVD path would run in (default
    ``a``'s: see ``certificate.py``'s ``eps`` and ``work_eps``). ``None`` if not proven."""
    k, p = sorted(a.shape)
    eps = float(np.finfo(a.dtype).eps)
    eps_in = eps if eps_in is None else eps_in
    gamma = eps * (2 if np.iscomplexobj(a) else 1)
    rnd = 1 + 2 * k * p * eps
    potrf = _lapack("potrf", a)
    g = _gram(a)
    if fro is None:
        fro = math.sqrt(max(float(np.trace(g).real), 0.0))
        smax_up = fro if smax_up is None else smax_up
    r, info = potrf(g, lower=0, clean=1)
    if info != 0:
        return None  # G not numerically positive definite: kappa beyond this test's reach
    lo_est, hi_est = _estimates(g, r)
    if not (math.isfinite(lo_est) and math.isfinite(hi_est)):
        return None
    w_err = p * gamma * (fro * rnd) ** 2  # step 1
    lam_lo = _proven_bound(g, lo_est, (0.8, 0.2, 0.05), 1.0, gamma, rnd)
    if lam_lo is None or not lam_lo - w_err > 0:
        return None
    s = math.sqrt(lam_lo - w_err) / rnd
    big = min(fro, smax_up) * rnd  # S >= sigma_max from the norms; then step 2's tighter one
    lam_hi = _proven_bound(g, hi_est, (1.25, 2.0, 4.0), -1.0, gamma, rnd)
    if lam_hi is not None:
        big = min(big, math.sqrt(lam_hi + w_err) * rnd)
    if not s > MARGIN * max(atol, rtol * big, p * eps_in * big):
        return None  # a singular value may sit near the threshold: the SVD decides
    return GramFactor(r, s, big)


def _normal_equations(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``A^+`` from ``G^{-1} = Y Y^H``: ``G^{-1} A^H`` (tall) or ``A^H G^{-1}`` (wide)."""
    m, n = a.shape
    if not np.iscomplexobj(a):  # SciPy's gemm, the pool of the syrk and potrf before
        ginv = matmul(y, y.T)
        return matmul(a.T, ginv) if m < n else matmul(ginv, a.T)
    ginv = matmul(y, y.conj().T)  # SciPy's gemm here too (products.py)
    ah = a.conj().T
    return matmul(ah, ginv) if m < n else matmul(ginv, ah)


def _cholqr2(a: np.ndarray, fac: GramFactor, y: np.ndarray) -> np.ndarray | None:
    """``A^+`` by CholeskyQR2's second pass on ``Q1 = W R^{-1}`` (``trsm``); ``None`` if
    ``potrf`` fails."""
    m, n = a.shape
    wide = m < n
    (trsm,) = blas.get_blas_funcs(("trsm",), (fac.r,))
    if wide:  # Q1^H = R^{-H} A: left solve on a Fortran copy of A (Fortran m x n)
        q1 = trsm(1.0, fac.r, np.asfortranarray(a), side=0, lower=0, trans_a=2, overwrite_b=1)
    else:  # Q1^T = R^{-T} A^T: left solve on the Fortran view a.T, read back as C
        q1 = trsm(1.0, fac.r, a.T, side=0, lower=0, trans_a=1).T  # C-ordered (m, n)
    # the Gram matrix of Q1 (for wide, q1 holds Q1^H)
    # SciPy's gemm: the trsm's thread pool (products.py)
    if not np.iscomplexobj(a):
        g2 = np.asfortranarray(matmul(q1, q1.T) if wide else matmul(q1.T, q1))
    else:
        q1h = q1.conj().T
        g2 = np.asfortranarray(matmul(q1, q1h) if wide else matmul(q1h, q1))
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (g2,))
    r2, info = potrf(g2, lower=0, overwrite_a=1)
    if info != 0:
        return None
    g2inv, info = potri(r2, lower=0, overwrite_c=1)  # (Q1^H Q1)^{-1}, upper triangle
    if info != 0:
        return None
    t = matmul(y, np.triu(g2inv) + np.triu(g2inv, 1).conj().T)  # W^+ = T Q1^H
    if not np.iscomplexobj(a):
        return matmul(q1.T, t.T) if wide else matmul(t, q1.T)  # A^+ = (T Q1^T)^T or T Q1^T
    if wide:  # A^+ = (W^+)^H = (T Q1^H)^H, q1 holding Q1^H: (T q1)^H = q1^H T^H
        return matmul(q1.conj().T, t.conj().T)
    return matmul(t, q1.conj().T)


def path(fac: GramFactor, shape: tuple[int, int], dtype: np.dtype) -> str:
    """How ``A^+`` is formed, by ``kappa``: ``"normal"`` (equations), ``"cholqr2"`` or
    ``"householder"`` (left to ``qr.py``)."""
    if fac.kappa_up <= K_NE:
        return "normal"
    k, p = sorted(shape)
    if 8 * fac.kappa_up * math.sqrt((p * k + k * (k + 1)) * float(np.finfo(dtype).eps)) <= 1:
        return "cholqr2"
    return "householder"


def gram_inverse(a: np.ndarray, fac: GramFactor) -> np.ndarray | None:
    """``A^+`` of a proven full-rank non-square ``a`` by ``path``; ``None`` for
    Householder QR (or if CholeskyQR2's second ``potrf`` fails)."""
    how = path(fac, a.shape, a.dtype)
    if how == "householder":
        return None
    (trtri,) = lapack.get_lapack_funcs(("trtri",), (fac.r,))
    y, info = trtri(fac.r, lower=0)  # Y = R^{-1}
    if info != 0:
        return None
    return _normal_equations(a, y) if how == "normal" else _cholqr2(a, fac, y)
