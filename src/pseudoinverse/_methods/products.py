"""Matrix products for the large-matrix routes, in the thread pool of their LAPACK calls.

SciPy's LAPACK and NumPy's ``matmul`` run on two separate OpenBLAS builds, each with its
own thread pool. At default threads, a route that alternates between them (SciPy's
factorisation, then a NumPy product) leaves one pool's threads spinning while the other
pool's run: on 2 cores a 300 x 200 CholeskyQR2 took 175 ms against 5 ms at one thread.
So the routes that factor with SciPy multiply with SciPy's ``gemm`` too (2-D operands
of one dtype, real or complex); anything else (stacks, mixed dtypes) is NumPy's
``matmul``. Both are
conventional products, so every rounding bound of ``certificate.py`` and ``gram.py``
holds for either.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

_GEMM = {"f": blas.sgemm, "d": blas.dgemm, "F": blas.cgemm, "D": blas.zgemm}


def _as_op(x: np.ndarray) -> tuple[np.ndarray, int]:
    """``(f, trans)`` with ``f`` Fortran-ordered and ``op(f) = x^T`` (no copy where ``x``
    is C- or Fortran-contiguous)."""
    if x.flags.c_contiguous:
        return x.T, 0
    if x.flags.f_contiguous:
        return x, 1
    return np.asfortranarray(x.T), 0


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` as a C-contiguous array: SciPy's ``gemm`` for 2-D operands of one
    dtype (computed as ``(b^T a^T)^T``, whose Fortran result is ``a @ b`` in C order),
    else NumPy's ``matmul``.

    >>> a, b = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(3, 4)
    >>> bool(np.array_equal(matmul(a, b), a @ b)), matmul(a, b).flags.c_contiguous
    (True, True)
    """
    gemm = _GEMM.get(a.dtype.char)
    if gemm is None or a.ndim != 2 or b.ndim != 2 or b.dtype != a.dtype or 0 in a.shape + b.shape:
        return np.ascontiguousarray(a @ b)
    bt, trans_b = _as_op(b)
    at, trans_a = _as_op(a)
    return gemm(1.0, bt, at, trans_a=trans_b, trans_b=trans_a).T
