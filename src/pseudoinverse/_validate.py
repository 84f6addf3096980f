"""Validation: the public functions' arguments, checked once, into one :class:`Request`.

Every public function (``pinv``, ``pinverse``, ``pinv_solve``, ``damped_pinv``,
``damped_pinv_solve``) builds a ``Request`` here and hands it to the array library's
adapter (``_backends.adapter``); nothing below re-checks. A request holds the array in
the adapter's input form (NumPy for array-likes, the tensor itself for torch, ...), its
batch shape and matrix size, the compute and result dtypes, the tolerances resolved to
the batch shape (``_tolerance``), and for a solve the right-hand side ``B`` broadcast to
``(*batch, m, k)``, for damping ``lambda`` of the batch shape.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import array_api_compat
import numpy as np

from . import _methods, _tolerance
from ._backends import JAX, MLX, NUMPY, TORCH, as_numpy_input, default_float, kind_of, native


@dataclass(frozen=True)
class Request:
    """One validated call: what an adapter needs, and nothing it must check again."""

    kind: str  # the array's library (``_backends`` names)
    a: Any  # (*batch, m, n), in the adapter's input form, not yet cast
    xp: Any  # the array-api-compat namespace (None for MLX, which is not Array API)
    batch: tuple[int, ...]
    m: int
    n: int
    dtype: Any  # compute dtype
    result_dtype: Any
    eps: float  # of the input's own real dtype (float16's for float16)
    hermitian: bool = False
    method: str = "auto"
    check_finite: bool = True
    atol: Any = None  # float64 NumPy (or traced JAX) arrays of the batch shape
    rtol: Any = None
    stream: Any = None  # MLX only
    b: Any = None  # a solve's right-hand side, (*batch, m, k), in the library of ``a``
    vector: bool = False  # B was (..., m): the solution is returned as (..., n)
    damping: Any = None  # lambda of the batch shape: float64 NumPy, or the library's array

    def with_(self, **changes: Any) -> Request:
        return replace(self, **changes)


def namespace(a: Any, kind: str) -> tuple[Any, Any]:
    """``(array, xp)`` with ``xp`` the array-api-compat namespace of the array."""
    if kind == NUMPY:
        a = as_numpy_input(a)
        return a, np
    if kind == MLX:  # converted inside the MLX adapter's differentiable forward pass
        return a, None
    return a, array_api_compat.array_namespace(a)


def dtypes(xp: Any, dtype: Any) -> tuple[Any, Any, float]:
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


def check_out(out: Any, kind: str, shape: tuple[int, ...], dtype: Any) -> None:
    """``out=``: an array of the input's library, writeable, of the result's shape/dtype."""
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


def _matrix(A: Any, kind: str, hermitian: Any, name: str) -> Request:
    """The checks every public function shares: library, shape, dtype, ``hermitian``."""
    if not isinstance(hermitian, bool | np.bool_):
        raise TypeError(f"hermitian must be True or False, got {hermitian!r}")
    if kind == TORCH:
        A = A.resolve_conj().resolve_neg()  # NumPy must see the real values
    a, xp = namespace(A, kind)
    shape = tuple(a.shape)
    if len(shape) < 2:
        raise ValueError(f"{name} expects an array of shape (..., m, n), got shape {shape}")
    *batch, m, n = shape
    if hermitian and m != n:
        raise ValueError(f"hermitian=True needs square matrices, got shape {shape}")
    if kind == MLX:
        from ._backends import _mlx

        dtype, result_dtype, eps = _mlx.dtypes(a.dtype)  # MLX's own: bfloat16's eps
    else:
        dtype, result_dtype, eps = dtypes(xp, a.dtype)
    return Request(kind, a, xp, tuple(batch), m, n, dtype, result_dtype, eps, bool(hermitian))


def pinv_request(
    A: Any,
    rcond: Any,
    hermitian: Any,
    atol: Any,
    rtol: Any,
    method: Any,
    check_finite: bool,
    stream: Any,
    name: str = "pinv",
) -> Request:
    """Validate ``pinv``'s arguments (``pinv_solve`` adds ``B``: :func:`with_rhs`)."""
    kind = kind_of(A)
    if stream is not None and kind != MLX:
        raise ValueError(f"stream= is for MLX arrays only, got a {type(A).__name__}")
    req = _matrix(A, kind, hermitian, name)
    method = _methods.validate(method, req.hermitian)
    atol_np, rtol_np = _tolerance.resolve(
        rcond, atol, rtol, eps=req.eps, m=req.m, n=req.n, batch_shape=req.batch
    )
    if kind != JAX and (_tolerance.is_traced(atol_np) or _tolerance.is_traced(rtol_np)):
        raise TypeError(
            f"a traced JAX tolerance needs a JAX array A (under jax.jit/vmap), got a {kind} A"
        )
    return req.with_(
        method=method, check_finite=bool(check_finite), atol=atol_np, rtol=rtol_np, stream=stream
    )


