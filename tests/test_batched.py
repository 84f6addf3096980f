"""The certified direct method for stacks of medium matrices (``_methods/batched.py``).

References are live: ``numpy.linalg.pinv`` and ``torch.linalg.pinv`` on the same fresh
random inputs, the SVD method (``pinv_svd``/``pinv_eigh``, whose rank the method must
reproduce), and mpmath (40 digits) for the ill-conditioned float64/complex128 cases.
Every result also meets the four Penrose conditions.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from cases import (
    default_rtol,
    extended_pinv,
    known_rank,
    penrose_residuals,
    randn,
    run_method,
    with_singular_values,
)

import pseudoinverse._methods.batched as batched
from pseudoinverse._methods.batched import pinv_batched, supports
from pseudoinverse._methods.eigh import pinv_eigh
from pseudoinverse._methods.svd import pinv_svd

DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
SHAPES = [(16, 16), (24, 24), (64, 64), (20, 12), (12, 20), (40, 64)]
WIDE = {np.float32: np.float64, np.complex64: np.complex128}


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def wide_dtype(dtype):
    return WIDE.get(np.dtype(dtype).type, np.dtype(dtype).type)


def run(a, atol=None, rtol=None, hermitian=False):
    x, rank = run_method(pinv_batched, a, atol, rtol, hermitian)
    assert x.flags.c_contiguous
    return x, rank


@pytest.fixture
def spy(monkeypatch):
    """Records the stacks that go to the SVD/eigh fallback."""
    seen: list[np.ndarray] = []

    def wrap(fn):
        def inner(a, *args, **kwargs):
            seen.append(a.copy())
            return fn(a, *args, **kwargs)

        return inner

    monkeypatch.setattr(batched, "pinv_svd", wrap(pinv_svd))
    monkeypatch.setattr(batched, "pinv_eigh", wrap(pinv_eigh))
    return seen


def fallback_count(seen) -> int:
    return sum(s.shape[0] for s in seen)


def svd_rank(a, atol, rtol) -> np.ndarray:
    """The rank by the rule, on the singular values of a float64/complex128 SVD."""
    s = np.linalg.svd(a.astype(wide_dtype(a.dtype)), compute_uv=False)
    return np.count_nonzero(s > np.maximum(atol, rtol * s[:, 0])[:, None], axis=1)


def assert_penrose(a, x, factor=1000.0):
    """Penrose residuals within ``factor p eps kappa`` (XAX - X and the symmetry
    conditions grow with the condition number, for the SVD as for any method)."""
    res = penrose_residuals(a, x)
    sv = np.linalg.svd(a.astype(wide_dtype(a.dtype)), compute_uv=False)
    kept = np.where(sv > max(a.shape[1:]) * eps(a.dtype) * sv[:, :1], sv, np.inf)
    kappa = float(np.max(sv[:, 0] / kept.min(axis=1)))  # of the kept part
    assert max(res) <= factor * max(a.shape[1:]) * eps(a.dtype) * kappa, res


def rel_errors(x, ref):
    num = np.linalg.norm((x.astype(ref.dtype) - ref).astype(np.complex128), axis=(1, 2))
    return num / np.linalg.norm(ref.astype(np.complex128), axis=(1, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("m", "n"), SHAPES)
def test_random_against_numpy_and_torch(m, n, dtype, rng, spy):
    """Gaussian stacks: all certified, rank full, as accurate as the libraries."""
    count = 20 if max(m, n) >= 64 else 40
    a = randn(rng, (count, m, n), dtype)
    x, rank = run(a)
    w = wide_dtype(dtype)
    ref = extended_pinv(a)  # NumPy's float64, refined in long double
    ours = rel_errors(x, ref)
    theirs_np = rel_errors(np.linalg.pinv(a), ref)
    theirs_torch = rel_errors(torch.linalg.pinv(torch.from_numpy(a)).numpy(), ref)
    kappa = np.linalg.cond(a.astype(w))
    floor = 4 * eps(dtype)  # rounding the float64 result to the input dtype
    assert np.all(ours / kappa <= 2 * np.maximum(theirs_np, theirs_torch) / kappa + floor)
    if w == np.dtype(dtype).type:  # float64/complex128: NumPy's error constant
        assert (ours / kappa).max() <= 4 * (theirs_np / kappa).max() + 10 * eps(dtype)
    # the rank is the SVD's rule's (a float64 SVD); Gaussian matrices are full rank
    # (in float32, rtol = p eps32 drops a sigma_min of ~1e-4 sigma_max now and then)
    assert np.array_equal(rank, svd_rank(a, np.zeros(count), default_rtol(a)))
    assert w != np.dtype(dtype).type or np.all(rank == min(m, n))
    assert_only_near_threshold(spy, np.zeros(count), default_rtol(a))
    assert fallback_count(spy) <= count // 4  # Gaussian stacks: nearly all certified
    assert_penrose(a, x)


def assert_only_near_threshold(spy, atol, rtol) -> None:
    """The members sent to the SVD are those the certificate may reject: sigma_min within
    ``2 MARGIN max(atol, rtol S, p eps S)`` (S = ||A||_F), never a clearly full-rank one."""
    if not spy:
        return
    b = np.concatenate(spy)
    s = np.linalg.svd(b.astype(wide_dtype(b.dtype)), compute_uv=False)
    near = rejection_band(b, atol, rtol)
    assert np.all(s[:, -1] <= near), (s[:, -1], near)


def rejection_band(b, atol, rtol) -> np.ndarray:
    """An upper bound on sigma_min of any matrix the certificate may reject: it accepts
    when ``(1 - r) / ||X||_F > MARGIN max(...)`` with ``r <= 1/2`` and
    ``||X||_F <= sqrt(k) / sigma_min``."""
    w = b.astype(wide_dtype(b.dtype))
    k, p = min(b.shape[1:]), max(b.shape[1:])
    big = np.linalg.norm(w, axis=(1, 2))
    band = np.maximum(rtol[0] * big, p * eps(b.dtype) * big)
    return np.maximum(2 * batched.MARGIN * np.sqrt(k) * band, atol[0])


def mp_inverse(a: np.ndarray) -> np.ndarray:
    with mpmath.workdps(40):
        return np.array(mpmath.inverse(mpmath.matrix(a.tolist())).tolist(), dtype=a.dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("log_kappa", [6, 10])
def test_ill_conditioned_against_mpmath(log_kappa, dtype, rng, spy):
    """kappa up to 1e10: certified and within 2x NumPy's error against 40 digits."""
    n, count = 16, 6
    a = np.stack(
        [
            with_singular_values(rng, n, n, np.logspace(0, -log_kappa, n), dtype)
            for _ in range(count)
        ]
    )
    x, rank = run(a)
    assert np.all(rank == n) and fallback_count(spy) == 0
    ref = np.stack([mp_inverse(m) for m in a])
    ours, theirs = rel_errors(x, ref), rel_errors(np.linalg.pinv(a), ref)
    # the same order as NumPy's error (observed ratio 0.3 to 2.5 over seeds at 1e10)
    assert ours.max() <= 4 * theirs.max() + 10 * eps(dtype), (ours.max(), theirs.max())
    kappa = 10.0**log_kappa
    assert ours.max() <= n * eps(dtype) * kappa  # the promise: p eps kappa
    # Penrose: the LU inverse's X A is Hermitian to ~eps kappa, the SVD's to ~0.1 eps kappa
    theirs_penrose = penrose_residuals(a, np.linalg.pinv(a))
    for o, t in zip(penrose_residuals(a, x), theirs_penrose, strict=True):
        assert o <= 10 * t + n * eps(dtype) * kappa, (o, t)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_ill_conditioned_tall(dtype, rng, spy):
    m, n = 24, 12
    a = np.stack([with_singular_values(rng, m, n, np.logspace(0, -10, n), dtype) for _ in range(4)])
    x, rank = run(a)
    assert np.all(rank == n) and fallback_count(spy) == 0
    with mpmath.workdps(50):  # normal equations: kappa^2 = 1e20 leaves 30 digits
        ref = []
        for mat in a:
            am, ah = mpmath.matrix(mat.tolist()), mpmath.matrix(mat.conj().T.tolist())
            ref.append(np.array((mpmath.inverse(ah * am) * ah).tolist(), dtype=dtype))
    ref = np.stack(ref)
    ours, theirs = rel_errors(x, ref), rel_errors(np.linalg.pinv(a), ref)
    assert ours.max() <= 4 * theirs.max() + 10 * eps(dtype), (ours.max(), theirs.max())
    assert ours.max() <= m * eps(dtype) * 1e10  # the promise: p eps kappa


