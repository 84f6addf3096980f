"""MLX arrays in and out, ``stream=``, float64 accuracy, complex, and MLX autodiff."""

from __future__ import annotations

import numpy as np
import pytest

mx = pytest.importorskip("mlx.core")

import pseudoinverse as pi  # noqa: E402

MX = {np.float32: mx.float32, np.float64: mx.float64, np.complex64: mx.complex64}


def randn(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


def to_mx(a):
    return mx.array(a, dtype=MX[a.dtype.type])


def tol(dtype) -> float:
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


@pytest.mark.parametrize("shape", [(3, 3), (5, 3), (3, 5), (2, 4, 3), (2, 2, 3, 4)])
def test_matches_mlx_pinv_with_its_threshold(shape):
    a = randn(shape, np.float32, seed=sum(shape))
    rtol = 10 * max(shape[-2:]) * float(mx.finfo(mx.float32).eps)  # MLX's fixed cutoff
    x = pi.pinv(to_mx(a), rtol=rtol, stream=mx.cpu)
    assert isinstance(x, mx.array) and x.dtype == mx.float32
    ref = mx.linalg.pinv(to_mx(a), stream=mx.cpu)
    np.testing.assert_allclose(np.array(x), np.array(ref), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.array(to_mx(a) @ x @ to_mx(a)), a, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64])
def test_dtypes_kept_and_rank_deficient(dtype):
    rng_b, rng_c = randn((3, 6, 2), dtype, 1), randn((3, 4, 2), dtype, 2)
    a = rng_b @ rng_c.conj().transpose(0, 2, 1)
    rtol = 1e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-8
    x, rank = pi.pinv(to_mx(a), rtol=rtol, return_rank=True)
    assert x.dtype == MX[dtype] and isinstance(rank, mx.array) and rank.tolist() == [2, 2, 2]
    ref = np.linalg.pinv(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), rtol=rtol)
    np.testing.assert_allclose(np.array(x), ref, rtol=tol(dtype), atol=tol(dtype))


def test_float64_is_float64_accurate():
    """Known exact inverse, condition 1e8: the error is float64's (kappa * eps64 ~ 1e-8),
    not float32's (kappa * eps32 ~ 10: garbage), and no worse than LAPACK's via NumPy
    or MLX's own float64 pinv."""
    rng = np.random.default_rng(3)
    u, _ = np.linalg.qr(rng.standard_normal((8, 8)))
    v, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    s = np.logspace(0, -8, 6)
    a, exact = (u[:, :6] * s) @ v.T, (v / s) @ u[:, :6].T

    def err(x):
        return np.linalg.norm(np.array(x) - exact) / np.linalg.norm(exact)

    ours = err(pi.pinv(mx.array(a, dtype=mx.float64), stream=mx.cpu))
    assert ours < 100 * 1e8 * np.finfo(np.float64).eps
    assert ours <= 2 * err(np.linalg.pinv(a)) + 1e-15
    assert ours <= 2 * err(mx.linalg.pinv(mx.array(a, dtype=mx.float64), stream=mx.cpu))
    assert err(mx.linalg.pinv(mx.array(a, dtype=mx.float32), stream=mx.cpu)) > 1e3 * ours


def test_complex_which_mlx_rejects():
    a = randn((4, 3), np.complex64, seed=4)
    with pytest.raises(ValueError):
        mx.linalg.pinv(to_mx(a), stream=mx.cpu)
    x = pi.pinv(to_mx(a))
    assert x.dtype == mx.complex64
    np.testing.assert_allclose(np.array(x), np.linalg.pinv(a), rtol=1e-5, atol=1e-5)


def test_half_precision_and_integers():
    a = randn((4, 3), np.float32, seed=5)
    for half in (mx.float16, mx.bfloat16):
        x = pi.pinv(mx.array(a).astype(half))
        assert x.dtype == half
        np.testing.assert_allclose(
            np.array(x.astype(mx.float32)), np.linalg.pinv(a), rtol=0.05, atol=0.05
        )
    assert pi.pinv(mx.array([[1, 2], [3, 4]])).dtype == mx.float32  # MLX's default float
    assert pi.pinv(mx.array([[True, False], [False, True]])).dtype == mx.float32
    d = mx.array([[1.0, 0.0], [0.0, 1e-3]])  # kept with float32's eps, cut with theirs
    assert pi.pinv(d, return_rank=True).rank == 2
    assert pi.pinv(d.astype(mx.bfloat16), return_rank=True).rank == 1
    assert pi.pinv(d.astype(mx.float16), return_rank=True).rank == 1


