"""Batched one-sided Jacobi for small real matrices (up to 8 x 8), SIMD across the batch.

``jacobi.jacobi_real`` loops over rows with the lanes innermost, so each rotation passes
over a pair of columns three times (dot product, angles, rotation) and reloads the
angles for every row. Here the work on one pair of columns is written out for each
shape (generated below, the tall orientation ``p x q``, ``p >= q``): the loop over the
``BLK`` lanes of a block loads both columns of ``W`` and of ``V`` into registers once,
forms the dot product, the rotation and the new squared norms, and stores the rotated
columns: one pass, vectorised by LLVM (``BLK`` is a compile-time constant, and a column's
rows lie ``BLK`` apart in one buffer, so nothing aliases). 3 x 3 float64: 10 ns a
sweep per matrix against 24 in ``jacobi_real`` (one thread, this machine).

What it computes is ``jacobi.py``'s (its conventions: float64 arithmetic for every input,
scaling by powers of two, rotation formulas, thresholds, round-robin pairs, Hermitian
lower triangle), with one change in when the sweeps stop: a block runs ``s0`` sweeps,
then a check (the dot products of one sweep, without rotations) marks the matrices
that would still rotate. The block is done if none is; the marked ones are computed
again from the start in blocks of their own, which sweep (rotating the marked lanes
only) and check until every lane is done. So a block does not pay a sweep to find
that nothing rotates, and most blocks do not wait for their slowest member. A lane's
sweeps depend on that lane alone: a matrix gets the same bits alone and in any stack.

The generated functions are compiled from this file's text (``compile(..., __file__)``,
so numba caches them like the others); a shape compiles on its first use only.
"""

from __future__ import annotations

# math, np, BLK, sc_of and rotation are used by the generated code, which runs in this
# namespace
import hashlib
import math  # noqa: F401

import numpy as np  # noqa: F401
from numba import njit

from .jacobi import OPTS, rotation  # noqa: F401
from .tiny_base import (  # noqa: F401
    _COMMON,
    _REAL,
    BLK,
    MAX_ROWS,
    THRESHOLD,
    _pair_source,
    _tree,
    real_formats,
    sc_of,
)

#: Up to this many entries the last step (``X`` from ``W`` and ``V``) is written out too
#: (beyond, loops over the lanes are faster: the written-out code outgrows the registers).
_UNROLL_MAX = 42


def _row(p: int, q: int, j: int, i: int) -> int:
    """Offset of row ``i`` of column block ``j`` (``W`` rows, then ``V``, then the norm)."""
    return (j * (p + q + 1) + i) * BLK


def _finish_source(p: int, q: int, s: str) -> str:
    """``_finish_{s}(S, sc, t1, t2, X, cnt)``: ``X = V diag(f) (W diag(f))^T`` times
    the scale into ``X[(i p + l) BLK + k]``, ``f = 1/sigma`` for ``sigma > max(t1 sc,
    t2 sigma_max)`` (their count into ``cnt``), else 0."""
    body = ["scale = sc[k]"]
    for j in range(q):
        terms = " + ".join(f"w{j}_{i} * w{j}_{i}" for i in range(p))
        body += [f"w{j}_{i} = S[{_row(p, q, j, i)} + k]" for i in range(p)]
        body += [f"s{j} = math.sqrt({terms})"]
    body.append(f"smax = {_tree('max', [f's{j}' for j in range(q)])}")
    body.append("tol = max(t1[k] * scale, t2[k] * smax)")
    for j in range(q):
        body += [f"keep{j} = s{j} > tol", f"f{j} = 1.0 / s{j} if keep{j} else 0.0"]
        body.append(f"fs{j} = f{j} * scale")
        body += [f"x{j}_{i} = S[{_row(p, q, j, p + i)} + k] * fs{j}" for i in range(q)]
        body += [f"y{j}_{i} = w{j}_{i} * f{j}" for i in range(p)]
    body.append("cnt[k] = " + " + ".join(f"(1.0 if keep{j} else 0.0)" for j in range(q)))
    for i in range(q):
        for ll in range(p):
            terms = " + ".join(f"x{j}_{i} * y{j}_{ll}" for j in range(q))
            body.append(f"X[{(i * p + ll) * BLK} + k] = {terms}")
    out = [f"def _finish_{s}(S, sc, t1, t2, X, R, cnt, ok, a, lanes, tall):"]
    out.append("    for k in range(BLK):")
    return "\n".join(out + [f"        {b}" for b in body]) + "\n"


