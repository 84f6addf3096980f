"""The Golub–Pereyra formula itself (on NumPy arrays, no autodiff library), and the
promise that ``import pseudoinverse`` pulls in no optional library."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import pseudoinverse as pi
from pseudoinverse._autodiff import pinv_jvp, pinv_vjp
from pseudoinverse._methods.eigh import hermitian_from_lower as hermitian_part


def ct(t):
    return t.conj().swapaxes(-1, -2)


def randn(rng, shape, complex_):
    x = rng.standard_normal(shape)
    return x + 1j * rng.standard_normal(shape) if complex_ else x


SHAPES = [(5, 3), (3, 5), (4, 4), (2, 6, 2), (2, 2, 5)]


@pytest.mark.parametrize("complex_", [False, True], ids=["real", "complex"])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("rank", [None, 1], ids=["full", "rank1"])
def test_jvp_is_the_derivative_and_vjp_its_adjoint(shape, complex_, rank):
    rng = np.random.default_rng(sum(shape) + complex_)
    *batch, m, n = shape
    if rank is None:
        a = randn(rng, shape, complex_)
        atol = None
    else:  # a tangent along the rank-r manifold: A(t) = (B + t dB)(C + t dC)^H
        b, c = randn(rng, (*batch, m, rank), complex_), randn(rng, (*batch, n, rank), complex_)
        db, dc = randn(rng, b.shape, complex_), randn(rng, c.shape, complex_)
        a = b @ ct(c)
        atol = 1e-6
    x = pi.pinv(a, atol=atol)
    if rank is None:
        da = randn(rng, shape, complex_)
        h = 1e-6
        fd = (pi.pinv(a + h * da) - pi.pinv(a - h * da)) / (2 * h)
    else:
        da = db @ ct(c) + b @ ct(dc)
        h = 1e-6

        def on_path(t):
            return pi.pinv((b + t * db) @ ct(c + t * dc), atol=atol)

        fd = (on_path(h) - on_path(-h)) / (2 * h)
    dx = pinv_jvp(a, x, da, ct)
    np.testing.assert_allclose(dx, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())
    g = randn(rng, x.shape, complex_)
    lhs = np.real(np.sum(np.conj(g) * dx))  # Re <G, J dA>
    rhs = np.real(np.sum(np.conj(pinv_vjp(a, x, g, ct)) * da))  # Re <J* G, dA>
    assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-12)


def test_formula_is_finite_where_singular_values_repeat():
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    for a in (np.eye(4), q, np.zeros((4, 4)), q[:, :2] @ q[:, 2:].T):
        x = pi.pinv(a)
        d = np.random.default_rng(1).standard_normal((4, 4))
        assert np.isfinite(pinv_jvp(a, x, d, ct)).all()
        assert np.isfinite(pinv_vjp(a, x, d, ct)).all()
    # at the identity the derivative of the inverse is -dA
    np.testing.assert_allclose(pinv_jvp(np.eye(4), np.eye(4), d, ct), -d, atol=1e-15)


def test_hermitian_part_reads_lower_triangle_and_real_diagonal():
    a = np.array([[1 + 5j, np.nan], [2 - 1j, 3 + 0j]])
    h = hermitian_part(np, a)
    np.testing.assert_array_equal(h, np.array([[1, 2 + 1j], [2 - 1j, 3]]))


def test_import_pulls_no_optional_library():
    optional = ("torch", "jax", "mlx", "dask", "numba", "matplotlib", "array_api_strict")
    code = (
        "import sys, numpy as np, pseudoinverse as pi\n"
        f"print([m for m in {optional!r} if m in sys.modules])\n"
        "pi.pinv(np.eye(3)); pi.pinv(np.eye(3), hermitian=True)\n"  # NumPy needs no other
        f"print([m for m in {optional[:4]!r} if m in sys.modules])\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "[]"], result.stdout
