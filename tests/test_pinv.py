"""pinv and pinverse on NumPy input against live references and the Penrose conditions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
from cases import DTYPES, EMPTY_SHAPES, cases, eps, penrose_residuals, with_singular_values

import pseudoinverse as pi

CASE_NAMES = [c.name for c in cases(np.float64)]


def _case(name, dtype, seed):
    return next(c for c in cases(dtype, seed) if c.name == name)


def kappa(a: np.ndarray, hermitian: bool = False) -> float:
    """Condition number of the part the default rule keeps (float64 reference SVD)."""
    wide = np.complex128 if a.dtype.kind == "c" else np.float64
    s = np.linalg.svd(a.astype(wide), compute_uv=False)
    if s.size == 0:
        return 1.0
    smax = s.max(axis=-1, keepdims=True)
    tol = max(a.shape[-2:]) * eps(a.dtype) * smax
    kept = np.where(s > tol, s, np.inf)
    return float(np.max(smax / kept.min(axis=-1, keepdims=True)))


def close(x, ref, a, *, factor=30.0) -> None:
    """Relative agreement within ``factor * max(m, n) * eps * kappa`` (NumPy's own error)."""
    k = kappa(a)
    bound = factor * max(a.shape[-2:]) * eps(a.dtype) * max(k, 1.0)
    err = np.linalg.norm(x - ref) / max(np.linalg.norm(ref), np.finfo(float).tiny)
    assert err <= bound, f"relative error {err:.3g} > bound {bound:.3g} (kappa {k:.3g})"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_matches_numpy_and_penrose(name, dtype, rng):
    seed = int(rng.integers(2**31))
    c = _case(name, dtype, seed)
    x, rank = pi.pinv(c.a, hermitian=c.hermitian, return_rank=True)
    assert x.dtype == c.a.dtype and x.shape == (*c.a.shape[:-2], *c.a.shape[:-3:-1])
    ref = np.linalg.pinv(c.a, rtol=None, hermitian=c.hermitian)
    close(x, ref, c.a)
    if c.rank is not None:
        assert np.all(np.asarray(rank) == c.rank)
    bound = 100 * max(c.a.shape[-2:]) * eps(dtype) * kappa(c.a)
    assert max(penrose_residuals(c.a, x)) <= bound


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_matches_torch(name, dtype, rng):
    c = _case(name, dtype, int(rng.integers(2**31)))
    t = torch.from_numpy(c.a)
    ref = torch.linalg.pinv(t, hermitian=c.hermitian).numpy()
    close(pi.pinv(c.a, hermitian=c.hermitian), ref, c.a)
    full_rank = c.rank is None or c.rank == min(c.a.shape[-2:])
    if not c.hermitian and full_rank:  # torch.pinverse: rcond=1e-15 relative, same data
        close(pi.pinverse(c.a), torch.pinverse(t).numpy(), c.a, factor=1e3)
        close(pi.pinverse(c.a, 0.05), torch.pinverse(t, 0.05).numpy(), c.a, factor=1e3)


def test_pinverse_any_array(rng):
    a = rng.standard_normal((3, 4, 2))
    assert isinstance(pi.pinverse(torch.from_numpy(a)), torch.Tensor)
    np.testing.assert_allclose(pi.pinverse(a.tolist()), np.linalg.pinv(a, rcond=1e-15))


@pytest.mark.parametrize("dtype", DTYPES)
def test_matches_scipy(dtype, rng):
    a = with_singular_values(rng, 8, 6, np.array([5, 2, 1, 1e-2, 1e-5, 1e-9]), dtype)
    for atol, rtol in [(0.0, 1e-3), (1e-1, 0.0), (0.0, 1e-6)]:
        # scipy thresholds at atol + rtol*smax: the same as max() when one of them is 0
        ref = scipy.linalg.pinv(a, atol=atol, rtol=rtol)
        close(pi.pinv(a, atol=atol, rtol=rtol), ref, a)
    h = (a.conj().T @ a).astype(dtype)
    # h's eigenvalues below eps * ||h|| are rounding noise, which two LAPACK builds
    # round differently: the cut must lie above it (1e-8 is below float32's eps)
    cut = 1e-8 if eps(dtype) < 1e-10 else 1e-4
    close(pi.pinv(h, hermitian=True, rtol=cut), scipy.linalg.pinvh(h, rtol=cut), h)
    close(pi.pinv(h, method="svd", hermitian=True), scipy.linalg.pinvh(h), h, factor=1e3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_decisions_at_the_threshold(dtype, rng):
    """Singular values just above and just below tol: kept and cut exactly by the rule."""
    tol = 1e-2 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-6
    s = np.array([1.0, 0.5, tol * 1.01, tol * 0.99, tol * 0.1])
    a = with_singular_values(rng, 6, 5, s, dtype)
    for kwargs in [{"atol": tol}, {"rtol": tol}, {"rcond": tol}]:
        kwargs = dict(kwargs)
        rcond = kwargs.pop("rcond", None)
        assert pi.pinv(a, rcond, return_rank=True, **kwargs).rank == 3
    assert pi.pinv(a, atol=tol, rtol=0.7, return_rank=True).rank == 1  # rtol*smax wins
    assert pi.pinv(a, atol=0.6, rtol=tol, return_rank=True).rank == 1  # atol wins
    assert pi.pinv(a, atol=0, rtol=0, return_rank=True).rank == 5


def test_default_rtol_and_atol_array_elementwise(rng):
    """rtol=None is max(m,n)*eps where atol <= 0, else 0 — per matrix for an atol array."""
    s = np.array([1.0, 1e-6, 5e-15])  # default cut: 4 * eps = 8.9e-16 (m = 4)
    a = np.stack([with_singular_values(rng, 4, 3, s, np.float64) for _ in range(3)])
    atol = np.array([0.0, 1e-14, 1e-5])
    got = pi.pinv(a, atol=atol, return_rank=True).rank
    ref = torch.linalg.matrix_rank(torch.from_numpy(a), atol=torch.from_numpy(atol))
    np.testing.assert_array_equal(got, ref.numpy())
    np.testing.assert_array_equal(got, [3, 2, 1])
    x = pi.pinv(a, atol=atol)
    t = torch.linalg.pinv(torch.from_numpy(a), atol=torch.from_numpy(atol)).numpy()
    np.testing.assert_allclose(x[1:], t[1:], rtol=1e-8, atol=0)


def test_array_tolerances_broadcast(rng):
    a = rng.standard_normal((2, 3, 4, 4))
    rtol = np.array([[0.0], [0.9]])  # (2, 1) broadcasts to the batch (2, 3)
    rank = pi.pinv(a, rtol=rtol, return_rank=True).rank
    assert rank.shape == (2, 3)
    assert np.all(rank[0] == 4) and np.all(rank[1] < 4)
    with pytest.raises(ValueError, match="batch shape"):
        pi.pinv(a, rtol=np.zeros((2, 3, 5)))
    with pytest.raises(ValueError, match="batch shape"):
        pi.pinv(a[0, 0], atol=np.zeros(2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"atol": -1.0}, "atol must be >= 0"),
        ({"rtol": float("nan")}, "rtol must not be NaN"),
        ({"rtol": 1j}, "rtol must be real"),
        ({"atol": np.array([0.1, -0.1])}, "atol must be >= 0"),
        ({"rtol": "big"}, "rtol must be a real number"),
        ({"method": "fast"}, "valid methods are auto, svd, eigh"),
        ({"method": "eigh"}, "needs hermitian=True"),
        ({"stream": "cpu"}, "stream= is for MLX"),
    ],
)
def test_bad_arguments(kwargs, match, rng):
    a = rng.standard_normal((2, 2, 2))
    before = a.copy()
    with pytest.raises(ValueError, match=match):
        pi.pinv(a, **kwargs)
    np.testing.assert_array_equal(a, before)


