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


# ------------------------------------------------- non-finite members, empty input


def hermitian_stack(n=3, batch=4, seed=20):
    """Complex Hermitian, well-conditioned, full rank (positive definite)."""
    b = randn((batch, n, n), jnp.complex128, seed)
    return b @ jnp.conj(jnp.swapaxes(b, -1, -2)) + n * jnp.eye(n)


def test_hermitian_nan_imaginary_diagonal_makes_the_member_bad():
    """A NaN in the imaginary part of a diagonal entry is a NaN where the matrix is read:
    that member's result is NaN (rank 0), as on the NumPy path, under every transform;
    the Hermitian part's real diagonal must not hide it."""
    h = hermitian_stack()
    bad = h.at[1, 0, 0].set(complex(1, np.nan))
    ref = jnp.linalg.pinv(h, hermitian=True)  # the good members' live reference
    np_x, np_rank = pi.pinv(np.asarray(bad), hermitian=True, check_finite=False, return_rank=True)
    assert np.isnan(np_x[1]).all() and np_rank.tolist() == [3, 0, 3, 3]

    def f(t):
        return pi.pinv(t, hermitian=True, check_finite=False, return_rank=True)

    for x, rank in (f(bad), jax.jit(f)(bad), jax.vmap(f)(bad)):
        assert jnp.isnan(x[1]).all() and rank.tolist() == [3, 0, 3, 3]
        np.testing.assert_allclose(x[jnp.array([0, 2, 3])], ref[jnp.array([0, 2, 3])], atol=1e-12)
        np.testing.assert_allclose(x, np_x, atol=1e-12)
    one = jnp.asarray([[complex(1, np.nan)]])
    assert jnp.isnan(pi.pinv(one, hermitian=True, check_finite=False)).all()
    assert jnp.isnan(jax.jit(lambda t: pi.pinv(t, hermitian=True))(one)).all()
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(1,\)"):
        pi.pinv(bad, hermitian=True)
    # the gradient at the good members is finite and that of the stack without the bad one
    w = randn((4, 3, 3), jnp.complex128, seed=21).at[1].set(0)

    def loss(t):
        return jnp.sum(jnp.real(jnp.where(w != 0, pi.pinv(t, hermitian=True) * w, 0)))

    g = jax.grad(loss)(bad)
    assert jnp.isfinite(g).all() and not jnp.any(g[1])
    good = jnp.array([0, 2, 3])
    g_good = jax.grad(lambda t: loss(bad.at[good].set(t)))(bad[good])
    np.testing.assert_allclose(g[good], g_good, atol=1e-12)


@pytest.mark.parametrize("hermitian", [False, True])
def test_check_finite_false_matches_numpy_path(hermitian):
    """NaN in member 0 and Inf in member 3: NaN results and rank 0 exactly there; the
    others equal jnp.linalg.pinv and the NumPy path, eager, jitted and vmapped."""
    a = np.array(hermitian_stack(batch=5, seed=22))
    a[0, 2, 1] = np.nan
    a[3, 1, 1] = np.inf
    np_x, np_rank = pi.pinv(a, hermitian=hermitian, check_finite=False, return_rank=True)
    assert np_rank.tolist() == [0, 3, 3, 0, 3]
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(0,\)") as np_err:
        pi.pinv(a, hermitian=hermitian)
    ref = jnp.linalg.pinv(jnp.asarray(a[[1, 2, 4]]), hermitian=hermitian)

    def f(t):
        return pi.pinv(t, hermitian=hermitian, check_finite=False, return_rank=True)

    aj = jnp.asarray(a)
    for x, rank in (f(aj), jax.jit(f)(aj), jax.vmap(f)(aj)):
        assert rank.tolist() == np_rank.tolist()
        assert jnp.isnan(x[jnp.array([0, 3])]).all()
        np.testing.assert_allclose(x[jnp.array([1, 2, 4])], ref, atol=1e-12)
        np.testing.assert_allclose(x, np_x, atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError) as err:
        pi.pinv(aj, hermitian=hermitian)
    assert str(err.value) == str(np_err.value)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (2, 0, 3), (0, 3, 3), (2, 3, 0)])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128, np.int32])
def test_empty_matches_numpy_path(shape, dtype):
    a = np.zeros(shape, dtype=dtype)
    np_x, np_rank = pi.pinv(a, return_rank=True, check_finite=False)
    x, rank = pi.pinv(jnp.asarray(a), return_rank=True, check_finite=False)
    ref = jnp.linalg.pinv(jnp.asarray(a, dtype=x.dtype))
    assert x.shape == np_x.shape == ref.shape
    assert x.dtype == jnp.asarray(np_x).dtype  # NumPy's float64 for int32 (x64 is on)
    assert np.shape(rank) == np.shape(np_rank) and np.all(np.asarray(rank) == np_rank)
    xj = jax.jit(lambda t: pi.pinv(t, check_finite=False))(jnp.asarray(a))
    assert xj.shape == np_x.shape


# ------------------------------------------------------------ traced tolerances


