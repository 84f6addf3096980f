"""The plain SVD method: ``A^+ = V diag(1/sigma kept) U^H``.

Accuracy promise: backward stable SVD (LAPACK ``gesdd``, falling back to ``gesvd``);
the result's error is that of ``numpy.linalg.pinv``: about
``max(m, n) * eps * kappa_r`` relative, where ``kappa_r = sigma_max / sigma_r`` is the
condition number of the kept part. Rank decisions follow the rule exactly, on the
computed singular values.

Wide matrices (``m < n``) go through their conjugate transpose, since
``pinv(A) = pinv(A^H)^H`` and LAPACK's tall path is the faster one. One large real
matrix (``min(m, n) >= LARGE``, ``max(m, n) <= 2 min(m, n)``) runs ``gesdd``'s own
steps with only the kept singular vectors formed (``lean_svd.py``): the same singular
values and promise, ``4 m n (n - r)`` fewer flops for rank ``r``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg  # noqa: F401  (kept: tests may patch scipy.linalg.svd)
from scipy.linalg import lapack

from .._tolerance import count, threshold
from . import lean_svd
from .products import matmul

LARGE = 64  # min(m, n) from which a stack is done matrix by matrix (lean path)


try:  # the gufunc behind np.linalg.svd(a, full_matrices=False), called as NumPy calls it
    from numpy.linalg import _umath_linalg

    _SVD_THIN = _umath_linalg.svd_s
except (ImportError, AttributeError):  # pragma: no cover - another NumPy layout
    _SVD_THIN = None


def _no_convergence(err: str, flag: int) -> None:
    raise np.linalg.LinAlgError("SVD did not converge")


def _svd_stacked(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NumPy's batched ``gesdd``: fast for many small matrices, all-or-nothing on failure.

    The same call (and so the same bits) as ``np.linalg.svd(a, full_matrices=False)``,
    without its argument handling, which costs a third of a 6x7 matrix's SVD: the
    gufunc in double precision under the same error state, single precision rounded
    after, as NumPy does.
    """
    if _SVD_THIN is None:  # pragma: no cover
        return np.linalg.svd(a, full_matrices=False)
    complex_ = a.dtype.kind == "c"
    with np.errstate(
        call=_no_convergence, invalid="call", over="ignore", divide="ignore", under="ignore"
    ):
        u, s, vh = _SVD_THIN(a, signature="D->DdD" if complex_ else "d->ddd")
    if a.itemsize < (16 if complex_ else 8):
        real = np.float32
        u, s, vh = u.astype(a.dtype), s.astype(real), vh.astype(a.dtype)
    return u, s, vh


def _svd_lapack(a: np.ndarray, driver: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of one matrix by LAPACK ``driver``; raises ``LinAlgError`` on no convergence.

    ``a`` is a work copy owned by the caller: when it is Fortran-ordered (as ``_svd_one``
    makes it) LAPACK overwrites it instead of copying; any other layout is copied first.
    The workspace size is LAPACK's optimal one (``gesdd``'s default is larger).
    """
    fn, fn_lwork = lapack.get_lapack_funcs((driver, driver + "_lwork"), (a,))
    lwork, info = fn_lwork(a.shape[0], a.shape[1], compute_uv=1, full_matrices=0)
    u, s, vh, info = fn(
        a, compute_uv=1, full_matrices=0, lwork=max(int(np.real(lwork)), 1), overwrite_a=1
    )
    if info > 0:
        raise np.linalg.LinAlgError(f"SVD did not converge ({driver}, info={info})")
    if info < 0:  # pragma: no cover - a wrapper bug, not a property of the data
        raise ValueError(f"illegal value in argument {-info} of {driver}")
    return u, s, vh


def _svd_one(
    a: np.ndarray, index: int, *, conj: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``gesdd``, then ``gesvd`` (slower, but converges where ``gesdd`` does not).

    Each attempt runs on a fresh Fortran-ordered copy of ``a`` (conjugated if ``conj``),
    which LAPACK then overwrites: ``a`` itself is never modified.
    """
    for driver in ("gesdd", "gesvd"):
        work = np.array(a, order="F")
        if conj:
            np.conjugate(work, out=work)
        try:
            return _svd_lapack(work, driver)
        except np.linalg.LinAlgError as err:
            last = err
        del work
    raise np.linalg.LinAlgError(
        f"pinv: the SVD of batch member {index} did not converge with gesdd nor gesvd"
    ) from last


