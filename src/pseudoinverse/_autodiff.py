"""The Golub–Pereyra derivative of ``pinv``, written once, and its autodiff wrappers.

For ``X = A^+`` and a tangent ``dA`` that keeps the rank of ``A`` constant
(G. H. Golub and V. Pereyra, SIAM J. Numer. Anal. 10(2), 1973, eq. 4.12)::

    dX = -X dA X + X X^H dA^H (I - A X) + (I - X A) dA^H X^H X

Its adjoint (the vector-Jacobian product for the real inner product
``Re tr(G^H dX)``, the convention of PyTorch and MLX) is::

    gA = -X^H G X^H + (I - A X) G^H X X^H + X^H X G^H (I - X A)

Both are written with ``A``, ``X``, matrix products and a conjugate transpose only
(never the SVD's own derivative, whose ``1 / (sigma_i^2 - sigma_j^2)`` terms are
infinite where singular values repeat), so they are finite at the identity, at
orthogonal matrices and at rank-deficient inputs. The product order follows
``m >= n`` so every intermediate is at most ``min(m, n)``-square where it can be
(JAX ``_pinv_jvp``; PyTorch ``pinv_backward`` in ``FunctionsManual.cpp``).

The rank decision (the tolerance) is a constant: the derivative is that of the map
``A -> A^+`` on the manifold of matrices of the computed rank.

Wrappers, each built lazily on first use so that importing this module imports no
optional library:

* :func:`torch_pinv`: a ``torch.autograd.Function`` (backward, double backward,
  forward mode, ``torch.func`` transforms via ``generate_vmap_rule``).
* :func:`jax_pinv`: a ``jax.custom_jvp`` (JAX derives the transpose itself).
* :func:`mlx_pinv`: an ``mx.custom_function`` with ``vjp``, ``jvp`` and ``vmap``.

With ``hermitian=True`` the forward pass reads only the lower triangle (and the real
part of the diagonal). The wrappers receive ``H = hermitian_from_lower(A)`` computed with
differentiable operations of the library, so the gradient with respect to the raw
``A`` lies on the lower triangle, exactly where the forward pass reads. The wrappers
receive finite input: the adapters find the NaN/Inf members on the raw ``A`` (the
Hermitian part would hide a NaN imaginary diagonal), pass zeros in their place and set
their results to NaN outside the wrappers (``_finite.zero_bad``/``nan_bad``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

Array = Any
ConjT = Callable[[Array], Array]


def pinv_jvp(a: Array, x: Array, da: Array, ct: ConjT) -> Array:
    """``dX`` for ``X = pinv(A)`` along ``dA`` (Golub–Pereyra), any array library.

    ``a`` is ``(..., m, n)``, ``x`` its pseudo-inverse ``(..., n, m)``, ``da`` like ``a``;
    ``ct`` is the conjugate transpose of the last two axes. Only ``@``, ``+``, ``-`` and
    ``ct`` are used.
    """
    m, n = a.shape[-2:]
    dah, xh = ct(da), ct(x)
    if m >= n:  # n x n intermediates
        s = (x @ xh) @ dah
        t = (dah @ xh) @ x
        return -((x @ da) @ x) + s - (s @ a) @ x + t - (x @ a) @ t
    s = x @ (xh @ dah)  # m x m intermediates
    t = dah @ (xh @ x)
    return -(x @ (da @ x)) + s - s @ (a @ x) + t - x @ (a @ t)


def pinv_vjp(a: Array, x: Array, g: Array, ct: ConjT) -> Array:
    """``gA`` for the cotangent ``g`` of ``X = pinv(A)``: the adjoint of :func:`pinv_jvp`.

    The adjoint for ``Re tr(G^H dX)`` (PyTorch's and MLX's complex convention).
    """
    m, n = a.shape[-2:]
    xh, gh = ct(x), ct(g)
    if m <= n:  # m x m intermediates
        k = gh @ x
        kxh = k @ xh
        return -ct(x @ k) + kxh - (a @ x) @ kxh + (xh @ x) @ (gh - k @ a)
    k = x @ gh  # n x n intermediates
    xhk = xh @ k
    return -ct(k @ x) + xhk - (xhk @ x) @ a + ((gh - a @ k) @ x) @ xh


def _forward(xp: Any, a: Array, atol: Any, rtol: Any, hermitian: bool, method: str) -> tuple:
    """The forward pass every wrapper differentiates: the portable core on clean input."""
    from ._engine import compute_xp

    return compute_xp(
        xp, a, atol, rtol, dtype=a.dtype, hermitian=hermitian, method=method, check_finite=False
    )


def _forward_numpy(
    a: Any, atol: Any, rtol: Any, hermitian: bool, method: str, bad: Any = None
) -> tuple:
    """The forward pass of a plain CPU tensor on the engine's NumPy stacks (zero copy).

    ``bad`` marks the members the adapter replaced by zero matrices (NaN/Inf input):
    the engine skips them (NaN again for it: a method such as "qr" refuses a zero
    matrix), and their result is the zero matrix's pseudo-inverse, zero, so that the
    derivative rules stay finite there (the adapter sets them to NaN afterwards)."""
    import numpy as np
    import torch

    from ._engine import compute_numpy

    a_np = a.detach().numpy()
    marks = None if bad is None else bad.detach().cpu().numpy()
    if marks is not None and marks.any():
        a_np = np.where(marks[..., None, None], np.nan, a_np)
    else:
        marks = None
    x, rank = compute_numpy(
        a_np,
        np.asarray(atol),
        np.asarray(rtol),
        dtype=a_np.dtype,
        hermitian=hermitian,
        method=method,
        check_finite=False,
    )
    if marks is not None:
        x = np.where(marks[..., None, None], 0, x)
    return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(rank))


# --------------------------------------------------------------------------- PyTorch


def torch_pinv(
    a: Any,
    atol: Any,
    rtol: Any,
    *,
    hermitian: bool,
    method: str,
    host: bool = False,
    bad: Any = None,
) -> tuple:
    """``(X, rank)``, differentiable in ``a``: the forward pass by the portable core on
    torch ops, or (``host``: a plain CPU tensor) by the engine's NumPy stacks, which
    gives the same result as without grad, alone or in any stack.

    ``a`` is finite-checked already, in its compute dtype, and Hermitian (the output of
    :func:`~pseudoinverse._methods.eigh.hermitian_from_lower`) when ``hermitian``.
    ``atol``/``rtol`` are NumPy constants; ``bad`` (with ``host``) the members replaced
    by zeros (:func:`_forward_numpy`).
    """
    return _torch_function().apply(a, atol, rtol, hermitian, method, host, bad)


@functools.cache
def _torch_function() -> Any:
    import array_api_compat.torch as xp
    import torch

    def mh(t: torch.Tensor) -> torch.Tensor:
        return t.mH

    class Pinv(torch.autograd.Function):
        """``pinv`` with the Golub–Pereyra derivative in both modes.

        ``backward`` and ``jvp`` are built from differentiable torch operations on the
        saved ``A`` and ``X`` (``X`` is this Function's output), so double backward and
        forward-over-reverse go through this Function again.
        """

        generate_vmap_rule = True  # the forward is plain torch ops (masks, no .item())

        @staticmethod
        def forward(a, atol, rtol, hermitian, method, host, bad):  # type: ignore[override]
            if host:
                # the NumPy engine, as without grad: the same result with or without
                # grad, alone or in any stack (torch's own batched SVD differs by a
                # few ulps between a matrix alone and in a stack)
                return _forward_numpy(a, atol, rtol, hermitian, method, bad)
            return _forward(xp, a, atol, rtol, hermitian, method)

        @staticmethod
        def setup_context(ctx, inputs, output):  # type: ignore[override]
            a = inputs[0]
            x, rank = output
            ctx.mark_non_differentiable(rank)
            ctx.save_for_backward(a, x)
            ctx.save_for_forward(a, x)

        @staticmethod
        def backward(ctx, gx, grank):  # type: ignore[override]
            a, x = ctx.saved_tensors
            return pinv_vjp(a, x, gx, mh), None, None, None, None, None, None

        @staticmethod
        def jvp(ctx, da, datol, drtol, dherm, dmethod, dhost, dbad):  # type: ignore[override]
            a, x = ctx.saved_tensors
            return pinv_jvp(a, x, da, mh), None

    return Pinv


# --------------------------------------------------------------------------- JAX


def jax_pinv(a: Any, atol: Any, rtol: Any, *, hermitian: bool, method: str) -> tuple:
    """``(X, rank)`` by the portable core on ``jax.numpy``, a ``jax.custom_jvp``.

    ``atol``/``rtol`` are real JAX arrays of the batch shape (possibly traced); their
    tangents are ignored (the rank decision is a constant: their derivative is zero).
    ``hermitian`` and ``method`` are static.
    """
    return _jax_function()(hermitian, method, a, atol, rtol)


@functools.cache
def _jax_function() -> Any:
    import jax
    import jax.numpy as jnp
    import numpy as np

    def ct(t: Any) -> Any:
        return jnp.conj(jnp.swapaxes(t, -1, -2))

    @functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
    def pinv(hermitian, method, a, atol, rtol):
        return _forward(jnp, a, atol, rtol, hermitian, method)

    @pinv.defjvp
    def pinv_jvp_rule(hermitian, method, primals, tangents):
        a, atol, rtol = primals
        x, rank = pinv(hermitian, method, a, atol, rtol)
        dx = pinv_jvp(a, x, tangents[0], ct)
        return (x, rank), (dx, np.zeros(rank.shape, dtype=jax.dtypes.float0))

    return pinv


# --------------------------------------------------------------------------- MLX


def mlx_pinv(a: Any, forward: Callable[[Any], tuple], stream: Any) -> tuple:
    """``(X, rank)`` with ``forward`` (MLX array -> MLX ``(X, rank)``, computed off-graph,
    e.g. through NumPy) made differentiable by an ``mx.custom_function``.

    The ``vjp``/``jvp`` run MLX operations on ``stream``. ``vmap`` calls ``forward``
    once on the whole stack (it is batched already).
    """
    import mlx.core as mx

    def ct(t: Any) -> Any:
        return mx.conjugate(t).swapaxes(-1, -2)

    def first(v: Any) -> Any:
        return v[0] if isinstance(v, list | tuple) else v

    @mx.custom_function
    def pinv(a):
        return forward(a)

    @pinv.vjp
    def pinv_vjp_rule(primals, cotangents, outputs):
        a, x = first(primals), outputs[0]
        with mx.stream(stream):
            return (pinv_vjp(a, x, cotangents[0], ct),)

    @pinv.jvp
    def pinv_jvp_rule(primals, tangents):
        a, da = first(primals), first(tangents)
        x, rank = forward(a)
        with mx.stream(stream):
            return (pinv_jvp(a, x, da, ct), mx.zeros(rank.shape, dtype=mx.float32))

    @pinv.vmap
    def pinv_vmap_rule(inputs, axes):
        a, axis = first(inputs), first(axes)
        a = mx.moveaxis(a, axis, 0) if axis is not None else a
        return forward(a), (0 if axis is not None else None, 0 if axis is not None else None)

    return pinv(a)
