"""Issue 5: the Gram certificate and the non-square paths it selects (``gram.py``).

The bounds ``smin <= sigma_min(A)`` and ``smax >= sigma_max(A)`` are checked against a
float64 (complex128) SVD of the exact data; every path's result against an mpmath
pseudo-inverse (50 digits) within its stated multiple of ``p eps kappa``; the rank and
the SVD fallback against the SVD method.
"""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
from test_large import _eps, default_rtol, make, rel_err

import pseudoinverse as pi
from pseudoinverse._methods import gram, qr

SHAPES = [(300, 120), (120, 300), (1000, 40), (40, 1000)]
DTYPES = [np.float64, np.complex128, np.float32, np.complex64]


def _svals(a):
    return np.linalg.svd(a.astype(np.complex128), compute_uv=False)


def _random(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape)
    if np.issubdtype(dtype, np.complexfloating):
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


# single precision decides while kappa_F^2 p eps32 is small (kappa ~ 10 here)
CONDS = [(d, c) for d in DTYPES[:2] for c in (None, 1.5, 1e2, 1e4)] + [
    (d, c) for d in DTYPES[2:] for c in (None, 1.5, 10.0)
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(("dtype", "cond"), CONDS)
def test_bounds_are_rigorous_and_tight(shape, dtype, cond, rng):
    """Gaussian (``cond=None``) and log-spaced spectra: ``smin <= sigma_min`` and
    ``smax >= sigma_max`` always, each within 25% (the shifts' slack; ``smin`` within
    50% in single precision, where ``p eps ||A||_F^2`` is not small against
    ``sigma_min^2``)."""
    seed = int(rng.integers(1 << 31))
    a = _random(shape, dtype, seed) if cond is None else make(*shape, cond, dtype=dtype, seed=seed)
    fac = qr._proof(a, 0.0, default_rtol(a))
    assert fac is not None, seed
    s = _svals(a)
    assert (0.75 if _eps(dtype) < 1e-10 else 0.5) * s[-1] <= fac.smin <= s[-1], seed
    assert s[0] <= fac.smax <= 1.25 * s[0], seed


@pytest.mark.parametrize("shape", SHAPES)
def test_out_of_reach_and_rank_deficient_are_not_proven(shape):
    """kappa^2 p eps near 1 (float32 at 1e4, float64 at 1e9) or rank-deficient: None, and
    auto still matches the SVD method's rank."""
    for a in (
        make(*shape, 1e4, dtype=np.float32, seed=1),
        make(*shape, 1e9, seed=1),
        make(*shape, 1e2, rank=30, seed=1),
    ):
        assert qr._proof(a, 0.0, default_rtol(a)) is None
        x, r = pi.pinv(a, return_rank=True)
        assert r == pi.pinv(a, method="svd", return_rank=True).rank
        ref = np.linalg.pinv(a.astype(np.float64), rtol=default_rtol(a))
        assert rel_err(x, ref) <= max(shape) * _eps(a.dtype) * 1e9


@pytest.mark.parametrize("factor", [0.5, 1.0, 3.9, 6.0, 1e3])
@pytest.mark.parametrize("shape", SHAPES[:2])
def test_near_threshold(factor, shape):
    """``sigma_min = factor * tol``: never proven within ``MARGIN`` (4) of the threshold
    (the bound is below sigma_min); proven far above; the rank is always the SVD's."""
    rtol = 1e-8
    a = make(*shape, 1e4, smin=factor * rtol, seed=3)
    fac = qr._proof(a, 0.0, rtol)
    if factor <= 4:
        assert fac is None
    if factor >= 1e3:
        assert fac is not None
    r = pi.pinv(a, rtol=rtol, return_rank=True).rank
    assert r == pi.pinv(a, rtol=rtol, method="svd", return_rank=True).rank


@pytest.mark.parametrize(
    ("cond", "how"), [(1.2, "normal"), (3.0, "normal"), (50.0, "cholqr2"), (1e6, "householder")]
)
@pytest.mark.parametrize("shape", [(60, 25), (25, 60)])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_each_path_against_mpmath(cond, how, shape, dtype):
    """The promise: normal equations within ``2 K_NE p eps kappa`` (``kappa <= K_NE``),
    CholeskyQR2 and Householder within ``p eps kappa``, of a 50-digit pseudo-inverse."""
    a = make(*shape, cond, dtype=dtype, seed=7)
    fac = qr._proof(a, 0.0, default_rtol(a))
    assert gram.path(fac, shape, a.dtype) == how
    x = qr.full_rank_inverse(a, 0.0, default_rtol(a))
    mpmath.mp.dps = 50
    am = mpmath.matrix(a.tolist())
    ah = am.transpose_conj()
    ref = (ah * am) ** -1 * ah if shape[0] >= shape[1] else ah * (am * ah) ** -1
    ref = np.array(ref.tolist(), dtype=complex)
    factor = 2 * gram.K_NE if how == "normal" else 1.0
    assert rel_err(x, ref) <= factor * max(shape) * _eps(dtype) * cond
    assert rel_err(pi.pinv(a), ref) <= factor * max(shape) * _eps(dtype) * cond


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_auto_on_gaussian_matches_svd(shape, dtype):
    """The benchmark's case (a Gaussian, normal equations): rank and result of the SVD
    method, to the accuracy promise, for every dtype; float32 data stay float32."""
    a = _random(shape, dtype, 11)
    fac = qr._proof(a, 0.0, default_rtol(a))
    kappa = _svals(a)[0] / _svals(a)[-1]
    x, r = pi.pinv(a, return_rank=True)
    xs, rs = pi.pinv(a, method="svd", return_rank=True)
    assert x.dtype == dtype and r == rs == min(shape)
    ref = np.linalg.pinv(a.astype(np.complex128), rtol=None)
    bound = 2 * gram.K_NE * max(shape) * _eps(dtype) * kappa
    assert fac is not None and rel_err(x, ref) <= bound
    assert rel_err(xs, ref) <= bound


def test_method_qr_uses_the_proof_and_still_refuses():
    """``method="qr"``: proven (no residual) on a Gaussian; a rank-deficient one raises."""
    a = _random((500, 100), np.float64, 3)
    x = pi.pinv(a, method="qr")
    assert rel_err(x, np.linalg.pinv(a, rtol=None)) <= 500 * _eps(a.dtype) * 10
    with pytest.raises(ValueError, match="cannot be certified"):
        pi.pinv(make(500, 100, rank=60), method="qr")