def all_dtypes(cases):
    """``DTYPES`` x ``cases``."""
    return [(d, *c) for d in DTYPES for c in cases]


@pytest.mark.parametrize(
    ("dtype", "m", "n", "r"), all_dtypes([(16, 16, 8), (64, 64, 40), (20, 12, 5), (12, 20, 11)])
)
def test_rank_deficient_goes_to_svd(m, n, r, dtype, rng, spy):
    """``B @ C^H``: every member is rejected and gets the SVD's rank and result."""
    a = np.stack([known_rank(rng, m, n, r, dtype) for _ in range(12)])
    x, rank = run(a)
    assert fallback_count(spy) == 12
    xs, rs = pinv_svd(a, np.zeros(12), default_rtol(a))
    assert np.array_equal(rank, rs) and np.all(rank == r)
    np.testing.assert_array_equal(x, xs)  # exactly the SVD method's output
    w = wide_dtype(dtype)
    ref = np.linalg.pinv(a.astype(w), rtol=max(m, n) * eps(dtype))
    np.testing.assert_allclose(x, ref, atol=1e3 * max(m, n) * eps(dtype) * np.abs(ref).max())
    assert_penrose(a, x)


def exact_zero_pivot(dtype, n=16) -> np.ndarray:
    a = np.ones((n, n), dtype=dtype)  # rank 2: LU meets an exact zero pivot
    a[0, 0] = 2
    return a


