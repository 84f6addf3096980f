"""pinv_solve on every backend against live references: NumPy's and torch's pinv times B,
torch.linalg.solve's shape rule, a long-double Newton-Schulz pseudo-inverse, and the
derivatives against torch gradcheck, JAX check_grads and finite differences (MLX).

Every input is fresh random data from the run's seed (``PI_TEST_SEED`` replays a run).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import (
    COMPLEX,
    DTYPES,
    REAL,
    eps,
    extended_pinv,
    hermitian,
    known_rank,
    randn,
    with_singular_values,
)
from test_pinv import CASE_NAMES, _case, kappa

import pseudoinverse as pi
from pseudoinverse import _engine


def to_np(backend, v) -> np.ndarray:
    """A result (or rank: a Python int for one matrix) as a NumPy array."""
    if isinstance(v, int | np.integer):
        return np.asarray(v)
    return np.asarray(backend.back(v))


def lean_jax(backend, keep: bool) -> None:
    """JAX compiles once per shape, dtype and method (about a second each): it runs the
    parameters marked ``keep`` (the same code path serves the others)."""
    if backend.name == "jax" and not keep:
        pytest.skip("jax: one compilation per shape; this path is covered by the kept ones")


def close(x, ref, a, *, dtype=None, factor=100.0) -> None:
    """Relative Frobenius agreement within ``factor * max(m, n) * eps * kappa(A)``."""
    dtype = a.dtype if dtype is None else dtype
    bound = factor * max(a.shape[-2:]) * eps(dtype) * max(kappa(a), 1.0)
    x, ref = np.asarray(x, dtype=np.complex128), np.asarray(ref, dtype=np.complex128)
    err = np.linalg.norm(x - ref) / max(np.linalg.norm(ref), np.finfo(float).tiny)
    assert err <= bound, f"relative error {err:.3g} > bound {bound:.3g}"


def wide(dtype):
    return np.complex128 if np.dtype(dtype).kind == "c" else np.float64


def ref_solve(a, b, **kw) -> np.ndarray:
    """NumPy's pseudo-inverse (in ``a``'s dtype) times ``B`` in double precision."""
    kw.setdefault("rtol", None)  # NumPy 2: the max(m, n) eps default (not rcond=1e-15)
    return np.linalg.pinv(a, **kw).astype(wide(a.dtype)) @ b.astype(wide(a.dtype))


# --------------------------------------------------------------- the case table


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_table(backend, name, dtype, rng):
    backend.check(dtype)
    jax_names = ("tall", "batched", "known-rank-wide", "hermitian-rank-deficient")
    lean_jax(backend, name in jax_names and dtype in (np.float32, np.complex128))
    c = _case(name, dtype, int(rng.integers(2**31)))
    k = int(rng.integers(1, 4))
    b = randn(rng, (*c.a.shape[:-1], k), dtype)
    res = pi.pinv_solve(backend.to(c.a), backend.to(b), hermitian=c.hermitian, return_rank=True)
    assert isinstance(res, pi.SolveResult) and isinstance(res, tuple)
    x = to_np(backend, res.solution)
    assert x.dtype == dtype and x.shape == (*c.a.shape[:-2], c.a.shape[-1], k)
    close(x, ref_solve(c.a, b, hermitian=c.hermitian), c.a)
    rank = to_np(backend, res.rank)
    p = pi.pinv(backend.to(c.a), hermitian=c.hermitian, return_rank=True)
    np.testing.assert_array_equal(rank, to_np(backend, p.rank))  # pinv's rank decision
    assert res.method == p.method and isinstance(res.method, str)
    if c.rank is not None:
        assert np.all(rank == c.rank)
    solution, r = res  # a named pair
    assert solution is res.solution and r is res.rank


def test_ill_conditioned_against_extended_precision(backend, rng):
    """kappa = 1e10: the float64 solution to ~kappa eps of a long-double reference."""
    a = np.stack([with_singular_values(rng, 7, 5, np.geomspace(1, 1e-10, 5), np.float64)] * 2)
    b = rng.standard_normal((2, 7, 3))
    x = to_np(backend, pi.pinv_solve(backend.to(a), backend.to(b)))
    ref = (extended_pinv(a) @ b.astype(np.longdouble)).astype(np.float64)
    close(x, ref, a, factor=30)


# --------------------------------------------------------------- shapes and broadcasting


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [
        ((3, 1, 5, 4), (2, 5, 3)),  # both batches broadcast
        ((5, 4), (2, 3, 5, 2)),  # a single A for a stack of B
        ((2, 3, 5, 4), (5, 1)),  # a single B for a stack of A
        ((2, 6, 3), (1, 6, 2)),
        ((4, 6), (3, 4, 2)),  # wide
    ],
)
def test_batches_broadcast(backend, a_shape, b_shape, rng):
    lean_jax(backend, a_shape == (3, 1, 5, 4))
    a = rng.standard_normal(a_shape)
    b = rng.standard_normal(b_shape)
    x = to_np(backend, pi.pinv_solve(backend.to(a), backend.to(b)))
    ref = np.linalg.pinv(a) @ b  # NumPy's matmul broadcasting
    assert x.shape == ref.shape
    close(x, ref, a)


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [
        ((5, 5), (5,)),  # 1-D: a vector
        ((3, 5, 5), (3, 5)),  # A.shape[:-1]: a stack of vectors (torch.linalg.solve)
        ((3, 5, 5), (5,)),  # a 1-D vector broadcast over the batch
        ((3, 5, 5), (5, 5)),  # ndim A - 1 but not A.shape[:-1]: one matrix, broadcast
        ((2, 1, 5, 5), (2, 4, 5)),  # not A.shape[:-1]: matrices (4, 5), a shape error
        ((5, 5), (5, 2)),
        ((2, 5, 5), (2, 5, 3)),
    ],
)
def test_vector_rule_is_torch_linalg_solve(backend, a_shape, b_shape, rng):
    """Square invertible A: pinv(A) B = solve(A, B), shape included, for every B shape
    torch.linalg.solve accepts (its vector rule)."""
    a = rng.standard_normal(a_shape) + 5 * np.eye(a_shape[-1])
    b = rng.standard_normal(b_shape)
    try:
        ref = torch.linalg.solve(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    except RuntimeError:
        with pytest.raises(ValueError, match=r"expects B of shape|do not broadcast"):
            pi.pinv_solve(backend.to(a), backend.to(b))
        return
    x = to_np(backend, pi.pinv_solve(backend.to(a), backend.to(b)))
    assert x.shape == ref.shape
    close(x, ref, a)


def test_rectangular_vector_rhs(backend, rng):
    a = rng.standard_normal((2, 6, 4))
    for b, ref_shape in [(rng.standard_normal(6), (2, 4)), (rng.standard_normal((2, 6)), (2, 4))]:
        x = to_np(backend, pi.pinv_solve(backend.to(a), backend.to(b)))
        ref = (np.linalg.pinv(a) @ b[..., None])[..., 0]
        assert x.shape == ref_shape == ref.shape
        close(x, ref, a)


def test_no_columns(backend, rng):
    """k = 0: an empty (..., n, 0) solution, and still A's rank."""
    a = np.stack([known_rank(rng, 5, 4, 2, np.float64), rng.standard_normal((5, 4))])
    res = pi.pinv_solve(backend.to(a), backend.to(np.zeros((2, 5, 0))), return_rank=True)
    assert to_np(backend, res.solution).shape == (2, 4, 0)
    ref = torch.linalg.matrix_rank(torch.from_numpy(a)).numpy()
    np.testing.assert_array_equal(to_np(backend, res.rank), ref)
    np.testing.assert_array_equal(to_np(backend, res.rank), [2, 4])


