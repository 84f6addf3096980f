"""Issue 5: the certified fast paths for large matrices (LU/QR/Cholesky, randomized).

Each method's error is checked against a live float64 SVD reference
(``numpy.linalg.pinv`` with the same tolerance) or an mpmath one (small sizes), within
``max(m, n) * eps * kappa`` (the accuracy promise); every rank is the SVD method's.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest

import pseudoinverse as pi
from pseudoinverse._methods import (
    certificate,
    cholesky,
    choose,
    gram,
    lean_svd,
    qr,
    randomized,
    svd,
)


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def make(m, n, cond=1e2, *, rank=None, dtype=np.float64, seed=0, smin=None):
    """``U diag(s) V^H`` with ``s`` log-spaced from 1 to ``1/cond`` (then zeros past rank)."""
    rng = np.random.default_rng(seed)
    k = min(m, n)
    cplx = np.issubdtype(dtype, np.complexfloating)

    def orth(r, c):
        g = rng.standard_normal((r, c)) + (1j * rng.standard_normal((r, c)) if cplx else 0)
        return np.linalg.qr(g)[0]

    s = np.logspace(0, -np.log10(cond), k)
    if smin is not None:
        s[-1] = smin
    if rank is not None:
        s[rank:] = 0
    return ((orth(m, k) * s) @ orth(n, k).conj().T).astype(dtype)


def rel_err(x, ref) -> float:
    return float(np.linalg.norm(x - ref) / np.linalg.norm(ref))


def default_rtol(a) -> float:
    return max(a.shape) * _eps(a.dtype)


SHAPES = [(300, 300), (400, 200), (200, 400)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("cond", [1e2, 1e6, 1e10])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_auto_full_rank_takes_fast_path_with_svd_rank_and_accuracy(shape, cond, dtype):
    a = make(*shape, cond, dtype=dtype)
    assert choose("auto", False, (1, *shape), a.dtype) == "direct_or_svd"
    assert qr.full_rank_inverse(a, 0.0, default_rtol(a)) is not None  # the fast path runs
    x, r = pi.pinv(a, return_rank=True)
    x_svd, r_svd = pi.pinv(a, method="svd", return_rank=True)
    assert r == r_svd == min(shape)
    ref = np.linalg.pinv(a, rtol=None)
    assert rel_err(x, ref) <= max(shape) * _eps(dtype) * cond
    assert rel_err(x_svd, ref) <= max(shape) * _eps(dtype) * cond


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_auto_single_precision(shape, dtype):
    cond = 1e3
    a = make(*shape, cond, dtype=dtype)
    x, r = pi.pinv(a, return_rank=True)
    assert r == pi.pinv(a, method="svd", return_rank=True).rank == min(shape)
    assert x.dtype == dtype
    ref = np.linalg.pinv(a.astype(np.complex128), rtol=None)
    assert rel_err(x, ref) <= max(shape) * _eps(dtype) * cond
    # the direct paths run in float64: only the final rounding to single precision
    # remains (the float32 SVD's error is about kappa times larger)
    assert rel_err(x, ref) <= 4 * _eps(dtype)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_rank_deficient_goes_to_svd_with_its_rank(shape, dtype):
    a = make(*shape, 1e4, rank=120, dtype=dtype)
    assert qr.full_rank_inverse(a, 0.0, default_rtol(a)) is None
    x, r = pi.pinv(a, return_rank=True)
    x_svd, r_svd = pi.pinv(a, method="svd", return_rank=True)
    assert r == r_svd == 120
    assert rel_err(x, np.linalg.pinv(a, rtol=None)) <= max(shape) * _eps(dtype) * 1e4
    np.testing.assert_array_equal(x, x_svd)  # the very same path


@pytest.mark.parametrize("factor", [0.5, 0.999, 1.0, 1.001, 2.0, 3.9])
@pytest.mark.parametrize("shape", SHAPES)
def test_smallest_value_near_threshold_goes_to_svd(factor, shape):
    rtol = 1e-8  # sigma_max = 1, so tol = 1e-8: sigma_min = factor * tol
    a = make(*shape, 1e4, smin=factor * rtol, seed=3)
    assert qr.full_rank_inverse(a, 0.0, rtol) is None
    x, r = pi.pinv(a, rtol=rtol, return_rank=True)
    x_svd, r_svd = pi.pinv(a, rtol=rtol, method="svd", return_rank=True)
    assert r == r_svd
    np.testing.assert_array_equal(x, x_svd)
    if factor != 1.0:  # exactly at the threshold the SVD's rounding decides
        assert r == min(shape) - (factor < 1)
    with pytest.raises(ValueError, match="cannot be certified"):
        pi.pinv(a, rtol=rtol, method="qr")


def test_atol_threshold_goes_to_svd():
    a = make(300, 300, 1e3, seed=4)  # sigma_min = 1e-3
    for atol in (0.9e-3, 1.1e-3):
        assert qr.full_rank_inverse(a, atol, 0.0) is None
        r = pi.pinv(a, atol=atol, return_rank=True).rank
        assert r == pi.pinv(a, atol=atol, method="svd", return_rank=True).rank
    # the bound uses ||X||_F, here about 5 ||X||_2, and MARGIN = 4: a factor 100 passes
    assert qr.full_rank_inverse(a, 1e-5, 0.0) is not None
    assert pi.pinv(a, atol=1e-5, return_rank=True).rank == 300


@pytest.mark.parametrize("shape", [(20, 20), (30, 15), (15, 30)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("cond", [1e2, 1e6])
def test_direct_inverse_against_mpmath(shape, dtype, cond):
    a = make(*shape, cond, dtype=dtype, seed=5)
    x = qr.full_rank_inverse(a, 0.0, default_rtol(a))
    assert x is not None
    if shape[0] != shape[1]:  # CholeskyQR2 below its kappa limit, Householder above
        fac = qr._proof(a, 0.0, default_rtol(a))
        assert gram.path(fac, shape, a.dtype) == ("cholqr2" if cond < 1e3 else "householder")
    mpmath.mp.dps = 50
    am = mpmath.matrix(a.tolist())
    ah = am.transpose_conj()
    ref = (ah * am) ** -1 * ah if shape[0] >= shape[1] else ah * (am * ah) ** -1
    ref = np.array(ref.tolist(), dtype=complex)
    assert rel_err(x, ref) <= max(shape) * _eps(dtype) * cond
    if shape[0] != shape[1]:
        xq = qr.pinv_qr(a[None], np.zeros(1), np.array([default_rtol(a)]))[0][0]
        assert rel_err(xq, ref) <= max(shape) * _eps(dtype) * cond


def _certify(x, a, atol=0.0, rtol=0.0):
    """The residual certificate of a candidate ``X`` for ``A``: ``X A`` or, wide, ``A X``."""
    wide = a.shape[0] < a.shape[1]
    prod = (lambda x, w, rows: w[rows] @ x) if wide else (lambda x, w, rows: x[rows] @ w)
    return certificate.certify(x, a, atol, rtol, _eps(a.dtype), product=prod)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(  # float32: certifiable only while p eps32 kappa_F <= 1/2
    ("dtype", "cond"),
    [(np.float64, 1e2), (np.float64, 1e6), (np.complex128, 1e6), (np.float32, 1e2)],
)
def test_certificate_lower_bound_is_rigorous(shape, dtype, cond):
    """Whatever produced ``X`` (here NumPy's SVD), ``smin <= sigma_min(A)``, informatively."""
    a = make(*shape, cond, dtype=dtype, seed=15)
    x = np.linalg.pinv(a)
    v = _certify(x, a)
    assert v.accepted
    sv = np.linalg.svd(a.astype(np.complex128), compute_uv=False)  # exact data, float64
    assert sv[-1] / (2 * np.sqrt(min(shape))) <= v.smin <= sv[-1] * (1 + 1e-12)
    assert v.r <= 2 * max(shape) * _eps(dtype) * np.linalg.norm(a) * np.linalg.norm(x)


@pytest.mark.parametrize("shape", SHAPES)
def test_certificate_threshold_is_sharp(shape):
    """Accepted iff the lower bound ``smin`` exceeds ``MARGIN * atol``, on either side."""
    a = make(*shape, 1e3, seed=16)
    x = qr.full_rank_inverse(a, 0.0, 0.0)
    s = _certify(x, a).smin
    assert s > 0
    assert _certify(x, a, atol=s / certificate.MARGIN * (1 - 1e-9)).accepted
    assert not _certify(x, a, atol=s / certificate.MARGIN * (1 + 1e-9)).accepted


@pytest.mark.parametrize("factor", [0.5, 1.0, 3.9, 1e3])
@pytest.mark.parametrize("shape", SHAPES)
def test_certificate_near_threshold(factor, shape):
    """``sigma_min = factor * tol``: below ``MARGIN`` never accepted (``smin <= sigma_min``),
    far above accepted; the candidate is NumPy's float64 SVD pseudo-inverse."""
    rtol = 1e-8
    a = make(*shape, 1e4, smin=factor * rtol, seed=3)
    v = _certify(np.linalg.pinv(a, rtol=0.1 * rtol), a, rtol=rtol)
    assert bool(v.accepted) == (factor > certificate.MARGIN)


def test_certificate_rejects_what_the_a_priori_rule_accepted():
    """The former a-priori rule saw only the norms of ``X``: the inverse with its rows
    reversed has the same ones and passed it; its residual ``X A - I = P - I`` does not.
    A float32 inverse passes the rank test (``r < 1/2``) but not the accuracy gate."""
    n = 300
    a = make(n, n, 1e2, seed=17)
    x = np.linalg.inv(a)
    eps, rtol = _eps(a.dtype), n * _eps(a.dtype)

    def norms(z):  # min(||z||_F, sqrt(||z||_1 ||z||_inf)), the former S and nu
        one, inf = np.abs(z).sum(0).max(), np.abs(z).sum(1).max()
        return min(np.linalg.norm(z), np.sqrt(one * inf))

    def a_priori(z):  # the former `qr.certified` with growth factor 1
        s_up, nu = norms(a), norms(z)
        return n * eps * s_up * nu <= 0.125 and 0.85 / nu > 4 * rtol * s_up

    assert _certify(x, a, rtol=rtol).accepted
    bad = x[::-1]
    assert a_priori(x) and a_priori(bad)
    v = _certify(bad, a, rtol=rtol)
    assert not v.accepted and v.r > 0.5
    x32 = np.linalg.inv(a.astype(np.float32)).astype(np.float64)
    assert a_priori(x32)
    v = _certify(x32, a, rtol=rtol)
    assert not v.accepted and v.r < 0.5


@pytest.mark.parametrize("shape", SHAPES)
def test_certificate_by_blocks_of_rows(shape, monkeypatch):
    """One large matrix forms ``D`` by blocks of rows (here 64): the same ``r`` as whole,
    and the same decisions and results on the LU/QR and Cholesky (``hemm``) paths."""
    a = make(*shape, 1e4, dtype=np.complex128, seed=20)
    x = np.linalg.pinv(a)
    pd = a @ a.conj().T if shape[0] <= shape[1] else a.conj().T @ a
    whole = _certify(x, a)
    direct = qr.full_rank_inverse(a, 0.0, 1e-12)
    chol = cholesky.cholesky_inverse(pd, 0.0, 1e-12)
    assert whole.accepted and direct is not None and chol is not None
    monkeypatch.setattr(certificate, "_BLOCK_BYTES", 1)
    blocks = _certify(x, a)
    assert blocks.accepted
    # ``r`` bounds a rounding error (``D = fl(X W - I)``): its own value changes with the
    # BLAS kernel's summation order per block (seen: 2e-6 relative on one CPU), so the
    # blocks must give the same magnitude, not the same bits; ``smin`` is robust
    np.testing.assert_allclose(blocks.r, whole.r, rtol=1e-4)
    np.testing.assert_allclose(blocks.smin, whole.smin, rtol=1e-10)
    np.testing.assert_array_equal(qr.full_rank_inverse(a, 0.0, 1e-12), direct)
    np.testing.assert_array_equal(cholesky.cholesky_inverse(pd, 0.0, 1e-12), chol)


def test_certificate_stack_matches_single():
    """The vectorised stack verdicts equal the one-matrix ones. Rank 30 of 40: ``X`` by the
    SVD is a good pseudo-inverse but ``X A - I`` has norm 1 (rejected after the product);
    ``X`` with every value inverted is huge (screened out by norms: ``r = inf``)."""
    low = make(40, 40, rank=30, seed=19)
    a = np.stack([make(40, 40, 1e2, seed=18), make(40, 40, 1e6, seed=18), low, low])
    x = np.linalg.pinv(a)
    x[3] = np.linalg.pinv(low, rtol=0.0)
    eps = _eps(a.dtype)
    atol, rtol = np.zeros(4), np.full(4, 40 * eps)
    v = certificate.certify(x, a, atol, rtol, eps)
    np.testing.assert_array_equal(v.accepted, [True, True, False, False])
    assert np.isfinite(v.r[2]) and v.r[2] > 0.5 and v.r[3] == np.inf
    for i in range(4):
        vi = certificate.certify(x[i], a[i], 0.0, rtol[i], eps)
        assert vi.accepted == v.accepted[i]
        np.testing.assert_allclose([vi.r, vi.smin], [v.r[i], v.smin[i]], rtol=1e-10)


@pytest.mark.parametrize("shape", SHAPES)
def test_method_qr(shape):
    a = make(*shape, 1e6, seed=6)
    x, r = pi.pinv(a, method="qr", return_rank=True)
    assert r == min(shape)
    assert rel_err(x, np.linalg.pinv(a, rtol=None)) <= max(shape) * _eps(a.dtype) * 1e6
    with pytest.raises(ValueError, match='method="qr"'):
        pi.pinv(make(*shape, 1e2, rank=100), method="qr")


def test_methods_do_not_modify_input_and_batches():
    a = np.stack([make(200, 150, 1e3, seed=s) for s in range(2)] + [make(200, 150, rank=50)])
    keep = a.copy()
    x, r = pi.pinv(a, return_rank=True)
    np.testing.assert_array_equal(a, keep)
    np.testing.assert_array_equal(r, [150, 150, 50])
    np.testing.assert_array_equal(r, pi.pinv(a, method="svd", return_rank=True).rank)
    assert rel_err(x, np.linalg.pinv(a, rtol=None)) <= 200 * _eps(a.dtype) * 1e3
    for method in ("qr", "randomized", "svd"):
        try:
            pi.pinv(a[:2], method=method)
        except ValueError:  # pragma: no cover - qr on full rank must not raise
            raise
        np.testing.assert_array_equal(a, keep)


def _pd(n, dtype, seed=7, cond=1e6):
    return make(n, n, cond, dtype=dtype, seed=seed) @ make(n, n, 1, dtype=dtype, seed=seed).conj().T


@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.float32])
def test_hermitian_pd_cholesky_reads_lower_only(dtype):
    n = 300
    gcond = 1e3 if dtype != np.float32 else 1e1  # float32: kappa must be < 1/(n eps)
    g = make(n, n, gcond, dtype=dtype, seed=8)
    pd = (g @ g.conj().T).astype(dtype)
    cond = gcond**2
    garbage = pd.copy()
    garbage[np.triu_indices(n, 1)] = np.nan
    rtol = n * _eps(dtype)
    assert cholesky.cholesky_inverse(garbage, 0.0, rtol) is not None  # the fast path runs
    x, r = pi.pinv(garbage, hermitian=True, return_rank=True)
    r_e = pi.pinv(pd, hermitian=True, method="eigh", return_rank=True).rank
    assert r == r_e == n
    ref = np.linalg.pinv(pd.astype(np.complex128), rtol=None, hermitian=True)
    assert rel_err(x, ref) <= n * _eps(dtype) * cond
    np.testing.assert_allclose(x, x.conj().T, rtol=0, atol=0)  # exactly Hermitian


