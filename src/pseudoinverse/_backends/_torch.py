"""PyTorch: tensors in, tensors out, on their own device.

A CPU tensor that needs no gradient is shared with NumPy at zero copy and takes the
NumPy path (LAPACK and the compiled kernels). Any other tensor is computed with torch
operations on its device.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

_KEPT = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def prepare(a: Any) -> Any:
    """Materialise lazy conjugation/negation bits so that NumPy sees the real values."""
    return a.resolve_conj().resolve_neg()


def _numpy_ok(a: torch.Tensor) -> bool:
    return a.device.type == "cpu" and not (torch.is_grad_enabled() and a.requires_grad)


def compute(a: torch.Tensor, atol: np.ndarray, rtol: np.ndarray, **options: Any) -> tuple:
    from .._api import _compute_numpy, _compute_xp

    dtype = options["dtype"]
    if _numpy_ok(a) and dtype in _KEPT:
        np_dtype = torch.empty((), dtype=dtype).numpy().dtype
        opts = {**options, "dtype": np_dtype}
        x, rank = _compute_numpy(a.detach().to(dtype).numpy(), atol, rtol, **opts)
        return torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(np.asarray(rank))
    import array_api_compat.torch as xp

    return _compute_xp(xp, a, atol, rtol, **options)
