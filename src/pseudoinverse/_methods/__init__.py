"""The methods, one file each, all with one signature, and the rule ``"auto"`` follows.

Every NumPy implementation is called as ``fn(a, atol, rtol, hermitian=...)`` on a finite
C-contiguous stack ``a`` of shape ``(B, m, n)`` (``B, m, n >= 1``; float32, float64,
complex64 or complex128) with float64 tolerances of shape ``(B,)``, must not modify
``a``, and returns ``(X, rank)``: ``X`` of shape ``(B, n, m)`` and ``a``'s dtype, ``rank``
int64 of shape ``(B,)``. Portable (Array API) implementations take ``xp`` first and any
batch shape.

Methods a user can name (``METHODS``): ``"svd"``, ``"eigh"`` (``hermitian=True``),
``"qr"`` (certified full rank, else ``ValueError``; ``qr.py``), ``"randomized"``
(low rank, certified, else the SVD; ``randomized.py``), ``"jacobi"`` (compiled batched
Jacobi SVD for small matrices; ``jacobi.py``) and ``"batched"`` (certified stacked
inverses for medium matrices, else the SVD; ``batched.py``). Methods other than ``"svd"`` and
``"eigh"`` exist for NumPy-backed data (NumPy, CPU torch tensors, MLX); the portable path
computes them with the SVD.

The ``"auto"`` rule (for NumPy-backed input), by size (``LARGE = svd.LARGE`` on
``min(m, n)``):

1. ``hermitian=True``: large matrices try Cholesky, then (indefinite) LU of the whole
   matrix, each taken only when it succeeds and the residual certificate
   (``certificate.py``) proves every eigenvalue is kept (``cholesky.py``, ``qr.py``),
   else the lean
   eigh path (``cholesky.pinv_eigh_one``: same eigenvalues and rank as ``"eigh"``,
   ``X`` by two ``syrk``); small ones ``"eigh"``.
2. otherwise, large matrices try LU (square; ``qr.py``) or, non-square, the normal
   equations, CholeskyQR2 or Householder QR by ``kappa`` (``gram.py``), taken only
   when a certificate proves every singular value is kept (the residual of
   ``certificate.py``, or the Gram matrix's shifted Cholesky tests of ``gram.py``),
   else ``"svd"`` (the certificate needs the factorisation, so the choice happens per
   matrix inside ``pinv_direct_or_svd``); so do non-square matrices with
   ``min(m, n) >= GRAM_FROM`` at least twice as long as wide (the Gram routes pay there);
   other small ones ``"svd"``. Single precision runs these in float64
   (``_certified_or``).
3. before both: stacks of medium matrices (``batched.supports``: at least 2 matrices,
   ``min(m, n)`` from 8-16 by dtype, ``max(m, n) <= 96``) take ``"batched"`` (a
   certified stacked inverse per matrix, else the SVD/eigh for that matrix); stacks of
   at least ``JACOBI_MIN_BATCH`` small matrices (``jacobi.supports``: up to 16-32 by
   dtype) take ``"jacobi"``, the compiled kernel. A single small matrix, or a short
   stack, stays on LAPACK: the kernel's first call compiles it (seconds, once per
   machine thanks to numba's cache), which only a real batch repays.

Whichever path runs, the rank is the SVD's (the proof is in ``certificate.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from . import batched, jacobi, spectral, stacked_qr, warmup
from .cholesky import cholesky_inverse, pinv_eigh_one
from .eigh import hermitian_from_lower, pinv_eigh, pinv_eigh_xp
from .qr import full_rank_inverse, pinv_qr
from .randomized import pinv_randomized
from .svd import LARGE, pinv_svd, pinv_svd_one, pinv_svd_xp
from .svd import pinv_svd_single as pinv_svd_single

_log = logging.getLogger("pseudoinverse")

NumpyMethod = Callable[..., tuple[np.ndarray, np.ndarray]]


def _certified_or(direct: Callable, fallback: Callable, doc: str) -> NumpyMethod:
    """A per-matrix method: ``direct`` where its certificate holds (full rank, every
    value kept), else ``fallback``; both for one matrix at a time (large ones).

    Single precision runs ``direct`` on a float64 (complex128) copy, as NumPy computes
    everything: its certificate is decided against the input's eps (the precision
    ``fallback`` would run in), and the result is rounded to the input dtype. Only
    then can the certificate prove anything for large float32 matrices
    (``p eps32 ||A||_F ||X||_F`` soon exceeds 1/2), and the result is more accurate."""

    def method(
        a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        xs, rank = [], np.empty(a.shape[0], dtype=np.int64)
        work = np.promote_types(a.dtype, np.float64)
        eps_in = float(np.finfo(a.dtype).eps)
        for i in range(a.shape[0]):
            tols = float(atol[i]), float(rtol[i])
            xi = direct(a[i] if a.dtype == work else a[i].astype(work), *tols, eps_in)
            if xi is not None and xi.dtype != a.dtype:
                xi = xi.astype(a.dtype)
            if xi is None:
                xi, rank[i] = fallback(a[i], *tols, i)
            else:
                rank[i] = min(a.shape[1:])
            xs.append(xi)
        # one matrix: a view, not a copy (memory)
        return (np.ascontiguousarray(xs[0])[None] if len(xs) == 1 else np.stack(xs)), rank

    method.__doc__ = doc
    return method


pinv_direct_or_svd = _certified_or(
    full_rank_inverse,
    pinv_svd_one,
    '"auto" for large general matrices: certified LU, normal equations or QR per matrix, '
    "else the SVD.",
)


def _hermitian_inverse(
    a: np.ndarray, atol: float, rtol: float, eps_in: float | None = None
) -> np.ndarray | None:
    """Certified ``A^{-1}`` of a Hermitian ``a`` (lower triangle), or ``None``: Cholesky
    where it is positive definite, else LU of the whole matrix (``qr.py``'s certified
    LU, about ``2 n^3`` flops and a residual against eigh's ``9 n^3``: 128 x 128 took
    0.45 ms against 1.23), returned as its Hermitian part (no farther from ``A^{-1}``,
    which is Hermitian, than the LU inverse)."""
    x = cholesky_inverse(a, atol, rtol, eps_in)
    if x is not None:
        return x
    full = np.ascontiguousarray(hermitian_from_lower(np, a[None])[0])
    x = full_rank_inverse(full, atol, rtol, eps_in)
    if x is None:
        return None
    x = (x + x.conj().T) * np.asarray(0.5, dtype=x.real.dtype)
    return np.ascontiguousarray(x)


pinv_cholesky_or_eigh = _certified_or(
    _hermitian_inverse,
    pinv_eigh_one,
    '"auto" for large Hermitian matrices: certified Cholesky or LU per matrix, else eigh.',
)


# name -> (NumPy implementation, portable implementation, requires hermitian=True)
_REGISTRY: dict[str, tuple[NumpyMethod, Callable[..., tuple], bool]] = {
    "svd": (pinv_svd, pinv_svd_xp, False),
    "eigh": (pinv_eigh, pinv_eigh_xp, True),
    "qr": (pinv_qr, pinv_svd_xp, False),
    "randomized": (pinv_randomized, pinv_svd_xp, False),
    "jacobi": (jacobi.pinv_jacobi, pinv_svd_xp, False),
    "batched": (batched.pinv_batched, pinv_svd_xp, False),
}

# Below this many matrices, "auto" keeps small matrices on LAPACK (see rule 3).
JACOBI_MIN_BATCH = 32

# Non-square matrices at least twice as tall (wide) as wide (tall) take rule 2's
# certified routes from this small side on, below LARGE: measured at one thread, 100 x 30
# took 119 us by the normal equations against 198 us by the SVD, 500 x 20 70 against 174.
GRAM_FROM = 16

# What "auto" may resolve to besides the registry; not names a user can pass.
_AUTO: dict[str, tuple[NumpyMethod, Callable[..., tuple], bool]] = {
    "direct_or_svd": (pinv_direct_or_svd, pinv_svd_xp, False),
    "cholesky_or_eigh": (pinv_cholesky_or_eigh, pinv_eigh_xp, True),
}

METHODS: tuple[str, ...] = ("auto", *_REGISTRY)


def validate(method: Any, hermitian: bool) -> str:
    """Check a method name against the registry and ``hermitian``; return it."""
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods are {', '.join(METHODS)}")
    if method != "auto" and _REGISTRY[method][2] and not hermitian:
        raise ValueError(f'method="{method}" needs hermitian=True (it reads one triangle only)')
    return method


def choose(method: str, hermitian: bool, shape: tuple[int, ...], dtype: np.dtype) -> str:
    """The concrete method for ``method`` (``"auto"`` resolved by the rule above)."""
    if method != "auto":
        return method
    batch, (m, n) = shape[0] if len(shape) > 2 else 1, shape[-2:]
    if batched.supports(m, n, dtype, batch):
        return "batched"
    if (
        batch >= JACOBI_MIN_BATCH
        and jacobi.supports(m, n, dtype, batch)
        and _jacobi_loaded(m, n, dtype)
    ):
        return "jacobi"
    large = min(m, n) >= LARGE
    if hermitian:
        return "cholesky_or_eigh" if large else "eigh"
    if large or (min(m, n) >= GRAM_FROM and max(m, n) >= 2 * min(m, n)):
        return "direct_or_svd"
    return "svd"


def _sample(m: int, n: int, dtype: np.dtype) -> np.ndarray:
    """A small well-conditioned stack of ``dtype``: what a kernel's loading job runs on
    (numba specialises on types, not values)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, m, n)) + np.eye(m, n)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal((2, m, n))
    return a.astype(dtype)


