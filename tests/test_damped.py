"""damped_pinv and damped_pinv_solve on every backend against live references: the SVD
filter and the normal equations in float64, 40-digit mpmath for singular and
ill-conditioned matrices, pinv with atol = rtol = 0 at damping 0, and the derivatives
against torch gradcheck, JAX check_grads and finite differences (MLX).

Every input is fresh random data from the run's seed (``PI_TEST_SEED`` replays a run).
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import torch
from cases import DTYPES, eps, hermitian, known_rank, randn, with_singular_values
from test_pinv import CASE_NAMES, _case
from test_solve import convert, lean_jax, to_np, wide

import pseudoinverse as pi
from pseudoinverse import _engine


def ct(x):
    return np.conj(np.swapaxes(x, -1, -2))


def filter_ref(a, lam, hermitian_=False):
    """``V diag(s / (s^2 + lambda^2)) U^H`` from NumPy's SVD in double precision."""
    a = a.astype(wide(a.dtype))
    if hermitian_:
        a = np.tril(a) + ct(np.tril(a, -1))
        if a.dtype.kind == "c":  # the diagonal's imaginary part is not read
            a = a - 1j * np.eye(a.shape[-1]) * np.diagonal(a, axis1=-2, axis2=-1).imag[..., None]
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    lam = np.asarray(lam, dtype=np.float64)[..., None]
    f = s / (s**2 + lam**2)
    return ct(vh) @ (f[..., None] * ct(u))


def normal_ref(a, lam):
    """``(A^H A + lambda^2 I)^{-1} A^H`` (tall) / ``A^H (A A^H + lambda^2 I)^{-1}`` (wide)
    in double precision: only for well-conditioned ``A`` or large lambda."""
    a = a.astype(wide(a.dtype))
    m, n = a.shape[-2:]
    lam2 = np.asarray(lam, dtype=np.float64)[..., None, None] ** 2
    if m >= n:
        return np.linalg.solve(ct(a) @ a + lam2 * np.eye(n), ct(a))
    return ct(np.linalg.solve(a @ ct(a) + lam2 * np.eye(m), a))


def mp_ref(a, lam) -> np.ndarray:
    """``(A^H A + lambda^2 I)^{-1} A^H`` with 40 digits (mpmath), rounded to complex128."""
    with mpmath.workdps(40):
        am = mpmath.matrix(a.astype(np.complex128).tolist())
        ah = am.transpose_conj()
        n = a.shape[1]
        lam = mpmath.mpf(float(lam))
        x = mpmath.inverse(ah * am + lam**2 * mpmath.eye(n)) * ah
        return np.array(x.tolist(), dtype=np.complex128)


def rel_err(x, ref):
    x, ref = np.asarray(x, dtype=np.complex128), np.asarray(ref, dtype=np.complex128)
    return np.linalg.norm(x - ref) / max(np.linalg.norm(ref), np.finfo(float).tiny)


