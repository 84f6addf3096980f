"""The complex twin of ``jacobi.jacobi_real``: same layout, sweeps and conventions.

Complex stacks arrive as real views ``(B, m, 2n)`` (interleaved re/im) and are split
into separate real and imaginary float64 buffers (complex64 computed in float64, as
float32 is), so all arithmetic stays real and SIMD. The pair rotation is
``x <- c x - conj(P) y``, ``y <- P x + c y`` with ``c`` real and ``P = s e`` (``e`` the
phase of ``g = x^H y``), a unitary map that zeroes ``g``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .jacobi import EMAX, OPTS, rotation, scale_exponents, threshold


@njit(**OPTS)
def _rotate(xr, xi, yr, yi, cc, pr, pi, p, blk):
    """``(x, y) <- (c x - conj(P) y, P x + c y)``, lane by lane."""
    for i in range(p):
        for k in range(blk):
            ar = xr[i, k]
            ai = xi[i, k]
            br = yr[i, k]
            bi = yi[i, k]
            xr[i, k] = cc[k] * ar - (pr[k] * br + pi[k] * bi)
            xi[i, k] = cc[k] * ai - (pr[k] * bi - pi[k] * br)
            yr[i, k] = cc[k] * br + (pr[k] * ar - pi[k] * ai)
            yi[i, k] = cc[k] * bi + (pr[k] * ai + pi[k] * ar)


@njit(**OPTS)
def _squared_norms(wr, wi, sig, p, q, blk):
    """``sig[j, k] = ||column j of matrix k||^2`` across a block (real and imaginary parts)."""
    for j in range(q):
        for k in range(blk):
            sig[j, k] = 0.0
        for i in range(p):
            for k in range(blk):
                sig[j, k] += wr[j, i, k] * wr[j, i, k] + wi[j, i, k] * wi[j, i, k]


@njit(**OPTS)
def _left_right(Lr, Li, Rr, Ri, Br, Bi, Tr, Ti, Yr, Yi, rows_r, rows_l, q, kk, blk):
    """``T[j] = sum_i conj(R[j, i]) B[i]``, ``Y[l] = sum_j L[j, l] T[j]``, lane by lane."""
    for j in range(q):
        for c in range(kk):
            for k in range(blk):
                Tr[j, c, k] = 0.0
                Ti[j, c, k] = 0.0
            for i in range(rows_r):
                for k in range(blk):
                    Tr[j, c, k] += Rr[j, i, k] * Br[i, c, k] + Ri[j, i, k] * Bi[i, c, k]
                    Ti[j, c, k] += Rr[j, i, k] * Bi[i, c, k] - Ri[j, i, k] * Br[i, c, k]
    for ll in range(rows_l):
        for c in range(kk):
            for k in range(blk):
                Yr[ll, c, k] = 0.0
                Yi[ll, c, k] = 0.0
            for j in range(q):
                for k in range(blk):
                    Yr[ll, c, k] += Lr[j, ll, k] * Tr[j, c, k] - Li[j, ll, k] * Ti[j, c, k]
                    Yi[ll, c, k] += Lr[j, ll, k] * Ti[j, c, k] + Li[j, ll, k] * Tr[j, c, k]


@njit(**OPTS)
def _sweeps(Wr, Wi, Vr, Vi, sig, gr, gi, cc, pr, pi, pairs, tol2, max_sweeps, p, q, blk):
    """``jacobi._sweeps`` for complex columns; returns the sweeps run."""
    for sweep in range(max_sweeps):
        rotated = False
        _squared_norms(Wr, Wi, sig, p, q, blk)
        for t in range(pairs.shape[0]):
            jp = pairs[t, 0]
            jq = pairs[t, 1]
            xr = Wr[jp]
            xi = Wi[jp]
            yr = Wr[jq]
            yi = Wi[jq]
            for k in range(blk):
                gr[k] = 0.0
                gi[k] = 0.0
            for i in range(p):  # g = x^H y
                for k in range(blk):
                    gr[k] += xr[i, k] * yr[i, k] + xi[i, k] * yi[i, k]
                    gi[k] += xr[i, k] * yi[i, k] - xi[i, k] * yr[i, k]
            need = 0
            for k in range(blk):
                g2 = gr[k] * gr[k] + gi[k] * gi[k]
                need += 1 if g2 > tol2 * sig[jp, k] * sig[jq, k] else 0
            if need == 0:  # no matrix of the block needs this pair
                continue
            rotated = True
            for k in range(blk):
                g2 = gr[k] * gr[k] + gi[k] * gi[k]
                _, c, u, tg = rotation(sig[jp, k], sig[jq, k], g2, tol2)
                cc[k] = c
                pr[k] = u * gr[k]
                pi[k] = u * gi[k]
                sig[jp, k] = max(sig[jp, k] - tg, 0.0)
                sig[jq, k] = sig[jq, k] + tg
            _rotate(xr, xi, yr, yi, cc, pr, pi, p, blk)
            _rotate(Vr[jp], Vi[jp], Vr[jq], Vi[jq], cc, pr, pi, q, blk)
        if not rotated:
            return sweep + 1
    return max_sweeps


@njit(**OPTS)
def jacobi_complex(
    a, b, atol, rtol, lam, damped, out, rank, hermitian, blk, pairs, tol2, max_sweeps
):
    """The complex twin of ``jacobi.jacobi_real`` on real views: ``a (B, m, 2n)``,
    ``b (B, m, 2k)``, ``out (B, n, 2k)`` (``k = 0``: the matrix, ``out (B, n, 2m)``).
    Tall: ``V diag(f^2) W^H b``; wide (``A^H = W V^H``): ``W diag(f^2) V^H b``."""
    nbatch, m, n2 = a.shape
    n = n2 // 2
    kk = b.shape[2] // 2
    tr = m < n
    p = n if tr else m
    q = m if tr else n
    dt = np.float64
    Wr = np.zeros((q, p, blk), dt)
    Wi = np.zeros((q, p, blk), dt)
    Vr = np.zeros((q, q, blk), dt)
    Vi = np.zeros((q, q, blk), dt)
    Xr = np.zeros((q, p, blk) if kk == 0 else (0, 0, blk), dt)
    Xi = np.zeros((q, p, blk) if kk == 0 else (0, 0, blk), dt)
    sc = np.ones(blk, dt)
    mx = np.zeros(blk, dt)
    gr = np.zeros(blk, dt)
    gi = np.zeros(blk, dt)
    cc = np.zeros(blk, dt)
    pr = np.zeros(blk, dt)
    pi = np.zeros(blk, dt)
    sig = np.zeros((q, blk), dt)
    ls = np.zeros(blk, dt)
    Br = np.zeros((m, kk, blk), dt)
    Bi = np.zeros((m, kk, blk), dt)
    Tr = np.zeros((q, kk, blk), dt)
    Ti = np.zeros((q, kk, blk), dt)
    Yr = np.zeros((n, kk, blk), dt)
    Yi = np.zeros((n, kk, blk), dt)
    zero = 0.0
    one = 1.0
    total = 0
    for b0 in range(0, nbatch, blk):
        nb = min(blk, nbatch - b0)
        if nb < blk:
            Wr[:] = 0
            Wi[:] = 0
        if hermitian:  # H[i, j] = a[i, j] (i >= j), conj(a[j, i]) above; W[j, i] = H[i, j]
            for k in range(nb):
                for i in range(p):
                    for j in range(i):
                        re = a[b0 + k, i, 2 * j]
                        im = a[b0 + k, i, 2 * j + 1]
                        Wr[j, i, k] = re
                        Wi[j, i, k] = im
                        Wr[i, j, k] = re
                        Wi[i, j, k] = -im
                    Wr[i, i, k] = a[b0 + k, i, 2 * i]
                    Wi[i, i, k] = zero  # a Hermitian diagonal is real (as in LAPACK heevd)
        elif tr:  # the working matrix is A^H: W[j, i] = conj(A[j, i])
            for k in range(nb):
                for i in range(m):
                    for j in range(n):
                        Wr[i, j, k] = a[b0 + k, i, 2 * j]
                        Wi[i, j, k] = -a[b0 + k, i, 2 * j + 1]
        else:
            for k in range(nb):
                for i in range(m):
                    for j in range(n):
                        Wr[j, i, k] = a[b0 + k, i, 2 * j]
                        Wi[j, i, k] = a[b0 + k, i, 2 * j + 1]
        for k in range(blk):
            mx[k] = 0
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    mx[k] = max(mx[k], max(abs(Wr[j, i, k]), abs(Wi[j, i, k])))
        scale_exponents(mx, sc, blk, EMAX)
        for j in range(q):
            for i in range(p):
                for k in range(blk):
                    Wr[j, i, k] *= sc[k]
                    Wi[j, i, k] *= sc[k]
            for i in range(q):
                d = one if i == j else zero
                for k in range(blk):
                    Vr[j, i, k] = d
                    Vi[j, i, k] = zero
        total += _sweeps(
            Wr, Wi, Vr, Vi, sig, gr, gi, cc, pr, pi, pairs, tol2, max_sweeps, p, q, blk
        )
        _squared_norms(Wr, Wi, sig, p, q, blk)
        for k in range(nb):  # the damping, scaled like the matrix (padding lanes: 0)
            ls[k] = lam[b0 + k] * sc[k] if damped else 0.0
        for j in range(q):
            if damped:  # f = 1/sqrt(sigma^2 + lam^2), 0 where that is 0
                for k in range(blk):
                    d2 = sig[j, k] + ls[k] * ls[k]
                    pos = d2 > zero
                    r = math.sqrt(d2) if pos else one
                    sig[j, k] = one / r if pos else zero
            else:
                for k in range(blk):
                    sig[j, k] = math.sqrt(sig[j, k])
        if not damped:
            threshold(sig, sc, atol, rtol, rank, b0, nb, blk, q)
        for j in range(q):  # V diag(f) (W diag(f))^H, times the scale
            for i in range(p):
                for k in range(blk):
                    Wr[j, i, k] *= sig[j, k]
                    Wi[j, i, k] *= sig[j, k]
            for i in range(q):
                for k in range(blk):
                    f = sig[j, k] * sc[k]
                    Vr[j, i, k] *= f
                    Vi[j, i, k] *= f
        if kk == 0:
            for i in range(q):
                for ll in range(p):
                    for k in range(blk):
                        Xr[i, ll, k] = zero
                        Xi[i, ll, k] = zero
                    for j in range(q):
                        for k in range(blk):
                            Xr[i, ll, k] += Vr[j, i, k] * Wr[j, ll, k] + Vi[j, i, k] * Wi[j, ll, k]
                            Xi[i, ll, k] += Vi[j, i, k] * Wr[j, ll, k] - Vr[j, i, k] * Wi[j, ll, k]
            if tr:  # out = X^H
                for k in range(nb):
                    for ll in range(p):
                        for i in range(q):
                            out[b0 + k, ll, 2 * i] = Xr[i, ll, k]
                            out[b0 + k, ll, 2 * i + 1] = -Xi[i, ll, k]
            else:
                for k in range(nb):
                    for i in range(q):
                        for ll in range(p):
                            out[b0 + k, i, 2 * ll] = Xr[i, ll, k]
                            out[b0 + k, i, 2 * ll + 1] = Xi[i, ll, k]
            continue
        if nb < blk:
            Br[:] = 0
            Bi[:] = 0
        for k in range(nb):
            for i in range(m):
                for c in range(kk):
                    Br[i, c, k] = b[b0 + k, i, 2 * c]
                    Bi[i, c, k] = b[b0 + k, i, 2 * c + 1]
        if tr:  # A = V W^H: A^+ b = W diag V^H b
            _left_right(Wr, Wi, Vr, Vi, Br, Bi, Tr, Ti, Yr, Yi, m, n, q, kk, blk)
        else:  # A = W V^H: A^+ b = V diag W^H b
            _left_right(Vr, Vi, Wr, Wi, Br, Bi, Tr, Ti, Yr, Yi, m, n, q, kk, blk)
        for k in range(nb):
            for ll in range(n):
                for c in range(kk):
                    out[b0 + k, ll, 2 * c] = Yr[ll, c, k]
                    out[b0 + k, ll, 2 * c + 1] = Yi[ll, c, k]
    return total
