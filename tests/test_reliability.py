"""Regressions of issue 9's defects in the core path, each against a live reference.

Byte order, extreme scales, the ``out=``/``rcond`` errors, ``method="qr"`` refusals,
the Jacobi kernel's layouts, Dask's first bad matrix, zero-size tensors with
``requires_grad``, a matrix alone and in a stack, and NumPy's calling conventions.
"""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest
from cases import DTYPES, eps, penrose_residuals, randn

import pseudoinverse as pi

BIG_ENDIAN = [np.dtype(d).newbyteorder(">") for d in DTYPES]


@pytest.mark.parametrize("dtype", BIG_ENDIAN, ids=str)
def test_big_endian_is_its_native_dtype(dtype, rng):
    native = dtype.newbyteorder("=")
    a = randn(rng, (3, 5, 4), native)
    x = pi.pinv(a.astype(dtype))
    assert x.dtype == native
    np.testing.assert_array_equal(x, pi.pinv(a))
    # and the CLI-relevant single matrix, with its rank
    got = pi.pinv(a[0].astype(dtype), return_rank=True)
    assert got.rank == np.linalg.matrix_rank(a[0])


def test_big_endian_float64_keeps_float64_precision():
    a = np.array([[1.0, 1.0], [1.0, 1 + 1e-9]])
    expected = np.linalg.pinv(a)  # about 1e9: computed in float32 it was 3.7e7
    np.testing.assert_allclose(pi.pinv(a.astype(">f8")), expected, rtol=1e-6)
    huge = np.diag([1e300, 1.0])
    np.testing.assert_array_equal(pi.pinv(huge.astype(">f8")), np.linalg.pinv(huge))


def test_big_endian_out_and_dask(rng):
    a = randn(rng, (4, 3), np.float64)
    out = np.empty((3, 4), dtype=">f8")
    assert pi.pinv(a, out=out) is out
    np.testing.assert_allclose(out, np.linalg.pinv(a), atol=1e-14)
    da = pytest.importorskip("dask.array")
    x = pi.pinv(da.from_array(a.astype(">f8")[None], chunks=(1, 4, 3))).compute()
    np.testing.assert_allclose(x[0], np.linalg.pinv(a), atol=1e-14)


def _reference(a: np.ndarray, **tols) -> np.ndarray:
    """NumPy's pinv of the matrix scaled to unit size by a power of two (exact)."""
    s = 2.0 ** -np.frexp(np.abs(a).max())[1]
    return np.linalg.pinv(a * s, **tols) * s


@pytest.mark.parametrize(
    "shape, scale",
    [
        ((64, 65), 1e153),
        ((65, 64), 1e200),
        ((64, 64), 1e200),
        ((70, 64), 1e-200),
        ((64, 64), 1e-300),
        ((3, 3), 1e300),
        ((5, 2), 1e-306),
    ],
)
@pytest.mark.parametrize("method", ["auto", "svd", "qr"])
def test_extreme_scales(shape, scale, method, rng):
    a = rng.standard_normal(shape) * scale
    x = pi.pinv(a, method=method)
    ref = _reference(a, rtol=max(shape) * eps(np.float64))
    np.testing.assert_allclose(x, ref, rtol=1e-9, atol=1e-9 * np.abs(ref).max())
    s = 2.0 ** -np.frexp(np.abs(a).max())[1]  # residuals of unit-sized copies (exact)
    assert max(penrose_residuals(a * s, x / s)) < 1e-10


