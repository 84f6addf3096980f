"""Hypothesis strategies for the fuzz suite (``test_fuzz.py``), and the oracle's pieces.

A drawn :class:`Case` is a small, printable *recipe* (no arrays): a backend, a dtype
(either byte order), a shape, how the values are made (kind, scale, spectrum, rank,
seed), a memory layout and every keyword of ``pinv``. ``Case.build()`` makes the arrays
from it deterministically, so a falsifying example printed by Hypothesis is itself the
reproducer::

    from fuzz_strategies import Case
    built = Case(...).build()     # the repr Hypothesis printed
    pi.pinv(built.a, *built.args, **built.kwargs)

The oracle (``reference``) is NumPy's float64/complex128 SVD of the *values* the library
receives (after the dtype cast, from the triangle it reads), each matrix scaled by a power
of two first so that entries near the float range neither overflow nor underflow.
"""

from __future__ import annotations

import importlib
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from hypothesis import strategies as st

# ---------------------------------------------------------------------------------------
# Backends

_AVAILABLE: dict[str, bool] = {}


def available(module: str) -> bool:
    if module not in _AVAILABLE:
        try:
            importlib.import_module(module)
            _AVAILABLE[module] = True
        except Exception:  # not installed, or broken: that backend is not drawn
            _AVAILABLE[module] = False
    return _AVAILABLE[module]


_MODULE = {
    "numpy": "numpy",
    "torch": "torch",
    "torch-grad": "torch",
    "jax": "jax",
    "mlx": "mlx.core",
    "dask": "dask.array",
    "array_api_strict": "array_api_strict",
}
ALL_BACKENDS = tuple(_MODULE)


def backends() -> tuple[str, ...]:
    """The backends installed here (a missing one is named by ``missing_backends``)."""
    return tuple(b for b in ALL_BACKENDS if available(_MODULE[b]))


# How often each backend is drawn: NumPy (every dtype, byte order and layout) most; JAX
# least, since it compiles anew for every shape (about 0.3 s an example)
_WEIGHT = {
    "numpy": 8,
    "torch": 2,
    "torch-grad": 1,
    "jax": 1,
    "mlx": 1,
    "dask": 2,
    "array_api_strict": 1,
}


def weighted_backends() -> list[str]:
    return [b for b in backends() for _ in range(_WEIGHT[b])]


def missing_backends() -> tuple[str, ...]:
    return tuple(b for b in ALL_BACKENDS if not available(_MODULE[b]))


# Dtypes each backend is fuzzed with (NumPy spellings; "bfloat16" is the ML dtype).
# Byte order is drawn separately, for the NumPy-held backends only.
FLOATS = ("float32", "float64", "complex64", "complex128")
BACKEND_DTYPES: dict[str, tuple[str, ...]] = {
    "numpy": (
        *FLOATS,
        "float16",
        "longdouble",
        "clongdouble",
        "int8",
        "int16",
        "int32",
        "int64",
        "uint8",
        "uint16",
        "uint32",
        "uint64",
        "bool",
    ),
    "dask": (*FLOATS, "float16", "int64", "bool"),
    "torch": (*FLOATS, "float16", "bfloat16", "int64", "int32", "uint8", "bool"),
    "torch-grad": FLOATS,
    "jax": (*FLOATS, "float16", "bfloat16", "int32", "int64", "bool"),
    "mlx": ("float32", "float64", "complex64"),
    "array_api_strict": (*FLOATS, "int64", "int32", "bool"),
}
SWAPPABLE = ("numpy", "dask")  # backends that hold a NumPy array of either byte order


def is_complex(dtype: str) -> bool:
    return dtype in ("complex64", "complex128", "clongdouble")


def is_integer(dtype: str) -> bool:
    return dtype == "bool" or dtype.startswith(("int", "uint"))


def default_float(backend: str) -> str:
    """The library's default real floating dtype (integer and bool input become it)."""
    return {"torch": "float32", "torch-grad": "float32", "mlx": "float32"}.get(backend, "float64")


def result_dtype(backend: str, dtype: str) -> tuple[str, ...]:
    """The dtype names SPEC allows for the result (two for NumPy's long double, which
    SPEC does not mention: float64 is what LAPACK delivers, long double would keep it)."""
    if is_integer(dtype):
        return (default_float(backend),)
    if dtype == "longdouble":
        return ("float64", np.dtype(np.longdouble).name)
    if dtype == "clongdouble":
        return ("complex128", np.dtype(np.clongdouble).name)
    return (dtype,)


