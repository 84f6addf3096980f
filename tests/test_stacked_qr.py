"""The CholeskyQR2 route for stacks of small real matrices (``_methods/stacked_qr.py``):
its accuracy promise against 40-digit mpmath, its refusals (rank-deficient, too
ill-conditioned, non-finite, zero damping), and the public functions that take it first
(``damped_pinv``, ``damped_pinv_solve``, ``pinv_solve`` on stacks of >= 32 matrices)
against live references, with the members it refuses mixed in.

Every input is fresh random data from the run's seed (``PI_TEST_SEED`` replays a run).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from cases import known_rank, with_singular_values
from test_damped import filter_ref, kappa_lambda, mp_ref, rel_err

import pseudoinverse as pi
from pseudoinverse._methods import stacked_qr

SHAPES = [(6, 7), (7, 6), (3, 3), (1, 4), (4, 1), (12, 10)]


def mp_pinv(a) -> np.ndarray:
    """The exact pseudo-inverse of a full-rank ``a`` with 40 digits."""
    with mpmath.workdps(40):
        am = mpmath.matrix(a.astype(np.float64).tolist())
        at = am.T
        m, n = a.shape
        x = mpmath.inverse(at * am) * at if m >= n else at * mpmath.inverse(am * at)
        return np.array(x.tolist(), dtype=np.float64)


def scaled_ref(a, lam, hermitian=False):
    """``filter_ref`` and ``kappa_lambda`` per member, on ``A / c`` (``c = max|A|``):
    ``X(A, lam) = X(A / c, lam / c) / c``, with no overflow at 1e300 or 1e-300."""
    c = np.abs(a).max(axis=(1, 2)).astype(np.float64)
    c = np.where(c > 0, c, 1.0)
    ref = filter_ref(a / c[:, None, None], lam / c, hermitian) / c[:, None, None]
    kap = [kappa_lambda(a[i] / c[i], lam[i] / c[i]) for i in range(len(a))]
    return ref, np.array(kap)


def ill_stack(rng, m, n, count, kappas, singular=False):
    """Members with singular values log-spaced from 1 to 1/kappa (the last 0 if
    ``singular``), each scaled by a random power of ten."""
    s = min(m, n)
    out = []
    for i in range(count):
        kap = kappas[i % len(kappas)]
        sv = np.logspace(0, -np.log10(kap), s) if s > 1 else np.ones(1)
        if singular:
            sv[-1] = 0.0
        out.append(with_singular_values(rng, m, n, sv, np.float64) * 10.0 ** rng.integers(-5, 6))
    return np.stack(out)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("singular", [False, True])
def test_damped_against_mpmath(shape, singular, rng):
    """ok members are within max(16, m, n) eps kappa_lambda of 40 digits (the promise)."""
    m, n = shape
    a = ill_stack(rng, m, n, 12, [1e2, 1e6, 1e9, 1e12], singular)
    scale = np.abs(a).max(axis=(1, 2))
    lam = scale * 10.0 ** rng.uniform(-6, 2, len(a))
    x, ok = stacked_qr.damped_qr(a, lam)
    if singular and min(m, n) == 1:  # zero matrices: refused (Jacobi gives their 0)
        assert not ok.any()
    else:  # the route takes most of them (it refuses tiny lambda only)
        assert ok.sum() >= 6
    for i in np.flatnonzero(ok):
        ref = mp_ref(a[i], lam[i]).real
        bound = max(16, m, n) * np.finfo(np.float64).eps * kappa_lambda(a[i], lam[i])
        assert rel_err(x[i], ref) <= bound, (i, rel_err(x[i], ref) / bound)


@pytest.mark.parametrize("shape", SHAPES)
def test_damped_float32_is_float64_accurate(shape, rng):
    """float32 data is computed in float64: within 2 eps32 of the float64 filter."""
    m, n = shape
    singular = min(m, n) > 1 and rng.random() < 0.5  # (1 x n: singular is zero)
    a = ill_stack(rng, m, n, 40, [1e1, 1e3, 1e5], singular).astype(np.float32)
    lam = np.abs(a).max(axis=(1, 2)).astype(np.float64) * 10.0 ** rng.uniform(-3, 1, len(a))
    b = rng.standard_normal((len(a), m, 2)).astype(np.float32)
    x, ok = stacked_qr.damped_qr(a, lam)
    xb, okb = stacked_qr.damped_qr(a, lam, b)
    assert x.dtype == np.float32 and ok.all() and okb.all()
    ref = filter_ref(a, lam)
    for i in range(len(a)):
        bound = 2 * np.finfo(np.float32).eps + 16 * 2.0**-52 * kappa_lambda(a[i], lam[i])
        assert rel_err(x[i], ref[i]) <= bound
        assert rel_err(xb[i], ref[i] @ b[i].astype(np.float64)) <= 4 * bound


@pytest.mark.parametrize("shape", SHAPES)
def test_full_rank_solve_against_mpmath(shape, rng):
    """Members proved of full rank: the exact pinv(A) @ b within max(16, m, n) eps kappa."""
    m, n = shape
    a = ill_stack(rng, m, n, 12, [1.0, 1e3, 1e5])
    b = rng.standard_normal((len(a), m, 3))
    at, rt = np.zeros(len(a)), np.full(len(a), max(m, n) * np.finfo(np.float64).eps)
    x, ok = stacked_qr.solve_qr(a, b, at, rt)
    assert ok.all()
    for i in range(len(a)):
        sv = np.linalg.svd(a[i], compute_uv=False)
        bound = max(16, m, n) * np.finfo(np.float64).eps * sv[0] / sv[-1]
        ref = mp_pinv(a[i])
        assert rel_err(x[i], ref @ b[i]) <= bound * np.linalg.norm(ref) * np.linalg.norm(
            b[i]
        ) / np.linalg.norm(ref @ b[i])


def test_refusals(rng):
    """Rank-deficient, beyond CholeskyQR2's conditioning, near the tolerance, NaN/Inf,
    zero matrices and zero damping are refused, never answered."""
    m, n = 6, 7
    good = rng.standard_normal((8, m, n))
    deficient = np.stack([known_rank(rng, m, n, r, np.float64) for r in (1, 3, 5, 5)])
    hopeless = ill_stack(rng, m, n, 4, [1e10, 1e14])
    nonfinite = rng.standard_normal((4, m, n))
    nonfinite[0, 1, 2], nonfinite[1, 0, 0], nonfinite[2, 5, 6] = np.nan, np.inf, -np.inf
    zero = np.zeros((2, m, n))
    a = np.concatenate([good, deficient, hopeless, nonfinite, zero])
    b = rng.standard_normal((len(a), m, 1))
    b[3, 0, 0] = np.nan  # a good A with a bad b
    at, rt = np.zeros(len(a)), np.full(len(a), 7 * np.finfo(np.float64).eps)
    _, ok = stacked_qr.solve_qr(a, b, at, rt)
    expect = np.zeros(len(a), dtype=bool)
    expect[:8] = True
    expect[3] = False
    expect[19] = True  # the fourth of "nonfinite" is finite
    np.testing.assert_array_equal(ok, expect)
    # a tolerance just below sigma_min: refused (the certificate needs a factor 2)
    a1 = ill_stack(rng, m, n, 4, [1e3])
    smin = np.linalg.svd(a1, compute_uv=False)[:, -1]
    b1 = rng.standard_normal((4, m, 1))
    _, ok = stacked_qr.solve_qr(a1, b1, smin * 0.9, np.zeros(4))
    assert not ok.any()
    _, ok = stacked_qr.solve_qr(a1, b1, smin * 0.4, np.zeros(4))
    assert ok.all()
    lam = np.full(len(a), 0.1)
    lam[0] = 0.0
    lam[1] = 1e-12  # lambda tiny against ||A||: kappa(C) beyond the analysis
    _, ok = stacked_qr.damped_qr(a, lam)
    assert not ok[:2].any() and ok[2:8].all() and ok[8:12].all()
    assert not ok[16:19].any() and ok[19]  # NaN, Inf, -Inf; the fourth is finite


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hermitian", [False, True])
def test_public_mixed_stacks(dtype, hermitian, rng):
    """damped_pinv / pinv_solve on stacks that mix taken and refused members agree with
    per-member references; bad members are NaN (check_finite=False) or named."""
    m, n = (5, 5) if hermitian else (6, 7)
    parts = [
        rng.standard_normal((40, m, n)),
        np.stack([known_rank(rng, m, n, 2, np.float64) for _ in range(6)]),
        ill_stack(rng, m, n, 6, [1e9, 1e13]),
        rng.standard_normal((4, m, n)) * 1e300,
        rng.standard_normal((4, m, n)) * 1e-300,
    ]
    a = np.concatenate(parts)
    if dtype == np.float32:
        a = np.concatenate(parts[:3]).astype(dtype)
    if hermitian:
        a = a + np.swapaxes(a, -1, -2)
    order = rng.permutation(len(a))
    a = np.ascontiguousarray(a[order])
    lam = np.abs(a).max(axis=(1, 2)).astype(np.float64) * 10.0 ** rng.uniform(-8, 1, len(a))
    b = rng.standard_normal((len(a), m)).astype(dtype)
    x = pi.damped_pinv(a, lam, hermitian=hermitian)
    xb = pi.damped_pinv_solve(a, lam, b, hermitian=hermitian)
    ref, kap = scaled_ref(a, lam, hermitian)
    tol = 1e-4 if dtype == np.float32 else 1e-8
    c = np.abs(a).max(axis=(1, 2)).astype(np.float64)  # compared at scale 1 (no overflow)
    for i in range(len(a)):
        k = kap[i]
        assert rel_err(x[i] * c[i], ref[i] * c[i]) <= tol * max(1.0, k * 1e-6), i
        r = ref[i] * c[i]
        scale = np.linalg.norm(r) * np.linalg.norm(b[i].astype(np.float64))
        err = np.linalg.norm(xb[i] * c[i] - r @ b[i].astype(np.float64))
        assert err <= tol * max(1.0, k * 1e-6) * scale, i
    xs, rank = pi.pinv_solve(a, b, hermitian=hermitian, return_rank=True)
    xp, rank_p = pi.pinv(a, hermitian=hermitian, return_rank=True)
    np.testing.assert_array_equal(rank, rank_p)  # the same rank decision as pinv
    ref_t = torch.linalg.pinv(torch.from_numpy(a.astype(np.float64)), hermitian=hermitian)
    ranks_t = torch.linalg.matrix_rank(torch.from_numpy(a.astype(np.float64)), hermitian=hermitian)
    well = (rank == min(m, n)) & (ranks_t.numpy() == min(m, n))
    for i in np.flatnonzero(well):
        sv = np.linalg.svd(a[i].astype(np.float64), compute_uv=False)
        if sv[-1] < 1e-6 * sv[0]:
            continue  # ill-conditioned: compared through the residual below
        expect = ref_t[i].numpy() @ b[i].astype(np.float64)
        assert np.linalg.norm(xs[i] - expect) <= tol * np.linalg.norm(expect) * sv[0] / sv[-1]
    np.testing.assert_allclose(
        np.einsum("bij,bj->bi", xp.astype(np.float64), b.astype(np.float64)),
        xs.astype(np.float64),
        rtol=0,
        atol=float(tol * 1e2 * np.abs(xs).max()),
    )
    # a bad member is named by its batch index, wherever the fast route refused it
    bad = a.copy()
    bad[7, 0, 0] = np.nan
    with pytest.raises(np.linalg.LinAlgError, match=r"index \(7,\)"):
        pi.damped_pinv(bad, lam)
    with pytest.raises(np.linalg.LinAlgError, match=r"B contains NaN.*index \(9,\)"):
        bb = b.copy()
        bb[9, 0] = np.inf
        pi.pinv_solve(a, bb)
    out = pi.damped_pinv(bad, lam, check_finite=False)
    assert np.isnan(out[7]).all() and np.isfinite(np.delete(out, 7, axis=0)).all()
    _, rank_bad = pi.pinv_solve(bad, b, return_rank=True, check_finite=False)
    assert rank_bad[7] == 0