@pytest.mark.parametrize("scale", [1e-300, 1e-150, 1e150, 1e300])
def test_extreme_scales_stacks_and_atol(scale, rng):
    a = randn(rng, (40, 5, 4), np.complex128) * scale
    a[3] *= 1e-20  # far below the others: a different scale per member
    x, rank = pi.pinv(a, atol=scale * 1e-3, return_rank=True)
    s = np.linalg.svd(a / scale, compute_uv=False)
    np.testing.assert_array_equal(rank, (s > 1e-3).sum(-1))
    keep = rank == 4
    ref = np.linalg.pinv(a[keep] / scale) / scale
    np.testing.assert_allclose(x[keep], ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_qr_accepts_well_conditioned_full_rank(rng):
    # a third of random 1x1 complex values were refused by the accuracy gate
    for dtype in (np.complex64, np.complex128, np.float32, np.float64):
        for _ in range(200):
            a = randn(rng, (1, 1), dtype)
            np.testing.assert_allclose(pi.pinv(a, method="qr"), 1 / a, rtol=10 * eps(dtype))
    for scale in (1e-200, 1e-146, 1e146, 1e200):
        a = np.eye(3) * scale + np.diag([0.1, 0.2], 1) * scale
        ref = _reference(a)
        np.testing.assert_allclose(pi.pinv(a, method="qr"), ref, atol=1e-14 * np.abs(ref).max())


def test_qr_refusal_names_the_reason():
    with pytest.raises(ValueError, match=r'method="qr".*full rank 2.*"svd"'):
        pi.pinv(np.ones((3, 2)), method="qr")


@pytest.mark.parametrize("n", [3, 21, 24, 30])
@pytest.mark.parametrize("dtype", DTYPES)
def test_jacobi_hermitian_any_size(n, dtype, rng):
    a = randn(rng, (40, n, n), dtype)
    a = a + np.conj(np.swapaxes(a, -1, -2))
    x = pi.pinv(a, hermitian=True, method="jacobi")
    ref = np.linalg.pinv(a.astype(np.complex128), hermitian=True)
    kappa = np.linalg.cond(a.astype(np.complex128))
    err = np.abs(x - ref).max(axis=(-2, -1)) / np.abs(ref).max(axis=(-2, -1))
    assert np.all(err <= 50 * n * eps(dtype) * kappa)


@pytest.mark.parametrize("method", ["svd", "eigh", "jacobi", "batched", "qr", "randomized"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_same_result_alone_and_in_any_stack(method, dtype, rng):
    hermitian = method == "eigh"
    for m, n in [(3, 3), (6, 7), (9, 4), (12, 12), (20, 30), (70, 66)]:
        if hermitian and m != n:
            continue
        for b in (2, 7, 40):
            a = randn(rng, (b, m, n), dtype)
            if hermitian:
                a = a + np.conj(np.swapaxes(a, -1, -2))
            stack = pi.pinv(a, method=method, hermitian=hermitian)
            for i in range(b):
                alone = pi.pinv(a[i], method=method, hermitian=hermitian)
                np.testing.assert_array_equal(alone, stack[i], err_msg=f"{m}x{n} in {b}")


def test_out_of_the_wrong_kind_names_out(rng):
    a = randn(rng, (2, 2), np.float64)
    with pytest.raises(TypeError, match="out must be an array"):
        pi.pinv(a, out=[[0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(TypeError, match="out must be an array"):
        pi.pinv(a, out=3.0)
    ro = np.empty((2, 2))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        pi.pinv(a, out=ro)


@pytest.mark.parametrize("value", [-1.0, float("nan"), 1j])
def test_bad_rcond_is_named_rcond(value, rng):
    a = randn(rng, (2, 2), np.float64)
    with pytest.raises(ValueError, match="rcond") as info:
        pi.pinv(a, value)
    assert "rtol" not in str(info.value)
    with pytest.raises(ValueError, match="rtol"):
        pi.pinv(a, rtol=value)


def test_dask_names_the_first_bad_matrix(rng):
    da = pytest.importorskip("dask.array")
    a = randn(rng, (6, 3, 3), np.float64)
    a[0, 0, 0], a[4, 1, 1] = np.nan, np.inf
    lazy = pi.pinv(da.from_array(a, chunks=(1, 3, 3)))
    for _ in range(5):  # whichever block the scheduler runs first
        with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(0,\)"):
            lazy.compute(scheduler="threads")
    b = a.reshape(2, 3, 3, 3)
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(0, 0\)"):
        pi.pinv(da.from_array(b, chunks=(1, 1, 3, 3))).compute()


@pytest.mark.parametrize("shape", [(2, 0, 3), (0, 3, 2), (3, 0), (0, 0)])
@pytest.mark.parametrize("fn", ["pinv", "pinverse"])
def test_zero_size_tensor_with_grad(shape, fn):
    torch = pytest.importorskip("torch")
    a = torch.empty(shape, dtype=torch.float64, requires_grad=True)
    x = getattr(pi, fn)(a)
    ref = torch.linalg.pinv(a)
    assert x.shape == ref.shape and x.dtype == ref.dtype and x.grad_fn is not None
    x.sum().backward()
    assert a.grad is not None and a.grad.shape == a.shape


def test_numpy_signature_and_matrix(rng):
    a = randn(rng, (4, 4), np.float64)
    h = a + a.T
    np.testing.assert_allclose(pi.pinv(h, 1e-15, True), np.linalg.pinv(h, 1e-15, True))
    np.testing.assert_allclose(pi.pinv(a, None, False), np.linalg.pinv(a))
    m = np.asmatrix(a[:, :3])
    x = pi.pinv(m)
    ref = np.linalg.pinv(m)
    assert type(x) is type(ref) is np.matrix
    np.testing.assert_allclose(x, ref)
    with pytest.raises(TypeError, match="hermitian"):
        pi.pinv(a, None, "yes")


def test_non_finite_raises_linalg_error(rng):
    a = randn(rng, (3, 2, 2), np.float64)
    a[1, 0, 0] = np.inf
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(1,\)"):
        pi.pinv(a)
    with pytest.raises(ValueError):  # LinAlgError is a ValueError: old callers still catch it
        pi.pinv(a)


def test_method_that_ran_is_reported(rng, caplog):
    cases = [
        ((1000, 3, 3), False, "jacobi"),
        ((4, 20, 20), False, "batched"),
        ((8, 8), False, "svd"),
        ((8, 8), True, "eigh"),
        ((100, 80), False, "direct_or_svd"),
    ]
    for shape, hermitian, expected in cases:
        a = randn(rng, shape, np.float64)
        if hermitian:
            a = a + a.T
        with caplog.at_level(logging.DEBUG, logger="pseudoinverse"):
            got = pi.pinv(a, hermitian=hermitian, return_rank=True)
        assert got.method == expected
        x, rank = got  # still a pair
        assert x is got.pinv and rank is got.rank
        assert pickle.loads(pickle.dumps(got)).method == expected
    assert any("'jacobi'" in r.getMessage() for r in caplog.records)
    assert pi.pinv(np.eye(2), method="qr", return_rank=True).method == "qr"


@pytest.mark.parametrize("method", ["qr", "batched", "jacobi", "svd", "randomized"])
def test_nan_members_never_reach_a_method(method, rng):
    # check_finite=False: the bad member is NaN, the others computed; "qr" refused the
    # zeroed member as rank-deficient
    a = randn(rng, (3, 2, 4), np.float64)
    a[1, 0, 0] = np.nan
    x, rank = pi.pinv(a, method=method, check_finite=False, return_rank=True)
    assert np.isnan(x[1]).all() and rank[1] == 0
    np.testing.assert_allclose(x[[0, 2]], np.linalg.pinv(a[[0, 2]]), atol=1e-12)
    assert np.isnan(pi.pinv(a[1], method=method, check_finite=False)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.complex64])
def test_qr_small_scale_single_precision(dtype):
    # the Gram test's inverse iteration overflowed in float32 (a RuntimeWarning: an error)
    a = (np.array([[1.0, 2.0, -0.5, 0.3]]) * 1e-10).astype(dtype)
    ref = np.linalg.pinv(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64))
    np.testing.assert_allclose(pi.pinv(a, method="qr"), ref, rtol=1e-5)
    np.testing.assert_allclose(pi.pinv(a.T, method="qr"), ref.T, rtol=1e-5)


def test_nan_members_with_qr_on_mlx(rng):
    # the MLX adapter handed the engine a zeroed bad member, which "qr" refused
    mx = pytest.importorskip("mlx.core")
    a = randn(rng, (3, 2, 4), np.float32)
    a[1, 0, 0] = np.nan
    x, rank = pi.pinv(mx.array(a), method="qr", check_finite=False, return_rank=True)
    x = np.array(x)
    assert np.isnan(x[1]).all() and rank.tolist() == [2, 0, 2]
    np.testing.assert_allclose(x[[0, 2]], np.linalg.pinv(a[[0, 2]]), rtol=1e-4, atol=1e-5)
    assert np.isnan(np.array(pi.pinv(mx.array(a[1]), method="qr", check_finite=False))).all()
    # a tolerance under which "qr" refuses even the identity (the earlier stand-in)
    got = pi.pinv(mx.array(a[1]), method="qr", rtol=0.5, check_finite=False)
    assert np.isnan(np.array(got)).all()


def test_portable_path_scales_extreme_matrices():
    # torch with grad (the portable core): a subnormal member gave NaN (the SVD failed)
    torch = pytest.importorskip("torch")
    a = np.zeros((3, 3, 5), np.complex64)
    a[0] = np.random.default_rng(0).standard_normal((3, 5))
    a[1, 0, 0], a[1, 1, 1] = 3.4e30, 3
    a[2, 0, 0], a[2, 1, 1] = 1, 1.87e-40
    t = torch.from_numpy(a).requires_grad_()
    x = pi.pinv(t)
    ref = pi.pinv(a)  # the NumPy path, checked against NumPy in the scale tests
    np.testing.assert_allclose(x.detach().numpy(), ref, rtol=1e-5, atol=1e-6)
    x.abs().sum().backward()
    assert torch.isfinite(t.grad).all()
    for scale in (1e-300, 1e300):
        e = torch.eye(3, dtype=torch.float64, requires_grad=True) * scale
        np.testing.assert_allclose(pi.pinv(e).detach().numpy(), np.eye(3) / scale, rtol=1e-15)


def test_scaling_ignores_the_unread_triangle():
    # an Inf in the unread upper triangle of a tiny complex Hermitian stack: the scaling
    # multiplied it as a complex number (Inf * 0 = NaN, a RuntimeWarning)
    h = np.array([[2.0, 0.0], [1.0, 3.0]]) * 1e-30
    a = np.stack([h, h]).astype(np.complex64)
    a[0, 0, 1] = np.inf
    x = pi.pinv(a, hermitian=True, check_finite=False)
    full = np.array([[2.0, 1.0], [1.0, 3.0]]) * 1e-30
    np.testing.assert_allclose(x, np.stack([np.linalg.pinv(full)] * 2), rtol=1e-5)
    big = np.array([[2.0, 1e300], [1.0, 3.0]])  # finite garbage above: not the scale
    np.testing.assert_allclose(pi.pinv(big, hermitian=True), np.linalg.pinv(big, hermitian=True))