def test_hermitian_indefinite_and_semidefinite_go_to_eigh():
    n = 300
    g = make(n, n, 1e2, seed=9)
    for a in (g + g.T, make(n, n, 1e2, rank=200, seed=9) @ make(n, n, 1e2, rank=200, seed=9).T):
        assert cholesky.cholesky_inverse(a, 0.0, n * _eps(a.dtype)) is None
        x, r = pi.pinv(a, hermitian=True, return_rank=True)
        x_e, r_e = pi.pinv(a, hermitian=True, method="eigh", return_rank=True)
        assert r == r_e
        w = np.abs(np.linalg.eigvalsh(a))
        kappa = w.max() / np.sort(w)[-r]
        assert rel_err(x, x_e) <= n * _eps(a.dtype) * kappa
        np.testing.assert_array_equal(x, x.T)  # exactly symmetric


@pytest.mark.parametrize("shape", [(600, 500), (500, 600)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_randomized_certificate_on_low_rank(shape, dtype):
    rng = np.random.default_rng(10)
    k = 15
    cplx = np.issubdtype(dtype, np.complexfloating)
    b = rng.standard_normal((shape[0], k)) + (
        1j * rng.standard_normal((shape[0], k)) if cplx else 0
    )
    c = rng.standard_normal((k, shape[1]))
    a = (b @ c).astype(dtype)
    got = randomized.randomized_one(a, 0.0, default_rtol(a))
    assert got is not None  # certified, no fallback
    x, r = pi.pinv(a, method="randomized", return_rank=True)
    x_svd, r_svd = pi.pinv(a, method="svd", return_rank=True)
    assert r == r_svd == k
    assert rel_err(x, x_svd) <= 1e-12
    np.testing.assert_array_equal(x, pi.pinv(a, method="randomized"))  # seeded


def test_randomized_falls_back_on_flat_spectrum():
    a = np.random.default_rng(11).standard_normal((400, 300))
    assert randomized.randomized_one(a, 0.0, default_rtol(a)) is None
    x, r = pi.pinv(a, method="randomized", return_rank=True)
    x_svd, r_svd = pi.pinv(a, method="svd", return_rank=True)
    assert r == r_svd == 300
    np.testing.assert_array_equal(x, x_svd)


@pytest.mark.parametrize("above", [1e-3, 1e-9, -1e-9, -1e-3])
def test_randomized_value_near_threshold(above):
    s = np.zeros(300)
    s[:10] = np.logspace(0, -2, 10)
    s[10] = 1e-8 * (1 + above)  # tol = 1e-8; the noise level is about 1e-15
    u = np.linalg.qr(np.random.default_rng(12).standard_normal((400, 300)))[0]
    v = np.linalg.qr(np.random.default_rng(13).standard_normal((300, 300)))[0]
    a = (u * s) @ v.T
    got = randomized.randomized_one(a, 0.0, 1e-8)
    if abs(above) < 1e-6:  # within the noise of the threshold: not certifiable
        assert got is None
    else:  # decidable: certified, and the same decision as the SVD's
        assert got is not None and got[1] == 10 + (above > 0)
    r = pi.pinv(a, rtol=1e-8, method="randomized", return_rank=True).rank
    assert r == pi.pinv(a, rtol=1e-8, method="svd", return_rank=True).rank


def test_lean_svd_falls_back_to_gesvd(monkeypatch):
    """``bdsdc`` failing in ``lean_svd`` (forced: its ``info`` set to 1), then ``gesdd``
    (forced): ``gesvd`` computes the result, with the rule's rank."""
    a = make(200, 150, rank=100, seed=14)
    real = svd._svd_lapack
    calls = []
    real_call = lean_svd._call

    def no_bdsdc(name, *args):
        if name.endswith("bdsdc"):
            calls.append("bdsdc")
            args[-1].value = 1  # info > 0: did not converge
            return
        real_call(name, *args)

    monkeypatch.setattr(lean_svd, "_call", no_bdsdc)

    def flaky(w, driver):
        calls.append(driver)
        if driver == "gesdd":
            raise np.linalg.LinAlgError("forced")
        return real(w, driver)

    monkeypatch.setattr(svd, "_svd_lapack", flaky)
    x, r = pi.pinv(a, return_rank=True)
    assert calls == ["bdsdc", "gesdd", "gesvd"]
    assert r == 100
    assert rel_err(x, np.linalg.pinv(a, rtol=None)) <= 200 * _eps(a.dtype) * 1e2


def test_unknown_method_lists_new_ones():
    with pytest.raises(ValueError, match="qr, randomized"):
        pi.pinv(np.eye(3), method="lu")