def kappa_lambda(a, lam) -> float:
    """The damped problem's condition ``||A|| / ((sigma_min^2 + lambda^2) ||X||)`` (the
    definition of ``_methods/jacobi.py``; ``sigma_min`` over ``min(m, n)`` values), worst
    over the batch: ``~ ||A||^2 / lambda^2`` for a rank-deficient ``A`` and small lambda."""
    s = np.linalg.svd(a.astype(wide(a.dtype)), compute_uv=False)
    if s.size == 0:
        return 1.0
    lam = np.broadcast_to(np.asarray(lam, dtype=np.float64), s.shape[:-1])
    smax, smin = s.max(axis=-1), s.min(axis=-1)
    xnorm = np.max(s / (s**2 + lam[..., None] ** 2), axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = np.where(smax > 0, smax / ((smin**2 + lam**2) * xnorm), 1.0)
    return float(max(1.0, np.max(k)))


# --------------------------------------------------------------- the case table


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_table(backend, name, dtype, rng):
    backend.check(dtype)
    lean_jax(backend, name in ("tall", "known-rank-wide", "hermitian") and dtype == np.complex64)
    c = _case(name, dtype, int(rng.integers(2**31)))
    s = np.linalg.svd(c.a.astype(wide(dtype)), compute_uv=False)
    batch = c.a.shape[:-2]
    lam = rng.uniform(0.05, 1.0, batch) * max(float(s.max()), 1.0)  # per matrix
    x = to_np(backend, pi.damped_pinv(backend.to(c.a), lam, hermitian=c.hermitian))
    assert x.dtype == dtype and x.shape == (*batch, c.a.shape[-1], c.a.shape[-2])
    ref = filter_ref(c.a, lam, c.hermitian)
    bound = 50 * max(c.a.shape[-2:]) * eps(dtype) * kappa_lambda(c.a, lam)
    assert rel_err(x, ref) <= bound
    b = randn(rng, (*c.a.shape[:-1], 2), dtype)
    y = to_np(
        backend, pi.damped_pinv_solve(backend.to(c.a), lam, backend.to(b), hermitian=c.hermitian)
    )
    assert y.dtype == dtype and y.shape == (*batch, c.a.shape[-1], 2)
    assert rel_err(y, ref @ b) <= 10 * bound


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 5, 5), (2, 1, 7, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_normal_equations(backend, shape, dtype, rng):
    """Well conditioned: the normal-equations form in float64 is a reference."""
    backend.check(dtype)
    lean_jax(backend, shape == (2, 1, 7, 3))
    a = randn(rng, shape, dtype)
    lam = rng.uniform(0.1, 2.0, shape[:-2])
    x = to_np(backend, pi.damped_pinv(backend.to(a), lam))
    assert rel_err(x, normal_ref(a, lam)) <= 1e-13
    b = randn(rng, (*shape[:-1], 3), dtype)
    y = to_np(backend, pi.damped_pinv_solve(backend.to(a), lam, backend.to(b)))
    assert rel_err(y, normal_ref(a, lam) @ b) <= 1e-13


@pytest.mark.parametrize(
    ("which", "lam"),
    [("rank1", 1e-3), ("rank1", 0.7), ("ill", 1e-8), ("ill", 1e-4), ("zero", 0.5)],
)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_against_mpmath(which, lam, dtype, rng):
    """Singular and ill-conditioned (kappa 1e12): a few eps * kappa_lambda of 40 digits."""
    if which == "rank1":
        a = known_rank(rng, 4, 3, 1, dtype)
    elif which == "ill":
        a = with_singular_values(rng, 4, 3, np.array([1.0, 1e-6, 1e-12]), dtype)
    else:
        a = np.zeros((3, 4), dtype=dtype)
    ref = mp_ref(a, lam)
    bound = 50 * 4 * eps(dtype) * kappa_lambda(a, lam)
    for arr in (a, torch.from_numpy(a)):  # the NumPy path and torch's
        assert rel_err(np.asarray(pi.damped_pinv(arr, lam)), ref) <= bound
    t = torch.from_numpy(a).requires_grad_()  # the differentiable path
    assert rel_err(pi.damped_pinv(t, lam).detach().numpy(), ref) <= bound
    b = randn(rng, (a.shape[0],), dtype)
    assert rel_err(pi.damped_pinv_solve(a, lam, b), ref @ b) <= 10 * bound


# --------------------------------------------------------------- damping 0


def test_zero_damping_is_pinv_without_cut(backend, rng):
    a = rng.standard_normal((3, 6, 4))
    x = to_np(backend, pi.damped_pinv(backend.to(a), 0.0))
    ref = to_np(backend, pi.pinv(backend.to(a), atol=0, rtol=0))
    assert rel_err(x, ref) <= 1e-13
    t = torch.linalg.pinv(torch.from_numpy(a), atol=0.0, rtol=0.0).numpy()
    assert rel_err(x, t) <= 1e-13
    # exactly singular: the zero singular value is not inverted (no NaN, no Inf)
    d = np.stack([np.diag([1.0, 0.0]), np.diag([0.0, 4.0]), np.zeros((2, 2))])
    x = to_np(backend, pi.damped_pinv(backend.to(d), 0.0))
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, np.linalg.pinv(d, rcond=0.0))
    np.testing.assert_array_equal(x, to_np(backend, pi.pinv(backend.to(d), atol=0, rtol=0)))
    b = rng.standard_normal((3, 2, 2))
    y = to_np(backend, pi.damped_pinv_solve(backend.to(d), np.zeros(3), backend.to(b)))
    np.testing.assert_allclose(y, np.linalg.pinv(d, rcond=0.0) @ b, rtol=1e-15, atol=0)


