"""``solve_large.py``: ``pinv(A) @ B`` without ``pinv(A)``, and the damped inverse.

Live references on fresh random inputs: ``numpy.linalg.pinv`` in double precision with
the same tolerance, the rank of ``pinv``'s own SVD, and an mpmath reference for the
damped inverse (small sizes).
"""

from __future__ import annotations

import tracemalloc

import mpmath
import numpy as np
import pytest
from cases import DTYPES, randn

from pseudoinverse._methods import solve_large as sl
from pseudoinverse._methods.svd import pinv_svd_one

SHAPES = {"square": (96, 96), "tall": (160, 80), "wide": (80, 160)}


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def _wide(dtype):
    return np.complex128 if np.dtype(dtype).kind == "c" else np.float64


def _make(rng, m, n, s, dtype) -> np.ndarray:
    """``U diag(s) V^H`` with Haar-random factors (built in double precision)."""
    k = min(m, n)
    u = np.linalg.qr(randn(rng, (m, k), _wide(dtype)))[0]
    v = np.linalg.qr(randn(rng, (n, k), _wide(dtype)))[0]
    return ((u * s) @ v.conj().T).astype(dtype)


def _spectrum(kind: str, k: int, dtype) -> tuple[np.ndarray, int]:
    """Singular values of each kind, far from the default threshold, and the rank."""
    if kind == "full":
        return np.geomspace(1, 1e-1, k), k
    if kind == "ill":  # kept part: kappa 1e3 (single) or 1e8 (double), full rank
        return np.geomspace(1, 1e-3 if _eps(dtype) > 1e-10 else 1e-8, k), k
    r = k // 2  # rank-deficient: zeros past r
    return np.concatenate([np.geomspace(1, 1e-1, r), np.zeros(k - r)]), r


def _reference(a, b, rtol):
    a64, b64 = a.astype(_wide(a.dtype)), b.astype(_wide(a.dtype))
    return np.linalg.pinv(a64, rcond=rtol) @ b64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("kind", ["full", "ill", "deficient"])
@pytest.mark.parametrize("k", [1, 3])
def test_solve_matches_pinv(rng, dtype, shape, kind, k):
    m, n = SHAPES[shape]
    s, rank = _spectrum(kind, min(m, n), dtype)
    a = _make(rng, m, n, s, dtype)
    b = randn(rng, (m, k), dtype)
    before = a.copy()
    rtol = max(m, n) * _eps(dtype)
    x, got = sl.solve_one(a, b, 0.0, rtol, _eps(dtype))
    np.testing.assert_array_equal(a, before)
    assert x.dtype == a.dtype and x.shape == (n, k) and isinstance(got, int)
    assert got == rank == pinv_svd_one(a, 0.0, rtol)[1]
    ref = _reference(a, b, rtol)
    a64 = a.astype(_wide(dtype))
    kappa = s[0] / s[rank - 1]
    resid = np.linalg.norm(b - a64 @ ref) / (s[0] * np.linalg.norm(ref))  # LS term
    bound = 20 * max(m, n) * _eps(dtype) * kappa * (1 + kappa * resid)
    assert np.linalg.norm(x - ref) <= bound * np.linalg.norm(ref)


def _counting(monkeypatch, cod=True):
    """Count the answers of each rank-deficient route (``cod=False``: that one refuses)."""
    calls = {"svd": 0, "gelsd": 0, "cod": 0}
    svd, gelsd, solve_cod = sl._svd_solve, sl._gelsd, sl.cod.solve_cod

    def count_cod(*args):
        got = solve_cod(*args) if cod else None
        calls["cod"] += got is not None
        return got

    def count_svd(*args):
        calls["svd"] += 1
        return svd(*args)

    def count_gelsd(*args):
        got = gelsd(*args)
        calls["gelsd"] += got is not None
        return got

    monkeypatch.setattr(sl, "_svd_solve", count_svd)
    monkeypatch.setattr(sl, "_gelsd", count_gelsd)
    monkeypatch.setattr(sl.cod, "solve_cod", count_cod)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.complex64])
def test_gelsd_guard_sends_the_threshold_to_gesdd(rng, monkeypatch, dtype):
    """A singular value right at the threshold: gelsd's answer is refused, gesdd's rule
    decides and the rank is pinv's."""
    m, n = 150, 100
    s = np.geomspace(1, 1e-2, n)
    a = _make(rng, m, n, s, dtype)
    sv = np.linalg.svd(a.astype(_wide(dtype)), compute_uv=False)
    rtol = float(sv[60] / sv[0])  # sigma_61 sits on the threshold
    b = randn(rng, (m, 2), dtype)
    calls = _counting(monkeypatch)
    x, rank = sl.solve_one(a, b, 0.0, rtol, _eps(dtype))
    assert calls == {"svd": 1, "gelsd": 0, "cod": 0}  # no route but the SVD near it
    assert rank == pinv_svd_one(a, 0.0, rtol)[1]
    u, s_, vh = np.linalg.svd(a, full_matrices=False)  # the same rule on one SVD
    ref = vh[:rank].conj().T @ ((u[:, :rank].conj().T @ b) / s_[:rank, None])
    np.testing.assert_allclose(x, ref, atol=1e3 * _eps(dtype) * np.linalg.norm(ref))


