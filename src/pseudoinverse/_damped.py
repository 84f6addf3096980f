"""The damped inverse's derivative, written once, and its autodiff wrappers.

For a tall ``A`` (``m >= n``; a wide one goes through ``A^H``) and ``lambda >= 0``::

    X = (A^H A + lambda^2 I)^{-1} A^H = V diag(sigma / (sigma^2 + lambda^2)) U^H
    P = (A^H A + lambda^2 I)^{-1}     = V diag(1 / (sigma^2 + lambda^2)) V^H

both from the SVD, never from ``A^H A`` (whose rounding costs ``eps kappa^2``). The
wrappers compute ``(X, P)`` together: ``P`` is the second output, so that the derivative
rules below, written with ``A``, ``X``, ``P`` and products only, are themselves
differentiable through the same function (double backward, forward-over-reverse)::

    dX = P dA^H (I - A X) - X dA X - 2 lambda dlambda P X  [+ (I - X A) dA^H X^H X]
    dP = -P (dA^H A + A^H dA) P - 2 lambda dlambda P P

The bracketed term is the Golub–Pereyra term that vanishes for ``lambda > 0`` (where
``X A = I - lambda^2 P``) and is kept for members with ``lambda = 0``, where ``X`` is the
pseudo-inverse (``P = X X^H``): there the rule is ``pinv``'s constant-rank derivative.
The adjoints (the real inner product ``Re tr(G^H dY)``, PyTorch's and MLX's convention)::

    gA = (I - A X) gX^H P - X^H gX X^H [+ X^H X gX^H (I - X A)] - X^H (gP + gP^H) P
    glambda = -2 lambda Re tr(gX^H P X + gP^H P P)

``P`` is finite at repeated singular values and for exactly singular ``A`` with
``lambda > 0`` (``1 / lambda^2`` on the null space), so the derivative is too: unlike
autodiff through the SVD, whose ``1 / (sigma_i^2 - sigma_j^2)`` terms are infinite there.
Singular values with ``sigma^2 + lambda^2 = 0`` get 0 in both filters.

Wrappers (built lazily, so that importing this module imports no optional library):
:func:`torch_damped` (``torch.autograd.Function``), :func:`jax_damped`
(``jax.custom_jvp``), :func:`mlx_damped` (``mx.custom_function``); :func:`factors_xp`
is the forward pass in any Array API namespace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ._methods.spectral import damped_factors_xp as factors_xp

Array = Any


def damped_jvp(
    a: Array, x: Array, p: Array, lam: Array, da: Array, dlam: Array, zero: Array, ct: Callable
) -> tuple[Array, Array]:
    """``(dX, dP)`` along ``(dA, dlambda)``; ``zero`` is 1 where ``lambda = 0`` else 0
    (both real, of the batch shape, broadcast here over the matrix axes)."""
    dah = ct(da)
    m = a.shape[-2]
    lam2 = (lam * dlam)[..., None, None] * 2
    ax = a @ x  # m x m
    eye_m = _eye_like(ax, m)
    dx = p @ dah @ (eye_m - ax) - x @ da @ x - lam2 * (p @ x)
    xa = x @ a
    dx = dx + zero[..., None, None] * ((_eye_like(xa, xa.shape[-1]) - xa) @ dah @ (ct(x) @ x))
    dp = -(p @ (dah @ a + ct(a) @ da) @ p) - lam2 * (p @ p)
    return dx, dp


def damped_vjp(
    a: Array, x: Array, p: Array, lam: Array, gx: Array, gp: Array, zero: Array, ct: Callable
) -> tuple[Array, Array]:
    """``(gA, glambda)`` for the cotangents ``(gX, gP)``; ``glambda`` of the batch shape
    (the caller reduces it to the damping's own shape)."""
    m = a.shape[-2]
    gxh, xh = ct(gx), ct(x)
    ax = a @ x
    ga = (_eye_like(ax, m) - ax) @ (gxh @ p) - xh @ gx @ xh - xh @ (gp + ct(gp)) @ p
    xa = x @ a
    extra = (xh @ x) @ gxh @ (_eye_like(xa, xa.shape[-1]) - xa)
    ga = ga + zero[..., None, None] * extra
    glam = -2 * lam * (_re_trace(gxh @ (p @ x)) + _re_trace(ct(gp) @ (p @ p)))
    return ga, glam


def _eye_like(t: Array, k: int) -> Array:
    """The ``k x k`` identity in ``t``'s library, dtype and device (via ``t`` itself, so
    no namespace is needed: ``t[..., :k, :k] * 0`` plus a diagonal of ones)."""
    import array_api_compat

    xp = array_api_compat.array_namespace(t) if not _is_mlx(t) else None
    if xp is None:
        import mlx.core as mx

        return mx.eye(k, dtype=t.dtype)
    return xp.eye(k, dtype=t.dtype, device=array_api_compat.device(t))


def _is_mlx(t: Array) -> bool:
    return type(t).__module__.split(".")[0] == "mlx"


def _re_trace(t: Array) -> Array:
    """``Re tr`` of the last two axes."""
    import array_api_compat

    if _is_mlx(t):
        import mlx.core as mx

        d = mx.diagonal(t, axis1=-2, axis2=-1)
        return mx.real(d).sum(-1) if d.dtype == mx.complex64 else d.sum(-1)
    xp = array_api_compat.array_namespace(t)
    d = xp.linalg.diagonal(t)
    d = xp.real(d) if xp.isdtype(d.dtype, "complex floating") else d
    return xp.sum(d, axis=-1)


# --------------------------------------------------------------------------- PyTorch


def torch_damped(t: Any, lam: Any) -> tuple[Any, Any]:
    """``(X, P)`` of a tall tensor stack ``t``, differentiable in ``t`` and ``lam`` (a
    real tensor of the batch shape)."""
    return _torch_function().apply(t, lam)


@functools.cache
def _torch_function() -> Any:
    import array_api_compat.torch as xp
    import torch

    def mh(v: torch.Tensor) -> torch.Tensor:
        return v.mH

    def zero_of(lam: torch.Tensor) -> torch.Tensor:
        return (lam == 0).to(lam.dtype)

    class Damped(torch.autograd.Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(t, lam):  # type: ignore[override]
            return factors_xp(xp, t, lam)

        @staticmethod
        def setup_context(ctx, inputs, output):  # type: ignore[override]
            t, lam = inputs
            x, p = output
            ctx.save_for_backward(t, lam, x, p)
            ctx.save_for_forward(t, lam, x, p)

        @staticmethod
        def backward(ctx, gx, gp):  # type: ignore[override]
            t, lam, x, p = ctx.saved_tensors
            ga, glam = damped_vjp(t, x, p, lam, gx, gp, zero_of(lam), mh)
            return ga, glam

        @staticmethod
        def jvp(ctx, dt, dlam):  # type: ignore[override]
            t, lam, x, p = ctx.saved_tensors
            if dt is None:
                dt = torch.zeros_like(t)
            if dlam is None:
                dlam = torch.zeros_like(lam)
            return damped_jvp(t, x, p, lam, dt, dlam, zero_of(lam), mh)

    return Damped


# --------------------------------------------------------------------------- JAX


def jax_damped(t: Any, lam: Any) -> tuple[Any, Any]:
    """``(X, P)`` as a ``jax.custom_jvp`` (JAX transposes the rule for reverse mode)."""
    return _jax_function()(t, lam)


@functools.cache
def _jax_function() -> Any:
    import jax
    import jax.numpy as jnp

    def ct(v: Any) -> Any:
        return jnp.conj(jnp.swapaxes(v, -1, -2))

    @jax.custom_jvp
    def damped(t, lam):
        return factors_xp(jnp, t, lam)

    @damped.defjvp
    def damped_jvp_rule(primals, tangents):
        t, lam = primals
        dt, dlam = tangents
        x, p = damped(t, lam)
        zero = (lam == 0).astype(lam.dtype)
        return (x, p), damped_jvp(t, x, p, lam, dt, dlam, zero, ct)

    return damped


# --------------------------------------------------------------------------- MLX


def mlx_damped(t: Any, lam: Any, forward: Callable[[Any, Any], tuple], stream: Any) -> tuple:
    """``(X, P)`` with ``forward`` (MLX arrays -> MLX ``(X, P)``, computed off-graph,
    e.g. through NumPy) made differentiable by an ``mx.custom_function``."""
    import mlx.core as mx

    def ct(v: Any) -> Any:
        return mx.conjugate(v).swapaxes(-1, -2)

    def zero_of(lam: Any) -> Any:
        return (lam == 0).astype(lam.dtype)

    @mx.custom_function
    def damped(t, lam):
        return forward(t, lam)

    @damped.vjp
    def damped_vjp_rule(primals, cotangents, outputs):
        t, lam = primals
        x, p = outputs
        with mx.stream(stream):
            ga, glam = damped_vjp(t, x, p, lam, cotangents[0], cotangents[1], zero_of(lam), ct)
            return ga, glam.astype(lam.dtype)

    @damped.jvp
    def damped_jvp_rule(primals, tangents):
        t, lam = primals
        dt, dlam = tangents
        x, p = forward(t, lam)
        with mx.stream(stream):
            return damped_jvp(t, x, p, lam, dt, dlam, zero_of(lam), ct)

    return damped(t, lam)
