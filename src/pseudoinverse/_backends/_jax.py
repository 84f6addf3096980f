"""JAX: ``jax.Array`` in and out through the portable core, differentiable.

The computation is a ``jax.custom_jvp`` with the Golub–Pereyra formula
(``_autodiff``), so ``jax.jit``, ``jax.vmap``, ``jax.grad``, ``jax.jvp``,
``jax.jacfwd`` and ``jax.jacrev`` work; tolerances are constants, ``hermitian`` and
``method`` static.

Under a transformation that traces (``jit``, ``vmap``, ...) the values of ``A`` cannot
be inspected, so ``check_finite=True`` cannot raise: a matrix holding NaN or Inf gets
an all-NaN pseudo-inverse, the ``check_finite=False`` behaviour. Tolerances must be
Python numbers or concrete arrays (traced tolerances are not supported: the tolerance
rule is resolved on the host).
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np


def _traced(a: Any) -> bool:
    return isinstance(a, jax.core.Tracer)


def _check_finite(a: Any, hermitian: bool) -> None:
    """Raise naming the first batch index with NaN/Inf where it is read."""
    from .._api import _first_bad

    finite = jnp.isfinite(a)
    if hermitian:  # only the lower triangle is read
        m, n = a.shape[-2:]
        finite = finite | jnp.triu(jnp.ones((m, n), dtype=bool), 1)
    bad = np.asarray(~jnp.all(finite, axis=(-2, -1)))
    if bad.any():
        message = _first_bad(bad.reshape(-1), bad.shape)
        raise ValueError(message + " (pass check_finite=False for NaN)")


def compute(
    a: Any,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple:
    if check_finite and not _traced(a):
        _check_finite(a, hermitian)
    real = jnp.finfo(dtype).dtype  # float32 for complex64, float64 for complex128
    atol_j = jnp.asarray(atol, dtype=real)
    rtol_j = jnp.asarray(rtol, dtype=real)
    return _compiled(a, atol_j, rtol_j, dtype=jnp.dtype(dtype), hermitian=hermitian, method=method)


@functools.partial(jax.jit, static_argnames=("dtype", "hermitian", "method"))
def _compiled(a: Any, atol: Any, rtol: Any, *, dtype: Any, hermitian: bool, method: str) -> tuple:
    """Compiled once per shape and options: eager JAX would dispatch op by op. Inside a
    user's ``jit`` it is inlined; ``grad``/``vmap`` see the ``custom_jvp`` within."""
    from .._autodiff import hermitian_part, jax_pinv

    a = a.astype(dtype)  # differentiable: float16/bfloat16 gradients come back in theirs
    if hermitian:
        a = hermitian_part(jnp, a)
    return jax_pinv(a, atol, rtol, hermitian=hermitian, method=method)
