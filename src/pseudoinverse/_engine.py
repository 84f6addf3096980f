"""The compute beneath every adapter: NumPy stacks and the portable Array API core.

Three operations, one spectral-filter idea (``_methods/spectral.py``): the
pseudo-inverse (``compute_numpy``/``compute_xp``), its product with a right-hand side
(``solve_numpy``/``solve_xp``) and the damped inverse or its product
(``damped_numpy``/``damped_xp``). All take validated input (``_validate`` checked it)
and share the non-finite rule of
``_finite``: a matrix with NaN/Inf raises (``check_finite=True``) or gets an all-NaN
result and rank 0, the others are computed normally. On NumPy stacks only the good
members reach a method, each scaled first by a power of two where its entries are
extreme; the portable core uses masks only (jit, vmap and Dask stay static). Nothing
here imports the public layer above it.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from . import _finite, _methods


def compute_numpy(
    a: np.ndarray,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple[np.ndarray, np.ndarray]:
    *batch, m, n = a.shape
    stack = np.ascontiguousarray(a.reshape(-1, m, n), dtype=dtype)
    bad = _finite.bad_members(np, stack, hermitian)
    any_bad = bool(bad.any())
    if any_bad and check_finite:
        _finite.raise_if_bad(np, bad.reshape(batch))
    atol, rtol = atol.reshape(-1), rtol.reshape(-1)
    if any_bad:  # only the good members are computed (a method may refuse a zero matrix)
        good = ~bad
        x = np.full((len(stack), n, m), np.nan, dtype=stack.dtype)
        rank = np.zeros(len(stack), dtype=np.int64)
        if good.any():
            x[good], rank[good] = _run(method, stack[good], atol[good], rtol[good], hermitian)
    else:
        x, rank = _run(method, stack, atol, rtol, hermitian)
    return x.reshape(*batch, n, m), rank.reshape(batch)


# The dtypes of the one-matrix fast path (native byte order only: ``np.dtype`` equality
# would let a big-endian array through, which LAPACK wrappers then copy differently).
_FAST_DTYPES = frozenset(np.dtype(t) for t in ("float32", "float64", "complex64", "complex128"))


def pinv_single(a: np.ndarray, hermitian: bool = False) -> tuple[np.ndarray, int, str] | None:
    """The default ``pinv(a)`` of one NumPy matrix of up to ``FAST_SIZE`` entries without
    the general path's overhead, or ``None``: ``(X, rank, method)``.

    The public ``pinv`` calls this first for a plain 2-D ``np.ndarray`` with every keyword
    at its default (a control loop inverting one Jacobian per tick pays validation and
    routing on every call: they cost more than the SVD of a 6x7 matrix). It applies only
    where the general path would run the method ``"auto"`` picks on the matrix as it is
    (``hermitian`` too, on a square matrix):
    a native float32/float64/complex dtype, non-empty, and the largest magnitude (NaN
    fails the test) zero or within the safe range, where ``_scaled`` would not scale.
    Then it computes exactly what the general path computes (the same method on the
    same C-ordered data, so the same bits; ``tests/test_pinv.py`` compares them); anything
    else returns ``None`` and takes the general path, which validates and raises as
    documented.
    """
    if a.ndim != 2 or a.dtype not in _FAST_DTYPES or not a.dtype.isnative:
        return None
    m, n = a.shape
    if m == 0 or n == 0 or a.size > FAST_SIZE or (hermitian and m != n):
        return None
    limit = 2.0 ** _SAFE_EXPONENT[a.itemsize if a.dtype.kind == "f" else a.itemsize // 2]
    big = float(np.abs(a).max())
    if not (big == 0 or 1 / limit <= big < limit):
        return None
    name = _methods.choose("auto", hermitian, (1, m, n), a.dtype)
    rtol = float(np.finfo(a.dtype).eps) * max(m, n)
    if name == "svd":  # the same operations as pinv_svd's, with scalars
        return (*_methods.pinv_svd_single(np.ascontiguousarray(a), rtol), name)
    stack = np.ascontiguousarray(a)[None]
    x, rank = _methods.run_numpy(name, stack, np.zeros(1), np.full(1, rtol), hermitian)
    return x[0], int(rank[0]), name


FAST_SIZE = 1 << 16  # entries; above, one pass over the data costs more than the overhead


def _run(
    method: str, stack: np.ndarray, atol: np.ndarray, rtol: np.ndarray, hermitian: bool
) -> tuple[np.ndarray, np.ndarray]:
    """A finite stack through the method, scaled first where its entries are extreme."""
    stack, atol, scale = _scaled(stack, atol, hermitian)
    x, rank = _methods.run_numpy(method, stack, atol, rtol, hermitian)
    if scale is not None:  # pinv(A) = s pinv(s A), exact for a power of two s
        x = _times(x, scale)
    return x, rank


# Entries of magnitude within [2**-E, 2**E] leave every method's sums of squares and Gram
# matrices (up to ~1e10 terms) clear of overflow and of gradual underflow in the dtype
# in which it computes; outside, the matrix is scaled first.
_SAFE_EXPONENT = {4: 32, 8: 256}  # float32 / float64 (by the real dtype's itemsize)


def _real_view(stack: np.ndarray) -> np.ndarray:
    """A C-contiguous stack as reals: a complex one as pairs ``(B, m, 2 n)`` (a view)."""
    if stack.dtype.kind != "c":
        return stack
    return np.ascontiguousarray(stack).view(np.finfo(stack.dtype).dtype)


def _times(stack: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``stack`` times a power of two per member, in its dtype: exact, and real
    arithmetic only (a complex product would turn an unread Inf into NaN)."""
    with np.errstate(over="ignore", under="ignore"):  # only if the true value is
        parts = _real_view(stack) * scale[:, None, None]  # out of range; float64: exact
        # (the cast back too: float32 data meets a float64 scale, inf where out of range)
        return parts.astype(np.finfo(stack.dtype).dtype).view(stack.dtype)