# --------------------------------------------------------------- damping's forms


def test_damping_forms(backend, rng):
    a = rng.standard_normal((3, 2, 5, 4))
    ref_lam = rng.uniform(0.1, 1.0, (3, 1))
    ref = normal_ref(a, np.broadcast_to(ref_lam, (3, 2)))
    full = np.broadcast_to(ref_lam, (3, 2)).copy()
    for lam in (ref_lam, full, full[None, 0] * 0 + ref_lam, ref_lam.tolist()):  # to (3, 2)
        assert rel_err(to_np(backend, pi.damped_pinv(backend.to(a), lam)), ref) <= 1e-13
    scalar = float(ref_lam[0, 0])
    ref0 = normal_ref(a, np.full((3, 2), scalar))
    for lam in (scalar, np.float32(scalar), np.array(scalar)):
        x = to_np(backend, pi.damped_pinv(backend.to(a), lam))
        tol = 1e-13 if not isinstance(lam, np.float32) else 1e-6
        assert rel_err(x, ref0) <= tol
    assert rel_err(to_np(backend, pi.damped_pinv(backend.to(a), 1)), normal_ref(a, 1.0)) < 1e-13
    if backend.name in ("torch", "jax", "mlx"):  # an array of A's own library
        lam = backend.to(ref_lam)
        assert rel_err(to_np(backend, pi.damped_pinv(backend.to(a), lam)), ref) <= 1e-13


def test_damping_broadcasts_with_b(backend, rng):
    """damped_pinv_solve: damping of A's batch shape while B enlarges the batch."""
    a = rng.standard_normal((3, 1, 5, 4))
    b = rng.standard_normal((2, 5, 2))
    lam = rng.uniform(0.1, 1.0, (3, 1))
    y = to_np(backend, pi.damped_pinv_solve(backend.to(a), lam, backend.to(b)))
    ref = normal_ref(a, lam) @ b
    assert y.shape == ref.shape == (3, 2, 4, 2)
    assert rel_err(y, ref) <= 1e-13
    v = rng.standard_normal(5)  # a vector right-hand side
    y = to_np(backend, pi.damped_pinv_solve(backend.to(a), lam, backend.to(v)))
    assert y.shape == (3, 1, 4) and rel_err(y, normal_ref(a, lam) @ v) <= 1e-13
    k0 = to_np(backend, pi.damped_pinv_solve(backend.to(a), lam, backend.to(np.zeros((5, 0)))))
    assert k0.shape == (3, 1, 4, 0)


# --------------------------------------------------------------- dtypes, Hermitian, empty


def test_dtypes(backend, rng):
    for dtype in (np.float32, np.complex64):
        backend.check(dtype)
        a = randn(rng, (2, 5, 3), dtype)
        x = to_np(backend, pi.damped_pinv(backend.to(a), 0.3))
        assert x.dtype == dtype and rel_err(x, normal_ref(a, 0.3)) <= 1e-5
    a = rng.standard_normal((5, 3)).astype(np.float16)
    x = to_np(backend, pi.damped_pinv(convert(backend, a), 0.3))
    assert x.dtype == np.float16 and rel_err(x, normal_ref(a, 0.3)) <= 5e-3
    b = rng.standard_normal((5, 2))  # float32 A with float64 B promotes
    a32 = rng.standard_normal((5, 3)).astype(np.float32)
    y = to_np(backend, pi.damped_pinv_solve(backend.to(a32), 0.3, backend.to(b)))
    assert y.dtype == np.float64
    assert str(torch.promote_types(torch.float32, torch.float64)) == f"torch.{y.dtype.name}"
    assert rel_err(y, normal_ref(a32, 0.3) @ b) <= 1e-6