@pytest.mark.parametrize("atol", [0.0, 0.3])
def test_gelsd_takes_clear_rank_deficiency(rng, monkeypatch, atol):
    """Rank-deficient under the default rule (and under an atol): with the COD route
    refusing, gelsd alone answers."""
    m, n = 200, 120
    s = np.concatenate([np.geomspace(1, 0.5, 70), np.geomspace(0.1, 0.01, 10), np.zeros(40)])
    a = _make(rng, m, n, s, np.float64)
    b = randn(rng, (m, 1), np.float64)
    rtol = 0.0 if atol else m * _eps(np.float64)
    calls = _counting(monkeypatch, cod=False)
    x, rank = sl.solve_one(a, b, atol, rtol, _eps(np.float64))
    assert calls == {"svd": 0, "gelsd": 1, "cod": 0}
    assert rank == (70 if atol else 80) == pinv_svd_one(a, atol, rtol)[1]
    u, s_, vh = np.linalg.svd(a, full_matrices=False)
    ref = vh[:rank].T @ ((u[:, :rank].T @ b) / s_[:rank, None])
    np.testing.assert_allclose(x, ref, atol=1e-12 * np.linalg.norm(ref))


@pytest.mark.parametrize("atol", [0.0, 1e-3])
@pytest.mark.parametrize("shape", [(200, 120), (120, 200), (150, 150)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_cod_takes_clear_rank_deficiency(rng, monkeypatch, atol, shape, dtype):
    """Exact rank deficiency under the default rule: the COD route answers (no gelsd, no
    SVD), with the SVD rule's rank and pinv(A) @ b to 8 p eps kappa_r. Under an atol that
    drops real values (1e-6, above rounding) the COD's truncation is not the SVD's: it
    refuses and gelsd answers. (A narrow gap, 0.5 against 0.1 around 0.3, is refused too:
    column-pivoted QR's diagonal does not reveal it.)"""
    m, n = shape
    k = min(m, n)
    s = np.concatenate([np.geomspace(1, 0.5, 70), np.geomspace(1e-6, 1e-7, 10)])
    s = np.concatenate([s, np.zeros(k - len(s))])
    if not atol:  # exact rank 80: the trailing part is rounding
        s[70:80] = np.geomspace(0.1, 0.01, 10)
    a = _make(rng, m, n, s, dtype)
    b = randn(rng, (m, 2), dtype)
    eps = _eps(dtype)
    rtol = 0.0 if atol else max(m, n) * eps
    calls = _counting(monkeypatch)
    x, rank = sl.solve_one(a, b, atol, rtol, eps)
    dropped_rounding = not atol or 1e-6 <= max(m, n) * eps  # float32: 1e-6 is rounding
    expect = {"svd": 0, "gelsd": 0, "cod": 1} if dropped_rounding else {"svd": 0, "gelsd": 1}
    assert calls == {"cod": 0, **expect}
    assert rank == (70 if atol else 80) == pinv_svd_one(a, atol, rtol)[1]
    a64 = a.astype(np.complex128 if np.iscomplexobj(a) else np.float64)
    u, s_, vh = np.linalg.svd(a64, full_matrices=False)
    ref = vh[:rank].conj().T @ ((u[:, :rank].conj().T @ b) / s_[:rank, None])
    kappa_r = s_[0] / s_[rank - 1]
    tol = 8 * max(m, n) * eps * kappa_r * np.linalg.norm(ref)
    assert np.linalg.norm(x - ref) <= tol


def test_zero_matrix():
    a, b = np.zeros((70, 64)), np.ones((70, 2))
    x, rank = sl.solve_one(a, b, 0.0, 70 * _eps(np.float64), _eps(np.float64))
    assert rank == 0 and not x.any()


def test_memory_tall_full_rank(rng):
    """Peak traced allocation of the direct route stays within 2x the size of A."""
    a = randn(rng, (4000, 200), np.float64)
    b = randn(rng, (4000, 1), np.float64)
    sl.solve_one(a, b, 0.0, 4000 * _eps(np.float64), _eps(np.float64))  # warm the imports
    tracemalloc.start()
    try:
        _, rank = sl.solve_one(a, b, 0.0, 4000 * _eps(np.float64), _eps(np.float64))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rank == 200 and peak <= 2 * a.nbytes


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["pd", "indefinite", "psd-deficient"])
def test_hermitian_reads_lower_triangle(rng, dtype, kind):
    n = 90
    g = randn(rng, (n, n), _wide(dtype))
    h = {
        "pd": g @ g.conj().T + n * np.eye(n),
        "indefinite": (g + g.conj().T) / 2,
        "psd-deficient": g[:, :30] @ g[:, :30].conj().T,
    }[kind].astype(dtype)
    a = h.copy()
    a[np.triu_indices(n, 1)] = np.nan  # never read
    b = randn(rng, (n, 3), dtype)
    rtol = n * _eps(dtype)
    x, rank = sl.solve_one_hermitian(a, b, 0.0, rtol, _eps(dtype))
    h64 = h.astype(_wide(dtype))
    w = np.abs(np.linalg.eigvalsh(h64))
    assert (
        rank == int(np.count_nonzero(w > rtol * w.max())) == (30 if kind == "psd-deficient" else n)
    )
    ref = np.linalg.pinv(h64, rcond=rtol, hermitian=True) @ b
    kappa = w.max() / np.sort(w)[-rank]
    bound = 20 * n * _eps(dtype) * kappa
    assert np.linalg.norm(x - ref) <= bound * np.linalg.norm(ref)


def _kappa_lambda(s: np.ndarray, lam: float) -> float:
    """The damped promise's condition number (``damped_one``'s docstring)."""
    f = s / (s**2 + lam**2)
    x2 = f.max()
    return s[0] * (x2 + 2 / ((s[-1] ** 2 + lam**2) * x2))


def _mp_damped(a: np.ndarray, lam: float) -> np.ndarray:
    """``(A^H A + lambda^2 I)^{-1} A^H`` at 40 digits."""
    with mpmath.workdps(40):
        m = mpmath.matrix(a.astype(complex).tolist())
        mh = m.H
        x = mpmath.inverse(mh * m + mpmath.mpf(lam) ** 2 * mpmath.eye(a.shape[1])) * mh
        return np.array(x.tolist(), dtype=complex)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(12, 8), (8, 12)])