@pytest.mark.parametrize("dtype", DTYPES)
def test_mixed_batch(dtype, rng, spy):
    """Certified and rejected members in one stack; only the rejected go to the SVD."""
    n, count = 24, 30
    a = randn(rng, (count, n, n), dtype)
    bad = [1, 7, 8, 20, 29]
    for i in bad[:3]:
        a[i] = known_rank(rng, n, n, n - 3, dtype)
    a[bad[3]] = 0  # the zero matrix: inv fails, rank 0
    a[bad[4]] = exact_zero_pivot(dtype, n)
    x, rank = run(a)
    sent = np.concatenate(spy)
    rejected = np.flatnonzero(np.any(np.all(a[:, None] == sent[None], axis=(2, 3)), axis=1))
    assert set(bad) <= set(rejected) and len(rejected) == len(sent)
    extra = np.setdiff1d(rejected, bad)  # float32: a Gaussian near the threshold, rarely
    assert_only_near_threshold([a[extra]] if extra.size else [], np.zeros(1), default_rtol(a))
    xs, rs = pinv_svd(a, np.zeros(count), default_rtol(a))
    assert np.array_equal(rank, rs)
    assert list(rank[bad]) == [n - 3] * 3 + [0, 2]
    np.testing.assert_array_equal(x[rejected], xs[rejected])
    assert not np.any(x[bad[3]])
    good = np.setdiff1d(np.arange(count), rejected)
    w = wide_dtype(dtype)
    ref = np.linalg.pinv(a[good].astype(w))
    kappa = np.linalg.cond(a[good].astype(w))
    assert (rel_errors(x[good], ref) / kappa).max() <= 10 * eps(dtype)
    assert_penrose(a, x)


@pytest.mark.parametrize(("dtype", "m", "n"), all_dtypes([(16, 16), (64, 64), (20, 12), (12, 20)]))
@pytest.mark.parametrize("via", ["atol", "rtol"])
def test_threshold_edges_go_to_svd(m, n, via, dtype, rng, spy):
    """Smallest singular value 2x above / 2x below ``tol``: not certifiable (margin 4),
    sent to the SVD, which keeps / drops it; far above (1e3 x): certified."""
    k = min(m, n)
    s_min = {"above": 2.0, "below": 0.5, "far": 1e3}
    tol = 1e-4
    mats, want = [], []
    for where, factor in s_min.items():
        s = np.linspace(1.0, 0.5, k)
        s[-1] = factor * tol
        for _ in range(3):
            mats.append(with_singular_values(rng, m, n, s, dtype))
            want.append(k if where != "below" else k - 1)
    a = np.stack(mats)
    b = a.shape[0]
    atol = np.full(b, tol) if via == "atol" else np.zeros(b)
    # sigma_max is 1 (up to rounding): rtol = tol gives the same threshold
    rtol = np.zeros(b) if via == "atol" else np.full(b, tol)
    x, rank = run(a, atol, rtol)
    assert list(rank) == want
    assert fallback_count(spy) == 6  # the six near the threshold, not the three far ones
    xs, rs = pinv_svd(a, atol, rtol)
    assert np.array_equal(rank, rs)
    np.testing.assert_array_equal(x[:6], xs[:6])
    # Penrose against the SVD method's own residuals (A X A = A fails by the dropped value)
    for o, t in zip(penrose_residuals(a, x), penrose_residuals(a, xs), strict=True):
        assert o <= 10 * t + 100 * max(m, n) * eps(dtype), (o, t)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [16, 48])
