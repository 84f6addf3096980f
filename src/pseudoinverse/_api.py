"""The public functions: the one place that validates and normalises input.

``pinv`` infers the array's library once, checks the shape, dtype, tolerances, method
and ``out``, then routes the clean input to a compute path: the engine's NumPy stacks
(LAPACK and compiled kernels) or portable Array API core (``_engine``), or a library's
adapter (``_backends``), which calls the engine in turn. The paths never re-check.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from . import _engine, _methods, _tolerance
from ._backends import (
    DASK,
    JAX,
    MLX,
    NUMPY,
    TORCH,
    as_numpy_input,
    default_float,
    kind_of,
    native,
)


class _Fields(NamedTuple):
    pinv: Any
    rank: Any


class PinvResult(_Fields):
    """``pinv(..., return_rank=True)``: the pseudo-inverse and the number of kept values.

    A named pair (``X, rank = pinv(A, return_rank=True)`` unpacks it). ``rank`` is a
    Python ``int`` for a single matrix, else an integer array of the batch shape, of the
    input's library. The attribute ``method`` (not part of the pair) names the method
    that ran: the one given, or the one ``method="auto"`` chose (see
    :func:`pinv`; ``None`` where the adapter does not report it).
    """

    method: str | None

    def __new__(cls, pinv: Any, rank: Any, method: str | None = None) -> PinvResult:
        self = super().__new__(cls, pinv, rank)
        self.method = method
        return self

    def __getnewargs__(self) -> tuple[Any, Any, str | None]:  # pickling keeps ``method``
        return (self.pinv, self.rank, self.method)

    def __repr__(self) -> str:
        return f"PinvResult(pinv={self.pinv!r}, rank={self.rank!r}, method={self.method!r})"


def _namespace(a: Any, kind: str) -> tuple[Any, Any]:
    """``(array, xp)`` with ``xp`` the array-api-compat namespace of the array."""
    if kind == NUMPY:
        a = as_numpy_input(a)
        return a, np
    if kind == MLX:  # converted inside the MLX adapter's differentiable forward pass
        return a, None
    return a, array_api_compat.array_namespace(a)


def _dtypes(xp: Any, dtype: Any, kind: str) -> tuple[Any, Any, float]:
    """``(compute dtype, result dtype, eps)`` for an input dtype, per SPEC's dtype rules."""
    kept = (xp.float32, xp.float64, xp.complex64, xp.complex128)
    dtype = native(dtype)  # a big-endian float64 is a float64 (Dask may hold one)
    if dtype in kept:
        return dtype, dtype, float(xp.finfo(dtype).eps)
    if xp.isdtype(dtype, ("real floating", "complex floating")) and xp.finfo(dtype).bits > 64:
        # NumPy's long double: LAPACK has no such precision; computed and returned in
        # float64/complex128, with their eps (the precision actually delivered)
        wide = xp.complex128 if xp.isdtype(dtype, "complex floating") else xp.float64
        return wide, wide, float(xp.finfo(wide).eps)
    if xp.isdtype(dtype, "real floating"):  # float16, bfloat16: computed in float32
        return xp.float32, dtype, float(xp.finfo(dtype).eps)
    if xp.isdtype(dtype, ("integral", "bool")):
        f = default_float(xp)
        return f, f, float(xp.finfo(f).eps)
    raise ValueError(f"pinv expects a numeric array, got dtype {dtype}")


def _check_out(out: Any, kind: str, shape: tuple[int, ...], dtype: Any) -> None:
    if kind == JAX:
        raise ValueError("out= cannot be used with JAX arrays: they are immutable")
    is_array = hasattr(out, "shape") and hasattr(out, "dtype")
    if not is_array or kind_of(out) != kind or (kind == NUMPY and not isinstance(out, np.ndarray)):
        error = ValueError if is_array else TypeError  # another library's array: a value
        raise error(
            f"out must be an array of the input's library ({kind}), got {type(out).__name__}"
        )
    if kind == NUMPY and not out.flags.writeable:
        raise ValueError("out must be a writeable array, got a read-only one")
    if tuple(out.shape) != shape or native(out.dtype) != dtype:
        raise ValueError(
            f"out must have shape {shape} and dtype {dtype}, "
            f"got shape {tuple(out.shape)} and dtype {out.dtype}"
        )