@pytest.mark.parametrize(
    ("a_shape", "b_shape"),
    [((0, 4), (0, 2)), ((5, 0), (5, 2)), ((0, 0), (0, 3)), ((0, 5, 4), (0, 5, 2)),
     ((2, 0, 3), (2, 0)), ((0, 5, 4), (5, 2))],
)  # fmt: skip
def test_empty(backend, a_shape, b_shape):
    a, b = np.ones(a_shape), np.ones(b_shape)
    res = pi.pinv_solve(backend.to(a), backend.to(b), return_rank=True)
    x = to_np(backend, res.solution)
    ref = torch.linalg.pinv(torch.from_numpy(a))
    vector = b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])
    tb = torch.from_numpy(b)
    ref = (ref @ tb.unsqueeze(-1)).squeeze(-1) if vector else ref @ tb
    assert x.shape == tuple(ref.shape)
    np.testing.assert_array_equal(x, np.zeros(x.shape))
    np.testing.assert_array_equal(to_np(backend, res.rank), np.zeros(a_shape[:-2], dtype=int))


# --------------------------------------------------------------- dtypes


def convert(backend, a):
    """``backend.to`` for any dtype (MLX's converter knows three)."""
    if backend.name == "mlx" and a.dtype == np.float16:
        import mlx.core as mx

        return mx.array(a)
    if backend.name == "array_api_strict" and a.dtype == np.float16:
        pytest.skip("array_api_strict has no float16")
    return backend.to(a)


