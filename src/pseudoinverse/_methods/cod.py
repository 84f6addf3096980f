"""A rank-deficient large solve by a complete orthogonal decomposition (``"auto"``'s
route between the certified full-rank solves and ``gelsd``, ``solve_large.solve_one``).

``A P = Q [R11 R12; 0 R22]`` by QR with column pivoting (LAPACK ``geqp3``, blocked), the
rank ``r`` read from ``|R_ii|`` against pinv's threshold, then ``[R11 R12] = [T 0] Z``
(``tzrzf``) and the minimum-norm solution ``x = P Z^H [T^{-1} (Q^H b)_{1:r}; 0]``: the
``gelsy`` algorithm, about 4x faster than ``gelsd`` on 2000^2 of rank 1500 (one thread),
never forming singular vectors.

Its rank is taken only where the decomposition shows it far from the threshold
``tol = max(atol, rtol sigma_max)``: ``sigma_{r+1}(A) <= ||R22||_2`` and
``sigma_r(A) >= sigma_min(R11) = 1 / ||R11^{-1}||_2`` (interlacing: removing rows and
columns), so where ``||R22||_2 < tol - band`` and ``1 / ||R11^{-1}||_2 > tol + band``
every backward-stable SVD keeps exactly ``r`` values. The dropped block must also be at
rounding level, ``||R22||_2 <= p eps sigma_max`` (the default ``rtol``'s scale): dropping
``R22`` is not dropping ``sigma_{r+1..}``, the two truncations differ by about
``||R22|| / sigma_r`` relative, so a larger ``atol``/``rtol`` cutting real values goes to
``gelsd``. The two 2-norms are the least of
the Frobenius norm and 1.5x a power iteration's estimate (empirical, like the band:
measured within 5%). ``band = GUARD sqrt(p) eps sigma_max + 2% tol`` covers the rounding
of those computed quantities (the ``gelsd`` route's band, measured, not proven) and
``sigma_max`` estimated by power iteration on ``R`` (a lower bound that converges from
below; the 2% covers its shortfall after ``POWER_STEPS`` steps, measured). Elsewhere
``None``: ``gelsd``, then the SVD, decide.

Accuracy: the COD is backward stable and the dropped ``R22`` is at rounding level, so
``x`` is within ``O(p eps kappa_r)`` of ``pinv(A) b``, ``kappa_r = sigma_max / sigma_r``
(``tests/test_solve_large.py`` against the SVD in float64: within ``8 p eps kappa_r``).

>>> import numpy as np
>>> from pseudoinverse._methods.cod import solve_cod
>>> a = np.outer(np.arange(1.0, 5.0), np.ones(3))  # rank 1
>>> x, rank = solve_cod(a, np.ones((4, 1)), 0.0, 1e-12, 2.0**-52)
>>> rank, bool(np.allclose(x, np.linalg.pinv(a) @ np.ones((4, 1))))
(1, True)
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import lapack

from . import gram

GUARD = 8.0  # as solve_large.GUARD: GUARD sqrt(p) eps sigma_max
POWER_STEPS = 12  # power iteration on R for sigma_max (tol's scale)
ESTIMATE_SLACK = 0.02  # the estimate's shortfall allowed for (measured < 1e-3 at 12 steps)
# ||R22||_2 from power iteration times this (measured: the 12-step estimate within 5% of
# ||.||_2 on Gaussian triangles up to 500 x 500 and 20 x 500, and on geqp3's trailing
# blocks), where ||R22||_F overstates a noise-like block by ~sqrt(n) / 2
R22_SLACK = 1.5
_BLOCK = 64  # geqp3's and tzrzf's block size for the workspace


def _funcs(dtype):
    names = ("geqp3", "tzrzf", "ormrz", "ormqr", "trtrs")
    if np.dtype(dtype).kind == "c":
        names = ("geqp3", "tzrzf", "unmrz", "unmqr", "trtrs")
    return lapack.get_lapack_funcs(names, dtype=dtype)


def power_norm(a: np.ndarray, steps: int = POWER_STEPS) -> float:
    """``||A v||`` after ``steps`` of power iteration on ``A^H A`` (``<= ||A||_2``), from
    ``gram.SEED``'s start vector (repeatable); ``A^H y`` without a conjugated copy."""
    v = np.random.default_rng(gram.SEED).standard_normal(a.shape[1]).astype(a.dtype)
    for _ in range(steps):
        w = a @ v
        v = np.conj(a.T @ np.conj(w)) if np.iscomplexobj(a) else a.T @ w
        nv = float(np.linalg.norm(v))
        if not nv > 0:
            return 0.0
        v /= nv
    return float(np.linalg.norm(a @ v))


