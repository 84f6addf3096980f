"""Fuzz campaign for the compiled first routes on stacks of small real matrices
(``_methods.damped_first``/``solve_first``: the float64 Gram kernel for float32, the
CholeskyQR2 kernel for the rest): stacks of 32-200 members mixing well- and
ill-conditioned, rank-deficient, zero, extreme (1e+-300, float32 1e+-30) and non-finite
members, damping from 0 to far beyond ``sigma_max``, C, Fortran, sliced and read-only
layouts, byte orders, hermitian.

Checked against float64 references from NumPy's SVD of each member (computed at scale
1, so 1e300 members do not overflow the reference):

* ``damped_pinv`` / ``damped_pinv_solve``: within ``16 p eps kappa_lambda`` of the SVD
  filter (ours and that reference each within the promise's ``8 p eps kappa_lambda``;
  float32 data adds its rounding ``2 eps32``), where that bound is below 1/2;
* ``pinv_solve``: the rank equals ``pinv``'s for every member, and the solution is
  within ``8 p eps kappa`` of ``pinv(A) b`` where the rank is full;
* NaN/Inf members: the error names the first one (``check_finite``), or NaN results and
  rank 0 there with the other members unchanged.

``PI_FUZZ_EXAMPLES`` sets the number of examples (CI: 120).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from fuzz_strategies import kernel_dims
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pseudoinverse as pi

EXAMPLES = int(os.environ.get("PI_FUZZ_EXAMPLES", "120"))
KINDS = ["gauss", "gauss", "ill", "deficient", "zero", "huge", "tiny", "nonfinite"]


@st.composite
def stacks(draw):
    dtype = draw(st.sampled_from([np.float64, np.float64, np.float32]))
    hermitian = draw(st.integers(0, 4)) == 0
    m = draw(st.integers(1, 12))
    n = m if hermitian else draw(st.integers(1, 12))
    m, n = kernel_dims(draw, m, n, square=hermitian)  # the CI profile's shapes
    count = draw(st.integers(32, 200))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
    lam_style = draw(st.sampled_from(["scalar", "per", "zero", "tiny", "huge"]))
    layout = draw(st.sampled_from(["C", "F", "slice", "readonly", "swapped"]))
    return dtype, hermitian, m, n, count, kinds, lam_style, layout, draw(st.integers(0, 2**32))


def _member(rng, kind, m, n, dtype):
    s = min(m, n)
    a = rng.standard_normal((m, n))
    if kind == "ill":
        u, _, vt = np.linalg.svd(a, full_matrices=False)
        top = 7 if dtype == np.float32 else 15
        a = (u * np.logspace(0, -rng.uniform(1, top), s)) @ vt
    elif kind == "deficient" and s > 1:
        r = int(rng.integers(0, s))
        a = rng.standard_normal((m, r)) @ rng.standard_normal((r, n))
    elif kind == "zero":
        a = np.zeros((m, n))
    elif kind == "huge":
        a = a * (1e30 if dtype == np.float32 else 1e300)
    elif kind == "tiny":
        a = a * (1e-30 if dtype == np.float32 else 1e-300)
    elif kind == "nonfinite":
        a[rng.integers(m), rng.integers(n)] = rng.choice([np.nan, np.inf, -np.inf])
    return a


def _build(case):
    dtype, hermitian, m, n, count, kinds, lam_style, layout, seed = case
    rng = np.random.default_rng(seed)
    a = np.stack([_member(rng, kinds[i % len(kinds)], m, n, dtype) for i in range(count)])
    a = a[rng.permutation(count)]
    if hermitian:
        lower = np.tril(a)
        a = lower + np.swapaxes(np.tril(a, -1), -1, -2)
        garbage = np.triu(rng.standard_normal(a.shape), 1) * 1e3  # never read
        a_in = np.tril(a) + garbage
    else:
        a_in = a
    with np.errstate(over="ignore"):
        a_in = a_in.astype(dtype)
    a = np.tril(a_in) + np.swapaxes(np.tril(a_in, -1), -1, -2) if hermitian else a_in
    b = rng.standard_normal((count, m)).astype(dtype)
    big = np.nan_to_num(np.abs(a.astype(np.float64)), posinf=1.0).max(axis=(1, 2))
    big = np.where(big > 0, big, 1.0)
    lam = {
        "scalar": big * 0 + float(10.0 ** rng.uniform(-4, 1)) * np.median(big),
        "per": big * 10.0 ** rng.uniform(-6, 2, count),
        "zero": np.zeros(count),
        "tiny": big * 1e-12,
        "huge": big * 1e8,
    }[lam_style]
    if layout == "F":
        a_in = np.asfortranarray(a_in)
    elif layout == "slice":
        a_in = np.repeat(a_in, 2, axis=0)[::2]
    elif layout == "readonly":
        a_in = a_in.copy()
        a_in.flags.writeable = False
    elif layout == "swapped":
        a_in = a_in.astype(a_in.dtype.newbyteorder(">"))
    lam_in = float(lam[0]) if lam_style in ("scalar", "zero") else lam
    if lam_style in ("scalar", "zero"):
        lam = np.full(count, lam_in)
    return a_in, a.astype(np.float64), b, lam_in, lam, hermitian


def _svd_scaled(a):
    """Per member ``(u, s, vt, c)`` of ``a / c``, ``c = max|a|`` (1 for a zero member)."""
    c = np.abs(a).max(axis=(1, 2))
    c = np.where(c > 0, c, 1.0)
    u, s, vt = np.linalg.svd(a / c[:, None, None], full_matrices=False)
    return u, s, vt, c


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=False,
)
@given(case=stacks())
def test_stacked_routes(case):
    a_in, a, b, lam_in, lam, herm = _build(case)
    _, m, n = a.shape
    dtype = a_in.dtype.newbyteorder("=")
    eps = np.finfo(dtype).eps
    p = max(m, n)
    bad = ~np.isfinite(a).all(axis=(1, 2))
    good = ~bad
    if bad.any():
        first = int(np.argmax(bad))
        with pytest.raises(np.linalg.LinAlgError, match=rf"index \({first},\)"):
            pi.damped_pinv(a_in, lam_in, hermitian=herm)
        with pytest.raises(np.linalg.LinAlgError, match=rf"index \({first},\)"):
            pi.pinv_solve(a_in, b, hermitian=herm)
    x = pi.damped_pinv(a_in, lam_in, hermitian=herm, check_finite=False)
    xb = pi.damped_pinv_solve(a_in, lam_in, b, hermitian=herm, check_finite=False)
    xs, rank = pi.pinv_solve(a_in, b, hermitian=herm, return_rank=True, check_finite=False)
    _, rank_p = pi.pinv(a_in, hermitian=herm, return_rank=True, check_finite=False)
    assert x.dtype == dtype and xb.dtype == dtype and xs.dtype == dtype
    assert np.isnan(x[bad]).all() and np.isnan(xb[bad]).all() and (rank[bad] == 0).all()
    np.testing.assert_array_equal(rank, rank_p)  # the solve's rank is pinv's, member by member
    if not good.any():
        return
    u, s, vt, c = _svd_scaled(a[good])
    ls = lam[good] / c
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = np.where(s**2 + ls[:, None] ** 2 > 0, s / (s**2 + ls[:, None] ** 2), 0.0)
        xr = np.swapaxes(vt, -1, -2) @ (f[..., None] * np.swapaxes(u, -1, -2))  # X(A / c)
        xnorm = f.max(axis=1)
        kap = np.where(
            (s[:, 0] > 0) & (xnorm > 0),
            s[:, 0] * (xnorm + 2 / ((s[:, -1] ** 2 + ls**2) * np.maximum(xnorm, 1e-300))),
            1.0,
        )
    kap = np.maximum(kap, 1.0)
    # ours and the reference (NumPy's SVD, backward stable too) each within 8 p eps
    # kappa_lambda of the exact X: their difference within twice that
    bound = 16 * p * np.finfo(np.float64).eps * kap + (2 * eps if dtype == np.float32 else 0)
    bound = np.maximum(bound, 16 * p * eps * kap)  # float32 members the Jacobi kernel took
    scale = c[:, None, None]
    got = x[good].astype(np.float64) * scale  # X(A) c = X(A / c, lam / c)
    err = np.linalg.norm(got - xr, axis=(1, 2))
    ref_norm = np.linalg.norm(xr, axis=(1, 2))
    # a result in the subnormal range carries an absolute error of its spacing, c times
    # that here (X(A) is compared multiplied by c)
    floor = 4 * np.sqrt(m * n) * float(np.finfo(dtype).smallest_subnormal) * c
    meaningful = bound < 0.5  # beyond, the first-order promise gives no digit at all
    assert (err <= bound * ref_norm + floor)[meaningful].all()
    bg = b[good].astype(np.float64)
    gotb = xb[good].astype(np.float64) * c[:, None]
    refb = np.einsum("bij,bj->bi", xr, bg)
    errb = np.linalg.norm(gotb - refb, axis=1)
    scaleb = ref_norm * np.linalg.norm(bg, axis=1)
    floor_b = floor * (1 + np.linalg.norm(bg, axis=1)) * np.sqrt(m)
    assert (errb <= 2 * bound * scaleb + floor_b)[meaningful].all()
    full = rank[good] == min(m, n)
    if full.any():  # the exact solution of the full-rank members
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            pinv_ref = np.swapaxes(vt, -1, -2) @ (
                np.where(s > 0, 1 / np.where(s > 0, s, 1), 0)[..., None] * np.swapaxes(u, -1, -2)
            )
            kp = np.where(s[:, -1] > 0, s[:, 0] / np.where(s[:, -1] > 0, s[:, -1], 1), 1.0)
        sel = full & (kp < 1 / (64 * p * eps))  # within the reach of any solver
        ref_s = np.einsum("bij,bj->bi", pinv_ref[sel], bg[sel])
        got_s = xs[good][sel].astype(np.float64) * c[sel, None]
        err_s = np.linalg.norm(got_s - ref_s, axis=1)
        tol_s = 8 * p * eps * kp[sel] * np.linalg.norm(pinv_ref[sel], axis=(1, 2))
        floor_s = floor[sel] * (1 + np.linalg.norm(bg[sel], axis=1)) * np.sqrt(m)
        assert (err_s <= tol_s * np.linalg.norm(bg[sel], axis=1) + floor_s).all()
