"""Stacks of medium matrices: a certified direct inverse per matrix, else the SVD.

For a stack ``(B, m, n)`` of many matrices of moderate size (about 16 to 64), where
LAPACK's SVD is the cost (``~22 n^3`` flops a matrix) and the per-matrix Python loop of
``qr.py`` is too slow. Each matrix ``A`` gets a candidate ``X``:

* square: ``X = A^{-1}`` by LU with partial pivoting (NumPy's stacked ``inv``, a C loop
  over LAPACK ``gesv``, ``~2.7 n^3``);
* tall (``m > n``): ``X = R^{-1} Q^H`` from the stacked Householder ``qr``;
  wide: the same on ``A^H``, ``X = (A^H)^{+H}``;
* ``hermitian=True``: the square path on the Hermitian matrix that the lower triangle
  defines (only that triangle is read; the diagonal's imaginary part is ignored).

All of it runs in float64 (complex128 for complex input): float32/complex64 data are
cast exactly, as ``numpy.linalg.pinv`` does, and the result is rounded back.

The certificate (a posteriori, per matrix)
------------------------------------------
``certificate.certify`` (the bound, the acceptance test and their proof are in
``certificate.py``), vectorised over the stack, with ``W = A`` (``A^H`` if wide, same
singular values), the product ``X W`` formed in float64 (``work_eps = eps64``) and ``eps``
that of the *input* dtype: it bounds ``r >= ||X W - I||_2`` from ``D = fl(fl(X W) - I)``
(Higham eq. (3.13)), then ``sigma_min(A) >= (1 - r) / ||X||_F``, and accepts iff
``r <= 1/2``, the accuracy gate ``r <= 2 p eps64 ||W||_F ||X||_F`` holds and that bound
exceeds ``MARGIN * max(atol, rtol * S, p eps * S)``, ``S = ||A||_F``. An accepted member
provably has the SVD's (or eigh's) rank ``k``; a matrix with a singular value within a
factor ``4 S / sigma_max`` of the threshold is never accepted and goes to the SVD
(``"svd"``'s ``pinv_svd``, or ``pinv_eigh`` when Hermitian), as does any matrix whose
inverse fails (an exactly zero pivot). The rejected members are done together, by
exactly the code of those methods.

Before the product (a third of the cost), members that cannot pass are screened out
with norms only; a rank-deficient stack still pays the inverse (25-40% of the SVD's
time) on top of the SVD.

Accuracy promise: for square input, ``||X~ - A^{-1}||_2 <= r ||A^{-1}||_2`` with the
computed ``r <= 2 max(m, n) eps64 kappa_F`` (``kappa_F = ||A||_F ||A^{-1}||_F``): from
``X W = I - E``, ``X - W^{-1} = -E W^{-1}``. That is the order of the SVD path's error
(``p eps kappa``), in float64 even for float32 input (then rounded to float32, like
``numpy.linalg.pinv``). For non-square input, Householder QR is backward stable
(Higham, ch. 19) and ``A^+`` of full rank has a first-order condition number
``kappa`` (Wedin), so the error is again ``O(p eps64 kappa)``; the certificate and the
gate ``r <= p eps64 kappa_F`` hold as for square input.

At very high ``kappa`` (1e10) the fourth Penrose residual ``||X A - (X A)^H||`` is about
``eps kappa``, up to ~30x the SVD's (whose ``X A = V V^H`` is nearly Hermitian by
construction); the others are of the SVD's size.

Speed (ratio: the faster of numpy.linalg.pinv and torch.linalg.pinv over this method;
every library at one thread; Gaussian stacks, medians of 5, on a shared 2-vCPU machine):

=================  =======  =======  ==========
stack              float64  float32  complex128
=================  =======  =======  ==========
1e4 x 16 x 16      5.0x     3.9x     3.8x
1e3 x 64 x 64      3.6x     2.6x     3.0x
=================  =======  =======  ==========

(the Jacobi kernel: 2.0x / 3.4x / 1.6x and 0.34x / 0.64x / 0.27x). A stack where no
member can be certified (rank-deficient) costs the inverse on top of the SVD: 0.70x to
0.80x of the plain SVD method's time.
"""

from __future__ import annotations

import numpy as np

from .certificate import MARGIN as MARGIN  # re-exported: the tests read batched.MARGIN
from .certificate import certify
from .eigh import hermitian_from_lower, pinv_eigh
from .parallel import over_ranges, stack_work, touch
from .svd import pinv_svd

_EPS64 = float(np.finfo(np.float64).eps)
_CHUNK_BYTES = 1 << 20  # a chunk's stack (in the work dtype) stays about in L2

#: Sizes for which ``"auto"`` should use this method, for stacks of ``MIN_BATCH`` or more:
#: ``min(m, n) >= MIN_SIZE[dtype]`` (below, the Jacobi kernel is faster; it computes
#: float32 in float32, hence its larger range there) and ``max(m, n) <= MAX_SIZE``
#: (measured up to 96; there it is at parity with ``qr.py``'s per-matrix path in
#: float64 and 1.9x / 1.0x faster in float32 / complex128).
MIN_SIZE = {
    np.dtype(np.float64): 8,
    np.dtype(np.complex128): 8,
    np.dtype(np.float32): 16,
    np.dtype(np.complex64): 12,  # estimated between complex128's and float32's
}
MAX_SIZE = 96
MIN_BATCH = 2


