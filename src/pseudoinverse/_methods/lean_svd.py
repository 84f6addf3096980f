"""A lean real SVD pseudo-inverse: ``gesdd``'s own steps, with only the kept vectors formed.

LAPACK's ``gesdd`` (for ``m >= n`` not much larger) bidiagonalises ``A = Q B P^T``
(``gebrd``), takes the SVD of ``B`` by divide and conquer (``bdsdc``), then applies ``Q``
and ``P`` to all ``n`` singular vectors of ``B`` (``ormbr``, ``4 m n^2`` flops). The
pseudo-inverse needs only the ``r`` kept ones: here the same three routines run, but
``ormbr`` is applied to ``r`` columns (``4 m n r`` flops), and ``X = V_r S_r^{-1} U_r^T``
follows by one ``gemm``. For a rank-deficient matrix that is ``4 m n (n - r)`` flops
fewer (``2 n^3`` for rank ``n / 2``); for full rank it is ``gesdd`` itself.

The singular values are those ``gesdd`` computes (the same ``gebrd`` and ``bdsdc``),
so the rank is the SVD method's, and the accuracy promise is ``gesdd``'s (backward
stable: error about ``max(m, n) eps kappa_r``). The routines are SciPy's LAPACK
(``scipy.linalg.cython_lapack``), called through their C function pointers with
``ctypes``: no compiler, no new dependency. A ``bdsdc`` failure returns ``None`` and the
caller takes ``gesdd``, then ``gesvd``.
"""

from __future__ import annotations

import ctypes
import functools

import numpy as np

from .._tolerance import threshold
from .products import matmul

_P = ctypes.c_void_p
_INT_MAX = 2**31 - 1  # cython_lapack's integers are 32-bit
_int = ctypes.c_int


@functools.cache
def _routine(name: str) -> ctypes._CFuncPtr:
    """``scipy.linalg.cython_lapack``'s ``name`` as a ctypes function (all arguments
    pointers, Fortran style)."""
    from scipy.linalg import cython_lapack

    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    capsule = cython_lapack.__pyx_capi__[name]
    address = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    return ctypes.CFUNCTYPE(None)(address)


def _ptr(x: np.ndarray | ctypes._SimpleCData | bytes) -> ctypes.c_void_p | bytes:
    if isinstance(x, np.ndarray):
        return _P(x.ctypes.data)
    return x if isinstance(x, bytes) else ctypes.cast(ctypes.byref(x), _P)


def _call(name: str, *args: np.ndarray | ctypes._SimpleCData | bytes) -> None:
    _routine(name)(*(_ptr(a) for a in args))


def supports(m: int, n: int, dtype: np.dtype) -> bool:
    """Real, ``m >= n`` (callers pass ``A^T`` for wide input), not so tall that
    ``gesdd``'s QR-first path is the better one, and workspaces within 32-bit sizes."""
    return (
        dtype in (np.float32, np.float64)
        and n <= m <= 2 * n
        and 3 * n * n + 4 * n < _INT_MAX
        and m * n < _INT_MAX
    )


def _lwork(name: str, *args: np.ndarray | ctypes._SimpleCData | bytes, dtype: np.dtype) -> int:
    """LAPACK's workspace query (``lwork = -1``): the optimal size."""
    query = np.zeros(1, dtype=dtype)
    _call(name, *args, query, _int(-1), _int(0))
    return max(int(query[0]), 1)


def pinv_lean(
    w: np.ndarray, atol: float, rtol: float, *, transpose: bool = False
) -> tuple[np.ndarray, int] | None:
    """``(W^+, rank)`` of a Fortran-ordered real ``w`` (``m x n``, ``m >= n``, a work
    copy that is overwritten), ``W^+`` C-ordered ``(n, m)``, or its transpose ``(m, n)``
    with ``transpose``; ``None`` if ``bdsdc`` fails."""
    m, n = w.shape
    dt = w.dtype
    p = "s" if dt == np.float32 else "d"
    d = np.empty(n, dtype=dt)
    e = np.empty(max(n - 1, 1), dtype=dt)
    tauq = np.empty(n, dtype=dt)
    taup = np.empty(n, dtype=dt)
    info = _int(0)
    geb = (_int(m), _int(n), w, _int(m), d, e, tauq, taup)
    lwork = _lwork(p + "gebrd", *geb, dtype=dt)
    _call(p + "gebrd", *geb, np.empty(lwork, dtype=dt), _int(lwork), info)
    if info.value != 0:  # pragma: no cover - only illegal arguments make gebrd fail
        return None
    ub = np.empty((n, n), dtype=dt, order="F")
    vtb = np.empty((n, n), dtype=dt, order="F")
    work = np.empty(3 * n * n + 4 * n, dtype=dt)
    iwork = np.empty(8 * n, dtype=np.int32)
    dummy = np.empty(1, dtype=dt)
    idummy = np.empty(1, dtype=np.int32)
    _call(
        p + "bdsdc", b"U", b"I", _int(n), d, e, ub, _int(n), vtb, _int(n), dummy, idummy,
        work, iwork, info,
    )  # fmt: skip
    del work, iwork
    if info.value != 0:
        return None  # bdsdc did not converge: the caller's gesdd/gesvd chain decides
    tol = threshold(d[:1].astype(np.float64), np.asarray([atol]), np.asarray([rtol]))[0]
    rank = int(np.count_nonzero(d > tol))
    if rank == 0:
        return np.zeros((m, n) if transpose else (n, m), dtype=dt), 0
    u = np.zeros((m, rank), dtype=dt, order="F")  # U_r = Q [U_B[:, :r]; 0]
    u[:n] = ub[:, :rank]
    vt = np.asfortranarray(vtb[:rank])  # V_r^T = V_B[:, :r]^T P^T
    del ub, vtb
    left = (b"Q", b"L", b"N", _int(m), _int(rank), _int(n), w, _int(m), tauq, u, _int(m))
    right = (b"P", b"R", b"T", _int(rank), _int(n), _int(n), w, _int(m), taup, vt, _int(rank))
    for args in (left, right):
        lwork = _lwork(p + "ormbr", *args, dtype=dt)
        _call(p + "ormbr", *args, np.empty(lwork, dtype=dt), _int(lwork), info)
        if info.value != 0:  # pragma: no cover - only illegal arguments make ormbr fail
            return None
    u *= (1 / d[:rank]).astype(dt)  # U_r S_r^{-1}
    # SciPy's gemm: the thread pool of the LAPACK calls before (products.py)
    if transpose:  # X^T = U_r S_r^{-1} V_r^T (m x n)
        return matmul(u, vt), rank
    return matmul(vt.T, u.T), rank  # X = V_r S_r^{-1} U_r^T (n x m), C-ordered
