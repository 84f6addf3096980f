"""The public functions: the one place that validates and normalises input.

``pinv`` infers the array's library once, checks the shape, dtype, tolerances, method
and ``out``, then routes the clean input to a compute path: NumPy (LAPACK and compiled
kernels), or the portable Array API core, or a library's native path (``_backends``).
The paths never re-check.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from . import _finite, _methods, _tolerance
from ._backends import DASK, JAX, MLX, NUMPY, TORCH, as_numpy_input, default_float, kind_of


class PinvResult(NamedTuple):
    """``pinv(..., return_rank=True)``: the pseudo-inverse and the number of kept values.

    ``rank`` is a Python ``int`` for a single matrix, else an integer array of the
    batch shape, of the input's library.
    """

    pinv: Any
    rank: Any


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
    if kind_of(out) != kind:
        raise ValueError(
            f"out must be an array of the input's library ({kind}), got {type(out).__name__}"
        )
    if tuple(out.shape) != shape or out.dtype != dtype:
        raise ValueError(
            f"out must have shape {shape} and dtype {dtype}, "
            f"got shape {tuple(out.shape)} and dtype {out.dtype}"
        )


def _compute_numpy(
    a: np.ndarray,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple[np.ndarray, np.ndarray]:
    *batch, m, n = a.shape
    stack = np.ascontiguousarray(a.reshape(-1, m, n), dtype=dtype)
    bad = _finite.bad_members(np, stack, hermitian)
    any_bad = bool(bad.any())
    if any_bad:
        if check_finite:
            _finite.raise_if_bad(np, bad.reshape(batch))
        stack = np.where(bad[:, None, None], 0, stack)
    x, rank = _methods.run_numpy(method, stack, atol.reshape(-1), rtol.reshape(-1), hermitian)
    if any_bad:
        x[bad] = np.nan
        rank[bad] = 0
    return x.reshape(*batch, n, m), rank.reshape(batch)


def _compute_xp(
    xp: Any,
    a: Any,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple[Any, Any]:
    """The portable path: any Array API namespace, masks only, no data-dependent shape."""
    device = array_api_compat.device(a)
    a = xp.astype(a, dtype)
    bad = _finite.bad_members(xp, a, hermitian)
    if check_finite:
        _finite.raise_if_bad(xp, bad)
    a = xp.where(bad[..., None, None], xp.zeros_like(a), a)
    real = xp.float32 if dtype in (xp.float32, xp.complex64) else xp.float64
    atol_x = xp.asarray(atol, dtype=real, device=device)
    rtol_x = xp.asarray(rtol, dtype=real, device=device)
    x, rank = _methods.run_xp(xp, method, a, atol_x, rtol_x, hermitian)
    nan = xp.full_like(x, float("nan"))
    x = xp.where(bad[..., None, None], nan, x)
    return x, xp.where(bad, xp.zeros_like(rank), rank)


def pinv(
    A: Any,
    rcond: Any = None,
    *,
    atol: Any = None,
    rtol: Any = None,
    hermitian: bool = False,
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
        NumPy's positional alias of ``rtol``; passing both is a ``TypeError``.
    atol, rtol : float or real array broadcastable to the batch shape, optional
        Per matrix, singular values ``sigma <= max(atol, rtol * sigma_max)`` are treated
        as zero. ``atol=None`` is 0; ``rtol=None`` is ``max(m, n) * eps`` where ``atol``
        is not positive, else 0 (the rule of ``torch.linalg.pinv``).
    hermitian : bool
        Assume ``A`` Hermitian; only its lower triangle is read (and checked).
    out : array, optional
        Where to write the result (same library, shape ``(..., n, m)``, result dtype).
    method : {"auto", "svd", "eigh", "jacobi", "batched", "qr", "randomized"}
        ``"svd"``: LAPACK SVD (``gesdd``, else ``gesvd``), error about
        ``max(m, n) * eps * kappa`` (that of ``numpy.linalg.pinv``). ``"eigh"`` (needs
        ``hermitian=True``): LAPACK Hermitian eigensolver, the same promise.
        ``"jacobi"``: compiled batched Jacobi SVD for stacks of small matrices, error
        within 2x of ``numpy.linalg.pinv``'s. ``"batched"``: stacked LU/QR inverses for
        medium matrices, each taken only where an a-posteriori certificate proves
        every singular value is kept, else the SVD. ``"qr"``: certified Householder QR
        for full-rank matrices, ``ValueError`` if it cannot be certified. ``"randomized"``:
        certified randomized range finder for low-rank matrices, else the SVD.
        ``"auto"`` picks by size and dtype (the rule in ``_methods/__init__.py``);
        whatever it picks, the rank is the SVD rule's. On the portable path (GPU
        tensors, JAX, Array API libraries) every general method is the SVD.
    return_rank : bool
        Also return the number of kept singular values (a :class:`PinvResult`).
    check_finite : bool
        ``True``: NaN/Inf raises ``ValueError`` naming the first bad batch index.
        ``False``: those matrices get an all-NaN result (and rank 0), the rest are
        computed normally.
    stream : MLX stream or device, optional
        ``mlx.core.linalg.pinv``'s argument; only for MLX arrays.

    Returns
    -------
    X : array of shape ``(..., n, m)``, or ``PinvResult(pinv, rank)``.

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
    method = _methods.validate(method, hermitian)
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
    if math.prod(shape) == 0:
        x = xp.zeros((*batch, n, m), dtype=result_dtype, **_device_kw(xp, a))
        rank = xp.zeros(batch, dtype=xp.int64, **_device_kw(xp, a))
    elif kind == NUMPY:
        x, rank = _compute_numpy(a, atol_np, rtol_np, **options)
    elif kind == TORCH:
        x, rank = _torch.compute(a, atol_np, rtol_np, **options)
    elif kind == JAX:
        from ._backends import _jax

        x, rank = _jax.compute(a, atol_np, rtol_np, **options)
    elif kind == DASK:
        from . import _dask

        x, rank = _dask.compute(a, atol_np, rtol_np, **options)
    else:
        x, rank = _compute_xp(xp, a, atol_np, rtol_np, **options)
    if x.dtype != result_dtype:
        x = xp.astype(x, result_dtype)
    if out is not None:
        x = _write_out(out, x, kind)
    if not return_rank:
        return x
    return PinvResult(x, rank if batch else scalar_rank(rank))


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
    return pinv(input, rtol=rcond)
