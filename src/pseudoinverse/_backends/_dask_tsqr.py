"""Dask matrices that are tall and skinny (or wide and short): TSQR, never gathered.

``A = Q R`` by blocks of rows (``R`` is ``n x n``), ``R = U S V^H`` on one worker by the
NumPy engine (``sigma(A) = sigma(R)``: the tolerance rule, the method and the rank are
``pinv``'s on ``R``), and ``A^+ = R^+ Q^H``: a lazy result chunked along the long axis.
A wide matrix goes through ``A^H = Q R``: ``A^+ = Q (R^H)^+``.

The stages, each task holding one block of rows (or small ``n``-wide factors):

1. per row block: ``R_i`` of the Householder QR of ``2**-e_i A_i`` (the block scaled by a
   power of two to an entry of at most 1: no overflow or subnormal in the QR, as the
   engine scales), its NaN/Inf test and ``e_i``; the ``Q_i`` is dropped;
2. one small task: the first bad block (``check_finite`` raises naming it), the common
   exponent ``E``; each ``R_i`` rescaled to ``2**-E A``;
3. ``dask.array.linalg.tsqr`` of the stacked ``R_i`` (grouped eight to a chunk, so that
   its tree reduces them), giving ``R`` and the ``Q2_i`` with ``Q_i = Q1_i Q2_i``;
4. one small task: the engine on ``R`` (``pinv``, the solve or the damped filter);
5. per row block: ``Q1_i`` recomputed from ``A_i`` (the same Householder QR, so the same
   factor) and the result's block. Recomputing reads ``A`` twice but holds one block of
   ``Q`` at a time (holding every ``Q1_i`` until ``R`` is known would double the memory).

``pinv_solve`` with ``k <= n`` right-hand sides needs no ``Q`` at all: the TSQR of
``[A B]`` has ``R = [R11 R12; 0 R22]`` with ``R11`` that of ``A`` and ``R12 = Q^H B``
(the sum over row blocks of ``Q_i^H B_i``, formed inside the same reduction tree), so
``x = R11^+ R12``: one pass over ``A``. With ``k > n`` it is ``pinv(A) @ B`` summed over
row blocks by Dask's matmul (cheaper than the QR of ``[A B]``, whose ``R`` is
``(n + k)``-wide).
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import numpy as np

from .. import _engine, _finite, _methods

# The small side beyond which a chunked matrix is refused: R (n x n) and its SVD live on
# one worker (4096**2 float64 is 128 MiB, its SVD about a minute on one core), and a
# square matrix, whose R is as large as itself, is gathered up to this size.
MAX_SIDE = 4096

# Stacked R factors per chunk given to dask's tsqr: its tree reduces only chunks at least
# twice as tall as wide, so eight n-row factors make a fan-in of eight per level.
_GROUP = 8

_NONE = -(10**6)  # the exponent of a block without a nonzero finite entry


def plan(req: Any) -> Any:
    """The tall array to factor (``A``, or ``A^H`` for a wide matrix), rechunked to one
    chunk of columns, or ``None`` for the block-by-block path (stacks, square matrices,
    a matrix that is one chunk). ``ValueError`` for a matrix chunked in both matrix
    axes whose small side exceeds ``MAX_SIDE``: it can be neither factored by TSQR nor
    gathered."""
    a = req.a
    m, n = req.m, req.n
    nrow, ncol = len(a.chunks[-2]), len(a.chunks[-1])
    if nrow == ncol == 1:
        return None
    small = min(m, n)
    short_chunks = ncol if m >= n else nrow
    if (m == n or a.ndim > 2 or short_chunks > 1) and small > MAX_SIDE:
        shape = tuple(a.shape)
        raise ValueError(
            f"pinv of a Dask array of shape {shape} with chunks {a.chunksize} is not "
            f"supported: the small side {small} > {MAX_SIDE} cannot be made one chunk "
            "(TSQR needs a tall-and-skinny matrix, one chunk of columns, chunked along "
            "rows; or a wide one, one chunk of rows), and a matrix this size is never "
            f"gathered onto one worker. Rechunk it as A.rechunk({{{a.ndim - 1}: -1}}) "
            f"(tall) or A.rechunk({{{a.ndim - 2}: -1}}) (wide) if that side fits, or "
            "compute it in memory"
        )
    if a.ndim > 2 or m == n:  # a square matrix's R is as large as A: no TSQR
        return None
    t = a if m > n else a.conj().T
    t = t.rechunk({1: -1})
    if len(t.chunks[0]) == 1:  # the long axis was one chunk: split it by dask's chunk size
        t = t.rechunk({0: "auto", 1: -1})
    if len(t.chunks[0]) == 1:  # small enough to be one block
        return None
    if any(c == 0 for c in t.chunks[0]):  # empty row blocks have no R factor
        t = t.rechunk({0: tuple(c for c in t.chunks[0] if c)})
    return t


# --------------------------------------------------------------------------- blocks


def _ldexp(x: np.ndarray, k: int) -> np.ndarray:
    """``x * 2**k``, exact (real arithmetic on a complex array's parts, as the engine)."""
    x = np.ascontiguousarray(x)
    real = x.view(np.finfo(x.dtype).dtype) if x.dtype.kind == "c" else x
    with np.errstate(under="ignore", over="ignore"):
        return np.ldexp(real, int(k)).view(x.dtype)


def _exponent(x: np.ndarray) -> int:
    """``e`` with the largest entry of ``x`` (finite) in ``[2**(e-1), 2**e)``; ``_NONE``
    for an empty or zero block. Within the engine's safe range it is 0: the block is
    not scaled (``_engine._SAFE_EXPONENT``: no method's sums of squares can overflow or
    underflow there), which costs no pass over the data."""
    real = np.ascontiguousarray(x).view(np.finfo(x.dtype).dtype) if x.dtype.kind == "c" else x
    if real.size == 0:
        return _NONE
    big = max(float(real.max()), -float(real.min()))  # no |x| temporary
    if big == 0:
        return _NONE
    e = int(np.frexp(big)[1])
    return 0 if abs(e) <= _engine._SAFE_EXPONENT[real.dtype.itemsize] else e


def _clean(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(x with NaN/Inf set to 0, whether it had any)``: the QR then stays finite."""
    if not _finite.bad_members(np, x[None], False)[0]:  # the fast test, one pass
        return x, False
    return np.where(np.isfinite(x), x, 0), True


def _scaled(a: np.ndarray, e: int) -> np.ndarray:
    return _ldexp(a, -e) if e not in (0, _NONE) else a


def _stage1(a: np.ndarray, b: Any, augment: bool) -> tuple:
    """``(R_i, e_i, f_i, A bad, B bad)`` of one row block (B's only if ``augment``)."""
    a, bad_a = _clean(a)
    e = _exponent(a)
    part = _scaled(a, e)
    bad_b, f = False, _NONE
    if b is not None:
        b, bad_b = _clean(b)
        if augment:
            f = _exponent(b)
            part = np.concatenate([part, _scaled(b, f)], axis=1)
    r = np.linalg.qr(part, mode="r")
    return r, e, f, bad_a, bad_b


def _where(i: int, spans: list[tuple[int, int]], wide: bool) -> str:
    axis, names = ("column", "columns") if wide else ("row", "rows")
    lo, hi = spans[i]
    return f"in {axis} block {i} ({names} {lo}:{hi})"


def _global(parts: list[tuple], spans, wide: bool, check: bool) -> tuple[int, int, bool]:
    """``(E, F, any bad)``; with ``check``, ``LinAlgError`` naming the first bad block
    (``A`` where both are bad there, as the engine's rule)."""
    bad = False
    for i, (_, _, _, bad_a, bad_b) in enumerate(parts):
        if (bad_a or bad_b) and check:
            what = "A" if bad_a else "B"
            raise np.linalg.LinAlgError(
                f"{what} contains NaN or Inf {_where(i, spans, wide)} "
                "(pass check_finite=False for a NaN result)"
            )
        bad = bad or bad_a or bad_b
    e = max(p[1] for p in parts)
    f = max(p[2] for p in parts)
    return (0 if e == _NONE else e), (0 if f == _NONE else f), bad


def _to_global(part: tuple, glob: tuple, n: int) -> np.ndarray:
    """``R_i`` of ``[2**-E A_i, 2**-F B_i]``: exact powers of two per column group."""
    r, e, f, _, _ = part
    big_e, big_f, _ = glob
    out = np.empty_like(r)
    out[:, :n] = _ldexp(r[:, :n], e - big_e) if e != _NONE else r[:, :n]  # 0 if _NONE
    if r.shape[1] > n:
        out[:, n:] = _ldexp(r[:, n:], f - big_f) if f != _NONE else r[:, n:]
    return out


def _stage2(a: np.ndarray, q2: np.ndarray, fin: tuple, wide: bool) -> np.ndarray:
    """The result's block: ``2**shift mat Q_i^H`` (tall) or ``2**shift Q_i mat`` (wide),
    ``Q_i = Q1_i Q2_i`` with ``Q1_i`` recomputed from the block exactly as in stage 1.
    The power of two comes last: ``mat`` in ``A``'s units may overflow where the block
    does not (``Q`` is orthonormal, but an entry of ``mat`` may exceed every entry of
    the result)."""
    mat, _, shift = fin
    a, _ = _clean(a)
    q1 = np.linalg.qr(_scaled(a, _exponent(a)), mode="reduced")[0]
    with np.errstate(invalid="ignore"):  # NaN blocks (check_finite=False) stay NaN
        if wide:
            out = q1 @ (q2 @ mat)
        else:  # (Q1 (Q2 mat^H))^H: one product with the tall Q1, no copy of it
            out = _h(q1 @ (q2 @ _h(mat)))
    return _ldexp(out, shift) if shift else out


def _h(x: np.ndarray) -> np.ndarray:
    """The conjugate transpose; a view for real data (``conj`` would copy)."""
    return x.conj().T if x.dtype.kind == "c" else x.T


# --------------------------------------------------------------------------- graphs


def _factor(req: Any, t: Any, b: Any, augment: bool) -> tuple[Any, Any, Any, list]:
    """Stages 1-3: ``(R, Q2 chunked as t's row blocks or None, the global task, spans)``."""
    import dask
    import dask.array as da

    wide = req.m < req.n
    n = t.shape[1]
    rows = t.chunks[0]
    stops = np.cumsum((0, *rows)).tolist()
    spans = list(itertools.pairwise(stops))
    a_blocks = t.to_delayed(optimize_graph=False).ravel().tolist()
    b_blocks = (
        b.to_delayed(optimize_graph=False).ravel().tolist() if b is not None else [None] * len(rows)
    )
    stage1 = dask.delayed(_stage1, pure=True, nout=5)
    parts = [stage1(ab, bb, augment) for ab, bb in zip(a_blocks, b_blocks, strict=True)]
    glob = dask.delayed(_global, pure=True)(parts, spans, wide, req.check_finite)
    width = n + (b.shape[1] if augment else 0)
    heights = [min(r, width) for r in rows]
    conv = dask.delayed(_to_global, pure=True)
    stacked = da.concatenate(
        [
            da.from_delayed(conv(p, glob, n), shape=(h, width), dtype=req.dtype)
            for p, h in zip(parts, heights, strict=True)
        ]
    )
    grouped = stacked.rechunk({0: _GROUP * width, 1: -1})
    q2, r = da.linalg.tsqr(grouped)
    q2 = None if augment else q2.rechunk({0: tuple(heights)})
    return r, q2, glob, spans


def _lazy(fin: Any, t: Any, q2: Any, req: Any, cols: int) -> Any:
    """Stage 5: the result from ``fin`` (the small matrix, a Delayed) and the blocks."""
    import dask
    import dask.array as da

    wide = req.m < req.n
    n = t.shape[1]
    stage2 = dask.delayed(_stage2, pure=True)
    blocks = []
    pairs = zip(
        t.to_delayed(optimize_graph=False).ravel(),
        q2.to_delayed(optimize_graph=False).ravel(),
        t.chunks[0],
        strict=True,
    )
    for ab, qb, rows in pairs:
        shape = (rows, cols) if wide else (n, rows)
        blocks.append(da.from_delayed(stage2(ab, qb, fin, wide), shape=shape, dtype=req.dtype))
    return da.concatenate(blocks, axis=0 if wide else 1)


def _small(
    req: Any,
    r: np.ndarray,
    glob: tuple,
    op: str,
    rhs: Any = None,
    final: bool = False,
    augmented: bool = False,
) -> tuple:
    """Stage 4, on one worker: ``(matrix, rank, shift)`` from ``R`` of ``2**-E A``
    (``R11``, ``R12`` when augmented): ``pinv`` / ``solve`` / ``damped`` by the NumPy
    engine, in scaled units (times ``2**shift`` in ``A``'s); ``final``: ``(2**shift
    matrix, rank)``, the result itself."""
    big_e, big_f, bad = glob
    wide = req.m < req.n
    n = min(req.m, req.n)
    r11 = r[:n, :n]
    mat = r11.conj().T if wide else r11  # A_s = R^H Q^H when wide
    if augmented:  # R12 = Q^H (2**-F B), k >= 0 columns
        rhs, shift = r[:n, n:], big_f - big_e
    elif rhs is not None:  # wide: B itself, scaled here
        rhs, bad_b = _clean(np.asarray(rhs, dtype=req.dtype))
        if bad_b and req.check_finite:
            raise np.linalg.LinAlgError(_finite.message((), "B"))
        bad = bad or bad_b
        f = _exponent(rhs)
        f = 0 if f == _NONE else f
        rhs, shift = _ldexp(rhs, -f), f - big_e
    else:
        shift = -big_e
    opts = {"dtype": req.dtype, "hermitian": False, "check_finite": False}
    with np.errstate(under="ignore", over="ignore"):  # lambda, atol scale like A
        if op == "damped":
            lam = np.ldexp(np.asarray(req.damping, dtype=np.float64), -big_e)
            x, rank = _engine.damped_numpy(mat, lam, rhs, **opts), np.int64(0)
        else:
            atol = np.ldexp(np.asarray(req.atol, dtype=np.float64), -big_e)
            rtol = np.asarray(req.rtol, dtype=np.float64)
            if rhs is None:
                x, rank = _engine.compute_numpy(mat, atol, rtol, method=req.method, **opts)
            else:
                x, rank = _engine.solve_numpy(mat, rhs, atol, rtol, method=req.method, **opts)
    if bad:  # check_finite=False: the engine's rule, an all-NaN result and rank 0
        x, rank = np.full(x.shape, np.nan, dtype=x.dtype), 0
    rank = np.asarray(rank, dtype=np.int64).reshape(())
    if final:
        return _ldexp(x, shift), rank
    return x, rank, shift


class _Spec(NamedTuple):
    """What the small task needs of the request: plain values only (a ``Request`` holds
    the Dask arrays themselves, which a Delayed argument would make inputs: gathered)."""

    m: int
    n: int
    dtype: Any
    method: str
    check_finite: bool
    atol: Any
    rtol: Any
    damping: Any


def chosen(req: Any) -> str:
    """The method that runs on ``R`` (``n x n``, the small side)."""
    k = min(req.m, req.n)
    return _methods.chosen_name(req.method, False, (1, k, k), req.dtype)


def run(req: Any, t: Any, op: str) -> tuple[Any, Any]:
    """``(x, rank)`` of ``op`` in ``"pinv"``, ``"solve"``, ``"damped"`` (a solve when
    ``req.b`` is given), lazy; ``rank`` is a 0-d Dask array (``damped``: zero, unused)."""
    import dask
    import dask.array as da

    wide = req.m < req.n
    t = t.astype(req.dtype)
    b = req.b
    spec = _Spec(
        req.m, req.n, req.dtype, req.method, req.check_finite, req.atol, req.rtol, req.damping
    )
    k = 0 if b is None else b.shape[-1]
    small = dask.delayed(_small, pure=True, nout=3)
    if b is not None and not wide and k <= t.shape[1]:  # [A B]: Q never formed
        b = b.astype(req.dtype).rechunk({0: t.chunks[0], 1: -1})
        r, _, glob, _ = _factor(req, t, b, augment=True)
        x, rank = dask.delayed(_small, pure=True, nout=2)(
            spec, r.to_delayed()[0, 0], glob, op, None, True, True
        )
        x = da.from_delayed(x, shape=(t.shape[1], k), dtype=req.dtype)
        return x, da.from_delayed(rank, shape=(), dtype=np.int64)
    tall_rhs = None
    if b is not None and not wide:
        tall_rhs = b.astype(req.dtype).rechunk({0: t.chunks[0], 1: -1})
    r, q2, glob, _ = _factor(req, t, tall_rhs, augment=False)
    rhs = b.astype(req.dtype).rechunk({0: -1}) if b is not None and wide else None
    rhs_d = rhs.rechunk({1: -1}).to_delayed()[0, 0] if rhs is not None else None
    fin = small(spec, r.to_delayed()[0, 0], glob, op, rhs_d)
    cols = req.m if rhs is None else k
    x = _lazy(fin, t, q2, req, cols)
    if tall_rhs is not None:  # k > n: pinv(A) @ B, summed over row blocks
        x = x @ tall_rhs
    return x, da.from_delayed(fin[1], shape=(), dtype=np.int64)
