"""The a-posteriori residual certificate: does a candidate ``X`` prove full rank?

The direct paths (``qr.py``: LU, Householder QR, CholeskyQR2; ``cholesky.py``;
``batched.py``) replace the SVD only when this certificate proves that the SVD (or eigh)
path would keep every singular value, so that the rank ``k = min(m, n)`` is its rank. It
checks the computed candidate ``X`` itself, whatever algorithm produced it: no a-priori
error model (growth factor, ``c_n`` constants) enters.

Notation: ``A`` is ``m x n``, ``k = min(m, n)``, ``p = max(m, n)``; ``W = A`` or ``A^H``
(same singular values; for a Hermitian ``A`` the matrix its lower triangle defines),
``X`` the computed candidate, ``X W`` (or ``W X``) the ``k x k`` product; ``F =
||.||_F``; ``e`` the unit roundoff ``eps / 2`` of the *work* precision (in which ``X W``
is formed) and ``eps`` that of the *input* dtype (in which the SVD would run).

1. ``E = X W - I_k`` is computed as ``D = fl(fl(X W) - I)``. By the standard model
   (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., eq. (3.13)),
   ``|fl(X W) - X W| <= gamma_p |X| |W|`` elementwise, for conventional (not
   Strassen-like) products in any summation order, with or without FMA (``gemm``,
   ``symm``/``hemm``), with ``gamma_p = p e / (1 - p e) <= p eps_w``, and the
   subtraction adds at most ``e |fl(X W) - I|``. Since ``|| |X| |W| ||_F <= ||X||_F
   ||W||_F``, ``||E||_2 <= r := (1 + eps_w) ||D||_F + p eps_w ||X||_F ||W||_F``. The
   norms are sums of squares in float64 with a relative error below ``k p eps_w``,
   covered by the factor ``1 + 2 k p eps_w`` on each; a member whose sum of squares is
   below ``1e-290`` (where gradual underflow could add more) is not accepted. For
   complex data each multiplication rounds by up to ``sqrt(2) gamma_2`` (Higham,
   Lemma 3.5), so ``p`` in ``r``'s floor and in the gate of step 3 is ``sqrt(2) (p + 2)``.
2. ``X W = I - E`` gives ``sigma_min(X W) >= 1 - r``, and ``sigma_min(X W) <=
   ||X||_2 sigma_min(W)`` (``sigma_k`` of a product; likewise for ``W X``), so, when
   ``r < 1``, ``sigma_min(A) >= s := (1 - r) / ||X||_F``: a rigorous lower bound on the
   exact data's smallest singular value.
3. Accept iff ``r <= 1/2``, ``r <= 2 p eps_w ||W||_F ||X||_F`` (the accuracy gate: the
   residual is no larger than the rounding of a stable inverse allows) and
   ``s > MARGIN * max(atol, rtol * S, p eps * S)``, with ``S >= sigma_max`` (``||W||_F``
   or a tighter bound from the data, e.g. ``sqrt(||A||_1 ||A||_inf)``, rounded up alike) and
   ``MARGIN = 4``.

Proof that the SVD (or eigh) path keeps every value: a backward stable SVD/eigh in
precision ``eps`` returns ``sigma~_i`` with ``|sigma~_i - sigma_i| <= c p eps sigma_max``
(Weyl's inequality; LAPACK Users' Guide, "Error bounds for the SVD"; ``c`` a modest
constant, taken ``<= 1``: the margin of 4 absorbs more, and the few roundings in
evaluating ``r`` and ``s`` themselves). Then ``sigma~_min >= s - p eps S > 3 max(atol,
rtol S, p eps S)``, while the SVD's threshold is ``max(atol, rtol sigma~_max) <=
max(atol, rtol S (1 + p eps))``: ``sigma~_min`` clears it by a factor near 3, no rank
decision can differ. A matrix with a singular value within a factor ``4 S / sigma_max``
of the threshold is never accepted (``s <= sigma_min``).

Consequences used by the callers: ``kappa_2(A) <= S / s`` (rigorous, for accuracy
conditions such as CholeskyQR2's); and for square ``A``, ``X - A^{-1} = -E A^{-1}``, so
``||X - A^{-1}||_2 <= r ||A^{-1}||_2`` with the gate's ``r <= 2 p eps_w kappa_F``. For
non-square ``A`` the residual proves the rank only (any left inverse has ``X W = I``);
the accuracy of ``X`` as ``A^+`` is that of the algorithm (Householder QR is backward
stable, Higham ch. 19; CholeskyQR2 under its ``kappa`` condition).

Before the product (the only ``O(k^2 p)`` cost here), members that cannot pass are
screened out with norms only: since ``r >= p eps_w ||X||_F ||W||_F``, acceptance needs
that floor ``<= 1/2`` and ``1 / ||X||_F > MARGIN * max(...)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from .products import matmul

MARGIN = 4.0  # safety factor between sigma_min's lower bound and the threshold (step 3)
R_MAX = 0.5  # r <= 1/2: sigma_min(A) >= (1 - r) / ||X||_F is informative (step 2)
_SQ_MIN = 1e-290  # a smaller float64 sum of squares may have lost terms to underflow
_BLOCK_BYTES = 1 << 24  # rows of D formed at a time for one large matrix (memory)


class Verdict(NamedTuple):
    """Per member: ``accepted``; ``r >= ||X W - I||_2`` (``inf`` where not computed);
    ``smin`` ``<= sigma_min(A)`` where accepted (else 0); ``accurate``: ``r <= 1/2`` and
    the accuracy gate hold (``X`` is as accurate as a stable inverse, whether or not the
    Frobenius bound ``smin`` clears the threshold)."""

    accepted: np.ndarray
    r: np.ndarray
    smin: np.ndarray
    accurate: np.ndarray


def sq_norms(x: np.ndarray) -> np.ndarray:
    """``||x_i||_F^2`` of a matrix or of each matrix of a stack, in float64, no temporary."""
    sub = "...ij,...ij->..."
    if x.ndim == 2 and (x.flags.c_contiguous or x.flags.f_contiguous):
        x, sub = x.ravel(order="K"), "i,i->"  # a view in memory order: a fast reduction
    if x.dtype.kind == "c":
        return np.einsum(sub, x.real, x.real, dtype=np.float64) + np.einsum(
            sub, x.imag, x.imag, dtype=np.float64
        )
    return np.einsum(sub, x, x, dtype=np.float64)


def _matmul(x: np.ndarray, w: np.ndarray, rows: slice) -> np.ndarray:
    if x.ndim == 2:  # one large matrix: SciPy's gemm, its factorisation's pool
        return matmul(x[rows], w)
    return x[..., rows, :] @ w


def _residual_sq(
    x: np.ndarray, w: np.ndarray | None, k: int, product: Callable[..., np.ndarray]
) -> np.ndarray:
    """``||D||_F^2`` of each member, ``D = fl(fl(X W) - I)``; by blocks of rows of ``D``
    for one matrix, so that the extra memory stays about ``_BLOCK_BYTES``."""
    step = k if x.ndim > 2 else max(64, _BLOCK_BYTES // (k * x.itemsize))
    total = 0.0
    for i0 in range(0, k, step):
        d = product(x, w, slice(i0, i0 + step))  # rows i0.. of fl(X W)
        diag = np.einsum("...ii->...i", d[..., :, i0 : i0 + step])  # a writable view
        diag -= 1
        total = total + sq_norms(d)
        del d, diag  # freed before the next block is allocated
    return total


def certify(
    x: np.ndarray,
    w: np.ndarray | None,
    atol: np.ndarray | float,
    rtol: np.ndarray | float,
    eps: float,
    *,
    work_eps: float | None = None,
    s_up: np.ndarray | float | None = None,
    w_fro: np.ndarray | float | None = None,
    product: Callable[[np.ndarray, np.ndarray | None, slice], np.ndarray] = _matmul,
    screen: bool = True,
) -> Verdict:
    """Steps 1-3 of the module docstring for one matrix or a stack, vectorised.

    ``x`` (``..., k, p`` or ``..., p, k``) is the candidate, ``w`` the matrix it inverts
    (or ``None`` when ``w_fro`` and ``product`` stand in for it); ``product(x, w, rows)``
    returns a new ``fl`` of the rows ``rows`` of the ``k x k`` product (``x[..., rows, :]
    @ w`` by default), which is overwritten by ``D``. ``eps`` is the input dtype's,
    ``work_eps`` (default ``eps``) that of the product; ``s_up`` an optional bound
    ``>= sigma_max`` tighter than ``||W||_F``, ``w_fro`` an optional ``||W||_F`` computed
    elsewhere (both with a relative error of at most ``k p work_eps``). ``screen=False``
    forms the product even where ``1 / ||X||_F`` cannot clear the threshold, for a caller
    that wants ``accurate`` (to prove the rank by other means). Returns scalars
    for one matrix.
    """
    k, p = sorted(x.shape[-2:])
    work_eps = eps if work_eps is None else work_eps
    rnd = 1 + 2 * k * p * work_eps  # rounding of the computed norms (step 1)
    x_sq = sq_norms(x)
    sq_ok = x_sq >= _SQ_MIN
    if w_fro is None:
        w_sq = sq_norms(w)
        sq_ok &= w_sq >= _SQ_MIN
        w_fro = np.sqrt(w_sq)
    w_fro = np.asarray(w_fro, dtype=np.float64) * rnd
    s = w_fro if s_up is None else np.minimum(w_fro, np.asarray(s_up, dtype=np.float64) * rnd)
    r = np.full(x_sq.shape, np.inf)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        x_fro = np.sqrt(x_sq) * rnd
        thr = MARGIN * np.maximum(np.maximum(atol, rtol * s), p * eps * s)
        # the accuracy gate, also r's floor: gamma_p of step 1; a complex product's
        # rounding is larger (Higham, Lemma 3.5: sqrt(2) gamma_2 per multiplication)
        p_round = p if x.dtype.kind != "c" else math.sqrt(2) * (p + 2)
        gate = p_round * work_eps * x_fro * w_fro
        ok = sq_ok & np.isfinite(x_fro) & (gate <= R_MAX)
        if screen:
            ok &= 1 / x_fro > thr
        if not ok.any():
            return Verdict(ok, r, np.zeros(x_sq.shape), ok)
        sel = ... if ok.all() else np.flatnonzero(ok)  # all: views, no copies
        d_sq = _residual_sq(x[sel], None if w is None else w[sel], k, product)
        r[sel] = (1 + work_eps) * np.sqrt(d_sq) * rnd + gate[sel]
        lower = np.where(ok, (1 - r) / x_fro, 0.0)
        accurate = (r <= R_MAX) & (r <= 2 * gate)
        ok &= accurate & (lower > thr)
    return Verdict(ok, r, np.where(ok, lower, 0.0), accurate)
