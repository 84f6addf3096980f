"""The batched Jacobi kernel (``_methods/jacobi.py``): accuracy, rank rule, Penrose, triangle.

References are live: mpmath (40 digits) for float64/complex128, a float64
``numpy.linalg.pinv`` for float32/complex64 (its own error is ~1e-16 kappa, far below
float32's). The accuracy bar is the method's promise: the worst error over a batch, relative to each
matrix's condition number, is within 2x that of ``numpy.linalg.pinv`` (float64, complex128) or of
``torch.linalg.pinv`` (float32, complex64: a float32 LAPACK; NumPy computes float32 in
float64) against the same reference, plus a floor of ``10 eps ||A^+||`` so that two
errors at rounding level never decide a test.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from cases import (
    known_rank,
    penrose_residuals,
    randn,
    run_method,
    with_singular_values,
)

from pseudoinverse._methods.jacobi import pinv_jacobi, supports

SMALL = [(1, 1), (1, 5), (5, 1), (2, 2), (3, 3), (4, 4), (6, 7), (7, 6), (8, 8)]
MEDIUM = [(16, 16), (24, 24), (12, 20)]
DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
WIDE = {np.float32: np.float64, np.complex64: np.complex128}


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def run(a, atol=None, rtol=None, hermitian=False):
    x, rank = run_method(pinv_jacobi, a, atol, rtol, hermitian)
    return x, rank


def mp_pinv(a: np.ndarray) -> np.ndarray:
    """The exact pseudo-inverse of one (full-rank) float64/complex128 matrix, by mpmath."""
    with mpmath.workdps(40):  # normal equations: kappa^2 <= 1e24 leaves 16 good digits
        am, ah = mpmath.matrix(a.tolist()), mpmath.matrix(a.conj().T.tolist())
        x = (
            ah * mpmath.inverse(am * ah)
            if a.shape[0] < a.shape[1]
            else mpmath.inverse(ah * am) * ah
        )
        return np.array(x.tolist(), dtype=a.dtype)


def reference(a: np.ndarray) -> np.ndarray:
    if a.dtype.type in WIDE:
        return np.linalg.pinv(a.astype(WIDE[a.dtype.type]))
    return np.stack([mp_pinv(m) for m in a])


def errors(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    num = np.linalg.norm(x.astype(ref.dtype) - ref, axis=(1, 2))
    return num / np.linalg.norm(ref, axis=(1, 2))


def library_pinv(a: np.ndarray) -> np.ndarray:
    """The library bar: NumPy for float64/complex128, torch (float32 LAPACK) otherwise."""
    if a.dtype.type in WIDE:
        return torch.linalg.pinv(torch.from_numpy(a)).numpy()
    return np.linalg.pinv(a)


def assert_as_accurate(a: np.ndarray, x: np.ndarray) -> None:
    """Worst error relative to the condition number: ours <= 2 x the library's + floor.

    Dividing by ``kappa`` compares the error constants, not which matrix of the batch
    happens to be the worst conditioned.
    """
    ref = reference(a)
    kappa = np.linalg.cond(a.astype(ref.dtype))
    ours = (errors(x, ref) / kappa).max()
    theirs = (errors(library_pinv(a), ref) / kappa).max()
    assert ours <= 2 * theirs + 10 * eps(a.dtype), (ours, theirs)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), SMALL + MEDIUM)
def test_random(m, n, dtype, rng):
    count = 300 if dtype in WIDE else (12 if max(m, n) <= 8 else 4)  # mpmath is slow
    a = randn(rng, (count, m, n), dtype)
    # Gaussian matrices are full rank, but a few in a thousand (float32, 24 x 24) have
    # sigma_min near the cutoff p eps sigma_max, where either decision is right: keep
    # the members clear of it (the threshold itself is tested in test_rank_at_threshold)
    s = np.linalg.svd(
        a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), compute_uv=False
    )
    clear = s[:, -1] > 100 * max(m, n) * eps(dtype) * s[:, 0]
    assert clear.mean() > 0.9
    a = np.ascontiguousarray(a[clear])
    x, rank = run(a)
    assert np.all(rank == min(m, n))
    assert_as_accurate(a, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(3, 3), (4, 4), (6, 7), (7, 6), (8, 8), (16, 16)])
def test_ill_conditioned(m, n, dtype, rng):
    k = min(m, n)
    lo = -12 if eps(dtype) < 1e-10 else -5  # kappa up to 1e11 (float64), 1e4 (float32)
    count = 4 if dtype not in WIDE else 100
    a = np.stack(
        [with_singular_values(rng, m, n, np.logspace(-1, lo, k), dtype) for _ in range(count)]
    )
    x, rank = run(a)
    assert np.all(rank == k)
    assert_as_accurate(a, x)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n", "r"), [(3, 3, 1), (4, 4, 2), (6, 7, 3), (8, 5, 4), (1, 5, 0)])
def test_rank_deficient(m, n, r, dtype, rng):
    a = np.stack([known_rank(rng, m, n, r, dtype) for _ in range(50)])
    x, rank = run(a)
    assert np.all(rank == r)
    ref = np.linalg.pinv(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64))
    scale = np.linalg.norm(ref, axis=(1, 2)) + 1
    err = np.linalg.norm(x - ref, axis=(1, 2)) / scale
    np_err = np.linalg.norm(library_pinv(a) - ref, axis=(1, 2)) / scale
    assert err.max() <= 2 * np_err.max() + 100 * max(m, n) * eps(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(3, 3), (4, 4), (6, 7), (7, 6), (8, 8), (16, 16)])
@pytest.mark.parametrize("via", ["atol", "rtol"])
def test_rank_at_threshold(m, n, via, dtype, rng):
    """Singular values just above and below ``tol`` are kept and dropped exactly.

    The margin is 1e-6 relative in float64 and 1e-4 in float32, where computed singular
    values carry an absolute error of a few ``n eps sigma_max`` (1e-6 is ~8 float32 ulps).
    """
    k = min(m, n)
    tol, delta = 0.25, (1e-6 if eps(dtype) < 1e-10 else 1e-4)
    s = np.linspace(1.0, 0.6, k)
    s[k // 2 :] = 0.1
    if k >= 2:
        s[1] = tol * (1 + delta)
        s[-1] = tol * (1 - delta)
    a = np.stack([with_singular_values(rng, m, n, s, dtype) for _ in range(40)])
    expect = int(np.sum(s > tol))
    zeros, tols = np.zeros(len(a)), np.full(len(a), tol)
    if via == "atol":
        x, rank = run(a, atol=tols, rtol=zeros)
    else:  # sigma_max is 1 (up to rounding): rtol * sigma_max = tol
        x, rank = run(a, atol=zeros, rtol=tols)
    assert np.all(rank == expect)
    ref = np.linalg.pinv(a.astype(np.complex128), rtol=tol)  # sigma_max = 1: the same rule
    # kept and dropped singular values are 2 delta tol apart: the singular vectors that
    # split them are determined to eps / gap only (Wedin's sin-theta theorem)
    assert np.abs(x - ref).max() <= 100 * k * eps(dtype) / (2 * delta * tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), SMALL + MEDIUM)
def test_penrose(m, n, dtype, rng):
    a = randn(rng, (64, m, n), dtype)
    x, _ = run(a)
    kappa = np.linalg.cond(a.astype(np.complex128))
    res = penrose_residuals(a, x)
    assert max(res) <= 100 * max(m, n) * eps(dtype) * kappa.max(), res


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 8, 16])
def test_hermitian_reads_lower_triangle(n, dtype, rng):
    b = randn(rng, (40, n, n), dtype)
    h = (b + b.conj().transpose(0, 2, 1)) / 2
    x, rank = run(h, hermitian=True)
    garbage = h.copy()
    garbage[:, np.triu_indices(n, 1)[0], np.triu_indices(n, 1)[1]] = np.nan
    if h.dtype.kind == "c":
        garbage[:, np.arange(n), np.arange(n)] += 7j  # a Hermitian diagonal is real
    xg, rank_g = run(garbage, hermitian=True)
    np.testing.assert_array_equal(xg, x)
    np.testing.assert_array_equal(rank_g, rank)
    ref = np.linalg.pinv(h.astype(np.complex128), hermitian=True)
    kappa = np.linalg.cond(h.astype(np.complex128)).max()
    assert errors(x, ref).max() <= 100 * n * eps(dtype) * kappa


@pytest.mark.parametrize("dtype", DTYPES)
def test_hermitian_threshold_on_eigenvalue_modulus(dtype, rng):
    """Negative eigenvalues count by modulus: ``|w| > tol`` is kept."""
    tol, delta = 0.25, (1e-6 if eps(dtype) < 1e-10 else 1e-4)
    w = np.array([1.0, -0.9, -tol * (1 + delta), tol * (1 - delta), -tol * (1 - delta), 0.0])
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    mats = []
    for _ in range(30):
        q, _ = np.linalg.qr(randn(rng, (6, 6), wide))
        mats.append(((q * w) @ q.conj().T).astype(dtype))
    a = np.stack(mats)
    zeros, tols = np.zeros(len(a)), np.full(len(a), tol)
    x, rank = run(a, atol=tols, rtol=zeros, hermitian=True)
    assert np.all(rank == 3)
    ref = np.linalg.pinv(a.astype(np.complex128), hermitian=True, rtol=tol)
    assert np.abs(x - ref).max() <= 100 * 6 * eps(dtype) / (2 * delta * tol)  # eps / gap


@pytest.mark.parametrize("dtype", DTYPES)
def test_batch_edges_and_scaling(dtype, rng):
    """Partial blocks, one matrix, zero matrices and extreme (exactly scaled) magnitudes."""
    a = randn(rng, (133, 3, 4), dtype)
    a[5] = 0
    big = 2.0**90 if dtype in WIDE else 2.0**600  # a power of two: scaling is exact
    scaled = np.concatenate([a * big, a / big]).astype(dtype)
    x, rank = run(a)
    assert rank[5] == 0 and not np.any(x[5])
    assert np.all(np.delete(rank, 5) == 3)
    xs, rank_s = run(scaled)
    np.testing.assert_array_equal(rank_s, np.concatenate([rank, rank]))
    np.testing.assert_array_equal(xs[:133] * big, x)  # the kernel scales by powers of 2 too
    np.testing.assert_array_equal(xs[133:] / big, x)
    x1, _ = run(np.ascontiguousarray(a[:1]))  # alone in its block: may sweep less
    kappa = np.linalg.cond(a[0].astype(np.complex128))
    np.testing.assert_allclose(
        x1[0], x[0], rtol=0, atol=100 * eps(dtype) * kappa * np.abs(x[0]).max()
    )


def test_matches_torch_float32_batch(rng):
    """A large float32 batch agrees with the float32 LAPACK of torch to its accuracy."""
    a = randn(rng, (5000, 4, 4), np.float32)
    x, _ = run(a)
    ref = np.linalg.pinv(a.astype(np.float64))
    theirs = errors(torch.linalg.pinv(torch.from_numpy(a)).numpy(), ref)
    ours = errors(x, ref)
    assert np.median(ours) <= 2 * np.median(theirs) and ours.max() <= 2 * theirs.max()


def test_supports():
    assert supports(3, 3, np.float64, 10**5)
    assert supports(8, 8, np.complex64)
    assert not supports(64, 64, np.float64, 1000)
    assert not supports(3, 3, np.float16)