def solve_cod(
    a: np.ndarray, b: np.ndarray, atol: float, rtol: float, eps: float
) -> tuple[np.ndarray, int] | None:
    """``(pinv(A) @ b, rank)`` where the decomposition proves the rank (module
    docstring), else ``None``. ``a (m, n)``, ``b (m, k)`` of one float64/complex128 dtype
    (``eps`` that of the input: the precision pinv's rank decision is made in)."""
    m, n = a.shape
    p, kk = max(m, n), min(m, n)
    geqp3, tzrzf, ormrz, ormqr, trtrs = _funcs(a.dtype)
    w = np.array(a, order="F")
    qr, jpvt, tau, _, info = geqp3(w, lwork=2 * n + (n + 1) * _BLOCK, overwrite_a=1)
    if info != 0:  # pragma: no cover - only illegal arguments make geqp3 fail
        return None
    d = np.abs(np.diagonal(qr)[:kk]).astype(np.float64)
    if not d.size or d[0] == 0:  # the zero matrix (pivoting puts the largest column first)
        return np.zeros((n, b.shape[1]), dtype=a.dtype), 0
    smax = max(power_norm(np.triu(qr[:kk])), float(d[0]))  # sigma_max(A) = sigma_max(R)
    tol = max(atol, rtol * smax)
    band = GUARD * math.sqrt(p) * eps * smax + ESTIMATE_SLACK * tol
    r = int(np.count_nonzero(d > tol))
    r22 = 0.0
    if r < kk:  # ||R22||_2, bounded by ||R22||_F and by 1.5x its power-iteration estimate
        t = np.triu(qr[r:kk, r:])
        r22 = min(float(np.linalg.norm(t)), R22_SLACK * power_norm(t))
    # ... and a dropped part at rounding level: the COD's truncation differs from the SVD's
    # by O(||R22|| / sigma_r) relative, within pinv's p eps kappa only if ||R22|| is
    if not (r22 < tol - band and r22 <= p * eps * smax):
        return None
    if r == 0:  # every value below the threshold: pinv's result is 0
        return np.zeros((n, b.shape[1]), dtype=a.dtype), 0
    r11 = np.triu(qr[:r, :r])
    r11_inv, info = lapack.get_lapack_funcs("trtri", dtype=a.dtype)(np.asfortranarray(r11))
    if info != 0:  # pragma: no cover - an exact zero pivot: d says it cannot be
        return None
    t = np.triu(r11_inv)  # ||R11^{-1}||_2 as ||R22||_2 above
    if not 1.0 / min(float(np.linalg.norm(t)), R22_SLACK * power_norm(t)) > tol + band:
        return None
    trans = b"C" if np.iscomplexobj(a) else b"T"
    q = qr[:, :kk]  # the reflectors (geqp3 stores min(m, n) of them)
    c, _, info = ormqr(b"L", trans, q, tau, np.array(b, order="F"), max(1, b.shape[1] * _BLOCK))
    if info != 0:  # pragma: no cover
        return None
    if r < n:  # [R11 R12] = [T 0] Z, then z = Z^H [T^{-1} c1; 0]
        rz, tau_z, info = tzrzf(np.array(np.triu(qr[:r]), order="F"), lwork=max(1, r * _BLOCK))
        if info != 0:  # pragma: no cover
            return None
        y, info = trtrs(rz[:, :r], np.asfortranarray(c[:r]))
        z = np.zeros((n, b.shape[1]), dtype=a.dtype, order="F")
        z[:r] = y
        z, info = ormrz(rz, tau_z, z, side=b"L", trans=trans)
    else:  # full column rank: z = R11^{-1} c1
        z, info = trtrs(np.asfortranarray(r11), np.asfortranarray(c[:r]))
    if info != 0:  # pragma: no cover
        return None
    x = np.empty((n, b.shape[1]), dtype=a.dtype)
    x[jpvt - 1] = z  # x = P z (jpvt is 1-based)
    return x, r