@pytest.mark.parametrize(
    "stream", [None, mx.cpu, mx.gpu, mx.default_stream(mx.cpu)], ids=["none", "cpu", "gpu", "obj"]
)
def test_streams(stream):
    a = randn((2, 5, 3), np.float32, seed=6)
    x = pi.pinv(mx.array(a), stream=stream)  # a GPU stream must not fail (CPU SVD)
    np.testing.assert_allclose(np.array(x), np.linalg.pinv(a), rtol=1e-4, atol=1e-4)
    g = mx.grad(lambda t: pi.pinv(t, stream=stream).sum())(mx.array(a))
    assert g.shape == a.shape


def test_out_check_finite_empty():
    a = randn((2, 3, 4), np.float32, seed=7)
    out = mx.zeros((2, 4, 3))
    assert pi.pinv(mx.array(a), out=out) is out
    np.testing.assert_allclose(np.array(out), np.linalg.pinv(a), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="shape"):
        pi.pinv(mx.array(a), out=mx.zeros((2, 3, 4)))
    bad = a.copy()
    bad[1, 0, 0] = np.nan
    with pytest.raises(ValueError, match=r"batch index \(1,\)"):
        pi.pinv(mx.array(bad))
    x = np.array(pi.pinv(mx.array(bad), check_finite=False))
    assert np.isnan(x[1]).all() and np.isfinite(x[0]).all()
    upper = np.eye(3, dtype=np.float32)
    upper[0, 2] = np.inf  # unread by hermitian=True
    np.testing.assert_array_equal(np.array(pi.pinv(mx.array(upper), hermitian=True)), np.eye(3))
    assert pi.pinv(mx.zeros((2, 0, 3))).shape == (2, 3, 0)
    with pytest.raises(ValueError, match="stream"):
        pi.pinv(np.eye(2), stream=mx.cpu)


# --------------------------------------------------------------- derivatives


def _fd(f, a, d, h=1e-6):
    return (np.array(f(a + h * d)) - np.array(f(a - h * d))) / (2 * h)


