"""The host route for JAX: arrays on the CPU computed by the NumPy engine.

JAX on the CPU and NumPy share memory, so a JAX array there can reach what NumPy
arrays get (``_engine.compute_numpy`` and its kin: the compiled batched kernels, the
certified LU/Gram/QR/Cholesky routes, LAPACK's fallbacks), instead of the portable
core's ``jnp`` SVD (about ``jnp.linalg.pinv``'s speed):

* **Eager** (concrete arrays and tolerances): the adapter hands NumPy's zero-copy view
  straight to the engine, with the caller's ``check_finite`` (it raises, naming the
  batch index, as for NumPy), and wraps the result as a JAX array on the input's device
  (:func:`concrete`, :func:`to_numpy`, :func:`to_jax`).
* **Traced** (``jit``, ``vmap``, ``grad``, ...): values exist only when the compiled
  program runs, so the engine is reached through ``jax.pure_callback``
  (:func:`host_pinv`), inside a ``jax.custom_jvp`` whose rule is the Golub–Pereyra
  formula of ``_autodiff`` (``pinv_jvp``) in ``jax.numpy`` operations, as on the
  portable path: ``grad``, ``jvp``, ``jacfwd``/``jacrev``, ``hessian`` work, and the
  tolerances stay constants. ``vmap_method="expand_dims"``: ``vmap`` (nested too)
  hands the callback the whole batch in one call, so ``method="auto"`` sees the stack
  (and picks the Jacobi kernel for a stack of small matrices), and tolerances or
  masks that are not batched arrive with axes of size 1, broadcast here.

Non-finite input: without a derivative the callback gets the raw input and the engine
applies its own rule (NaN/Inf where read: an all-NaN result and rank 0; a NaN traced
tolerance does the same here). The derivative rule instead masks in ``jax.numpy``, as
the portable path does: the bad members become zero matrices (marked, NaN again for the
engine, which skips them: ``"qr"`` refuses a zero matrix) whose result is zero, so the
rule stays finite there, and are set to NaN after it. A callback must not raise
(``jax.pure_callback``), so ``method="qr"``, which raises ``ValueError`` eagerly for a
matrix it cannot certify to have full rank, computes such a member under tracing by the
SVD instead (``"svd"`` on that member alone; the portable path computes every member of
``"qr"`` so), with the SVD rule's rank.

Where the route does not apply, the adapter keeps the portable path:

* arrays on a GPU or TPU (jnp's SVD runs there, with no transfer), or spread over
  several devices (the engine would gather them onto one);
* traced arrays when JAX's default backend is not the CPU, or has several devices:
  their placement is not known while tracing (a callback's result lives on one
  device, which sharded computations reject);
* ``damped_pinv``/``damped_pinv_solve`` under a transformation: their derivative needs
  the factor ``P = (A^H A + lambda^2 I)^{-1}`` that the engine's fast routes do not form
  (eagerly they take the engine's routes).

A host callback cannot be serialized: ``jax.export`` of a function that calls ``pinv``
on the CPU fails. XLA on the CPU reads subnormal numbers as zero; so does the host route
(:func:`flush_subnormal`), so that a result does not depend on the route.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def concrete(*values: Any) -> bool:
    """Are these (JAX arrays, NumPy arrays, numbers or ``None``) all concrete values on
    one CPU device, readable by NumPy without a copy?"""
    for v in values:
        if isinstance(v, jax.core.Tracer):
            return False
        if isinstance(v, jax.Array):
            devices = v.devices()
            if len(devices) != 1 or next(iter(devices)).platform != "cpu":
                return False
    return True


def traced_on_cpu() -> bool:
    """Whether a traced computation runs on one CPU device: JAX's default backend is the
    CPU and has one device. With several (``--xla_force_host_platform_device_count``),
    a traced array may be sharded, and a callback's result is placed on one device, which
    later sharded operations reject (JAX 0.10: "Cannot convert GSPMDSharding {maximal
    device=0} into SdyArray")."""
    return jax.default_backend() == "cpu" and jax.device_count() == 1


