"""The tolerance rule, its defaults and its validation, in one place.

The rule is that of ``torch.linalg.pinv`` and the Array API standard's
``linalg.pinv``: per matrix, ``tol = max(atol, rtol * sigma_max)``, and singular
values ``sigma > tol`` are kept (``<= tol`` are treated as zero).

Defaults (torch.linalg.pinv's documentation, "rtol"):

* ``atol=None`` means 0.
* ``rtol=None`` means ``max(m, n) * eps`` where ``atol`` is None or not positive,
  else 0; elementwise when ``atol`` is an array.

``rcond`` is NumPy's positional spelling of ``rtol`` (``numpy.linalg.pinv``); errors
about it name ``rcond``.

Traced JAX tolerances (a ``jax.core.Tracer`` under ``jax.jit``/``jax.vmap``) have no
value on the host: their dtype and shape are checked here, the rule is applied with
``jax.numpy`` operations (so it runs inside the trace) and they are returned as JAX
arrays; their NaN and negative values are handled by the JAX adapter (``_backends._jax``).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np


def is_traced(value: Any) -> bool:
    """Is ``value`` a JAX tracer (checked without importing JAX)?"""
    jax = sys.modules.get("jax")
    return jax is not None and isinstance(value, jax.core.Tracer)


def _check_dtype(kind: str, dtype: Any, value: Any, name: str) -> None:
    if kind == "c":
        raise ValueError(f"{name} must be real, got a complex value {value!r}")
    if kind not in "biuf":
        raise ValueError(f"{name} must be a real number or array, got dtype {dtype}")


def _as_real_array(value: Any, name: str) -> np.ndarray:
    """A tolerance as a float64 NumPy array, rejecting complex, NaN and negatives."""
    if hasattr(value, "detach"):  # a torch tensor, possibly on another device
        value = value.detach().cpu()
    try:
        arr = np.asarray(value)
    except Exception as err:  # pragma: no cover - exotic array types
        raise TypeError(
            f"{name} must be a real number or array, got {type(value).__name__}"
        ) from err
    _check_dtype(arr.dtype.kind, arr.dtype, value, name)
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not be NaN, got {value!r}")
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return arr


def _as_traced_array(value: Any, name: str) -> Any:
    """A traced tolerance as a JAX array of the default float dtype; only its dtype can
    be checked (its values exist only when the traced computation runs)."""
    import jax.numpy as jnp

    _check_dtype(np.dtype(value.dtype).kind, value.dtype, value, name)
    # float64 under jax_enable_x64, else float32: the adapter casts to the input's precision
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _fit_batch(arr: Any, name: str, batch_shape: tuple[int, ...]) -> Any:
    """``arr`` broadcast to exactly ``batch_shape`` (NumPy or JAX alike)."""
    try:
        shape = np.broadcast_shapes(tuple(arr.shape), batch_shape)
    except ValueError:
        shape = None
    if shape != tuple(batch_shape):
        raise ValueError(
            f"{name} of shape {tuple(arr.shape)} does not broadcast to the batch shape "
            f"{tuple(batch_shape)} (a {'damping' if name == 'damping' else 'tolerance'} "
            "may not enlarge the result's shape)"
        )
    if isinstance(arr, np.ndarray):
        return np.broadcast_to(arr, batch_shape)
    import jax.numpy as jnp

    return jnp.broadcast_to(arr, batch_shape)


def resolve(
    rcond: Any,
    atol: Any,
    rtol: Any,
    *,
    eps: float,
    m: int,
    n: int,
    batch_shape: tuple[int, ...],
) -> tuple[Any, Any]:
    """Validate the user's tolerances and return ``(atol, rtol)`` of exactly ``batch_shape``.

    Both are float64 NumPy arrays, unless one of the tolerances is a traced JAX value:
    then both are JAX arrays (of JAX's default float dtype) computed inside the trace,
    whose NaN or negative entries are not rejected (``_backends._jax`` documents what
    they do). ``eps`` is the machine epsilon of the input's real dtype (float16's for
    float16 input, although it is computed in float32: the data are only that precise).
    Errors about ``rtol`` name ``rcond`` when the user passed ``rcond``.
    """
    if rcond is not None and rtol is not None:
        raise TypeError("pinv got both rcond and rtol; rcond is an alias of rtol, pass one")
    rtol_name = "rtol"
    if rcond is not None:
        rtol, rtol_name = rcond, "rcond"
    if is_traced(atol) or is_traced(rtol):
        return _resolve_traced(atol, rtol, rtol_name, eps * max(m, n), batch_shape)
    atol_arr = np.zeros(()) if atol is None else _as_real_array(atol, "atol")
    atol_arr = _fit_batch(atol_arr, "atol", batch_shape)
    if rtol is None:
        # torch.linalg.pinv: rtol = eps * max(m, n) unless atol > 0, then 0 (elementwise).
        rtol_arr = np.where(atol_arr > 0, 0.0, eps * max(m, n))
    else:
        rtol_arr = _fit_batch(_as_real_array(rtol, rtol_name), rtol_name, batch_shape)
    return np.array(atol_arr, dtype=np.float64), np.array(rtol_arr, dtype=np.float64)


def _resolve_traced(
    atol: Any, rtol: Any, rtol_name: str, default: float, batch_shape: tuple[int, ...]
) -> tuple[Any, Any]:
    """:func:`resolve` in ``jax.numpy`` operations, for traced tolerances."""
    import jax.numpy as jnp

    def fit(value: Any, name: str) -> Any:
        if is_traced(value):
            arr = _as_traced_array(value, name)
        else:  # a concrete companion of a traced tolerance: checked on the host
            arr = jnp.asarray(_as_real_array(value, name), dtype=jnp.result_type(float))
        return _fit_batch(arr, name, batch_shape)

    atol_arr = fit(0.0 if atol is None else atol, "atol")
    if rtol is None:  # the same default as resolve's, elementwise inside the trace
        rtol_arr = jnp.where(atol_arr > 0, 0.0, default).astype(atol_arr.dtype)
    else:
        rtol_arr = fit(rtol, rtol_name)
    return atol_arr, rtol_arr


def threshold(smax: np.ndarray, atol: np.ndarray, rtol: np.ndarray) -> np.ndarray:
    """``tol = max(atol, rtol * sigma_max)``, the one formula every method uses."""
    return np.maximum(atol, rtol * smax)


def count(xp: Any, keep: Any) -> Any:
    """The rank: the number of kept values (``True``) along the last axis, in the
    library's default integer dtype."""
    try:
        int_dtype = xp.__array_namespace_info__().default_dtypes()["integral"]
    except (AttributeError, KeyError, TypeError):
        int_dtype = xp.int64
    return xp.sum(xp.astype(keep, int_dtype), axis=-1)


