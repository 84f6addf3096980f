"""The damped inverse of float32 stacks by Cholesky on the smaller Gram matrix, in float64.

``M = A A^T + lam^2 I`` (``m <= n``: ``X = A^T M^{-1}``) or ``M = A^T A + lam^2 I``
(``m > n``: ``X = M^{-1} A^T``), computed entirely in float64 from the (exact) float32
entries, SIMD across the batch like the Jacobi kernels (``W[i, j, k]``, lane ``k``).
No scaling is needed: squares of float32 numbers neither overflow nor underflow in
float64. A lane whose bound ``(p + 3s + 3) K + 2p <= limit`` fails (``K = (||A||_F^2 +
s lam^2) / lam^2``, see ``_methods/jacobi.py``), or whose Cholesky meets a non-positive
pivot, is marked ``ok = False`` and computed on harmless stand-in data; the caller
redoes it by Jacobi.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .jacobi import OPTS


@njit(**OPTS)
def gram_damped(a, b, lam, out, ok, limit):
    """``out = X @ b`` (``b (B, m, k)``, ``k >= 1``) or ``out = X`` (``k = 0``), float32.

    ``ok[i]`` tells whether matrix ``i`` met the bound (else ``out[i]`` is to be redone).
    """
    nbatch, m, n = a.shape
    kk = b.shape[2]
    wide = m <= n
    s = m if wide else n  # the Gram matrix's order
    p = n if wide else m  # the inner dimension of its products
    cols = m if kk == 0 else kk  # right-hand sides of the solve
    blk = 128  # lanes per block (measured: 128 beat 64 by 20% on 6 x 7 float32)
    A = np.zeros((m, n, blk))
    L = np.zeros((s, s, blk))
    R = np.zeros((s, cols, blk))
    Bb = np.zeros((m, cols, blk))
    Y = np.zeros((n, cols, blk))
    l2 = np.zeros(blk)
    fro = np.zeros(blk)
    good = np.zeros(blk, np.bool_)
    inv = np.zeros((s, blk))
    for b0 in range(0, nbatch, blk):
        nb = min(blk, nbatch - b0)
        if nb < blk:
            A[:] = 0
            Bb[:] = 0
        for k in range(nb):
            for i in range(m):
                for j in range(n):
                    A[i, j, k] = a[b0 + k, i, j]
        if kk > 0:
            for k in range(nb):
                for i in range(m):
                    for c in range(kk):
                        Bb[i, c, k] = b[b0 + k, i, c]
        for i in range(s):  # the lower triangle of A A^T (or A^T A)
            for j in range(i + 1):
                for k in range(blk):
                    L[i, j, k] = 0.0
                if wide:
                    for t in range(p):
                        for k in range(blk):
                            L[i, j, k] += A[i, t, k] * A[j, t, k]
                else:
                    for t in range(p):
                        for k in range(blk):
                            L[i, j, k] += A[t, i, k] * A[t, j, k]
        for k in range(blk):
            fro[k] = 0.0
        for i in range(s):  # ||A||_F^2: the trace
            for k in range(blk):
                fro[k] += L[i, i, k]
        for k in range(blk):
            lk = lam[b0 + k] if k < nb else 1.0
            t = lk * lk
            g = t > 0.0 and t < np.inf and (p + 3 * s + 3) * ((fro[k] + s * t) / t) + 2 * p <= limit
            good[k] = g
            l2[k] = t if g else 1.0  # a stand-in keeps a failed lane finite
        for i in range(s):  # M = that + lam^2 I
            for k in range(blk):
                L[i, i, k] += l2[k]
        for j in range(s):  # Cholesky M = L L^T, in place (column by column)
            for t in range(j):
                for i in range(j, s):
                    for k in range(blk):
                        L[i, j, k] -= L[i, t, k] * L[j, t, k]
            for k in range(blk):
                d = L[j, j, k]
                pos = d > 0.0
                good[k] = good[k] and pos
                r = math.sqrt(d) if pos else 1.0
                L[j, j, k] = r
                inv[j, k] = 1.0 / r
            for i in range(j + 1, s):
                for k in range(blk):
                    L[i, j, k] *= inv[j, k]
        for i in range(s):  # the right-hand sides: b or I (wide), A^T b or A^T (tall)
            for c in range(cols):
                if wide and kk == 0:
                    for k in range(blk):
                        R[i, c, k] = 1.0 if i == c else 0.0
                elif wide:
                    for k in range(blk):
                        R[i, c, k] = Bb[i, c, k]
                elif kk == 0:
                    for k in range(blk):
                        R[i, c, k] = A[c, i, k]
                else:
                    for k in range(blk):
                        R[i, c, k] = 0.0
                    for t in range(m):
                        for k in range(blk):
                            R[i, c, k] += A[t, i, k] * Bb[t, c, k]
        for c in range(cols):  # L z = R, then L^T y = z, in place
            for i in range(s):
                for t in range(i):
                    for k in range(blk):
                        R[i, c, k] -= L[i, t, k] * R[t, c, k]
                for k in range(blk):
                    R[i, c, k] *= inv[i, k]
            for i in range(s - 1, -1, -1):
                for t in range(i + 1, s):
                    for k in range(blk):
                        R[i, c, k] -= L[t, i, k] * R[t, c, k]
                for k in range(blk):
                    R[i, c, k] *= inv[i, k]
        if wide:  # X b = A^T y
            for j in range(n):
                for c in range(cols):
                    for k in range(blk):
                        Y[j, c, k] = 0.0
                    for i in range(m):
                        for k in range(blk):
                            Y[j, c, k] += A[i, j, k] * R[i, c, k]
        else:
            for j in range(n):
                for c in range(cols):
                    for k in range(blk):
                        Y[j, c, k] = R[j, c, k]
        for k in range(nb):
            ok[b0 + k] = good[k]
            for j in range(n):
                for c in range(cols):
                    out[b0 + k, j, c] = Y[j, c, k]