def to_numpy(a: Any, dtype: Any) -> np.ndarray:
    """A concrete JAX array as NumPy in the compute ``dtype``, as XLA reads it (a
    read-only view; a copy only to change dtype or to flush subnormals)."""
    x = np.asarray(a)
    return flush_subnormal(x if x.dtype == dtype else x.astype(dtype))


# (unsigned view, |x| bits mask, largest subnormal's bits) by the real dtype's itemsize
_BITS = {
    4: (np.uint32, np.uint32(0x7FFF_FFFF), np.uint32(0x007F_FFFF)),
    8: (np.uint64, np.uint64(0x7FFF_FFFF_FFFF_FFFF), np.uint64(0x000F_FFFF_FFFF_FFFF)),
}


def flush_subnormal(x: np.ndarray) -> np.ndarray:
    """``x`` with its subnormal numbers (real and imaginary parts alike) set to zero.

    XLA on the CPU reads subnormal input as zero (denormals-are-zero:
    ``jnp.linalg.pinv([[1e-310]])`` is zero, as the portable path gives); the engine
    reads them, so the host route flushes them first, and a result does not depend on
    the route. The test is one pass over the bits, by cache-sized chunks (0.6 ms for
    1e5 3x3 float64): ``|x|``'s bits minus one, unsigned, are below the largest
    subnormal's exactly for the nonzero subnormals."""
    if x.dtype.kind not in "fc" or x.size == 0 or not x.dtype.isnative:
        return x
    real = np.finfo(x.dtype).dtype
    if real.itemsize not in _BITS:  # (float16 is computed in float32, converted first)
        return x
    uint, mask, largest = _BITS[real.itemsize]
    x = np.ascontiguousarray(x)
    flat = x.reshape(-1).view(real).view(uint)
    chunk = 1 << 14
    buf = np.empty(min(flat.size, chunk), dtype=uint)
    for start in range(0, flat.size, chunk):
        part = flat[start : start + chunk]
        bits = np.bitwise_and(part, mask, out=buf[: len(part)])
        np.subtract(bits, uint(1), out=bits)  # zero wraps around to the largest
        if bits.min() < largest:
            parts = x.reshape(-1).view(real)
            tiny = np.finfo(real).smallest_normal
            return (
                np.where(np.abs(parts) < tiny, 0, parts).astype(real).view(x.dtype).reshape(x.shape)
            )
    return x


def to_jax(x: np.ndarray, like: Any) -> Any:
    """A NumPy result as a JAX array on ``like``'s device (committed if ``like`` is)."""
    x = np.asarray(x)
    if not x.flags.c_contiguous:  # (np.ascontiguousarray would make a 0-d rank 1-d)
        x = x.copy()
    if getattr(like, "committed", False):
        return jax.device_put(x, like.sharding)
    return jnp.asarray(x)


def _rank_dtype() -> Any:
    """The rank's dtype: JAX's default integer (int64 under ``jax_enable_x64``), as the
    portable path's ``_tolerance.count`` gives."""
    return jax.dtypes.canonicalize_dtype(np.int64)


# --------------------------------------------------------------------------- pinv


def host_pinv(a: Any, atol: Any, rtol: Any, *, hermitian: bool, method: str) -> tuple:
    """``(X, rank)`` by the NumPy engine, traceable and differentiable in ``a``.

    ``a`` is the raw input in its compute dtype (NaN/Inf and, with ``hermitian``, an
    unread upper triangle included); ``atol``/``rtol`` real arrays of the batch shape,
    possibly traced, so possibly negative (acts as 0) or NaN (an all-NaN result and rank
    0). ``hermitian`` and ``method`` are static.

    Without a derivative the program is the callback alone: the engine finds the bad
    members and reads the lower triangle itself, as for NumPy input, so no pass over
    ``a`` runs in XLA. The derivative rule masks in ``jax.numpy`` instead (the bad
    members as zero matrices, the Hermitian part), so that its linear part lands on
    what is read and stays finite at the other members.
    """
    return _pinv_function()(hermitian, method, a, atol, rtol)