def spectrum_matrix(batch=(), m=5, n=4, seed=30):
    """Singular values 1, 1e-2, 1e-4, 1e-6 (well separated from the test tolerances)."""
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.standard_normal((*batch, m, n)))
    v, _ = np.linalg.qr(rng.standard_normal((*batch, n, n)))
    s = np.array([1.0, 1e-2, 1e-4, 1e-6])
    return jnp.asarray((u * s[..., None, :]) @ np.swapaxes(v, -1, -2))


def live_rank(a, rtol):
    return jnp.linalg.matrix_rank(a, rtol=rtol)  # sigma > rtol * sigma_max, as pinv keeps


def test_traced_rtol_under_jit_and_vmap():
    a = spectrum_matrix()
    stack = spectrum_matrix((3,), seed=31)
    rtols = jnp.array([3e-1, 3e-3, 3e-7])
    f = jax.jit(lambda t, r: pi.pinv(t, rtol=r, return_rank=True))
    for r in (3e-1, 3e-3, 3e-5, 3e-7):
        x, rank = f(a, r)
        np.testing.assert_allclose(x, jnp.linalg.pinv(a, rtol=r), rtol=1e-9, atol=1e-9)
        assert int(rank) == int(live_rank(a, r))
    ref = jax.vmap(lambda t, r: jnp.linalg.pinv(t, rtol=r))(stack, rtols)
    ref_rank = jax.vmap(live_rank)(stack, rtols)
    assert ref_rank.tolist() == [1, 2, 4]
    for g in (
        jax.vmap(lambda t, r: pi.pinv(t, rtol=r, return_rank=True)),
        jax.jit(jax.vmap(lambda t, r: pi.pinv(t, rtol=r, return_rank=True))),
        jax.jit(lambda t, r: pi.pinv(t, rtol=r, return_rank=True)),  # a traced array of (3,)
    ):
        x, rank = g(stack, rtols)
        np.testing.assert_allclose(x, ref, rtol=1e-9, atol=1e-9)
        assert rank.tolist() == ref_rank.tolist()
    # rcond positional, batched and unbatched (vmap's in_axes), and one matrix, many rtols
    np.testing.assert_allclose(jax.vmap(pi.pinv, in_axes=(0, 0))(stack, rtols), ref, atol=1e-9)
    np.testing.assert_allclose(
        jax.vmap(pi.pinv, in_axes=(0, None))(stack, 3e-3),
        jnp.linalg.pinv(stack, rtol=3e-3),
        atol=1e-9,
    )
    np.testing.assert_allclose(
        jax.vmap(lambda r: pi.pinv(a, rtol=r), in_axes=0)(rtols),
        jax.vmap(lambda r: jnp.linalg.pinv(a, rtol=r))(rtols),
        atol=1e-9,
    )


def test_traced_atol_under_jit_and_vmap():
    """atol = t is the threshold t: jnp.linalg.pinv's rtol = t / sigma_max (here 1)."""
    stack = spectrum_matrix((3,), seed=32)
    atols = jnp.array([3e-1, 3e-3, 0.0])
    ref = jax.vmap(lambda t, r: jnp.linalg.pinv(t, rtol=r))(stack, atols)
    for g in (
        jax.vmap(lambda t, r: pi.pinv(t, atol=r, return_rank=True)),
        jax.jit(lambda t, r: pi.pinv(t, atol=r, return_rank=True)),
    ):
        x, rank = g(stack, atols)
        # atol 0 (not positive): the default rtol max(m, n) * eps applies, all kept
        assert rank.tolist() == [1, 2, 4]
        np.testing.assert_allclose(x, ref, rtol=1e-9, atol=1e-9)
    # the default rtol is the traced atol's elementwise rule: 0 where atol > 0
    x, rank = jax.jit(lambda t, r: pi.pinv(t, atol=r, return_rank=True))(stack, atols * 1e-20)
    assert rank.tolist() == [4, 4, 4]  # atol 3e-21: rtol 0, the 1e-6 value kept
    concrete = pi.pinv(stack, atol=np.asarray(atols), rtol=1e-5, return_rank=True)
    traced = jax.jit(lambda t, a, r: pi.pinv(t, atol=a, rtol=r, return_rank=True))
    x, rank = traced(stack, atols, 1e-5)
    assert rank.tolist() == concrete.rank.tolist() == [1, 2, 3]
    np.testing.assert_allclose(x, concrete.pinv, atol=1e-12)


