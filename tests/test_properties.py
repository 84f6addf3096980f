"""Hypothesis: the Penrose conditions and the rank rule over shapes, dtypes and ranks."""

from __future__ import annotations

import numpy as np
from cases import DTYPES, eps, penrose_residuals
from hypothesis import given, settings
from hypothesis import strategies as st

import pseudoinverse as pi


@st.composite
def matrices(draw):
    """A stack ``B @ C^H`` of drawn shape, rank and dtype, with a drawn scale."""
    dtype = draw(st.sampled_from(DTYPES))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    m, n = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    r = draw(st.integers(0, min(m, n)))
    scale = draw(st.sampled_from([1e-8, 1.0, 1e8]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)

    def g(*shape):
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if np.dtype(dtype).kind == "c" else x

    a = scale * g(*batch, m, r) @ np.swapaxes(g(*batch, n, r), -1, -2).conj()
    return a.astype(dtype), r


@settings(max_examples=150, deadline=None)
@given(matrices())
def test_penrose_conditions(case):
    a, r = case
    x, rank = pi.pinv(a, return_rank=True)
    assert x.shape == (*a.shape[:-2], a.shape[-1], a.shape[-2]) and x.dtype == a.dtype
    assert np.all(np.asarray(rank) <= min(a.shape[-2:]))
    # B @ C^H of random factors is well conditioned on its range in all but rare draws,
    # so the rank is r and the residuals are a modest multiple of eps
    wide = np.complex128 if a.dtype.kind == "c" else np.float64
    s = np.linalg.svd(a.astype(wide), compute_uv=False)
    smax = s[..., :1]
    cut = max(a.shape[-2:]) * eps(a.dtype) * smax
    kept = np.where(s > 10 * cut, s, np.inf)  # kept with margin: a clean decision
    ambiguous = np.any((s > cut / 10) & (s <= 10 * cut))
    if not ambiguous:
        assert np.all(np.asarray(rank) == (s > cut).sum(-1))
        assert np.all(np.asarray(rank) == r)  # B @ C^H with random factors has rank r
        kappa = float(np.max(smax / kept.min(-1, keepdims=True))) if s.size else 1.0
        bound = 200 * max(a.shape[-2:]) * eps(a.dtype) * max(kappa, 1.0)
        assert max(penrose_residuals(a, x)) <= bound


@settings(max_examples=60, deadline=None)
@given(matrices(), st.floats(0, 1e3), st.floats(0, 1))
def test_rank_is_count_above_threshold(case, atol, rtol):
    a, _ = case
    a = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
    rank = np.asarray(pi.pinv(a, atol=atol, rtol=rtol, return_rank=True).rank)
    s = np.linalg.svd(a, compute_uv=False)
    tol = np.maximum(atol, rtol * s[..., :1])
    near = np.abs(s - tol) <= 1e-9 * np.maximum(s[..., :1], 1e-300)
    expected = (s > tol).sum(-1)
    assert np.all((rank == expected) | near.any(-1))


@settings(max_examples=60, deadline=None)
@given(matrices())
def test_hermitian_equals_general_on_hermitian_input(case):
    a, _ = case
    h = a[..., : min(a.shape[-2:]), : min(a.shape[-2:])]
    h = (h + np.swapaxes(h, -1, -2).conj()) / 2
    x_eigh = pi.pinv(h, hermitian=True, rtol=1e-3)
    x_svd = pi.pinv(h, rtol=1e-3)
    s = np.linalg.svd(h.astype(np.complex128), compute_uv=False)
    cut = 1e-3 * s[..., :1]
    if np.any(np.abs(s - cut) < 1e-2 * cut) or not h.size:
        return  # a value at the cut: either decision is right
    kappa = float(np.max(s[..., :1] / np.where(s > cut, s, np.inf).min(-1, keepdims=True)))
    scale = max(np.abs(x_svd).max(), 1e-300)
    assert np.abs(x_eigh - x_svd).max() <= 100 * h.shape[-1] * eps(h.dtype) * kappa * scale