def _ct(t: Any) -> Any:
    return jnp.conj(jnp.swapaxes(t, -1, -2))


def _callback(a: Any, atol: Any, rtol: Any, bad: Any, hermitian: bool, method: str) -> tuple:
    """``pure_callback`` of :func:`_pinv_on_host`: one call per (vmapped) stack."""
    *batch, m, n = a.shape
    out = (
        jax.ShapeDtypeStruct((*batch, n, m), a.dtype),
        jax.ShapeDtypeStruct(tuple(batch), _rank_dtype()),
    )
    fn = functools.partial(_pinv_on_host, hermitian=hermitian, method=method)
    args = (a, atol, rtol) if bad is None else (a, atol, rtol, bad)
    return jax.pure_callback(fn, out, *args, vmap_method="expand_dims")


@functools.cache
def _pinv_function() -> Any:
    from .. import _finite

    @functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
    def pinv(hermitian, method, a, atol, rtol):
        return _callback(a, atol, rtol, None, hermitian, method)

    @pinv.defjvp
    def pinv_jvp_rule(hermitian, method, primals, tangents):
        a, atol, rtol = primals
        x, rank, dx, bad = _masked_jvp(hermitian, method, a, tangents[0], atol, rtol)
        x, rank = _finite.nan_bad(jnp, x, rank, bad)
        dx = _finite.zero_bad(jnp, dx, bad)
        return (x, rank), (dx, np.zeros(rank.shape, dtype=jax.dtypes.float0))

    return pinv


def _masked_jvp(hermitian: bool, method: str, a: Any, da: Any, atol: Any, rtol: Any) -> tuple:
    """``(X, rank, dX, bad)`` of the raw ``a`` along ``da``, with the portable path's
    masks: the bad members (NaN/Inf where read, or a NaN tolerance) as zero matrices
    (their ``X`` and ``dX`` zero), the Hermitian part taken of ``a`` and ``da`` (it is
    linear), the forward pass by the engine on that clean stack."""
    from .. import _finite
    from .._methods.eigh import hermitian_from_lower

    bad = _finite.bad_members(jnp, a, hermitian) | jnp.isnan(atol) | jnp.isnan(rtol)
    a, da = _finite.zero_bad(jnp, a, bad), _finite.zero_bad(jnp, da, bad)
    if hermitian:
        a, da = hermitian_from_lower(jnp, a), hermitian_from_lower(jnp, da)
    clean = _clean_function()
    (x, rank), (dx, _) = jax.jvp(
        lambda t: clean(hermitian, method, t, atol, rtol, bad), (a,), (da,)
    )
    return x, rank, dx, bad


@functools.cache
def _clean_function() -> Any:
    """The rule's forward pass on clean input (bad members zeroed and marked, Hermitian
    part taken), itself a ``custom_jvp`` with the plain Golub–Pereyra rule, so that
    higher derivatives (``hessian``, ``jacfwd`` of ``grad``) go through it again."""
    from .._autodiff import pinv_jvp

    @functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
    def pinv(hermitian, method, a, atol, rtol, bad):
        return _callback(a, atol, rtol, bad, hermitian, method)

    @pinv.defjvp
    def pinv_jvp_rule(hermitian, method, primals, tangents):
        a = primals[0]
        x, rank = pinv(hermitian, method, *primals)
        dx = pinv_jvp(a, x, tangents[0], _ct)
        return (x, rank), (dx, np.zeros(rank.shape, dtype=jax.dtypes.float0))

    return pinv


# --------------------------------------------------------------------------- solve


