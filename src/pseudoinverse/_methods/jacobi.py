"""The ``"jacobi"`` method: batched one-sided Jacobi SVD, compiled and SIMD across the batch.

For stacks of many small matrices (up to about 16 x 16), where LAPACK's per-matrix
overhead dominates. The kernels (``_kernels/jacobi.py``, ``_kernels/jacobi_complex.py``;
for at most ``_TINY_MAX`` rows and columns the written-out, per-shape kernels of
``_kernels/tiny.py``, ``tiny_complex.py`` and ``tiny_single.py``) are numba functions,
imported at the first call only (``import pseudoinverse`` never imports numba) and
compiled with ``cache=True``: the general kernels once per dtype, a tiny kernel once per
shape and dtype, at its first use.

Accuracy promise (checked by ``tests/test_kernels.py``):

* float64 / complex128: one-sided Jacobi is backward stable with singular values of
  high relative accuracy; the error against an exact reference is within 2x that of
  ``numpy.linalg.pinv`` (plus a floor of ``10 eps ||A^+||``), and the four Penrose
  conditions hold at dtype precision.
* float32 / complex64 are computed in float64 from the exact float32 entries and
  rounded once: the error is within 2x that of a float32 LAPACK pseudo-inverse
  (``torch.linalg.pinv``, about ``n eps32 kappa``) on every member, and about the
  rounding of the result to float32. Small real float32 stacks sweep in float32 and
  refine in float64 (``tiny_single``) where a bound proves the result as accurate; the
  members it cannot prove are computed again by the float64 kernel.
* Rank decisions follow ``sigma > max(atol, rtol * sigma_max)`` exactly on the computed
  singular values (which carry an absolute error of a few ``eps * sigma_max``).
* ``hermitian=True`` reads the lower triangle only (the strict upper one is never
  touched, the diagonal's imaginary part is ignored) and takes the SVD of that Hermitian
  matrix: its singular values are the eigenvalue moduli, its SVD pseudo-inverse is
  ``V diag(1/w kept) V^H``, so the threshold applies to ``|eigenvalue|`` as specified.

Speed (one thread, 1e5 matrices, ratio to the faster of numpy.linalg.pinv and
torch.linalg.pinv, on a shared 2-vCPU machine): 3x3 20x / 24x / 14x (93 / 70 / 193 ns
a matrix), 4x4 16x / 21x / 9x, 6x7 8x / 14x / 4.6x (float64 / float32 / complex128);
16x16 (1e4) 1.6x / 3.3x / 1.8x. For 64x64, ``supports`` says no: LAPACK
wins there.

Compile time of the first call in a fresh process (measured, machine under load):
about 12 s per kernel (real or complex, per precision) with an empty numba cache;
0.8 s with a warm cache, nearly all of it ``import numba``.

``solve_jacobi`` (``pinv(A) @ b`` with the same rank) and ``damped_jacobi`` (the
Tikhonov inverse, or it times ``b``) finish the same sweeps differently
(``jacobi_real``/``jacobi_complex``; the tiny kernels for the solve too);
``damped_jacobi`` takes a float64 Cholesky route
for float32/complex64 where a proved bound allows (``_kernels/damped.py``).

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

from .parallel import over_batch, stack_work

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

#: ``u32 / u64 = 2**-24 / 2**-53``: the float64 Cholesky route is taken where its error
#: bound, ``sqrt(s) ((p + 3s + 3) K + 2p) u64``, stays within ``u32`` (``damped_jacobi``).
_GRAM_LIMIT = 2.0**29


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
    zeros = np.zeros(a.shape[0])
    return _run(a, None, atol, rtol, zeros, False, hermitian)


def _run(a, b, atol, rtol, lam, damped, hermitian):
    """The kernels' entry: ``(out, rank)``; ``b`` None forms the matrix.

    Stacks (real or complex) of at most ``_TINY_MAX`` rows and columns take the
    written-out kernel of ``_kernels/tiny.py`` (the pseudo-inverse and its solve; the
    damped inverse takes ``jacobi_real``/``jacobi_complex``), the others
    ``jacobi_real``/``jacobi_complex``.
    """
    from .._kernels import jacobi as kernels

    nbatch, m, n = a.shape
    a, b, out = _buffers(a, b)
    rank = np.zeros(nbatch, dtype=np.int64)
    # fresh writeable copies: a read-only array is another numba type (another compile)
    atol, rtol, lam = (np.array(t, dtype=np.float64, order="C") for t in (atol, rtol, lam))
    p, q = max(m, n), min(m, n)
    if not damped and p <= _TINY_MAX:
        _run_tiny(a, b, atol, rtol, out, rank, hermitian)
        return out, rank
    real = np.finfo(a.dtype).dtype
    tol = kernels.TOL32 if real == np.float32 else kernels.TOL64
    if a.dtype.kind == "c":
        from .._kernels.jacobi_complex import jacobi_complex as kernel

        blk, ar, br, outr = _block(p, q, 16), a.view(real), b.view(real), out.view(real)
    else:
        kernel, blk, ar, br, outr = kernels.jacobi_real, _block(p, q, 8), a, b, out
    args = (ar, br, atol, rtol, lam, damped, outr, rank, hermitian, blk, kernels.pair_order(q))
    # the batch on the machine's threads (parallel.py): positions of the batched arrays
    over_batch(kernel, (*args, tol * tol, _MAX_SWEEPS), _BATCHED, stack_work(a.shape), blk, (6,))
    return out, rank


def _run_tiny(a, b, atol, rtol, out, rank, hermitian):
    """``_kernels/tiny.py``'s kernel for the stack's shape. float32 (not Hermitian) runs
    its float32 sweeps and float64 refinement (``tiny_single``); the members that one
    refuses are computed again by the float64 kernel (their result and rank replaced)."""
    from .._kernels import jacobi as kernels
    from .._kernels import tiny
    from .._kernels.tiny_base import BLK

    _, m, n = a.shape
    p, q = max(m, n), min(m, n)
    cplx = a.dtype.kind == "c"
    real = np.finfo(a.dtype).dtype
    pairs = kernels.pair_order(q)
    if real == np.float32 and not cplx and not hermitian:
        eps = np.float32(np.finfo(np.float32).eps)
        run = tiny.kernel(p, q, single=True)
        args = (a, b, atol, rtol, out, rank, False, pairs, eps * eps, _s0(q, real), _MAX_SWEEPS)
        done = over_batch(run, args, _TINY_BATCHED, stack_work(a.shape), BLK)
        refused = np.concatenate([part.start + r for part, r in done])  # chunk-relative
        if len(refused) == 0:
            return
        sub_out = np.empty((len(refused), *out.shape[1:]), dtype=out.dtype)
        sub_rank = np.zeros(len(refused), dtype=np.int64)
        sub_b = np.ascontiguousarray(b[refused])
        sub = (np.ascontiguousarray(a[refused]), sub_b, atol[refused], rtol[refused])
        _run_tiny_wide(*sub, sub_out, sub_rank, p, q, pairs)
        out[refused], rank[refused] = sub_out, sub_rank
        return
    tol = kernels.TOL32 if real == np.float32 else kernels.TOL64
    run = tiny.kernel(p, q, cplx)
    a64, b64, out64 = _wide(a, b, out)
    args = (out64.view(np.float64), rank, hermitian, pairs, tol * tol, _s0(q, real, cplx))
    args = (a64.view(np.float64), b64.view(np.float64), atol, rtol, *args, _MAX_SWEEPS)
    over_batch(run, args, _TINY_BATCHED, stack_work(a.shape), BLK)
    if out64 is not out:
        out[...] = out64  # rounds as the kernel's own float32 store would


def _wide(a, b, out):
    """float32/complex64 buffers as float64/complex128 copies (exact), so that each
    written-out kernel compiles for float64 only (it computes in float64 anyway: the
    float32 specialisation doubled the cold compile); float64 ones as they are."""
    if np.finfo(a.dtype).dtype == np.float64:
        return a, b, out
    wide = np.complex128 if a.dtype.kind == "c" else np.float64
    return a.astype(wide), b.astype(wide), np.empty(out.shape, dtype=wide)


def _run_tiny_wide(a, b, atol, rtol, out, rank, p, q, pairs):
    """The float64 kernel on float32 members (``TOL32``), for those ``tiny_single`` refused."""
    from .._kernels import jacobi as kernels
    from .._kernels import tiny

    tol2 = kernels.TOL32 * kernels.TOL32
    a64, b64, out64 = _wide(a, b, out)
    tiny.kernel(p, q)(a64, b64, atol, rtol, out64, rank, False, pairs, tol2, _S0_32[q], _MAX_SWEEPS)
    out[...] = out64


#: Positions of the batched arrays among the kernels' arguments (``parallel.over_batch``):
#: ``a, b, atol, rtol, lam`` and ``out, rank`` of ``jacobi_real``/``jacobi_complex``,
#: ``a, b, atol, rtol, out, rank`` of the ``tiny`` kernels.
_BATCHED = (0, 1, 2, 3, 4, 6, 7)
_TINY_BATCHED = (0, 1, 2, 3, 4, 5)

#: Largest ``max(m, n)`` that takes the written-out kernel (``_kernels/tiny.py``): one
#: compiled kernel per shape, each a few seconds to compile cold.
_TINY_MAX = 8


def _s0(q: int, real: np.dtype, cplx: bool = False) -> int:
    """Sweeps every lane of a ``tiny`` block runs before the check: about the most a
    random matrix needs, so that few lanes need the second pass (measured on Gaussian
    stacks: 3 x 3 float64 needs 4 in a third of the matrices, 8 x 8 float64 6 in 0.1%;
    float32's looser threshold needs a sweep less for some sizes)."""
    return _S0_32[q] if real == np.float32 and not cplx else _S0_64[q]


_S0_64 = {1: 0, 2: 2, 3: 4, 4: 4, 5: 5, 6: 5, 7: 6, 8: 6}
_S0_32 = {1: 0, 2: 2, 3: 3, 4: 4, 5: 4, 6: 5, 7: 5, 8: 5}


def solve_jacobi(
    a: np.ndarray,
    b: np.ndarray,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    hermitian: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """``pinv_jacobi(a)[0] @ b`` without forming the pseudo-inverse; ``(x, rank)``.

    Parameters
    ----------
    a : ndarray, shape (B, m, n)
        A finite C-contiguous stack, float32/float64/complex64/complex128; not modified.
        With ``hermitian=True`` (``m == n``) only the lower triangle is read.
    b : ndarray, shape (B, m, k)
        Right-hand sides of ``a``'s dtype, ``k >= 1``.
    atol, rtol : ndarray, shape (B,)
        float64 tolerances: ``sigma > max(atol, rtol * sigma_max)`` is kept.

    Returns
    -------
    x : ndarray, shape (B, n, k)
        The minimum-norm least-squares solutions ``A^+ b``.
    rank : ndarray of int64, shape (B,)
        Equal to ``pinv_jacobi``'s bit for bit: the same sweeps give the same singular
        values (tested on every case of ``tests/test_kernels_solve.py``).

    Notes
    -----
    After the sweeps ``W = U Sigma``; tall (``m >= n``) ``A^+ b = V diag(f^2) W^H b``,
    wide (the kernel works on ``A^H = W V^H``) ``A^+ b = W diag(f^2) V^H b``, with
    ``f = 1/sigma`` kept, else 0. Cost: ``O(q (m + n) k)`` per matrix after the sweeps
    instead of ``O(q m n)`` for the matrix and ``O(m n k)`` for the product.

    Accuracy: that of ``pinv_jacobi`` (see the module) applied to ``b``: both are within
    ``O(p eps kappa)`` of the exact solution, so of each other (relative to
    ``||A^+|| ||b||``; rounded in another order, ``f^2 W^H b`` against ``f (f W)^H b``).

    Examples
    --------
    >>> a = np.array([[[2.0, 0.0], [0.0, 0.0]]])
    >>> x, rank = solve_jacobi(a, np.ones((1, 2, 1)), np.zeros(1), np.full(1, 1e-15))
    >>> x[0, :, 0], rank
    (array([0.5, 0. ]), array([1]))
    """
    zeros = np.zeros(a.shape[0])
    return _run(a, b, atol, rtol, zeros, False, hermitian)


def damped_jacobi(
    a: np.ndarray,
    damping: np.ndarray,
    b: np.ndarray | None = None,
    *,
    hermitian: bool = False,
    gram: bool = True,
) -> np.ndarray:
    """The damped (Tikhonov) inverse ``V diag(sigma / (sigma^2 + lambda^2)) U^H`` (times ``b``).

    Parameters
    ----------
    a : ndarray, shape (B, m, n)
        A finite C-contiguous stack, float32/float64/complex64/complex128; not modified.
        With ``hermitian=True`` (``m == n``) only the lower triangle is read; the SVD of
        that Hermitian matrix gives ``V diag(w / (w^2 + lambda^2)) V^H`` with the signed
        eigenvalues ``w``.
    damping : ndarray, shape (B,)
        float64 ``lambda >= 0`` (not its square). ``lambda = 0`` gives
        ``pinv_jacobi(a, 0, 0)`` to rounding, ``p eps kappa`` (a separately compiled
        kernel: the bits may differ by its contractions; a column with
        ``sigma^2 + lambda^2 == 0`` contributes 0, never NaN).
    b : ndarray, shape (B, m, k), optional
        Right-hand sides of ``a``'s dtype: the result is ``X @ b``, computed without
        forming ``X``.

    gram : bool
        Allow the float64 Cholesky route (float32/complex64, not Hermitian) where its
        bound holds; ``False`` forces Jacobi.

    Returns
    -------
    ndarray, shape (B, n, m) (``X``) or (B, n, k) (``X @ b``)

    Examples
    --------
    >>> a = np.array([[[2.0, 0.0], [0.0, 0.0]]])
    >>> damped_jacobi(a, np.array([1.0]))[0]  # 2 / (4 + 1) and 0 / (0 + 1)
    array([[0.4, 0. ],
           [0. , 0. ]])

    Notes
    -----
    The kernel scales each matrix by a power of two ``s`` (exact) and ``lambda`` with it:
    ``X(sA, s lambda) = X(A, lambda) / s``.

    With ``kappa_lambda = ||A||_2 / ((sigma_min^2 + lambda^2) ||X||_2)`` (``sigma_min``
    the least of the ``min(m, n)`` singular values, 0 if singular; ``kappa_0 = kappa``,
    ``kappa_lambda ~ 1`` for ``lambda >= sigma_max``, ``~ ||A||^2 / lambda^2`` for a
    singular ``A`` and small ``lambda``), the first-order condition number of ``X``:

    * Jacobi route (every dtype): ``||X - X_ref||_F / ||X_ref||_F <= max(16, m, n) eps
      kappa_lambda``; measured worst 7 eps kappa_lambda (shapes up to 12 x 10, kappa
      1e2..1e12, singular, lambda 1e-8..100, against 40-digit mpmath). A flat "50 eps
      for every lambda" is not attainable by any backward-stable method: for singular
      ``A`` and ``lambda = 1e-8`` the problem itself has ``kappa_lambda ~ 1e16``.
    * float64 Cholesky route (float32/complex64, ``hermitian=False``, ``gram=True``):
      ``<= eps32 kappa_lambda`` (proved below; measured 0.4 eps32 kappa_lambda, that is
      the float32 rounding of the result). Where the bound does not hold (``lambda``
      small against ``||A||_F``, ``lambda = 0``) the matrix goes the Jacobi route.
      For comparison, the float32 normal-equations form
      ``J^T inv(J J^T + lambda^2 I)`` (torch) errs by up to 8e-2 relative on singular
      6 x 7 at ``lambda = 1e-3`` and returns Inf/NaN at ``lambda = 1e-8``.

    The Cholesky route's bound: ``M = A A^H + lambda^2 I`` (``m <= n``) or
    ``A^H A + lambda^2 I`` of order ``s = min(m, n)``, inner dimension ``p = max(m, n)``,
    everything in float64 (unit roundoff ``u``) from exact float32 entries. Forming
    ``M`` errs by ``gamma_p |A||A^H|`` (Higham, *Accuracy and Stability*, 2nd ed.,
    eq. 3.13), the Cholesky factorisation and the two triangular solves (reciprocal
    pivots: one more rounding) by ``gamma_{3s+2} |L||L^H|`` (Thm 10.4), and
    ``|| |L||L^H| ||_2 <= ||L||_F^2 = trace(M)``; so ``||dM||_2 <= (p + 3s + 3) u
    (||A||_F^2 + s lambda^2)`` and ``||dM|| ||M^{-1}|| <= (p + 3s + 3) u K`` with
    ``K = (||A||_F^2 + s lambda^2) / lambda^2`` (``||M^{-1}|| <= 1/lambda^2``). The
    products with ``A^H`` add ``2 gamma_p``; ``||A|| ||M^{-1}|| = kappa_lambda ||X||``;
    rank ``<= s`` costs ``sqrt(s)`` from 2-norm to Frobenius. Hence (to first order)
    ``||dX||_F / ||X||_F <= u32 + sqrt(s) ((p + 3s + 3) K + 2p) u kappa_lambda``, and
    the route is taken per matrix only where ``sqrt(s) ((p + 3s + 3) K + 2p) <=
    u32 / u = 2**29``: then the error is ``<= u32 (1 + kappa_lambda) <= eps32
    kappa_lambda``. (6 x 7 standard normal: ``lambda >~ 2.5e-3``.) Complex64 runs the
    real kernel on ``[[Re A, -Im A], [Im A, Re A]]`` (bound on the doubled sizes).
    The Cholesky route is about 4x faster than float32 Jacobi for 6 x 7.
    """
    damping = np.array(damping, dtype=np.float64, order="C")  # writeable: one numba type
    if gram and not hermitian and a.dtype in (np.float32, np.complex64):
        out, ok = gram_damped(a, damping, b)
        if ok.all():
            return out
        redo = ~ok
        sub = None if b is None else np.ascontiguousarray(b[redo])
        out[redo] = damped_jacobi(np.ascontiguousarray(a[redo]), damping[redo], sub, gram=False)
        return out
    zeros = np.zeros(a.shape[0])
    return _run(a, b, zeros, zeros, damping, True, hermitian)[0]


def _realify(a: np.ndarray) -> np.ndarray:
    """``[[Re A, -Im A], [Im A, Re A]]``: its damped inverse is that of ``A``, realified."""
    re, im = a.real, a.imag
    return np.ascontiguousarray(np.block([[re, -im], [im, re]]))


def gram_damped(a, damping, b):
    """The float64 Cholesky route of ``damped_jacobi`` for float32/complex64: ``(out, ok)``."""
    from .._kernels.damped import gram_damped as kernel

    _, m, n = a.shape
    if a.dtype.kind == "c":  # the real kernel on the realified matrix (exact in float32)
        ar = _realify(a)
        br = None if b is None else np.ascontiguousarray(np.concatenate([b.real, b.imag], 1))
        xr, ok = gram_damped(ar, damping, br)
        if b is None:
            return np.ascontiguousarray(xr[:, :n, :m] + 1j * xr[:, n:, :m]), ok
        return np.ascontiguousarray(xr[:, :n] + 1j * xr[:, n:]), ok
    a, b, out, ok = kernel_buffers(a, b)
    limit = _GRAM_LIMIT / np.sqrt(min(m, n))
    damping = np.array(damping, dtype=np.float64, order="C")  # writeable: one numba type
    over_batch(
        kernel,
        (a, b, damping, out, ok, limit),
        (0, 1, 2, 3, 4),
        stack_work(a.shape),
        128,
        outputs=(3,),
    )
    return out, ok


def kernel_buffers(a: np.ndarray, b: np.ndarray | None):
    """``(a, b, out, ok)`` for the stack kernels that compute ``X`` (``b is None``: ``b``
    is then an empty ``(B, m, 0)``) or ``X @ b``: C-contiguous and writeable (numba
    compiles a read-only array as another type, another compile), ``out`` ``(B, n, m)``
    or ``(B, n, k)`` and the ``ok`` flags, uninitialised."""
    a, b, out = _buffers(a, b)
    return a, b, out, np.empty(a.shape[0], dtype=np.bool_)


def _buffers(a: np.ndarray, b: np.ndarray | None):
    """``(a, b, out)`` of :func:`kernel_buffers`."""
    nbatch, m, n = a.shape
    a = _writeable(a)
    b = np.empty((nbatch, m, 0), dtype=a.dtype) if b is None else _writeable(b, a.dtype)
    out = np.empty((nbatch, n, b.shape[2] if b.shape[2] else m), dtype=a.dtype)
    return a, b, out


def _writeable(x: np.ndarray, dtype=None) -> np.ndarray:
    """C-contiguous and writeable: numba compiles a read-only array as another type,
    whose code may round differently (one specialisation, the same bits)."""
    x = np.ascontiguousarray(x, dtype=dtype)
    return x if x.flags.writeable else x.copy()