def test_traced_tolerance_values_that_cannot_be_checked():
    """Documented in _backends/_jax.py: negative acts as 0, NaN gives a NaN result."""
    stack = spectrum_matrix((3,), seed=33)
    f = jax.jit(lambda t, a, r: pi.pinv(t, atol=a, rtol=r, return_rank=True))
    x, rank = f(stack, jnp.array([-1.0, 0.0, 0.0]), jnp.array([1e-3, -1.0, jnp.nan]))
    ref = pi.pinv(stack, atol=0.0, rtol=np.array([1e-3, 0.0, 0.0]), return_rank=True)
    assert rank.tolist() == [2, 4, 0]
    np.testing.assert_allclose(x[:2], ref.pinv[:2], atol=1e-12)
    assert jnp.isnan(x[2]).all()
    x, rank = jax.jit(lambda t, a: pi.pinv(t, atol=a, return_rank=True))(stack[0], -1.0)
    assert int(rank) == 4  # negative atol: as atol=0, so the default rtol applies
    # dtype and shape are still checked while tracing
    with pytest.raises(ValueError, match="rcond must be real"):
        jax.jit(lambda t, r: pi.pinv(t, r))(stack, 1j)
    with pytest.raises(ValueError, match=r"atol of shape \(4,\) does not broadcast"):
        jax.jit(lambda t, r: pi.pinv(t, atol=r))(stack, jnp.ones(4))
    with pytest.raises(TypeError, match="rcond and rtol"):
        jax.jit(lambda t, r: pi.pinv(t, r, rtol=r))(stack, 1.0)


def test_grad_with_traced_tolerance():
    """The tolerance is not differentiated (zero derivative); A's gradient is jnp's."""
    a = spectrum_matrix(seed=34)

    def loss(f):
        return lambda t, r: jnp.sum(jnp.sin(f(t, rtol=r)))

    for r in (3e-3, 3e-7):
        g, gr = jax.jit(jax.grad(loss(pi.pinv), argnums=(0, 1)))(a, r)
        ref = jax.grad(loss(jnp.linalg.pinv))(a, r)
        np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-6 * float(jnp.abs(ref).max()))
        assert float(gr) == 0.0
    stack = spectrum_matrix((2,), seed=35)
    rtols = jnp.array([3e-3, 3e-7])
    g = jax.vmap(jax.grad(loss(pi.pinv)))(stack, rtols)
    ref = jax.vmap(jax.grad(loss(jnp.linalg.pinv)))(stack, rtols)
    np.testing.assert_allclose(g, ref, rtol=1e-6, atol=1e-6 * float(jnp.abs(ref).max()))
    _, tangent = jax.jvp(lambda t: pi.pinv(t, rtol=rtols), (stack,), (stack,))
    _, ref = jax.jvp(lambda t: jax.vmap(jnp.linalg.pinv)(t, rtols), (stack,), (stack,))
    np.testing.assert_allclose(tangent, ref, rtol=1e-6, atol=1e-6 * float(jnp.abs(ref).max()))


# ------------------------------------------------------------------ rank promotion


def test_no_implicit_rank_promotion():
    """JAX's own test suite sets jax_numpy_rank_promotion="raise": the whole JAX path,
    batched and Hermitian, under every transformation and with traced tolerances."""
    before = jax.config.jax_numpy_rank_promotion
    # shapes of their own, so that no trace cached by another test is reused
    a = randn((2, 3, 6, 5), seed=40)
    h = hermitian_stack(n=5, batch=3, seed=41).at[1, 0, 0].set(complex(1, np.nan))
    rtols = jnp.array([1e-3, 1e-9, 0.0])
    with jax.numpy_rank_promotion("raise"):
        x = pi.pinv(a)
        np.testing.assert_allclose(x, jnp.linalg.pinv(a), atol=1e-10)
        for f in (jax.jit(pi.pinv), jax.vmap(pi.pinv), jax.vmap(jax.vmap(pi.pinv))):
            np.testing.assert_allclose(f(a), x, atol=1e-12)

        def herm(t):
            return pi.pinv(t, hermitian=True, check_finite=False, return_rank=True)

        for g in (herm, jax.jit(herm), jax.vmap(herm)):
            hx, rank = g(h)
            assert rank.tolist() == [5, 0, 5] and jnp.isnan(hx[1]).all()
        hx = jax.jit(lambda t: pi.pinv(t, hermitian=True))(h[jnp.array([0, 2])])
        ref = jnp.linalg.pinv(h[jnp.array([0, 2])], hermitian=True)
        np.testing.assert_allclose(hx, ref, atol=1e-10)
        grad = jax.grad(lambda t: jnp.sum(jnp.real(pi.pinv(t, hermitian=True))))(h[0])
        assert jnp.isfinite(grad).all()
        g = jax.grad(lambda t: jnp.sum(jnp.sin(pi.pinv(t))))(a)
        np.testing.assert_allclose(
            g, jax.grad(lambda t: jnp.sum(jnp.sin(jnp.linalg.pinv(t))))(a), atol=1e-8
        )
        jax.jit(jax.vmap(jax.grad(lambda t: jnp.sum(pi.pinv(t)))))(a)
        _, tangent = jax.jvp(pi.pinv, (a,), (a,))
        _, ref = jax.jvp(jnp.linalg.pinv, (a,), (a,))
        np.testing.assert_allclose(tangent, ref, atol=1e-8)
        x, rank = jax.jit(lambda t, r: pi.pinv(t[0], rtol=r, return_rank=True))(a, rtols)
        assert rank.shape == (3,)
        jax.vmap(lambda t, r: pi.pinv(t, atol=r, hermitian=True))(h, rtols)
        jax.jit(lambda t, r: pi.pinv(t, atol=r))(a, 1e-3)
    assert jax.config.jax_numpy_rank_promotion == before