def _in_range(flat: np.ndarray, limit: int) -> bool:
    """Whether no member can need scaling, from a few passes over the whole stack (one
    reduction per member is slow in NumPy for short rows: 1e5 6x7 matrices took 0.16 s).

    True when every entry is below ``2**limit`` in magnitude and every nonzero one at
    least ``2**(-limit - 1)``: then each member's largest entry (or only its lower
    triangle's, with ``hermitian``) is zero or has an exponent within ``+-limit``.
    """
    if flat.size == 0:
        return True
    if not (flat.max() < 2.0**limit and flat.min() > -(2.0**limit)):
        return False
    small = 2.0 ** (-limit - 1)
    chunk = 1 << 15  # |x| by chunks into one buffer that stays in cache (no big temporary)
    buf = np.empty(min(flat.size, chunk), dtype=flat.dtype)
    for start in range(0, flat.size, chunk):
        part = flat[start : start + chunk]
        mags = np.abs(part, out=buf[: len(part)])
        if mags.min() < small and np.any((mags < small) & (mags != 0)):
            return False
    return True


def _scaled(
    stack: np.ndarray, atol: np.ndarray, hermitian: bool
) -> tuple[np.ndarray, np.ndarray, Any]:
    """Scale the members whose largest entry is outside the safe range by a power of two.

    ``pinv(s A) = pinv(A) / s`` and ``sigma(s A) = s sigma(A)``: with ``atol`` scaled
    alike the rank decision is unchanged, and a power of two is exact, so the result
    ``s pinv(s A)`` is that of the unscaled computation where that one does not overflow
    (``OverflowError``/``ZeroDivisionError`` in the certificates, lost accuracy in a
    squared norm). With ``hermitian`` only the lower triangle, the part that is read,
    sets the scale. Returns ``(stack, atol, s or None)``; ``stack`` is not modified.
    """
    limit = _SAFE_EXPONENT[np.finfo(stack.dtype).dtype.itemsize]
    if _in_range(_real_view(stack).reshape(-1), limit):  # the common case, cheaply
        return stack, atol, None
    flat = _real_view(np.tril(stack) if hermitian else stack).reshape(len(stack), -1)
    big = np.maximum(flat.max(axis=1), -flat.min(axis=1)).astype(np.float64)
    _, exponent = np.frexp(big)  # big = f 2**exponent, f in [0.5, 1)
    outside = (big > 0) & np.isfinite(big) & (np.abs(exponent) > limit)
    if not outside.any():
        return stack, atol, None
    # 2**1000 stays finite: a subnormal maximum (exponent < -1000) ends within the range
    scale = np.ldexp(1.0, np.where(outside, np.clip(-exponent, -1000, 1000), 0))
    with np.errstate(over="ignore", under="ignore"):
        atol = atol * scale
    return _times(stack, scale), atol, scale


