"""The compiled routes' loading policy (``_methods/warmup.py``): LAPACK serves the calls
that come before a kernel is loaded, the kernel serves the calls after, and both answer
as the live references do."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import pseudoinverse as pi
from pseudoinverse._methods import warmup


@pytest.fixture
def policy(monkeypatch):
    """Set ``PSEUDOINVERSE_KERNELS`` for one test, with nothing loaded before it."""

    def set_policy(value: str) -> None:
        monkeypatch.setenv("PSEUDOINVERSE_KERNELS", value)
        warmup.reset()

    yield set_policy
    warmup.wait()
    warmup.reset()  # the next tests load what they use again (sync, the tests' policy)


def _solve_close(a, b, x):
    """Each member's solve within 100 eps of its dtype times its condition number, against
    a float64 reference (a float32 member of condition 1e3 may differ by 1e-4 relatively)."""
    a64 = a.astype(np.float64)
    ref = np.einsum("bij,bj->bi", np.linalg.pinv(a64), b.astype(np.float64))
    err = np.linalg.norm(x - ref, axis=-1) / np.linalg.norm(ref, axis=-1)
    assert np.all(err <= 100 * np.finfo(a.dtype).eps * np.linalg.cond(a64))


def _reference_close(a, x):
    ref = np.linalg.pinv(a.astype(np.float64))
    err = np.linalg.norm(x - ref, axis=(-2, -1)) / np.linalg.norm(ref, axis=(-2, -1))
    assert err.max() < (1e-3 if a.dtype == np.float32 else 1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_background_lapack_first_then_the_kernel(policy, dtype, rng):
    policy("background")
    a = rng.standard_normal((200, 6, 7)).astype(dtype)
    first = pi.pinv(a, return_rank=True)
    assert first.method == "svd"  # served while the kernel loads
    _reference_close(a, first.pinv)
    warmup.wait()
    later = pi.pinv(a, return_rank=True)
    assert later.method == "jacobi"
    _reference_close(a, later.pinv)
    np.testing.assert_array_equal(later.rank, first.rank)
    # solves and damped inverses: LAPACK too until their kernels load, then the kernels
    b = rng.standard_normal((200, 6)).astype(dtype)
    x = pi.pinv_solve(a, b)
    _solve_close(a, b, x)
    d = pi.damped_pinv(a, 0.1)
    warmup.wait()
    np.testing.assert_allclose(pi.damped_pinv(a, 0.1), d, rtol=0, atol=1e-3)
    _solve_close(a, b, pi.pinv_solve(a, b))


def test_sync_loads_at_the_first_call(policy, rng):
    policy("sync")
    a = rng.standard_normal((64, 4, 4))
    assert pi.pinv(a, return_rank=True).method == "jacobi"


def test_lapack_policy_never_takes_a_kernel(policy, rng):
    policy("lapack")
    a = rng.standard_normal((64, 4, 4))
    for _ in range(2):
        res = pi.pinv(a, return_rank=True)
        assert res.method == "svd"
        _reference_close(a, res.pinv)
    assert pi.pinv(a, method="jacobi", return_rank=True).method == "jacobi"  # named: runs


def test_unknown_policy_is_a_clear_error(policy, rng):
    policy("sometimes")
    with pytest.raises(ValueError, match="PSEUDOINVERSE_KERNELS"):
        pi.pinv(rng.standard_normal((64, 4, 4)))


def test_a_kernel_that_fails_to_load_leaves_lapack_serving(policy, monkeypatch, caplog, rng):
    from pseudoinverse import _methods

    policy("background")

    def broken(*args):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(_methods, "_load_jacobi", broken)
    a = rng.standard_normal((64, 5, 5))
    with caplog.at_level(logging.WARNING, logger="pseudoinverse"):
        assert pi.pinv(a, return_rank=True).method == "svd"
        warmup.wait()
        res = pi.pinv(a, return_rank=True)
    assert res.method == "svd"
    _reference_close(a, res.pinv)
    assert "failed to load" in caplog.text and "no compiler here" in caplog.text