def test_float16_promotion(backend, rng):
    """float16 is computed in float32 with float16's eps in the default rtol."""
    a = rng.standard_normal((2, 6, 4)).astype(np.float16)
    b = rng.standard_normal((2, 6, 2)).astype(np.float16)
    res = pi.pinv_solve(convert(backend, a), convert(backend, b), return_rank=True)
    x = to_np(backend, res.solution)
    assert x.dtype == np.float16
    rtol = 6 * float(np.finfo(np.float16).eps)
    ref = torch.linalg.pinv(torch.from_numpy(a.astype(np.float32)), rtol=rtol).double()
    ref = (ref @ torch.from_numpy(b.astype(np.float64))).numpy()
    close(x, ref, a.astype(np.float32), dtype=np.float16, factor=10)
    # the float16 eps cuts a ratio 1e-3 that float32's keeps
    d = np.diag([1.0, 1e-3]).astype(np.float16)
    one = np.ones((2, 1), dtype=np.float16)
    assert pi.pinv_solve(convert(backend, d), convert(backend, one), return_rank=True).rank == 1
    d32 = convert(backend, d.astype(np.float32))
    assert pi.pinv_solve(d32, convert(backend, one.astype(np.float32)), return_rank=True).rank == 2


@pytest.mark.parametrize(
    ("a_dtype", "b_dtype", "result"),
    [
        (np.float32, np.float64, np.float64),
        (np.float64, np.float32, np.float64),
        (np.float32, np.complex64, np.complex64),
        (np.float16, np.float32, np.float32),
        (np.complex64, np.float64, np.complex128),
    ],
)
def test_mixed_dtypes_promote(backend, a_dtype, b_dtype, result, rng):
    for d in (a_dtype, b_dtype, result):
        if d != np.float16:
            backend.check(d)
    a = randn(rng, (2, 6, 4), a_dtype)
    b = randn(rng, (2, 6, 3), b_dtype)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    assert torch.promote_types(ta.dtype, tb.dtype) == torch.from_numpy(np.zeros(1, result)).dtype
    res = pi.pinv_solve(convert(backend, a), convert(backend, b), return_rank=True)
    x = to_np(backend, res.solution)
    assert x.dtype == result
    # computed in the promoted dtype on A's exact data; the rank decision is A's (its eps)
    np.testing.assert_array_equal(to_np(backend, res.rank), [4, 4])
    w = wide(result)
    ref = np.linalg.pinv(a.astype(w)) @ b.astype(w)
    close(x, ref, a.astype(w), dtype=result)


# --------------------------------------------------------------- Hermitian, methods


@pytest.mark.parametrize("dtype", [np.float64, np.complex64])
def test_hermitian_reads_lower_triangle_only(backend, dtype, rng):
    backend.check(dtype)
    h = np.stack([hermitian(rng, 5, dtype) for _ in range(2)])
    raw = np.tril(h) + np.triu(np.full(h.shape, np.nan, dtype=dtype), 1)
    b = randn(rng, (2, 5, 3), dtype)
    res = pi.pinv_solve(backend.to(raw), backend.to(b), hermitian=True, return_rank=True)
    x = to_np(backend, res.solution)
    ref = torch.linalg.pinv(torch.from_numpy(h), hermitian=True) @ torch.from_numpy(b)
    close(x, ref.numpy(), h)
    np.testing.assert_array_equal(to_np(backend, res.rank), [5, 5])
    assert res.method in ("eigh", "jacobi", "cholesky_or_eigh", "batched")


METHODS = ["auto", "svd", "jacobi", "batched", "qr", "randomized"]


@pytest.mark.parametrize("method", METHODS)
def test_every_method(backend, method, rng):
    lean_jax(backend, method in ("auto", "qr"))  # portable: the SVD whatever the name
    a = rng.standard_normal((3, 7, 5))
    b = rng.standard_normal((3, 7, 2))
    res = pi.pinv_solve(backend.to(a), backend.to(b), method=method, return_rank=True)
    close(to_np(backend, res.solution), np.linalg.pinv(a) @ b, a)
    p = pi.pinv(backend.to(a), method=method, return_rank=True)
    np.testing.assert_array_equal(to_np(backend, res.rank), to_np(backend, p.rank))
    assert res.method == p.method
    if method != "auto" and backend.name in ("numpy", "torch", "mlx", "dask"):
        assert res.method == method  # NumPy-backed: the method named is the one that ran


