"""Issue 5: the lean SVD path (``lean_svd.py``): ``gesdd``'s steps, kept vectors only.

Its singular values are ``gesdd``'s, so its rank must equal the ``gesdd`` chain's on
every input, near the threshold included; its result is checked against a long-double
reference within the SVD's promise ``max(m, n) eps kappa_r``.
"""

from __future__ import annotations

import numpy as np
import pytest
from cases import extended_pinv
from test_large import _eps, make, rel_err

import pseudoinverse as pi
from pseudoinverse._methods import lean_svd, svd
from pseudoinverse._tolerance import threshold


def _gesdd_rank(a, atol, rtol) -> int:
    s = np.linalg.svd(a, compute_uv=False)  # LAPACK gesdd, as the fallback chain
    return int(np.count_nonzero(s > threshold(s[:1], np.array([atol]), np.array([rtol]))[0]))


@pytest.mark.parametrize("shape", [(150, 150), (200, 120), (120, 200), (240, 120)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rank", [None, 60])
def test_matches_the_gesdd_chain(shape, dtype, rank, rng):
    """Full rank (kappa 1e3) and rank 60: the rank of the gesdd chain, and the result
    within ``p eps kappa_r`` of a refined reference (full rank) or of NumPy's float64."""
    seed = int(rng.integers(1 << 31))
    a = make(*shape, 1e3, rank=rank, dtype=dtype, seed=seed)
    rtol = max(shape) * _eps(dtype)
    assert lean_svd.supports(max(shape), min(shape), a.dtype)
    wide = shape[0] < shape[1]
    got = lean_svd.pinv_lean(np.array(a.T if wide else a, order="F"), 0.0, rtol, transpose=wide)
    assert got is not None
    x, r = got
    assert x.shape == shape[::-1] and x.flags.c_contiguous and x.dtype == dtype
    assert r == _gesdd_rank(a, 0.0, rtol) == (rank or min(shape)), seed
    if rank is None:
        ref = extended_pinv(a.astype(np.float64)).astype(np.float64)
    else:
        ref = np.linalg.pinv(a.astype(np.float64), rtol=rtol)
    assert rel_err(x, ref) <= max(shape) * _eps(dtype) * 1e3, seed
    # the public path takes it (a real matrix of at least LARGE rows and columns)
    xs, rs = pi.pinv(a, method="svd", return_rank=True)
    np.testing.assert_array_equal(xs, x)
    assert rs == r


@pytest.mark.parametrize("factor", [0.5, 0.999, 1.001, 2.0])
def test_rank_near_threshold_is_gesdds(factor):
    """sigma_min = factor * tol: the lean path's rank is the gesdd chain's."""
    rtol = 1e-8
    a = make(160, 140, 1e4, smin=factor * rtol, seed=3)
    _, r = svd.pinv_svd_one(a, 0.0, rtol)
    assert r == _gesdd_rank(a, 0.0, rtol) == 140 - (factor < 1)


def test_atol_and_zero_matrix():
    a = make(130, 130, 1e6, seed=5)  # singular values log-spaced from 1 to 1e-6
    for atol in (1e-3, 0.5):
        _, r = svd.pinv_svd_one(a, atol, 0.0)
        assert r == _gesdd_rank(a, atol, 0.0)
    x, r = svd.pinv_svd_one(np.zeros((130, 100)), 0.0, 1e-12)
    assert r == 0 and x.shape == (100, 130) and not x.any()


def test_supports_only_real_and_not_much_taller():
    assert lean_svd.supports(200, 100, np.dtype(np.float64))
    assert not lean_svd.supports(201, 100, np.dtype(np.float64))  # gesdd's QR-first path
    assert not lean_svd.supports(100, 100, np.dtype(np.complex128))
    assert not lean_svd.supports(30000, 30000, np.dtype(np.float64))  # 32-bit workspace


def test_input_not_modified():
    a = make(100, 80, 1e2, seed=6)
    keep = a.copy()
    svd.pinv_svd_one(a, 0.0, 1e-12)
    np.testing.assert_array_equal(a, keep)
