"""What knows a backend by name.

Arrays are recognised by their type's module, so nothing optional is imported to ask
"is this a torch tensor?" (array-api-compat's ``is_*_array`` helpers look in
``sys.modules`` the same way). The backend modules themselves (``_torch``, ``_jax``,
``_mlx``) import their library lazily, when such an array arrives.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

# Array kinds the dispatcher routes by name; everything else is "xp" (Array API).
NUMPY, TORCH, JAX, MLX, DASK, XP = "numpy", "torch", "jax", "mlx", "dask", "xp"


def kind_of(a: Any) -> str:
    """The backend kind of ``a``; plain Python sequences count as NumPy array-likes."""
    module = type(a).__module__.split(".")[0]
    if module == "mlx":
        return MLX
    if array_api_compat.is_torch_array(a):
        return TORCH
    if array_api_compat.is_jax_array(a):
        return JAX
    if array_api_compat.is_dask_array(a):
        return DASK
    if isinstance(a, np.ndarray | np.generic) or not hasattr(a, "__array_namespace__"):
        return NUMPY
    return XP


def as_numpy_input(a: Any) -> np.ndarray:
    """``np.asarray`` for NumPy arrays and array-likes, with a clear error for non-numbers."""
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as err:
        raise ValueError(f"pinv expects a numeric array of shape (..., m, n): {err}") from err
    if arr.dtype.kind not in "biufc":
        raise ValueError(
            f"pinv expects a numeric array of shape (..., m, n), got dtype {arr.dtype}"
        )
    if not arr.dtype.isnative:  # a big-endian float64 is a float64 (SPEC): one copy
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def native(dtype: Any) -> Any:
    """A NumPy dtype in this machine's byte order (other libraries' dtypes unchanged)."""
    if isinstance(dtype, np.dtype) and not dtype.isnative:
        return dtype.newbyteorder("=")
    return dtype


def default_float(xp: Any) -> Any:
    """The library's default real floating dtype (for integer and bool input)."""
    try:
        return xp.__array_namespace_info__().default_dtypes()["real floating"]
    except (AttributeError, KeyError, TypeError):
        return xp.asarray(0.0).dtype


# Each library's adapter: a module with ``pinv(req)``, ``solve(req)`` and ``damped(req)``
# (``_validate.Request`` in; ``(x, rank, method)``, ``(x, rank, method)`` and ``x`` out,
# in the input's library). Imported when such an array first arrives.
_ADAPTERS = {
    NUMPY: "._numpy",
    TORCH: "._torch",
    JAX: "._jax",
    MLX: "._mlx",
    DASK: "._dask",
    XP: "._xp",
}


def adapter(kind: str) -> Any:
    """The adapter module for an array kind (one interface, looked up by kind)."""
    import importlib

    return importlib.import_module(_ADAPTERS[kind], __name__)