def _svd_member(a: np.ndarray, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One member of a failed stack: NumPy's ``gesdd`` as in the stack (the same result
    as there), then the ``gesdd``/``gesvd`` chain of ``_svd_one``."""
    try:
        return _svd_stacked(a)
    except np.linalg.LinAlgError:
        return _svd_one(a, index)


def svd_batch(a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thin SVD of a stack ``(B, m, n)`` by NumPy's ``gesdd``, whatever ``B`` (so that a
    matrix gets the same result alone and in any stack); a member that fails is redone
    alone, down the driver chain."""
    try:
        return _svd_stacked(a)
    except np.linalg.LinAlgError:
        pass  # some member failed: redo each with the fallback driver chain below
    parts = [_svd_member(a[i], i) for i in range(a.shape[0])]
    return tuple(np.stack(p) for p in zip(*parts, strict=True))  # type: ignore[return-value]


def pinv_svd_one(a: np.ndarray, atol: float, rtol: float, index: int = 0) -> tuple[np.ndarray, int]:
    """Lean pseudo-inverse of one C-ordered matrix: ``(X, rank)``, ``X`` C-ordered.

    Large real matrices (not much taller than wide, either way) take ``lean_svd.py``:
    ``gesdd``'s own ``gebrd`` and ``bdsdc``, with only the kept singular vectors formed
    (the same singular values, so the same rank); where ``bdsdc`` fails, or otherwise,
    the ``gesdd``/``gesvd`` chain below. Memory: one work copy (overwritten by
    LAPACK), ``U`` and ``V^H`` and ``gesdd``'s workspace (``3 k^2``) during the SVD,
    then ``X`` written by one ``gemm`` into a preallocated array from the kept columns
    of ``U`` (scaled in place) and rows of ``V^H``. Wide input is decomposed as
    ``A^H``.
    """
    m, n = a.shape
    wide = m < n
    if min(m, n) >= LARGE and lean_svd.supports(max(m, n), min(m, n), a.dtype):
        got = lean_svd.pinv_lean(
            np.array(a.T if wide else a, order="F"), atol, rtol, transpose=wide
        )
        if got is not None:
            return got
    u, s, vh = _svd_one(a.T if wide else a, index, conj=wide and np.iscomplexobj(a))
    tol = threshold(s[:1], np.asarray([atol]), np.asarray([rtol]))[0]
    rank = int(np.count_nonzero(s > tol))
    if rank == 0:
        return np.zeros((n, m), dtype=a.dtype), 0
    uk, vk = u[:, :rank], vh[:rank]  # slices to the rank: NumPy data are concrete
    uk *= (1 / s[:rank]).astype(uk.dtype)  # columns of U scaled in place
    # SciPy's gemm, the SVD's thread pool (products.py)
    if wide:  # A = (U S V^H)^H: A^+ = U S^-1 V^H
        return matmul(uk, vk), rank
    if np.iscomplexobj(uk):  # A^+ = V S^-1 U^H
        return matmul(vk.conj().T, uk.conj().T), rank
    return matmul(vk.T, uk.T), rank