@pytest.mark.parametrize(
    ("name", "a", "atol"),
    [
        ("tall", randn((5, 3), seed=8), None),
        ("wide-batched", randn((2, 3, 5), seed=9), None),
        ("rank2", randn((5, 2), seed=10) @ randn((2, 4), seed=11), 1e-4),
        ("identity", np.eye(4), None),
        ("orthogonal", np.linalg.qr(randn((4, 4), seed=12))[0], None),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_jvp_vjp_grad_against_finite_differences(name, a, atol):
    """float64 MLX: mx.jvp equals central differences, mx.vjp is its adjoint, mx.grad
    is finite (where autodiff through an SVD has repeated singular values)."""
    A = mx.array(a, dtype=mx.float64)
    d = mx.array(randn(a.shape, seed=13), dtype=mx.float64)
    w = mx.array(randn(a.shape[:-2] + a.shape[-2:][::-1], seed=14), dtype=mx.float64)

    def f(t):
        return pi.pinv(t, atol=atol)

    _, (tangent,) = mx.jvp(f, [A], [d])
    np.testing.assert_allclose(np.array(tangent), _fd(f, A, d), rtol=1e-6, atol=1e-7)
    _, (cot,) = mx.vjp(f, [A], [w])
    assert np.isclose(float((cot * d).sum()), float((w * tangent).sum()), rtol=1e-10)
    g = mx.grad(lambda t: (f(t) * w).sum())(A)
    np.testing.assert_allclose(np.array(g), np.array(cot), rtol=1e-12, atol=1e-12)


def test_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    a = randn((2, 4, 3), seed=15)
    # (a polynomial loss: MLX's float64 sin is only float32-accurate)
    g = mx.grad(lambda t: (pi.pinv(t) ** 3).sum())(mx.array(a, dtype=mx.float64))
    t = torch.tensor(a, requires_grad=True)
    (torch.linalg.pinv(t) ** 3).sum().backward()
    np.testing.assert_allclose(np.array(g), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_complex_gradient_matches_torch():
    torch = pytest.importorskip("torch")
    a = randn((3, 4), np.complex64, seed=16)
    w = randn((4, 3), np.complex64, seed=17)
    _, (cot,) = mx.vjp(pi.pinv, [mx.array(a)], [mx.array(w)])
    t = torch.tensor(a, requires_grad=True)
    (ref,) = torch.autograd.grad(torch.linalg.pinv(t), t, torch.tensor(w))
    np.testing.assert_allclose(np.array(cot), ref.numpy(), rtol=1e-3, atol=1e-4)


def test_hermitian_gradient_on_read_triangle():
    raw = mx.array(randn((4, 4), seed=18), dtype=mx.float64)
    w = mx.array(randn((4, 4), seed=19), dtype=mx.float64)
    g = np.array(mx.grad(lambda t: (pi.pinv(t, hermitian=True) * w).sum())(raw))
    assert np.count_nonzero(np.triu(g, 1)) == 0
    d = mx.array(randn((4, 4), seed=20), dtype=mx.float64)
    fd = _fd(lambda t: (pi.pinv(t, hermitian=True) * w).sum(), raw, d)
    assert np.isclose(float((mx.array(g) * d).sum()), float(fd), rtol=1e-6)


def test_vmap_and_compile():
    a = randn((3, 5, 4), seed=21)
    A = mx.array(a, dtype=mx.float64)
    ref = np.linalg.pinv(a)
    np.testing.assert_allclose(np.array(mx.vmap(pi.pinv)(A)), ref, atol=1e-12)
    per_example = mx.vmap(mx.grad(lambda t: pi.pinv(t).sum()))(A)
    np.testing.assert_allclose(
        np.array(per_example), np.array(mx.grad(lambda t: pi.pinv(t).sum())(A)), atol=1e-12
    )
    np.testing.assert_allclose(np.array(mx.compile(pi.pinv)(A)), ref, atol=1e-12)
    herm = mx.compile(lambda t: pi.pinv(t, hermitian=True))(A[:, :4])
    np.testing.assert_allclose(
        np.array(herm), np.array(pi.pinv(A[:, :4], hermitian=True)), atol=1e-10
    )


def test_mlx_own_pinv_cannot_be_differentiated():
    """The reason for the custom function: MLX's SVD has no vjp."""
    a = mx.array(randn((4, 3), np.float32, seed=22))
    with pytest.raises((ValueError, RuntimeError)):
        mx.grad(lambda t: mx.linalg.pinv(t, stream=mx.cpu).sum())(a)
    assert np.isfinite(np.array(mx.grad(lambda t: pi.pinv(t).sum())(a))).all()


# ------------------------------------------------- non-finite members, empty input


def hermitian_stack(n=3, batch=4, seed=30):
    """Complex64 Hermitian, well-conditioned, full rank (positive definite)."""
    b = randn((batch, n, n), np.complex128, seed)
    return (b @ b.conj().swapaxes(-1, -2) + n * np.eye(n)).astype(np.complex64)


def test_hermitian_nan_imaginary_diagonal_makes_the_member_bad():
    """A NaN in the imaginary part of a diagonal entry is a NaN where the matrix is read:
    that member's result is NaN (rank 0), as on the NumPy path, eagerly, under mx.grad,
    mx.vmap and mx.compile; with check_finite=True it raises, as NumPy's path does."""
    h = hermitian_stack()
    bad = h.copy()
    bad[1, 0, 0] = complex(1, np.nan)
    np_x, np_rank = pi.pinv(bad, hermitian=True, check_finite=False, return_rank=True)
    assert np.isnan(np_x[1]).all() and np_rank.tolist() == [3, 0, 3, 3]
    good = [0, 2, 3]
    ref = np.linalg.pinv(h[good], hermitian=True)

    def f(t):
        return pi.pinv(t, hermitian=True, check_finite=False)

    x, rank = pi.pinv(mx.array(bad), hermitian=True, check_finite=False, return_rank=True)
    assert rank.tolist() == [3, 0, 3, 3]
    for got in (x, mx.vmap(f)(mx.array(bad)), mx.compile(f)(mx.array(bad))):
        got = np.array(got)
        assert np.isnan(got[1]).all()
        np.testing.assert_allclose(got[good], ref, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got, np_x, rtol=1e-5, atol=1e-5)
    one = mx.array(np.array([[complex(1, np.nan)]], dtype=np.complex64))
    assert np.isnan(np.array(f(one))).all()
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(1,\)"):
        pi.pinv(mx.array(bad), hermitian=True)
    # mx.grad (of a real float64 stack, NaN in member 1) is finite, that of the good ones
    real = np.real(bad).astype(np.float64)
    real[1, 1, 0] = np.nan
    w = mx.array(randn((3, 3, 3), seed=31), dtype=mx.float64)
    pick = mx.array(good)
    g = np.array(mx.grad(lambda t: (f(t)[pick] * w).sum())(mx.array(real, dtype=mx.float64)))
    assert np.isfinite(g).all() and not g[1].any()
    g_good = mx.grad(lambda t: (f(t) * w).sum())(mx.array(real[good], dtype=mx.float64))
    np.testing.assert_allclose(g[good], np.array(g_good), atol=1e-12)


@pytest.mark.parametrize("hermitian", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_finite_false_matches_numpy_path(hermitian, dtype):
    """NaN in member 0 and Inf in member 3: NaN results and rank 0 exactly there, the
    others equal the live references and the NumPy path; the same error when raising."""
    a = np.real(hermitian_stack(batch=5, seed=32)).astype(dtype)
    a[0, 2, 1] = np.nan
    a[3, 1, 1] = np.inf
    np_x, np_rank = pi.pinv(a, hermitian=hermitian, check_finite=False, return_rank=True)
    assert np_rank.tolist() == [0, 3, 3, 0, 3]
    x, rank = pi.pinv(to_mx(a), hermitian=hermitian, check_finite=False, return_rank=True)
    assert rank.tolist() == np_rank.tolist()
    x = np.array(x)
    good = [1, 2, 4]
    assert np.isnan(x[[0, 3]]).all()
    np.testing.assert_allclose(x, np_x, rtol=tol(dtype), atol=tol(dtype))
    ref = np.linalg.pinv(a[good], hermitian=hermitian)
    np.testing.assert_allclose(x[good], ref, rtol=tol(dtype), atol=tol(dtype))
    if dtype == np.float32 and not hermitian:  # MLX's own: float32, general matrices
        own = np.array(mx.linalg.pinv(to_mx(a[good]), stream=mx.cpu))
        np.testing.assert_allclose(x[good], own, rtol=1e-4, atol=1e-4)
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(0,\)") as np_err:
        pi.pinv(a, hermitian=hermitian)
    with pytest.raises(np.linalg.LinAlgError) as err:
        pi.pinv(to_mx(a), hermitian=hermitian)
    assert str(err.value) == str(np_err.value)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (2, 0, 3), (0, 3, 3), (2, 3, 0)])
@pytest.mark.parametrize("dtype", [mx.float32, mx.complex64, mx.int32])
def test_empty_matches_numpy_path(shape, dtype):
    a = mx.zeros(shape, dtype=dtype)
    np_x, np_rank = pi.pinv(np.array(a), return_rank=True, check_finite=False)
    x, rank = pi.pinv(a, return_rank=True, check_finite=False)
    assert tuple(x.shape) == np_x.shape
    assert x.dtype == (mx.float32 if dtype == mx.int32 else dtype)  # MLX's default float
    assert np.shape(rank) == np.shape(np_rank) and np.all(np.array(rank) == np_rank)
    if dtype == mx.float32 and min(shape[-2:]) > 0:  # MLX's own refuses empty matrices
        assert mx.linalg.pinv(a, stream=mx.cpu).shape == x.shape
