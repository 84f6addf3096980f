"""``solve_jacobi`` and ``damped_jacobi`` (``_methods/jacobi.py``): live references only.

Solve: against ``pinv_jacobi(a)[0] @ b`` (the rank must be equal exactly). Damped:
against a 40-digit mpmath ``(A^H A + lambda^2 I)^{-1} A^H`` (SVD-free), held to the
promise ``||X - X_ref||_F / ||X_ref||_F <= max(16, p) eps kappa_lambda`` (Jacobi) and
``eps32 kappa_lambda`` (the float64 Cholesky route), ``kappa_lambda`` computed from a
float64 SVD; ``lambda = 0`` is ``pinv_jacobi(a, 0, 0)`` bit for bit.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from cases import known_rank, randn, with_singular_values

from pseudoinverse._methods.jacobi import (
    damped_jacobi,
    gram_damped,
    pinv_jacobi,
    solve_jacobi,
)

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
SHAPES = [(1, 1), (1, 5), (5, 1), (2, 2), (3, 3), (6, 7), (7, 6), (8, 8), (16, 16), (9, 16)]
LAMBDAS = [0.0, 1e-8, 1e-3, 0.01, 0.05, 1.0, 100.0]


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def wide(dtype):
    return np.complex128 if np.dtype(dtype).kind == "c" else np.float64


def herm_full(a: np.ndarray) -> np.ndarray:
    """The Hermitian matrices whose lower triangles ``a`` holds (the diagonal made real)."""
    low = np.tril(a)
    full = low + np.conj(np.swapaxes(np.tril(a, -1), -1, -2))
    idx = np.arange(a.shape[-1])
    full[..., idx, idx] = full[..., idx, idx].real
    return full


def stack(rng, kind, count, m, n, dtype):
    k = min(m, n)
    if kind == "random":
        return randn(rng, (count, m, n), dtype)
    if kind == "rank":
        return np.stack([known_rank(rng, m, n, max(k // 2, 0), dtype) for _ in range(count)])
    lo = -12 if eps(dtype) < 1e-10 else -5  # kappa 1e12 (float64), 1e5 (float32)
    s = np.logspace(0, lo, k)
    return np.stack([with_singular_values(rng, m, n, s, dtype) for _ in range(count)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), SHAPES)
@pytest.mark.parametrize("kind", ["random", "rank", "ill"])
def test_solve_equals_pinv_times_b(m, n, kind, dtype, rng):
    count = int(rng.choice([1, 3, 100]))
    a = stack(rng, kind, count, m, n, dtype)
    b = randn(rng, (count, m, int(rng.integers(1, 4))), dtype)
    atol = np.zeros(count)
    rtol = np.full(count, max(m, n) * eps(dtype))
    a0, b0 = a.copy(), b.copy()
    x, rank = solve_jacobi(a, b, atol, rtol)
    np.testing.assert_array_equal(a, a0)
    np.testing.assert_array_equal(b, b0)
    p, rank_p = pinv_jacobi(a, atol, rtol)
    np.testing.assert_array_equal(rank, rank_p)
    assert x.dtype == a.dtype and x.shape == (count, n, b.shape[2])
    # both are V diag(f^2) W^H b, rounded in another order: each within p eps kappa_r of
    # the exact solution (kappa_r of the kept part), relative to |A^+| |b|
    p, b, x = (t.astype(wide(dtype)) for t in (p, b, x))
    scale = np.linalg.norm(p, axis=(1, 2)) * np.linalg.norm(b, axis=(1, 2))
    err = np.linalg.norm(x - p @ b, axis=(1, 2)) / np.maximum(scale, 1e-300)
    s = np.linalg.svd(a.astype(wide(dtype)), compute_uv=False)
    kept = np.take_along_axis(s, np.maximum(rank - 1, 0)[:, None], axis=1)[:, 0]
    kappa = np.where(rank > 0, s[:, 0] / np.where(kept > 0, kept, 1), 1.0)
    assert np.all(err <= 10 * max(m, n) * eps(dtype) * np.maximum(kappa, 1)), err.max()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 3, 6, 16])
def test_solve_hermitian_reads_lower_triangle(n, dtype, rng):
    h = herm_full(randn(rng, (40, n, n), dtype))
    b = randn(rng, (40, n, 2), dtype)
    atol, rtol = np.zeros(40), np.full(40, n * eps(dtype))
    x, rank = solve_jacobi(h, b, atol, rtol, hermitian=True)
    garbage = h.copy()
    iu = np.triu_indices(n, 1)
    garbage[:, iu[0], iu[1]] = np.nan
    xg, rank_g = solve_jacobi(garbage, b, atol, rtol, hermitian=True)
    np.testing.assert_array_equal(xg, x)
    np.testing.assert_array_equal(rank_g, rank)
    p, rank_p = pinv_jacobi(h, atol, rtol, hermitian=True)
    np.testing.assert_array_equal(rank, rank_p)
    np.testing.assert_allclose(x, p @ b, atol=100 * n * eps(dtype) * np.abs(p @ b).max())


def mp_damped(a: np.ndarray, lam: float) -> np.ndarray:
    """``(A^H A + lam^2 I)^{-1} A^H`` (or ``A^H (A A^H + lam^2 I)^{-1}``) at 40 digits."""
    with mpmath.workdps(40):
        am, ah = mpmath.matrix(a.tolist()), mpmath.matrix(a.conj().T.tolist())
        l2 = mpmath.mpf(lam) ** 2
        m, n = a.shape
        if m < n:
            x = ah * mpmath.inverse(am * ah + l2 * mpmath.eye(m))
        else:
            x = mpmath.inverse(ah * am + l2 * mpmath.eye(n)) * ah
        return np.array(x.tolist(), dtype=np.complex128)


def kappa_lambda(a: np.ndarray, lam: float) -> float:
    """``||A|| / ((sigma_min^2 + lam^2) ||X||)``: the damped inverse's condition number
    (``sigma_min`` of the ``min(m, n)`` values, 0 when singular)."""
    s = np.linalg.svd(a.astype(np.complex128), compute_uv=False)
    return float(s[0] / ((s[-1] ** 2 + lam**2) * np.max(s / (s**2 + lam**2))))


def damped_case(rng, kind, m, n, dtype):
    if kind == "singular":  # two equal rows: exactly singular in every dtype
        a = randn(rng, (m, n), dtype)
        a[1] = a[0]
        return a
    kappa = float(kind)
    return with_singular_values(rng, m, n, np.geomspace(1, 1 / kappa, min(m, n)), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(3, 4), (4, 3), (2, 2)])
@pytest.mark.parametrize("kind", ["1e2", "1e6", "1e12", "singular"])
def test_damped_against_mpmath(m, n, kind, dtype, rng):
    a = damped_case(rng, kind, m, n, dtype)
    lams = np.array(LAMBDAS[1:])
    stack_ = np.ascontiguousarray(np.broadcast_to(a, (len(lams), m, n)))
    b = randn(rng, (len(lams), m, 2), dtype)
    routes = {
        "jacobi": damped_jacobi(stack_, lams, gram=False),
        "auto": damped_jacobi(stack_, lams),
    }
    solved = damped_jacobi(stack_, lams, b)
    for i, lam in enumerate(lams):
        ref = mp_damped(a.astype(wide(dtype)), lam)
        bound = max(16, m, n) * eps(dtype) * kappa_lambda(a, lam)
        for name, x in routes.items():
            err = np.linalg.norm(x[i] - ref) / np.linalg.norm(ref)
            assert err <= bound, (name, lam, err, bound)
        xb = solved[i]
        refb = ref @ b[i]
        scale = np.linalg.norm(ref) * np.linalg.norm(b[i])
        assert np.linalg.norm(xb - refb) / scale <= 2 * bound, lam


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), [(1, 1), (3, 5), (6, 7), (7, 6), (8, 8), (16, 16)])
def test_damping_zero_is_pinv(m, n, dtype, rng):
    a = randn(rng, (100, m, n), dtype)
    a[3] = 0
    a[7, :, 0] = 0
    zeros = np.zeros(100)
    x = damped_jacobi(a, zeros)
    # a separately compiled kernel: equal to rounding (the contractions may differ)
    p0 = pinv_jacobi(a, zeros, zeros)[0].astype(wide(dtype))
    s = np.linalg.svd(a.astype(wide(dtype)), compute_uv=False)
    with np.errstate(divide="ignore"):
        kap = np.where(s[:, -1] > 0, s[:, 0] / s[:, -1], 1.0)
    good = np.isfinite(kap) & (kap < 1 / (100 * max(m, n) * eps(dtype)))
    diff = np.linalg.norm(x.astype(wide(dtype)) - p0, axis=(1, 2))
    rel = diff / np.maximum(np.linalg.norm(p0, axis=(1, 2)), 1e-300)
    assert np.all(rel[good] <= 10 * max(m, n) * eps(dtype) * kap[good]), rel[good].max()
    # and the reference: well-conditioned Gaussians against numpy's pinv (rcond 0)
    ref = np.linalg.pinv(np.delete(a, [3, 7], 0).astype(wide(dtype)), rcond=0)
    kappa = np.linalg.cond(np.delete(a, [3, 7], 0).astype(wide(dtype)))
    err = np.linalg.norm(np.delete(x, [3, 7], 0) - ref, axis=(1, 2)) / np.linalg.norm(
        ref, axis=(1, 2)
    )
    assert np.all(err <= max(16, m, n) * eps(dtype) * kappa)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 4, 7])
def test_damped_hermitian(n, dtype, rng):
    h = herm_full(randn(rng, (len(LAMBDAS), n, n), dtype))
    lams = np.array(LAMBDAS)
    x = damped_jacobi(h, lams, hermitian=True)
    garbage = h.copy()
    iu = np.triu_indices(n, 1)
    garbage[:, iu[0], iu[1]] = np.nan
    np.testing.assert_array_equal(damped_jacobi(garbage, lams, hermitian=True), x)
    for i, lam in enumerate(lams):
        hw = h[i].astype(wide(dtype))
        w, v = np.linalg.eigh(hw)  # V diag(w / (w^2 + lam^2)) V^H, the signed eigenvalues
        ref = (v * (w / (w**2 + lam**2))) @ v.conj().T
        bound = max(16, n) * eps(dtype) * kappa_lambda(hw, lam)
        assert np.linalg.norm(x[i] - ref) <= bound * np.linalg.norm(ref)


@pytest.mark.parametrize("dtype", DTYPES)
def test_damped_scaling_and_solve_form(dtype, rng):
    """``damped(s A, s lam) = damped(A, lam) / s`` exactly (powers of two); ``X @ b``."""
    a = randn(rng, (133, 4, 5), dtype)
    lam = np.abs(rng.standard_normal(133))
    big = 2.0**40 if eps(dtype) > 1e-10 else 2.0**500
    x = damped_jacobi(a, lam)
    for s in (big, 1 / big):
        xs = damped_jacobi((a * s).astype(dtype), lam * s)
        np.testing.assert_array_equal(xs * s, x)
    b = randn(rng, (133, 4, 3), dtype)
    xb = damped_jacobi(a, lam, b)
    scale = np.linalg.norm(x, axis=(1, 2)) * np.linalg.norm(b, axis=(1, 2))
    err = np.linalg.norm(xb - x @ b, axis=(1, 2)) / scale
    assert err.max() <= 100 * eps(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_gram_route(dtype, rng):
    """The float64 Cholesky route: taken where its bound holds (the benchmark's case),
    declined for small lambda, and within ``eps32 kappa_lambda`` where taken."""
    a = randn(rng, (300, 6, 7), dtype)
    e = randn(rng, (300, 6, 1), dtype)
    lam = np.full(300, 0.01)
    lam[:100] = rng.choice([0.0, 1e-8, 1e-4], 100)  # the bound fails: Jacobi
    _, ok = gram_damped(a, lam, e)
    assert ok[100:].all() and not ok[:100].any()
    xa = damped_jacobi(a, lam, e)
    aw, ew = a.astype(wide(dtype)), e.astype(wide(dtype))
    for i in [*range(0, 300, 25), 299]:
        ref = mp_damped(aw[i], lam[i]) if lam[i] > 0 else np.linalg.pinv(aw[i], rcond=0)
        refb = ref @ ew[i]
        kl = kappa_lambda(aw[i], lam[i]) if lam[i] > 0 else np.linalg.cond(aw[i])
        scale = np.linalg.norm(ref) * np.linalg.norm(ew[i])
        err = np.linalg.norm(xa[i] - refb) / scale
        assert err <= (1 if ok[i] else 16) * eps(dtype) * kl, (i, lam[i], err)