@pytest.mark.parametrize("method", [*METHODS[1:3], "eigh", "auto"])
def test_every_method_hermitian_rank_deficient(backend, method, rng):
    lean_jax(backend, method == "eigh")
    c = rng.standard_normal((6, 2))
    h = np.stack([c @ c.T, -(c @ c.T)])  # rank 2, semidefinite of both signs
    b = rng.standard_normal((2, 6, 3))
    res = pi.pinv_solve(
        backend.to(h), backend.to(b), hermitian=True, method=method, return_rank=True
    )
    close(to_np(backend, res.solution), ref_solve(h, b, hermitian=True), h)
    np.testing.assert_array_equal(to_np(backend, res.rank), [2, 2])
    p = pi.pinv(backend.to(h), hermitian=True, method=method, return_rank=True)
    np.testing.assert_array_equal(to_np(backend, res.rank), to_np(backend, p.rank))


def test_method_errors(rng):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    with pytest.raises(ValueError, match=r"unknown method 'lu'; valid methods are auto, svd"):
        pi.pinv_solve(a, b, method="lu")
    with pytest.raises(ValueError, match=r'method="eigh" needs hermitian=True'):
        pi.pinv_solve(a, b, method="eigh")
    with pytest.raises(
        ValueError,
        match=r"method=\"qr\": matrix 0 of the batch cannot be certified to have full rank 3",
    ):
        pi.pinv_solve(np.ones((4, 3)), b, method="qr")


def test_return_rank_single_matrix_is_int(backend, rng):
    a = known_rank(rng, 5, 4, 3, np.float64)
    res = pi.pinv_solve(backend.to(a), backend.to(rng.standard_normal(5)), return_rank=True)
    assert isinstance(res.rank, int) and res.rank == 3
    assert res.rank == pi.pinv(backend.to(a), return_rank=True).rank
    assert res.rank == int(np.linalg.matrix_rank(a))
    assert "SolveResult(solution=" in repr(res) and "method=" in repr(res)


# --------------------------------------------------------------- tolerances


SPECTRUM = np.array([5.0, 2.0, 1.0, 1e-2, 1e-5, 1e-9])


@pytest.mark.parametrize(
    ("kwargs", "args"),
    [
        ({}, ()),
        ({"atol": 0.05}, ()),
        ({"rtol": 1e-3}, ()),
        ({}, (1e-3,)),  # rcond, positional
        ({"atol": 1e-3, "rtol": 1e-1}, ()),  # tol = max(atol, rtol * smax)
        ({"atol": np.array([0.0, 0.5])}, ()),  # per matrix; rtol default only for 0
        ({"rtol": np.array([1e-6, 1e-1])}, ()),
        ({"atol": 0.0, "rtol": 0.0}, ()),
    ],
)
def test_tolerances_are_pinvs(backend, kwargs, args, rng):
    a = np.stack([with_singular_values(rng, 8, 6, SPECTRUM, np.float64) for _ in range(2)])
    b = rng.standard_normal((2, 8, 3))
    res = pi.pinv_solve(backend.to(a), backend.to(b), *args, return_rank=True, **kwargs)
    x = to_np(backend, res.solution)
    p = pi.pinv(backend.to(a), *args, return_rank=True, **kwargs)
    np.testing.assert_array_equal(to_np(backend, res.rank), to_np(backend, p.rank))
    tkw = dict(kwargs)
    if args:
        tkw["rtol"] = args[0]
    tkw = {k: torch.as_tensor(v) for k, v in tkw.items()}
    ref = torch.linalg.pinv(torch.from_numpy(a), **tkw) @ torch.from_numpy(b)
    rank = ref_rank = torch.linalg.matrix_rank(torch.from_numpy(a), **tkw).numpy()
    np.testing.assert_array_equal(to_np(backend, res.rank), ref_rank)
    # the error scale is the condition number of the kept part: smax / smallest kept
    kept_kappa = SPECTRUM[0] / SPECTRUM[rank - 1]
    err = np.linalg.norm(x - ref.numpy(), axis=(-2, -1)) / np.linalg.norm(
        ref.numpy(), axis=(-2, -1)
    )
    assert np.all(err <= 100 * 8 * eps(np.float64) * kept_kappa), err
    np.testing.assert_allclose(x, to_np(backend, p.pinv) @ b, rtol=1e-6, atol=1e-9 * abs(x).max())


