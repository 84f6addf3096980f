"""Batched one-sided Jacobi SVD pseudo-inverse of real matrices, SIMD across the batch.

A block of ``blk`` matrices is copied into a batch-interleaved float64 buffer
``W[j, i, k]`` (column ``j``, row ``i``, matrix ``k``), so every inner loop runs over
``k`` with unit stride and no branch: LLVM turns it into SIMD code. Each block runs
one-sided Jacobi (Hestenes) sweeps on the columns of the tall orientation (``A``, or
``A^T`` when ``m < n``) until a sweep rotates nothing, then forms
``A^+ = V diag(f) (W diag(f))^T`` with ``f_j = 1/sigma_j`` for the kept columns (or its
product with a right-hand side, or the damped inverse: ``jacobi_real``).

Conventions (shared with ``jacobi_complex`` and ``tiny``):

* Everything is computed in float64, float32 input included (loaded exactly, rounded
  once at the end): the result then errs by little more than its own rounding where
  float32 arithmetic errs by up to ``eps32 kappa``. A float32 matrix's sweeps stop at a
  looser threshold (``tol`` below), which leaves an error far below that rounding.
* Each matrix is first scaled by a power of two (exact) so that its largest entry
  lies in ``[1/2, 1)``: column norms squared cannot overflow, and singular values a
  tolerance could keep cannot underflow; ``atol`` is scaled the same way, so the rank
  decision ``sigma > max(atol, rtol * sigma_max)`` is the one on the unscaled matrix.
* ``hermitian``: the working matrix is built from the lower triangle only (the strict
  upper triangle is never read). Its singular values are the eigenvalue moduli and its
  SVD pseudo-inverse equals ``V diag(1/w) V^H``, so the same kernel serves.
* A pair ``(p, q)`` is rotated when ``(a_p^H a_q)^2 > tol^2 |a_p|^2 |a_q|^2`` (``tol``:
  eps64 for float64/complex128 input, ``2**-34`` for float32/complex64); the rotation
  uses selects (``c = 1, s = 0`` exactly for the others), never branches, and a pair no
  matrix of the block needs is skipped before its rotation is computed, so the last
  sweep (which finds nothing to do) costs only its dot products.
* The pairs of a sweep come in round-robin order (``pair_order``): rounds of disjoint
  pairs, which converge in fewer sweeps than the cyclic row order (measured: 4 x 4,
  3.75 against 4.19 sweeps on average; 8 x 8, 5.4 against 5.9).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

OPTS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract"}}

#: Convergence thresholds ``tol`` (see above). For float32 input the off-diagonal left,
#: cosines up to ``tol``, shows in ``X`` as a relative error of about ``sqrt(q) tol``:
#: below 1/400 of float32's rounding of the result.
TOL64 = float(np.finfo(np.float64).eps)
TOL32 = 2.0**-34

#: ``2**emax`` stays finite in float64: the largest scale a matrix can get.
EMAX = 1000


def pair_order(q: int) -> np.ndarray:
    """The ``(npairs, 2)`` pairs of one sweep over ``q`` columns: round-robin rounds of
    disjoint pairs (the circle method; for ``q < 4`` the cyclic order)."""
    if q < 4:
        pairs = [(a, b) for a in range(q - 1) for b in range(a + 1, q)]
    else:
        n = q + q % 2
        ring = list(range(n))
        pairs = []
        for _ in range(n - 1):
            for i in range(n // 2):
                a, b = sorted((ring[i], ring[n - 1 - i]))
                if b < q:
                    pairs.append((a, b))
            ring = [ring[0], ring[-1], *ring[1:-1]]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


@njit(**OPTS)
def scale_exponents(mx, sc, blk, emax):
    """``sc[k] = 2**-e`` with ``max|A_k| = f 2**e``, ``f`` in [1/2, 1); ``e`` clamped to +-emax."""
    for k in range(blk):
        if mx[k] > 0:
            e = min(max(math.frexp(mx[k])[1], -emax), emax)
            sc[k] = math.ldexp(1.0, -e)
        else:
            sc[k] = 1.0


@njit(**OPTS)
def rotation(al, be, g2, tol2):
    """``(rot, c, u, tg)`` of the rotation that zeroes ``g`` in ``[[al, g], [g*, be]]``
    (``g2 = |g|^2``).

    ``rot``: whether the pair needs it. With ``d = be - al``, ``r = sqrt(d^2 + 4|g|^2)``
    and ``h = sqrt(2 r (|d| + r))``: ``c = (|d| + r)/h`` and ``s e = u g`` with
    ``u = 2 sign(d)/h`` (``e = g/|g|``): ``t = s/c`` is Rutishauser's smaller root of
    ``|g| t^2 + d t - |g| = 0``. The squared norms become ``al - tg`` and ``be + tg`` with
    ``tg = t |g| = u |g|^2 (2 r / h)``. Two square roots and one division; ``h > 0``
    whenever ``rot`` (then ``g2 > 0``), and the others get ``c = 1``, ``u = tg = 0``.
    """
    rot = g2 > tol2 * al * be
    d = be - al
    r = math.sqrt(d * d + 4.0 * g2)
    ad = abs(d) + r
    h = math.sqrt((r + r) * ad)
    h = h if rot else 1.0
    inv = 1.0 / h
    c = ad * inv if rot else 1.0
    u = math.copysign(inv + inv, d) if rot else 0.0
    return rot, c, u, (u * g2) * ((r + r) * inv)


@njit(**OPTS)
def threshold(sig, sc, atol, rtol, rank, b0, nb, blk, q):
    """Turn ``sig[j, k]`` into ``f = 1/sigma`` (kept) or 0, writing ``rank[b0:b0+nb]``."""
    smax = np.zeros(blk)
    for j in range(q):
        for k in range(blk):
            smax[k] = max(smax[k], sig[j, k])
    cnt = np.zeros(blk, np.int64)
    for k in range(nb):  # lanes past nb are padding: tol = inf keeps nothing
        smax[k] = max(atol[b0 + k] * sc[k], rtol[b0 + k] * smax[k])
    for k in range(nb, blk):
        smax[k] = np.inf
    for j in range(q):
        for k in range(blk):
            keep = sig[j, k] > smax[k]
            cnt[k] += 1 if keep else 0
            s = sig[j, k] if keep else 1.0
            sig[j, k] = 1.0 / s if keep else 0.0
    for k in range(nb):
        rank[b0 + k] = cnt[k]


@njit(**OPTS)
def _rotate(x, y, cc, ss, p, blk):
    """Columns ``(x, y) <- (c x - s y, s x + c y)``, lane by lane."""
    for i in range(p):
        for k in range(blk):
            u = x[i, k]
            v = y[i, k]
            x[i, k] = cc[k] * u - ss[k] * v
            y[i, k] = ss[k] * u + cc[k] * v


@njit(**OPTS)
def _left_right(L, R, Bb, T, Y, rows_r, rows_l, q, kk, blk):
    """``Y = L^T-columns times (R^T Bb)``: ``T[j] = sum_i R[j, i] Bb[i]``,
    ``Y[l] = sum_j L[j, l] T[j]`` (``L``, ``R`` hold columns), lane by lane."""
    for j in range(q):
        for c in range(kk):
            for k in range(blk):
                T[j, c, k] = R[j, 0, k] * Bb[0, c, k]
            for i in range(1, rows_r):
                for k in range(blk):
                    T[j, c, k] += R[j, i, k] * Bb[i, c, k]
    for ll in range(rows_l):
        for c in range(kk):
            for k in range(blk):
                Y[ll, c, k] = L[0, ll, k] * T[0, c, k]
            for j in range(1, q):
                for k in range(blk):
                    Y[ll, c, k] += L[j, ll, k] * T[j, c, k]


@njit(**OPTS)
def _load(a, W, b0, nb, hermitian, tr):
    """Lanes ``k < nb`` of ``W`` from ``a[b0 + k]`` (the tall orientation; the lower
    triangle mirrored with ``hermitian``), the rest zero (a zero matrix: done at once)."""
    _, m, n = a.shape
    if nb < W.shape[2]:
        W[:] = 0
    if hermitian:
        for k in range(nb):
            for i in range(m):
                for j in range(i + 1):
                    W[j, i, k] = W[i, j, k] = a[b0 + k, i, j]
    elif tr:
        for k in range(nb):
            for i in range(m):
                for j in range(n):
                    W[i, j, k] = a[b0 + k, i, j]
    else:
        for k in range(nb):
            for i in range(m):
                for j in range(n):
                    W[j, i, k] = a[b0 + k, i, j]


@njit(**OPTS)
def _sweeps(W, V, sig, ga, cc, ss, pairs, tol2, max_sweeps, p, q, blk):
    """Sweeps until one rotates nothing (at most ``max_sweeps``); returns their count."""
    for sweep in range(max_sweeps):
        rotated = False
        for j in range(q):  # exact column norms; updated by the rotations below
            for k in range(blk):
                sig[j, k] = W[j, 0, k] * W[j, 0, k]
            for i in range(1, p):
                for k in range(blk):
                    sig[j, k] += W[j, i, k] * W[j, i, k]
        for t in range(pairs.shape[0]):
            jp = pairs[t, 0]
            jq = pairs[t, 1]
            x = W[jp]
            y = W[jq]
            for k in range(blk):
                ga[k] = x[0, k] * y[0, k]
            for i in range(1, p):
                for k in range(blk):
                    ga[k] += x[i, k] * y[i, k]
            need = 0
            for k in range(blk):
                need += 1 if ga[k] * ga[k] > tol2 * sig[jp, k] * sig[jq, k] else 0
            if need == 0:  # no matrix of the block needs this pair
                continue
            rotated = True
            for k in range(blk):
                g = ga[k]
                _, c, u, tg = rotation(sig[jp, k], sig[jq, k], g * g, tol2)
                cc[k] = c
                ss[k] = u * g
                sig[jp, k] = max(sig[jp, k] - tg, 0.0)
                sig[jq, k] = sig[jq, k] + tg
            _rotate(x, y, cc, ss, p, blk)
            _rotate(V[jp], V[jq], cc, ss, q, blk)
        if not rotated:
            return sweep + 1
    return max_sweeps


@njit(**OPTS)
def jacobi_real(a, b, atol, rtol, lam, damped, out, rank, hermitian, blk, pairs, tol2, max_sweeps):
    """``pinv(A)``, ``pinv(A) @ b``, or the damped inverse (times ``b``) of a real stack.

    ``a (B, m, n)`` float32/float64, computed in float64. ``damped`` False: the rank rule
    ``sigma > max(atol, rtol sigma_max)`` (``rank`` written); one kernel for the matrix
    and the solve, hence the same singular values and ranks bit for bit. ``damped``
    True: ``lam (B,)`` is scaled with the matrix (``X(sA, s lam) = X(A, lam)/s``), ``rank``
    is not written, and a column with ``sigma^2 + lam^2 == 0`` contributes 0.
    ``b (B, m, k)`` gives ``out (B, n, k)`` without forming the ``(n, m)`` matrix (tall:
    ``V diag(f^2) W^T b``, wide: ``W diag(f^2) V^T b``, with ``W = U Sigma``); ``k = 0``
    forms the matrix into ``out (B, n, m)``. Returns the sweeps run, summed over blocks.
    """
    nbatch, m, n = a.shape
    kk = b.shape[2]
    tr = m < n
    p = n if tr else m  # rows of the working (tall) matrix
    q = m if tr else n  # its columns
    W = np.zeros((q, p, blk))
    V = np.zeros((q, q, blk))
    X = np.zeros((q, p, blk)) if kk == 0 else np.zeros((0, 0, blk))
    sc = np.ones(blk)
    mx = np.zeros(blk)
    ga = np.zeros(blk)
    cc = np.zeros(blk)
    ss = np.zeros(blk)
    sig = np.zeros((q, blk))
    ls = np.zeros(blk)
    Bb = np.zeros((m, kk, blk))
    T = np.zeros((q, kk, blk))
    Y = np.zeros((n, kk, blk))
    total = 0
    for b0 in range(0, nbatch, blk):
        nb = min(blk, nbatch - b0)
        _load(a, W, b0, nb, hermitian, tr)
        for k in range(blk):
            mx[k] = 0
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    mx[k] = max(mx[k], abs(W[j, i, k]))
        scale_exponents(mx, sc, blk, EMAX)
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    W[j, i, k] *= sc[k]
            for i in range(q):
                d = 1.0 if i == j else 0.0
                for k in range(blk):
                    V[j, i, k] = d
        total += _sweeps(W, V, sig, ga, cc, ss, pairs, tol2, max_sweeps, p, q, blk)
        for k in range(nb):  # the damping, scaled like the matrix (padding lanes: 0)
            ls[k] = lam[b0 + k] * sc[k] if damped else 0.0
        for j in range(q):
            for k in range(blk):
                sig[j, k] = 0
            for i in range(p):
                for k in range(blk):
                    sig[j, k] += W[j, i, k] * W[j, i, k]
            if damped:  # f = 1/sqrt(sigma^2 + lam^2), 0 where that is 0
                for k in range(blk):
                    d2 = sig[j, k] + ls[k] * ls[k]
                    pos = d2 > 0.0
                    r = math.sqrt(d2) if pos else 1.0
                    sig[j, k] = 1.0 / r if pos else 0.0
            else:
                for k in range(blk):
                    sig[j, k] = math.sqrt(sig[j, k])
        if not damped:
            threshold(sig, sc, atol, rtol, rank, b0, nb, blk, q)
        for j in range(q):  # V diag(f) (W diag(f))^T, times the scale
            for i in range(p):
                for k in range(blk):
                    W[j, i, k] *= sig[j, k]
            for i in range(q):
                for k in range(blk):
                    V[j, i, k] *= sig[j, k] * sc[k]
        if kk == 0:
            for i in range(q):
                for ll in range(p):
                    for k in range(blk):
                        X[i, ll, k] = V[0, i, k] * W[0, ll, k]
                    for j in range(1, q):
                        for k in range(blk):
                            X[i, ll, k] += V[j, i, k] * W[j, ll, k]
            if tr:
                for k in range(nb):
                    for ll in range(p):
                        for i in range(q):
                            out[b0 + k, ll, i] = X[i, ll, k]
            else:
                for k in range(nb):
                    for i in range(q):
                        for ll in range(p):
                            out[b0 + k, i, ll] = X[i, ll, k]
            continue
        if nb < blk:
            Bb[:] = 0
        for k in range(nb):
            for i in range(m):
                for c in range(kk):
                    Bb[i, c, k] = b[b0 + k, i, c]
        if tr:  # A = V W^T: A^+ b = W diag V^T b
            _left_right(W, V, Bb, T, Y, m, n, q, kk, blk)
        else:  # A = W V^T: A^+ b = V diag W^T b
            _left_right(V, W, Bb, T, Y, m, n, q, kk, blk)
        for k in range(nb):
            for ll in range(n):
                for c in range(kk):
                    out[b0 + k, ll, c] = Y[ll, c, k]
    return total