@pytest.mark.parametrize("dtype", [np.float64, np.complex64])
def test_hermitian_reads_lower_triangle_only(backend, dtype, rng):
    backend.check(dtype)
    lean_jax(backend, dtype == np.float64)
    h = np.stack([hermitian(rng, 5, dtype) for _ in range(2)])
    raw = np.tril(h) + np.triu(np.full(h.shape, np.nan, dtype=dtype), 1)
    lam = np.array([0.2, 1.5])
    x = to_np(backend, pi.damped_pinv(backend.to(raw), lam, hermitian=True))
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert rel_err(x, normal_ref(h, lam)) <= tol
    b = randn(rng, (2, 5, 1), dtype)
    y = to_np(backend, pi.damped_pinv_solve(backend.to(raw), lam, backend.to(b), hermitian=True))
    assert rel_err(y, normal_ref(h, lam) @ b) <= tol


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (0, 2, 2), (2, 0, 3)])
def test_empty(backend, shape):
    a = np.ones(shape)
    x = to_np(backend, pi.damped_pinv(backend.to(a), 0.5))
    assert x.shape == tuple(torch.linalg.pinv(torch.from_numpy(a)).shape)
    y = to_np(
        backend, pi.damped_pinv_solve(backend.to(a), 0.5, backend.to(np.ones((*shape[:-1], 2))))
    )
    assert y.shape == (*shape[:-2], shape[-1], 2) and not y.any()


# --------------------------------------------------------------- non-finite input, errors


def _raises(backend, match, fn):
    with pytest.raises(np.linalg.LinAlgError, match=match):
        out = fn()
        if backend.name == "dask":  # lazy: the error surfaces when computed
            out.compute()


def test_check_finite(backend, rng):
    a = rng.standard_normal((3, 5, 4))
    b = rng.standard_normal((3, 5, 2))
    a[1, 0, 2] = np.nan
    b[2, 4, 1] = np.inf
    _raises(
        backend,
        r"^A contains NaN or Inf in the matrix at batch index \(1,\)",
        lambda: pi.damped_pinv(backend.to(a), 0.5),
    )
    _raises(
        backend,
        r"^A contains NaN or Inf in the matrix at batch index \(1,\)",
        lambda: pi.damped_pinv_solve(backend.to(a), 0.5, backend.to(b)),
    )
    _raises(  # the first bad member is B's: the error names B
        backend,
        r"^B contains NaN or Inf in the matrix at batch index \(2,\)",
        lambda: pi.damped_pinv_solve(backend.to(np.nan_to_num(a)), 0.5, backend.to(b)),
    )
    x = to_np(backend, pi.damped_pinv(backend.to(a), 0.5, check_finite=False))
    assert np.isnan(x[1]).all() and np.isfinite(x[[0, 2]]).all()
    assert rel_err(x[[0, 2]], normal_ref(a[[0, 2]], 0.5)) <= 1e-13
    y = to_np(backend, pi.damped_pinv_solve(backend.to(a), 0.5, backend.to(b), check_finite=False))
    assert np.isnan(y[[1, 2]]).all() and np.isfinite(y[0]).all()
    assert rel_err(y[0], normal_ref(a[0], 0.5) @ b[0]) <= 1e-13


def test_damping_errors(backend, rng):
    a = backend.to(rng.standard_normal((3, 5, 4)))
    for bad, match in [
        (-0.1, r"damping must be >= 0 \(it is lambda, not lambda\*\*2\), got -0.1"),
        (np.array([0.1, -1.0, 0.2]), "damping must be >= 0"),
        (float("nan"), "damping must not be NaN"),
        (1j, "damping must be real, got a complex value"),
        (
            np.ones((2, 3)),
            r"damping of shape \(2, 3\) does not broadcast to the batch shape \(3,\)",
        ),
        (np.ones(4), "a damping may not enlarge the result's shape"),
    ]:
        with pytest.raises(ValueError, match=match):
            pi.damped_pinv(a, bad)
        with pytest.raises(ValueError, match=match):
            pi.damped_pinv_solve(a, bad, backend.to(rng.standard_normal(5)))
    with pytest.raises(TypeError, match="damped_pinv needs damping"):
        pi.damped_pinv(a, None)
    if backend.name in ("torch", "jax", "mlx"):  # the library's own arrays are read too
        for bad, match in [
            (-np.ones(3), ">= 0"),
            (np.full(3, np.nan), "NaN"),
            (np.ones((2, 3)), "broadcast"),
        ]:
            with pytest.raises(ValueError, match=match):
                pi.damped_pinv(a, backend.to(bad))
    other = torch.tensor(0.5) if backend.name != "torch" else __import__("jax").numpy.asarray(0.5)
    with pytest.raises(
        ValueError, match="damping must be a number, a NumPy array or an array of A"
    ):
        pi.damped_pinv(a, other)
    with pytest.raises(ValueError, match=r"damped_pinv_solve expects B of shape \(\.\.\., 5\)"):
        pi.damped_pinv_solve(a, 0.5, backend.to(rng.standard_normal((3, 4, 1))))
    with pytest.raises(ValueError, match="damped_pinv_solve: the batch shapes of A"):
        pi.damped_pinv_solve(a, 0.5, backend.to(rng.standard_normal((2, 5, 1))))
    with pytest.raises(ValueError, match=r"damped_pinv expects an array of shape \(\.\.\., m, n\)"):
        pi.damped_pinv(backend.to(rng.standard_normal(4)), 0.5)


