"""The written-out kernels for small stacks (``_kernels/tiny.py``, ``tiny_complex``,
``tiny_single``), through ``pinv_jacobi``/``solve_jacobi`` and the public ``pinv``.

References are live: ``numpy.linalg.pinv`` in float64/complex128 and, for float32 and
complex64, ``torch.linalg.pinv`` (a float32 LAPACK) as the library bar. Ranks must be
the SVD rule's (``sigma > max(atol, rtol sigma_max)`` on the float64 singular values)
wherever no singular value lies near the threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import known_rank, randn, run_method, with_singular_values

import pseudoinverse
from pseudoinverse._methods.jacobi import _TINY_MAX, pinv_jacobi, solve_jacobi

#: Shapes of every kind the tiny kernels take: square, tall, wide, a single row/column,
#: the largest (``_TINY_MAX``).
SHAPES = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 7), (7, 6), (8, 8), (2, 6), (8, 3), (1, 8)]
DTYPES = [np.float64, np.float32, np.complex128, np.complex64]
WIDE = {
    np.dtype(np.float32): np.float64,
    np.dtype(np.complex64): np.complex128,
    np.dtype(np.float64): np.float64,
    np.dtype(np.complex128): np.complex128,
}
COUNT = 150  # more than two blocks of 64 lanes, the last one padded


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def wide(a: np.ndarray) -> np.ndarray:
    return a.astype(WIDE[a.dtype])


def errors(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    num = np.linalg.norm(x.astype(ref.dtype) - ref, axis=(1, 2))
    return num / np.maximum(np.linalg.norm(ref, axis=(1, 2)), np.finfo(np.float64).tiny)


def torch_pinv(a: np.ndarray, rtol: float, hermitian: bool = False) -> np.ndarray:
    return torch.linalg.pinv(torch.from_numpy(a), rtol=rtol, hermitian=hermitian).numpy()


def rule_ranks(a: np.ndarray, rtol: float, hermitian: bool = False):
    """``(rank, clear)``: the SVD rule's rank on float64 singular values, and the
    members with no nonzero singular value within a factor 2 of the threshold."""
    src = np.tril(a) + np.swapaxes(np.tril(a, -1), 1, 2).conj() if hermitian else a
    s = np.linalg.svd(wide(src), compute_uv=False)
    tol = rtol * s[:, :1]
    clear = np.all((s > 2 * tol) | (s < tol / 2) | (s == 0), axis=1)
    return (s > tol).sum(axis=1), clear


def make(kind: str, rng, m: int, n: int, dtype) -> np.ndarray:
    k = min(m, n)
    if kind == "random":
        return randn(rng, (COUNT, m, n), dtype)
    if kind == "rank":
        r = rng.integers(0, k + 1, size=COUNT)
        return np.stack([known_rank(rng, m, n, int(ri), dtype) for ri in r])
    lo = -10 if eps(dtype) < 1e-10 else -4  # kappa up to 1e10 (float64), 1e4 (float32)
    return np.stack(
        [with_singular_values(rng, m, n, np.logspace(0, lo, k), dtype) for _ in range(COUNT)]
    )


def check(a, x, rank, rtol, hermitian=False) -> None:
    """Ranks are the SVD rule's where clear; each member's error against the float64
    NumPy reference is within that of the library's bar (float64: a multiple of the
    backward-stable bound; float32: 2x torch's float32 error plus float32 rounding)."""
    want, clear = rule_ranks(a, rtol, hermitian)
    assert clear.mean() > 0.5
    np.testing.assert_array_equal(rank[clear], want[clear])
    src = np.tril(a) + np.swapaxes(np.tril(a, -1), 1, 2).conj() if hermitian else a
    sel = clear & (rank == want)
    ref = np.linalg.pinv(wide(src), rtol=rtol, hermitian=hermitian)
    err = errors(x, ref)[sel]
    if a.dtype in (np.float64, np.complex128):
        s = np.linalg.svd(src, compute_uv=False)
        kept = np.where(s > rtol * s[:, :1], s, np.inf).min(axis=1)
        kappa = s[:, 0] / kept
        bound = 50 * max(a.shape[1:]) * eps(a.dtype) * kappa
        assert np.all(err <= bound[sel]), (err / bound[sel]).max()
    else:
        theirs = errors(torch_pinv(src, rtol, hermitian), ref)[sel]
        assert np.all(err <= 2 * theirs + 2 * eps(a.dtype)), (err - 2 * theirs).max()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), SHAPES)
