"""JAX on the CPU through the NumPy engine (``_backends/_jax_callback.py``).

Eager calls reach ``_engine.compute_numpy``/``solve_numpy``/``damped_numpy`` directly;
traced ones (jit, vmap, grad) through ``jax.pure_callback``, one call per vmapped stack.
A spy on the engine proves which route ran; results are compared with live references
(``jnp.linalg.pinv``, ``numpy.linalg.pinv`` in float64/complex128).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)  # float64 tests; float32 is asked for explicitly

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

import pseudoinverse as pi  # noqa: E402
from pseudoinverse import _engine  # noqa: E402
from pseudoinverse._backends import _jax_callback  # noqa: E402

SINGLE = (jnp.float32, jnp.complex64)


def randn(shape, dtype=jnp.float64, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * rng.standard_normal(shape)
    return jnp.asarray(x, dtype=dtype)


def low_rank(shape, r, dtype=jnp.float64, seed=0):
    *batch, m, n = shape
    b = randn((*batch, m, r), dtype, seed)
    c = randn((*batch, n, r), dtype, seed + 1)
    return b @ jnp.conj(jnp.swapaxes(c, -1, -2))


def wide(dtype) -> np.dtype:
    """The float64/complex128 dtype of the reference."""
    return np.dtype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)


def reference(a, **kw):
    """numpy.linalg.pinv in float64/complex128 (its rtol is relative, as ours)."""
    return np.linalg.pinv(np.asarray(a).astype(wide(a.dtype)), **kw)


def rel_err(x, ref) -> float:
    x, ref = np.asarray(x).astype(ref.dtype), np.asarray(ref)
    return float(np.linalg.norm(x - ref) / max(np.linalg.norm(ref), 1e-300))


def bound(dtype) -> float:
    """Well-conditioned Gaussian input: a few hundred eps of the dtype."""
    return 1e-4 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-11


@pytest.fixture
def spy(monkeypatch):
    """Record the shape of every stack the engine's NumPy entry points receive."""
    calls = []

    def wrap(name):
        original = getattr(_engine, name)

        def fn(a, *args, **kwargs):
            calls.append((name, tuple(np.shape(a))))
            return original(a, *args, **kwargs)

        monkeypatch.setattr(_engine, name, fn)

    for name in ("compute_numpy", "solve_numpy", "damped_numpy"):
        wrap(name)
    return calls


# ----------------------------------------------------------- against references


SHAPES = [(1, 1), (3, 3), (5, 3), (3, 5), (40, 3, 3), (2, 33, 4, 2), (6, 12, 12), (2, 70, 65)]
DTYPES = [jnp.float32, jnp.float64, jnp.complex64, jnp.complex128]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_eager_and_jit_match_references(shape, dtype, spy):
    a = randn(shape, dtype, seed=sum(shape))
    ref = reference(a)
    x = pi.pinv(a)
    assert isinstance(x, jax.Array) and x.dtype == dtype and x.shape == ref.shape
    assert spy == [("compute_numpy", shape)]  # eager: the engine, directly
    assert rel_err(x, ref) <= bound(dtype)
    live = jnp.linalg.pinv(a, rtol=max(shape[-2:]) * float(jnp.finfo(dtype).eps))
    assert rel_err(x, np.asarray(live).astype(ref.dtype)) <= bound(dtype)
    spy.clear()
    xj = jax.jit(pi.pinv)(a)
    assert spy == [("compute_numpy", shape)]  # traced: the same engine through a callback
    np.testing.assert_array_equal(xj, x)  # the same stack in the same engine: the same bits


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.complex64])
@pytest.mark.parametrize(
    ("shape", "r"), [((6, 4), 2), ((3, 7), 1), ((50, 4, 4), 2), ((3, 9, 6), 3)]
)
def test_rank_deficient(shape, r, dtype):
    a = low_rank(shape, r, dtype, seed=r)
    rtol = 1e-5 if dtype in SINGLE else 1e-10
    ref = reference(a, rtol=rtol)
    for f in (pi.pinv, jax.jit(pi.pinv, static_argnames="return_rank")):
        x, rank = f(a, rtol=rtol, return_rank=True)
        assert np.all(np.asarray(rank) == r)
        assert rel_err(x, ref) <= 100 * bound(dtype)
    x, rank = jax.vmap(lambda t: pi.pinv(t, rtol=rtol, return_rank=True))(
        a.reshape(-1, *shape[-2:])
    )
    assert np.all(np.asarray(rank) == r)
    assert rel_err(x, ref.reshape(-1, *ref.shape[-2:])) <= 100 * bound(dtype)


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.complex128])
def test_hermitian_reads_the_lower_triangle(dtype, spy):
    h = randn((40, 5, 5), dtype, seed=3)
    h = h + jnp.conj(jnp.swapaxes(h, -1, -2))
    raw = jnp.tril(h) + jnp.triu(jnp.full_like(h, jnp.nan), 1)  # unread: NaN above
    ref = np.linalg.pinv(np.asarray(h).astype(wide(dtype)), hermitian=True)
    for f in (pi.pinv, jax.jit(pi.pinv, static_argnums=2), jax.vmap(pi.pinv, (0, None, None))):
        x = f(raw, None, True)
        assert rel_err(x, ref) <= 10 * bound(dtype)
    assert {name for name, _ in spy} == {"compute_numpy"}