def pinv(
    A: Any,
    rcond: Any = None,
    hermitian: bool = False,
    *,
    atol: Any = None,
    rtol: Any = None,
    out: Any = None,
    method: str = "auto",
    return_rank: bool = False,
    check_finite: bool = True,
    stream: Any = None,
) -> Any:
    """Moore–Penrose pseudo-inverse of ``A``, for the arrays of any library.

    Parameters
    ----------
    A : array of shape ``(..., m, n)``
        NumPy array or array-like, PyTorch tensor, JAX, MLX, CuPy, Dask or any Array
        API array. The result has the same library and device.
    rcond : float or array, optional
        NumPy's positional alias of ``rtol``; passing both is a ``TypeError``. As in
        ``numpy.linalg.pinv(a, rcond, hermitian)``, it may be the second positional
        argument and ``hermitian`` the third.
    hermitian : bool
        Assume ``A`` Hermitian; only its lower triangle is read (and checked).
    atol, rtol : float or real array broadcastable to the batch shape, optional
        Per matrix, singular values ``sigma <= max(atol, rtol * sigma_max)`` are treated
        as zero. ``atol=None`` is 0; ``rtol=None`` is ``max(m, n) * eps`` where ``atol``
        is not positive, else 0: the rule of ``torch.linalg.pinv`` and the Array API
        standard. Other libraries' defaults differ: ``numpy.linalg.pinv``'s is
        ``rcond=1e-15`` (pass ``rtol=1e-15``), ``jax.numpy.linalg.pinv``'s and
        ``mlx.core.linalg.pinv``'s ``10 * max(m, n) * eps`` (pass that as ``rtol``),
        ``torch.pinverse``'s ``1e-15`` (:func:`pinverse`).
    out : array, optional
        Where to write the result (same library, shape ``(..., n, m)``, result dtype).
    method : {"auto", "svd", "eigh", "jacobi", "batched", "qr", "randomized"}
        ``"svd"``: LAPACK SVD (``gesdd``, else ``gesvd``), error about
        ``max(m, n) * eps * kappa`` (that of ``numpy.linalg.pinv``). ``"eigh"`` (needs
        ``hermitian=True``): LAPACK Hermitian eigensolver, the same promise.
        ``"jacobi"``: compiled batched Jacobi SVD for stacks of small matrices, error
        within 2x of ``numpy.linalg.pinv``'s in float64/complex128, of a float32 LAPACK
        pinv's (``torch.linalg.pinv``) in float32/complex64. ``"batched"``: stacked
        LU/QR inverses for medium matrices, each taken only where an a-posteriori certificate proves
        every singular value is kept, else the SVD. ``"qr"``: certified Householder QR
        for full-rank matrices, ``ValueError`` if it cannot be certified. ``"randomized"``:
        certified randomized range finder for low-rank matrices, else the SVD.
        ``"auto"`` picks by size and dtype (the rule in ``_methods/__init__.py``);
        whatever it picks, the rank is the SVD rule's. On the portable path (GPU
        tensors, JAX, Array API libraries) every general method is the SVD.
    return_rank : bool
        Also return the number of kept singular values (a :class:`PinvResult`).
    check_finite : bool
        ``True``: NaN/Inf raises ``numpy.linalg.LinAlgError`` (a ``ValueError``
        subclass) naming the first bad batch index.
        ``False``: those matrices get an all-NaN result (and rank 0), the rest are
        computed normally.
    stream : MLX stream or device, optional
        ``mlx.core.linalg.pinv``'s argument; only for MLX arrays.

    Returns
    -------
    X : array of shape ``(..., n, m)``, or ``PinvResult(pinv, rank)``
        The input's library and device; an ``np.matrix`` gives an ``np.matrix``. With
        ``return_rank=True``, ``PinvResult.method`` names the method that ran (what
        ``"auto"`` chose: ``"svd"``, ``"eigh"``, ``"jacobi"``, ``"batched"``, or
        ``"direct_or_svd"``/``"cholesky_or_eigh"`` for large matrices: a certified
        LU/Gram/QR or Cholesky inverse per matrix, else the SVD or eigh for that matrix).
        The logger ``"pseudoinverse"`` reports the same choice at level ``DEBUG``.

    Raises
    ------
    ValueError
        Bad shape, tolerance, method, ``out`` or ``stream``; ``method="qr"`` on a
        matrix it cannot certify to have full rank.
    TypeError
        ``rcond`` and ``rtol`` together; ``out`` not an array; ``hermitian`` not a bool.
    numpy.linalg.LinAlgError
        NaN/Inf with ``check_finite=True``, or a LAPACK failure that no other driver
        solved (a ``ValueError`` subclass).

    Notes
    -----
    float32/float64/complex64/complex128 are kept; float16 and bfloat16 are computed in
    float32 and returned in their dtype (``eps`` stays theirs); integer and bool input
    is promoted to the library's default floating dtype. Empty input gives an empty
    result. A ``gesdd`` convergence failure is retried with ``gesvd`` for that matrix.

    Differentiable in PyTorch (autograd, forward mode, ``torch.func``), JAX (``grad``,
    ``jvp``, ``jit``, ``vmap``) and MLX (``grad``, ``vjp``, ``jvp``) through the
    constant-rank Golub–Pereyra formula, finite at repeated singular values; with
    ``hermitian=True`` the gradient lies on the lower triangle that is read. Tolerances
    are constants (not differentiated). Under tracing (``jax.jit``/``vmap``,
    ``torch.func.vmap``, ``mx.compile``) values cannot be inspected: NaN/Inf input then
    gives a NaN result (as with ``check_finite=False``) instead of raising.

    Examples
    --------
    >>> import numpy as np
    >>> import pseudoinverse as pi
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> X = pi.pinv(A)
    >>> X.shape
    (2, 3)
    >>> all(np.allclose(l, r) for l, r in [(A @ X @ A, A), (X @ A @ X, X),
    ...                                    ((A @ X).T, A @ X), ((X @ A).T, X @ A)])
    True
    >>> pi.pinv(np.ones((2, 2)), return_rank=True).rank
    1
    """
    kind = kind_of(A)
    if stream is not None and kind != MLX:
        raise ValueError(f"stream= is for MLX arrays only, got a {type(A).__name__}")
    if not isinstance(hermitian, bool | np.bool_):
        raise TypeError(f"hermitian must be True or False, got {hermitian!r}")
    method = _methods.validate(method, hermitian)
    as_matrix = isinstance(A, np.matrix)  # np.matrix in, np.matrix out (as NumPy does)
    if kind == TORCH:
        from ._backends import _torch

        A = _torch.prepare(A)
    a, xp = _namespace(A, kind)
    shape = tuple(a.shape)
    if len(shape) < 2:
        raise ValueError(f"pinv expects an array of shape (..., m, n), got shape {shape}")
    *batch_list, m, n = shape
    batch = tuple(batch_list)
    if hermitian and m != n:
        raise ValueError(f"hermitian=True needs square matrices, got shape {shape}")
    if kind == MLX:
        from ._backends import _mlx

        dtype, result_dtype, eps = _mlx.dtypes(a.dtype)  # MLX's own: bfloat16's eps
    else:
        dtype, result_dtype, eps = _dtypes(xp, a.dtype, kind)
    atol_np, rtol_np = _tolerance.resolve(rcond, atol, rtol, eps=eps, m=m, n=n, batch_shape=batch)
    if kind != JAX and (_tolerance.is_traced(atol_np) or _tolerance.is_traced(rtol_np)):
        raise TypeError(
            f"a traced JAX tolerance needs a JAX array A (under jax.jit/vmap), got a {kind} A"
        )
    if kind == MLX:
        return _mlx.pinv(
            A,
            atol_np,
            rtol_np,
            dtype=dtype,
            result_dtype=result_dtype,
            hermitian=hermitian,
            method=method,
            check_finite=check_finite,
            out=out,
            return_rank=return_rank,
            stream=stream,
        )
    if out is not None:
        _check_out(out, kind, (*batch, n, m), result_dtype)
    options = dict(dtype=dtype, hermitian=hermitian, method=method, check_finite=check_finite)
    chosen = _methods.chosen_name(method, hermitian, (math.prod(batch), m, n), dtype)
    if math.prod(shape) == 0:
        # the transpose of the empty input: the right shape, and for a tensor that
        # requires grad, a result with a grad_fn (as torch.linalg.pinv gives)
        if kind == TORCH:
            x = a.mT.to(result_dtype, copy=True)
        else:
            x = xp.zeros((*batch, n, m), dtype=result_dtype, **_device_kw(xp, a))
        rank = xp.zeros(batch, dtype=xp.int64, **_device_kw(xp, a))
    elif kind == NUMPY:
        x, rank = _engine.compute_numpy(a, atol_np, rtol_np, **options)
    elif kind == TORCH:
        x, rank = _torch.compute(a, atol_np, rtol_np, **options)
        if not _torch._numpy_ok(a):
            chosen = _methods.chosen_name(method, hermitian, (), dtype, portable=True)
    elif kind == JAX:
        from ._backends import _jax

        x, rank = _jax.compute(a, atol_np, rtol_np, **options)
        chosen = _methods.chosen_name(method, hermitian, (), dtype, portable=True)
    elif kind == DASK:
        from . import _dask

        x, rank = _dask.compute(a, atol_np, rtol_np, **options)
    else:
        x, rank = _engine.compute_xp(xp, a, atol_np, rtol_np, **options)
        chosen = _methods.chosen_name(method, hermitian, (), dtype, portable=True)
    if x.dtype != result_dtype:
        x = xp.astype(x, result_dtype)
    if out is not None:
        x = _write_out(out, x, kind)
    elif as_matrix:
        x = np.asmatrix(x)
    if not return_rank:
        return x
    return PinvResult(x, rank if batch else scalar_rank(rank), chosen)


def scalar_rank(rank: Any) -> Any:
    """A single matrix's rank as a Python ``int``; traced ranks (jit, vmap) stay arrays."""
    try:
        return int(rank)
    except (TypeError, RuntimeError, ValueError):  # a tracer has no concrete value
        return rank


def _device_kw(xp: Any, a: Any) -> dict[str, Any]:
    return {} if xp is np else {"device": array_api_compat.device(a)}


def _write_out(out: Any, x: Any, kind: str) -> Any:
    if kind == TORCH:
        with __import__("torch").no_grad():
            out.copy_(x)
        return out
    out[...] = x
    return out


def pinverse(input: Any, rcond: float = 1e-15) -> Any:
    """``torch.pinverse``'s API: ``pinv(input, rtol=rcond, atol=0)``, for any array.

    Singular values ``sigma <= rcond * sigma_max`` are treated as zero.

    Examples
    --------
    >>> import numpy as np
    >>> import pseudoinverse as pi
    >>> A = np.diag([1.0, 1e-20])
    >>> pi.pinverse(A)
    array([[1., 0.],
           [0., 0.]])
    """
    return pinv(input, rcond)  # rcond is rtol's alias: errors name rcond
