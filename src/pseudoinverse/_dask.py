"""Dask arrays: a lazy pseudo-inverse, computed block by block along the batch axes.

Each block holds whole matrices (the two matrix axes are one chunk) and goes through the
NumPy path; tolerances are chunked like the batch axes. The result is a lazy Dask array.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def compute(a: Any, atol: np.ndarray, rtol: np.ndarray, **options: Any) -> tuple[Any, Any]:
    import dask.array as da

    from ._api import _compute_numpy

    nb = a.ndim - 2
    a = a.rechunk({nb: -1, nb + 1: -1})
    batch_chunks = a.chunks[:nb]
    atol_d = da.from_array(atol, chunks=batch_chunks) if nb else da.from_array(atol)
    rtol_d = da.from_array(rtol, chunks=batch_chunks) if nb else da.from_array(rtol)
    dtype = np.dtype(options["dtype"])

    def block(blk: np.ndarray, at: np.ndarray, rt: np.ndarray) -> np.ndarray:
        x, _ = _compute_numpy(blk, at, rt, **options)
        return x

    def block_rank(blk: np.ndarray, at: np.ndarray, rt: np.ndarray) -> np.ndarray:
        return _compute_numpy(blk, at, rt, **options)[1]

    idx = tuple(range(nb))
    x = da.blockwise(
        block,
        (*idx, nb + 1, nb),
        a,
        (*idx, nb, nb + 1),
        atol_d,
        idx,
        rtol_d,
        idx,
        dtype=dtype,
        concatenate=True,
    )
    rank = da.blockwise(
        block_rank,
        idx,
        a,
        (*idx, nb, nb + 1),
        atol_d,
        idx,
        rtol_d,
        idx,
        dtype=np.int64,
        concatenate=True,
    )
    return x, rank