def test_rcond_and_rtol_together_is_type_error():
    with pytest.raises(TypeError, match="rcond"):
        pi.pinv(np.eye(2), 1e-3, rtol=1e-3)


@pytest.mark.parametrize("shape", [(), (3,), (0,)])
def test_fewer_than_two_dimensions(shape):
    with pytest.raises(
        ValueError, match=rf"got shape {shape}".replace("(", r"\(").replace(")", r"\)")
    ):
        pi.pinv(np.ones(shape))


def test_non_numeric_input():
    with pytest.raises(ValueError, match="numeric"):
        pi.pinv([["a", "b"], ["c", "d"]])
    with pytest.raises(ValueError, match="numeric"):
        pi.pinv([[1.0, 2.0], [3.0]])
    with pytest.raises(ValueError, match="hermitian=True needs square"):
        pi.pinv(np.ones((2, 3)), hermitian=True)


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_empty(shape):
    a = np.ones(shape)
    x, rank = pi.pinv(a, return_rank=True)
    assert x.shape == (*shape[:-2], shape[-1], shape[-2])
    np.testing.assert_array_equal(x, np.linalg.pinv(a))
    assert np.shape(rank) == shape[:-2] and np.all(np.asarray(rank) == 0)


def test_hermitian_reads_lower_triangle_only(rng):
    h = rng.standard_normal((3, 5, 5))
    h = h + h.swapaxes(-1, -2)
    garbage = h.copy()
    garbage[:, np.triu_indices(5, 1)[0], np.triu_indices(5, 1)[1]] = np.nan
    for method in ("auto", "eigh", "svd"):
        got = pi.pinv(garbage, hermitian=True, method=method)
        close(got, np.linalg.pinv(h, hermitian=True, rtol=None), h)
    # complex: the lower triangle defines the matrix, the imaginary diagonal is ignored
    c = rng.standard_normal((4, 4)) + 1j * rng.standard_normal((4, 4))
    full = np.tril(c) + np.tril(c, -1).conj().T
    full[np.diag_indices(4)] = full.diagonal().real
    ref = torch.linalg.pinv(torch.from_numpy(full), hermitian=True).numpy()
    for method in ("auto", "eigh", "svd"):
        close(pi.pinv(c, hermitian=True, method=method), ref, full)


