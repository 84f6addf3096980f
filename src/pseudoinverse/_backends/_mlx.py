"""MLX: arrays in and out, ``stream=`` honoured.

MLX's CPU arrays are shared with NumPy, so the NumPy path (LAPACK, compiled kernels)
computes and the result comes back as an MLX array of the input's dtype. MLX has no
complex128; its complex64 is supported (``mlx.core.linalg.pinv`` rejects complex).
"""

from __future__ import annotations

from typing import Any

import mlx.core as mx
import numpy as np

_TO_MX = {
    np.dtype(np.float32): mx.float32,
    np.dtype(np.float64): mx.float64,
    np.dtype(np.complex64): mx.complex64,
}


def to_numpy(a: Any) -> np.ndarray:
    """The NumPy view of an MLX array (bfloat16, which NumPy lacks, as float32)."""
    if a.dtype == mx.bfloat16:
        a = a.astype(mx.float32)
    return np.array(a, copy=False)


def from_numpy(x: np.ndarray, dtype: Any, stream: Any = None) -> Any:
    """An MLX array of ``dtype`` from NumPy data, placed with ``stream`` if given."""
    out = mx.array(x, dtype=_TO_MX.get(x.dtype, mx.float32))
    if out.dtype != dtype:
        out = out.astype(dtype, stream=_cpu(stream))
    return out


def _cpu(stream: Any) -> Any:
    """A stream for the conversions: MLX's linear algebra has no GPU kernels, so CPU."""
    return mx.cpu if stream is None or stream == mx.gpu else stream


def pinv(
    A: Any,
    a: np.ndarray,
    atol: np.ndarray,
    rtol: np.ndarray,
    hermitian: bool,
    out: Any,
    method: str,
    return_rank: bool,
    check_finite: bool,
    stream: Any,
    dtype: Any,
) -> Any:
    from .._api import PinvResult, _check_out, _compute_numpy

    *batch, m, n = a.shape
    result_dtype = A.dtype if A.dtype not in (mx.bool_,) and not _is_int(A.dtype) else mx.float32
    if out is not None:
        _check_out(out, "mlx", (*batch, n, m), result_dtype)
    if a.size == 0:
        x_np, rank_np = np.zeros((*batch, n, m), dtype=np.float32), np.zeros(batch, np.int64)
    else:
        work = np.float32 if a.dtype.kind in "biu" or a.dtype == np.float16 else a.dtype
        x_np, rank_np = _compute_numpy(
            a, atol, rtol, dtype=work, hermitian=hermitian, method=method, check_finite=check_finite
        )
    x = from_numpy(x_np, result_dtype, stream)
    if out is not None:
        out[...] = x
        x = out
    if not return_rank:
        return x
    return PinvResult(x, int(rank_np) if not batch else mx.array(rank_np))


def _is_int(dtype: Any) -> bool:
    return mx.issubdtype(dtype, mx.integer)
