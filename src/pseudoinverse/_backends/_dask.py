"""Dask arrays: a lazy result, by TSQR for a tall or wide matrix, else block by block.

Routing (``_dask_tsqr.plan``): a 2-D matrix that is not square and is more than one
chunk goes through TSQR (``_dask_tsqr``), never gathered onto one worker. Stacks
(``ndim > 2``), square matrices (whose ``R`` would be as large as themselves: gathered,
up to ``MAX_SIDE``) and single-chunk matrices are computed block by block here; a matrix
chunked in both matrix axes whose small side exceeds ``MAX_SIDE`` is a ``ValueError``.

On the block path each block holds whole matrices (the two matrix axes are made one chunk) and goes
through the engine's NumPy path; tolerances, damping and a right-hand side are chunked
like the batch axes. The result (and the rank) are lazy Dask arrays; ``check_finite``
raises when the result is computed, naming the first bad matrix's index in the whole
array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _engine, _finite
from . import _dask_tsqr


def _first_bad(a: Any, b: Any, hermitian: bool) -> Any:
    """The first bad matrix of the whole array, a lazy scalar (-1: none) that every block
    waits for: the error names it whichever block the scheduler runs first. Encoded as
    ``2 * index + (B is bad there and A is not)``, so that the error names the array."""
    import dask.array as da

    nb = a.ndim - 2
    ix = tuple(range(nb))

    def bad_block(blk, rhs=None):
        m, n = blk.shape[-2:]
        bad = _finite.bad_members(np, blk.reshape(-1, m, n), hermitian).reshape(blk.shape[:-2])
        code = bad.astype(np.int8)  # 1: A bad, 2: only B bad, 0: good
        if rhs is not None:
            code = np.where(~bad & ~np.isfinite(rhs).all(axis=(-2, -1)), 2, code)
        return code.astype(np.int8)

    args = [a, (*ix, nb, nb + 1)]
    if b is not None:
        args += [b, (*ix, nb, nb + 2)]
    code = da.blockwise(bad_block, ix, *args, dtype=np.int8, concatenate=True)
    flat = code.reshape(-1)
    first = da.argmax(flat > 0)
    return da.where((flat > 0).any(), 2 * first + (flat[first] == 2), -1)


def _run(req: Any, fn: Any, parts: tuple[str, ...], extra: dict[str, Any]) -> list[Any]:
    """``fn(block of a, block of b, *per-matrix arrays)`` block by block; ``parts`` names
    the outputs (``"x"``: matrices ``(n, cols)``, ``"rank"``: one integer per matrix)."""
    import dask.array as da

    a = req.a
    nb = a.ndim - 2
    ix = tuple(range(nb))
    a = a.rechunk({nb: -1, nb + 1: -1})
    chunks = a.chunks[:nb]
    b = req.b
    if b is not None:
        b = da.asarray(b).rechunk({**dict(enumerate(chunks)), nb: -1, nb + 1: -1})
    per = [
        da.from_array(np.array(np.broadcast_to(v, req.batch)), chunks=chunks)
        for v in extra.values()
    ]
    first = _first_bad(a, b, req.hermitian) if req.check_finite else da.from_array(np.asarray(-1))
    batch = req.batch

    def block(blk, rhs, first, *vals, part):
        if int(first) >= 0:
            where = np.unravel_index(int(first) // 2, batch)
            what = "B" if int(first) % 2 else "A"
            raise np.linalg.LinAlgError(_finite.message(tuple(int(i) for i in where), what))
        out = fn(blk, rhs, *vals)
        return out[part] if isinstance(out, tuple) else out

    rhs_args = (b, (*ix, nb, nb + 2)) if b is not None else (None, None)
    per_args = [x for v in per for x in (v, ix)]
    results = []
    for i, part in enumerate(parts):
        if part == "rank":
            index, dtype, new = ix, np.int64, {}
        else:
            cols = nb + 2 if b is not None else nb
            index, dtype = (*ix, nb + 1, cols), np.dtype(req.dtype)
            new = {}
        results.append(
            da.blockwise(
                block,
                index,
                a,
                (*ix, nb, nb + 1),
                *rhs_args,
                first,
                (),
                *per_args,
                part=i,
                dtype=dtype,
                concatenate=True,
                new_axes=new,
            )
        )
    return results


def _opts(req: Any) -> dict[str, Any]:
    return {
        "dtype": req.dtype,
        "hermitian": req.hermitian,
        "method": req.method,
        "check_finite": False,
    }


def pinv(req: Any) -> tuple[Any, Any, str]:
    from . import _numpy

    t = _dask_tsqr.plan(req)
    if t is not None:
        return (*_dask_tsqr.run(req, t, "pinv"), _dask_tsqr.chosen(req))

    def fn(blk, _rhs, at, rt):
        return _engine.compute_numpy(blk, at, rt, **_opts(req))

    x, rank = _run(req, fn, ("x", "rank"), {"atol": req.atol, "rtol": req.rtol})
    return x, rank, _numpy.chosen(req)


def solve(req: Any) -> tuple[Any, Any, str]:
    from . import _numpy

    t = _dask_tsqr.plan(req)
    if t is not None:
        return (*_dask_tsqr.run(req, t, "solve"), _dask_tsqr.chosen(req))

    def fn(blk, rhs, at, rt):
        return _engine.solve_numpy(blk, rhs, at, rt, **_opts(req))

    x, rank = _run(req, fn, ("x", "rank"), {"atol": req.atol, "rtol": req.rtol})
    return x, rank, _numpy.chosen(req)


def damped(req: Any) -> Any:
    t = _dask_tsqr.plan(req)
    if t is not None:
        return _dask_tsqr.run(req, t, "damped")[0]
    opts = {k: v for k, v in _opts(req).items() if k != "method"}

    def fn(blk, rhs, lam):
        return _engine.damped_numpy(blk, lam, rhs, **opts)

    (x,) = _run(req, fn, ("x",), {"damping": np.asarray(req.damping)})
    return x
