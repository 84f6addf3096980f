"""The shared case table: one factory for every kind of matrix the tests need.

Each case is made fresh from a seeded generator (the seed varies per test run through
``pytest``'s randomness only where a test asks for it); a test adds its own check.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REAL = (np.float32, np.float64)
COMPLEX = (np.complex64, np.complex128)
DTYPES = REAL + COMPLEX


@dataclass(frozen=True)
class Case:
    """A named input: the matrix (or stack), whether it is Hermitian, its known rank."""

    name: str
    a: np.ndarray
    hermitian: bool = False
    rank: int | None = None  # exact rank when known by construction


def randn(rng: np.random.Generator, shape: tuple[int, ...], dtype) -> np.ndarray:
    """Standard normal entries of ``dtype`` (complex: real and imaginary parts)."""
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def with_singular_values(
    rng: np.random.Generator, m: int, n: int, s: np.ndarray, dtype
) -> np.ndarray:
    """``U diag(s) V^H`` with Haar-random ``U``, ``V`` (built in float64/complex128)."""
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    u, _ = np.linalg.qr(randn(rng, (m, m), wide))
    v, _ = np.linalg.qr(randn(rng, (n, n), wide))
    k = len(s)
    a = (u[:, :k] * s) @ v[:, :k].conj().T
    return a.astype(dtype)


def known_rank(rng: np.random.Generator, m: int, n: int, r: int, dtype) -> np.ndarray:
    """``B @ C^H`` with ``B`` (m, r) and ``C`` (n, r): rank exactly ``r``."""
    return (randn(rng, (m, r), dtype) @ randn(rng, (n, r), dtype).conj().T).astype(dtype)


def hermitian(rng: np.random.Generator, n: int, dtype) -> np.ndarray:
    """A Hermitian (symmetric if real) indefinite matrix."""
    b = randn(rng, (n, n), dtype)
    return ((b + b.conj().T) / 2).astype(dtype)


def cases(dtype, seed: int = 0) -> list[Case]:
    """Every kind of matrix of the table, in ``dtype``."""
    rng = np.random.default_rng(seed)
    ill = 1e3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e8
    return [
        Case("1x1", randn(rng, (1, 1), dtype)),
        Case("square", randn(rng, (5, 5), dtype)),
        Case("tall", randn(rng, (9, 4), dtype)),
        Case("wide", randn(rng, (3, 8), dtype)),
        Case("row", randn(rng, (1, 6), dtype)),
        Case("column", randn(rng, (6, 1), dtype)),
        Case("batched", randn(rng, (2, 3, 5, 4), dtype)),
        Case("zero", np.zeros((4, 3), dtype=dtype), rank=0),
        Case("known-rank", known_rank(rng, 7, 6, 3, dtype), rank=3),
        Case("known-rank-wide", known_rank(rng, 4, 9, 2, dtype), rank=2),
        Case(
            "ill-conditioned",
            with_singular_values(rng, 6, 5, np.geomspace(1, 1 / ill, 5), dtype),
            rank=5,
        ),
        Case("hermitian", hermitian(rng, 6, dtype), hermitian=True),
        Case(
            "hermitian-rank-deficient",
            (lambda b: (b @ b.conj().T).astype(dtype))(randn(rng, (6, 2), dtype)),
            hermitian=True,
            rank=2,
        ),
        Case(
            "batched-hermitian",
            np.stack([hermitian(rng, 4, dtype) for _ in range(3)]),
            hermitian=True,
        ),
    ]


EMPTY_SHAPES = [(0, 3), (3, 0), (0, 0), (2, 0, 3), (0, 2, 2), (2, 3, 0, 0)]


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def penrose_residuals(a: np.ndarray, x: np.ndarray) -> list[float]:
    """The four Penrose conditions as relative residuals (float64), worst over the batch."""
    a = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
    x = x.astype(a.dtype)
    h = lambda t: t.conj().swapaxes(-1, -2)  # noqa: E731
    ax, xa = a @ x, x @ a

    def rel(r, ref):
        num = np.linalg.norm(r, axis=(-2, -1))
        den = np.maximum(np.linalg.norm(ref, axis=(-2, -1)), np.finfo(float).tiny)
        return float(np.max(num / den)) if num.size else 0.0

    return [rel(ax @ a - a, a), rel(xa @ x - x, x), rel(h(ax) - ax, ax), rel(h(xa) - xa, xa)]


def default_rtol(a: np.ndarray) -> np.ndarray:
    """The default rtol ``max(m, n) * eps`` for each matrix of a stack ``(B, m, n)``."""
    return np.full(a.shape[0], max(a.shape[1:]) * eps(a.dtype))


def run_method(fn, a, atol=None, rtol=None, hermitian=False):
    """Call a NumPy method on a stack with the default tolerances; check the contract:
    ``a`` untouched, ``X`` of shape ``(B, n, m)`` and ``a``'s dtype, int64 ranks."""
    before = a.copy()
    atol = np.zeros(a.shape[0]) if atol is None else atol
    rtol = default_rtol(a) if rtol is None else rtol
    x, rank = fn(a, atol, rtol, hermitian=hermitian)
    np.testing.assert_array_equal(a, before)  # NaNs compare equal here
    assert x.dtype == a.dtype and x.shape == (a.shape[0], a.shape[2], a.shape[1])
    assert rank.dtype == np.int64 and rank.shape == (a.shape[0],)
    return x, rank


def extended_pinv(a: np.ndarray) -> np.ndarray:
    """A reference ``A^+`` of a full-rank stack, far more accurate than float64: NumPy's
    float64 pseudo-inverse, then two Newton-Schulz steps ``X <- X (2 I - A X)`` in
    ``np.longdouble`` (quadratic convergence: each step squares the relative error, down
    to about ``kappa eps_longdouble``). Wide matrices go through ``A^H`` (tall), where
    the iteration converges to ``A^+``. Returned in ``longdouble`` (complex: ``clongdouble``)."""
    if a.shape[-2] < a.shape[-1]:
        return np.conj(np.swapaxes(extended_pinv(np.conj(np.swapaxes(a, -1, -2))), -1, -2))
    wide = np.clongdouble if np.iscomplexobj(a) else np.longdouble
    big = np.complex128 if np.iscomplexobj(a) else np.float64
    x = np.linalg.pinv(a.astype(big)).astype(wide)
    aw = a.astype(wide)
    eye = np.eye(a.shape[-2], dtype=wide)
    for _ in range(2):
        x = x @ (2 * eye - aw @ x)
    return x
