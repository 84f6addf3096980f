"""Batched one-sided Jacobi SVD pseudo-inverse of real matrices, SIMD across the batch.

A block of ``blk`` matrices is copied into a batch-interleaved buffer ``W[j, i, k]``
(column ``j``, row ``i``, matrix ``k``), so every inner loop runs over ``k`` with unit
stride and no branch: LLVM turns it into SIMD (AVX2/AVX-512) code. Each block runs
cyclic one-sided Jacobi (Hestenes) sweeps on the columns of the tall orientation
(``A``, or ``A^T`` when ``m < n``) until a sweep rotates nothing, then forms
``A^+ = V diag(f) (W diag(f))^T`` with ``f_j = 1/sigma_j`` for the kept columns.

Conventions (shared with ``jacobi_complex``):

* Each matrix is first scaled by a power of two (exact) so that its largest entry
  lies in ``[1/2, 1)``: column norms squared cannot overflow, and singular values a
  tolerance could keep cannot underflow; ``atol`` is scaled the same way, so the rank
  decision ``sigma > max(atol, rtol * sigma_max)`` is the one on the unscaled matrix.
* ``hermitian``: the working matrix is built from the lower triangle only (the strict
  upper triangle is never read). Its singular values are the eigenvalue moduli and its
  SVD pseudo-inverse equals ``V diag(1/w) V^H``, so the same kernel serves.
* A pair ``(p, q)`` is rotated when ``(a_p^H a_q)^2 > tol_conv^2 |a_p|^2 |a_q|^2``
  (``tol_conv`` = eps of the working dtype); the rotation uses selects (``t = 0`` for
  the others), never branches, and a pair no matrix of the block needs is skipped.
* ``consts = [tol_conv**2, 0, 1]`` in the working dtype keeps float32 arithmetic in
  float32 (a Python float literal would promote it to float64).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

OPTS = {"cache": True, "nogil": True, "error_model": "numpy", "fastmath": {"contract"}}


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
def rotation(al, be, g, g2, consts):
    """``(rot, c, u)`` of the rotation that zeroes ``g`` in ``[[al, g], [g*, be]]``.

    ``rot``: whether the pair needs it. With ``d = be - al``, ``r = sqrt(d^2 + 4|g|^2)``
    and ``h = sqrt(2 r (|d| + r))``: ``c = (|d| + r)/h`` and ``s e = u g`` with
    ``u = 2 sign(d)/h`` (``e = g/|g|``): ``t = s/c`` is Rutishauser's smaller root of
    ``|g| t^2 + d t - |g| = 0``. Two square roots and one division; ``h > 0`` whenever
    ``rot`` (then ``g^2 > 0``), and the others get the identity.
    """
    rot = g2 > consts[0] * al * be
    d = be - al
    r = math.sqrt(d * d + (g2 + g2) + (g2 + g2))
    ad = abs(d) + r
    h = math.sqrt((r + r) * ad)
    h = h if rot else consts[2]
    inv = consts[2] / h
    c = ad * inv if rot else consts[2]
    u = math.copysign(inv + inv, d) if rot else consts[1]
    return rot, c, u


@njit(**OPTS)
def threshold(sig, sc, atol, rtol, rank, b0, nb, blk, q, consts):
    """Turn ``sig[j, k]`` into ``f = 1/sigma`` (kept) or 0, writing ``rank[b0:b0+nb]``."""
    smax = np.zeros(blk, np.float64)
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
            s = sig[j, k] if keep else consts[2]
            sig[j, k] = consts[2] / s if keep else consts[1]
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
def pinv_real(a, atol, rtol, out, rank, hermitian, blk, consts, emax, max_sweeps):
    """Pseudo-inverses of the real stack ``a (B, m, n)`` into ``out (B, n, m)``.

    Returns the number of sweeps run, summed over the blocks (a diagnostic).
    """
    nbatch, m, n = a.shape
    tr = m < n
    p = n if tr else m  # rows of the working (tall) matrix
    q = m if tr else n  # its columns
    dt = a.dtype
    W = np.zeros((q, p, blk), dt)
    V = np.zeros((q, q, blk), dt)
    X = np.zeros((q, p, blk), dt)
    sc = np.ones(blk, dt)
    mx = np.zeros(blk, dt)
    ga = np.zeros(blk, dt)
    cc = np.zeros(blk, dt)
    ss = np.zeros(blk, dt)
    sig = np.zeros((q, blk), dt)
    one = consts[2]
    total = 0
    for b0 in range(0, nbatch, blk):
        nb = min(blk, nbatch - b0)
        if nb < blk:
            W[:] = 0
        if hermitian:
            for k in range(nb):
                for i in range(p):
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
        for k in range(blk):
            mx[k] = 0
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    mx[k] = max(mx[k], abs(W[j, i, k]))
        scale_exponents(mx, sc, blk, emax)
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    W[j, i, k] *= sc[k]
            for i in range(q):
                d = one if i == j else consts[1]
                for k in range(blk):
                    V[j, i, k] = d
        for _sweep in range(max_sweeps):
            total += 1
            rotated = False
            for j in range(q):  # exact column norms; updated by the rotations below
                for k in range(blk):
                    sig[j, k] = W[j, 0, k] * W[j, 0, k]
                for i in range(1, p):
                    for k in range(blk):
                        sig[j, k] += W[j, i, k] * W[j, i, k]
            for jp in range(q - 1):
                x = W[jp]
                for jq in range(jp + 1, q):
                    y = W[jq]
                    for k in range(blk):
                        ga[k] = x[0, k] * y[0, k]
                    for i in range(1, p):
                        for k in range(blk):
                            ga[k] += x[i, k] * y[i, k]
                    nrot = 0
                    for k in range(blk):
                        g = ga[k]
                        al = sig[jp, k]
                        be = sig[jq, k]
                        rot, c, u = rotation(al, be, g, g * g, consts)
                        nrot += 1 if rot else 0
                        s = u * g
                        cc[k] = c
                        ss[k] = s
                        cs = (c * s) * (g + g)
                        sig[jp, k] = max((c * c) * al + (s * s) * be - cs, consts[1])
                        sig[jq, k] = max((s * s) * al + (c * c) * be + cs, consts[1])
                    if nrot > 0:  # skip pairs already orthogonal in every matrix
                        rotated = True
                        _rotate(x, y, cc, ss, p, blk)
                        _rotate(V[jp], V[jq], cc, ss, q, blk)
            if not rotated:
                break
        for j in range(q):
            for k in range(blk):
                sig[j, k] = 0
            for i in range(p):
                for k in range(blk):
                    sig[j, k] += W[j, i, k] * W[j, i, k]
            for k in range(blk):
                sig[j, k] = math.sqrt(sig[j, k])
        threshold(sig, sc, atol, rtol, rank, b0, nb, blk, q, consts)
        for j in range(q):  # A^+ = V diag(f) (W diag(f))^T, times the scale
            for i in range(p):
                for k in range(blk):
                    W[j, i, k] *= sig[j, k]
            for i in range(q):
                for k in range(blk):
                    V[j, i, k] *= sig[j, k] * sc[k]
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
    return total


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
def apply_real(a, b, atol, rtol, lam, damped, out, rank, hermitian, blk, consts, emax, max_sweeps):
    """``pinv(A) @ b`` or the damped inverse ``V diag(sigma / (sigma^2 + lam^2)) U^T @ b``.

    ``damped`` False: the rank rule of ``pinv_real`` (``atol``, ``rtol``; ``rank``
    written), the same sweeps, hence the same singular values and ranks bit for bit.
    ``damped`` True: ``lam (B,)`` is scaled with the matrix (``X(sA, s lam) = X(A, lam)/s``),
    ``rank`` is not written, and a column with ``sigma^2 + lam^2 == 0`` contributes 0.
    ``b (B, m, k)`` gives ``out (B, n, k)`` without forming the ``(n, m)`` matrix (tall:
    ``V diag(f^2) W^T b``, wide: ``W diag(f^2) V^T b``, with ``W = U Sigma``); ``k = 0``
    forms the matrix into ``out (B, n, m)`` as ``pinv_real`` does.

    The front is ``pinv_real``'s written out, not shared: moved into functions, numba
    compiled it otherwise and ``pinv_real``'s last bits changed (measured). Written out,
    damping 0 gives ``pinv_real``'s bits with ``atol = rtol = 0`` (tested).
    """
    nbatch, m, n = a.shape
    kk = b.shape[2]
    tr = m < n
    p = n if tr else m  # rows of the working (tall) matrix
    q = m if tr else n  # its columns
    dt = a.dtype
    W = np.zeros((q, p, blk), dt)
    V = np.zeros((q, q, blk), dt)
    X = np.zeros((q, p, blk), dt)
    sc = np.ones(blk, dt)
    mx = np.zeros(blk, dt)
    ga = np.zeros(blk, dt)
    cc = np.zeros(blk, dt)
    ss = np.zeros(blk, dt)
    sig = np.zeros((q, blk), dt)
    ls = np.zeros(blk, dt)
    Bb = np.zeros((m, kk, blk), dt)
    T = np.zeros((q, kk, blk), dt)
    Y = np.zeros((n, kk, blk), dt)
    one = consts[2]
    total = 0
    for b0 in range(0, nbatch, blk):
        nb = min(blk, nbatch - b0)
        if nb < blk:
            W[:] = 0
        if hermitian:
            for k in range(nb):
                for i in range(p):
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
        for k in range(blk):
            mx[k] = 0
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    mx[k] = max(mx[k], abs(W[j, i, k]))
        scale_exponents(mx, sc, blk, emax)
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    W[j, i, k] *= sc[k]
            for i in range(q):
                d = one if i == j else consts[1]
                for k in range(blk):
                    V[j, i, k] = d
        for _sweep in range(max_sweeps):
            total += 1
            rotated = False
            for j in range(q):  # exact column norms; updated by the rotations below
                for k in range(blk):
                    sig[j, k] = W[j, 0, k] * W[j, 0, k]
                for i in range(1, p):
                    for k in range(blk):
                        sig[j, k] += W[j, i, k] * W[j, i, k]
            for jp in range(q - 1):
                x = W[jp]
                for jq in range(jp + 1, q):
                    y = W[jq]
                    for k in range(blk):
                        ga[k] = x[0, k] * y[0, k]
                    for i in range(1, p):
                        for k in range(blk):
                            ga[k] += x[i, k] * y[i, k]
                    nrot = 0
                    for k in range(blk):
                        g = ga[k]
                        al = sig[jp, k]
                        be = sig[jq, k]
                        rot, c, u = rotation(al, be, g, g * g, consts)
                        nrot += 1 if rot else 0
                        s = u * g
                        cc[k] = c
                        ss[k] = s
                        cs = (c * s) * (g + g)
                        sig[jp, k] = max((c * c) * al + (s * s) * be - cs, consts[1])
                        sig[jq, k] = max((s * s) * al + (c * c) * be + cs, consts[1])
                    if nrot > 0:  # skip pairs already orthogonal in every matrix
                        rotated = True
                        _rotate(x, y, cc, ss, p, blk)
                        _rotate(V[jp], V[jq], cc, ss, q, blk)
            if not rotated:
                break
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
                    pos = d2 > consts[1]
                    r = math.sqrt(d2) if pos else one
                    sig[j, k] = one / r if pos else consts[1]
            else:
                for k in range(blk):
                    sig[j, k] = math.sqrt(sig[j, k])
        if not damped:
            threshold(sig, sc, atol, rtol, rank, b0, nb, blk, q, consts)
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