# --------------------------------------------------------------- torch


def test_torch_cpu_without_grad_takes_numpy_path(monkeypatch, rng):
    calls = []
    original = _engine.damped_numpy

    def spy(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(_engine, "damped_numpy", spy)
    a = randn(rng, (3, 6, 4), np.complex128)
    b = randn(rng, (3, 6, 2), np.complex128)
    lam = rng.uniform(0.1, 1, 3)
    t = pi.damped_pinv(torch.from_numpy(a), torch.from_numpy(lam))
    ts = pi.damped_pinv_solve(torch.from_numpy(a), lam, torch.from_numpy(b))
    assert len(calls) == 2 and np.shares_memory(calls[0], a)
    np.testing.assert_array_equal(t.numpy(), pi.damped_pinv(a, lam))  # bit for bit
    np.testing.assert_array_equal(ts.numpy(), pi.damped_pinv_solve(a, lam, b))
    g = pi.damped_pinv(torch.from_numpy(a), torch.from_numpy(lam).requires_grad_())
    assert len(calls) == 4 and g.grad_fn is not None  # the differentiable path
    torch.testing.assert_close(g.detach(), t)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_torch_gradcheck(dtype, rng):
    a = torch.from_numpy(randn(rng, (2, 4, 3), dtype)).requires_grad_()
    w = torch.from_numpy(randn(rng, (3, 4), dtype)).requires_grad_()  # wide
    lam = torch.from_numpy(rng.uniform(0.2, 1.0, 2)).requires_grad_()
    b = torch.from_numpy(randn(rng, (2, 4, 2), dtype)).requires_grad_()
    assert torch.autograd.gradcheck(pi.damped_pinv, (a, lam), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(pi.damped_pinv, (a, lam))
    assert torch.autograd.gradcheck(pi.damped_pinv, (w, lam[0]))
    assert torch.autograd.gradcheck(pi.damped_pinv_solve, (a, lam, b))
    assert torch.autograd.gradgradcheck(pi.damped_pinv_solve, (a, lam, b))
    # rank-deficient A: damped, the map is smooth there
    r = torch.from_numpy(known_rank(rng, 4, 3, 1, dtype)).requires_grad_()
    assert torch.autograd.gradcheck(pi.damped_pinv, (r, lam[0]))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_torch_gradient_matches_normal_equations(dtype, rng):
    a = torch.from_numpy(randn(rng, (2, 5, 3), dtype)).requires_grad_()
    lam = torch.tensor([0.3, 0.9], dtype=torch.float64, requires_grad=True)
    wt = torch.from_numpy(randn(rng, (2, 3, 5), dtype))

    def normal(x, lam_):
        eye = torch.eye(3, dtype=x.dtype)
        return torch.linalg.solve(x.mH @ x + (lam_**2)[:, None, None] * eye, x.mH)

    ours = torch.autograd.grad((pi.damped_pinv(a, lam) * wt).real.sum(), (a, lam))
    theirs = torch.autograd.grad((normal(a, lam) * wt).real.sum(), (a, lam))
    for o, t in zip(ours, theirs, strict=True):
        torch.testing.assert_close(o, t)


def test_torch_func(rng):
    a = torch.from_numpy(rng.standard_normal((3, 5, 4)))
    lam = torch.from_numpy(rng.uniform(0.1, 1.0, 3))
    b = torch.from_numpy(rng.standard_normal((3, 5, 2)))
    ref = pi.damped_pinv(a, lam)
    torch.testing.assert_close(torch.func.vmap(pi.damped_pinv)(a, lam), ref)
    torch.testing.assert_close(torch.func.vmap(pi.damped_pinv_solve)(a, lam, b), ref @ b)
    # grad in the damping (its values cannot be read under torch.func)
    g = torch.func.grad(lambda lam_: pi.damped_pinv(a[0], lam_).sum())(lam[0])
    l0 = lam[0].clone().requires_grad_()
    (r,) = torch.autograd.grad(pi.damped_pinv(a[0], l0).sum(), l0)
    torch.testing.assert_close(g, r)
    ga = torch.func.grad(lambda x: pi.damped_pinv_solve(x, 0.4, b[0]).sum())(a[0])
    x0 = a[0].clone().requires_grad_()
    (ra,) = torch.autograd.grad(pi.damped_pinv_solve(x0, 0.4, b[0]).sum(), x0)
    torch.testing.assert_close(ga, ra)


# --------------------------------------------------------------- JAX


def test_jax_check_grads_jit_vmap(rng):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        a = jnp.asarray(rng.standard_normal((4, 3)))
        lam = jnp.asarray(0.6)

        def f(x, lam_):  # the numerical side of check_grads hands NumPy arrays
            return pi.damped_pinv(jnp.asarray(x), jnp.asarray(lam_))

        check_grads(f, (a, lam), order=2, modes=("fwd", "rev"))
        stack = rng.standard_normal((3, 5, 4))
        lams = rng.uniform(0.1, 1.0, 3)
        b = rng.standard_normal((3, 5, 2))
        ref = normal_ref(stack, lams)
        ja, jl, jb = jnp.asarray(stack), jnp.asarray(lams), jnp.asarray(b)
        assert rel_err(np.asarray(jax.jit(pi.damped_pinv)(ja, jl)), ref) <= 1e-13  # traced lambda
        assert rel_err(np.asarray(jax.vmap(pi.damped_pinv)(ja, jl)), ref) <= 1e-13
        y = jax.jit(pi.damped_pinv_solve)(ja, jl, jb)
        assert rel_err(np.asarray(y), ref @ b) <= 1e-13

        # the derivative in lambda against the normal equations' (jnp.linalg.solve)
        def normal(lam_):
            x = ja[0]
            return jnp.linalg.solve(x.T @ x + lam_**2 * jnp.eye(4), x.T).sum()

        g = jax.grad(lambda lam_: pi.damped_pinv(ja[0], lam_).sum())(0.5)
        np.testing.assert_allclose(float(g), float(jax.grad(normal)(0.5)), rtol=1e-10)


# --------------------------------------------------------------- MLX


def test_mlx_grad_matches_finite_differences(rng):
    mx = pytest.importorskip("mlx.core")
    a = rng.standard_normal((2, 5, 3)).astype(np.float32)
    b = rng.standard_normal((2, 5, 2)).astype(np.float32)
    w = mx.array(rng.standard_normal((2, 3, 2)).astype(np.float32))
    lam = np.array([0.4, 0.9], dtype=np.float32)

    def f(x, lam_):
        return (pi.damped_pinv_solve(x, lam_, mx.array(b)) * w).sum()

    ga, gl = mx.grad(f, argnums=(0, 1))(mx.array(a), mx.array(lam))
    h = 1e-2
    for arg, g in ((0, ga), (1, gl)):
        base = (a, lam)[arg]
        d = rng.standard_normal(base.shape).astype(np.float32)
        plus, minus = [mx.array(a), mx.array(lam)], [mx.array(a), mx.array(lam)]
        plus[arg], minus[arg] = mx.array(base + h * d), mx.array(base - h * d)
        fd = (f(*plus).item() - f(*minus).item()) / (2 * h)
        exact = float((np.array(g) * d).sum())
        assert abs(exact - fd) <= 2e-2 * max(abs(fd), 1.0), (exact, fd)