_EPS = {
    "float16": 2.0**-10,
    "bfloat16": 2.0**-7,
    "float32": 2.0**-23,
    "complex64": 2.0**-23,
    "float64": 2.0**-52,
    "complex128": 2.0**-52,
    # long double: LAPACK computes in float64, so float64's eps (pinv's documented choice
    # in _api._dtypes); SPEC is silent on long double
    "longdouble": 2.0**-52,
    "clongdouble": 2.0**-52,
}


def eps_of(backend: str, dtype: str) -> float:
    """SPEC's ``eps``: that of the input's real dtype (the default float's for ints)."""
    return _EPS[default_float(backend) if is_integer(dtype) else dtype]


def work_eps(backend: str, dtype: str) -> float:
    """The precision the result is computed in (float16/bfloat16: float32)."""
    e = eps_of(backend, dtype)
    return max(e, 2.0**-23) if e > 2.0**-23 else e


_RANGE = {  # (largest, smallest normal) of the dtype the values live in
    "float16": (65504.0, 6.1e-5),
    "bfloat16": (3.3e38, 1.2e-38),
    "float32": (3.4e38, 1.2e-38),
    "complex64": (3.4e38, 1.2e-38),
}


def value_range(dtype: str) -> tuple[float, float]:
    return _RANGE.get(dtype, (1.79e308, 2.3e-308))


def np_dtype(dtype: str, byteorder: str = "=") -> np.dtype:
    """The NumPy dtype of a case (bfloat16 values are held as float32 in NumPy)."""
    d = np.dtype(np.float32 if dtype == "bfloat16" else dtype)
    return d if byteorder == "=" else d.newbyteorder(byteorder)


# ---------------------------------------------------------------------------------------
# The recipe


@dataclass(frozen=True)
class Tol:
    """A tolerance as drawn: a number (``frac`` times the matrices' scale for ``atol``), a
    NumPy array or a list of the batch shape (one value per member), or a broadcastable
    array (ones where the batch has a dimension)."""

    form: str  # "number", "array", "list", "broadcast"
    fracs: tuple[float, ...]  # one per member (form "number": one)
    relative: bool  # True for rtol/rcond (the fracs are the values), False for atol


@dataclass(frozen=True)
class Case:
    backend: str
    dtype: str
    byteorder: str  # "=", ">" or "<" (NumPy-held backends only)
    batch: tuple[int, ...]
    m: int
    n: int
    kind: str  # how values are made: see _values
    seed: int
    scale_exp: float = 0.0  # entries / singular values about 10**scale_exp
    member_scales: bool = False  # each member its own scale (within a decade or 100)
    kappa_exp: float = 0.0  # spectrum: sigma from 1 down to 10**-kappa_exp
    rank: int | None = None  # low-rank kinds
    delta: float = 0.0  # threshold kind: the placed value is tol * (1 + delta)
    hermitian: bool = False
    upper_garbage: bool = False  # hermitian: junk in the strict upper triangle
    layout: str = "C"
    atol: Tol | None = None
    rtol: Tol | None = None
    rcond: Tol | None = None  # positional
    call: str = "pinv"  # "pinv", "pinverse", "positional3" (pinv(a, rcond, hermitian))
    method: str = "auto"
    return_rank: bool = False
    check_finite: bool = True
    out: str = "none"  # "none" or "good"
    chunks: tuple[int, ...] = ()  # dask: chunk size per batch dim (+ rows for 2-D)
    backward: bool = False  # torch-grad: also run backward
    jit: bool = False  # jax: under jax.jit, the tolerances traced arguments
    nonfinite: tuple[tuple[int, str, str], ...] = ()  # (member, where, value)

    def build(self) -> Built:
        return _build(self)


@dataclass
class Built:
    case: Case
    a_np: Any  # the NumPy input (dtype, byte order, layout) or a nested list
    values: np.ndarray  # exact values as received, float64/complex128, C order
    read: np.ndarray  # the matrices the library must see (hermitian: from the lower)
    atol: np.ndarray  # SPEC's effective tolerances per member (batch shape)
    rtol: np.ndarray
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    bad: np.ndarray | None = None  # batch-shaped mask of members with NaN/Inf read
    scale: float = 1.0  # the magnitude the values were built at

    def tolerance_kwargs(self) -> tuple[tuple, dict]:
        return self.args, self.kwargs


# ---------------------------------------------------------------------------------------
# Values


def _randn(rng, shape, cplx):
    x = rng.standard_normal(shape)
    if cplx:
        x = x + 1j * rng.standard_normal(shape)
    return x


def _haar(rng, k, cplx):
    q, r = np.linalg.qr(_randn(rng, (k, k), cplx))
    d = np.diagonal(r)
    return q * np.where(d == 0, 1, d / np.abs(np.where(d == 0, 1, d)))


