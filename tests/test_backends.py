"""The shared case table over every backend: same library out, Penrose, NumPy agreement."""

from __future__ import annotations

import numpy as np
import pytest
from cases import DTYPES, EMPTY_SHAPES, eps, penrose_residuals
from test_pinv import CASE_NAMES, _case, close, kappa

import pseudoinverse as pi


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_table(backend, name, dtype, rng):
    backend.check(dtype)
    c = _case(name, dtype, int(rng.integers(2**31)))
    arr = backend.to(c.a)
    res = pi.pinv(arr, hermitian=c.hermitian, return_rank=True)
    assert type(res.pinv) is type(arr) or backend.name == "dask"
    x = backend.back(res.pinv)
    assert x.dtype == c.a.dtype
    assert x.shape == (*c.a.shape[:-2], c.a.shape[-1], c.a.shape[-2])
    ref = np.linalg.pinv(c.a, rtol=None, hermitian=c.hermitian)
    close(x, ref, c.a)
    bound = 100 * max(c.a.shape[-2:]) * eps(dtype) * kappa(c.a)
    assert max(penrose_residuals(c.a, x)) <= bound
    rank = np.asarray(backend.back(res.rank) if c.a.ndim > 2 else res.rank)
    if c.rank is not None:
        assert np.all(rank == c.rank)


@pytest.mark.parametrize("shape", EMPTY_SHAPES)
def test_empty_every_backend(backend, shape):
    x = pi.pinv(backend.to(np.ones(shape)))
    assert tuple(x.shape) == (*shape[:-2], shape[-1], shape[-2])


def test_check_finite_every_backend(backend, rng):
    a = rng.standard_normal((3, 4, 4))
    a[2, 1, 1] = np.nan
    if backend.name == "dask":  # lazy: the error surfaces when computed
        with pytest.raises(ValueError, match=r"NaN or Inf in the matrix at batch index \(2,\)"):
            pi.pinv(backend.to(a)).compute()
    else:
        with pytest.raises(ValueError, match=r"NaN or Inf in the matrix at batch index \(2,\)"):
            pi.pinv(backend.to(a))
    x = backend.back(pi.pinv(backend.to(a), check_finite=False))
    assert np.isnan(x[2]).all()
    close(x[:2], np.linalg.pinv(a[:2]), a[:2])


def test_tolerances_every_backend(backend, rng):
    a = rng.standard_normal((2, 5, 4))
    atol = np.array([0.0, 1e9])
    x, rank = pi.pinv(backend.to(a), atol=atol, return_rank=True)
    assert np.asarray(backend.back(rank)).tolist() == [4, 0]
    x = backend.back(x)
    close(x[0], np.linalg.pinv(a[0]), a[0])
    np.testing.assert_array_equal(x[1], 0)
