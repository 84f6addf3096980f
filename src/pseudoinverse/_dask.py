"""Dask arrays: a lazy pseudo-inverse, computed block by block along the batch axes.

Each block holds whole matrices (the two matrix axes are made one chunk) and goes
through the NumPy path; tolerances are chunked like the batch axes. The result (and the
rank) are lazy Dask arrays; ``check_finite`` raises when the result is computed, naming
the first bad matrix's index in the whole array.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def compute(a: Any, atol: np.ndarray, rtol: np.ndarray, **options: Any) -> tuple[Any, Any]:
    import dask.array as da

    from . import _finite
    from ._api import _compute_numpy

    nb = a.ndim - 2
    batch = tuple(a.shape[:nb])
    a = a.rechunk({nb: -1, nb + 1: -1})
    chunks = a.chunks[:nb]
    index = da.arange(math.prod(batch), chunks=-1).reshape(batch).rechunk(chunks)
    atol_d, rtol_d = (da.from_array(t, chunks=chunks) for t in (atol, rtol))
    check = options["check_finite"]
    opts = {**options, "check_finite": False}

    def block(blk, idx, at, rt, part):
        m, n = blk.shape[-2:]
        if check:
            bad = _finite.bad_members(np, blk.reshape(-1, m, n), opts["hermitian"])
            if bad.any():  # name the index in the whole array, not in this block
                first = np.unravel_index(idx.reshape(-1)[np.argmax(bad)], batch)
                raise ValueError(_finite.message(tuple(int(i) for i in first)))
        return _compute_numpy(blk, at, rt, **opts)[part]

    ix = tuple(range(nb))
    x = da.blockwise(
        block,
        (*ix, nb + 1, nb),
        a,
        (*ix, nb, nb + 1),
        index,
        ix,
        atol_d,
        ix,
        rtol_d,
        ix,
        part=0,
        dtype=np.dtype(options["dtype"]),
        concatenate=True,
    )
    rank = da.blockwise(
        block,
        ix,
        a,
        (*ix, nb, nb + 1),
        index,
        ix,
        atol_d,
        ix,
        rtol_d,
        ix,
        part=1,
        dtype=np.int64,
        concatenate=True,
    )
    return x, rank