def supports(m: int, n: int, dtype: np.dtype, batch: int = 1) -> bool:
    """Whether ``"auto"`` should use this method for a ``(batch, m, n)`` stack."""
    lo = MIN_SIZE.get(np.dtype(dtype))
    return lo is not None and batch >= MIN_BATCH and min(m, n) >= lo and max(m, n) <= MAX_SIZE


def _inverse_each(w: np.ndarray) -> np.ndarray:
    """``inv`` of each member; a member whose LU meets an exact zero pivot gets NaN."""
    try:
        return np.linalg.inv(w)
    except np.linalg.LinAlgError:
        out = np.empty_like(w)
        for i in range(w.shape[0]):
            try:
                out[i] = np.linalg.inv(w[i])
            except np.linalg.LinAlgError:
                out[i] = np.nan
        return out


def _candidate(w: np.ndarray) -> np.ndarray:
    """``X`` for a stack ``w`` (``B, p, k``) with ``p >= k``: ``W^{-1}`` or ``R^{-1} Q^H``."""
    p, k = w.shape[1:]
    if p == k:
        return _inverse_each(w)
    q, r = np.linalg.qr(w)
    return _inverse_each(r) @ q.conj().transpose(0, 2, 1)


def _certify(
    w: np.ndarray, atol: np.ndarray, rtol: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Candidates ``X`` (``B, k, p``) and a mask of the members the certificate accepts."""
    x = _candidate(w)
    return x, certify(x, w, atol, rtol, eps, work_eps=_EPS64).accepted


def _chunk(p: int, k: int, itemsize: int) -> int:
    return max(8, _CHUNK_BYTES // (p * k * itemsize))


def pinv_batched(
    a: np.ndarray, atol: np.ndarray, rtol: np.ndarray, *, hermitian: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-inverse of a finite stack ``(B, m, n)``: certified direct, else SVD/eigh.

    ``a`` (C-contiguous float32/float64/complex64/complex128) is not modified; ``atol``
    and ``rtol`` are float64 of shape ``(B,)``. With ``hermitian=True`` (``m == n``)
    only the lower triangle of each matrix is read.

    >>> import numpy as np
    >>> from pseudoinverse._methods.batched import pinv_batched
    >>> a = np.array([[[2.0, 0.0], [0.0, 4.0]], [[1.0, 1.0], [1.0, 1.0]]])
    >>> x, rank = pinv_batched(a, np.zeros(2), np.full(2, 2 * np.finfo(float).eps))
    >>> rank
    array([2, 1])
    >>> np.allclose(a @ x @ a, a) and np.allclose(x @ a @ x, x)
    True
    """
    nb, m, n = a.shape
    wide = m < n
    k, p = min(m, n), max(m, n)
    work = np.complex128 if a.dtype.kind == "c" else np.float64
    eps = float(np.finfo(a.dtype).eps)
    atol = np.asarray(atol, dtype=np.float64)
    rtol = np.asarray(rtol, dtype=np.float64)
    x = np.empty((nb, n, m), dtype=a.dtype)
    rank = np.full(nb, k, dtype=np.int64)
    step = _chunk(p, k, np.dtype(work).itemsize)
    starts = range(0, nb, step)
    rejected: list[np.ndarray] = [np.zeros(0, np.int64)] * len(starts)

    def run(part: slice) -> None:  # certify the chunks starts[part]
        touch(x[starts[part.start] : min(nb, starts[part.stop - 1] + step)])  # see touch
        for j in range(part.start, part.stop):
            i0 = starts[j]
            i1 = min(i0 + step, nb)
            blk = a[i0:i1]
            if hermitian:
                w = hermitian_from_lower(np, blk.astype(work))
            elif wide:
                w = np.array(blk.conj().transpose(0, 2, 1), dtype=work, order="C")  # A^H
            else:
                w = blk.astype(work, copy=False)
            xw, ok = _certify(w, atol[i0:i1], rtol[i0:i1], eps)
            if wide:
                xw = xw.conj().transpose(0, 2, 1)  # A^+ = ((A^H)^+)^H
            x[i0:i1] = xw  # rejected members are overwritten below
            rejected[j] = i0 + np.flatnonzero(~ok)

    # the chunks on the machine's threads (NumPy's LAPACK loops release the GIL)
    over_ranges(run, len(starts), 8 * stack_work(a.shape))
    bad = np.concatenate(rejected)
    if bad.size:
        fallback = pinv_eigh if hermitian else pinv_svd
        xb, rb = fallback(np.ascontiguousarray(a[bad]), atol[bad], rtol[bad], hermitian=hermitian)
        x[bad] = xb
        rank[bad] = rb
    return x, rank
