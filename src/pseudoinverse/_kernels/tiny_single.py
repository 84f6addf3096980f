"""float32 stacks in ``tiny``'s kernels: float32 sweeps, a float64 refinement, float64 sweeps
for the rest (``tiny.kernel(p, q, single=True)``).

The sweeps run in float32 (8 lanes a vector where float64 has 4), on ``tiny``'s layout
and code (the constants typed float32: ``rotation32``, ``sc_of32``). They give ``V`` and
the singular values to float32 accuracy; the result is then formed in float64 from the
exact float32 input ``T`` (the tall orientation, scaled like the sweeps): the inverse Gram
matrix ``Y = (T^T T)^{-1}`` starts as ``V diag(1/sigma^2) V^T`` and takes two
Newton-Schulz steps ``Y <- Y + Y (I - G Y)`` (``G = T^T T``; each squares ``E = I - G Y``),
and ``X = Y T^T``: every member's error is then about that of the float64 pseudo-inverse
rounded to float32 (where float32 arithmetic errs by up to ``eps32 kappa``).

A member is refined this way only where that is proved accurate: every singular value
kept and above twice the threshold (so the rank, ``q``, is the SVD rule's on either
computation), and ``e^4 kappa <= 2**-29`` with ``e = ||E_0||_F >= ||E_0||_2`` (and
``e <= 1/16``), ``kappa`` from the float32 singular values (accurate to far better than
the factor 2 this leaves). The relative error of ``X = Y_2 T^T`` is at most
``||G^{-1} E_2|| ||T|| / ||X|| <= ||E_2|| kappa <= ||E_0||^4 kappa <= 2**-29`` (plus
float64 rounding), below 1/30 of the rounding to float32. The others (rank deficient,
near the threshold, ill-conditioned: 0.5% of Gaussian 6 x 7 stacks, 3% of 3 x 3) are
returned to the caller, which computes them in float64 (``tiny.kernel(p, q)``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .jacobi import OPTS
from .tiny_base import _REAL, BLK, _bits, _from_bits, _pair_source, _tree, real_formats

F0 = np.float32(0.0)
F1 = np.float32(1.0)
F4 = np.float32(4.0)
FINF = np.float32(np.inf)

#: Up to this many entries the refinement is written out (registers, one pass), beyond
#: it loops over the lanes (``_REFINE``).
UNROLL_MAX = 64

#: ``2**emax`` stays finite in float32: the largest scale a float32 matrix gets.
EMAX32 = 120


@njit(**OPTS)
def rotation32(al, be, g2, tol2):
    """``jacobi.rotation`` in float32 (its constants typed so that nothing is promoted)."""
    rot = g2 > tol2 * al * be
    d = be - al
    r = math.sqrt(d * d + F4 * g2)
    ad = abs(d) + r
    h = math.sqrt((r + r) * ad)
    h = h if rot else F1
    inv = F1 / h
    c = ad * inv if rot else F1
    u = math.copysign(inv + inv, d) if rot else F0
    return rot, c, u, (u * g2) * ((r + r) * inv)


@njit(inline="always", **OPTS)
def sc_of32(big):
    """``tiny.sc_of`` for a float32 lane: ``2**-e``, ``e`` clamped to ``+-EMAX32``."""
    e = min(max((_bits(np.float64(big)) >> 52) - 1022, -EMAX32), EMAX32)
    return np.float32(_from_bits((1023 - e) << 52)) if big > F0 else F1


@njit(**OPTS)
def _mm(R, oa, ob, oc, n):
    """``C = A B`` for ``n x n`` matrices held lane by lane in the rows of ``R``."""
    for i in range(n):
        for ll in range(n):
            o = (oc + i * n + ll) * BLK
            a0 = (oa + i * n) * BLK
            b0 = (ob + ll) * BLK
            for k in range(BLK):
                R[o + k] = R[a0 + k] * R[b0 + k]
            for j in range(1, n):
                aj = (oa + i * n + j) * BLK
                bj = (ob + j * n + ll) * BLK
                for k in range(BLK):
                    R[o + k] += R[aj + k] * R[bj + k]


def sources(p: int, q: int, s: str) -> str:
    """The text of what ``tiny_base._COMMON`` calls, for float32 sweeps and the refinement."""
    pair = _pair_source(p, q, s).replace("rotation(", "rotation32(").replace("np.inf", "FINF")
    pair = pair.replace("0.0", "F0").replace("4.0", "F4").replace("1.0", "F1")
    fmt = _formats(p, q, s)
    refine = _refine_source(p, q, s) if p * q <= UNROLL_MAX else _REFINE.format(**fmt)
    return pair + _REAL.format(**fmt) + refine


def _refine_source(p: int, q: int, s: str) -> str:
    """``_REFINE`` written out for one lane (the same operations, in registers)."""
    cb, pq = (p + q + 1) * BLK, p + q
    oT = 0

    def ys(i, ll):  # the symmetric start
        return f"y{min(i, ll)}_{max(i, ll)}"

    def gs(i, ll):
        return f"g{min(i, ll)}_{max(i, ll)}"

    b = ["scale = np.float64(sc[k])"]
    for j in range(q):
        b += [f"n{j} = np.float64(S[{j * cb + pq * BLK} + k])", f"s{j} = math.sqrt(n{j})"]
        b += [f"f{j} = 1.0 / n{j} if n{j} > 0.0 else 0.0"]
        b += [f"v{j}_{i} = np.float64(S[{j * cb + (p + i) * BLK} + k])" for i in range(q)]
    b.append(f"smax = {_tree('max', [f's{j}' for j in range(q)])}")
    b.append(f"smin = {_tree('min', [f's{j}' for j in range(q)])}")
    b.append("tol = max(t1[k] * scale, t2[k] * smax)")
    b += [f"t{j}_{r} = R[{(oT + j * p + r) * BLK} + k]" for j in range(q) for r in range(p)]
    for i in range(q):
        for ll in range(i, q):
            b.append(f"y{i}_{ll} = " + " + ".join(f"v{j}_{i} * v{j}_{ll} * f{j}" for j in range(q)))
            b.append(f"g{i}_{ll} = " + " + ".join(f"t{i}_{r} * t{ll}_{r}" for r in range(p)))
    for i in range(q):  # E = I - G Y
        for ll in range(q):
            prod = " + ".join(f"{gs(i, j)} * {ys(j, ll)}" for j in range(q))
            b.append(f"e{i}_{ll} = {1.0 if i == ll else 0.0} - ({prod})")
    fro = _tree("+", [f"e{i}_{ll} * e{i}_{ll}" for i in range(q) for ll in range(q)])
    b.append(f"e2 = {fro}")  # ||E||_F^2 >= ||E||_2^2
    b.append("good = (smin > 2.0 * tol) & (e2 <= 2.0**-8) & ((e2 * e2) * smax <= 2.0**-29 * smin)")
    b += ["ok[k] = 1.0 if good else 0.0", f"cnt[k] = {q}"]
    for i in range(q):  # Z = Y + Y E
        for ll in range(q):
            prod = " + ".join(f"{ys(i, j)} * e{j}_{ll}" for j in range(q))
            b.append(f"z{i}_{ll} = {ys(i, ll)} + ({prod})")
    for i in range(q):  # E = I - G Z
        for ll in range(q):
            prod = " + ".join(f"{gs(i, j)} * z{j}_{ll}" for j in range(q))
            b.append(f"d{i}_{ll} = {1.0 if i == ll else 0.0} - ({prod})")
    for i in range(q):  # Y = Z + Z E
        for ll in range(q):
            prod = " + ".join(f"z{i}_{j} * d{j}_{ll}" for j in range(q))
            b.append(f"w{i}_{ll} = z{i}_{ll} + ({prod})")
    for i in range(q):  # X = Y T^T, times the scale
        for ll in range(p):
            prod = " + ".join(f"w{i}_{j} * t{j}_{ll}" for j in range(q))
            b.append(f"X[{(i * p + ll) * BLK} + k] = ({prod}) * scale")
    head = [
        f"def _finish_{s}(S, sc, t1, t2, X, R, cnt, ok, a, lanes, tall):",
        f"    _norms_{s}(S)",
        "    for k in range(BLK):  # T: the scaled tall orientation, exact in float64",
        "        g = lanes[k]",
        "        sk = np.float64(sc[k])",
        "        if tall:",
        f"            for r in range({p}):",
        f"                for j in range({q}):",
        f"                    R[({oT} + j * {p} + r) * BLK + k] = np.float64(a[g, r, j]) * sk",
        "        else:",
        f"            for j in range({q}):",
        f"                for r in range({p}):",
        f"                    R[({oT} + j * {p} + r) * BLK + k] = np.float64(a[g, j, r]) * sk",
        "    for k in range(BLK):",
    ]
    return "\n".join(head + [f"        {x}" for x in b]) + "\n"


def _formats(p: int, q: int, s: str) -> dict:
    qq = q * q
    o = {"oT": 0, "oG": q * p}
    o.update(oY=o["oG"] + qq, oE=o["oG"] + 2 * qq, oZ=o["oG"] + 3 * qq)
    o.update(oF=o["oZ"] + qq)
    o.update(oA=o["oF"] + q, oB=o["oF"] + q + 1)
    return real_formats(p, q, s) | {"sc_of": "sc_of32", **o}


def rsize(p: int, q: int) -> int:
    """Rows of the refinement's float64 scratch (``T``, ``G``, ``Y``, ``E``, ``Z``, ...)."""
    return q * p + 4 * q * q + q + 2