def test_hermitian_reads_lower_triangle(n, dtype, rng, spy):
    """Indefinite (certified), semidefinite rank-deficient (eigh); NaN above the diagonal."""
    count = 10
    b = randn(rng, (count, n, n), dtype)
    full = (b + b.conj().transpose(0, 2, 1)) / 2
    low = randn(rng, (3, n, n // 2), dtype)
    full[-3:] = low @ low.conj().transpose(0, 2, 1)  # PSD of rank n / 2
    full = full.astype(dtype)
    a = full.copy()
    iu = np.triu_indices(n, 1)
    a[:, iu[0], iu[1]] = np.nan  # never read
    if a.dtype.kind == "c":
        a[:, np.arange(n), np.arange(n)] += 7j  # the diagonal's imaginary part: ignored
    x, rank = run(a, hermitian=True)
    assert np.all(np.isfinite(x))
    # the three rank-deficient ones, plus any indefinite one with an eigenvalue near 0
    near = np.abs(np.linalg.eigvalsh(full[:-3].astype(wide_dtype(dtype)))).min(-1)
    band = rejection_band(full[:-3], np.zeros(1), default_rtol(a))
    assert 3 <= fallback_count(spy) <= 3 + np.count_nonzero(near <= band)
    _, re = pinv_eigh(a, np.zeros(count), default_rtol(a))
    assert np.array_equal(rank, re)
    # a Gaussian indefinite member is full rank unless an eigenvalue lies within the
    # band of the threshold (float32: a few runs in a thousand), where eigh decides
    clear = near > band
    assert list(rank[-3:]) == [n // 2] * 3 and np.all(rank[:-3][clear] == n)
    w = wide_dtype(dtype)
    ref = np.linalg.pinv(full.astype(w), hermitian=True, rtol=n * eps(dtype))
    kappa = np.linalg.cond(full[:-3].astype(w))
    errors = rel_errors(x[:-3], ref[:-3]) / kappa
    assert np.max(errors[clear], initial=0.0) <= 10 * eps(dtype)
    np.testing.assert_allclose(x[-3:], ref[-3:], atol=1e4 * n * eps(dtype) * np.abs(ref).max())
    assert_penrose(full, x)


def test_float32_is_computed_in_float64(rng, spy):
    """Like numpy.linalg.pinv, float32 data are inverted in float64 and rounded once."""
    a = randn(rng, (50, 32, 32), np.float32)
    x, _ = run(a)
    done = np.ones(50, dtype=bool)  # the certified members (the others are the SVD's)
    for s in spy:
        done &= ~np.any(np.all(a[:, None] == s[None], axis=(2, 3)), axis=1)
    assert done.sum() >= 45
    ref = np.linalg.pinv(a[done].astype(np.float64))
    assert rel_errors(x[done], ref).max() <= 10 * eps(np.float32)  # ulps, not eps32 * kappa


def test_supports():
    assert supports(16, 16, np.dtype(np.float64), 10_000)
    assert supports(64, 64, np.dtype(np.complex128), 1000)
    assert supports(20, 40, np.dtype(np.float32), 100)
    assert not supports(64, 64, np.dtype(np.float64), 1)  # one matrix: qr.py's path
    assert not supports(4, 4, np.dtype(np.float64), 10_000)  # the Jacobi kernel's range
    assert not supports(512, 512, np.dtype(np.float64), 10)
    assert not supports(12, 12, np.dtype(np.float32), 100)  # Jacobi, in float32
    assert not supports(16, 16, np.dtype(np.int64), 100)


def test_single_member_and_chunks(rng, monkeypatch):
    """Chunk boundaries do not matter: tiny chunks give the same result."""
    a = randn(rng, (37, 16, 16), np.float64)
    a[5] = 0
    x1, r1 = run(a)
    monkeypatch.setattr(batched, "_CHUNK_BYTES", 1)  # chunks of 8
    x2, r2 = run(a)
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_allclose(x1, x2, rtol=0, atol=1e-12 * np.abs(x1).max())
    _, r3 = run(a[5:7])
    assert list(r3) == [0, 16]