def _load_jacobi(m: int, n: int, dtype: np.dtype) -> None:
    """Load the Jacobi kernels a ``(m, n)`` stack of ``dtype`` uses (pinv, solve, damped)."""
    a = _sample(m, n, dtype)
    tols = np.zeros(2), np.full(2, 1e-6)
    jacobi.pinv_jacobi(a, *tols)
    jacobi.solve_jacobi(a, a[:, :, :1], *tols)
    jacobi.damped_jacobi(a, np.full(2, 0.1))


def _child(loader: str, m: int, n: int, dtype: np.dtype) -> str:
    """The source a child process runs to compile what ``loader`` loads (warmup.py)."""
    return (
        f"import numpy as np; from pseudoinverse._methods import {loader} as f; "
        f"f({m}, {n}, np.dtype({np.dtype(dtype).str!r}))"
    )


def _jacobi_loaded(m: int, n: int, dtype: np.dtype) -> bool:
    return warmup.loaded(
        ("jacobi", np.dtype(dtype).str, m, n),
        lambda: _load_jacobi(m, n, dtype),
        _child("_load_jacobi", m, n, dtype),
    )


def _load_stacked(m: int, n: int, dtype: np.dtype) -> None:
    """Load the CholeskyQR2 kernels (solve and damped, with and without B) and, for
    float32, the Gram kernel."""
    a = _sample(m, n, dtype)
    lam, b = np.full(2, 0.1), a[:, :, :1]
    stacked_qr.solve_qr(a, b, np.zeros(2), np.full(2, 1e-6))
    for rhs in (None, b):
        stacked_qr.damped_qr(a, lam, rhs)
        if a.dtype == np.float32:
            jacobi.gram_damped(a, lam, rhs)