_FINISH_LOOPS = (
    """
def _finish_{s}(S, sc, t1, t2, X, R, cnt, ok, a, lanes, tall):
"""
    + THRESHOLD
    + """    for i in range({q}):
        for ll in range({p}):
            o = (i * {p} + ll) * BLK
            for k in range(BLK):
                X[o + k] = S[({p} + i) * BLK + k] * S[ll * BLK + k]
            for j in range(1, {q}):
                for k in range(BLK):
                    X[o + k] += S[j * {cb} + ({p} + i) * BLK + k] * S[j * {cb} + ll * BLK + k]
"""
)


_KERNELS: dict = {}


def kernel(p: int, q: int, complex_: bool = False, single: bool = False):
    """``run(a, b, atol, rtol, out, rank, hermitian, pairs, tol2, s0, max_sweeps)`` for
    stacks whose tall orientation is ``p x q`` (``q <= p <= MAX_ROWS``): generated and
    compiled on first use (then loaded from numba's cache).

    ``a (B, m, n)`` float32/float64 (computed in float64), ``b (B, m, k)`` of its dtype
    (``k = 0``: the pseudo-inverse into ``out (B, n, m)``, else ``pinv(A) @ b`` into
    ``out (B, n, k)``), ``atol``/``rtol`` float64 ``(B,)``, ``rank`` int64 ``(B,)``,
    ``pairs = jacobi.pair_order(q)``. Returns the members it refused (none here; see
    ``single``). ``complex_``: the kernel of ``tiny_complex`` for complex stacks viewed
    as real (``a (B, m, 2n)``, ``b (B, m, 2k)``, ``out (B, n, 2m)`` or ``(B, n, 2k)``).
    ``single``: ``tiny_single``'s, for float32 stacks (``tol2`` a float32; not Hermitian),
    which returns the members it did not prove accurate, for the float64 kernel.

    The generated names carry a hash of their text: a change to the generator gives
    new names, never a stale entry of numba's cache (which keys on the file's date).
    """
    key = (p, q, complex_, single)
    if key not in _KERNELS:
        s = f"{p}x{q}" + ("c" if complex_ else "") + ("f" if single else "")
        namespace, filename = globals(), __file__
        fmt = real_formats(p, q, s) | {"xsize": q * p, "rsize": 1}
        fmt.update(ncols="a.shape[2]", wdt="np.float64", sc_of="sc_of")
        if complex_:
            from . import tiny_complex

            src, filename = tiny_complex.sources(p, q, s), tiny_complex.__file__
            fmt.update(cb=tiny_complex.block_rows(p, q) * BLK, xsize=2 * q * p)
            fmt.update(ncols="a.shape[2] // 2")
        elif single:
            from . import tiny_single

            src, filename = tiny_single.sources(p, q, s), tiny_single.__file__
            namespace = vars(tiny_single)
            fmt.update(wdt="np.float32", rsize=tiny_single.rsize(p, q))
        else:
            src = _pair_source(p, q, s)
            if p * q <= _UNROLL_MAX:
                src += _finish_source(p, q, s)
            else:
                src += _FINISH_LOOPS.format(**fmt)
            src += _REAL.format(**fmt)
        src += _COMMON.format(**fmt)
        tag = hashlib.sha1(src.encode()).hexdigest()[:10]
        src = src.replace(f"_{s}(", f"_{s}_{tag}(")
        before = set(namespace)
        exec(compile(src, filename, "exec"), namespace)  # our own text, generated above
        for name in set(namespace) - before:
            namespace[name] = njit(**OPTS)(namespace[name])
        _KERNELS[key] = namespace[f"run_{s}_{tag}"]
    return _KERNELS[key]
