"""JAX: ``jax.Array`` in and out, differentiable; on the CPU by the NumPy engine.

On the CPU (``_jax_callback``, the host route), eager calls hand NumPy's zero-copy view
of the array to the engine's NumPy stacks (the compiled batched kernels, the certified
routes), and traced ones reach the same engine through ``jax.pure_callback``. The
portable core (``jax.numpy``, jnp's SVD) runs on a GPU or TPU, for arrays spread over
several devices, and for traced calls unless JAX's default backend is the CPU with one
device. ``method="auto"`` follows the NumPy rule only on the host route (every general
method is the SVD on the portable one), and ``PinvResult.method`` names what ran (under
``vmap`` the rule sees the whole batch: its choice may differ from the name, which is
decided from one member's shape).

Traced, the computation is a ``jax.custom_jvp`` with the Golub–Pereyra formula
(``_autodiff``) whose forward pass is the host callback or the portable core, so
``jax.jit``, ``jax.vmap``, ``jax.grad``, ``jax.jvp``, ``jax.jacfwd`` and ``jax.jacrev``
work; ``hermitian`` and ``method`` are static. ``pinv_solve`` on the host route is the
engine's ``solve_numpy`` (``A^+`` never formed), whose derivative is that of
``pinv(A) @ B``; on the portable path it multiplies the portable ``pinv`` into ``B``.
``damped_pinv`` takes the engine's ``damped_numpy`` eagerly on the CPU, and traced the
portable SVD filter with its own rule (``_damped``).

Under a transformation that traces (``jit``, ``vmap``, ...) the values of ``A`` cannot
be inspected, so ``check_finite=True`` cannot raise: a matrix holding NaN or Inf where it
is read gets an all-NaN pseudo-inverse and rank 0, the ``check_finite=False`` behaviour.
The bad members are found on the raw input, inside the traced computation, before the
Hermitian part is taken (which would drop a NaN imaginary part of the diagonal), and are
computed as zero matrices, so gradients at the other members stay finite.

Tolerances may be traced too (``jax.jit(lambda a, r: pinv(a, rtol=r))``, or batched by
``jax.vmap``), as ``jnp.linalg.pinv`` allows: the default ``rtol`` rule and
``tol = max(atol, rtol * sigma_max)`` then run inside the trace (``_tolerance.resolve``).
Their dtype and shape are still checked, but their values cannot be, so instead of a
``ValueError``:

* a negative traced ``atol``/``rtol`` acts as 0 (so a negative ``atol`` with the default
  ``rtol`` gets ``max(m, n) * eps``, as ``atol=0`` does);
* a NaN traced ``atol``/``rtol`` gives the matrices it applies to an all-NaN
  pseudo-inverse and rank 0 (NaN in, NaN out, as for NaN data).

Tolerances are not differentiated: their derivative is zero (the rank decision is a
constant).

No implicit rank promotion: the path runs under ``jax_numpy_rank_promotion="raise"``.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .. import _engine, _finite
from . import _jax_callback as host


def _traced(a: Any) -> bool:
    return isinstance(a, jax.core.Tracer)


def _on_host(*arrays: Any) -> bool:
    """Whether the traced computation on these arrays runs on the CPU: the concrete ones
    live there, and the traced ones do if JAX's default backend is the CPU."""
    concrete = [v for v in arrays if not _traced(v)]
    if len(concrete) < len(arrays) and not host.traced_on_cpu():
        return False
    return host.concrete(*concrete)


