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

from .. import _finite


def _traced(a: Any) -> bool:
    return isinstance(a, jax.core.Tracer)


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
        _finite.raise_if_bad(jnp, _finite.bad_members(jnp, a, hermitian))
    real = jnp.finfo(dtype).dtype  # float32 for complex64, float64 for complex128
    atol_j = jnp.asarray(atol, dtype=real)
    rtol_j = jnp.asarray(rtol, dtype=real)
    return _compiled(a, atol_j, rtol_j, dtype=jnp.dtype(dtype), hermitian=hermitian, method=method)


@functools.partial(jax.jit, static_argnames=("dtype", "hermitian", "method"))
def _compiled(a: Any, atol: Any, rtol: Any, *, dtype: Any, hermitian: bool, method: str) -> tuple:
    """Compiled once per shape and options: eager JAX would dispatch op by op. Inside a
    user's ``jit`` it is inlined; ``grad``/``vmap`` see the ``custom_jvp`` within."""
    from .._autodiff import jax_pinv
    from .._methods.eigh import hermitian_from_lower as hermitian_part

    a = a.astype(dtype)  # differentiable: float16/bfloat16 gradients come back in theirs
    if hermitian:
        a = hermitian_part(jnp, a)
    return jax_pinv(a, atol, rtol, hermitian=hermitian, method=method)
