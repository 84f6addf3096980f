"""The tolerance rule, its defaults and its validation, in one place.

The rule is that of ``torch.linalg.pinv`` and the Array API standard's
``linalg.pinv``: per matrix, ``tol = max(atol, rtol * sigma_max)``, and singular
values ``sigma > tol`` are kept (``<= tol`` are treated as zero).

Defaults (torch.linalg.pinv's documentation, "rtol"):

* ``atol=None`` means 0.
* ``rtol=None`` means ``max(m, n) * eps`` where ``atol`` is None or not positive,
  else 0; elementwise when ``atol`` is an array.

``rcond`` is NumPy's positional spelling of ``rtol`` (``numpy.linalg.pinv``).
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real, got a complex value {value!r}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be a real number or array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if np.isnan(arr).any():
        raise ValueError(f"{name} must not be NaN, got {value!r}")
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return arr


def _fit_batch(arr: np.ndarray, name: str, batch_shape: tuple[int, ...]) -> np.ndarray:
    try:
        shape = np.broadcast_shapes(arr.shape, batch_shape)
    except ValueError:
        shape = None
    if shape != tuple(batch_shape):
        raise ValueError(
            f"{name} of shape {arr.shape} does not broadcast to the batch shape "
            f"{tuple(batch_shape)} (a tolerance may not enlarge the result's shape)"
        )
    return np.broadcast_to(arr, batch_shape)


def resolve(
    rcond: Any,
    atol: Any,
    rtol: Any,
    *,
    eps: float,
    m: int,
    n: int,
    batch_shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """Validate the user's tolerances and return ``(atol, rtol)`` as float64 arrays.

    Both results have exactly ``batch_shape``. ``eps`` is the machine epsilon of the
    input's real dtype (float16's for float16 input, although it is computed in
    float32: the data are only that precise).
    """
    if rcond is not None and rtol is not None:
        raise TypeError("pinv got both rcond and rtol; rcond is an alias of rtol, pass one")
    if rcond is not None:
        rtol = rcond
    atol_arr = np.zeros(()) if atol is None else _as_real_array(atol, "atol")
    atol_arr = _fit_batch(atol_arr, "atol", batch_shape)
    if rtol is None:
        # torch.linalg.pinv: rtol = eps * max(m, n) unless atol > 0, then 0 (elementwise).
        default = eps * max(m, n)
        rtol_arr = np.where(atol_arr > 0, 0.0, default)
    else:
        rtol_arr = _fit_batch(_as_real_array(rtol, "rtol"), "rtol", batch_shape)
    return np.array(atol_arr, dtype=np.float64), np.array(rtol_arr, dtype=np.float64)


def threshold(smax: np.ndarray, atol: np.ndarray, rtol: np.ndarray) -> np.ndarray:
    """``tol = max(atol, rtol * sigma_max)``, the one formula every method uses."""
    return np.maximum(atol, rtol * smax)