def pinv_svd(
    a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-inverse of a finite stack ``(B, m, n)`` by the SVD; returns ``(X, rank)``.

    Large matrices (``min(m, n) >= LARGE``) go one by one through the lean path
    (``pinv_svd_one``); small ones, alone or stacked, through NumPy's batched SVD: a
    matrix gets the same result alone and in any stack.
    """
    b, m, n = a.shape
    if min(m, n) >= LARGE and b == 1:  # no copy of the result: it is ours already
        x1, r1 = pinv_svd_one(a[0], float(atol[0]), float(rtol[0]))
        return x1[None], np.array([r1], dtype=np.int64)
    if min(m, n) >= LARGE:
        x = np.empty((b, n, m), dtype=a.dtype)
        rank = np.empty(b, dtype=np.int64)
        for i in range(b):
            x[i], rank[i] = pinv_svd_one(a[i], float(atol[i]), float(rtol[i]), i)
        return x, rank
    # Few, cheap NumPy calls (one 6x7 matrix costs about 10 us of SVD, and a control
    # loop pays this per call): a wide stack as its conjugate transpose, real data never
    # conjugated, the filter by one masked division.
    complex_ = a.dtype.kind == "c"
    ct = _ct_complex if complex_ else _t_real
    u, s, vh = svd_batch(ct(a) if m < n else a)
    keep = s > threshold(s[:, 0], atol, rtol)[:, None]
    s_inv = np.divide(1, s, out=np.zeros_like(s), where=keep)
    x = (ct(vh) * s_inv[:, None, :]) @ ct(u)
    if m < n:  # pinv(A) = pinv(A^H)^H
        x = np.ascontiguousarray(ct(x))
    return x, keep.sum(axis=-1, dtype=np.int64)


def pinv_svd_single(a: np.ndarray, rtol: float) -> tuple[np.ndarray, int]:
    """``pinv_svd`` of one small matrix ``a`` (2-D, C-ordered, finite, ``min(m, n) <
    LARGE``) with ``atol = 0``: the same operations on the same data, so the same bits
    (``tests/test_pinv.py`` compares them), with scalars where ``pinv_svd`` broadcasts
    arrays of one member (one 6x7 matrix's SVD costs 9 us; each NumPy call about 1)."""
    m, n = a.shape
    ct = _ct_complex if a.dtype.kind == "c" else _t_real
    u, s, vh = svd_batch(ct(a[None]) if m < n else a[None])
    # float64 scalars, as threshold's arrays are: a float32 s is compared in float64
    u, s, vh = u[0], s[0], vh[0]  # 2-D operations: fewer microseconds, the same bits
    tol = max(0.0, rtol * float(s[0]))
    keep = s > np.float64(tol)
    s_inv = np.divide(1, s, out=np.zeros_like(s), where=keep)
    x = (vh.conj().T * s_inv) @ u.conj().T if a.dtype.kind == "c" else (vh.T * s_inv) @ u.T
    if m < n:
        x = np.ascontiguousarray(x.conj().T if a.dtype.kind == "c" else x.T)
    return x, int(np.count_nonzero(keep))


def _t_real(x: np.ndarray) -> np.ndarray:
    return x.transpose(0, 2, 1)


def _ct_complex(x: np.ndarray) -> np.ndarray:
    return x.conj().transpose(0, 2, 1)


def pinv_svd_xp(xp: Any, a: Any, atol: Any, rtol: Any, *, hermitian: bool = False) -> tuple:
    """The same method written once against the Array API standard (any backend).

    ``a`` is ``(..., m, n)``; ``atol``/``rtol`` are real arrays of the batch shape.
    Masks, not slices: the rank never shapes an array (jit, vmap and Dask stay static).
    """
    u, s, vh = xp.linalg.svd(a, full_matrices=False)
    smax = xp.max(s, axis=-1) if s.shape[-1] else xp.zeros(s.shape[:-1], dtype=s.dtype)
    tol = xp.maximum(atol, rtol * smax)
    keep = s > tol[..., None]
    s_inv = xp.where(keep, 1 / xp.where(keep, s, xp.ones_like(s)), xp.zeros_like(s))
    vs = _ct(xp, vh) * xp.astype(s_inv, a.dtype)[..., None, :]
    return vs @ _ct(xp, u), count(xp, keep)


def _ct(xp: Any, x: Any) -> Any:
    """Conjugate transpose of the last two axes."""
    x = xp.matrix_transpose(x)
    return xp.conj(x) if xp.isdtype(x.dtype, "complex floating") else x
