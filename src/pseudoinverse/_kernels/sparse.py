"""Sparse block products for block LSMR on a CSR matrix ``M``, cache-blocked by columns.

Block LSMR's step needs ``U += M V``, the norms of ``U``'s columns and ``M^H U`` of the
updated ``U``. Each stored entry of ``M`` moves a whole row of ``V`` (or of the result
``T = M^H U``) of ``k`` entries, at a random row: with ``V`` and ``T`` larger than the
core's cache, these gathers and scatters run at the speed of the next level. So ``M``
is cut by columns into pieces whose rows of ``V`` (and ``T``) fit the cache
(``lsmr.CSRStep`` makes them), and each kernel below runs over one piece: ``gather``
adds it times its slice of ``V`` into ``U`` (and, on the last piece, adds the squares
of each finished row of ``U`` to the column sums), ``scatter`` adds its conjugate
transpose times ``U`` into its slice of ``T``. On a 1e5 x 1e4 matrix with 1.1e6
entries and k = 32, two pieces took the products from 14 to 11 and 9 ms (one thread).

Each product adds in the order of SciPy's ``csr_matvecs``/``csc_matvecs`` within a
piece (rows, then a row's stored entries in order), the pieces one after the other,
each product with the rounding of one fused multiply-add where the CPU has one.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .jacobi import OPTS


@njit(**OPTS)
def gather(indptr, indices, data, v, u, sq, r0, r1, last):  # pragma: no cover - compiled
    """Rows ``r0:r1``: ``u[i] += sum_j M[i, j] v[j]``; with ``last``, ``sq += |u[i]|^2``
    (per column) after the row's update."""
    k = u.shape[1]
    for i in range(r0, r1):
        for jj in range(indptr[i], indptr[i + 1]):
            a = data[jj]
            c = indices[jj]
            for col in range(k):
                u[i, col] += a * v[c, col]
        if last:
            for col in range(k):
                x = u[i, col]
                sq[col] += (x * np.conj(x)).real


@njit(**OPTS)
def scatter(indptr, indices, data, u, t, r0, r1):  # pragma: no cover - compiled
    """Rows ``r0:r1``: ``t[j] += conj(M[i, j]) u[i]`` (``t`` is added to)."""
    k = u.shape[1]
    for i in range(r0, r1):
        for jj in range(indptr[i], indptr[i + 1]):
            a = np.conj(data[jj])
            c = indices[jj]
            for col in range(k):
                t[c, col] += a * u[i, col]


@njit(**OPTS)
def combine(v, f, t, sq):  # pragma: no cover - compiled
    """``v = v f + t`` (``f`` real, per column) and ``sq += |v|^2`` per column: LSMR's
    ``v = A^H u - beta v`` before its normalisation, in one pass."""
    for r in range(v.shape[0]):
        for c in range(v.shape[1]):
            x = v[r, c] * f[c] + t[r, c]
            v[r, c] = x
            sq[c] += (x * np.conj(x)).real


@njit(**OPTS)
def advance(v, sv, hbar, c1, h, c3, x, c2, sq):  # pragma: no cover - compiled
    """LSMR's vector updates in one pass (real factors per column): ``v *= sv`` (its
    normalisation), ``hbar = hbar c1 + h``, ``x += c2 hbar``, ``h = h c3 + v``, and
    ``sq += |x|^2`` per column."""
    for r in range(v.shape[0]):
        for c in range(v.shape[1]):
            vv = v[r, c] * sv[c]
            v[r, c] = vv
            hb = hbar[r, c] * c1[c] + h[r, c]
            hbar[r, c] = hb
            xx = x[r, c] + c2[c] * hb
            x[r, c] = xx
            h[r, c] = h[r, c] * c3[c] + vv
            sq[c] += (xx * np.conj(xx)).real