def test_tolerance_errors(rng):
    a, b = rng.standard_normal((2, 4, 3)), rng.standard_normal((2, 4, 1))
    with pytest.raises(TypeError, match="both rcond and rtol"):
        pi.pinv_solve(a, b, 1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="atol must be >= 0"):
        pi.pinv_solve(a, b, atol=-1.0)
    with pytest.raises(ValueError, match="rcond must not be NaN"):
        pi.pinv_solve(a, b, np.nan)
    with pytest.raises(ValueError, match="rtol must be real"):
        pi.pinv_solve(a, b, rtol=1j)
    with pytest.raises(ValueError, match="may not enlarge the result's shape"):
        pi.pinv_solve(a, b, atol=np.zeros((3, 2)))


def test_tolerances_follow_broadcast_batch(backend, rng):
    """An atol of A's batch shape applies to each A, whatever B broadcasts it to."""
    a = np.stack([with_singular_values(rng, 6, 4, np.array([3, 1, 0.1, 1e-3]), np.float64)] * 2)
    a = a[:, None]  # (2, 1, 6, 4)
    b = rng.standard_normal((3, 6, 2))
    atol = np.array([[0.05], [0.5]])
    res = pi.pinv_solve(backend.to(a), backend.to(b), atol=atol, return_rank=True)
    np.testing.assert_array_equal(to_np(backend, res.rank), [[3, 3, 3], [2, 2, 2]])
    ref = torch.linalg.pinv(torch.from_numpy(a), atol=torch.from_numpy(atol)) @ torch.from_numpy(b)
    np.testing.assert_allclose(to_np(backend, res.solution), ref.numpy(), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------- non-finite input


def _raises(backend, match, fn):
    with pytest.raises(np.linalg.LinAlgError, match=match):
        out = fn()
        if backend.name == "dask":  # lazy: the error surfaces when computed
            out.compute()


@pytest.mark.parametrize("where", ["A", "B", "B-broadcast"])
def test_check_finite(backend, where, rng):
    a = rng.standard_normal((3, 5, 4))
    b = rng.standard_normal((3, 5, 2))
    if where == "A":
        a[1, 2, 3] = np.nan
        bad = (1,)
    elif where == "B":
        b[2, 0, 1] = np.inf
        bad = (2,)
    else:  # one B for a stack of A: its bad column makes every member bad
        b = b[:1]
        b[0, 4, 0] = np.nan
        bad = (0,)
    what = "A" if where == "A" else "B"  # the error names the array that is bad there
    msg = rf"^{what} contains NaN or Inf in the matrix at batch index \({bad[0]},\)"
    _raises(backend, msg, lambda: pi.pinv_solve(backend.to(a), backend.to(b)))
    res = pi.pinv_solve(backend.to(a), backend.to(b), check_finite=False, return_rank=True)
    x, rank = to_np(backend, res.solution), to_np(backend, res.rank)
    bad_mask = np.zeros(3, bool)
    bad_mask[list(bad) if where != "B-broadcast" else slice(None)] = True
    assert np.isnan(x[bad_mask]).all() and np.isfinite(x[~bad_mask]).all()
    np.testing.assert_array_equal(rank, np.where(bad_mask, 0, 4))
    good = ~bad_mask
    if good.any():
        close(x[good], np.linalg.pinv(a[good]) @ np.broadcast_to(b, (3, 5, 2))[good], a[good])


def test_check_finite_names_the_first_bad_index(rng):
    a = rng.standard_normal((2, 3, 5, 4))
    b = rng.standard_normal((2, 3, 5, 1))
    a[1, 2, 0, 0] = np.nan
    b[1, 0, 3, 0] = np.nan  # first in C order: (1, 0)
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(1, 0\)"):
        pi.pinv_solve(a, b)
    with pytest.raises(np.linalg.LinAlgError, match=r"^A contains NaN or Inf \(pass"):
        pi.pinv_solve(a[1, 2], b[0, 0])  # a single matrix: no index


def test_check_finite_hermitian_ignores_unread_triangle(backend, rng):
    h = np.stack([hermitian(rng, 4, np.float64) for _ in range(2)])
    raw = h.copy()
    raw[0, 0, 3] = np.inf  # strict upper triangle: not read
    raw[1, 3, 0] = np.nan  # lower: read
    b = rng.standard_normal((2, 4, 2))
    _raises(
        backend,
        r"batch index \(1,\)",
        lambda: pi.pinv_solve(backend.to(raw), backend.to(b), hermitian=True),
    )
    x = to_np(
        backend, pi.pinv_solve(backend.to(raw), backend.to(b), hermitian=True, check_finite=False)
    )
    assert np.isnan(x[1]).all()
    close(x[0], np.linalg.pinv(h[0], hermitian=True) @ b[0], h[0])


# --------------------------------------------------------------- errors


def test_errors(backend, rng):
    a = backend.to(rng.standard_normal((3, 5, 4)))
    with pytest.raises(ValueError, match=r"expects B of shape \(\.\.\., 5\) or \(\.\.\., 5, k\)"):
        pi.pinv_solve(a, backend.to(rng.standard_normal((3, 4, 2))))
    with pytest.raises(ValueError, match=r"got shape \(4,\)"):
        pi.pinv_solve(a, backend.to(rng.standard_normal(4)))
    with pytest.raises(ValueError, match=r"batch shapes of A \(3,\) and B \(2,\) do not broadcast"):
        pi.pinv_solve(a, backend.to(rng.standard_normal((2, 5, 2))))
    with pytest.raises(ValueError, match=r"expects an array of shape \(\.\.\., m, n\), got shape"):
        pi.pinv_solve(backend.to(rng.standard_normal(5)), backend.to(rng.standard_normal(5)))
    other = torch.ones(5, 2, dtype=torch.float64) if backend.name != "torch" else np.ones((5, 2))
    with pytest.raises(ValueError, match=r"expects B of the same library as A"):
        pi.pinv_solve(a, other)
    with pytest.raises(TypeError, match="hermitian must be True or False"):
        pi.pinv_solve(a, backend.to(rng.standard_normal((5, 2))), hermitian="yes")


def test_array_likes_with_numpy(rng):
    a, b = rng.standard_normal((4, 3)), rng.standard_normal(4)
    x = pi.pinv_solve(a.tolist(), b.tolist())
    assert isinstance(x, np.ndarray)
    close(x, np.linalg.lstsq(a, b, rcond=None)[0], a)  # full rank: lstsq's solution too
    with pytest.raises(ValueError, match="numeric array"):
        pi.pinv_solve(a, ["a", "b", "c", "d"])


# --------------------------------------------------------------- torch paths


def test_torch_cpu_without_grad_takes_numpy_path(monkeypatch, rng):
    calls = []
    original = _engine.solve_numpy

    def spy(*args, **kwargs):
        calls.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(_engine, "solve_numpy", spy)
    a = randn(rng, (3, 6, 4), np.complex128)
    b = randn(rng, (3, 6, 2), np.complex128)
    t = pi.pinv_solve(torch.from_numpy(a), torch.from_numpy(b), return_rank=True)
    assert len(calls) == 1 and isinstance(t.solution, torch.Tensor)
    assert np.shares_memory(calls[0], a)  # zero copy
    n = pi.pinv_solve(a, b, return_rank=True)
    assert len(calls) == 2
    np.testing.assert_array_equal(t.solution.numpy(), n.solution)  # bit for bit
    np.testing.assert_array_equal(t.rank.numpy(), n.rank)
    assert t.method == n.method
    g = pi.pinv_solve(torch.from_numpy(a).requires_grad_(), torch.from_numpy(b))
    assert len(calls) == 2 and g.grad_fn is not None  # the differentiable path
    torch.testing.assert_close(g.detach(), t.solution)


def _low_rank(rng, m, n, r, dtype):
    return torch.from_numpy(known_rank(rng, m, n, r, dtype))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_torch_gradcheck(dtype, rng):
    a = torch.from_numpy(randn(rng, (2, 5, 3), dtype)).requires_grad_()
    b = torch.from_numpy(randn(rng, (2, 5, 2), dtype)).requires_grad_()
    assert torch.autograd.gradcheck(pi.pinv_solve, (a, b), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(pi.pinv_solve, (a, b))
    w = torch.from_numpy(randn(rng, (3, 4), dtype)).requires_grad_()  # wide, vector B
    v = torch.from_numpy(randn(rng, (3,), dtype)).requires_grad_()
    assert torch.autograd.gradcheck(pi.pinv_solve, (w, v))
    assert torch.autograd.gradgradcheck(pi.pinv_solve, (w, v))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_torch_gradcheck_fixed_rank(dtype, rng):
    """A = B C^H of rank 2: atol keeps the rank under gradcheck's perturbations."""
    a = _low_rank(rng, 5, 4, 2, dtype).requires_grad_()
    b = torch.from_numpy(randn(rng, (5, 2), dtype)).requires_grad_()

    def f(x, y):
        return pi.pinv_solve(x, y, atol=1e-4)

    assert torch.autograd.gradcheck(f, (a, b))
    assert torch.autograd.gradgradcheck(f, (a, b))


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_torch_gradient_matches_torch_linalg_pinv(dtype, rng):
    for a in (randn(rng, (2, 6, 4), dtype), known_rank(rng, 6, 5, 3, dtype)):
        a = torch.from_numpy(a).requires_grad_()
        b = torch.from_numpy(randn(rng, (*a.shape[:-1], 3), dtype)).requires_grad_()
        w = torch.from_numpy(randn(rng, (*a.shape[:-2], a.shape[-1], 3), dtype))
        ours = torch.autograd.grad((pi.pinv_solve(a, b, atol=1e-6) * w).real.sum(), (a, b))
        theirs = torch.linalg.pinv(a, atol=1e-6) @ b
        theirs = torch.autograd.grad((theirs * w).real.sum(), (a, b))
        for o, t in zip(ours, theirs, strict=True):
            torch.testing.assert_close(o, t)


def test_torch_hermitian_gradient_on_read_triangle(rng):
    raw = torch.from_numpy(rng.standard_normal((4, 4))).requires_grad_()
    b = torch.from_numpy(rng.standard_normal((4, 2)))
    (g,) = torch.autograd.grad(pi.pinv_solve(raw, b, hermitian=True).sum(), raw)
    assert torch.count_nonzero(torch.triu(g, 1)) == 0
    h = torch.tril(raw) + torch.tril(raw, -1).mT
    (ref,) = torch.autograd.grad((torch.linalg.pinv(h) @ b).sum(), raw)
    torch.testing.assert_close(g, ref)


def test_torch_func(rng):
    a = torch.from_numpy(rng.standard_normal((3, 5, 4)))
    b = torch.from_numpy(rng.standard_normal((3, 5, 2)))
    torch.testing.assert_close(torch.func.vmap(pi.pinv_solve)(a, b), torch.linalg.pinv(a) @ b)
    for argnums in (0, 1):
        g = torch.func.grad(lambda x, y: pi.pinv_solve(x, y).square().sum(), argnums)(a, b)
        r = torch.func.grad(lambda x, y: (torch.linalg.pinv(x) @ y).square().sum(), argnums)(a, b)
        torch.testing.assert_close(g, r)
    jf = torch.func.jacfwd(pi.pinv_solve)(a[0], b[0])
    torch.testing.assert_close(
        jf, torch.func.jacrev(lambda x, y: torch.linalg.pinv(x) @ y)(a[0], b[0])
    )
    bad = a.clone()
    bad[1, 0, 0] = float("nan")
    x = torch.func.vmap(pi.pinv_solve)(bad, b)  # values cannot raise under vmap: NaN
    assert torch.isnan(x[1]).all() and torch.isfinite(x[[0, 2]]).all()


def test_torch_grad_check_finite_false_keeps_good_gradients(rng):
    a = torch.from_numpy(rng.standard_normal((3, 5, 4))).requires_grad_()
    b = torch.from_numpy(rng.standard_normal((3, 5, 2)))
    b[1, 0, 0] = float("nan")
    x = pi.pinv_solve(a, b, check_finite=False)
    assert torch.isnan(x[1]).all()
    (g,) = torch.autograd.grad(x[[0, 2]].sum(), a)
    assert torch.isfinite(g).all() and not g[1].any()
    (ref,) = torch.autograd.grad((torch.linalg.pinv(a[[0, 2]]) @ b[[0, 2]]).sum(), a)
    torch.testing.assert_close(g, ref)


# --------------------------------------------------------------- JAX


def test_jax_check_grads_jit_vmap(rng):
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    from jax.test_util import check_grads

    with jax.enable_x64(True):
        a = jnp.asarray(rng.standard_normal((5, 3)))
        b = jnp.asarray(rng.standard_normal((5, 2)))

        def f(x, y):  # the numerical side of check_grads hands NumPy arrays
            return pi.pinv_solve(jnp.asarray(x), jnp.asarray(y))

        check_grads(f, (a, b), order=2, modes=("fwd", "rev"))
        c = jnp.asarray(randn(rng, (3, 4), np.complex128))
        v = jnp.asarray(randn(rng, (3,), np.complex128))
        check_grads(f, (c, v), order=1, modes=("rev",))
        lr = jnp.asarray(known_rank(rng, 5, 4, 2, np.float64))
        # atol far above the perturbations' noise singular values (check_grads: eps 1e-4)
        check_grads(lambda x: pi.pinv_solve(jnp.asarray(x), b, atol=1e-2), (lr,), 1, ("rev",))
        # jit and vmap against NumPy
        stack_a = rng.standard_normal((3, 5, 4))
        stack_b = rng.standard_normal((3, 5, 2))
        ref = np.linalg.pinv(stack_a) @ stack_b
        ja, jb = jnp.asarray(stack_a), jnp.asarray(stack_b)
        close(np.asarray(jax.jit(pi.pinv_solve)(ja, jb)), ref, stack_a)
        close(np.asarray(jax.vmap(pi.pinv_solve)(ja, jb)), ref, stack_a)
        rank = jax.jit(lambda x, y: pi.pinv_solve(x, y, return_rank=True).rank)(ja, jb)
        np.testing.assert_array_equal(np.asarray(rank), [4, 4, 4])
        # a traced rtol under jit, as jnp.linalg.pinv allows
        s = with_singular_values(rng, 6, 4, np.array([1.0, 0.5, 1e-2, 1e-4]), np.float64)
        sb = rng.standard_normal((6, 1))
        f = jax.jit(lambda x, r: pi.pinv_solve(x, jnp.asarray(sb), rtol=r, return_rank=True))
        for r, k in [(1e-3, 3), (1e-1, 2)]:
            x, got = f(jnp.asarray(s), r)
            assert int(got) == k
            ref = jnp.linalg.pinv(jnp.asarray(s), rtol=r) @ jnp.asarray(sb)
            np.testing.assert_allclose(np.asarray(x), np.asarray(ref), rtol=1e-10, atol=1e-12)
        g = jax.grad(lambda x: pi.pinv_solve(x, jb[0]).sum())(ja[0])
        r = jax.grad(lambda x: (jnp.linalg.pinv(x) @ jb[0]).sum())(ja[0])
        np.testing.assert_allclose(np.asarray(g), np.asarray(r), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------- MLX


def test_mlx_grad_matches_finite_differences(rng):
    mx = pytest.importorskip("mlx.core")
    a = rng.standard_normal((2, 5, 3)).astype(np.float32)
    b = rng.standard_normal((2, 5, 2)).astype(np.float32)
    w = mx.array(rng.standard_normal((2, 3, 2)).astype(np.float32))

    def f(x, y):
        return (pi.pinv_solve(x, y) * w).sum()

    ga, gb = mx.grad(f, argnums=(0, 1))(mx.array(a), mx.array(b))
    # central differences of the same function in float64 (NumPy's pinv): float32
    # differences with h = 1e-2 carried an O(h^2) error that exceeded 2% on an
    # ill-conditioned draw about once in 12 seeds
    w64 = np.array(w).astype(np.float64)

    def f64(x, y):
        return float((np.linalg.pinv(x) @ y * w64).sum())

    h = 1e-6
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    for arg, g in ((0, ga), (1, gb)):
        base = (a64, b64)[arg]
        d = rng.standard_normal(base.shape)
        args_p, args_m = [a64, b64], [a64, b64]
        args_p[arg], args_m[arg] = base + h * d, base - h * d
        fd = (f64(*args_p) - f64(*args_m)) / (2 * h)
        exact = float((np.array(g).astype(np.float64) * d).sum())
        assert abs(exact - fd) <= 2e-2 * max(abs(fd), 1.0), (exact, fd)
    # and the float64 value of the derivative through torch (a live reference)
    ta = torch.from_numpy(a.astype(np.float64)).requires_grad_()
    tw = torch.from_numpy(np.array(w).astype(np.float64))
    (tg,) = torch.autograd.grad(
        ((torch.linalg.pinv(ta) @ torch.from_numpy(b.astype(np.float64))) * tw).sum(), ta
    )
    np.testing.assert_allclose(np.array(ga), tg.numpy(), rtol=1e-3, atol=1e-4)


# keep the module's names in use: REAL/COMPLEX document the dtype groups the table covers
assert set(DTYPES) == set(REAL) | set(COMPLEX)