def _promote(req: Request, b_dtype: Any) -> tuple[Any, Any]:
    """Compute and result dtypes of ``A`` and ``B`` together (``eps`` stays ``A``'s)."""
    if req.kind == MLX:
        import mlx.core as mx

        from ._backends import _mlx

        bd, brd, _ = _mlx.dtypes(b_dtype)

        def promote(x: Any, y: Any) -> Any:  # MLX's own promotion rule
            return (mx.zeros((), dtype=x) + mx.zeros((), dtype=y)).dtype

        return promote(req.dtype, bd), promote(req.result_dtype, brd)
    xp = req.xp
    bd, brd, _ = dtypes(xp, b_dtype)
    return xp.result_type(req.dtype, bd), xp.result_type(req.result_dtype, brd)


def _broadcast(lib: Any, x: Any, shape: tuple[int, ...]) -> Any:
    return x if tuple(x.shape) == shape else lib.broadcast_to(x, shape)


def with_rhs(req: Request, B: Any, name: str = "pinv_solve") -> Request:
    """Add the right-hand side: ``B`` of shape ``(..., m)`` or ``(..., m, k)``.

    ``B`` is a vector when it is 1-D, or has one dimension fewer than ``A`` and the shape
    ``A.shape[:-1]`` (``torch.linalg.solve``'s rule); otherwise a stack of matrices. The
    batch dimensions of ``A`` and ``B`` broadcast (both are broadcast to the result's).
    """
    kind = req.kind
    if kind_of(B) != kind:  # array-likes count as NumPy: a tensor B with a NumPy A does not
        raise ValueError(
            f"{name} expects B of the same library as A ({kind}), got {type(B).__name__}"
        )
    if kind == NUMPY:
        B = as_numpy_input(B)
    elif kind == TORCH:
        B = B.resolve_conj().resolve_neg()
    bshape = tuple(B.shape)
    a_shape = (*req.batch, req.m, req.n)
    vector = len(bshape) == 1 or (len(bshape) == len(a_shape) - 1 and bshape == tuple(a_shape[:-1]))
    if (
        len(bshape) < 1
        or (vector and bshape[-1] != req.m)
        or (not vector and (len(bshape) < 2 or bshape[-2] != req.m))
    ):
        raise ValueError(
            f"{name} expects B of shape (..., {req.m}) or (..., {req.m}, k) for A of shape "
            f"{a_shape}, got shape {bshape}"
        )
    b_batch = bshape[:-1] if vector else bshape[:-2]
    try:
        batch = tuple(np.broadcast_shapes(req.batch, b_batch))
    except ValueError:
        raise ValueError(
            f"{name}: the batch shapes of A {req.batch} and B {b_batch} do not broadcast"
        ) from None
    if kind == MLX:
        import mlx.core as mx

        lib = mx
        if vector:
            B = mx.expand_dims(B, -1)
    else:
        if kind != NUMPY:
            array_api_compat.array_namespace(B)  # an Array API array, like A
        lib = np if kind == NUMPY else req.xp
        if vector:
            B = lib.reshape(B, (*b_batch, req.m, 1)) if kind != TORCH else B.unsqueeze(-1)
    dtype, result_dtype = _promote(req, B.dtype)
    k = B.shape[-1]
    a = _broadcast(lib, req.a, (*batch, req.m, req.n))
    b = _broadcast(lib, B, (*batch, req.m, k))
    atol, rtol = req.atol, req.rtol
    # tolerances follow the broadcast batch (a damped request has none: its damping,
    # of A's batch shape, broadcasts in the engine like A itself)
    if batch != req.batch and atol is not None:
        if isinstance(atol, np.ndarray) and isinstance(rtol, np.ndarray):
            atol, rtol = (np.broadcast_to(t, batch) for t in (atol, rtol))
        else:  # traced JAX tolerances
            import jax.numpy as jnp

            atol, rtol = (jnp.broadcast_to(t, batch) for t in (atol, rtol))
    return req.with_(
        a=a,
        b=b,
        vector=vector,
        batch=batch,
        dtype=dtype,
        result_dtype=result_dtype,
        atol=atol,
        rtol=rtol,
    )


def damped_request(A: Any, damping: Any, hermitian: Any, check_finite: bool) -> Request:
    """Validate ``damped_pinv``'s arguments: ``damping`` is lambda (not lambda squared)."""
    kind = kind_of(A)
    req = _matrix(A, kind, hermitian, "damped_pinv")
    lam = _tolerance.resolve_damping(damping, kind, req.batch)
    return req.with_(damping=lam, check_finite=bool(check_finite))