def test_dtypes_and_types():
    a = randn((4, 3), jnp.float32, seed=4)
    for dtype in (jnp.float16, jnp.bfloat16):
        for f in (pi.pinv, jax.jit(pi.pinv)):
            x = f(a.astype(dtype))
            assert x.dtype == dtype
            assert rel_err(x.astype(jnp.float32), reference(a.astype(dtype))) <= 2e-2
    ints = jnp.asarray([[1, 2], [3, 4], [5, 6]], dtype=jnp.int32)
    assert pi.pinv(ints).dtype == jax.jit(pi.pinv)(ints).dtype == jnp.float64
    res = pi.pinv(a, return_rank=True)
    assert type(res.rank) is int and res.rank == 3 and res.method == "svd"
    res = pi.pinv(randn((40, 3, 3)), return_rank=True)
    assert res.method == "jacobi" and res.rank.dtype == jnp.int64  # the NumPy rule's choice
    committed = jax.device_put(a, jax.devices("cpu")[0])
    assert pi.pinv(committed).committed and pi.pinv(committed).devices() == committed.devices()


def test_float32_without_x64():
    """JAX's default: no float64 anywhere, the rank in int32, tolerances in float32."""
    with jax.enable_x64(False):
        a = jnp.asarray(np.random.default_rng(5).standard_normal((40, 4, 3)), dtype=jnp.float32)
        ref = reference(a)
        for f in (pi.pinv, jax.jit(pi.pinv), jax.vmap(pi.pinv)):
            x = f(a)
            assert x.dtype == jnp.float32 and rel_err(x, ref) <= 1e-4
        x, rank = jax.jit(lambda t, r: pi.pinv(t, rtol=r, return_rank=True))(a, 1e-3)
        assert rank.dtype == jnp.int32 and np.all(np.asarray(rank) == 3)
        g = jax.grad(lambda t: jnp.sum(pi.pinv(t)))(a)
        assert g.dtype == jnp.float32
        ref_g = jax.grad(lambda t: jnp.sum(jnp.linalg.pinv(t)))(a)
        np.testing.assert_allclose(g, ref_g, rtol=1e-3, atol=1e-3)


# ------------------------------------------------------ vmap: one call per stack


def test_vmap_batches_into_one_callback(spy):
    a = randn((4, 8, 3, 3), seed=6)
    ref = reference(a)
    cases = {
        "vmap": (jax.vmap(pi.pinv), a[0], (8, 3, 3)),
        "jit of vmap": (jax.jit(jax.vmap(pi.pinv)), a[0], (8, 3, 3)),
        "vmap of jit": (jax.vmap(jax.jit(pi.pinv)), a[0], (8, 3, 3)),
        "nested vmap": (jax.vmap(jax.vmap(pi.pinv)), a, (4, 8, 3, 3)),
        "nested, inner jit": (jax.vmap(jax.vmap(jax.jit(pi.pinv))), a, (4, 8, 3, 3)),
        "vmap over a stack": (jax.vmap(pi.pinv), a, (4, 8, 3, 3)),
        "in_axes=1": (jax.vmap(pi.pinv, in_axes=1), jnp.swapaxes(a, 0, 1), (4, 8, 3, 3)),
    }
    for name, (f, arg, seen) in cases.items():
        spy.clear()
        x = f(arg)
        assert spy == [("compute_numpy", seen)], name
        want = ref[0] if arg.ndim == 3 else ref  # in_axes=1: the batch axis moved first
        assert rel_err(x, want) <= 1e-11, name