def _check_damping_values(values: np.ndarray, damping: Any) -> None:
    if np.isnan(values).any():
        raise ValueError(f"damping must not be NaN, got {damping!r}")
    if (values < 0).any():
        raise ValueError(f"damping must be >= 0 (it is lambda, not lambda**2), got {damping!r}")


def resolve_damping(damping: Any, kind: str, batch_shape: tuple[int, ...]) -> Any:
    """Validate ``damping`` (lambda >= 0, real, broadcastable to the batch shape).

    A Python number or NumPy array becomes float64 of exactly ``batch_shape``. An array
    of the input's own library (a torch tensor that may require grad, a JAX array that
    may be traced, an MLX array) stays one, so that it can be differentiated; its
    values are checked where they can be read (a traced JAX value cannot: there a
    negative damping acts as its absolute value and NaN gives a NaN result).
    """
    if damping is None:
        raise TypeError("damped_pinv needs damping (lambda >= 0), got None")
    module = type(damping).__module__.split(".")[0]
    own = {"torch": "torch", "jax": "jax", "jaxlib": "jax", "mlx": "mlx"}.get(module)
    if own is not None and own == kind:
        dtype = np.dtype(str(damping.dtype).rsplit(".", 1)[-1].replace("bfloat16", "float32"))
        _check_dtype(dtype.kind, damping.dtype, damping, "damping")
        if not is_traced(damping) and not _torch_transformed(damping):
            host = damping.detach().cpu() if hasattr(damping, "detach") else damping
            _check_damping_values(np.asarray(host, dtype=np.float64), damping)
        _fit_shape(tuple(damping.shape), "damping", batch_shape)
        return damping
    if own is not None or is_traced(damping):
        raise ValueError(
            f"damping must be a number, a NumPy array or an array of A's library ({kind}), "
            f"got {type(damping).__name__}"
        )
    try:
        arr = np.asarray(damping)
    except Exception as err:  # pragma: no cover - exotic objects
        raise TypeError(f"damping must be a real number or array, got {damping!r}") from err
    _check_dtype(arr.dtype.kind, arr.dtype, damping, "damping")
    arr = arr.astype(np.float64)
    _check_damping_values(arr, damping)
    return np.array(_fit_batch(arr, "damping", batch_shape), dtype=np.float64)


def _torch_transformed(value: Any) -> bool:
    """Is ``value`` a tensor wrapped by ``torch.func`` (grad, vmap, jvp)? Its values
    cannot be read (no storage), as a traced JAX value's: a negative damping then acts
    as its absolute value (``[A; -lambda I]`` has the same damped inverse), NaN gives NaN."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(value, torch.Tensor):
        return False
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(value))


def _fit_shape(shape: tuple[int, ...], name: str, batch_shape: tuple[int, ...]) -> None:
    try:
        ok = np.broadcast_shapes(shape, batch_shape) == tuple(batch_shape)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(
            f"{name} of shape {shape} does not broadcast to the batch shape "
            f"{tuple(batch_shape)} (it may not enlarge the result's shape)"
        )