def host_solve(a: Any, b: Any, atol: Any, rtol: Any, *, hermitian: bool, method: str) -> tuple:
    """``(pinv(A) @ B, rank)`` by the engine's solve routes (``solve_numpy``: ``A^+``
    never formed), traceable and differentiable in ``a`` and ``b``.

    ``a`` (``(..., m, n)``) and ``b`` (``(..., m, k)``) are raw, of one batch shape and
    the compute dtype; the rest as :func:`host_pinv`. A member with NaN/Inf in ``A``
    (where read) or ``B`` gets an all-NaN solution and rank 0. The derivative rule is
    that of ``pinv(A) @ B`` (``pinv``'s rule and a product's), from ``X = pinv(A)`` by
    the engine, whose product with ``B`` is then the primal value."""
    return _solve_function()(hermitian, method, a, b, atol, rtol)


@functools.cache
def _solve_function() -> Any:
    from .. import _finite

    @functools.partial(jax.custom_jvp, nondiff_argnums=(0, 1))
    def solve(hermitian, method, a, b, atol, rtol):
        *batch, _, n = a.shape
        out = (
            jax.ShapeDtypeStruct((*batch, n, b.shape[-1]), a.dtype),
            jax.ShapeDtypeStruct(tuple(batch), _rank_dtype()),
        )
        fn = functools.partial(_solve_on_host, hermitian=hermitian, method=method)
        return jax.pure_callback(fn, out, a, b, atol, rtol, vmap_method="expand_dims")

    @solve.defjvp
    def solve_jvp_rule(hermitian, method, primals, tangents):
        a, b, atol, rtol = primals
        da, db = tangents[0], tangents[1]
        x, rank, dx, bad = _masked_jvp(hermitian, method, a, da, atol, rtol)
        bad = bad | ~jnp.all(jnp.isfinite(b), axis=(-2, -1))
        b, db = _finite.zero_bad(jnp, b, bad), _finite.zero_bad(jnp, db, bad)
        y, dy = x @ b, dx @ b + x @ db
        y, rank = _finite.nan_bad(jnp, y, rank, bad)
        return (y, rank), (dy, np.zeros(rank.shape, dtype=jax.dtypes.float0))

    return solve


def _solve_on_host(a, b, atol, rtol, *, hermitian: bool, method: str) -> tuple:
    """The solve callback: ``_engine.solve_numpy`` on the whole (vmapped) stack."""
    from .._engine import solve_numpy

    arrays = [np.asarray(v) for v in (a, b, atol, rtol)]
    shapes = (arrays[0].shape[:-2], arrays[1].shape[:-2], arrays[2].shape, arrays[3].shape)
    batch = np.broadcast_shapes(*shapes)  # under vmap, unbatched arguments have 1s
    a, b = (np.broadcast_to(v, (*batch, *v.shape[-2:])) for v in arrays[:2])
    atol, rtol = (np.broadcast_to(v, batch) for v in arrays[2:])
    a, atol, rtol = _skip_nan_tolerances(a, atol, rtol)
    a, b = flush_subnormal(a), flush_subnormal(b)
    try:
        x, rank = solve_numpy(
            a, b, atol, rtol, dtype=a.dtype, hermitian=hermitian, method=method,
            check_finite=False,
        )  # fmt: skip
    except ValueError as err:  # "qr" cannot certify a member: it cannot raise here
        if method != "qr" or isinstance(err, np.linalg.LinAlgError):
            raise
        x, rank = _pinv_on_host(a, atol, rtol, hermitian=hermitian, method=method)
        finite_b = np.isfinite(b).all(axis=(-2, -1))
        x = np.where(finite_b[..., None, None], x @ np.where(np.isfinite(b), b, 0), np.nan)
        rank = np.where(finite_b, rank, 0)
    return np.ascontiguousarray(x), np.asarray(rank).astype(_rank_dtype(), copy=False)