def test_vmap_sees_the_stack_for_auto(spy, monkeypatch):
    """ "auto" decides on the whole vmapped stack: 64 small matrices take the Jacobi kernel
    (a single one would stay on LAPACK)."""
    from pseudoinverse import _methods

    chosen = []
    original = _methods.run_numpy
    monkeypatch.setattr(
        _methods,
        "run_numpy",
        lambda method, a, *args: (
            chosen.append(_methods.choose(method, args[-1], a.shape, a.dtype))
            or original(method, a, *args)
        ),
    )
    a = randn((64, 4, 3), seed=7)
    x = jax.jit(jax.vmap(pi.pinv))(a)
    assert chosen == ["jacobi"]
    assert rel_err(x, reference(a)) <= 1e-11


def test_vmap_over_tolerances_only(spy):
    """A closed-over matrix and a batched tolerance: the callback broadcasts the matrix."""
    rng = np.random.default_rng(8)
    u, _ = np.linalg.qr(rng.standard_normal((5, 4)))
    v, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    a = jnp.asarray((u * np.array([1.0, 1e-2, 1e-4, 1e-6])) @ v.T)
    rtols = jnp.array([3e-1, 3e-3, 3e-5, 3e-7])
    x, rank = jax.vmap(lambda r: pi.pinv(a, rtol=r, return_rank=True))(rtols)
    assert spy == [("compute_numpy", (4, 5, 4))]
    assert rank.tolist() == [1, 2, 3, 4]
    for i, r in enumerate(np.asarray(rtols)):
        np.testing.assert_allclose(x[i], jnp.linalg.pinv(a, rtol=float(r)), rtol=1e-8, atol=1e-8)
    f = jax.jit(jax.vmap(lambda t, r: pi.pinv(t, atol=r, return_rank=True), in_axes=(None, 0)))
    _, rank = f(a, jnp.array([-1.0, 3e-3, jnp.nan]))  # traced: negative acts as 0, NaN gives NaN
    assert rank.tolist() == [4, 2, 0]


def test_empty_vmapped_axis():
    x = jax.vmap(pi.pinv)(jnp.zeros((0, 3, 2)))
    assert x.shape == (0, 2, 3)
    x = jax.jit(jax.vmap(pi.pinv))(jnp.zeros((2, 0, 3)))
    assert x.shape == (2, 3, 0)


# ------------------------------------------------------------- non-finite input


def test_check_finite_eager_raises_and_traced_gives_nan(spy):
    a = np.array(randn((50, 4, 3), seed=9))
    a[7, 1, 2], a[30, 0, 0] = np.nan, np.inf
    with pytest.raises(np.linalg.LinAlgError) as np_err:
        pi.pinv(a)
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(7,\)") as err:
        pi.pinv(jnp.asarray(a))
    assert str(err.value) == str(np_err.value)
    np_x, np_rank = pi.pinv(a, check_finite=False, return_rank=True)
    aj = jnp.asarray(a)

    def f(t):
        return pi.pinv(t, check_finite=False, return_rank=True)

    nested = jax.jit(jax.vmap(jax.vmap(f)))
    runs = [f(aj), jax.jit(f)(aj), jax.vmap(f)(aj), nested(aj.reshape(5, 10, 4, 3))]
    for x, rank in runs:
        x, rank = x.reshape(np_x.shape), rank.reshape(np_rank.shape)
        np.testing.assert_array_equal(rank, np_rank)
        np.testing.assert_allclose(x, np_x, rtol=1e-12, atol=1e-12)  # NaN where NumPy's is
        assert np.isnan(np.asarray(x)[[7, 30]]).all()

    def loss(t):
        return jnp.sum(jnp.where(jnp.isfinite(pi.pinv(t)), pi.pinv(t), 0.0) ** 2)

    g = jax.jit(jax.grad(loss))(aj)
    assert jnp.isfinite(g).all() and not jnp.any(g[jnp.array([7, 30])])
    good = np.setdiff1d(np.arange(50), [7, 30])
    ref = jax.grad(lambda t: jnp.sum(jnp.linalg.pinv(t) ** 2))(aj[good])
    np.testing.assert_allclose(g[good], ref, rtol=1e-8, atol=1e-8)