@pytest.mark.parametrize("lam", [0.0, 1e-3, 0.5, 20.0])
def test_damped_against_mpmath(rng, dtype, shape, lam):
    m, n = shape
    k = min(m, n)
    s = np.geomspace(1, 1e-2, k)
    if lam > 0:
        s[k // 2 :] = 0  # singular A: the damping decides
    a = _make(rng, m, n, s, dtype)
    exact = _mp_damped(a, lam) if lam > 0 else np.linalg.pinv(a.astype(complex))
    if m < n:  # (A^H A + l^2)^{-1} A^H equals A^H (A A^H + l^2)^{-1}; mpmath's k is n
        exact = _mp_damped(a.conj().T, lam).conj().T if lam > 0 else exact
    x = sl.damped_one(a, lam)
    b = randn(rng, (m, 2), dtype)
    xb = sl.damped_one(a, lam, b)
    assert x.dtype == xb.dtype == a.dtype and x.shape == (n, m) and xb.shape == (n, 2)
    sv = np.linalg.svd(a.astype(_wide(dtype)), compute_uv=False)
    promise = sl.DAMP_C * max(m, n) * _eps(dtype) * _kappa_lambda(sv, lam)
    assert np.linalg.norm(x - exact) <= promise * np.linalg.norm(exact)
    ref_b = exact @ b.astype(complex)
    assert np.linalg.norm(xb - ref_b) <= promise * np.linalg.norm(exact) * np.linalg.norm(b)


@pytest.mark.parametrize("shape", [(300, 120), (120, 300)])
@pytest.mark.parametrize("lam", [0.3, 5.0])
def test_damped_single_precision_takes_cholesky(rng, monkeypatch, shape, lam):
    """Float32 input, computed in double by Cholesky where the bound allows it; checked
    against a double precision SVD filter of the same float32 data."""
    m, n = shape
    a = (randn(rng, (m, 50), np.float32) @ randn(rng, (50, n), np.float32)).astype(np.float32)
    monkeypatch.setattr(sl, "_damped_svd", lambda *args: pytest.fail("took the SVD"))
    x = sl.damped_one(a, lam)
    b = randn(rng, (m, 1), np.float32)
    xb = sl.damped_one(a, lam, b)
    u, s, vh = np.linalg.svd(a.astype(np.float64), full_matrices=False)
    ref = (vh.T * (s / (s**2 + lam**2))) @ u.T
    err = np.linalg.norm(x - ref) / np.linalg.norm(ref)
    assert err <= 4 * _eps(np.float32)  # the rounding to float32, nearly
    assert np.linalg.norm(xb - ref @ b) <= 8 * _eps(np.float32) * np.linalg.norm(ref @ b)


def test_damped_zero_damping_is_pinv_and_zero_matrix_is_zero(rng):
    a = _make(rng, 100, 70, np.geomspace(1, 1e-3, 70), np.float64)
    np.testing.assert_allclose(sl.damped_one(a, 0.0), np.linalg.pinv(a, rcond=0), rtol=0,
                               atol=1e-10 * np.linalg.norm(np.linalg.pinv(a)))  # fmt: skip
    z = sl.damped_one(np.zeros((70, 64)), 0.0)
    assert z.shape == (64, 70) and not z.any() and np.isfinite(z).all()
