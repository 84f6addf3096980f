"""``method="randomized"``: certified randomized range finder for low-rank matrices.

Algorithm (Halko, Martinsson & Tropp, "Finding structure with randomness", SIAM Review
53(2), 2011; HMT below): ``Y = A Omega`` with ``l`` Gaussian columns, ``POWER`` subspace
iterations re-orthonormalised by QR (HMT Alg. 4.4), ``Q = orth(Y)``, ``B = Q^H A``
(``l x n``), ``B = U_B diag(s) V^H`` (LAPACK), and
``A^+ ~ V diag(1/s kept) (Q U_B)^H``. Cost ``O(mnl)`` instead of ``O(mn min(m, n))``.

Certificate (a-posteriori, HMT section 4.3): with ``E = A - Q B`` and ``r = PROBES``
standard Gaussian vectors ``w_j``, HMT Lemma 4.1 applied to ``M = (E E^H)^c E`` (whose
norm is ``||E||^(2c+1)``) gives, except with probability ``10^-r``,
``||E|| <= (10 sqrt(2/pi) max_j ||M w_j||)^(1/(2c+1)) =: delta``. Weyl's inequality
then puts every singular value of ``A`` within ``d = delta + sqrt(p) eps s_1`` of the
sketch's (``s_i``, and 0 beyond ``l``; ``sqrt(p) eps s_1`` is the backward error of a
LAPACK SVD with the Users' Guide's ``p(m, n)`` taken as ``sqrt(max(m, n))``: it covers
the SVD path's own rounding, well below the default ``rtol = max(m, n) eps``), and
``tol`` in ``[tol_lo, tol_hi] = [max(atol, rtol s_1), max(atol, rtol (s_1 + d))]``. The
result is accepted when ``MARGIN d <= tol_lo`` (every value beyond the sketch is
dropped) and each ``s_i`` is either ``> tol_hi + MARGIN d`` (kept) or ``<= tol_lo -
MARGIN d`` (dropped): the rank is then the SVD path's, with probability at least ``1 -
10^-10``. Otherwise the sketch is doubled and the test repeated; past ``min(m, n) / 4``
columns (a spectrum that is not low rank), or when a singular value sits too close to
the threshold, the matrix goes to the SVD method.
The random generator is seeded: results are deterministic.

Accuracy promise: the kept part differs from ``A``'s by at most ``d <= tol / MARGIN``,
so the error relative to ``||A^+||`` is about ``kappa_r * (d + p eps s_1) / s_1``
(``kappa_r = s_1 / s_r``), the order of the SVD method's for the default tolerance.
A flat spectrum (not low rank) costs a few wasted sketches before the SVD.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg

from .svd import pinv_svd_one

PROBES = 10  # probability of a wrong certificate <= 10**-PROBES (HMT Lemma 4.1)
POWER = 2  # subspace iterations of the range finder (HMT Alg. 4.4; 1-3 is usual)
CERT_POWER = 3  # power steps inside the certificate: the factor 8 shrinks to 8**(1/7)
MARGIN = 2.0  # safety factor between the residual bound and the threshold
START = 64  # initial sketch width
SEED = 20110218  # HMT's arXiv submission date; any fixed seed makes results repeatable
_HMT = 10 * math.sqrt(2 / math.pi)


def _gauss(rng: np.random.Generator, shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    real = np.finfo(dtype).dtype
    g = rng.standard_normal(shape, dtype=np.float64)
    if np.issubdtype(dtype, np.complexfloating):
        g = (g + 1j * rng.standard_normal(shape)) / math.sqrt(2)
        return g.astype(dtype)
    return g.astype(real)


def _orth(y: np.ndarray) -> np.ndarray:
    return scipy.linalg.qr(y, mode="economic", overwrite_a=True, check_finite=False)[0]


def _residual_bound(a: np.ndarray, q: np.ndarray, b: np.ndarray, rng: np.random.Generator):
    """``delta >= ||A - Q B||_2`` except with probability ``10**-PROBES``."""
    ah, bh, qh = a.conj().T, b.conj().T, q.conj().T
    y = _gauss(rng, (a.shape[1], PROBES), a.dtype)
    log_scale = 0.0
    for step in range(2 * CERT_POWER + 1):
        y = a @ y - q @ (b @ y) if step % 2 == 0 else ah @ y - bh @ (qh @ y)
        peak = float(np.max(np.abs(y)))
        if not peak > 0:
            return 0.0
        y /= peak  # keeps the powers in range; the scale is carried in log_scale
        log_scale += math.log(peak)
    top = float(np.max(np.linalg.norm(y, axis=0)))
    return math.exp((math.log(_HMT * top) + log_scale) / (2 * CERT_POWER + 1))


def randomized_one(a: np.ndarray, atol: float, rtol: float) -> tuple[np.ndarray, int] | None:
    """Certified ``(A^+, rank)`` of one matrix, or ``None`` when it cannot certify."""
    m, n = a.shape
    k, p = min(m, n), max(m, n)
    eps = float(np.finfo(a.dtype).eps)
    rng = np.random.default_rng(SEED)
    ell = min(START, k)
    while True:
        q = _orth(a @ _gauss(rng, (n, ell), a.dtype))
        for _ in range(POWER):
            q = _orth(a @ _orth(a.conj().T @ q))
        b = q.conj().T @ a
        ub, s, vh = scipy.linalg.svd(b, full_matrices=False, check_finite=False)
        d = _residual_bound(a, q, b, rng) + math.sqrt(p) * eps * float(s[0])
        tol_lo = max(atol, rtol * float(s[0]))
        tol_hi = max(atol, rtol * (float(s[0]) + d))
        if MARGIN * d <= tol_lo and tol_lo > 0:
            keep = s > tol_hi + MARGIN * d
            drop = s <= tol_lo - MARGIN * d
            if not np.all(keep | drop):
                return None  # a singular value too close to the threshold to decide
            r = int(np.count_nonzero(keep))
            if r == 0:
                return np.zeros((n, m), dtype=a.dtype), 0
            left = q @ ub[:, :r]
            right = vh[:r].conj().T * (1 / s[:r]).astype(a.dtype)
            return right @ left.conj().T, r
        if ell >= k // 4:
            return None  # not low rank (or the tolerance is 0): the SVD is the method
        ell = min(2 * ell, k // 4)


def pinv_randomized(
    a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``method="randomized"``: certified low-rank pseudo-inverse, else the SVD method."""
    bsz, m, n = a.shape
    x = np.empty((bsz, n, m), dtype=a.dtype)
    rank = np.empty(bsz, dtype=np.int64)
    for i in range(bsz):
        got = randomized_one(a[i], float(atol[i]), float(rtol[i]))
        if got is None:
            got = pinv_svd_one(a[i], float(atol[i]), float(rtol[i]), i)
        x[i], rank[i] = got
    return x, rank
