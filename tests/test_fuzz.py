"""The property-based fuzz suite of ``pinv`` and ``pinverse`` (Hypothesis).

Every backend (numpy, torch with and without ``requires_grad``, jax, mlx, dask,
array_api_strict) x dtypes of both byte orders (float16, bfloat16, float32, float64,
complex64, complex128, long double, integers, bool) x layouts (C, Fortran, slices,
negative strides, transposed views, read-only, broadcast, ``np.matrix``, nested lists) x
values (Gaussian, ``B @ C^H`` of drawn rank, drawn spectra, a singular value placed at
the threshold, zeros, graded, sparse with subnormal and huge entries, scales 1e-300 to
1e300, Hermitian, NaN/Inf members) x every keyword, checked against a float64 oracle
(``fuzz_strategies.reference``). Properties:

* result library, type (``np.matrix`` in, ``np.matrix`` out), dtype and shape per SPEC;
  ``out=`` is written and returned; ``return_rank`` gives an int / an integer array;
* the input is unchanged;
* the rank lies in the range SPEC's threshold allows: exactly the reference count where
  no singular value is near the threshold;
* the four Penrose conditions (of the truncated matrix) within ``200 p eps kappa``, and
  the relative error against the reference within the same where the rank is clear;
  agreement with ``numpy.linalg.pinv`` / ``torch.linalg.pinv`` there;
* byte order and memory layout do not change the result (to an ulp or so);
* with an explicit method, a matrix gives the same result alone and in any stack;
* ``method="qr"`` may refuse only a matrix that is not clearly full rank;
* NaN/Inf: ``check_finite=True`` raises ``numpy.linalg.LinAlgError`` naming the first bad
  batch index; ``False``: all-NaN results (rank 0) exactly for the bad members (with
  ``hermitian=True`` only the lower triangle and the diagonal count);
* bad arguments raise ``ValueError``/``TypeError`` naming the argument, write nothing to
  ``out``, and never raise anything else; no ``RuntimeWarning`` from pseudoinverse
  (pyproject turns those into errors) and no hang (a watchdog dumps the stacks).

Profiles (``PI_FUZZ_PROFILE``; ``PI_FUZZ_EXAMPLES=<n>`` overrides the total count):

* ``ci`` (default): about 3,000 examples, part of the normal test run; stacks of matrices
  up to 8 x 8 take the shapes of ``fuzz_strategies.TINY_CI`` only (each other shape is
  another compiled kernel, seconds of numba's cold compile)::

      python -m pytest tests/test_fuzz.py -p no:cacheprovider

* ``long``: 100,000+ examples, for a maintainer before a release (about 30-40 minutes on
  one core)::

      PI_FUZZ_PROFILE=long OMP_NUM_THREADS=1 python -m pytest tests/test_fuzz.py -p no:cacheprovider

Runs are fresh (no example database) and seeded from ``PI_TEST_SEED`` (conftest prints
it): the same seed replays the same examples. A falsifying example prints a
:class:`fuzz_strategies.Case`, the reproducer: ``Case(...).build()`` makes its arrays.
"""

from __future__ import annotations

import contextlib
import faulthandler
import math
import os
import re
import zlib

import numpy as np
import pytest
from conftest import SEED
from fuzz_strategies import (
    FLOATS,
    Built,
    Case,
    backends,
    cases,
    eps_of,
    is_complex,
    missing_backends,
    penrose,
    pow2,
    reference,
    result_dtype,
    value_range,
    weighted_backends,
    work_eps,
)
from hypothesis import HealthCheck, assume, given, note, seed, settings
from hypothesis import strategies as st

import pseudoinverse as pi

# ---------------------------------------------------------------------------------------
# Profiles: examples per test are a share of the profile's total

PROFILE = os.environ.get("PI_FUZZ_PROFILE", "ci")
_TOTALS = {"ci": 3000, "long": 105_000}
if PROFILE not in _TOTALS:
    raise ValueError(f"PI_FUZZ_PROFILE must be one of {sorted(_TOTALS)}, got {PROFILE!r}")
TOTAL = int(os.environ.get("PI_FUZZ_EXAMPLES", _TOTALS[PROFILE]))
_SHARES = {  # of TOTAL; they sum to 1
    "main": 0.55,
    "nonfinite": 0.15,
    "arguments": 0.12,
    "stack": 0.12,
    "large": 0.02,
    "torch_grad": 0.04,
}
WATCHDOG_S = 300  # an example that runs this long is a hang: dump every stack, exit


