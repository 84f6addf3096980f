"""Dask arrays: a lazy pseudo-inverse, computed block by block along the batch axes.

Each block holds whole matrices (the two matrix axes are made one chunk) and goes
through the NumPy path; tolerances are chunked like the batch axes. The result (and the
rank) are lazy Dask arrays; ``check_finite`` raises when the result is computed, naming
the first bad matrix's index in the whole array.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def compute(a: Any, atol: np.ndarray, rtol: np.ndarray, **options: Any) -> tuple[Any, Any]:
    import dask.array as da

    from . import _finite
    from ._engine import compute_numpy

    nb = a.ndim - 2
    batch = tuple(a.shape[:nb])
    a = a.rechunk({nb: -1, nb + 1: -1})
    chunks = a.chunks[:nb]
    atol_d, rtol_d = (da.from_array(t, chunks=chunks) for t in (atol, rtol))
    check = options["check_finite"]
    opts = {**options, "check_finite": False}
    ix = tuple(range(nb))
    first = da.from_array(np.asarray(-1))  # no check: never bad
    if check:
        # The first bad matrix of the whole array, a lazy scalar (-1: none) that every
        # block waits for: the error names it whichever block the scheduler runs first.
        def bad_block(blk):
            m, n = blk.shape[-2:]
            bad = _finite.bad_members(np, blk.reshape(-1, m, n), opts["hermitian"])
            return bad.reshape(blk.shape[:-2])

        bad = da.blockwise(bad_block, ix, a, (*ix, nb, nb + 1), dtype=bool, concatenate=True)
        flat = bad.reshape(-1)
        first = da.where(flat.any(), da.argmax(flat), -1)

    def block(blk, at, rt, first, part):
        if int(first) >= 0:
            where = np.unravel_index(int(first), batch)
            raise np.linalg.LinAlgError(_finite.message(tuple(int(i) for i in where)))
        return compute_numpy(blk, at, rt, **opts)[part]

    x = da.blockwise(
        block,
        (*ix, nb + 1, nb),
        a,
        (*ix, nb, nb + 1),
        atol_d,
        ix,
        rtol_d,
        ix,
        first,
        (),
        part=0,
        dtype=np.dtype(options["dtype"]),
        concatenate=True,
    )
    rank = da.blockwise(
        block,
        ix,
        a,
        (*ix, nb, nb + 1),
        atol_d,
        ix,
        rtol_d,
        ix,
        first,
        (),
        part=1,
        dtype=np.int64,
        concatenate=True,
    )
    return x, rank
