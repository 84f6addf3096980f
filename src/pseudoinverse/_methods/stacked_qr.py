"""CholeskyQR2 of the augmented matrix for stacks of small real matrices (``_kernels/cholqr.py``).

``auto``'s first route for the damped inverse of float64 stacks (and of float32 ones where
the float64 normal equations' bound fails), and for solves of stacks whose members are
provably of full rank. Each routine returns ``(out, ok)``: ``ok`` marks the members it
did; the caller sends the others (rank-deficient or too ill-conditioned for the
CholeskyQR2 analysis, non-finite, extreme damping) to the Jacobi kernels.

Accuracy promise (``tests/test_stacked_qr.py``, against 40-digit mpmath): with
``kappa_lambda`` the damped problem's condition number (``_methods/jacobi.py``), ``ok``
members satisfy ``||X - X_ref||_F <= max(16, m, n) eps64 kappa_lambda ||X_ref||_F`` in
float64 (the Jacobi route's promise; CholeskyQR2's ``C = Q R`` is backward stable with
``Q`` orthonormal to ``O(u)`` where ``8 kappa(C)^2 ((p + s) s + s (s + 1)) u <= 1``, and
``X = Q_W R^{-T}`` then errs by ``O(u kappa_lambda)``); float32 data is computed in
float64, so its error is the float32 rounding of the result plus that bound in eps64.
A full-rank solve (``lambda = 0``) is ``ok`` only where ``sigma_min`` provably exceeds
twice the member's tolerance: its rank is then ``min(m, n)``, the decision any
backward-stable SVD makes.

>>> import numpy as np
>>> from pseudoinverse._methods.stacked_qr import damped_qr
>>> x, ok = damped_qr(np.array([[[2.0, 0.0], [0.0, 1.0]]]), np.array([1.0]))
>>> x[0], ok  # 2 / (4 + 1) and 1 / (1 + 1)
(array([[0.4, 0. ],
       [0. , 0.5]]), array([ True]))
"""

from __future__ import annotations

import numpy as np

from .jacobi import kernel_buffers
from .parallel import over_batch, stack_work


def supports(dtype: np.dtype) -> bool:
    """Real float32/float64 stacks (complex ones stay on the Jacobi kernels)."""
    return np.dtype(dtype) in (np.dtype(np.float32), np.dtype(np.float64))


def _block(m: int, n: int, cols: int) -> int:
    """Lanes per block: the working set (about ``p s + 4 s^2 + 2 p cols`` float64 per
    lane) within about 256 KiB, the size measured fastest for 6 x 7 (64..128 lanes)."""
    s, p = min(m, n), max(m, n)
    per = 8 * (p * s + 4 * s * s + 2 * p * max(cols, 1))
    return int(min(128, max(8, (256 * 1024 // per) // 8 * 8)))


def _run(a, b, lam, atol, rtol, damped):
    from .._kernels.cholqr import cholqr_apply

    _, m, n = a.shape
    a, b, out, ok = kernel_buffers(a, b)

    def f64(t, dtype):  # a fresh writeable copy: a read-only array is another numba type
        return np.array(t, dtype=dtype, order="C")

    blk = _block(m, n, b.shape[2] if b.shape[2] else m)
    work = stack_work(a.shape)
    args = (a, b, f64(lam, np.float64), f64(atol, np.float64), f64(rtol, np.float64))
    over_batch(
        cholqr_apply, (*args, damped, out, ok, blk), (0, 1, 2, 3, 4, 6, 7), work, blk, outputs=(6,)
    )
    return out, ok


def damped_qr(
    a: np.ndarray, lam: np.ndarray, b: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The damped inverse ``A^T (A A^T + lambda^2 I)^{-1}`` of each member (times ``b``).

    ``a (B, m, n)`` real, ``lam (B,)`` float64 ``>= 0``, ``b (B, m, k)`` optional.
    Returns ``(out, ok)``; ``out[~ok]`` is meaningless.
    """
    zeros = np.zeros(len(a))
    return _run(a, b, lam, zeros, zeros, True)


def solve_qr(
    a: np.ndarray, b: np.ndarray, atol: np.ndarray, rtol: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``pinv(A) @ b`` for the members proved of full rank against ``max(atol, rtol
    sigma_max)``: ``(x, ok)``, with rank ``min(m, n)`` where ``ok``."""
    zeros = np.zeros(len(a))
    return _run(a, b, zeros, atol, rtol, False)