def fuzz_settings(share: str):
    count = max(1, round(TOTAL * _SHARES[share]))
    return settings(
        max_examples=count,
        deadline=None,
        database=None,
        derandomize=False,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=True,
    )


def fuzz_seed(name: str):
    return seed(SEED ^ zlib.crc32(name.encode()))


if missing_backends():  # noted in the run's output: those backends are not fuzzed
    print(f"test_fuzz: not installed, not fuzzed: {', '.join(missing_backends())}")


@contextlib.contextmanager
def watchdog():
    faulthandler.dump_traceback_later(WATCHDOG_S, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


# ---------------------------------------------------------------------------------------
# Backends: NumPy data to the library's arrays and back


def _torch_dtype(name: str):
    import torch

    return getattr(torch, name if name != "bool" else "bool")


def to_backend(b: Built):
    case, a = b.case, b.a_np
    name = case.backend
    if name == "numpy":
        return a
    if name in ("torch", "torch-grad"):
        import torch

        t = (
            torch.from_numpy(a)
            if case.dtype != "bfloat16"
            else torch.from_numpy(np.ascontiguousarray(a)).to(torch.bfloat16)
        )
        if name == "torch-grad":
            t.requires_grad_(True)
        return t
    if name == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        return jnp.asarray(a, dtype=jnp.bfloat16 if case.dtype == "bfloat16" else None)
    if name == "mlx":
        import mlx.core as mx

        return mx.array(a, dtype=getattr(mx, case.dtype))
    if name == "dask":
        import dask.array as da

        nb = len(case.batch)
        if nb:
            per = case.chunks if len(case.chunks) == nb else (1,) * nb
            chunks = (*per, case.m, case.n)
        else:
            chunks = (case.chunks[0] if case.chunks else case.m, case.n)
        return da.from_array(a, chunks=chunks)
    if name == "array_api_strict":
        import array_api_strict as xs

        return xs.asarray(a)
    raise AssertionError(name)  # pragma: no cover


def to_numpy(x, backend: str) -> np.ndarray:
    if backend in ("torch", "torch-grad"):
        import torch

        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()
        return x.numpy()
    if backend == "dask":
        return np.asarray(x.compute(scheduler="synchronous") if hasattr(x, "compute") else x)
    if backend == "mlx":
        import mlx.core as mx

        if x.dtype in (mx.bfloat16, mx.float16):
            x = x.astype(mx.float32)
        return np.array(x)
    if backend == "array_api_strict":
        return np.from_dlpack(x) if not isinstance(x, np.ndarray) else x
    x = np.asarray(x)
    if x.dtype.name == "bfloat16":
        x = x.astype(np.float32)
    return x


def dtype_name(x, backend: str) -> str:
    d = x.dtype
    if backend in ("numpy", "dask", "jax"):
        return np.dtype(d).newbyteorder("=").name if backend != "jax" else d.name
    return str(d).rsplit(".", 1)[-1]


def is_library_array(x, backend: str) -> bool:
    if backend == "numpy":
        return isinstance(x, np.ndarray)
    if backend in ("torch", "torch-grad"):
        import torch

        return isinstance(x, torch.Tensor)
    if backend == "jax":
        import jax

        return isinstance(x, jax.Array)
    if backend == "mlx":
        import mlx.core as mx

        return isinstance(x, mx.array)
    if backend == "dask":
        import dask.array as da

        return isinstance(x, da.Array)
    import array_api_strict as xs

    return type(x) is type(xs.asarray(0))


def make_out(b: Built):
    """An ``out`` array of the result's shape and dtype, filled with a sentinel."""
    c = b.case
    shape = (*c.batch, c.n, c.m)
    dt = result_dtype(c.backend, c.dtype)[0]
    if c.backend == "numpy":
        return np.full(shape, 7, dtype=np.dtype(dt))
    if c.backend == "torch":
        import torch

        return torch.full(shape, 7, dtype=_torch_dtype(dt))
    import array_api_strict as xs

    return xs.full(shape, 7, dtype=getattr(xs, dt))


def snapshot(inp, backend: str):
    """A copy of the input to compare with afterwards (input unchanged)."""
    if isinstance(inp, list):
        return np.array(inp)
    if backend in ("torch", "torch-grad"):
        return inp.detach().clone()
    if backend == "dask":
        return None  # the graph holds the NumPy array, compared through a_np
    return np.array(to_numpy(inp, backend), copy=True)


def assert_unchanged(before, inp, b: Built, a_np_before) -> None:
    bk = b.case.backend
    if a_np_before is not None:  # the NumPy data under numpy, dask, list inputs
        np.testing.assert_array_equal(np.asarray(b.a_np), a_np_before, "the input was modified")
    if bk in ("torch", "torch-grad"):
        import torch

        assert torch.equal(inp.detach(), before) or bool(torch.isnan(before).any()), (
            "the input was modified"
        )
    elif before is not None and bk not in ("numpy", "dask"):
        np.testing.assert_array_equal(to_numpy(inp, bk), before, "the input was modified")


def call(b: Built, inp, out=None):
    args, kwargs = b.tolerance_kwargs()
    if b.case.backend == "jax":  # no implicit rank promotion anywhere (JAX's own tests)
        import jax

        with jax.numpy_rank_promotion("raise"):
            return _call(b, inp, args, kwargs, out)
    return _call(b, inp, args, kwargs, out)


def _call(b: Built, inp, args, kwargs, out):
    if b.case.call == "pinverse":
        return pi.pinverse(inp, *args)
    if out is not None:
        kwargs = {**kwargs, "out": out}
    if b.case.jit:  # jax.jit with the tolerances traced (issue 9, defect 16)
        import jax
        import jax.numpy as jnp

        names = [k for k in ("atol", "rtol") if kwargs.get(k) is not None]
        tols = [jnp.asarray(kwargs[k], dtype=jnp.float64) for k in names]
        rc = [jnp.asarray(args[0], dtype=jnp.float64)] if args and args[0] is not None else []
        rest = {k: v for k, v in kwargs.items() if k not in names}
        rest.pop("check_finite", None)  # traced: NaN gives NaN (documented), input finite

        def f(a, *t):
            kw = dict(zip(names, t[len(rc) :], strict=True))
            return pi.pinv(a, *t[: len(rc)], *args[1:], **kw, **rest)

        return jax.jit(f)(inp, *rc, *tols)
    return pi.pinv(inp, *args, **kwargs)


def margin_for(c: Case) -> float:
    return 10.0 if work_eps(c.backend, c.dtype) < 1e-10 else 100.0


# ---------------------------------------------------------------------------------------
# The oracle


def check_result(b: Built, inp, res, out=None, lazy=None) -> None:
    """Every property of a successful call (see the module docstring); ``lazy``: the
    result as returned (Dask's, before it was computed into ``res``)."""
    c = b.case
    size, m, n, k = math.prod(c.batch), c.m, c.n, min(c.m, c.n)
    want_rank = c.return_rank and c.call != "pinverse"
    if want_rank:
        assert isinstance(res, tuple) and len(res) == 2, type(res)
        x, rank = res
        assert res.pinv is x and res.rank is rank
    else:
        x, rank = res, None
    lazy = res if lazy is None else lazy
    lx, lrank = (lazy[0], lazy[1]) if want_rank else (lazy, None)
    # library, type, dtype, shape
    assert is_library_array(lx, c.backend), f"{c.backend} input gave a {type(lx).__name__}"
    if c.layout == "matrix":
        assert isinstance(x, np.matrix), f"np.matrix input gave a {type(x).__name__}"
    if out is not None:
        assert x is out, "out= was not returned"
    got = dtype_name(x, c.backend)
    assert got in result_dtype(c.backend, c.dtype), (
        f"{c.dtype} ({c.byteorder}) input gave {got}, want {result_dtype(c.backend, c.dtype)}"
    )
    assert tuple(x.shape) == (*c.batch, n, m), (tuple(x.shape), (*c.batch, n, m))
    if c.backend == "torch-grad":
        assert x.requires_grad and x.grad_fn is not None, "no autograd graph"
    xn = to_numpy(x, c.backend).astype(np.complex128 if is_complex(c.dtype) else np.float64)
    xs = xn.reshape(size, n, m)
    if want_rank:
        if c.batch:
            rk = np.asarray(to_numpy(rank, c.backend))
            assert is_library_array(lrank, c.backend), type(lrank)
            assert rk.shape == c.batch and rk.dtype.kind in "iu", (rk.shape, rk.dtype)
        else:
            if c.jit:  # a traced rank comes back as a 0-d array
                assert np.asarray(rank).shape == (), np.asarray(rank).shape
            else:
                assert type(rank) is int, f"a single matrix's rank is a {type(rank).__name__}"
            rk = np.asarray(rank)
        rk = rk.reshape(size)
    ref = reference(b, margin_for(c))
    eps = eps_of(c.backend, c.dtype)
    p = max(m, n)
    bad = b.bad.reshape(size) if b.bad is not None else np.zeros(size, dtype=bool)
    read = b.read.reshape(size, m, n)
    if c.backend == "jax":  # XLA on the CPU reads subnormal input as zero (DAZ)
        read = np.where(np.abs(read) < value_range(c.dtype)[1], 0, read)
    for i in range(size):
        if bad[i]:
            assert np.isnan(xs[i]).all(), f"member {i} holds NaN/Inf but its result is {xs[i]}"
            if want_rank:
                assert rk[i] == 0, f"member {i} holds NaN/Inf but has rank {rk[i]}"
            continue
        lo, hi = int(ref.lo[i]), int(ref.hi[i])
        note(f"member {i}: s={ref.s[i]}, tol={ref.tol[i]:.3e}, rank in [{lo}, {hi}]")
        assert np.isfinite(xs[i]).all(), f"member {i}: non-finite result for finite input"
        if want_rank:
            assert lo <= rk[i] <= hi, f"member {i}: rank {rk[i]}, want {lo}..{hi}"
            r = int(rk[i])
        else:  # the rank the result shows: which reference values it inverts
            r = lo if lo == hi else None
        if k == 0:
            continue
        if lo == hi == 0:
            assert not np.any(xs[i]), f"member {i}: every value is cut, result {xs[i]}"
            continue
        ei = ref.e[i]
        a_s, x_s = pow2(read[i], -ei), pow2(xs[i], ei)  # entries of a_s in [1, 2)
        s_sc = ref.s_sc[i]
        kappa = ref.kappa(i, r if r is not None else hi)
        bound = 200 * p * eps * max(kappa, 1.0)
        if c.method == "randomized":  # its promise: the kept part within tol / MARGIN
            bound += 2 * max(kappa, 1.0) * pow2(ref.tol[i], -ei) / s_sc[0]
        if bound >= 1:
            # kappa beyond 1 / (200 p eps): the promise says nothing (a relative error of
            # 100% is allowed), the kept small values are rounding noise, and the
            # residuals' products may overflow even on the scaled copies; the result was
            # checked to be finite above, and the rank where it is clear
            continue
        # AXA - A = A_r - A: the values dropped, in the Frobenius norm of the residuals
        rel_dropped = np.linalg.norm(s_sc[r if r is not None else lo :]) / np.linalg.norm(s_sc)
        res4 = penrose(a_s, x_s)
        note(f"member {i}: penrose {res4}, bound {bound:.3e} (+{rel_dropped:.2e})")
        assert res4[0] <= bound + 2 * rel_dropped, f"member {i}: AXA != A {res4}"
        assert max(res4[1:]) <= bound, f"member {i}: Penrose residuals {res4} > {bound:.3e}"
        if lo == hi:
            xr = ref.x_sc[i]
            err = np.linalg.norm(x_s - xr) / np.linalg.norm(xr)
            assert err <= bound, f"member {i}: relative error {err:.3e} > {bound:.3e}"


def fits(b: Built, ref) -> bool:
    """Whether the pinv of every good member (at any allowed rank) fits the result dtype
    with room to spare; near-overflowing results are not a property of the library."""
    c = b.case
    big = value_range(result_dtype(c.backend, c.dtype)[0])[0]
    bad = b.bad.reshape(-1) if b.bad is not None else np.zeros(ref.lo.shape, dtype=bool)
    for i in range(ref.lo.size):
        if bad[i] or not ref.finite[i]:
            continue
        hi = int(ref.hi[i])
        if hi == 0:
            continue
        sr = ref.s[i, hi - 1]
        with np.errstate(divide="ignore", over="ignore"):
            if not sr > 0 or 1 / sr > big / 1e3 or ref.s[i, 0] > big / 1e3:
                return False
    return True


def clearly_full_rank(b: Built, ref) -> bool:
    """Every member full rank, well clear of the threshold and well conditioned."""
    c = b.case
    k = min(c.m, c.n)
    limit = 1e6 if work_eps(c.backend, c.dtype) < 1e-10 else 1e3
    bad = b.bad.reshape(-1)
    for i in range(ref.lo.size):
        if bad[i]:
            continue  # check_finite=False: computed as NaN, not refused
        if not (ref.lo[i] == ref.hi[i] == k):
            return False
        if ref.kappa(i, k) > limit or ref.s_sc[i, k - 1] <= 100 * pow2(ref.tol[i], -ref.e[i]):
            return False
    return True


def live_references(b: Built, x) -> None:
    """numpy.linalg.pinv / torch.linalg.pinv on clear cases with matching semantics."""
    c = b.case
    if c.dtype not in FLOATS or abs(c.scale_exp) > 100 or c.kind == "sparse":
        return
    ref = reference(b, margin_for(c))
    if not np.all(ref.lo == ref.hi) or not ref.lo.size or not min(c.m, c.n):
        return
    data = b.read.astype(np.dtype(c.dtype))
    xn = to_numpy(x, c.backend).astype(np.complex128 if is_complex(c.dtype) else np.float64)
    if c.backend == "numpy" and not np.any(b.atol):
        live = np.linalg.pinv(data, rtol=b.rtol, hermitian=c.hermitian)
        name = "numpy.linalg.pinv"
    elif c.backend in ("torch", "torch-grad"):
        import torch

        live = torch.linalg.pinv(
            torch.from_numpy(data),
            atol=torch.from_numpy(np.array(b.atol, dtype=float)),
            rtol=torch.from_numpy(np.array(b.rtol, dtype=float)),
            hermitian=c.hermitian,
        ).numpy()
        name = "torch.linalg.pinv"
    else:
        return
    live = live.astype(xn.dtype)
    size = ref.lo.size
    eps, p = eps_of(c.backend, c.dtype), max(c.m, c.n)
    for i in range(size):
        r = int(ref.lo[i])
        if r == 0:
            continue
        li, xi = live.reshape(size, c.n, c.m)[i], xn.reshape(size, c.n, c.m)[i]
        bound = 400 * p * eps * max(ref.kappa(i, r), 1.0)
        err = np.linalg.norm(xi - li) / np.linalg.norm(li)
        assert err <= bound, f"member {i}: differs from {name} by {err:.3e} > {bound:.3e}"


def invariance(b: Built, x) -> None:
    """A byte-swapped or differently laid out input gives the native C input's result."""
    c = b.case
    if c.backend != "numpy" or (c.byteorder == "=" and c.layout == "C"):
        return
    native = np.array(
        np.asarray(b.a_np), dtype=np.dtype(np.asarray(b.a_np).dtype).newbyteorder("="), order="C"
    )
    args, kwargs = b.tolerance_kwargs()
    if c.call == "pinverse":
        y = pi.pinverse(native, *args)
    else:
        y = pi.pinv(native, *args, **kwargs)
    if isinstance(y, tuple):
        y, x = y[0], x[0] if isinstance(x, tuple) else x
    xa, ya = np.asarray(x), np.asarray(y)
    assert xa.dtype.newbyteorder("=") == ya.dtype, (xa.dtype, ya.dtype)
    scale = np.abs(ya).max(initial=0)
    tol = 4 * work_eps(c.backend, c.dtype) * scale
    diff = np.abs(xa.astype(ya.dtype) - ya).max(initial=0)
    assert diff <= tol, (
        f"{c.byteorder}{c.dtype} {c.layout} input differs from native C by {diff:.3e} "
        f"(result scale {scale:.3e})"
    )


# ---------------------------------------------------------------------------------------
# The tests


def run_case(c: Case) -> None:
    b = c.build()
    ref = reference(b, margin_for(c))
    assume(fits(b, ref))
    inp = to_backend(b)
    a_np_before = None if isinstance(b.a_np, list) else np.array(b.a_np, copy=True)
    before = snapshot(inp, c.backend)
    out = make_out(b) if c.out == "good" and c.layout != "matrix" else None
    nonfinite = bool(b.bad.any())
    with watchdog():
        if nonfinite and c.check_finite:
            first = tuple(int(i) for i in np.argwhere(b.bad)[0]) if c.batch else ()
            with pytest.raises(ValueError) as info:
                res = call(b, inp, out)
                if c.backend == "dask":
                    materialize(res)
            assert isinstance(info.value, np.linalg.LinAlgError), (
                f"non-finite input raised {type(info.value).__name__}, SPEC: LinAlgError"
            )
            msg = str(info.value)
            assert "NaN" in msg or "Inf" in msg or "finite" in msg, msg
            if c.batch:
                named = str(first) in msg or (
                    len(first) == 1 and re.search(rf"(?<![\d.]){first[0]}(?![\d.])", msg)
                )
                assert named, f"first bad member is {first}, message: {msg}"
            if out is not None:
                assert _untouched(out, c.backend), "out was written although pinv raised"
            assert_unchanged(before, inp, b, a_np_before)
            return
        try:
            res = lazy = call(b, inp, out)
            if c.backend == "dask":  # lazy: errors come when it is computed
                res = materialize(lazy)
        except ValueError:
            if c.method == "qr" and not clearly_full_rank(b, ref):
                return  # "qr" refuses what it cannot certify full rank: allowed there
            raise
    assert_unchanged(before, inp, b, a_np_before)
    check_result(b, inp, res, out, lazy)
    x = res[0] if isinstance(res, tuple) else res
    if not nonfinite:
        live_references(b, x)
        invariance(b, res)
    if c.backend == "torch-grad" and c.backward and not nonfinite:
        gx = x.real if x.is_complex() else x
        gx.sum().backward()  # a linear loss: its gradient is about ||X||^2 in size
        assert inp.grad is not None and inp.grad.shape == inp.shape
        big = value_range(c.dtype)[0]
        with np.errstate(divide="ignore", over="ignore"):
            xnorm = [1 / ref.s[i, r - 1] if r else 0.0 for i, r in enumerate(ref.lo)]
            # the Golub-Pereyra products hold ||X||^3 terms: beyond the range, inf (as torch)
            small = max(xnorm, default=0.0) ** 3 * c.m * c.n < big / 1e6
        if np.all(ref.lo == ref.hi) and small:
            assert bool(inp.grad.isfinite().all()), "non-finite gradient at a clear rank"


def materialize(res):
    """A Dask result computed (NumPy arrays; the rank stays an int for one matrix)."""
    import dask

    if isinstance(res, tuple):
        x, rank = dask.compute(res[0], res[1], scheduler="synchronous")
        return type(res)(x, rank) if hasattr(res, "_fields") else (x, rank)
    return dask.compute(res, scheduler="synchronous")[0]


def _untouched(out, backend: str) -> bool:
    return bool(np.all(to_numpy(out, backend) == 7))


@fuzz_settings("main")
@fuzz_seed("main")
@given(cases())
def test_pinv_fuzz(case):
    """Finite inputs of every kind: the oracle's properties."""
    run_case(case)


@fuzz_settings("nonfinite")
@fuzz_seed("nonfinite")
@given(cases(nonfinite=True))
def test_nonfinite_fuzz(case):
    """NaN/Inf in some members: raise naming the first, or NaN exactly there."""
    run_case(case)


@fuzz_settings("large")
@fuzz_seed("large")
@given(cases(backend="numpy", size="large"))
def test_large_fuzz(case):
    """min(m, n) >= 64: the certified LU / normal-equations / QR / Cholesky paths."""
    run_case(case)


@fuzz_settings("torch_grad")
@fuzz_seed("torch_grad")
@given(cases(backend="torch-grad") if "torch" in backends() else st.nothing())
def test_torch_grad_fuzz(case):
    """requires_grad tensors: the same values, an autograd graph (zero-size included)."""
    run_case(case)


# ---------------------------------------------------------------------------------------
# A matrix alone and in any stack (explicit methods)


@st.composite
def stacks(draw):
    bk = draw(st.sampled_from(weighted_backends()))
    dtype = draw(
        st.sampled_from(
            [
                d
                for d in ("float32", "float64", "complex64", "complex128")
                if d in ("float32", "float64", "complex64") or bk != "mlx"
            ]
        )
    )
    size = draw(st.sampled_from([2, 2, 3, 3, 5, 8, 33]))
    top = draw(st.sampled_from([6, 6, 6, 12, 12, 24]))  # mostly small: cheap examples
    m = draw(st.integers(1, top))
    n = m if draw(st.booleans()) else draw(st.integers(1, top))
    hermitian = m == n and draw(st.booleans())
    methods = ["svd", "jacobi", "batched", "qr", "randomized"] + ["eigh"] * hermitian
    method = draw(st.sampled_from(methods))
    kind = draw(st.sampled_from(["gauss", "lowrank", "spectrum"]))
    return dict(
        backend=bk,
        dtype=dtype,
        size=size,
        m=m,
        n=n,
        hermitian=hermitian,
        method=method,
        kind=kind,
        seed=draw(st.integers(0, 2**32 - 1)),
        pick=draw(st.integers(0, size - 1)),
    )


def _stack_values(s):
    rng = np.random.default_rng(s["seed"])
    cplx = s["dtype"].startswith("complex")
    shape = (s["size"], s["m"], s["n"])

    def g(*sh):
        x = rng.standard_normal(sh)
        return x + 1j * rng.standard_normal(sh) if cplx else x

    if s["kind"] == "gauss":
        a = g(*shape)
    elif s["kind"] == "lowrank":
        r = int(rng.integers(0, min(s["m"], s["n"]) + 1))
        a = g(s["size"], s["m"], r) @ np.swapaxes(g(s["size"], s["n"], r), -1, -2).conj()
    else:
        a = g(*shape) * np.geomspace(1, 1e-4, s["n"])
    if s["hermitian"]:
        a = (a + np.swapaxes(a, -1, -2).conj()) / 2
    return a.astype(np.dtype(s["dtype"]))


@fuzz_settings("stack")
@fuzz_seed("stack")
@given(stacks())
def test_alone_equals_in_stack(s):
    """With an explicit method, member ``i`` gives the same result alone, in the stack,
    and in a reordered sub-stack (issue 9, defect 19)."""
    a = _stack_values(s)
    bk, i = s["backend"], s["pick"]
    conv = lambda arr: _conv(bk, arr)  # noqa: E731
    kw = dict(method=s["method"], hermitian=s["hermitian"], return_rank=True)
    order = [i, *[j for j in range(s["size"]) if j != i][:3]][::-1]  # i last of up to 4
    with watchdog():
        try:
            xs, rs = pi.pinv(conv(a), **kw)
            xs, rs = to_numpy(xs, bk), np.asarray(to_numpy(rs, bk))
        except ValueError:
            if s["method"] == "qr":
                return  # a member it cannot certify; the alone call may refuse too
            raise
        x1, r1 = pi.pinv(conv(np.ascontiguousarray(a[i])), **kw)
        xo, ro = pi.pinv(conv(np.ascontiguousarray(a[order])), **kw)
    x1, xo, ro = to_numpy(x1, bk), to_numpy(xo, bk), np.asarray(to_numpy(ro, bk))
    eps = float(np.finfo(a.dtype).eps)
    scale = max(np.abs(xs[i]).max(initial=0), np.finfo(float).tiny)
    assert int(r1) == int(rs[i]) == int(ro[-1]), (r1, rs[i], ro[-1])
    d_alone = np.abs(x1 - xs[i]).max(initial=0) / scale
    d_order = np.abs(xo[-1] - xs[i]).max(initial=0) / scale
    note(f"alone differs by {d_alone:.3e}, in another stack by {d_order:.3e} (x eps {eps:.1e})")
    assert d_alone <= 4 * eps, f"{s['method']}: alone vs stack differ by {d_alone:.3e} relative"
    assert d_order <= 4 * eps, f"{s['method']}: two stacks differ by {d_order:.3e} relative"


# ---------------------------------------------------------------------------------------
# Bad arguments: a clear ValueError / TypeError naming the argument, nothing written


BAD_TOLERANCES = [-1.0, -1e-300, float("nan"), 1j, 1 + 0j, "abc", [-1.0], float("-inf")]


@st.composite
def bad_calls(draw):
    bk = draw(st.sampled_from(backends()))
    kind = draw(
        st.sampled_from(
            [
                "tolerance",
                "rcond_and_rtol",
                "method",
                "eigh",
                "ndim",
                "hermitian_shape",
                "out_shape",
                "out_dtype",
                "out_type",
                "out_readonly",
                "tol_shape",
                "stream",
                "pinverse_rcond",
                "non_numeric",
            ]
        )
    )
    return dict(
        backend=bk,
        kind=kind,
        name=draw(st.sampled_from(["atol", "rtol", "rcond"])),
        value=draw(st.sampled_from(BAD_TOLERANCES)),
        as_array=draw(st.booleans()),
        method=draw(st.sampled_from(["SVD", "", "lu", "eig", None, 3, "auto "])),
        shape=draw(st.sampled_from([(), (3,), (0,), (1,)])),
        batch=tuple(draw(st.lists(st.integers(1, 3), max_size=2))),
        m=draw(st.integers(1, 4)),
        n=draw(st.integers(1, 4)),
        out_type=draw(st.sampled_from(["list", "tuple", "other_library", "scalar"])),
        dtype=draw(st.sampled_from(["float32", "float64", "complex128"])),
    )


def _conv(bk: str, arr: np.ndarray):
    case = (
        Case(bk, arr.dtype.name, "=", arr.shape[:-2], *arr.shape[-2:], "gauss", 0)
        if arr.ndim >= 2
        else Case(bk, arr.dtype.name, "=", (), 1, 1, "gauss", 0)
    )
    if bk == "mlx" and arr.dtype == np.complex128:
        arr = arr.astype(np.complex64)
    if arr.ndim < 2 and bk == "dask":
        import dask.array as da

        return da.from_array(arr)
    return to_backend(Built(case, arr, arr, arr, np.zeros(1), np.zeros(1)))


@fuzz_settings("arguments")
@fuzz_seed("arguments")
@given(bad_calls())
def test_bad_arguments(s):
    bk, kind = s["backend"], s["kind"]
    rng = np.random.default_rng(0)
    m, n = s["m"], s["n"]
    dtype = "complex64" if bk == "mlx" and s["dtype"] == "complex128" else s["dtype"]
    a_np = rng.standard_normal((*s["batch"], m, n)).astype(dtype)
    a = _conv(bk, a_np)
    args, kw, names = (), {}, ()
    out = None
    if kind == "tolerance":
        v = s["value"]
        if s["as_array"] and not isinstance(v, str | list):
            v = np.array(v)
        if s["name"] == "rcond":
            args = (v,)
        else:
            kw[s["name"]] = v
        names = (s["name"],)
    elif kind == "pinverse_rcond":
        v = s["value"]
        with watchdog(), pytest.raises((ValueError, TypeError)) as info:
            pi.pinverse(a, v)
        _assert_clean(info, ("rcond",))
        return
    elif kind == "rcond_and_rtol":
        args, kw, names = (1e-3,), {"rtol": 1e-3}, ("rcond", "rtol")
    elif kind == "method":
        kw, names = {"method": s["method"]}, ("method",)
    elif kind == "eigh":
        kw, names = {"method": "eigh"}, ("hermitian",)
    elif kind == "ndim":
        a = _conv(bk, rng.standard_normal(s["shape"]))
        names = (str(s["shape"]),)
    elif kind == "hermitian_shape":
        a = _conv(bk, rng.standard_normal((*s["batch"], m, m + 1)).astype(dtype))
        kw, names = {"hermitian": True}, ("hermitian",)
    elif kind == "tol_shape":  # a tolerance that would enlarge the result's shape
        kw, names = (
            {s["name"] if s["name"] != "rcond" else "rtol": np.full((*s["batch"], 2, 3), 0.1)},
            (),
        )
        names = (next(iter(kw)),)
    elif kind == "stream":
        if bk == "mlx":
            return
        kw, names = {"stream": "cpu"}, ("stream",)
    elif kind == "non_numeric":
        a, names = np.array([["a", "b"], ["c", "d"]]), ()
    elif kind.startswith("out"):
        if bk == "jax":
            kw["out"] = np.zeros((1,))  # immutable: any out is refused
        elif kind == "out_shape":
            out = _conv(bk, np.full((*s["batch"], n + 1, m), 7, dtype=dtype))
        elif kind == "out_dtype":
            other = {
                "float32": "float64",
                "float64": "float32",
                "complex128": "float64",
                "complex64": "float32",
            }[dtype]
            out = _conv(bk, np.full((*s["batch"], n, m), 7, dtype=other))
        elif kind == "out_readonly":
            if bk != "numpy":
                return
            out = np.full((*s["batch"], n, m), 7, dtype=dtype)
            out.flags.writeable = False
        else:
            t = s["out_type"]
            shape = (*s["batch"], n, m)
            out = {
                "list": np.full(shape, 7.0).tolist(),
                "tuple": tuple(np.full(shape, 7.0).tolist()),
                "scalar": 7.0,
                "other_library": np.full(shape, 7, dtype=dtype)
                if bk != "numpy"
                else _other(shape, dtype),
            }[t]
        if out is not None:
            kw["out"] = out
        names = ("out",)
    with watchdog(), pytest.raises((ValueError, TypeError)) as info:
        res = pi.pinv(a, *args, **kw)
        if bk == "dask":  # a lazy check may only fire on compute
            to_numpy(res[0] if isinstance(res, tuple) else res, bk)
    _assert_clean(info, names)
    if out is not None and not isinstance(out, float | list | tuple):
        assert _untouched(out, bk if kind != "out_type" else _kind_of(out)), "out was written"


def _other(shape, dtype):
    if "torch" in backends():
        import torch

        return torch.full(shape, 7, dtype=_torch_dtype(dtype))
    import array_api_strict as xs

    return xs.full(shape, 7, dtype=getattr(xs, dtype))


def _kind_of(x) -> str:
    mod = type(x).__module__.split(".")[0]
    return {
        "torch": "torch",
        "array_api_strict": "array_api_strict",
        "mlx": "mlx",
        "dask": "dask",
        "jaxlib": "jax",
        "jax": "jax",
    }.get(mod, "numpy")


def _assert_clean(info, names) -> None:
    err = info.value
    assert not isinstance(err, np.linalg.LinAlgError), f"a bad argument raised {err!r}"
    msg = str(err)
    for name in names:
        assert name in msg, f"{type(err).__name__} does not name {name!r}: {msg}"