@pytest.mark.parametrize("kind", ["random", "rank", "ill"])
def test_against_references(kind, m, n, dtype, rng):
    assert max(m, n) <= _TINY_MAX
    a = make(kind, rng, m, n, dtype)
    x, rank = run_method(pinv_jacobi, a)
    check(a, x, rank, max(m, n) * eps(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 6, 8])
def test_hermitian_reads_the_lower_triangle(n, dtype, rng):
    h = randn(rng, (COUNT, n, n), dtype)
    h = (h + np.swapaxes(h, 1, 2).conj()) / 2
    h[::5, :, -1] = h[::5, -1, :] = 0  # rank deficient members
    a = h.copy()
    iu = np.triu_indices(n, 1)
    a[:, iu[0], iu[1]] = 1e30  # never read
    x, rank = run_method(pinv_jacobi, np.ascontiguousarray(a), hermitian=True)
    check(h.astype(dtype), x, rank, n * eps(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(3, 3), (4, 4), (6, 7), (7, 6), (2, 6)])
def test_solve_equals_the_matrix_times_b(m, n, dtype, rng):
    a = make("rank", rng, m, n, dtype)
    b = randn(rng, (COUNT, m, 2), dtype)
    tols = (np.zeros(COUNT), np.full(COUNT, max(m, n) * eps(dtype)))
    x, rank = pinv_jacobi(a, *tols)
    y, rank_b = solve_jacobi(a, b, *tols)
    np.testing.assert_array_equal(rank_b, rank)
    xb = wide(x) @ wide(b)
    scale = np.linalg.norm(wide(x), axis=(1, 2)) * np.linalg.norm(wide(b), axis=(1, 2)) + 1e-300
    assert (np.linalg.norm(wide(y) - xb, axis=(1, 2)) / scale).max() <= 20 * eps(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(3, 3), (6, 7), (8, 8)])
def test_a_member_alone_and_in_a_stack_agree_bit_for_bit(m, n, dtype, rng):
    a = np.concatenate([make("random", rng, m, n, dtype), make("ill", rng, m, n, dtype)])
    a[::9] = 0  # zero members among them
    x, rank = run_method(pinv_jacobi, a)
    for i in (0, 1, 70, 160, len(a) - 1):
        xi, ri = run_method(pinv_jacobi, np.ascontiguousarray(a[i : i + 1]))
        np.testing.assert_array_equal(xi[0], x[i])
        assert ri[0] == rank[i]


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("scale", [2.0**-900, 2.0**-100, 2.0**100, 2.0**900])
def test_extreme_scales(scale, dtype, rng):
    """Each matrix is scaled by a power of two first: ``pinv(2^k A) = 2^-k pinv(A)``
    exactly, and the same rank."""
    a = randn(rng, (COUNT, 3, 3), dtype)
    a[::4, 0] = 0
    x, rank = run_method(pinv_jacobi, a * scale)
    y, rank_1 = run_method(pinv_jacobi, a)
    np.testing.assert_array_equal(rank, rank_1)
    np.testing.assert_array_equal(x * scale, y)


def test_float32_promise_on_every_member():
    """Issue 12: each member of the 1e5 6 x 7 float32 stack errs (against float64
    NumPy) at most 2x torch's float32 error: members 14147, 47985, 56254 and 72113
    broke it before the float64 refinement."""
    a = np.random.default_rng(0).standard_normal((100000, 6, 7)).astype(np.float32)
    ref = np.linalg.pinv(a.astype(np.float64))
    ours = errors(pseudoinverse.pinv(a), ref)
    theirs = errors(torch.linalg.pinv(torch.from_numpy(a)).numpy(), ref)
    bad = np.flatnonzero(ours > 2 * theirs)
    assert bad.size == 0, (bad[:10], ours[bad[:10]], theirs[bad[:10]])
    # and about as accurate as NumPy (which computes float32 in float64) at the median
    np_err = errors(np.linalg.pinv(a), ref)
    assert np.median(ours) <= 1.5 * np.median(np_err)
