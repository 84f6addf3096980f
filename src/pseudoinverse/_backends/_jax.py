"""JAX: ``jax.Array`` in and out through the portable core."""

from __future__ import annotations

from typing import Any

import numpy as np


def compute(a: Any, atol: np.ndarray, rtol: np.ndarray, **options: Any) -> tuple:
    import jax.numpy as jnp

    from .._api import _compute_xp

    return _compute_xp(jnp, a, atol, rtol, **options)
