"""JAX arrays in and out, against jnp.linalg.pinv, under jit/vmap/grad/jvp/jacfwd/jacrev."""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)  # float64 tests; float32 is asked for explicitly

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import pseudoinverse as pi  # noqa: E402

DTYPES = (jnp.float32, jnp.float64, jnp.complex64, jnp.complex128)
SHAPES = ((3, 3), (5, 3), (2, 3, 4), (2, 2, 4, 3))


def randn(shape, dtype=jnp.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return jnp.asarray(x, dtype=dtype)


def low_rank(m, n, r, dtype=jnp.float64, batch=(), seed=0):
    b = randn((*batch, m, r), dtype, seed)
    c = randn((*batch, n, r), dtype, seed + 1)
    return b @ jnp.conj(jnp.swapaxes(c, -1, -2))


def tol(dtype) -> float:
    return 1e-4 if dtype in (jnp.float32, jnp.complex64) else 1e-10


def jax_rtol(a) -> float:
    """jnp.linalg.pinv's default rtol: 10 * max(m, n) * eps."""
    return 10 * max(a.shape[-2:]) * float(jnp.finfo(a.dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_jnp_pinv(shape, dtype):
    a = randn(shape, dtype, seed=sum(shape))
    x = pi.pinv(a, rtol=jax_rtol(a))
    assert isinstance(x, jax.Array) and x.dtype == dtype
    ref = jnp.linalg.pinv(a, rtol=jax_rtol(a))
    np.testing.assert_allclose(x, ref, rtol=tol(dtype), atol=tol(dtype))


def test_rank_deficient_and_hermitian():
    a = low_rank(6, 4, 2, batch=(3,))
    x, rank = pi.pinv(a, rtol=1e-8, return_rank=True)
    np.testing.assert_allclose(x, jnp.linalg.pinv(a, rtol=1e-8), atol=1e-10)
    assert rank.tolist() == [2, 2, 2] and isinstance(rank, jax.Array)
    h = randn((4, 4), jnp.complex128, seed=1)
    h = (h + jnp.conj(h.T)) / 2
    raw = jnp.tril(h) + jnp.triu(randn((4, 4), jnp.complex128, seed=2), 1)  # junk above
    ref = jnp.linalg.pinv(h, hermitian=True)
    np.testing.assert_allclose(pi.pinv(raw, hermitian=True), ref, atol=1e-10)


def test_dtypes():
    a = randn((4, 3), jnp.float32)
    assert pi.pinv(a.astype(jnp.bfloat16)).dtype == jnp.bfloat16
    assert pi.pinv(a.astype(jnp.float16)).dtype == jnp.float16
    assert pi.pinv(jnp.ones((2, 3), dtype=jnp.int32)).dtype == jnp.float64  # x64 default
    d = jnp.diag(jnp.asarray([1.0, 1e-3], dtype=jnp.float32))
    assert pi.pinv(d, return_rank=True).rank == 2
    assert pi.pinv(d.astype(jnp.bfloat16), return_rank=True).rank == 1  # bfloat16's eps


def test_check_finite_eager_and_traced():
    a = randn((3, 3, 3)).at[2, 1, 0].set(jnp.nan)
    with pytest.raises(ValueError, match=r"batch index \(2,\)"):
        pi.pinv(a)
    # Traced values cannot be inspected: NaN in, NaN out (the check_finite=False result).
    for x in (jax.jit(pi.pinv)(a), jax.vmap(pi.pinv)(a), pi.pinv(a, check_finite=False)):
        assert jnp.isnan(x[2]).all() and jnp.isfinite(x[:2]).all()
    upper_inf = randn((3, 3)).at[0, 2].set(jnp.inf)
    assert jnp.isfinite(pi.pinv(upper_inf, hermitian=True)).all()


def test_transformations_agree_with_jnp():
    a = randn((3, 4, 3), seed=3)
    np.testing.assert_allclose(jax.vmap(pi.pinv)(a), jnp.linalg.pinv(a), atol=1e-12)
    np.testing.assert_allclose(jax.jit(pi.pinv)(a), jnp.linalg.pinv(a), atol=1e-12)

    def loss(f):
        return lambda t: jnp.sum(jnp.sin(f(t)))

    g = jax.grad(loss(pi.pinv))(a)
    np.testing.assert_allclose(g, jax.grad(loss(jnp.linalg.pinv))(a), atol=1e-10)
    np.testing.assert_allclose(jax.jit(jax.grad(loss(pi.pinv)))(a), g, atol=1e-12)
    np.testing.assert_allclose(jax.vmap(jax.grad(loss(pi.pinv)))(a), g, atol=1e-12)
    jf = jax.jacfwd(pi.pinv)(a[0])
    np.testing.assert_allclose(jf, jax.jacrev(pi.pinv)(a[0]), atol=1e-12)
    np.testing.assert_allclose(jf, jax.jacfwd(jnp.linalg.pinv)(a[0]), atol=1e-10)
    d = randn((4, 3), seed=4)
    _, tangent = jax.jvp(pi.pinv, (a[0],), (d,))
    _, ref = jax.jvp(jnp.linalg.pinv, (a[0],), (d,))
    np.testing.assert_allclose(tangent, ref, atol=1e-10)
    hess = jax.hessian(lambda t: jnp.sum(pi.pinv(t) ** 2))(a[0])
    ref = jax.hessian(lambda t: jnp.sum(jnp.linalg.pinv(t) ** 2))(a[0])
    np.testing.assert_allclose(hess, ref, atol=1e-8)


@pytest.fixture
def eager():
    """check_grads transforms in many combinations; compiling each costs more than the
    check (the rule is the same with and without jit, which other tests cover)."""
    with jax.disable_jit():
        yield


def _grad_inputs():
    q, _ = jnp.linalg.qr(randn((4, 4), seed=5))
    yield "tall", randn((5, 3), seed=6), None
    yield "wide-batched", randn((2, 3, 5), seed=7), None
    yield "complex", randn((4, 3), jnp.complex128, seed=8), None
    yield "rank2", low_rank(5, 4, 2, seed=9), 1e-4
    yield "rank1-complex-wide", low_rank(3, 5, 1, jnp.complex128, seed=10), 1e-4
    yield "identity", jnp.eye(4), None
    yield "orthogonal", q, None


GRAD_INPUTS = list(_grad_inputs())


@pytest.mark.parametrize(("name", "a", "atol"), GRAD_INPUTS, ids=[g[0] for g in GRAD_INPUTS])
def test_check_grads_second_order(name, a, atol, eager):
    check_grads(lambda t: pi.pinv(t, atol=atol), (a,), order=2, modes=("fwd", "rev"), eps=1e-6)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex128])
def test_hermitian_gradient_on_read_triangle(dtype, eager):
    raw = randn((4, 4), dtype, seed=11)

    def f(t):
        return pi.pinv(t, hermitian=True)

    check_grads(f, (raw,), order=2, modes=("fwd", "rev"))
    g = jax.grad(lambda t: jnp.sum(jnp.real(f(t))))(raw)
    assert int(jnp.count_nonzero(jnp.triu(g, 1))) == 0


def test_svd_autodiff_nan_regression():
    q, _ = jnp.linalg.qr(randn((4, 4), seed=12))

    def by_svd(t):
        u, s, vh = jnp.linalg.svd(t, full_matrices=False)
        return (jnp.conj(vh.T) / s) @ jnp.conj(u.T)

    w = randn((4, 4), seed=13)
    for a in (jnp.eye(4), q):
        assert not jnp.isfinite(jax.grad(lambda t: jnp.sum(by_svd(t) * w))(a)).all()
        g = jax.grad(lambda t: jnp.sum(pi.pinv(t) * w))(a)
        assert jnp.isfinite(g).all()
        d, h = randn((4, 4), seed=14), 1e-6
        fd = jnp.sum((pi.pinv(a + h * d) - pi.pinv(a - h * d)) * w) / (2 * h)
        np.testing.assert_allclose(jnp.sum(g * d), fd, rtol=1e-6)


def test_float32_gradients():
    a = randn((4, 3), jnp.float32, seed=15)
    g = jax.grad(lambda t: jnp.sum(pi.pinv(t)))(a)
    assert g.dtype == jnp.float32
    np.testing.assert_allclose(g, jax.grad(lambda t: jnp.sum(jnp.linalg.pinv(t)))(a), atol=1e-4)


def test_out_is_rejected():
    with pytest.raises(ValueError, match="immutable"):
        pi.pinv(jnp.eye(2), out=jnp.zeros((2, 2)))