_REFINE = """
def _finish_{s}(S, sc, t1, t2, X, R, cnt, ok, a, lanes, tall):
    _norms_{s}(S)
    for k in range(BLK):
        R[{oA} * BLK + k] = 0.0
        R[{oB} * BLK + k] = np.inf
    for j in range({q}):  # singular values (float64 from the float32 squared norms)
        for k in range(BLK):
            v = math.sqrt(np.float64(S[j * {cb} + {pq} * BLK + k]))
            R[({oF} + j) * BLK + k] = v
            R[{oA} * BLK + k] = max(R[{oA} * BLK + k], v)
            R[{oB} * BLK + k] = min(R[{oB} * BLK + k], v)
    for k in range(BLK):  # all kept, twice above the threshold
        smax = R[{oA} * BLK + k]
        smin = R[{oB} * BLK + k]
        tol = max(t1[k] * np.float64(sc[k]), t2[k] * smax)
        ok[k] = 1.0 if smin > 2.0 * tol else 0.0
        cnt[k] = {q}
    for j in range({q}):
        for k in range(BLK):
            v = R[({oF} + j) * BLK + k]
            R[({oF} + j) * BLK + k] = 1.0 / (v * v) if v > 0.0 else 0.0
    for i in range({q}):  # Y = V diag(1/sigma^2) V^T
        for ll in range({q}):
            o = ({oY} + i * {q} + ll) * BLK
            for k in range(BLK):
                R[o + k] = 0.0
            for j in range({q}):
                vi = j * {cb} + ({p} + i) * BLK
                vl = j * {cb} + ({p} + ll) * BLK
                fo = ({oF} + j) * BLK
                for k in range(BLK):
                    R[o + k] += (np.float64(S[vi + k]) * np.float64(S[vl + k])) * R[fo + k]
    for k in range(BLK):  # T: the scaled tall orientation, exact in float64
        g = lanes[k]
        s = np.float64(sc[k])
        if tall:
            for r in range({p}):
                for j in range({q}):
                    R[({oT} + j * {p} + r) * BLK + k] = np.float64(a[g, r, j]) * s
        else:
            for j in range({q}):
                for r in range({p}):
                    R[({oT} + j * {p} + r) * BLK + k] = np.float64(a[g, j, r]) * s
    for i in range({q}):  # G = T^T T
        for ll in range({q}):
            o = ({oG} + i * {q} + ll) * BLK
            for k in range(BLK):
                R[o + k] = 0.0
            for r in range({p}):
                ti = ({oT} + i * {p} + r) * BLK
                tl = ({oT} + ll * {p} + r) * BLK
                for k in range(BLK):
                    R[o + k] += R[ti + k] * R[tl + k]
    for step in range(2):  # Y <- Y + Y (I - G Y), twice
        _mm(R, {oG}, {oY}, {oE}, {q})
        for i in range({q}):
            for ll in range({q}):
                o = ({oE} + i * {q} + ll) * BLK
                d = 1.0 if i == ll else 0.0
                for k in range(BLK):
                    R[o + k] = d - R[o + k]
        if step == 0:  # the test on E at the start: e2 = ||E||_F^2 >= ||E||_2^2
            for k in range(BLK):
                R[{oF} * BLK + k] = 0.0
            for e in range({q} * {q}):
                for k in range(BLK):
                    x = R[({oE} + e) * BLK + k]
                    R[{oF} * BLK + k] += x * x
            for k in range(BLK):
                e2 = R[{oF} * BLK + k]
                bound = (e2 * e2) * R[{oA} * BLK + k]
                good = (e2 <= 2.0**-8) & (bound <= 2.0**-29 * R[{oB} * BLK + k])
                ok[k] = ok[k] if good else 0.0
        _mm(R, {oY}, {oE}, {oZ}, {q})
        for e in range({q} * {q}):
            for k in range(BLK):
                R[({oY} + e) * BLK + k] += R[({oZ} + e) * BLK + k]
    for i in range({q}):  # X = Y T^T, times the scale
        for ll in range({p}):
            o = (i * {p} + ll) * BLK
            for k in range(BLK):
                X[o + k] = 0.0
            for j in range({q}):
                y = ({oY} + i * {q} + j) * BLK
                t = ({oT} + j * {p} + ll) * BLK
                for k in range(BLK):
                    X[o + k] += R[y + k] * R[t + k]
            for k in range(BLK):
                X[o + k] *= np.float64(sc[k])
"""
