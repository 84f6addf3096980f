"""The ``"jacobi"`` method: batched one-sided Jacobi SVD, compiled and SIMD across the batch.

For stacks of many small matrices (up to about 16 x 16), where LAPACK's per-matrix
overhead dominates. The kernels (``_kernels/jacobi.py``, ``_kernels/jacobi_complex.py``)
are numba functions, imported at the first call only (``import pseudoinverse`` never
imports numba) and compiled with ``cache=True``: one specialisation per real dtype for
real input and one for complex input, at most four in all.

Accuracy promise (checked by ``tests/test_kernels.py``):

* float64 / complex128: one-sided Jacobi is backward stable with singular values of
  high relative accuracy; the error against an exact reference is within 2x that of
  ``numpy.linalg.pinv`` (plus a floor of ``10 eps ||A^+||``), and the four Penrose
  conditions hold at dtype precision.
* float32 / complex64 are computed in their own precision (that is where their speed
  comes from): the error is within 2x that of a float32 LAPACK pseudo-inverse
  (``torch.linalg.pinv``), itself about ``n eps32 kappa``. ``numpy.linalg.pinv`` is
  more accurate there because it computes float32 input in float64.
* Rank decisions follow ``sigma > max(atol, rtol * sigma_max)`` exactly on the computed
  singular values (which carry an absolute error of a few ``eps * sigma_max``).
* ``hermitian=True`` reads the lower triangle only (the strict upper one is never
  touched, the diagonal's imaginary part is ignored) and takes the SVD of that Hermitian
  matrix: its singular values are the eigenvalue moduli, its SVD pseudo-inverse is
  ``V diag(1/w kept) V^H``, so the threshold applies to ``|eigenvalue|`` as specified.

Speed (one thread, 1e5 matrices, ratio to the faster of numpy.linalg.pinv and
torch.linalg.pinv; ``benchmarks/bench_small.py --full``, on a shared 2-vCPU machine):
3x3 16x / 23x / 14x, 4x4 11x / 21x / 10x, 6x7 7x / 14x / 6x (float64 / float32 /
complex128); 16x16 (1e4) 1.6x / 3.3x / 1.8x. For 64x64, ``supports`` says no: LAPACK
wins there.

Compile time of the first call in a fresh process (measured, machine under load):
about 12 s per kernel (real or complex, per precision) with an empty numba cache;
0.8 s with a warm cache, nearly all of it ``import numba``.

>>> import numpy as np
>>> from pseudoinverse._methods.jacobi import pinv_jacobi
>>> a = np.array([[[2.0, 0.0], [0.0, 0.0]]])
>>> x, rank = pinv_jacobi(a, np.zeros(1), np.full(1, 2 * np.finfo(float).eps))
>>> x[0], rank
(array([[0.5, 0. ],
       [0. , 0. ]]), array([1]))
"""

from __future__ import annotations

import numpy as np

#: Largest ``max(m, n)`` for which ``"auto"`` should prefer this method, per dtype
#: (measured at one thread against numpy.linalg.pinv and torch.linalg.pinv: beyond, a
#: sweep costs O(n^3) and LAPACK's blocked SVD wins). The kernel works at any size.
SUPPORTED_MAX = 16
_MAX_SIZE = {
    np.dtype(np.float32): 32,
    np.dtype(np.complex64): 24,
    np.dtype(np.float64): 24,
    np.dtype(np.complex128): 16,
}

#: Sweeps are capped (cyclic Jacobi converges quadratically; 10 sweeps suffice in
#: practice up to 16 x 16, the cap only bounds the time on pathological input).
_MAX_SWEEPS = 30


def supports(m: int, n: int, dtype: np.dtype, batch: int = 1) -> bool:
    """Whether ``"auto"`` should use this method for a ``(batch, m, n)`` stack."""
    limit = _MAX_SIZE.get(np.dtype(dtype), 0)
    return 1 <= max(m, n) <= limit and batch >= 1


def _block(p: int, q: int, itemsize: int) -> int:
    """Matrices per block: the working set ``W, V, X`` of a block stays about in L1/L2.

    It depends on the matrix size only, never on the batch: every lane then runs the
    same (vectorised) code, so a matrix gets the same bits alone (padded) and in any
    stack; a lane-count that followed the batch put some lanes in the loops' scalar
    remainder, whose floating-point contraction differs by an ulp.
    """
    per_matrix = (2 * p * q + q * q) * itemsize
    blk = 32
    while blk < 128 and 2 * blk * per_matrix <= 48 * 1024:
        blk *= 2
    return blk


def pinv_jacobi(
    a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-inverse of a finite stack ``(B, m, n)`` by batched Jacobi; ``(X, rank)``.

    ``a`` is C-contiguous float32/float64/complex64/complex128 and is not modified;
    ``atol`` and ``rtol`` are float64 of shape ``(B,)``. With ``hermitian=True``
    (``m == n``) only the lower triangle of each matrix is read.
    """
    nbatch, m, n = a.shape
    # the kernels read C-ordered buffers (a complex one viewed as pairs of reals); the
    # Hermitian part made by the caller may be laid out otherwise
    a = np.ascontiguousarray(a)
    if not a.flags.writeable:  # numba compiles read-only arrays as another type, whose
        a = a.copy()  # code may round differently: one specialisation, the same bits
    real = np.finfo(a.dtype).dtype
    eps = np.finfo(real).eps
    consts = np.array([eps * eps, 0.0, 1.0], dtype=real)
    emax = 120 if real == np.float32 else 1000  # 2**emax stays finite in the dtype
    out = np.empty((nbatch, n, m), dtype=a.dtype)
    rank = np.empty(nbatch, dtype=np.int64)
    atol = np.ascontiguousarray(atol, dtype=np.float64)
    rtol = np.ascontiguousarray(rtol, dtype=np.float64)
    blk = _block(max(m, n), min(m, n), a.itemsize)
    if a.dtype.kind == "c":
        from .._kernels.jacobi_complex import pinv_complex

        args = (a.view(real), atol, rtol, out.view(real), rank, hermitian, blk, consts)
        pinv_complex(*args, emax, _MAX_SWEEPS)
    else:
        from .._kernels.jacobi import pinv_real

        pinv_real(a, atol, rtol, out, rank, hermitian, blk, consts, emax, _MAX_SWEEPS)
    return out, rank
