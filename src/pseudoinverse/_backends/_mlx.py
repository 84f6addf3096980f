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


def _raise_if_bad(bad: Any, what: str = "A") -> None:
    """``_finite.raise_if_bad`` on ``bad``'s values; a placeholder (under ``mx.vmap`` or
    ``mx.compile``) has none, so there the bad members get NaN instead of raising."""
    try:
        values = np.array(bad, copy=False)
    except ValueError:  # a placeholder: it cannot be evaluated while tracing
        return
    _finite.raise_if_bad(np, values, what)


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


def _core(
    A: Any,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
    ops: Any,
) -> tuple[Any, Any]:
    """``(X, rank)`` of a non-empty MLX array in the compute ``dtype``, differentiable."""
    from .._autodiff import mlx_pinv
    from .._engine import compute_numpy

    m, n = A.shape[-2:]
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
    return x, rank


def _name(req: Any) -> str:
    from .._methods import chosen_name

    shape = (int(np.prod(req.batch)), req.m, req.n)
    return chosen_name(req.method, req.hermitian, shape, np.dtype(_TO_NP[req.dtype]))


def _result(req: Any, x: Any, ops: Any) -> Any:
    return x.astype(req.result_dtype, stream=ops) if x.dtype != req.result_dtype else x


def pinv(req: Any) -> tuple[Any, Any, str]:
    """The MLX path of ``pinv`` on a validated request (``_validate``)."""
    ops = _ops_stream(req.stream, req.dtype)
    x, rank = _core(
        req.a,
        req.atol,
        req.rtol,
        dtype=req.dtype,
        hermitian=req.hermitian,
        method=req.method,
        check_finite=req.check_finite,
        ops=ops,
    )
    return _result(req, x, ops), rank, _name(req)


def _bad_rhs(b: Any) -> Any:
    return ~mx.all(mx.isfinite(b), axis=(-2, -1))


def _times_rhs(x: Any, b: Any, ops: Any) -> Any:
    """``x @ b`` with NaN where ``b`` holds NaN/Inf (and not its NaN spread elsewhere)."""
    with mx.stream(ops):
        bad = _bad_rhs(b)
        y = x @ mx.where(bad[..., None, None], mx.zeros_like(b), b)
        return mx.where(bad[..., None, None], mx.full(y.shape, np.nan, dtype=y.dtype), y)


def _check_rhs(req: Any, b: Any) -> None:
    if req.check_finite:
        with mx.stream(mx.cpu):
            bad_a = _bad_members(req.a.astype(req.dtype), req.hermitian)
            bad_b = _bad_rhs(b)
        values = _concrete(bad_a), _concrete(bad_b)
        if values[0] is not None and values[1] is not None:  # placeholders cannot raise
            _finite.raise_if_bad_pair(np, *values)


def solve(req: Any) -> tuple[Any, Any, str]:
    """``pinv(A) @ B``: the differentiable MLX ``pinv`` multiplied into ``B``."""
    ops = _ops_stream(req.stream, req.dtype)
    b = req.b.astype(req.dtype, stream=ops)
    _check_rhs(req, b)
    x, rank = _core(
        req.a,
        req.atol,
        req.rtol,
        dtype=req.dtype,
        hermitian=req.hermitian,
        method=req.method,
        check_finite=False,
        ops=ops,
    )
    with mx.stream(ops):
        rank = mx.where(_bad_rhs(b), mx.zeros_like(rank), rank)
    return _result(req, _times_rhs(x, b, ops), ops), rank, _name(req)


def damped(req: Any) -> Any:
    """The damped inverse: the SVD filter through NumPy (``_methods.spectral``), made
    differentiable in ``A`` and an MLX ``damping`` by ``_damped.mlx_damped``'s rules."""
    from .._damped import mlx_damped
    from .._methods.spectral import damped_factors

    ops = _ops_stream(req.stream, req.dtype)
    a = req.a.astype(req.dtype, stream=ops)
    b = None if req.b is None else req.b.astype(req.dtype, stream=ops)
    if b is not None:
        _check_rhs(req, b)
    elif req.check_finite:
        with mx.stream(mx.cpu):
            _raise_if_bad(_bad_members(a, req.hermitian))
    # float64 kept for float64 input: mx.array turns a float64 NumPy array into float32
    real = mx.float64 if req.dtype == mx.float64 else mx.float32
    np_dtype = _TO_NP[req.dtype]
    with mx.stream(ops):
        bad = _bad_members(a, req.hermitian)
        a = mx.where(bad[..., None, None], mx.zeros_like(a), a)
        if req.hermitian:
            a = _hermitian_part(a)
        m, n = a.shape[-2:]
        wide = m < n
        t = mx.conjugate(a).swapaxes(-1, -2) if wide else a
        lam = req.damping
        lam = mx.array(lam, dtype=real) if isinstance(lam, np.ndarray) else lam.astype(real)
        lam = mx.broadcast_to(lam, tuple(a.shape[:-2]))

    def forward(t: Any, lam: Any) -> tuple[Any, Any]:
        batch, (rows, cols) = t.shape[:-2], t.shape[-2:]
        t_np = np.array(t, copy=False).astype(np_dtype).reshape(-1, rows, cols)
        lam_np = np.broadcast_to(np.array(lam, copy=False).astype(np.float64), batch)
        scale = np.abs(t_np).max(axis=(1, 2), initial=0)
        # 2**-e with max = f 2**e, e clipped so that 2**-e stays finite in the dtype (a
        # subnormal maximum ends within the normal range), as the engine's _scale_xp
        emax = 1000 if np_dtype in (np.float64, np.complex128) else 120
        exponent = np.frexp(np.where(scale > 0, scale, 1))[1]
        scale = np.where(scale > 0, np.ldexp(1.0, np.clip(-exponent, -emax, emax)), 1)
        x, p = damped_factors(t_np * scale[:, None, None], lam_np.reshape(-1) * scale)
        c = scale[:, None, None]
        with np.errstate(over="ignore"):  # P = 1/sigma^2 may exceed the range (lambda = 0
            x, p = x * c, (p * c) * c  # and a tiny sigma): inf only where the value is
        # lambda dwarfing sigma_max: the scaled filter underflows (_engine._dominant_damping)
        lam_flat = lam_np.reshape(-1)
        bits = np.finfo(np_dtype).nmant + 1
        amax = np.abs(t_np).max(axis=(1, 2), initial=0) * np.sqrt(2.0 * rows * cols)
        series = lam_flat * scale > 2.0 ** (bits / 2) * (amax * scale)  # scaled: no overflow
        if series.any():
            lam_s = lam_flat[series][:, None, None].astype(x.dtype)
            with np.errstate(under="ignore", over="ignore"):  # P = I / lambda^2: inf if so
                x[series] = (np.conj(t_np[series].transpose(0, 2, 1)) / lam_s) / lam_s
                p[series] = np.eye(cols, dtype=p.dtype) / lam_s / lam_s
        return (
            mx.array(x.reshape(*batch, cols, rows), dtype=req.dtype),
            mx.array(p.reshape(*batch, cols, cols), dtype=req.dtype),
        )

    x, _ = mlx_damped(t, lam, forward, ops)
    with mx.stream(ops):
        x = mx.conjugate(x).swapaxes(-1, -2) if wide else x
        x = mx.where(bad[..., None, None], mx.full(x.shape, np.nan, dtype=x.dtype), x)
    if b is not None:
        x = _times_rhs(x, b, ops)
    return _result(req, x, ops)
