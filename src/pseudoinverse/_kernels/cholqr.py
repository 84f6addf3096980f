"""CholeskyQR2 on the augmented matrix, SIMD across the batch: damped inverses and
certified full-rank solves of stacks of small real matrices, in float64.

For ``A`` (``m x n``) let ``W = A^T`` (``m <= n``) or ``A`` (``m > n``), ``p x s`` with
``s = min(m, n)``, and ``C = [W; lam I_s]`` (``(p + s) x s``). CholeskyQR2 gives
``C = Q R`` (``R = R2 R1``: two Cholesky factorisations of Gram matrices, the second of
``Q1^T Q1``) and with ``Q = [Q_W; Q_lam]``:

* ``Z = Q_W R^{-T} = W (W^T W + lam^2 I)^{-1}``: the damped inverse is ``X = Z``
  (wide) or ``Z^T`` (tall); ``lam = 0`` gives ``pinv(A)`` of a full-rank ``A``;
* ``X b`` without ``X``: wide ``Q_W (R^{-T} b)``, tall ``R^{-1} (Q_W^T b)``.

The orthogonal factor, not the normal equations, carries the product: the error is that
of a backward-stable QR, ``O(u kappa_lambda)``, where ``Z = W R1^{-1} R1^{-T}`` (one
Cholesky, the normal equations) errs by ``u kappa_lambda^2``. A lane is done (``ok``)
only where the CholeskyQR2 analysis holds (Yamamoto, Nakatsukasa, Yanagisawa and
Fukaya, ETNA 44, 2015: ``8 kappa(C)^2 ((p + s) s + s (s + 1)) u <= 1``; we ask ``<= 1/2``), from
``kappa(C)^2 <= (||W||_F^2 + lam^2) / lam^2`` a priori (``lam > 0``) or
``||R1||_F ||R1^{-1}||_F`` a posteriori (``lam = 0``), and, for ``lam = 0``, where
``sigma_min(W)`` provably exceeds the lane's tolerance ``max(atol, rtol sigma_max)``
(then the rank is ``s`` on any backward-stable SVD too). Other lanes (and non-finite
ones) get ``ok = False`` and harmless stand-in data; the caller redoes them.

Every lane whose largest entry is outside ``[2**-200, 2**200]`` is scaled by a power of
two (exact) so that it lies in
``[1/2, 1)``, ``lam``, ``atol`` and ``b`` alike; float32 data is computed in float64
and rounded once at the end.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .jacobi import OPTS

#: float64 unit roundoff (2**-53).
_U = 2.0**-53


@njit(**OPTS)
def _pow2(big):
    """1 where ``big`` (a lane's largest magnitude, > 0) lies in ``[2**-200, 2**200]``
    (squares and sums of up to 1e10 of them stay clear of overflow and underflow), else
    ``2**-e`` with ``big = f 2**e``, ``f`` in [1/2, 1): the scaled maximum is in [1/2, 1)."""
    if 2.0**-200 <= big <= 2.0**200:
        return 1.0
    return math.ldexp(1.0, -math.frexp(big)[1])


@njit(**OPTS)
def _chol(G, R, inv, good, s, blk):
    """Upper Cholesky ``G = R^T R`` of the upper triangles ``G[i, j, k]`` (``i <= j``),
    ``inv[j] = 1 / R[j, j]``; a non-positive pivot clears ``good`` (stand-in pivot 1)."""
    for j in range(s):
        for i in range(j):
            for k in range(blk):
                R[i, j, k] = G[i, j, k]
            for t in range(i):
                for k in range(blk):
                    R[i, j, k] -= R[t, i, k] * R[t, j, k]
            for k in range(blk):
                R[i, j, k] *= inv[i, k]
        d = R[j, j]  # the pivots, lane by lane (no inner loop: SIMD across the lanes)
        for k in range(blk):
            d[k] = G[j, j, k]
        for t in range(j):
            for k in range(blk):
                d[k] -= R[t, j, k] * R[t, j, k]
        for k in range(blk):
            pos = d[k] > 0.0
            good[k] = good[k] & pos
            r = math.sqrt(d[k] if pos else 1.0)
            d[k] = r
            inv[j, k] = 1.0 / r


@njit(**OPTS)
def _right_solve(Q, R, inv, p, s, blk):
    """``Q <- Q R^{-1}`` in place (each row ``q`` solves ``x R = q``)."""
    for r in range(p):
        for j in range(s):
            for t in range(j):
                for k in range(blk):
                    Q[r, j, k] -= Q[r, t, k] * R[t, j, k]
            for k in range(blk):
                Q[r, j, k] *= inv[j, k]


@njit(**OPTS)
def cholqr_apply(a, b, lam, atol, rtol, damped, out, ok, blk):
    """The damped inverse (``damped``) or the full-rank pseudo-inverse of each lane, or
    its product with ``b`` (``b (B, m, k)``, ``k >= 1``; ``k = 0``: ``out = X``).

    ``lam``, ``atol``, ``rtol``: float64 per lane (``atol``/``rtol`` read if not
    ``damped``). ``ok[i]``: lane ``i`` met the conditions above (else redo it).
    """
    nbatch, m, n = a.shape
    kk = b.shape[2]
    wide = m <= n
    s = m if wide else n
    p = n if wide else m
    cols = m if kk == 0 else kk

    # (p + s) s + s (s + 1): CholeskyQR2's dimension factor for C
    dim = (p + s) * s + s * (s + 1)
    kmax2 = 1.0 / (16.0 * dim * _U)  # half the analysis's bound on kappa(C)^2
    Q = np.zeros((p, s, blk))
    T = np.zeros((s, s, blk))  # R1^{-1} (upper), then R = R2 R1
    G = np.zeros((s, s, blk))
    R1 = np.zeros((s, s, blk))
    R2 = np.zeros((s, s, blk))
    Bb = np.zeros((p, cols, blk))
    Y = np.zeros((p, cols, blk))
    inv1 = np.zeros((s, blk))
    inv2 = np.zeros((s, blk))
    sc = np.ones(blk)
    tb = np.ones(blk)
    mx = np.zeros(blk)
    mb = np.zeros(blk)
    nz = np.zeros(blk)
    l2 = np.zeros(blk)
    fro = np.zeros(blk)
    good = np.zeros(blk, np.bool_)
    for b0 in range(0, nbatch, blk):
        nb = min(blk, nbatch - b0)
        for k in range(nb):  # W (p x s), raw
            if wide:
                for i in range(m):
                    for j in range(n):
                        Q[j, i, k] = a[b0 + k, i, j]
            else:
                for i in range(m):
                    for j in range(n):
                        Q[i, j, k] = a[b0 + k, i, j]
        if nb < blk:
            for i in range(p):
                for j in range(s):
                    for k in range(nb, blk):
                        Q[i, j, k] = 0.0
        for k in range(blk):
            mx[k] = 0.0
            nz[k] = 0.0  # stays 0 unless an entry is NaN or Inf (0 * Inf is NaN)
        for i in range(p):
            for j in range(s):
                for k in range(blk):
                    x = abs(Q[i, j, k])
                    mx[k] = max(mx[k], x)
                    nz[k] += x * 0.0
        if kk > 0:
            for k in range(blk):
                mb[k] = 0.0
            for k in range(nb):
                for i in range(m):
                    for c in range(kk):
                        x = abs(b[b0 + k, i, c])
                        mb[k] = max(mb[k], x)
                        nz[k] += x * 0.0
        for k in range(blk):  # each lane's scale: a power of two, where it is needed
            good[k] = nz[k] == 0.0 and mx[k] > 0.0 and k < nb
            sc[k] = _pow2(mx[k]) if good[k] else 1.0
            tb[k] = _pow2(mb[k]) if good[k] and mb[k] > 0 else 1.0
        for i in range(p):
            for j in range(s):
                for k in range(blk):
                    Q[i, j, k] *= sc[k]
        for k in range(blk):
            fro[k] = 0.0
        for i in range(p):
            for j in range(s):
                for k in range(blk):
                    fro[k] += Q[i, j, k] * Q[i, j, k]
        for k in range(blk):
            lk = lam[b0 + k] * sc[k] if (damped and k < nb) else 0.0
            t = lk * lk
            if damped:
                # a priori kappa(C)^2 <= (||W||_F^2 + lam^2) / lam^2; lam^2 < 2**400
                g = t > 0.0 and t < 2.0**400 and fro[k] + t <= kmax2 * t
                good[k] = good[k] and g
                l2[k] = t if good[k] else 1.0
            else:
                l2[k] = 0.0
            if not good[k]:
                fro[k] = float(s)
        for k in range(blk):  # stand-in lanes (NaN, zero, refused): W = [I; 0]
            if not good[k]:
                for i in range(p):
                    for j in range(s):
                        Q[i, j, k] = 1.0 if i == j else 0.0
        # the first Gram matrix W^T W + lam^2 I and R1
        for i in range(s):
            for j in range(i, s):
                for k in range(blk):
                    G[i, j, k] = l2[k] if i == j else 0.0
                for r in range(p):
                    for k in range(blk):
                        G[i, j, k] += Q[r, i, k] * Q[r, j, k]
        _chol(G, R1, inv1, good, s, blk)
        _right_solve(Q, R1, inv1, p, s, blk)  # Q_W = W R1^{-1}
        # T = R1^{-1} (upper), column by column
        for j in range(s):
            for k in range(blk):
                T[j, j, k] = inv1[j, k]
            for i in range(j - 1, -1, -1):
                for k in range(blk):
                    T[i, j, k] = 0.0
                for t in range(i + 1, j + 1):
                    for k in range(blk):
                        T[i, j, k] -= R1[i, t, k] * T[t, j, k]
                for k in range(blk):
                    T[i, j, k] *= inv1[i, k]
        if not damped:  # a posteriori kappa and the certified rank
            for k in range(blk):
                nt = 0.0
                for i in range(s):
                    for j in range(i, s):
                        nt += T[i, j, k] * T[i, j, k]
                # sigma_min(W)^2 >= (1 - 1e-8) / ||R1^{-1}||_F^2 - (p + s + 2) u ||W||_F^2
                # (the Gram and Cholesky errors; R1^{-1} is accurate to s u kappa)
                kap2 = fro[k] * nt
                lo2 = (1.0 - 1e-8) / nt - (p + s + 2) * 1.01 * _U * fro[k] if nt > 0 else 0.0
                if k < nb:
                    tol = max(atol[b0 + k] * sc[k], rtol[b0 + k] * math.sqrt(fro[k]) * 1.0001)
                    cert = kap2 <= kmax2 and lo2 > 0.0 and lo2 > 4.0 * tol * tol
                    good[k] = good[k] and cert
        # the second Gram matrix Q^T Q = Q_W^T Q_W + lam^2 T^T T and R2
        for i in range(s):
            for j in range(i, s):
                for k in range(blk):
                    G[i, j, k] = 0.0
                for r in range(p):
                    for k in range(blk):
                        G[i, j, k] += Q[r, i, k] * Q[r, j, k]
                for t in range(i + 1):
                    for k in range(blk):
                        G[i, j, k] += l2[k] * (T[t, i, k] * T[t, j, k])
        _chol(G, R2, inv2, good, s, blk)
        _right_solve(Q, R2, inv2, p, s, blk)  # Q_W <- Q_W R2^{-1}
        # R = R2 R1 (upper) into T; 1 / R[j, j] into inv1
        for i in range(s):
            for j in range(s - 1, i - 1, -1):
                for k in range(blk):
                    T[i, j, k] = 0.0
                for t in range(i, j + 1):
                    for k in range(blk):
                        T[i, j, k] += R2[i, t, k] * R1[t, j, k]
            for k in range(blk):
                inv1[i, k] = inv1[i, k] * inv2[i, k]
        if kk == 0:  # Z = Q_W R^{-T}: each row z solves z R^T = q, from the last column
            for r in range(p):
                for j in range(s - 1, -1, -1):
                    for t in range(j + 1, s):
                        for k in range(blk):
                            Q[r, j, k] -= Q[r, t, k] * T[j, t, k]
                    for k in range(blk):
                        Q[r, j, k] *= inv1[j, k]
            for k in range(nb):
                f = sc[k]
                if wide:
                    for r in range(p):
                        for j in range(s):
                            out[b0 + k, r, j] = Q[r, j, k] * f
                else:
                    for r in range(p):
                        for j in range(s):
                            out[b0 + k, j, r] = Q[r, j, k] * f
        else:
            rows_b = s if wide else p
            for k in range(nb):
                g = tb[k] if good[k] else 0.0
                for i in range(rows_b):
                    for c in range(kk):
                        Bb[i, c, k] = b[b0 + k, i, c] * g
            for k in range(nb, blk):
                for i in range(rows_b):
                    for c in range(kk):
                        Bb[i, c, k] = 0.0
            if wide:  # y = R^{-T} b (forward), then Q_W y
                for c in range(kk):
                    for i in range(s):
                        for t in range(i):
                            for k in range(blk):
                                Bb[i, c, k] -= T[t, i, k] * Bb[t, c, k]
                        for k in range(blk):
                            Bb[i, c, k] *= inv1[i, k]
                for r in range(p):
                    for c in range(kk):
                        for k in range(blk):
                            Y[r, c, k] = 0.0
                        for j in range(s):
                            for k in range(blk):
                                Y[r, c, k] += Q[r, j, k] * Bb[j, c, k]
                rows_out = p
            else:  # y = Q_W^T b, then R^{-1} y (backward)
                for j in range(s):
                    for c in range(kk):
                        for k in range(blk):
                            Y[j, c, k] = 0.0
                        for r in range(p):
                            for k in range(blk):
                                Y[j, c, k] += Q[r, j, k] * Bb[r, c, k]
                for c in range(kk):
                    for i in range(s - 1, -1, -1):
                        for t in range(i + 1, s):
                            for k in range(blk):
                                Y[i, c, k] -= T[i, t, k] * Y[t, c, k]
                        for k in range(blk):
                            Y[i, c, k] *= inv1[i, k]
                rows_out = s
            for k in range(nb):
                f = sc[k] / tb[k]
                for i in range(rows_out):
                    for c in range(kk):
                        out[b0 + k, i, c] = Y[i, c, k] * f
        for k in range(nb):
            ok[b0 + k] = good[k]
