"""PyTorch: tensors in, tensors out, on their own device, differentiable.

A CPU tensor that needs no gradient (and is not inside a ``torch.func`` transform) is
shared with NumPy at zero copy and takes the NumPy path (LAPACK and the compiled
kernels). Any other tensor is computed with torch operations on its device by the
portable core, wrapped in a ``torch.autograd.Function`` whose derivative is the
Golub–Pereyra formula (``_autodiff``): backward, double backward, forward mode,
``torch.func.grad``/``vmap``/``jacfwd``/``jacrev``.

Inside ``torch.func.vmap`` the values cannot be inspected, so ``check_finite`` cannot
raise there: a matrix holding NaN or Inf gets an all-NaN result (the
``check_finite=False`` behaviour). On the torch-operations path the bad members are
found on the raw input (before the Hermitian part, which drops the imaginary part of the
diagonal: a NaN there still makes the matrix bad, as on the NumPy path), computed as
zero matrices and their results set to NaN with ``where``, so the gradient at the other
members stays finite.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import _engine, _finite

_KEPT = (torch.float32, torch.float64, torch.complex64, torch.complex128)


def _transformed(a: torch.Tensor) -> bool:
    """Is ``a`` wrapped by a ``torch.func`` transform (grad, vmap, jvp)?"""
    return bool(torch._C._functorch.is_functorch_wrapped_tensor(a))


def _on_host(a: torch.Tensor) -> bool:
    """A CPU tensor outside ``torch.func`` transforms: its values can be read by NumPy
    (the derivative's forward pass then runs on the engine's NumPy stacks)."""
    return a.device.type == "cpu" and not _transformed(a)


def _numpy_ok(a: torch.Tensor) -> bool:
    """CPU, and no derivative wanted: not backward, not forward mode, not torch.func."""
    return (
        a.device.type == "cpu"
        and not (torch.is_grad_enabled() and a.requires_grad)
        and not _transformed(a)
        and torch.autograd.forward_ad.unpack_dual(a).tangent is None
    )


def _np_dtype(dtype: Any) -> np.dtype:
    return torch.empty((), dtype=dtype).numpy().dtype


def _tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x))


def _host(t: torch.Tensor, dtype: Any) -> np.ndarray:
    return t.detach().to(dtype).numpy()


def _name(req: Any, numpy_path: bool) -> str:
    from . import _numpy, _xp

    return _numpy.chosen(req) if numpy_path else _xp.name(req)


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
    return x, rank, _name(req, _numpy_ok(req.a))


def _portable_fn(check_finite: bool, dtype: Any) -> Any:
    def fn(a: Any, atol: Any, rtol: Any, hermitian: bool, method: str) -> tuple[Any, Any]:
        return compute(
            a,
            atol,
            rtol,
            dtype=dtype,
            hermitian=hermitian,
            method=method,
            check_finite=check_finite,
        )

    return fn


def solve(req: Any) -> tuple[Any, Any, str]:
    a, b = req.a, req.b
    if _numpy_ok(a) and _numpy_ok(b):
        x, rank = _engine.solve_numpy(
            _host(a, req.dtype),
            _host(b, req.dtype),
            req.atol,
            req.rtol,
            dtype=_np_dtype(req.dtype),
            hermitian=req.hermitian,
            method=req.method,
            check_finite=req.check_finite,
        )
        return _tensor(x), torch.from_numpy(np.asarray(rank)), _name(req, True)
    import array_api_compat.torch as xp

    x, rank = _engine.solve_xp(
        xp,
        a,
        b,
        req.atol,
        req.rtol,
        dtype=req.dtype,
        hermitian=req.hermitian,
        method=req.method,
        check_finite=req.check_finite and not _transformed(a),
        pinv_fn=_portable_fn(False, req.dtype),
    )
    return x, rank, _name(req, False)


def damped(req: Any) -> Any:
    a, b, lam = req.a, req.b, req.damping
    lam_ok = not isinstance(lam, torch.Tensor) or _numpy_ok(lam)
    if _numpy_ok(a) and (b is None or _numpy_ok(b)) and lam_ok:
        lam_np = _host(lam, torch.float64) if isinstance(lam, torch.Tensor) else lam
        x = _engine.damped_numpy(
            _host(a, req.dtype),
            np.asarray(lam_np, dtype=np.float64),
            None if b is None else _host(b, req.dtype),
            dtype=_np_dtype(req.dtype),
            hermitian=req.hermitian,
            check_finite=req.check_finite,
        )
        return _tensor(x)
    import array_api_compat.torch as xp

    if not isinstance(lam, torch.Tensor):
        lam = torch.as_tensor(np.asarray(lam), device=a.device)
    return _engine.damped_xp(
        xp,
        a,
        lam.to(a.device),
        b,
        dtype=req.dtype,
        hermitian=req.hermitian,
        check_finite=req.check_finite and not _transformed(a),
        damped_fn=_damped_fn,
    )


def _damped_fn(t: torch.Tensor, lam: torch.Tensor) -> tuple[Any, Any]:
    from .._damped import torch_damped

    return torch_damped(t, lam)


def compute(
    a: torch.Tensor,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple:
    if _numpy_ok(a):  # zero-copy NumPy view: the fast path
        x, rank = _engine.compute_numpy(
            a.detach().to(dtype).numpy(),
            atol,
            rtol,
            dtype=_np_dtype(dtype),
            hermitian=hermitian,
            method=method,
            check_finite=check_finite,
        )
        return _tensor(x), torch.from_numpy(np.asarray(rank))
    import array_api_compat.torch as xp

    from .._autodiff import torch_pinv
    from .._methods.eigh import hermitian_from_lower as hermitian_part

    # On the raw input: the Hermitian part would drop a NaN imaginary part of the diagonal.
    bad = _finite.bad_members(xp, a, hermitian)
    if check_finite and not _transformed(a):  # one device sync, as any raising check needs
        _finite.raise_if_bad(xp, bad)
    a = a.to(dtype)  # differentiable: float16/bfloat16 gradients flow back in their dtype
    a = _finite.zero_bad(xp, a, bad)  # a where: the gradient at good members stays finite
    if hermitian:
        a = hermitian_part(xp, a)
    host = _on_host(a)
    x, rank = torch_pinv(
        a, atol, rtol, hermitian=hermitian, method=method, host=host, bad=bad if host else None
    )
    return _finite.nan_bad(xp, x, rank, bad)
