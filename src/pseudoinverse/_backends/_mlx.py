"""MLX: arrays in and out, ``stream=`` honoured, differentiable.

MLX's CPU arrays are shared with NumPy, so the NumPy path (LAPACK, compiled kernels)
computes the forward pass, in float64 for float64 input (``mlx.core.linalg.pinv``
takes float32 and float64 only), and the result comes back as an MLX array of the
input's dtype. MLX has
complex64 (``mlx.core.linalg.pinv`` rejects complex; this does not) and no complex128.
float16 and bfloat16 are computed in float32 with their own ``eps`` in the default
``rtol``; integer and bool input becomes MLX's default float32.

The pseudo-inverse is an ``mx.custom_function`` whose ``vjp``/``jvp`` are the
Golub–Pereyra formula in MLX operations (``_autodiff``), so ``mx.grad``, ``mx.vjp``,
``mx.jvp`` and ``mx.vmap`` work (``mlx.core.linalg.pinv`` cannot be differentiated).
``mx.compile`` cannot trace it: the forward pass reads the values through NumPy.

NaN/Inf: the bad members are found on the raw input in MLX operations (with
``hermitian=True``: NaN/Inf in the lower triangle, a NaN imaginary part of the diagonal
included, as on the NumPy path), computed as zero matrices and their results set to NaN
with ``mx.where``, so gradients at the other members stay finite. ``check_finite=True``
raises on concrete arrays; under ``mx.vmap``/``mx.compile`` the bad members get NaN.

``stream``: MLX's SVD and eigensolver have no GPU kernels, and MLX's GPU has no
float64, so the forward pass always runs on the CPU; the derivative's matrix products
and the dtype conversions run on ``stream`` when it is a CPU stream or an available GPU
(float64 and complex stay on the CPU). A GPU stream never fails for lack of a GPU.
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

from .. import _finite

# MLX compute dtype -> NumPy dtype (MLX has no complex128; bfloat16 has no NumPy twin).
_TO_NP = {mx.float32: np.float32, mx.float64: np.float64, mx.complex64: np.complex64}


def dtypes(dtype: Any) -> tuple[Any, Any, float]:
    """``(compute dtype, result dtype, eps)`` of an MLX dtype, per SPEC's dtype rules.

    The compute dtype is an MLX dtype; ``eps`` is that of the input's own real dtype
    (bfloat16's ``2**-7`` for bfloat16, although it is computed in float32).
    """
    if dtype in _TO_NP:
        real = mx.float32 if dtype == mx.complex64 else dtype
        return dtype, dtype, float(mx.finfo(real).eps)
    if dtype in (mx.float16, mx.bfloat16):
        return mx.float32, dtype, float(mx.finfo(dtype).eps)
    if dtype == mx.bool_ or mx.issubdtype(dtype, mx.integer):
        return mx.float32, mx.float32, float(mx.finfo(mx.float32).eps)
    raise ValueError(f"pinv expects a numeric array, got dtype {dtype}")


def _ops_stream(stream: Any, dtype: Any) -> Any:
    """Where MLX operations may run: ``stream`` unless it is a GPU that is absent or
    cannot do ``dtype`` (MLX's GPU has no float64, and no GPU linear algebra)."""
    if stream is None:
        return mx.cpu
    device = getattr(stream, "device", stream)  # a Stream, a Device or a DeviceType
    kind = getattr(device, "type", device)
    if kind == mx.cpu:
        return stream
    if dtype in (mx.float64, mx.complex64) or not mx.is_available(device):
        return mx.cpu
    return stream


def _hermitian_part(a: Any) -> Any:
    """``_methods.eigh.hermitian_from_lower`` in MLX operations (MLX is not Array API)."""
    n = a.shape[-1]
    index = mx.arange(n)
    rows, cols = index[:, None], index[None, :]
    zero = mx.zeros_like(a)
    strict = mx.where(rows > cols, a, zero)
    upper = strict.swapaxes(-1, -2)
    diag = mx.where(rows == cols, a, zero)
    if a.dtype == mx.complex64:
        upper = mx.conjugate(upper)
        diag = mx.real(diag).astype(a.dtype)
    return strict + upper + diag


def _bad_members(a: Any, hermitian: bool) -> Any:
    """``_finite.bad_members`` in MLX operations: NaN/Inf where read (with
    ``hermitian``, the lower triangle and the whole diagonal entry, imaginary part too)."""
    if hermitian:  # the strict upper triangle is never read: replaced by zeros
        index = mx.arange(a.shape[-1])
        # ``where``, not ``isfinite(a) | upper``: under mx.vmap (MLX 0.32) the or of a
        # batched and an unbatched boolean mask gives wrong, run-dependent results
        a = mx.where(index[:, None] < index[None, :], mx.zeros_like(a), a)
    return ~mx.all(mx.isfinite(a), axis=(-2, -1))


def _concrete(values: Any) -> np.ndarray | None:
    """``values`` as NumPy, or ``None`` for a placeholder (under mx.vmap/mx.compile)."""
    try:
        return np.array(values, copy=False)
    except (ValueError, RuntimeError):  # mx.compile: "eval an array without a primitive"
        return None


def _raise_if_bad(bad: Any) -> None:
    """``_finite.raise_if_bad`` on ``bad``'s values; a placeholder (under ``mx.vmap`` or
    ``mx.compile``) has none, so there the bad members get NaN instead of raising."""
    try:
        values = np.array(bad, copy=False)
    except ValueError:  # a placeholder: it cannot be evaluated while tracing
        return
    _finite.raise_if_bad(np, values)


def _traced(a: Any, atol: np.ndarray, rtol: np.ndarray, hermitian: bool) -> tuple[Any, Any]:
    """The forward pass in MLX operations, for placeholders that cannot be read.

    Under ``mx.vmap`` it only gives shapes (the custom ``vmap`` rule computes), under
    ``mx.compile`` it is the computation: MLX's CPU SVD/eigh with the same rule and
    masks; NaN/Inf cannot raise there, those matrices get an all-NaN result.
    """
    m, n = a.shape[-2:]
    real = mx.float32 if a.dtype == mx.complex64 else a.dtype
    with mx.stream(mx.cpu):
        bad = ~mx.all(mx.isfinite(a), axis=(-2, -1))
        a = mx.where(bad[..., None, None], mx.zeros_like(a), a)
        if hermitian:
            s, v = mx.linalg.eigh(a)
            uh = mx.conjugate(v).swapaxes(-1, -2)
        else:
            u, s, vh = mx.linalg.svd(a)
            k = min(m, n)
            v = mx.conjugate(vh[..., :k, :]).swapaxes(-1, -2)
            uh = mx.conjugate(u[..., :, :k]).swapaxes(-1, -2)
        size = mx.abs(s)
        tol = mx.maximum(mx.array(atol, dtype=real), mx.array(rtol, dtype=real) * size.max(-1))
        keep = size > tol[..., None]
        s_inv = mx.where(keep, 1 / mx.where(keep, s, mx.ones_like(s)), mx.zeros_like(s))
        x = (v * s_inv.astype(a.dtype)[..., None, :]) @ uh
        x = mx.where(bad[..., None, None], mx.full(x.shape, np.nan, dtype=x.dtype), x)
        rank = mx.where(bad, 0, keep.astype(mx.int64).sum(-1))
    return x, rank


def pinv(
    A: Any,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    result_dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
    out: Any,
    return_rank: bool,
    stream: Any,
) -> Any:
    """The MLX path of ``pinv``, on validated input (``_api.pinv`` checked everything
    but ``out``); ``dtype``/``result_dtype``/``eps`` come from :func:`dtypes`."""
    from .._api import PinvResult, _check_out
    from .._autodiff import mlx_pinv
    from .._engine import compute_numpy

    *batch, m, n = A.shape
    if out is not None:
        _check_out(out, "mlx", (*batch, n, m), result_dtype)
    ops = _ops_stream(stream, dtype)
    np_dtype = _TO_NP[dtype]

    def forward(a: Any) -> tuple[Any, Any]:
        stack = a.shape[:-2]
        try:
            a_np = np.array(a, copy=False)
        except ValueError:  # a placeholder: mx.vmap or mx.compile is tracing
            return _traced(a, np.broadcast_to(atol, stack), np.broadcast_to(rtol, stack), hermitian)
        marks = _concrete(bad)
        marked = marks is not None and marks.shape == stack and bool(marks.any())
        if marked:
            # the stand-ins of bad members are NaN again for the engine, which skips them
            # (a method may refuse even the identity, e.g. "qr" under a large rtol)
            a_np = np.where(marks[..., None, None], np.nan, a_np)
        x, rank = compute_numpy(
            a_np,
            np.broadcast_to(atol, stack),  # wider under mx.vmap
            np.broadcast_to(rtol, stack),
            dtype=np_dtype,
            hermitian=hermitian,
            method=method,
            check_finite=check_finite,
        )
        if marked:  # the stand-in's own pseudo-inverse: the derivative rules stay finite
            x = np.where(marks[..., None, None], np.eye(n, m, dtype=x.dtype), x)
        return mx.array(x, dtype=dtype), mx.array(rank, dtype=mx.int64)

    if A.size == 0:
        x = mx.zeros((*batch, n, m), dtype=result_dtype)
        rank = mx.zeros(tuple(batch), dtype=mx.int64)
    else:
        a = A.astype(dtype, stream=ops) if A.dtype != dtype else A
        with mx.stream(ops):
            # On the raw input: the Hermitian part drops a NaN imaginary diagonal.
            bad = _bad_members(a, hermitian)
        if check_finite:
            _raise_if_bad(bad)
        with mx.stream(ops):
            # a finite, full-rank stand-in (the identity) for each bad member: gradients
            # stay finite, and a method that refuses rank-deficient input ("qr") is not
            # handed a zero matrix; its result is replaced by NaN below
            stand_in = mx.broadcast_to(mx.eye(m, n, dtype=a.dtype), a.shape)
            a = mx.where(bad[..., None, None], stand_in, a)
            if hermitian:
                a = _hermitian_part(a)
        x, rank = mlx_pinv(a, forward, ops)
        with mx.stream(ops):
            # mx.full, not a scalar NaN: mx.compile fails to generate a complex NaN literal
            x = mx.where(bad[..., None, None], mx.full(x.shape, np.nan, dtype=x.dtype), x)
            rank = mx.where(bad, mx.zeros_like(rank), rank)
        if x.dtype != result_dtype:
            x = x.astype(result_dtype, stream=ops)
    if out is not None:
        out[...] = x
        x = out
    if not return_rank:
        return x
    from .._methods import chosen_name

    shape = (int(np.prod(batch)), m, n)
    name = chosen_name(method, hermitian, shape, np.dtype(np_dtype))
    return PinvResult(x, int(rank.item()) if not batch else rank, name)
