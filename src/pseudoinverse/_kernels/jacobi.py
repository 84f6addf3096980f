"""Batched one-sided Jacobi SVD pseudo-inverse, vectorised across the batch.

A block of ``blk`` matrices is copied into a batch-interleaved buffer ``W[i, j, k]``
(row ``i``, column ``j``, matrix ``k``), so every inner loop runs over ``k`` with unit
stride and no branch: LLVM turns it into SIMD (AVX2/AVX-512) code. Each block runs
cyclic one-sided Jacobi (Hestenes) sweeps on the columns of the tall orientation
(``A``, or ``A^H`` when ``m < n``) until no pair of the block needs a rotation, then
forms ``A^+ = V diag(f) (W diag(f))^H`` with ``f_j = 1/sigma_j`` for the kept columns.

Conventions:

* Each matrix is first scaled by a power of two (exact) so that its largest entry
  lies in ``[1/2, 1)``: column norms squared can neither overflow nor, for any
  singular value a default tolerance could keep, underflow.
* Complex matrices arrive as real views ``(B, m, 2n)`` (interleaved re/im) and are
  split into separate real and imaginary buffers, so the arithmetic stays real and SIMD.
* ``hermitian``: the working matrix is built from the lower triangle only (the
  strict upper triangle is never read; the diagonal's imaginary part is ignored, as
  LAPACK's ``heevd`` does). Its singular values are the eigenvalue moduli and its
  SVD pseudo-inverse equals ``V diag(1/w) V^H``, so the same kernel serves.
* A pair ``(p, q)`` is rotated when ``|a_p^H a_q| > tol_conv * |a_p| |a_q|``;
  rotations are computed with selects (``t = 0`` for the others), never branches.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_OPTS = {"cache": True, "fastmath": {"contract"}, "nogil": True, "error_model": "numpy", "boundscheck": False}


@njit(**_OPTS)
def _scale_exponents(mx, sc, nb, emax):
    """``sc[k] = 2**-e`` with ``max|A_k| = f 2**e``, ``f`` in [1/2, 1); clamped to +-emax."""
    for k in range(nb):
        if mx[k] > 0:
            e = math.frexp(mx[k])[1]
            e = min(max(e, -emax), emax)
            sc[k] = math.ldexp(1.0, -e)
        else:
            sc[k] = 1.0


@njit(**_OPTS)
def _rotation(al, be, g, tol_conv, big, k, cc, ss):
    """Jacobi rotation ``(c, s)`` for the real 2x2 Gram block ``[[al, g], [g, be]]``."""
    rot = abs(g) > tol_conv * math.sqrt(al * be)
    gs = g if rot else 1.0
    zeta = (be - al) / (gs + gs)
    az = abs(zeta)
    root = az if az > big else math.sqrt(1.0 + zeta * zeta)
    t = math.copysign(1.0, zeta) / (az + root)
    t = t if rot else 0.0
    c = 1.0 / math.sqrt(1.0 + t * t)
    cc[k] = c
    ss[k] = c * t
    return 1 if rot else 0


@njit(**_OPTS)
def pinv_real(a, atol, rtol, out, rank, hermitian, blk, tol_conv, big, emax, max_sweeps):
    """Pseudo-inverses of the real stack ``a (B, m, n)`` into ``out (B, n, m)``.

    Returns the total number of sweeps run (over all blocks), for diagnostics.
    """
    nbatch, m, n = a.shape
    tr = m < n
    p = n if tr else m  # rows of the working (tall) matrix
    q = m if tr else n  # its columns
    dt = a.dtype
    W = np.zeros((q, p, blk), dt)  # W[j, i, k]: column j, row i, matrix k of the block
    V = np.zeros((q, q, blk), dt)  # V[j, i, k]: column j of V
    X = np.zeros((q, p, blk), dt)
    sc = np.ones(blk, dt)
    mx = np.zeros(blk, dt)
    al = np.zeros(blk, dt)
    be = np.zeros(blk, dt)
    ga = np.zeros(blk, dt)
    cc = np.zeros(blk, dt)
    ss = np.zeros(blk, dt)
    sig = np.zeros((q, blk), dt)
    total = 0
    for b0 in range(0, nbatch, blk):
        nb = min(blk, nbatch - b0)
        if nb < blk:
            W[:] = 0.0
        # gather into the interleaved layout
        if hermitian:
            for k in range(nb):
                for i in range(p):
                    for j in range(i + 1):
                        v = a[b0 + k, i, j]
                        W[j, i, k] = v
                        W[i, j, k] = v
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
        # exact power-of-two scaling
        mx[:] = 0.0
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    mx[k] = max(mx[k], abs(W[j, i, k]))
        _scale_exponents(mx, sc, blk, emax)
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    W[j, i, k] *= sc[k]
        for j in range(q):
            for i in range(q):
                d = 1.0 if i == j else 0.0
                for k in range(blk):
                    V[j, i, k] = d
        # cyclic sweeps until no pair of the block rotates
        for _sweep in range(max_sweeps):
            total += 1
            rotated = False
            for jp in range(q - 1):
                for jq in range(jp + 1, q):
                    x = W[jp]
                    y = W[jq]
                    for k in range(blk):
                        al[k] = x[0, k] * x[0, k]
                        be[k] = y[0, k] * y[0, k]
                        ga[k] = x[0, k] * y[0, k]
                    for i in range(1, p):
                        for k in range(blk):
                            al[k] += x[i, k] * x[i, k]
                            be[k] += y[i, k] * y[i, k]
                            ga[k] += x[i, k] * y[i, k]
                    nrot = 0
                    for k in range(blk):
                        nrot += _rotation(al[k], be[k], ga[k], tol_conv, big, k, cc, ss)
                    if nrot > 0:  # skip pairs already orthogonal in the whole block
                        rotated = True
                        _rotate(x, y, cc, ss, p, blk)
                        _rotate(V[jp], V[jq], cc, ss, q, blk)
            if not rotated:
                break
        # singular values, threshold, A^+ = V diag(f) (W diag(f))^T, f = 1/sigma kept
        for j in range(q):
            for k in range(blk):
                sig[j, k] = 0.0
            for i in range(p):
                for k in range(blk):
                    sig[j, k] += W[j, i, k] * W[j, i, k]
            for k in range(blk):
                sig[j, k] = math.sqrt(sig[j, k])
        for k in range(nb):
            smax = 0.0
            for j in range(q):
                smax = max(smax, float(sig[j, k]))
            tol = max(atol[b0 + k] * sc[k], rtol[b0 + k] * smax)
            cnt = 0
            for j in range(q):
                if sig[j, k] > tol:
                    cnt += 1
                    sig[j, k] = 1.0 / sig[j, k]
                else:
                    sig[j, k] = 0.0
            rank[b0 + k] = cnt
        for k in range(nb, blk):
            for j in range(q):
                sig[j, k] = 0.0
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    W[j, i, k] *= sig[j, k]
            for i in range(q):
                for k in range(blk):
                    V[j, i, k] *= sig[j, k] * sc[k]
        for i in range(q):
            for l in range(p):
                for k in range(blk):
                    X[i, l, k] = V[0, i, k] * W[0, l, k]
                for j in range(1, q):
                    for k in range(blk):
                        X[i, l, k] += V[j, i, k] * W[j, l, k]
        # scatter
        if tr:
            for k in range(nb):
                for l in range(p):
                    for i in range(q):
                        out[b0 + k, l, i] = X[i, l, k]
        else:
            for k in range(nb):
                for i in range(q):
                    for l in range(p):
                        out[b0 + k, i, l] = X[i, l, k]
    return total


@njit(**_OPTS)
def _rotate(x, y, cc, ss, p, blk):
    """Columns ``(x, y) <- (c x - s y, s x + c y)``, lane by lane."""
    for i in range(p):
        for k in range(blk):
            u = x[i, k]
            v = y[i, k]
            x[i, k] = cc[k] * u - ss[k] * v
            y[i, k] = ss[k] * u + cc[k] * v
