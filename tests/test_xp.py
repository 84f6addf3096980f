"""Any Array API library, through the portable core: array-api-strict at its strictest
(no data-dependent shapes, no boolean indexing) passes NumPy's semantic tests."""

from __future__ import annotations

import numpy as np
import pytest

xps = pytest.importorskip("array_api_strict")

from cases import DTYPES, EMPTY_SHAPES, cases, eps, penrose_residuals  # noqa: E402

import pseudoinverse as pi  # noqa: E402


@pytest.fixture(autouse=True)
def strict():
    with xps.ArrayAPIStrictFlags(data_dependent_shapes=False, boolean_indexing=False):
        yield


def back(x) -> np.ndarray:
    return np.from_dlpack(x)


CASE_NAMES = [c.name for c in cases(np.float64)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CASE_NAMES)
def test_case_table_matches_numpy_path(name, dtype):
    case = next(c for c in cases(dtype, seed=1) if c.name == name)
    a = xps.asarray(case.a)
    x, rank = pi.pinv(a, hermitian=case.hermitian, return_rank=True)
    assert isinstance(x, type(a)) and x.dtype == a.dtype
    assert x.shape == case.a.shape[:-2] + case.a.shape[-2:][::-1]
    ref, ref_rank = pi.pinv(case.a, hermitian=case.hermitian, return_rank=True)
    scale = max(case.a.shape[-2:]) * eps(dtype) * (1e3 if "ill" in name else 10)
    norm = max(float(np.max(np.abs(ref))), 1.0)
    np.testing.assert_allclose(back(x), ref, atol=scale * norm * 10, rtol=0)
    np.testing.assert_array_equal(np.asarray(back(rank) if case.a.ndim > 2 else rank), ref_rank)
    if case.rank is not None:
        assert np.all(np.asarray(back(rank) if case.a.ndim > 2 else rank) == case.rank)
    # The four Penrose conditions as well as the NumPy path meets them (kappa-scaled).
    ours, numpy_path = penrose_residuals(case.a, back(x)), penrose_residuals(case.a, ref)
    for r, r_np in zip(ours, numpy_path, strict=True):
        assert r <= 10 * r_np + 100 * max(case.a.shape[-2:]) * eps(dtype)


def test_tolerances_out_and_promotion():
    rng = np.random.default_rng(2)
    a_np = rng.standard_normal((3, 5, 4))
    a = xps.asarray(a_np)
    atol = np.asarray([0.0, 1.0, 100.0])
    x, rank = pi.pinv(a, atol=atol, return_rank=True)
    ref, ref_rank = pi.pinv(a_np, atol=atol, return_rank=True)
    np.testing.assert_allclose(back(x), ref, atol=1e-12)
    np.testing.assert_array_equal(back(rank), ref_rank)
    out = xps.zeros((3, 4, 5), dtype=xps.float64)
    assert pi.pinv(a, rtol=0.5, out=out) is out
    np.testing.assert_allclose(back(out), pi.pinv(a_np, rtol=0.5), atol=1e-12)
    with pytest.raises(ValueError, match="shape"):
        pi.pinv(a, out=xps.zeros((3, 5, 4), dtype=xps.float64))
    ints = xps.asarray([[1, 2], [3, 4]])
    assert pi.pinv(ints).dtype == xps.float64
    assert pi.pinv(ints > 2).dtype == xps.float64
    np.testing.assert_allclose(back(pi.pinverse(a)), pi.pinverse(a_np), atol=1e-12)


def test_check_finite_and_empty():
    a_np = np.random.default_rng(3).standard_normal((3, 4, 4))
    a_np[2, 3, 1] = np.nan
    a = xps.asarray(a_np)
    with pytest.raises(ValueError, match=r"batch index \(2,\)"):
        pi.pinv(a)
    x = back(pi.pinv(a, check_finite=False))
    assert np.isnan(x[2]).all() and np.isfinite(x[:2]).all()
    upper = np.eye(3)
    upper[0, 2] = np.inf
    np.testing.assert_array_equal(back(pi.pinv(xps.asarray(upper), hermitian=True)), np.eye(3))
    for shape in EMPTY_SHAPES:
        x = pi.pinv(xps.zeros(shape))
        assert x.shape == shape[:-2] + shape[-2:][::-1]
    with pytest.raises(ValueError, match="stream"):
        pi.pinv(a, stream=object())