def compute(
    a: Any,
    atol: Any,
    rtol: Any,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple:
    """``(X, rank)`` for a JAX array; ``atol``/``rtol`` are NumPy or JAX (possibly traced)
    real arrays of the batch shape, from ``_tolerance.resolve``."""
    if host.concrete(a, atol, rtol):  # eager on the CPU: the engine's NumPy stacks
        x, rank = _engine.compute_numpy(
            host.to_numpy(a, np.dtype(dtype)),
            atol,
            rtol,
            dtype=np.dtype(dtype),
            hermitian=hermitian,
            method=method,
            check_finite=check_finite,
        )
        return host.to_jax(x, a), host.to_jax(rank, a)
    if check_finite and not _traced(a):
        _finite.raise_if_bad(jnp, _finite.bad_members(jnp, a, hermitian))
    real = jnp.finfo(dtype).dtype  # float32 for complex64, float64 for complex128
    atol_j = jnp.asarray(atol, dtype=real)
    rtol_j = jnp.asarray(rtol, dtype=real)
    return _compiled(
        a,
        atol_j,
        rtol_j,
        dtype=jnp.dtype(dtype),
        hermitian=hermitian,
        method=method,
        on_host=_on_host(a),
    )


@functools.partial(jax.jit, static_argnames=("dtype", "hermitian", "method", "on_host"))
def _compiled(
    a: Any, atol: Any, rtol: Any, *, dtype: Any, hermitian: bool, method: str, on_host: bool
) -> tuple:
    """Compiled once per shape and options: eager JAX would dispatch op by op. Inside a
    user's ``jit`` it is inlined; ``grad``/``vmap`` see the ``custom_jvp`` within."""
    from .._autodiff import jax_pinv
    from .._methods.eigh import hermitian_from_lower as hermitian_part

    a = a.astype(dtype)  # differentiable: float16/bfloat16 gradients come back in theirs
    if on_host:  # the callback alone (its derivative rule masks, in jax.numpy)
        return host.host_pinv(a, atol, rtol, hermitian=hermitian, method=method)
    # On the raw input (see the module docstring); a NaN tolerance only arises traced.
    bad = _finite.bad_members(jnp, a, hermitian) | jnp.isnan(atol) | jnp.isnan(rtol)
    a = _finite.zero_bad(jnp, a, bad)
    # Concrete tolerances are >= 0 already; a traced negative one acts as 0.
    atol = jnp.where(atol > 0, atol, 0.0)
    rtol = jnp.where(rtol > 0, rtol, 0.0)
    if hermitian:
        a = hermitian_part(jnp, a)
    x, rank = jax_pinv(a, atol, rtol, hermitian=hermitian, method=method)
    return _finite.nan_bad(jnp, x, rank, bad)


def _real(dtype: Any) -> Any:
    return jnp.finfo(dtype).dtype


def _name(req: Any, on_host: bool) -> str:
    from . import _numpy, _xp

    return _numpy.chosen(req) if on_host else _xp.name(req)


def pinv(req: Any) -> tuple[Any, Any, str]:
    x, rank = compute(
        req.a,
        req.atol,
        req.rtol,
        dtype=req.dtype,
        hermitian=req.hermitian,
        method=req.method,
        check_finite=req.check_finite,
    )
    return x, rank, _name(req, _on_host(req.a))


def _check(req: Any, b: Any) -> None:
    """``check_finite`` on concrete input (traced values cannot raise: NaN results)."""
    if not req.check_finite or _traced(req.a) or (b is not None and _traced(b)):
        return
    bad = _finite.bad_members(jnp, req.a, req.hermitian)
    bad_b = None if b is None else ~jnp.all(jnp.isfinite(b), axis=(-2, -1))
    _finite.raise_if_bad_pair(jnp, bad, bad_b)


def _pinv_fn(dtype: Any) -> Any:
    """The portable ``pinv`` that ``solve_xp`` multiplies into ``B``."""

    def fn(a: Any, atol: Any, rtol: Any, hermitian: bool, method: str) -> tuple[Any, Any]:
        real = _real(dtype)
        return _compiled(
            a,
            jnp.asarray(atol, dtype=real),
            jnp.asarray(rtol, dtype=real),
            dtype=jnp.dtype(dtype),
            hermitian=hermitian,
            method=method,
            on_host=False,
        )

    return fn


def solve(req: Any) -> tuple[Any, Any, str]:
    if host.concrete(req.a, req.b, req.atol, req.rtol):  # eager on the CPU: the engine's
        x, rank = _engine.solve_numpy(  # own solve routes, pinv(A) never formed
            host.to_numpy(req.a, np.dtype(req.dtype)),
            host.to_numpy(req.b, np.dtype(req.dtype)),
            req.atol,
            req.rtol,
            dtype=np.dtype(req.dtype),
            hermitian=req.hermitian,
            method=req.method,
            check_finite=req.check_finite,
        )
        return host.to_jax(x, req.a), host.to_jax(rank, req.a), _name(req, True)
    _check(req, req.b)
    real = _real(req.dtype)
    on_host = _on_host(req.a, req.b)
    x, rank = _solve_compiled(
        req.a,
        req.b,
        jnp.asarray(req.atol, dtype=real),
        jnp.asarray(req.rtol, dtype=real),
        dtype=jnp.dtype(req.dtype),
        hermitian=req.hermitian,
        method=req.method,
        on_host=on_host,
    )
    return x, rank, _name(req, on_host)


@functools.partial(jax.jit, static_argnames=("dtype", "hermitian", "method", "on_host"))
def _solve_compiled(a, b, atol, rtol, *, dtype, hermitian, method, on_host):
    if on_host:  # the engine's solve routes, through a callback
        a, b = a.astype(dtype), b.astype(dtype)
        return host.host_solve(a, b, atol, rtol, hermitian=hermitian, method=method)
    return _engine.solve_xp(
        jnp,
        a,
        b,
        atol,
        rtol,
        dtype=dtype,
        hermitian=hermitian,
        method=method,
        check_finite=False,
        pinv_fn=_pinv_fn(dtype),
    )


def damped(req: Any) -> Any:
    lam = req.damping
    if host.concrete(req.a, req.b, lam):  # eager on the CPU: the engine's damped routes
        x = _engine.damped_numpy(
            host.to_numpy(req.a, np.dtype(req.dtype)),
            np.asarray(lam, dtype=np.float64),
            None if req.b is None else host.to_numpy(req.b, np.dtype(req.dtype)),
            dtype=np.dtype(req.dtype),
            hermitian=req.hermitian,
            check_finite=req.check_finite,
        )
        return host.to_jax(x, req.a)
    _check(req, req.b)
    lam = jnp.asarray(lam, dtype=_real(req.dtype))
    return _damped_compiled(req.a, lam, req.b, dtype=jnp.dtype(req.dtype), hermitian=req.hermitian)


@functools.partial(jax.jit, static_argnames=("dtype", "hermitian"))
def _damped_compiled(a, lam, b, *, dtype, hermitian):
    """A traced negative damping acts as its absolute value (only ``lambda^2`` enters
    the filter), a NaN one gives NaN."""
    from .._damped import jax_damped

    return _engine.damped_xp(
        jnp,
        a,
        lam,
        b,
        dtype=dtype,
        hermitian=hermitian,
        check_finite=False,
        damped_fn=jax_damped,
    )