def _from_spectrum(rng, m, n, s, cplx):
    u, v = _haar(rng, m, cplx)[:, : len(s)], _haar(rng, n, cplx)[:, : len(s)]
    return (u * s) @ v.conj().T


def _herm_from_spectrum(rng, n, lam, cplx):
    q = _haar(rng, n, cplx)[:, : len(lam)]
    h = (q * lam) @ q.conj().T
    return (h + h.conj().T) / 2


def spec_tolerances(case: Case, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """SPEC's rule, written independently: effective (atol, rtol) per member."""
    batch, eps, p = case.batch, eps_of(case.backend, case.dtype), max(case.m, case.n)
    size = math.prod(batch)

    def per_member(t: Tol | None, mult: float) -> np.ndarray | None:
        if t is None:
            return None
        f = np.array(t.fracs, dtype=float) * mult
        if t.form == "number" or size == 0:
            return np.broadcast_to(f[:1] if f.size else np.zeros(1), (size,)).reshape(batch)
        if t.form == "broadcast":  # varies along the last batch dim only
            return np.broadcast_to(f[: batch[-1]], batch).copy()
        return f.reshape(batch)

    if case.call == "pinverse":
        rt = per_member(case.rcond, 1.0)
        rt = np.full(batch, 1e-15) if rt is None else rt
        return np.zeros(batch), rt
    at = per_member(case.atol, scale)
    rt = per_member(case.rcond if case.rcond is not None else case.rtol, 1.0)
    at = np.zeros(batch) if at is None else at
    if rt is None:
        rt = np.where(at > 0, 0.0, p * eps)
    return np.asarray(at, dtype=float), np.asarray(rt, dtype=float)


def _tol_arg(t: Tol | None, mult: float, batch: tuple[int, ...]) -> Any:
    if t is None:
        return None
    f = [x * mult for x in t.fracs]
    if t.form == "number":
        return f[0]
    if t.form == "broadcast":
        shape = (1,) * (len(batch) - 1) + (batch[-1],)
        return np.array(f[: batch[-1]]).reshape(shape)
    arr = np.array(f, dtype=float).reshape(batch)
    return arr.tolist() if t.form == "list" else arr


def _values(case: Case, rng, at: np.ndarray, rt: np.ndarray, scale: float) -> np.ndarray:
    """The float64/complex128 values of every member (before the dtype cast)."""
    cplx = is_complex(case.dtype)
    batch, m, n = case.batch, case.m, case.n
    k = min(m, n)
    size = math.prod(batch)
    out = np.zeros((size, m, n), dtype=complex if cplx else float)
    at, rt = at.reshape(-1), rt.reshape(-1)
    for i in range(size):
        sc = scale * (10.0 ** rng.uniform(-1, 1) if case.member_scales else 1.0)
        kind = case.kind
        if kind == "gauss":
            a = _randn(rng, (m, n), cplx) * sc
        elif kind == "lowrank":
            r = min(case.rank or 0, k)
            a = _randn(rng, (m, r), cplx) @ _randn(rng, (n, r), cplx).conj().T * sc
        elif kind in ("spectrum", "threshold"):
            r = k if case.rank is None else min(case.rank, k)
            s = np.geomspace(1.0, 10.0**-case.kappa_exp, r) * sc if r else np.zeros(0)
            if case.hermitian:
                lam = s * rng.choice([-1.0, 1.0], size=r)
            if kind == "threshold" and r >= 2:
                smax = s[0]
                tol = max(at[i], rt[i] * smax)
                if tol < smax / 4:
                    j = int(rng.integers(1, r))
                    s[j] = tol * (1 + case.delta)
                    s = np.sort(s)[::-1]
                    if case.hermitian:
                        lam = s * rng.choice([-1.0, 1.0], size=r)
            a = (
                _herm_from_spectrum(rng, n, lam, cplx)
                if case.hermitian
                else _from_spectrum(rng, m, n, s, cplx)
            )
        elif kind == "hermitian":  # indefinite Gaussian, or PSD of drawn rank
            if case.rank is None:
                b = _randn(rng, (n, n), cplx)
                a = (b + b.conj().T) / 2 * sc
            else:
                b = _randn(rng, (n, min(case.rank, n)), cplx)
                a = b @ b.conj().T * sc
        elif kind == "zeros":
            a = np.zeros((m, n))
        elif kind == "integers":
            lo = 0 if case.dtype.startswith("uint") or case.dtype == "bool" else -4
            hi = 2 if case.dtype == "bool" else 5
            a = rng.integers(lo, hi, size=(m, n)).astype(float)
            if cplx:
                a = a + 1j * rng.integers(-4, 5, size=(m, n))
        elif kind == "sparse":  # a few entries of wildly different sizes, exact zeros
            big, tiny = value_range(case.dtype)
            pool = [1.0, -3.0, 0.5, big * 1e-8, tiny * 1e4, tiny / 64, big / 64, 1e-3]
            a = np.zeros((m, n))
            for _ in range(int(rng.integers(1, max(2, m * n // 2 + 1))) if m * n else 0):
                a[rng.integers(m), rng.integers(n)] = pool[rng.integers(len(pool))] * (
                    rng.choice([-1, 1])
                )
            if cplx:
                a = a * np.exp(1j * rng.uniform(0, 2 * np.pi, (m, n)))
        elif kind == "graded":  # rows and columns scaled over many decades
            g = case.kappa_exp
            a = (
                _randn(rng, (m, n), cplx)
                * np.geomspace(1, 10.0**-g, m)[:, None]
                * np.geomspace(1, 10.0 ** -(g / 2), n)[None, :]
                * sc
            )
        else:  # pragma: no cover
            raise AssertionError(kind)
        if case.hermitian and kind in ("gauss", "lowrank", "integers", "sparse", "graded"):
            a = np.tril(a) + np.tril(a, -1).conj().T
            a = a.real if not cplx else a - 1j * np.diag(np.diag(a).imag)
        out[i] = a
    return out.reshape(*batch, m, n)


def _cast(values: np.ndarray, case: Case) -> np.ndarray:
    """The values in the case's dtype (native order), clipped into its range."""
    big = value_range(case.dtype)[0] / 16
    v = values
    if not is_integer(case.dtype):
        over = np.abs(v) > big
        if over.any():
            v = np.where(over, np.sign(v) * big if not np.iscomplexobj(v) else big, v)
    if case.dtype == "bool":
        return (v != 0).astype(bool)
    if is_integer(case.dtype):
        return v.real.astype(np.dtype(case.dtype))
    if case.dtype == "bfloat16":
        import ml_dtypes  # jax's and torch's bfloat16 values, held as float32

        return v.real.astype(ml_dtypes.bfloat16).astype(np.float32)
    return v.astype(np.dtype(case.dtype))


def _garbage(case: Case, a: np.ndarray, rng) -> np.ndarray:
    """Junk (finite) in the strict upper triangle: a hermitian=True call must not read it."""
    n = case.n
    iu = np.triu_indices(n, 1)
    junk = _cast(_randn(rng, (*a.shape[:-2], len(iu[0])), is_complex(case.dtype)) * 7, case)
    a = a.copy()
    a[..., iu[0], iu[1]] = junk
    return a


_NONFINITE = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


def _plant(case: Case, a: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """Put NaN/Inf where ``case.nonfinite`` says; the batch mask of members now bad
    where they are read (hermitian: the lower triangle, the diagonal's imaginary part
    included; the strict upper triangle is never read)."""
    size, m, n = math.prod(case.batch), case.m, case.n
    a = a.reshape(size, m, n).copy()
    bad = np.zeros(size, dtype=bool)
    cplx = np.iscomplexobj(a)
    for member, where, value in case.nonfinite:
        i, v = member % size, _NONFINITE[value]
        if not case.hermitian:
            r, c = int(rng.integers(m)), int(rng.integers(n))
            part_imag = cplx and bool(rng.integers(2))
            a[i, r, c] = complex(a[i, r, c].real, v) if part_imag else v
            bad[i] = True
        elif where == "lower":
            r, c = sorted((int(rng.integers(n)), int(rng.integers(n))), reverse=True)
            a[i, r, c] = v
            bad[i] = True
        elif where == "upper":
            if n >= 2:
                r = int(rng.integers(n - 1))
                c = int(rng.integers(r + 1, n))
                a[i, r, c] = v  # strict upper: never read
        else:  # "imag": the imaginary part of a diagonal entry (its real part if real)
            d = int(rng.integers(n))
            a[i, d, d] = complex(a[i, d, d].real, v) if cplx else v
            bad[i] = True
    return a.reshape(*case.batch, m, n), bad.reshape(case.batch)


def _layout(a: np.ndarray, case: Case) -> Any:
    """The same values in another memory layout (or container)."""
    lay = case.layout
    d = np_dtype(case.dtype, case.byteorder)
    a = a.astype(d)
    if lay == "C":
        return np.ascontiguousarray(a)
    if lay == "F":
        return np.asfortranarray(a)
    if lay == "slice":  # every other row of a larger array: a non-contiguous view
        big = np.empty((*a.shape[:-2], 2 * a.shape[-2], a.shape[-1]), dtype=d)
        big[..., 1::2, :] = 0
        big[..., ::2, :] = a
        return big[..., ::2, :]
    if lay == "colslice":
        big = np.empty((*a.shape[:-1], 3 * a.shape[-1]), dtype=d)
        big[..., 1::3] = 1
        big[..., 2::3] = 2
        big[..., ::3] = a
        return big[..., ::3]
    if lay == "negative":  # negative strides on both matrix axes
        return np.ascontiguousarray(a[..., ::-1, ::-1])[..., ::-1, ::-1]
    if lay == "transposed":  # the transpose of a C array: Fortran-like matrix axes
        return np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    if lay == "readonly":
        a = np.ascontiguousarray(a)
        a.flags.writeable = False
        return a
    if lay == "broadcast":  # one matrix broadcast over the batch: zero strides, read-only
        return np.broadcast_to(a[(0,) * (a.ndim - 2)], a.shape)
    if lay == "matrix":
        return np.asmatrix(a)
    if lay == "list":
        return a.tolist()
    raise AssertionError(lay)  # pragma: no cover


def _build(case: Case) -> Built:
    rng = np.random.default_rng(case.seed)
    scale = 10.0**case.scale_exp
    at, rt = spec_tolerances(case, scale)
    values = _values(case, rng, at, rt, scale)
    a = _cast(values, case)
    if case.hermitian and case.upper_garbage:
        a = _garbage(case, a, rng)
    if case.layout == "broadcast" and math.prod(case.batch):  # every member is member 0
        a = np.broadcast_to(a[(0,) * len(case.batch)], a.shape).copy()
    bad = np.zeros(case.batch, dtype=bool)
    if case.nonfinite:
        a, bad = _plant(case, a, rng)
    a_np = _layout(a, case)
    wide = np.complex128 if np.iscomplexobj(a) else np.float64
    exact = a.astype(wide) if a.dtype != np.longdouble else a.astype(np.float64)
    exact = np.ascontiguousarray(exact)
    read = exact
    if case.hermitian:
        low = np.tril(exact)
        read = low + np.conj(np.swapaxes(np.tril(exact, -1), -1, -2))
        if np.iscomplexobj(read):  # the diagonal's imaginary part is not read
            idx = np.arange(case.n)
            read[..., idx, idx] = read[..., idx, idx].real
    args: tuple = ()
    kwargs: dict = {}
    if case.call == "pinverse":
        if case.rcond is not None:
            args = (_tol_arg(case.rcond, 1.0, case.batch),)
    else:
        if case.rcond is not None or case.call == "positional3":
            args = (_tol_arg(case.rcond, 1.0, case.batch),)
        if case.call == "positional3":
            args = (*args, case.hermitian)
        elif case.hermitian:
            kwargs["hermitian"] = True
        for name in ("atol", "rtol"):
            t = getattr(case, name)
            if t is not None:
                kwargs[name] = _tol_arg(t, scale if name == "atol" else 1.0, case.batch)
        if case.method != "auto":
            kwargs["method"] = case.method
        if case.return_rank:
            kwargs["return_rank"] = True
        if not case.check_finite:
            kwargs["check_finite"] = False
    return Built(case, a_np, exact, read, at, rt, args, kwargs, bad, scale)


# ---------------------------------------------------------------------------------------
# The reference


def pow2(arr: np.ndarray, k) -> np.ndarray:
    """``arr * 2**k`` exactly (two steps, so that ``2**k`` itself may be out of range)."""
    k = np.asarray(k, dtype=np.int64)
    h = k // 2
    with np.errstate(over="ignore", under="ignore"):
        return arr * np.ldexp(1.0, h) * np.ldexp(1.0, k - h)


@dataclass
class Reference:
    s: np.ndarray  # (size, k) singular values of the read matrices, true scale
    lo: np.ndarray  # (size,) smallest rank SPEC allows (clear margin: lo == hi)
    hi: np.ndarray
    tol: np.ndarray  # (size,) threshold
    x_sc: np.ndarray  # (size, n, m) the exact pinv at rank lo of the scaled matrices
    e: np.ndarray  # (size,) member i was scaled by 2**-e[i] for the SVD
    finite: np.ndarray  # (size,) member finite where read

    def kappa(self, i: int, rank: int) -> float:
        if rank <= 0:
            return 1.0
        smax, sr = self.s_sc[i, 0], self.s_sc[i, rank - 1]
        return float(smax / sr) if sr > 0 else np.inf

    @property
    def s_sc(self) -> np.ndarray:
        return pow2(self.s, -self.e[:, None])


def reference(b: Built, margin: float) -> Reference:
    """SVD of each read matrix (scaled by a power of two), the allowed rank range
    ``[lo, hi]`` for the threshold (a singular value within ``margin`` of it, or within
    the noise of a backward-stable SVD, may go either way), and the pinv at rank ``lo``."""
    case = b.case
    size, m, n = math.prod(case.batch), case.m, case.n
    k = min(m, n)
    a = b.read.reshape(size, m, n)
    finite = np.isfinite(a).all(axis=(-2, -1)) if a.size else np.ones(size, dtype=bool)
    a = np.where(finite[:, None, None], a, 0)
    if case.backend == "jax":  # XLA on the CPU reads subnormal input as zero (DAZ)
        a = np.where(np.abs(a) < value_range(case.dtype)[1], 0, a)
    amax = np.abs(a).max(axis=(-2, -1)) if a.size else np.zeros(size)
    e = np.where(amax > 0, np.floor(np.log2(np.where(amax > 0, amax, 1))), 0).astype(np.int64)
    sa = pow2(a, -e[:, None, None])  # entries in [1, 2)
    if size and k:
        u, s_sc, vh = np.linalg.svd(sa, full_matrices=False)
    else:
        u = np.zeros((size, m, k))
        s_sc = np.zeros((size, k))
        vh = np.zeros((size, k, n))
    at, rt = b.atol.reshape(-1), b.rtol.reshape(-1)
    smax_sc = s_sc[:, 0] if k else np.zeros(size)
    tol_sc = np.maximum(pow2(at, -e), rt * smax_sc)
    # the SVD (ours in float64 here, the library's in its work precision) is backward
    # stable: a value is only decided when it is clear of the threshold by a factor and
    # by the noise of both
    noise = 4 * (work_eps(case.backend, case.dtype) + 2.0**-52) * smax_sc[:, None]
    t = tol_sc[:, None]
    above = (s_sc > margin * t) & (s_sc > t + noise)
    below = (s_sc * margin < t) & (s_sc < t - noise)
    zero = (amax == 0)[:, None]  # the zero matrix: rank 0 whatever the tolerance
    above &= ~zero
    below |= zero
    lo = above.sum(-1)
    hi = k - below.sum(-1)
    keep = np.arange(k)[None, :] < lo[:, None]
    inv = np.where(keep, 1 / np.where(keep, s_sc, 1), 0)
    x_sc = (np.conj(np.swapaxes(vh, -1, -2)) * inv[:, None, :]) @ np.conj(np.swapaxes(u, -1, -2))
    s = pow2(s_sc, e[:, None])
    return Reference(s, lo, hi, pow2(tol_sc, e), x_sc, e, finite)


def penrose(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The four Penrose residuals of one member (relative; float64 work)."""
    h = lambda t: t.conj().T  # noqa: E731
    ax, xa = a @ x, x @ a

    def rel(r, ref):
        den = np.linalg.norm(ref)
        return np.linalg.norm(r) / den if den > 0 else np.linalg.norm(r)

    return np.array(
        [rel(ax @ a - a, a), rel(xa @ x - x, x), rel(h(ax) - ax, ax), rel(h(xa) - xa, xa)]
    )


# ---------------------------------------------------------------------------------------
# Strategies

_SMALL = st.integers(0, 6)

#: Under the CI profile (``PI_FUZZ_PROFILE`` unset or ``ci``) a stack of matrices of at
#: most 8 x 8 has one of these shapes, the ones the kernel tests (``test_tiny.py``,
#: ``test_kernels.py``) compile anyway: every other shape is another written-out Jacobi
#: kernel (``_kernels/tiny.py``), 5-20 s of numba's cold compile each, which took most
#: of CI's time. The long profile draws every shape.
TINY_CI = ((1, 1), (1, 5), (5, 1), (2, 2), (3, 3), (4, 4), (5, 5), (6, 7), (7, 6), (8, 8),
           (2, 6), (8, 3), (1, 8), (8, 5))  # fmt: skip
_CI = os.environ.get("PI_FUZZ_PROFILE", "ci") == "ci"


def kernel_dims(draw, m: int, n: int, *, square: bool = False) -> tuple[int, int]:
    """``(m, n)`` as drawn, or under the CI profile one of ``TINY_CI`` (a square one if
    ``square``) where both are at most 8."""
    if not _CI or max(m, n) > 8 or (m, n) in TINY_CI:
        return m, n
    return draw(st.sampled_from([s for s in TINY_CI if s[0] == s[1] or not square]))


_EXTREME = (-300, -250, -200, -162, -150, -145, -100, 100, 145, 150, 162, 200, 250, 300)


@st.composite
def shapes(
    draw, *, allow_large: bool = True, only: str | None = None
) -> tuple[tuple[int, ...], int, int]:
    """Batch dims 0-2 (sizes 0-4), m, n mostly 0-12; rarely medium (8-80), a big stack
    of small matrices (the Jacobi kernel's 32+), or a large matrix (``min(m, n) >=
    svd.LARGE = 64``: the certified LU/QR/Gram paths)."""
    size_kind = only or draw(
        st.sampled_from(
            ["small"] * 14 + ["mid"] * 3 + ["medium", "stack"] + ["large"] * allow_large
        )
    )
    if size_kind == "large":
        m, n = draw(
            st.sampled_from([(64, 65), (65, 64), (64, 64), (200, 130), (130, 200), (72, 72)])
        )
        return draw(st.sampled_from([(), (), (2,)])), m, n
    if size_kind == "stack":
        m, n = kernel_dims(draw, draw(st.integers(1, 8)), draw(st.integers(1, 8)))
        return (draw(st.integers(32, 48)),), m, n
    if size_kind == "medium":
        m, n = draw(st.integers(8, 80)), draw(st.integers(8, 40))
        if draw(st.booleans()):
            m, n = n, m
        return tuple(draw(st.lists(st.integers(1, 3), max_size=1))), m, n
    big = size_kind == "mid"
    m = draw(st.integers(0, 12) if big else _SMALL)
    n = draw(st.integers(0, 12) if big else _SMALL)
    batch = tuple(draw(st.lists(st.integers(0, 4), max_size=2)))
    return batch, m, n


def _scale(draw, dtype: str) -> float:
    if is_integer(dtype):
        return 0.0
    if dtype == "float16":
        return draw(st.sampled_from([0.0, 0.0, -1.0, 1.0, 2.0, -2.0]))
    if dtype in ("float32", "complex64", "bfloat16"):
        return draw(st.sampled_from([0.0] * 6 + [-30.0, -20.0, -10.0, 10.0, 20.0, 30.0]))
    choice = draw(st.sampled_from(["unit"] * 6 + ["uniform", "extreme"]))
    if choice == "unit":
        return 0.0
    if choice == "uniform":
        return float(draw(st.integers(-290, 290)))
    return float(draw(st.sampled_from(_EXTREME)))


def _kappa(draw, dtype: str) -> float:
    if dtype in ("float16", "bfloat16"):
        return draw(st.sampled_from([0.0, 0.5, 1.0]))
    if dtype in ("float32", "complex64"):
        return draw(st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0]))
    return draw(st.sampled_from([0.0, 1.0, 3.0, 6.0, 8.0, 10.0]))


_FRACS_ABS = (0.0, 1e-12, 1e-6, 1e-3, 0.1, 0.5, 1.0, 3.0)
_FRACS_REL = (0.0, 1e-15, 1e-12, 1e-6, 1e-3, 0.01, 0.1, 0.5, 1.0, 2.0)


@st.composite
def tolerances(draw, batch, relative: bool) -> Tol:
    pool = _FRACS_REL if relative else _FRACS_ABS
    size = math.prod(batch)
    forms = ["number", "number"]
    if batch and size:
        forms += ["array", "list", "broadcast"]
    form = draw(st.sampled_from(forms))
    count = 1 if form == "number" else (batch[-1] if form == "broadcast" else size)
    fracs = tuple(draw(st.lists(st.sampled_from(pool), min_size=count, max_size=count)))
    return Tol(form, fracs, relative)


@st.composite
def cases(
    draw,
    *,
    backend: str | None = None,
    nonfinite: bool = False,
    large: bool = True,
    size: str | None = None,
) -> Case:
    """A full recipe: backend, dtype, byte order, shape, values, layout, keywords."""
    backend = backend or draw(st.sampled_from(weighted_backends()))
    dtype = draw(st.sampled_from(BACKEND_DTYPES[backend]))
    if nonfinite and is_integer(dtype):
        dtype = "float64" if "float64" in BACKEND_DTYPES[backend] else "float32"
    byteorder = "="
    if backend in SWAPPABLE and dtype not in ("bool", "int8", "uint8", "bfloat16"):
        byteorder = draw(st.sampled_from(["=", "=", ">", "<"]))
    batch, m, n = draw(shapes(allow_large=large and not nonfinite, only=size))
    if backend == "mlx" and max(m, n) > 40:  # keep MLX's CPU linalg cheap
        m, n = min(m, 40), min(n, 40)
    call = draw(st.sampled_from(["pinv"] * 8 + ["pinverse", "positional3"]))
    hermitian = m == n and call != "pinverse" and draw(st.integers(0, 3)) == 0
    if is_integer(dtype):
        kind = "integers"
    elif hermitian:
        kind = draw(
            st.sampled_from(
                ["hermitian", "hermitian", "spectrum", "threshold", "zeros", "integers", "sparse"]
            )
        )
    else:
        kinds = ["gauss", "gauss", "lowrank", "lowrank", "spectrum", "spectrum"]
        kinds += ["threshold", "threshold", "zeros", "integers", "sparse", "graded"]
        kind = draw(st.sampled_from([*kinds, "hermitian"] if m == n else kinds))
    k = min(m, n)
    rank = None
    if kind in ("lowrank", "spectrum") or (kind == "hermitian" and draw(st.booleans())):
        rank = draw(st.integers(0, k))
    scale_exp = _scale(draw, dtype) if kind not in ("integers", "zeros", "sparse") else 0.0
    kappa_exp = _kappa(draw, dtype) if kind in ("spectrum", "threshold", "graded") else 0.0
    if kind == "graded" and dtype in ("float64", "complex128", "longdouble", "clongdouble"):
        kappa_exp = draw(st.sampled_from([0.0, 10.0, 100.0, 200.0]))
        scale_exp = min(scale_exp, 100.0) if kappa_exp else scale_exp
    member_scales = bool(batch) and draw(st.integers(0, 4)) == 0
    delta = draw(st.sampled_from([-1e-3, 1e-3, -1e-6, 1e-6, 0.0])) if kind == "threshold" else 0.0
    layouts = ["C", "C", "C"]
    if backend in ("numpy", "dask"):
        layouts += ["F", "slice", "colslice", "negative", "transposed", "readonly"]
        if batch and all(batch) and not nonfinite:
            layouts += ["broadcast"]
        if backend == "numpy" and not batch:
            layouts += ["matrix"]
        if backend == "numpy" and dtype in ("float64", "complex128") and byteorder == "=":
            if m and n and all(batch):  # a nested list cannot hold a zero-size shape
                layouts += ["list"]
    elif backend in ("torch", "torch-grad"):
        layouts += ["F", "slice", "colslice", "transposed"]
    layout = draw(st.sampled_from(layouts))
    upper_garbage = hermitian and draw(st.booleans())
    atol = rtol = rcond = None
    if call == "pinverse":
        if draw(st.booleans()):
            rcond = draw(tolerances(batch, True))
    else:
        style = draw(st.sampled_from(["default", "default", "rtol", "atol", "both", "rcond"]))
        if style in ("rtol", "both"):
            rtol = draw(tolerances(batch, True))
        if style in ("atol", "both"):
            atol = draw(tolerances(batch, False))
        if style == "rcond" or (call == "positional3" and draw(st.booleans())):
            rcond = draw(tolerances(batch, True))
        if rcond is not None:
            rtol = None  # rcond and rtol together are a TypeError (test_bad_arguments)
    methods = ["auto"] * 6 + ["svd", "jacobi", "batched", "qr", "randomized"]
    if hermitian:
        methods += ["eigh", "eigh"]
    method = "auto" if call == "pinverse" else draw(st.sampled_from(methods))
    if method == "jacobi" and (max(m, n) > 40 and math.prod(batch) > 2):
        method = "svd"  # the kernel works at any size, but keep examples cheap
    chunks: tuple[int, ...] = ()
    if backend == "dask":
        chunks = tuple(draw(st.integers(1, max(1, b))) for b in batch)
        if not batch and m:
            chunks = (draw(st.integers(1, m)),)
    nf: tuple = ()
    if nonfinite:
        size = math.prod(batch)
        count = draw(st.integers(1, 3)) if size else 0
        nf = tuple(
            (
                draw(st.integers(0, max(size - 1, 0))),
                draw(st.sampled_from(["lower", "upper", "imag"]) if hermitian else st.just("any")),
                draw(st.sampled_from(["nan", "inf", "-inf"])),
            )
            for _ in range(count)
        )
        if m == 0 or n == 0:
            nf = ()
    return Case(
        backend=backend,
        dtype=dtype,
        byteorder=byteorder,
        batch=batch,
        m=m,
        n=n,
        kind=kind,
        seed=draw(st.integers(0, 2**32 - 1)),
        scale_exp=scale_exp,
        member_scales=member_scales,
        kappa_exp=kappa_exp,
        rank=rank,
        delta=delta,
        hermitian=hermitian,
        upper_garbage=upper_garbage,
        layout=layout,
        atol=atol,
        rtol=rtol,
        rcond=rcond,
        call=call,
        method=method,
        return_rank=call != "pinverse" and draw(st.booleans()),
        check_finite=True if call == "pinverse" else draw(st.booleans()),
        out="good"
        if call != "pinverse"
        and backend in ("numpy", "torch", "array_api_strict")
        and draw(st.integers(0, 5)) == 0
        else "none",
        chunks=chunks,
        backward=backend == "torch-grad" and draw(st.booleans()),
        jit=backend == "jax" and not nf and call == "pinv" and draw(st.booleans()),
        nonfinite=nf,
    )


def native(case: Case) -> Case:
    """The same case in native byte order and C layout (for invariance checks)."""
    return replace(case, byteorder="=", layout="C")