def _skip_nan_tolerances(a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, marks=None):
    """Tolerances as float64 ``>= 0``: a traced one may be negative (acts as 0) or NaN,
    whose member is then made NaN, so that the engine skips it (as it skips ``marks``,
    the clean stack's bad members). Cheap when there is nothing to do (small calls)."""
    atol, rtol = np.asarray(atol, dtype=np.float64), np.asarray(rtol, dtype=np.float64)
    if (atol >= 0).all() and (rtol >= 0).all():  # (NaN fails both tests)
        if marks is not None and marks.any():
            a = np.where(marks[..., None, None], np.nan, a)
        return a, atol, rtol
    skip = np.isnan(atol) | np.isnan(rtol)
    if marks is not None:
        skip = skip | marks
    if skip.any():
        a = np.where(skip[..., None, None], np.nan, a)
    return a, np.where(atol > 0, atol, 0.0), np.where(rtol > 0, rtol, 0.0)


def _broadcast(a: Any, *batched: Any) -> tuple[np.ndarray, ...]:
    """``a`` (``(..., m, n)``) and arrays of its batch shape as NumPy, broadcast together:
    under ``vmap`` the arguments that are not batched come with axes of size 1."""
    arrays = [np.asarray(v) for v in (a, *batched)]
    shapes = [arrays[0].shape[:-2], *(v.shape for v in arrays[1:])]
    if all(sh == shapes[0] for sh in shapes):
        return tuple(arrays)
    batch = np.broadcast_shapes(*shapes)
    a_b = np.broadcast_to(arrays[0], (*batch, *arrays[0].shape[-2:]))
    return (a_b, *(np.broadcast_to(v, batch) for v in arrays[1:]))


def _pinv_on_host(a, atol, rtol, bad=None, *, hermitian: bool, method: str) -> tuple:
    """The callback: ``_engine.compute_numpy`` on the whole (possibly vmapped) stack.

    Raw input (``bad is None``): the engine gives the members with NaN/Inf an all-NaN
    result and rank 0, and so this does for a NaN tolerance. Clean input: the members
    marked ``bad`` are NaN again for the engine, which skips them, and get zeros."""
    from .._engine import compute_numpy

    a, atol, rtol, *marks = _broadcast(a, atol, rtol, *(() if bad is None else (bad,)))
    a, atol, rtol = _skip_nan_tolerances(a, atol, rtol, marks[0] if marks else None)
    a = flush_subnormal(a)

    def run(stack, at, rt, name=method):
        return compute_numpy(
            stack, at, rt, dtype=a.dtype, hermitian=hermitian, method=name, check_finite=False
        )

    try:
        x, rank = run(a, atol, rtol)
    except ValueError as err:  # "qr" cannot certify a member: it cannot raise here
        if method != "qr" or isinstance(err, np.linalg.LinAlgError):
            raise
        x, rank = _qr_by_member(run, a, atol, rtol)
    if marks and marks[0].any():  # the zero matrix's pseudo-inverse: the rule stays finite
        x = np.where(marks[0][..., None, None], 0, x)
    return np.ascontiguousarray(x), np.asarray(rank).astype(_rank_dtype(), copy=False)


def _qr_by_member(run, a, atol, rtol) -> tuple[np.ndarray, np.ndarray]:
    """``method="qr"`` member by member, a member that it cannot certify to have full
    rank (where it raises eagerly) by the SVD, alone (as it would be in any stack)."""
    *batch, m, n = a.shape
    stack = a.reshape(-1, m, n)
    at, rt = atol.reshape(-1), rtol.reshape(-1)
    x = np.empty((len(stack), n, m), dtype=a.dtype)
    rank = np.empty(len(stack), dtype=np.int64)
    for i in range(len(stack)):
        one = stack[i : i + 1], at[i : i + 1], rt[i : i + 1]
        try:
            xi, ri = run(*one)
        except ValueError as err:
            if isinstance(err, np.linalg.LinAlgError):
                raise
            xi, ri = run(*one, name="svd")
        x[i], rank[i] = xi[0], ri[0]
    return x.reshape(*batch, n, m), rank.reshape(batch)