def chosen_name(
    method: str, hermitian: bool, shape: tuple[int, ...], dtype: Any, *, portable: bool = False
) -> str:
    """The method that runs for ``method`` on a stack of ``shape`` (``(B, m, n)``) and
    ``dtype`` (NumPy's, or another library's of the same name): ``"auto"`` resolved by
    the rule above, on the portable path ``"svd"`` or ``"eigh"``. ``"direct_or_svd"`` and
    ``"cholesky_or_eigh"`` name rule 1 and 2's certified-else-fallback paths."""
    if portable:
        return "eigh" if hermitian and method in ("auto", "eigh") else "svd"
    if method != "auto":
        return method
    try:
        np_dtype = np.dtype(dtype)
    except TypeError:  # another library's dtype object: torch.float64 -> float64
        np_dtype = np.dtype(str(dtype).rsplit(".", 1)[-1])
    return choose(method, hermitian, shape, np_dtype)


def run_numpy(
    method: str, a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, hermitian: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Run a NumPy implementation on a stack ``(B, m, n)``."""
    warmup.refresh()
    name = choose(method, hermitian, a.shape, a.dtype)
    if name != method:
        _log.debug("method=%r runs %r on a %s stack of shape %s", method, name, a.dtype, a.shape)
    fn, _, reads_lower = _REGISTRY[name] if name in _REGISTRY else _AUTO[name]
    if hermitian and not reads_lower:  # a general method sees the matrix the lower triangle defines
        a = hermitian_from_lower(np, a)
    return fn(a, atol, rtol, hermitian=hermitian)


def run_xp(xp: Any, method: str, a: Any, atol: Any, rtol: Any, hermitian: bool) -> tuple[Any, Any]:
    """Run the portable implementation of ``method`` (``"auto"``: svd, or eigh)."""
    name = "eigh" if hermitian and method in ("auto", "eigh") else "svd"
    if hermitian and name != "eigh":
        a = hermitian_from_lower(xp, a)
    return _REGISTRY[name][1](xp, a, atol, rtol, hermitian=hermitian)


# What a solve runs for each resolved method: its own solve form where it has one
# (the SVD/eigh filter applied to B, the Jacobi kernel's solve, the large matrices'
# certified solves); the others ("batched", "qr", "randomized") form A^+ with that method
# and multiply (documented in ``pinv_solve``).
def run_solve_numpy(
    method: str, a: np.ndarray, b: np.ndarray, atol: np.ndarray, rtol: np.ndarray, hermitian: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``pinv(A) @ B`` on finite stacks ``a (B, m, n)``, ``b (B, m, k)``: ``(x, rank)``,
    with the rank that ``run_numpy`` gives for the same method. (``solve_first``, the
    compiled route on raw stacks, is the engine's to try before.)"""
    warmup.refresh()
    name = choose(method, hermitian, a.shape, a.dtype)
    if name != method:
        _log.debug(
            "solve: method=%r runs %r on a %s stack of shape %s", method, name, a.dtype, a.shape
        )
    if name == "jacobi":
        return jacobi.solve_jacobi(a, b, atol, rtol, hermitian=hermitian)
    if name in ("svd", "eigh", "direct_or_svd", "cholesky_or_eigh"):
        return _solve_spectral(name, method == "auto", a, b, atol, rtol, hermitian)
    x, rank = run_numpy(name, a, atol, rtol, hermitian)
    return x @ b, rank


# "auto" solves one by one (solve_large.py) from this many rows or columns even when
# min(m, n) < LARGE: a 2000 x 50 solve took 0.7 ms there, 7 ms by the full SVD applied
# to B (measured at one thread, against scipy's gelsy 1.3 ms, gelsd 2.3 ms)
SOLVE_ONE_FROM = 128


def _solve_spectral(
    name: str,
    auto: bool,
    a: np.ndarray,
    b: np.ndarray,
    atol: np.ndarray,
    rtol: np.ndarray,
    hermitian: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``"svd"``/``"eigh"``: the decomposition applied to B (``spectral.py``); "auto" on
    large matrices (``min(m, n) >= LARGE`` or ``max(m, n) >= SOLVE_ONE_FROM``): one by
    one, the certified solves of ``solve_large.py`` (LU, normal equations, CholeskyQR2,
    QR, Cholesky), else ``gelsd`` where its singular values prove the SVD rule's rank,
    else ``gesdd``'s factors applied to B."""
    m, n = a.shape[1:]
    one_by_one = min(m, n) >= LARGE or max(m, n) >= SOLVE_ONE_FROM
    if not auto or not one_by_one:
        return spectral.solve_svd(a, b, atol, rtol, hermitian=hermitian)
    from . import solve_large

    one = solve_large.solve_one_hermitian if hermitian else solve_large.solve_one
    eps_in = float(np.finfo(a.dtype).eps)
    x = np.empty((a.shape[0], a.shape[2], b.shape[2]), dtype=a.dtype)
    rank = np.empty(a.shape[0], dtype=np.int64)
    for i in range(a.shape[0]):
        x[i], rank[i] = one(a[i], b[i], float(atol[i]), float(rtol[i]), eps_in, i)
    return x, rank


def run_damped_numpy(
    a: np.ndarray, lam: np.ndarray, b: np.ndarray | None, hermitian: bool, gram: bool = True
) -> np.ndarray:
    """The damped inverse (``b is None``) or its product with ``b``, for a finite stack:
    the compiled Jacobi kernel for stacks of small matrices (``gram=False``: without its
    float32 Gram route, which ``damped_first`` already tried on these members), per
    matrix for large ones (``solve_large.damped_one``), else the SVD filter
    (``spectral.damped_svd``)."""
    warmup.refresh()
    batch, m, n = a.shape
    if (
        batch >= JACOBI_MIN_BATCH
        and jacobi.supports(m, n, a.dtype, batch)
        and _jacobi_loaded(m, n, a.dtype)
    ):
        _log.debug("damped: the Jacobi kernel on a %s stack of shape %s", a.dtype, a.shape)
        return jacobi.damped_jacobi(a, lam, b, hermitian=hermitian, gram=gram)
    if min(m, n) >= LARGE:
        from . import solve_large

        if hermitian:  # a general route on the matrix the lower triangle defines
            a = hermitian_from_lower(np, a)
        parts = [
            solve_large.damped_one(a[i], float(lam[i]), None if b is None else b[i])
            for i in range(batch)
        ]
        return np.stack(parts)
    return spectral.damped_svd(a, lam, b, hermitian=hermitian)


def _stacked(a: np.ndarray) -> bool:
    """Whether the compiled first routes take this stack (real, many small matrices)."""
    warmup.refresh()
    batch, m, n = a.shape
    return (
        batch >= JACOBI_MIN_BATCH
        and jacobi.supports(m, n, a.dtype, batch)
        and stacked_qr.supports(a.dtype)
        and warmup.loaded(
            ("stacked", a.dtype.str, m, n),
            lambda: _load_stacked(m, n, a.dtype),
            _child("_load_stacked", m, n, a.dtype),
        )
    )


def solve_first(
    method: str, a: np.ndarray, b: np.ndarray, atol: np.ndarray, rtol: np.ndarray, hermitian: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``"auto"``'s first route for solves on stacks of small real matrices, on a raw
    (unchecked, unscaled) stack: CholeskyQR2 where full rank is proved
    (``stacked_qr.solve_qr``). ``(x, rank, ok, name)``, ``ok`` the members done and
    ``name`` the method that ``"auto"`` picks for the whole stack, which the others must
    take (not the one a smaller stack would get: the rank near the threshold is then
    ``pinv``'s); ``None`` where the route does not apply (another method, dtype or size)."""
    if method != "auto" or not _stacked(a):
        return None
    full = hermitian_from_lower(np, a) if hermitian else a
    x, ok = stacked_qr.solve_qr(full, b, atol, rtol)
    _log.debug("solve: CholeskyQR2 proved %d of %d members of full rank", ok.sum(), len(a))
    name = choose(method, hermitian, a.shape, a.dtype)
    return x, np.full(len(a), min(a.shape[1:]), dtype=np.int64), ok, name


def damped_first(
    a: np.ndarray, lam: np.ndarray, b: np.ndarray | None, hermitian: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """The first routes for damped inverses of stacks of small real matrices, on a raw
    (unchecked, unscaled) stack: float32 by the float64 normal equations where their
    bound holds (``jacobi.gram_damped``), then CholeskyQR2 where its analysis holds
    (``stacked_qr.damped_qr``). ``(x, ok)``; ``None`` where they do not apply."""
    if not _stacked(a):
        return None
    if a.dtype == np.float32 and not hermitian:
        x, ok = jacobi.gram_damped(a, lam, b)
        if ok.all():
            return x, ok
        redo = ~ok
        sub = None if b is None else b[redo]
        x[redo], ok[redo] = stacked_qr.damped_qr(a[redo], lam[redo], sub)
    else:
        x, ok = stacked_qr.damped_qr(hermitian_from_lower(np, a) if hermitian else a, lam, b)
    _log.debug("damped: %d of %d members by Gram/CholeskyQR2", ok.sum(), len(a))
    return x, ok