def compute_xp(
    xp: Any,
    a: Any,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple[Any, Any]:
    """The portable path: any Array API namespace, masks only, no data-dependent shape."""
    device = array_api_compat.device(a)
    a = xp.astype(a, dtype)
    bad = _finite.bad_members(xp, a, hermitian)
    if check_finite:
        _finite.raise_if_bad(xp, bad)
    a = xp.where(bad[..., None, None], xp.zeros_like(a), a)
    real = xp.float32 if dtype in (xp.float32, xp.complex64) else xp.float64
    atol_x = xp.asarray(atol, dtype=real, device=device)
    rtol_x = xp.asarray(rtol, dtype=real, device=device)
    # with hermitian, the scale from the part that is read (an unread Inf must not scale)
    read = _methods.hermitian_from_lower(xp, a) if hermitian else a
    scale = _scale_xp(xp, read, real)
    a, atol_x = a * xp.astype(scale, a.dtype)[..., None, None], atol_x * scale
    a = _flush_subnormal(xp, a, real)
    x, rank = _methods.run_xp(xp, method, a, atol_x, rtol_x, hermitian)
    x = x * xp.astype(scale, x.dtype)[..., None, None]  # pinv(A) = s pinv(s A)
    nan = xp.full_like(x, float("nan"))
    x = xp.where(bad[..., None, None], nan, x)
    return x, xp.where(bad, xp.zeros_like(rank), rank)


def _flush_subnormal(xp: Any, a: Any, real: Any) -> Any:
    """Subnormal entries set to zero: LAPACK's SVD (through torch) returned NaN for a
    complex64 matrix holding one. After ``_scale_xp`` the largest entry is at least
    ``2**-E`` (``_SAFE_EXPONENT``), so this perturbs ``A`` by less than ``eps ||A||``
    relative: within the SVD's own backward error."""
    tiny = float(xp.finfo(real).smallest_normal)
    return xp.where(xp.abs(a) < tiny, xp.zeros_like(a), a)


def _scale_xp(xp: Any, a: Any, real: Any) -> Any:
    """``_scaled``'s rule in Array API operations, with no host sync (jit, vmap stay
    static): per matrix ``2**-e`` where its largest entry ``~2**e`` is outside the safe
    range, else 1 (exact); the backend's SVD then sees no overflowing squares and no
    subnormal input (on which LAPACK's SVD returned NaN or failed to converge)."""
    limit = _SAFE_EXPONENT[8 if real == xp.float64 else 4]
    clip = 1000 if real == xp.float64 else 126  # 2**clip stays finite in the dtype
    big = xp.max(xp.abs(a), axis=(-2, -1))
    exponent = xp.floor(xp.log2(xp.where(big > 0, big, xp.ones_like(big))))
    outside = xp.abs(exponent) > limit
    shift = xp.clip(-exponent, min=-clip, max=clip)
    two = xp.full_like(big, 2.0)
    return xp.where(outside, xp.pow(two, shift), xp.ones_like(big))


def _pow2_scale(stack: np.ndarray) -> np.ndarray | None:
    """A right-hand side's ``_scaled`` rule: per member ``2**-e`` where its largest entry
    ``~2**e`` is outside the safe range (else 1); ``None`` when no member needs it."""
    limit = _SAFE_EXPONENT[np.finfo(stack.dtype).dtype.itemsize]
    if _in_range(_real_view(stack).reshape(-1), limit):
        return None
    flat = _real_view(stack).reshape(len(stack), -1)
    big = np.abs(flat).max(axis=1).astype(np.float64) if flat.shape[1] else np.zeros(len(stack))
    _, exponent = np.frexp(big)
    outside = (big > 0) & np.isfinite(big) & (np.abs(exponent) > limit)
    if not outside.any():
        return None
    return np.ldexp(1.0, np.where(outside, np.clip(-exponent, -1000, 1000), 0))


def _as_stacks(a: np.ndarray, b: np.ndarray | None, dtype: Any):
    """C-contiguous ``(B, m, n)`` / ``(B, m, k)`` stacks of ``dtype``."""
    m, n = a.shape[-2:]
    stack = np.ascontiguousarray(a.reshape(-1, m, n), dtype=dtype)
    # len(stack), not -1: with k = 0 the size is 0 and -1 is ambiguous (NumPy refuses)
    rhs = None if b is None else np.ascontiguousarray(b.reshape(len(stack), m, b.shape[-1]), dtype)
    return stack, rhs


def _bad(stack: np.ndarray, rhs: np.ndarray | None, batch: list[int], hermitian: bool,
         check_finite: bool) -> np.ndarray:  # fmt: skip
    """The bad members (NaN/Inf where ``A`` is read, or anywhere in ``B``); raises for
    them if ``check_finite``, naming the array that is bad at the first one."""
    bad_a = bad = _finite.bad_members(np, stack, hermitian)
    if rhs is not None and rhs.size:
        bad = bad | _finite.bad_members(np, rhs, False)
    if check_finite and bad.any():
        first = int(np.argmax(bad))
        _finite.raise_if_bad(np, bad.reshape(batch), "A" if bad_a[first] else "B")
    return bad


def solve_numpy(
    a: np.ndarray,
    b: np.ndarray,
    atol: np.ndarray,
    rtol: np.ndarray,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """``pinv(A) @ B`` for ``a (*batch, m, n)``, ``b (*batch, m, k)``: ``(x, rank)``.

    As ``compute_numpy``: only good members reach the method, scaled by powers of two
    where extreme (``x = (s / t) solve(s A, t B)``, exact), with the same rank decision.
    Stacks of small real matrices first try the compiled full-rank route on the raw
    stack (``_methods.solve_first``: it scales each member itself and refuses non-finite
    ones); only the members it refuses take the checks and routes below.
    """
    *batch, _, n = a.shape
    k = b.shape[-1]
    at, rt = atol.reshape(-1), rtol.reshape(-1)
    stack, rhs = _as_stacks(a, b, dtype)
    first = None
    if k and a.size:
        first = _methods.solve_first(method, stack, rhs, at, rt, hermitian)
        if first is not None and first[2].all():
            return first[0].reshape(*batch, n, k), first[1].reshape(batch)
        if first is not None:  # the others take the method "auto" chose for the stack
            method = first[3]
    bad = _bad(stack, rhs, batch, hermitian, check_finite)
    good = ~bad
    if first is None and k and good.all():  # nothing to mask: the method's arrays are it
        xs, rs = _solve_good(stack, rhs, at, rt, hermitian, method)
        return xs.reshape(*batch, n, k), rs.reshape(batch)
    if first is not None:
        x, rank, done, _ = first
        x[bad], rank[bad] = np.nan, 0
        good &= ~done
    else:
        x = np.full((len(stack), n, k), np.nan, dtype=stack.dtype)
        rank = np.zeros(len(stack), dtype=np.int64)
    if good.any() and k:
        x[good], rank[good] = _solve_good(
            stack[good], rhs[good], at[good], rt[good], hermitian, method
        )
    elif good.any():  # k == 0: no columns, but the rank is still A's
        _, rank[good] = compute_numpy(
            stack[good],
            at[good],
            rt[good],
            dtype=dtype,
            hermitian=hermitian,
            method=method,
            check_finite=False,
        )
    return x.reshape(*batch, n, k), rank.reshape(batch)


def _solve_good(
    stack: np.ndarray,
    rhs: np.ndarray,
    atol: np.ndarray,
    rtol: np.ndarray,
    hermitian: bool,
    method: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Finite stacks through the method, scaled by powers of two where extreme."""
    s_a, at, scale = _scaled(stack, atol, hermitian)
    t = _pow2_scale(rhs)
    s_b = rhs if t is None else _times(rhs, t)
    xs, rs = _methods.run_solve_numpy(method, s_a, s_b, at, rtol, hermitian)
    if scale is not None or t is not None:
        ratio = (np.ones(len(rhs)) if scale is None else scale) / (1 if t is None else t)
        xs = _times(np.ascontiguousarray(xs), ratio)
    return xs, rs


def damped_numpy(
    a: np.ndarray,
    damping: np.ndarray,
    b: np.ndarray | None,
    *,
    dtype: Any,
    hermitian: bool,
    check_finite: bool,
) -> np.ndarray:
    """The damped inverse of ``a (*batch, m, n)`` (``damping`` float64 of the batch
    shape), or its product with ``b (*batch, m, k)``; bad members get NaN. Stacks of
    small real matrices first try the compiled routes on the raw stack
    (``_methods.damped_first``, which scales each member itself and refuses non-finite
    ones); only the members they refuse take the checks and routes below."""
    *batch, m, n = a.shape
    cols = m if b is None else b.shape[-1]
    lam = np.broadcast_to(damping, batch).reshape(-1)
    stack, rhs = _as_stacks(a, b, dtype)
    first = None
    if cols and a.size:
        first = _methods.damped_first(stack, lam, rhs, hermitian)
        if first is not None and first[1].all():
            return first[0].reshape(*batch, n, cols)
    bad = _bad(stack, rhs, batch, hermitian, check_finite)
    good = ~bad
    if first is None and cols and good.all():  # nothing to mask: the method's array is it
        return _damped_good(stack, lam, rhs, hermitian).reshape(*batch, n, cols)
    if first is not None:
        x, done = first
        x[bad] = np.nan
        good &= ~done
    else:
        x = np.full((len(stack), n, cols), np.nan, dtype=stack.dtype)
    if good.any() and cols:
        x[good] = _damped_good(
            stack[good], lam[good], None if rhs is None else rhs[good], hermitian, first is None
        )
    return x.reshape(*batch, n, cols)


def _damped_good(
    stack: np.ndarray,
    lam: np.ndarray,
    rhs: np.ndarray | None,
    hermitian: bool,
    gram: bool = True,
) -> np.ndarray:
    """Finite stacks through the damped methods, scaled by powers of two where extreme:
    ``damped(s A, s lambda) = damped(A, lambda) / s`` (lambda scales like atol);
    ``gram=False`` where ``damped_first`` already refused these members."""
    lam_in = lam
    s_a, lam, scale = _scaled(stack, lam, hermitian)
    t = None if rhs is None else _pow2_scale(rhs)
    s_b = rhs if t is None else _times(rhs, t)
    xs = _methods.run_damped_numpy(s_a, lam, s_b, hermitian, gram)
    if scale is not None or t is not None:
        ratio = (np.ones(len(s_a)) if scale is None else scale) / (1 if t is None else t)
        xs = _times(np.ascontiguousarray(xs), ratio)
    if scale is not None:
        xs = _dominant_damping(stack, lam_in, lam, s_a, rhs, xs, hermitian)
    return xs


def _dominant_damping(stack, lam_in, lam_sc, s_a, rhs, xs, hermitian):
    """Members whose scaled ``lambda`` dwarfs ``sigma_max`` (by ``2**(p/2)``, ``p`` the
    precision in bits): the filter ``sigma / (sigma^2 + lambda^2)`` underflows in the
    scaled space although ``X`` itself need not, so ``X = (A^H / lambda) / lambda`` from
    the unscaled matrix, exact to ``(sigma_max / lambda)^2 < eps``."""
    from ._methods.eigh import hermitian_from_lower

    bits = np.finfo(stack.dtype).nmant + 1
    m, n = stack.shape[1:]
    read = np.tril(s_a) if hermitian else s_a  # an unread triangle may be Inf once scaled
    amax = np.abs(_real_view(read).reshape(len(s_a), -1)).max(axis=1).astype(np.float64)
    series = lam_sc > 2.0 ** (bits / 2) * amax * np.sqrt(2 * m * n)
    if not series.any():
        return xs
    a = stack[series]
    if hermitian:
        a = hermitian_from_lower(np, a)
    lam = lam_in[series].astype(np.finfo(stack.dtype).dtype)[:, None, None]
    with np.errstate(under="ignore"):
        x = (np.conj(a.transpose(0, 2, 1)) / lam) / lam
        xs = np.array(xs, copy=True)
        xs[series] = x if rhs is None else x @ rhs[series]
    return xs


# --------------------------------------------------------------------------- portable


PinvFn = Any  # (a, atol, rtol, hermitian, method) -> (x, rank): bad members NaN, no raise


def _portable_pinv(xp: Any, dtype: Any) -> PinvFn:
    def fn(a: Any, atol: Any, rtol: Any, hermitian: bool, method: str) -> tuple[Any, Any]:
        return compute_xp(
            xp,
            a,
            atol,
            rtol,
            dtype=dtype,
            hermitian=hermitian,
            method=method,
            check_finite=False,
        )

    return fn


def _nan_where(xp: Any, bad: Any, x: Any) -> Any:
    return xp.where(bad[..., None, None], xp.full_like(x, float("nan")), x)


def solve_xp(
    xp: Any,
    a: Any,
    b: Any,
    atol: Any,
    rtol: Any,
    *,
    dtype: Any,
    hermitian: bool,
    method: str,
    check_finite: bool,
    pinv_fn: PinvFn | None = None,
) -> tuple[Any, Any]:
    """``pinv(A) @ B`` on the portable path: the (differentiable) ``pinv_fn`` of the
    adapter (default: :func:`compute_xp`) multiplied into ``B``. After the SVD, forming
    ``A^+`` costs less than the SVD itself, and the derivative in ``A`` and ``B`` is then
    ``pinv``'s Golub–Pereyra rule and a product's."""
    pinv_fn = pinv_fn or _portable_pinv(xp, dtype)
    a, b = xp.astype(a, dtype), xp.astype(b, dtype)
    bad_b = ~xp.all(xp.isfinite(b), axis=(-2, -1))
    if check_finite:
        _finite.raise_if_bad_pair(xp, _finite.bad_members(xp, a, hermitian), bad_b)
    x, rank = pinv_fn(a, atol, rtol, hermitian, method)
    y = _nan_where(xp, bad_b, x @ _finite.zero_bad(xp, b, bad_b))
    return y, xp.where(bad_b, xp.zeros_like(rank), rank)


DampedFn = Any  # (t tall, lam of the batch shape) -> (X, P): the ``_damped`` factors


def damped_xp(
    xp: Any,
    a: Any,
    damping: Any,
    b: Any,
    *,
    dtype: Any,
    hermitian: bool,
    check_finite: bool,
    damped_fn: DampedFn | None = None,
) -> Any:
    """The damped inverse (or its product with ``B``) on the portable path.

    ``damped_fn`` (default ``_methods.spectral.damped_factors_xp``; the adapters pass their
    differentiable wrapper) gets the tall orientation ``T`` (``A``, or ``A^H`` when
    wide), scaled by a power of two as ``compute_xp`` does, with ``lambda`` scaled alike
    (``X(c T, c lambda) = X(T, lambda) / c``); ``A`` is then ``X``'s conjugate transpose.
    """
    from ._methods.eigh import hermitian_from_lower
    from ._methods.spectral import damped_factors_xp

    a = xp.astype(a, dtype)
    bad = _finite.bad_members(xp, a, hermitian)
    bad_b = None if b is None else ~xp.all(xp.isfinite(b), axis=(-2, -1))
    if check_finite:
        _finite.raise_if_bad_pair(xp, bad, bad_b)
    a = _finite.zero_bad(xp, a, bad)
    if hermitian:
        a = hermitian_from_lower(xp, a)
    m, n = a.shape[-2:]
    wide = m < n
    t = _ct(xp, a) if wide else a
    real = xp.float32 if dtype in (xp.float32, xp.complex64) else xp.float64
    scale = _scale_xp(xp, t, real)
    lam_in = xp.broadcast_to(xp.astype(damping, real), tuple(a.shape[:-2]))
    lam = lam_in * scale
    t_in, t = t, _flush_subnormal(xp, t * xp.astype(scale, t.dtype)[..., None, None], real)
    if damped_fn is None:
        x, _ = damped_factors_xp(xp, t, lam)
    else:
        x, _ = damped_fn(t, lam)
    x = x * xp.astype(scale, x.dtype)[..., None, None]
    # lambda dwarfing sigma_max by 2**(p/2): the scaled filter underflows, X need not
    # (as _dominant_damping on NumPy stacks): X = (T^H / lambda) / lambda, exact to eps
    bits = 24 if real == xp.float32 else 53
    m_t, n_t = t.shape[-2:]
    amax = xp.max(xp.abs(t), axis=(-2, -1)) * (2.0 * m_t * n_t) ** 0.5
    series = lam > 2.0 ** (bits / 2) * amax
    safe = xp.where(lam_in > 0, lam_in, xp.ones_like(lam_in))[..., None, None]
    x = xp.where(
        series[..., None, None], _div_real(xp, _div_real(xp, _ct(xp, t_in), safe), safe), x
    )
    x = _nan_where(xp, bad, _ct(xp, x) if wide else x)
    if b is None:
        return x
    b = xp.astype(b, dtype)
    return _nan_where(xp, bad_b, x @ _finite.zero_bad(xp, b, bad_b))


def _div_real(xp: Any, x: Any, r: Any) -> Any:
    """``x / r`` for a real ``r``, part by part for complex ``x``: XLA's complex division
    squares the divisor's modulus, which underflows for a tiny ``r`` (0 / 0: NaN)."""
    if not xp.isdtype(x.dtype, "complex floating"):
        return x / r
    re, im = xp.real(x) / r, xp.imag(x) / r
    return xp.astype(re, x.dtype) + xp.astype(im, x.dtype) * 1j


def _ct(xp: Any, x: Any) -> Any:
    x = xp.matrix_transpose(x)
    return xp.conj(x) if xp.isdtype(x.dtype, "complex floating") else x
