"""The tolerance rule's validation (``_tolerance.resolve``): errors name the argument the
user passed; traced JAX tolerances are covered in test_jax.py."""

from __future__ import annotations

import numpy as np
import pytest

import pseudoinverse as pi
from pseudoinverse import _tolerance

A = np.stack([np.eye(3), np.diag([1.0, 1e-3, 0.0])])  # batch shape (2,)

BAD = [
    (-1.0, ">= 0"),
    (float("nan"), "not be NaN"),
    (1j, "must be real"),
    (np.ones(3), r"of shape \(3,\) does not broadcast to the batch shape \(2,\)"),
    ("1e-3", "real number or array"),
]


@pytest.mark.parametrize(("value", "what"), BAD, ids=["negative", "nan", "complex", "shape", "str"])
def test_errors_name_the_argument_passed(value, what):
    """rcond is an alias of rtol, but an error about it must say rcond (it said rtol)."""
    for call in (lambda: pi.pinv(A, value), lambda: pi.pinv(A, rcond=value)):
        with pytest.raises(ValueError, match=f"^rcond.*{what}") as err:
            call()
        assert "rtol" not in str(err.value)
    with pytest.raises(ValueError, match=f"^rtol.*{what}") as err:
        pi.pinv(A, rtol=value)
    assert "rcond" not in str(err.value)
    with pytest.raises(ValueError, match=f"^atol.*{what}"):
        pi.pinv(A, atol=value)


def test_rcond_and_rtol_together():
    with pytest.raises(TypeError, match="both rcond and rtol"):
        pi.pinv(A, 1e-3, rtol=1e-3)


def test_resolve_returns_float64_of_the_batch_shape():
    atol, rtol = _tolerance.resolve(
        None, np.array([0.0, 1e-2]), None, eps=2.0**-52, m=3, n=3, batch_shape=(2,)
    )
    assert atol.dtype == rtol.dtype == np.float64 and atol.shape == rtol.shape == (2,)
    # elementwise default (torch.linalg.pinv): max(m, n) * eps where atol is not positive
    np.testing.assert_array_equal(rtol, [3 * 2.0**-52, 0.0])
    atol, rtol = _tolerance.resolve(1e-3, None, None, eps=1e-7, m=2, n=5, batch_shape=(4, 2))
    assert atol.shape == rtol.shape == (4, 2) and (rtol == 1e-3).all() and not atol.any()
    assert not _tolerance.is_traced(1e-3) and not _tolerance.is_traced(np.ones(2))