def test_subnormal_input_reads_as_zero_as_in_xla():
    """XLA on the CPU reads subnormal numbers as zero (jnp.linalg.pinv of [[1e-310]] is
    zero); the host route flushes them too, eager and traced alike."""
    tiny = jnp.asarray([[1e-310, 0.0], [0.0, 1e-310]])
    graded = jnp.asarray([[1e-300, 3e-310], [0.0, 2e-300]])  # subnormal next to normal
    c64 = jnp.asarray([[1e-40 + 1j, 2.0], [1.0, 1e-39j]], dtype=jnp.complex64)
    for a in (tiny, graded, c64):
        ref = jnp.linalg.pinv(a)
        close = {"rtol": 1e-6, "atol": 1e-6 * float(jnp.abs(ref).max())}
        for x in (pi.pinv(a), jax.jit(pi.pinv)(a), jax.vmap(pi.pinv)(a[None])[0]):
            np.testing.assert_allclose(x, ref, **close)
        np.testing.assert_allclose(pi.pinv_solve(a, jnp.eye(2, dtype=a.dtype)), ref, **close)
    assert not jnp.any(pi.pinv(tiny)) and pi.pinv(tiny, return_rank=True).rank == 0


# ---------------------------------------------------------------------- methods


METHODS = ["auto", "svd", "jacobi", "batched", "qr", "randomized"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_eager_jit_vmap(method, spy):
    a = randn((16, 9, 9), seed=10)
    ref = reference(a)
    x, rank = pi.pinv(a, method=method, return_rank=True)
    assert rel_err(x, ref) <= 1e-10 and np.all(np.asarray(rank) == 9)
    for f in (jax.jit, jax.vmap):
        assert rel_err(f(lambda t: pi.pinv(t, method=method))(a), ref) <= 1e-10
    assert {name for name, _ in spy} == {"compute_numpy"} and len(spy) == 3


def test_eigh_method_and_hermitian_auto():
    c = randn((3, 6, 4), jnp.complex128, seed=11)
    h = c @ jnp.conj(jnp.swapaxes(c, -1, -2))  # rank 4
    ref = reference(h, rtol=1e-10, hermitian=True)
    for method in ("eigh", "auto"):

        def f(t, method=method):
            return pi.pinv(t, hermitian=True, method=method, rtol=1e-10, return_rank=True)

        for g in (f, jax.jit(f), jax.vmap(f)):
            x, rank = g(h)
            assert rel_err(x, ref) <= 1e-9 and rank.tolist() == [4, 4, 4]


def test_qr_cannot_raise_under_tracing():
    """method="qr" raises for a matrix it cannot certify eagerly; traced (a callback cannot
    raise) that member is computed by the SVD alone, the others by the certified QR."""
    a = randn((3, 5, 4), seed=12).at[1].set(low_rank((5, 4), 2, seed=13))
    with pytest.raises(ValueError, match="matrix 1 of the batch cannot be certified"):
        pi.pinv(a, method="qr")
    ref = reference(a, rtol=4 * 5 * float(jnp.finfo(jnp.float64).eps))
    qr_alone = pi.pinv(a[0], method="qr")
    svd_alone = pi.pinv(a[1], method="svd")
    for f in (
        jax.jit(lambda t: pi.pinv(t, method="qr", return_rank=True)),
        jax.vmap(lambda t: pi.pinv(t, method="qr", return_rank=True)),
    ):
        x, rank = f(a)
        assert rank.tolist() == [4, 2, 4]
        assert rel_err(x, ref) <= 1e-10
        np.testing.assert_array_equal(x[0], qr_alone)  # as alone: the same bits
        np.testing.assert_array_equal(x[1], svd_alone)
    zero = jnp.zeros((1, 2))  # the fuzz campaign's case: a finite result, rank 0
    x, rank = jax.jit(lambda t: pi.pinv(t, method="qr", return_rank=True))(zero)
    assert int(rank) == 0 and not jnp.any(x)


# -------------------------------------------------------------------- gradients


def _grad_cases():
    q, _ = jnp.linalg.qr(randn((4, 4), seed=14))
    yield "tall", randn((5, 3), seed=15), {}
    yield "wide-stack", randn((3, 2, 4), seed=16), {}
    yield "complex", randn((3, 4), jnp.complex128, seed=17), {}
    yield "rank2", low_rank((5, 4), 2, seed=18), {"atol": 1e-4}  # far from eps=1e-6
    yield "orthogonal", q, {}
    yield "jacobi-stack", randn((40, 3, 2), seed=19), {}
    h = randn((4, 4), jnp.complex128, seed=20)
    yield "hermitian", h, {"hermitian": True}


GRAD_CASES = list(_grad_cases())


@pytest.mark.parametrize(("name", "a", "kw"), GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_check_grads_under_jit(name, a, kw):
    """Order 2, both modes, with the callback inside the compiled program (no
    disable_jit): the Golub–Pereyra rule around the engine's forward pass."""
    f = jax.jit(lambda t: pi.pinv(t, **kw))
    check_grads(f, (a,), order=2, modes=("fwd", "rev"), eps=1e-6)


def test_gradients_match_jnp_under_every_transformation():
    a = randn((40, 4, 3), seed=21)  # 40: the Jacobi kernel's stack

    def loss(f):
        return lambda t: jnp.sum(jnp.sin(f(t)))

    ref = jax.grad(loss(jnp.linalg.pinv))(a)
    for g in (
        jax.grad(loss(pi.pinv)),
        jax.jit(jax.grad(loss(pi.pinv))),
        jax.vmap(jax.grad(loss(pi.pinv))),
        jax.vmap(jax.jit(jax.grad(loss(pi.pinv)))),
    ):
        np.testing.assert_allclose(g(a), ref, rtol=1e-9, atol=1e-9)
    _, tangent = jax.jvp(pi.pinv, (a,), (a[::-1],))
    _, ref_t = jax.jvp(jnp.linalg.pinv, (a,), (a[::-1],))
    np.testing.assert_allclose(tangent, ref_t, rtol=1e-9, atol=1e-9)
    hess = jax.jit(jax.hessian(lambda t: jnp.sum(pi.pinv(t) ** 2)))(a[0])
    ref_h = jax.hessian(lambda t: jnp.sum(jnp.linalg.pinv(t) ** 2))(a[0])
    np.testing.assert_allclose(hess, ref_h, rtol=1e-7, atol=1e-7)


def test_float32_gradients_against_float64():
    a64 = randn((40, 5, 3), seed=22)
    a = a64.astype(jnp.float32)
    g = jax.jit(jax.grad(lambda t: jnp.sum(pi.pinv(t))))(a)
    assert g.dtype == jnp.float32
    ref = jax.grad(lambda t: jnp.sum(jnp.linalg.pinv(t)))(a.astype(jnp.float64))
    assert rel_err(g, np.asarray(ref)) <= 1e-4


# --------------------------------------------------------- solve and damped


def test_pinv_solve_routes(spy):
    a = randn((40, 6, 4), seed=23)
    b = randn((40, 6, 2), seed=24)
    ref = reference(a) @ np.asarray(b)
    x, rank = pi.pinv_solve(a, b, return_rank=True)
    assert spy == [("solve_numpy", (40, 6, 4))]  # eager: the engine's own solve routes
    assert rel_err(x, ref) <= 1e-11 and np.all(np.asarray(rank) == 4)
    for f in (jax.jit(pi.pinv_solve), jax.vmap(pi.pinv_solve), jax.vmap(jax.jit(pi.pinv_solve))):
        spy.clear()
        assert rel_err(f(a, b), ref) <= 1e-11
        assert spy == [("solve_numpy", (40, 6, 4))]  # traced: the same, through a callback
    spy.clear()
    g = jax.jit(jax.grad(lambda s, t: jnp.sum(pi.pinv_solve(s, t)), argnums=(0, 1)))(a, b)
    ref_g = jax.grad(lambda s, t: jnp.sum(jnp.linalg.pinv(s) @ t), argnums=(0, 1))(a, b)
    for got, want in zip(g, ref_g, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    assert spy == [("compute_numpy", (40, 6, 4))]  # the rule: pinv(A) by the engine
    vec = pi.pinv_solve(a[0], b[0, :, 0])
    assert vec.shape == (4,) and rel_err(vec, ref[0, :, 0]) <= 1e-11
    bad = b.at[3, 0, 0].set(jnp.nan)
    with pytest.raises(np.linalg.LinAlgError, match=r"B contains NaN or Inf .* \(3,\)"):
        pi.pinv_solve(a, bad)
    y, rank = jax.jit(lambda s, t: pi.pinv_solve(s, t, return_rank=True))(a, bad)
    assert np.isnan(np.asarray(y[3])).all() and int(rank[3]) == 0
    assert rel_err(jnp.delete(y, 3, axis=0), np.delete(ref, 3, axis=0)) <= 1e-11
    check_grads(jax.jit(pi.pinv_solve), (a[:2], b[:2]), order=2, modes=("fwd", "rev"))
    h = randn((2, 4, 4), jnp.complex128, seed=40)
    hb = randn((2, 4, 1), jnp.complex128, seed=41)
    check_grads(jax.jit(lambda s, t: pi.pinv_solve(s, t, hermitian=True)), (h, hb), order=1)
    # a traced tolerance: negative acts as 0, NaN gives NaN and rank 0; "qr" cannot raise
    f = jax.jit(lambda s, t, r: pi.pinv_solve(s, t, rtol=r, return_rank=True))
    y, rank = f(a[:3], b[:3], jnp.array([-1.0, jnp.nan, 0.5]))
    assert rank.tolist() == [4, 0, rank.tolist()[2]] and np.isnan(np.asarray(y[1])).all()
    deficient = a[:3].at[1].set(low_rank((6, 4), 2, seed=42))
    y, rank = jax.jit(lambda s, t: pi.pinv_solve(s, t, method="qr", return_rank=True))(
        deficient, b[:3]
    )
    assert rank.tolist() == [4, 2, 4] and jnp.isfinite(y).all()
    want = reference(deficient) @ np.asarray(b[:3])
    assert rel_err(y, want) <= 1e-10


def test_damped_routes(spy):
    a = randn((40, 3, 5), seed=25)
    lam = 0.3
    an = np.asarray(a)
    ref = np.swapaxes(an, -1, -2) @ np.linalg.inv(an @ np.swapaxes(an, -1, -2) + lam**2 * np.eye(3))
    x = pi.damped_pinv(a, lam)
    assert spy == [("damped_numpy", (40, 3, 5))]  # eager: the engine's damped routes
    assert rel_err(x, ref) <= 1e-11
    b = randn((40, 3, 2), seed=26)
    y = pi.damped_pinv_solve(a, jnp.asarray(lam), b)
    assert rel_err(y, ref @ np.asarray(b)) <= 1e-11
    spy.clear()
    xt = jax.jit(pi.damped_pinv)(a, lam)  # traced: the portable filter (its rule needs P)
    assert spy == [] and rel_err(xt, ref) <= 1e-11


# ------------------------------------------------------------ the portable path


def test_portable_path_where_the_callback_does_not_apply(spy, monkeypatch):
    """Arrays off the CPU (simulated: no array counts as on it, the default backend is
    not the CPU) keep the portable core: the engine's NumPy stacks are never reached."""
    monkeypatch.setattr(_jax_callback, "concrete", lambda *values: False)
    monkeypatch.setattr(_jax_callback, "traced_on_cpu", lambda: False)
    a = randn((40, 4, 3), seed=27)
    ref = reference(a)
    for f in (pi.pinv, jax.jit(pi.pinv), jax.vmap(pi.pinv)):
        assert rel_err(f(a), ref) <= 1e-11
    res = pi.pinv(a, method="jacobi", return_rank=True)
    assert res.method == "svd"  # portable: every general method is the SVD
    g = jax.grad(lambda t: jnp.sum(pi.pinv(t)))(a)
    np.testing.assert_allclose(g, jax.grad(lambda t: jnp.sum(jnp.linalg.pinv(t)))(a), atol=1e-9)
    assert spy == []