def test_out(rng):
    a = rng.standard_normal((2, 4, 3))
    out = np.empty((2, 3, 4))
    res = pi.pinv(a, out=out)
    assert res is out
    close(out, np.linalg.pinv(a), a)
    for bad in (np.zeros((2, 4, 3)), np.zeros((2, 3, 4), dtype=np.float32)):
        before = bad.copy()
        with pytest.raises(ValueError, match="out must have shape"):
            pi.pinv(a, out=bad)
        np.testing.assert_array_equal(bad, before)
    with pytest.raises(ValueError, match="out must be an array of the input's library"):
        pi.pinv(a, out=torch.zeros((2, 3, 4), dtype=torch.float64))


def test_return_rank_named_tuple(rng):
    r = pi.pinv(rng.standard_normal((4, 3)), return_rank=True)
    assert isinstance(r, pi.PinvResult) and isinstance(r.rank, int) and r.rank == 3
    x, rank = pi.pinv(rng.standard_normal((2, 5, 4, 3)), return_rank=True)
    assert rank.shape == (2, 5) and np.issubdtype(rank.dtype, np.integer)
    assert x.shape == (2, 5, 3, 4)


def test_check_finite(rng):
    a = rng.standard_normal((2, 3, 4, 4))
    a[1, 2, 0, 3] = np.inf
    a[1, 0, 2, 2] = np.nan
    with pytest.raises(ValueError, match=r"batch index \(1, 0\)"):
        pi.pinv(a)
    x, rank = pi.pinv(a, check_finite=False, return_rank=True)
    assert np.isnan(x[1, 0]).all() and np.isnan(x[1, 2]).all()
    good = np.ones((2, 3), bool)
    good[1, 0] = good[1, 2] = False
    close(x[good], np.linalg.pinv(a[good]), a[good])
    assert np.all(rank[good] == 4) and np.all(rank[~good] == 0)
    with pytest.raises(ValueError, match="NaN or Inf"):
        pi.pinv(np.array([[1.0, np.nan]]))
    h = np.eye(3)
    h[0, 2] = np.nan  # upper triangle: not read, so not checked
    np.testing.assert_allclose(pi.pinv(h, hermitian=True), np.eye(3))
    h[2, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        pi.pinv(h, hermitian=True)


def test_dtypes_promotion_and_half_precision(rng):
    ints = rng.integers(-5, 5, (3, 4))
    x = pi.pinv(ints)
    assert x.dtype == np.float64
    close(x, np.linalg.pinv(ints.astype(float)), ints.astype(float))
    assert pi.pinv(np.eye(3, dtype=bool)).dtype == np.float64
    # long double: LAPACK has none; computed and returned in float64 with float64's eps
    low = (rng.standard_normal((6, 2)) @ rng.standard_normal((2, 5))).astype(np.longdouble)
    x, rank = pi.pinv(low, return_rank=True)
    assert x.dtype == np.float64 and rank == 2
    close(x, np.linalg.pinv(low.astype(np.float64), rtol=None), low.astype(np.float64))
    a16 = rng.standard_normal((3, 5, 4)).astype(np.float16)
    x16 = pi.pinv(a16)
    assert x16.dtype == np.float16
    ref = np.linalg.pinv(a16.astype(np.float32), rtol=5 * eps(np.float16))
    np.testing.assert_allclose(x16.astype(np.float32), ref, rtol=2e-3, atol=2e-3 * abs(ref).max())
    # the default rtol uses float16's eps: a value at 1e-3 * smax is cut in float16 ...
    s = np.array([1.0, 0.5, 1e-3])
    d = with_singular_values(rng, 3, 3, s, np.float64)
    assert pi.pinv(d.astype(np.float16), return_rank=True).rank == 2
    assert pi.pinv(d.astype(np.float32), return_rank=True).rank == 3  # ... not in float32


def test_input_not_modified_and_array_likes(rng):
    a = rng.standard_normal((3, 3))
    before = a.copy()
    pi.pinv(a, hermitian=True)
    pi.pinv(a, check_finite=False)
    np.testing.assert_array_equal(a, before)
    np.testing.assert_allclose(pi.pinv(a.tolist()), np.linalg.pinv(a), rtol=1e-10)
    assert isinstance(pi.pinv(((1, 2), (3, 4))), np.ndarray)


def test_gesdd_failure_falls_back_to_gesvd(monkeypatch, rng):
    """A member that gesdd cannot do is redone with gesvd; the others are untouched."""
    from pseudoinverse._methods import svd as svd_module

    a = rng.standard_normal((3, 5, 4))
    poisoned = a[1].copy()
    calls = []
    real_lapack = svd_module._svd_lapack

    def stacked(stack):
        raise np.linalg.LinAlgError("SVD did not converge")  # what NumPy raises

    def lapack(m, driver):
        calls.append(driver)
        if driver == "gesdd" and np.array_equal(m, poisoned):
            raise np.linalg.LinAlgError("gesdd did not converge")
        return real_lapack(m, driver)

    monkeypatch.setattr(svd_module, "_svd_stacked", stacked)
    monkeypatch.setattr(svd_module, "_svd_lapack", lapack)
    close(pi.pinv(a, method="svd"), np.linalg.pinv(a), a)
    assert calls == ["gesdd", "gesdd", "gesvd", "gesdd"]

    def always_fails(m, driver):
        raise np.linalg.LinAlgError("no convergence")

    monkeypatch.setattr(svd_module, "_svd_lapack", always_fails)
    with pytest.raises(np.linalg.LinAlgError, match="batch member 0 did not converge"):
        pi.pinv(a, method="svd")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape", [(200, 3, 3), (100, 6, 7), (100, 7, 6), (60, 16, 16), (30, 40, 24), (12, 64, 64)]
)
def test_auto_on_stacks_matches_numpy(shape, dtype, rng):
    """ "auto" on stacks (the compiled and certified paths): NumPy's result and rank."""
    from pseudoinverse._methods import choose

    b, m, n = shape

    def g(*sh):
        z = rng.standard_normal(sh)
        return z + 1j * rng.standard_normal(sh) if np.dtype(dtype).kind == "c" else z

    rank_one = np.stack([np.outer(g(m), g(n)) for _ in range(2)])
    a = np.concatenate([g(b - 4, m, n), rank_one, np.zeros((2, m, n))]).astype(dtype)
    assert choose("auto", False, a.shape, a.dtype) in ("jacobi", "batched")
    x, rank = pi.pinv(a, return_rank=True)
    ref = np.linalg.pinv(a, rtol=None)
    for i in range(b):
        close(x[i], ref[i], a[i], factor=100)
    assert np.all(rank[-4:-2] == 1) and np.all(rank[-2:] == 0)
    assert np.all(rank[:-4] == min(m, n)) or dtype in (np.float32, np.complex64)
    h = a[..., :m, :m] if m <= n else a[..., :n, :n]
    h = (h + np.swapaxes(h, -1, -2).conj()) / 2
    close(pi.pinv(h, hermitian=True), np.linalg.pinv(h, hermitian=True, rtol=None), h, factor=100)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_matrix_fast_path_is_the_general_path(dtype, rng, monkeypatch):
    """The default pinv of one small matrix skips validation and routing
    (``_engine.pinv_single``): its result must be the general path's, bit for bit, and
    anything it cannot take (extreme scale, NaN, other dtypes or layouts) must reach the
    general path, which scales, raises or converts as documented."""
    from pseudoinverse import _engine

    taken = []
    real = _engine.pinv_single
    monkeypatch.setattr(_engine, "pinv_single", lambda a, h: taken.append(1) or real(a, h))
    shapes = [(1, 1), (3, 3), (6, 7), (7, 6), (2, 40), (40, 2), (63, 63), (20, 30)]
    for m, n in shapes:
        for rank in sorted({0, 1, min(m, n) // 2, min(m, n)}):
            a = (rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n))).astype(dtype)
            if np.dtype(dtype).kind == "c":
                a = a + 1j * (rng.standard_normal((m, rank)) @ rng.standard_normal((rank, n)))
            a = a.astype(dtype)
            default = np.finfo(dtype).eps * max(m, n)  # the default rtol, passed: general path
            for layout in (a, np.asfortranarray(a), a[::1, ::1].T.copy().T):
                for herm in (False, True) if m == n else (False,):
                    taken.clear()
                    got = pi.pinv(layout, hermitian=herm)
                    assert taken, "the fast path was not tried"
                    res = pi.pinv(layout, rtol=default, hermitian=herm, return_rank=True)
                    assert got.dtype == res.pinv.dtype == a.dtype and got.shape == (n, m)
                    assert got.flags.c_contiguous
                    np.testing.assert_array_equal(got, res.pinv)
                    fast = pi.pinv(layout, hermitian=herm, return_rank=True)
                    assert fast.rank == res.rank and isinstance(fast.rank, int)
                    assert fast.method == res.method
                    np.testing.assert_array_equal(fast.pinv, res.pinv)
                    h = layout.astype(np.complex128)
                    if herm:  # the matrix the lower triangle defines
                        h = np.tril(h) + np.tril(h, -1).conj().T
                        h[np.diag_indices(n)] = h.diagonal().real
                    sv = np.linalg.svd(h, compute_uv=False)
                    tol = sv[0] * default
                    kept = sv[sv > tol]
                    if kept.size and sv[sv <= tol].max(initial=0) < tol / 10 < kept[-1] / 100:
                        ref = np.linalg.pinv(h, rcond=default)  # a clear gap: one rank
                        err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
                        assert err < 100 * np.finfo(dtype).eps * max(m, n) * kept[0] / kept[-1]
    # what the fast path refuses: the general path's answers and errors
    a = rng.standard_normal((4, 3)).astype(dtype)
    for scale in (2.0**300, 2.0**-300, 2.0**40, 2.0**-40):
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            big = (a * scale).astype(dtype)
        if not np.isfinite(big).all() or not big.any():
            continue
        np.testing.assert_array_equal(pi.pinv(big), pi.pinv(big, method="svd"))
        ref = np.linalg.pinv(big.astype(np.complex128 if big.dtype.kind == "c" else np.float64))
        single = np.finfo(dtype).eps > 1e-10
        np.testing.assert_allclose(pi.pinv(big), ref, rtol=1e-3 if single else 1e-9, atol=0)
    bad = a.copy()
    bad[1, 1] = np.nan
    with pytest.raises(np.linalg.LinAlgError, match=r"NaN|Inf|finite"):
        pi.pinv(bad)
    assert np.isnan(pi.pinv(bad, check_finite=False)).all()
    swapped = a.astype(a.dtype.newbyteorder(">"))
    np.testing.assert_allclose(pi.pinv(swapped), pi.pinv(a), rtol=0, atol=0)
    with pytest.raises(TypeError):
        pi.pinv(a, rcond=1e-3, rtol=1e-3)
