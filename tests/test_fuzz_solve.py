"""The fuzz campaign of ``pinv_solve``, ``damped_pinv`` and ``damped_pinv_solve``.

The matrices are ``test_fuzz``'s (every backend, dtype, byte order, layout, extreme
scale, spectrum, Hermitian, NaN/Inf members, every tolerance keyword and method); each
case adds a right-hand side ``B`` (a vector, ``k`` = 0, 1 or 3 columns, its batch equal
to ``A``'s or broadcast from fewer or unit dimensions, sometimes with NaN/Inf members)
and a damping (0, tiny, comparable to the singular values, huge, or an array over the
batch). Checked against float64 references built from the SVD of the matrices read:

* library, dtype (``A``'s and ``B``'s promoted) and shape, a vector gives a vector;
* ``pinv_solve``: the rank within the range SPEC's threshold allows (``return_rank``),
  the solution within ``200 p eps kappa (1 + kappa)`` of ``pinv(A) @ B`` at a clear rank;
* ``damped_pinv`` (and its solve form): within ``8 p eps kappa_lambda`` (relative,
  Frobenius) of ``V diag(sigma / (sigma^2 + lambda^2)) U^H``, ``kappa_lambda`` the
  problem's condition number (``damped_pinv``'s docstring);
* NaN/Inf in ``A`` or ``B``: ``LinAlgError`` naming the first bad batch index, or (with
  ``check_finite=False``) all-NaN results exactly for those members;
* no other exception, no ``RuntimeWarning``, no hang.

Profiles as ``test_fuzz`` (``PI_FUZZ_PROFILE=long``: 30,000 examples here;
``PI_FUZZ_EXAMPLES`` overrides).
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest
from fuzz_strategies import Built, cases, eps_of, is_complex, pow2, reference, value_range
from hypothesis import assume, given, note
from hypothesis import strategies as st
from test_fuzz import (
    _conv,
    fits,
    fuzz_seed,
    is_library_array,
    margin_for,
    materialize,
    to_backend,
    to_numpy,
    watchdog,
)

import pseudoinverse as pi

_TOTALS = {"ci": 600, "long": 30_000}
TOTAL = int(os.environ.get("PI_FUZZ_EXAMPLES", _TOTALS[os.environ.get("PI_FUZZ_PROFILE", "ci")]))


def _settings(share: float):
    from hypothesis import HealthCheck, settings

    return settings(
        max_examples=max(1, round(TOTAL * share)),
        deadline=None,
        database=None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=True,
    )


@st.composite
def problems(draw, nonfinite: bool = False):
    """A case of ``test_fuzz`` (no ``out=``, ``pinverse`` or jit) with a right-hand side."""
    case = draw(cases(nonfinite=nonfinite))
    assume(case.call != "pinverse" and not case.jit and case.out == "none")
    assume(case.layout != "matrix")  # np.matrix is pinv's (NumPy's) convention only
    k = draw(st.sampled_from(["vector", 0, 1, 1, 3]))
    b_batch = case.batch
    if case.batch and draw(st.booleans()):  # broadcast: fewer or unit batch dimensions
        drop = draw(st.integers(0, len(case.batch)))
        b_batch = tuple(1 if draw(st.booleans()) else d for d in case.batch[drop:])
    if k == "vector":
        b_batch = case.batch  # torch.linalg.solve's rule needs B.shape == A.shape[:-1]
    b_nan = draw(st.booleans()) if nonfinite else False
    damp = draw(st.sampled_from(["zero", "tiny", "same", "big", "array"]))
    return case, k, b_batch, b_nan, damp, draw(st.integers(0, 2**32 - 1))


def _rhs(case, k, b_batch, b_nan, seed):
    rng = np.random.default_rng(seed)
    shape = (*b_batch, case.m) if k == "vector" else (*b_batch, case.m, k)
    b = rng.standard_normal(shape)
    if is_complex(case.dtype):
        b = b + 1j * rng.standard_normal(shape)
    if case.backend == "mlx" and b.dtype == np.complex128:
        b = b.astype(np.complex64)
    if case.dtype in ("float32", "complex64") and case.backend == "mlx":
        b = b.astype(np.float32 if b.dtype.kind == "f" else np.complex64)
    if b_nan and b.size:
        flat = b.reshape(-1)
        flat[int(rng.integers(flat.size))] = rng.choice([np.nan, np.inf, -np.inf])
    return b


def _bad_b(b: np.ndarray, k, batch) -> np.ndarray:
    cols = b[..., None] if k == "vector" else b
    if cols.size == 0:
        return np.zeros(batch, dtype=bool)
    bad = ~np.isfinite(cols).all(axis=(-2, -1))
    return np.broadcast_to(bad, batch)


def _damping(case, kind, scale, rng):
    if kind == "zero":
        return 0.0
    if kind == "tiny":
        return float(scale * 1e-9)
    if kind == "same":
        return float(scale * 0.1)
    if kind == "big":
        return float(scale * 1e3)
    return np.abs(rng.standard_normal(case.batch)) * scale  # one per member


def _expect_error(c, bad_any: np.ndarray, fn):
    first = tuple(int(i) for i in np.argwhere(bad_any)[0]) if c.batch else ()
    with pytest.raises(ValueError) as info:
        res = fn()
        if c.backend == "dask":
            materialize(res)
    assert isinstance(info.value, np.linalg.LinAlgError), type(info.value)
    msg = str(info.value)
    assert "NaN" in msg or "Inf" in msg, msg
    if c.batch:
        named = str(first) in msg or (
            len(first) == 1 and re.search(rf"(?<![\d.]){first[0]}(?![\d.])", msg)
        )
        assert named, f"first bad member is {first}, message: {msg}"


def _solution_shape(c, k):
    return (*c.batch, c.n) if k == "vector" else (*c.batch, c.n, k)


def _check_library(c, x, want_shape):
    assert is_library_array(x, c.backend), f"{c.backend} input gave a {type(x).__name__}"
    assert tuple(x.shape) == want_shape, (tuple(x.shape), want_shape)


def _svd_reference(b: Built):
    """``(u, s, vh, e)`` of the read matrices scaled by ``2**-e`` (entries in [1, 2))."""
    c = b.case
    size, m, n = math.prod(c.batch), c.m, c.n
    a = b.read.reshape(size, m, n)
    finite = np.isfinite(a).all(axis=(-2, -1)) if a.size else np.ones(size, dtype=bool)
    a = np.where(finite[:, None, None], a, 0)
    if c.backend == "jax":  # XLA on the CPU treats subnormal input as zero (DAZ)
        a = np.where(np.abs(a) < value_range(c.dtype)[1], 0, a)
    amax = np.abs(a).max(axis=(-2, -1)) if a.size else np.zeros(size)
    e = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1))), 0).astype(np.int64)
    u, s, vh = np.linalg.svd(pow2(a, -e[:, None, None]), full_matrices=False)
    return u, s, vh, e


def run(problem, op: str) -> None:
    case, k, b_batch, b_nan, damp, seed = problem
    b = case.build()
    ref = reference(b, margin_for(case))
    assume(fits(b, ref))
    rng = np.random.default_rng(seed)
    rhs = _rhs(case, k, b_batch, b_nan, seed) if op != "damped" else None
    a_shape = (*case.batch, case.m, case.n)
    if rhs is not None and rhs.ndim == len(a_shape) - 1 and rhs.shape == a_shape[:-1]:
        k = "vector"  # torch.linalg.solve's rule, documented in pinv_solve
    inp = to_backend(b)
    b_in = None
    if rhs is not None:
        b_in = rhs if case.backend == "numpy" else _conv(case.backend, rhs)
    args, kwargs = b.tolerance_kwargs()
    size = math.prod(case.batch)
    bad_a = b.bad if b.bad is not None else np.zeros(case.batch, dtype=bool)
    bad_b = _bad_b(rhs, k, case.batch) if rhs is not None else np.zeros(case.batch, bool)
    if op == "solve":
        extra = {kk: v for kk, v in kwargs.items() if kk != "hermitian"}
        herm = kwargs.get("hermitian", False)
        if case.call == "positional3":  # pinv_solve has no positional hermitian
            args, herm = args[:1], case.hermitian

        def call():
            return pi.pinv_solve(inp, b_in, *args, hermitian=herm, **extra)
    else:
        lam = _damping(case, damp, b.scale, rng)
        lam_in = lam if not isinstance(lam, np.ndarray) else _conv_damping(case, lam)
        check = kwargs.get("check_finite", True)

        def call():
            if op == "damped":
                return pi.damped_pinv(inp, lam_in, hermitian=case.hermitian, check_finite=check)
            return pi.damped_pinv_solve(
                inp, lam_in, b_in, hermitian=case.hermitian, check_finite=check
            )

    check_finite = kwargs.get("check_finite", True)
    bad_any = bad_a | bad_b
    if math.prod((*case.batch, case.m, case.n)) == 0:  # an empty problem: nothing is
        bad_any = np.zeros(case.batch, dtype=bool)  # computed or checked (documented)
    with watchdog():
        if bad_any.any() and check_finite:
            _expect_error(case, bad_any, call)
            return
        try:
            res = lazy = call()
            if case.backend == "dask":
                res = materialize(lazy)
        except ValueError:
            if op == "solve" and case.method == "qr":
                return  # "qr" may refuse what it cannot certify (test_fuzz checks when)
            raise
    want_rank = op == "solve" and case.return_rank
    x, rank = (res.solution, res.rank) if want_rank else (res, None)
    lx = lazy.solution if want_rank else lazy
    shape = (*case.batch, case.n, case.m) if op == "damped" else _solution_shape(case, k)
    _check_library(case, lx, shape)
    xn = to_numpy(x, case.backend).astype(np.complex128)
    cols = case.m if op == "damped" else (1 if k == "vector" else k)
    xs = xn.reshape(size, case.n, cols)
    bflat = None
    if rhs is not None:
        bb = rhs[..., None] if k == "vector" else rhs
        bflat = np.broadcast_to(bb, (*case.batch, case.m, cols)).reshape(size, case.m, cols)
    eps = eps_of(case.backend, case.dtype)
    p = max(case.m, case.n)
    if op != "solve" and size and min(case.m, case.n):
        u, s, vh, e = _svd_reference(b)
    lam_flat = None if op == "solve" else np.broadcast_to(lam, case.batch).reshape(size)
    for i in range(size):
        if bad_any.reshape(size)[i]:
            assert np.isnan(xs[i]).all(), f"member {i} holds NaN/Inf but got {xs[i]}"
            continue
        if min(case.m, case.n) == 0 or cols == 0:
            continue
        # damping 0 is pinv(A, atol=0, rtol=0): a numerically zero singular value is
        # then inverted as computed (rounding noise), which may overflow
        lam_i = 0.0 if op == "solve" else float(lam_flat[i])
        ill_posed = op != "solve" and lam_i == 0 and not s[i, -1] > p * eps * s[i, 0]
        # the largest possible entry, 1 / (2 lambda) at sigma = lambda, beyond the result
        # dtype: rounding noise in a zero sigma may land there (as for pinv's fits())
        big = value_range(case.dtype)[0]
        ill_posed |= op != "solve" and lam_i > 0 and 1 / (2 * lam_i) > big / 1e3
        if not ill_posed:
            assert np.isfinite(xs[i]).all(), f"member {i}: non-finite result"
        else:
            continue
        if op == "solve":
            _check_solve(case, ref, i, xs[i], bflat[i], rank, eps, p)
        else:
            _check_damped(
                b,
                i,
                xs[i],
                None if bflat is None else bflat[i],
                u[i],
                s[i],
                vh[i],
                e[i],
                float(lam_flat[i]),
                eps,
                p,
            )


def _conv_damping(case, lam: np.ndarray):
    if case.backend in ("numpy", "dask", "array_api_strict"):
        return lam
    if case.backend in ("torch", "torch-grad"):
        import torch

        return torch.from_numpy(lam)
    if case.backend == "jax":
        import jax.numpy as jnp

        return jnp.asarray(lam)
    import mlx.core as mx

    # float64 data with a float64 damping; an MLX float32 damping would round lambda
    wide = case.dtype == "float64"
    return mx.array(lam, dtype=mx.float64) if wide else mx.array(lam.astype(np.float32))


def _check_solve(case, ref, i, x, bi, rank, eps, p):
    lo, hi = int(ref.lo[i]), int(ref.hi[i])
    if rank is not None:
        r = int(np.asarray(to_numpy(rank, case.backend) if case.batch else rank).reshape(-1)[i])
        assert lo <= r <= hi, f"member {i}: rank {r}, want {lo}..{hi}"
    if lo != hi:
        return
    if lo == 0:
        assert not np.any(x), f"member {i}: every value is cut, solution {x}"
        return
    kappa = ref.kappa(i, lo)
    bound = 200 * p * eps * max(kappa, 1.0) * (1 + kappa)
    if bound >= 1:
        return
    # in the scaled space, clear of overflow: pinv(2**-e A) = 2**e pinv(A)
    x_sc, want = pow2(x, ref.e[i]), ref.x_sc[i] @ bi
    err = np.linalg.norm(x_sc - want) / (np.linalg.norm(ref.x_sc[i]) * np.linalg.norm(bi))
    note(f"member {i}: kappa {kappa:.3e}, error {err:.3e}, bound {bound:.3e}")
    assert err <= bound, f"member {i}: solve error {err:.3e} > {bound:.3e}"


def _check_damped(b, i, x, bi, u, s, vh, e, lam, eps, p):
    lam_sc = float(pow2(np.asarray(lam), -e))
    big = np.maximum(s, lam_sc)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        f = np.where(big > 0, s / (s * s + lam_sc * lam_sc), 0)
        f = np.where(np.isfinite(f), f, 0)
        xr_sc = (np.conj(vh.T) * f) @ np.conj(u.T)
        xnorm2 = float(np.max(f)) if f.size else 0.0
        if xnorm2 == 0:
            return
        if xnorm2 * 2.0 ** -float(e) > value_range(b.case.dtype)[0] / 1e3:
            return  # the result (nearly) overflows its dtype: not a property of the library
        smin = np.float64(s[-1])
        # the condition number of A -> X (damped_pinv's docstring), at least 1
        kappa = s[0] * (xnorm2 + 2 / ((smin * smin + lam_sc * lam_sc) * xnorm2))
    bound = 8 * p * eps * max(float(kappa), 1.0)
    if not np.isfinite(bound) or bound >= 0.5:
        return
    if np.abs(xr_sc).max() * 2.0 ** -float(e) < value_range(b.case.dtype)[1] * 1e3:
        return  # the result is (nearly) subnormal in its dtype: its precision is not ours
    x_sc = pow2(x, e)  # X(2**-e A, 2**-e lam) = 2**e X(A, lam)
    want = xr_sc if bi is None else xr_sc @ bi
    den = np.linalg.norm(xr_sc) * (1 if bi is None else np.linalg.norm(bi))
    err = np.linalg.norm(x_sc - want) / den
    note(f"member {i}: lambda {lam:.3e}, s {s}, kappa {kappa:.3e}, err {err:.3e}")
    assert err <= bound, f"member {i}: damped error {err:.3e} > {bound:.3e}"


@_settings(0.4)
@fuzz_seed("solve")
@given(problems())
def test_pinv_solve_fuzz(problem):
    run(problem, "solve")


@_settings(0.15)
@fuzz_seed("solve_nonfinite")
@given(problems(nonfinite=True))
def test_pinv_solve_nonfinite_fuzz(problem):
    run(problem, "solve")


@_settings(0.25)
@fuzz_seed("damped")
@given(problems())
def test_damped_fuzz(problem):
    run(problem, "damped")


@_settings(0.2)
@fuzz_seed("damped_solve")
@given(problems(nonfinite=True) | problems())
def test_damped_solve_fuzz(problem):
    run(problem, "damped_solve")
