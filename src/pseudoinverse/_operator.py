"""``pinv_operator``: the pseudo-inverse of a sparse matrix or operator, applied by LSMR.

The public function validates once and builds a ``scipy.sparse.linalg.LinearOperator``
whose products run the block LSMR of ``_methods.lsmr`` (one sparse product per step for
all right-hand sides). ``scipy.sparse`` is imported here lazily: ``import
pseudoinverse`` does not load it.
"""

from __future__ import annotations

import numbers
import warnings
from typing import Any

import numpy as np

from ._methods.lsmr import NOT_CONVERGED, STOP_REASONS, CSRStep, LSMRInfo, lsmr_block


class ConvergenceWarning(RuntimeWarning):
    """An iterative solve stopped before its tolerances were met (``pinv_operator``)."""


def pinv_operator(
    A: Any,
    *,
    atol: float = 1e-10,
    btol: float = 1e-10,
    maxiter: int | None = None,
    damping: float = 0,
    conlim: float = 1e8,
) -> Any:
    """A ``LinearOperator`` that applies the pseudo-inverse ``A^+`` by LSMR, never forming it.

    ``op @ b`` is the minimum-norm least-squares solution ``pinv(A) @ b``, computed by
    LSMR started from zero (whose iterates stay in the row space of ``A``, so the limit
    is the minimum-norm solution, rank-deficient ``A`` included). ``op.H @ y`` applies
    the adjoint ``(A^+)^H = (A^H)^+`` (LSMR on ``A^H``), and ``op @ B`` or
    ``op.matmat(B)`` with ``B`` of shape ``(m, k)`` solves all ``k`` columns at once in
    lockstep: one product ``A @ V`` and one ``A^H @ U`` per step for the whole block, a
    column leaving the block when it meets its stopping rule (one column runs SciPy's
    ``lsmr`` itself).

    Parameters
    ----------
    A : sparse matrix or array, ndarray or LinearOperator, shape (m, n)
        Any SciPy sparse format (``*_matrix`` or ``*_array``; converted to CSR once),
        a dense 2-D array, or a ``scipy.sparse.linalg.LinearOperator`` (used through
        its ``matmat`` and ``rmatmat``). Integer, boolean and float32 entries are
        promoted to float64 (complex64 to complex128): SciPy's ``lsmr`` works in
        float64 too, and tolerances such as the default ``1e-10`` need it.
    atol, btol : float, optional
        LSMR's stopping tolerances, ``>= 0``. A column stops when
        ``|r| <= btol |b| + atol |A| |x|`` (a consistent system: ``A x`` matches ``b``
        to about these relative errors) or ``|A^H r| <= atol |A| |r|`` (a
        least-squares problem: the normal equations hold to ``atol``), with
        ``r = b - A x`` and ``|A|`` LSMR's estimate of the Frobenius norm. The error in
        ``x`` is then about ``cond(A) * atol`` relative to ``|x|`` (Fong & Saunders
        2011, section 6.2), for the part of ``A``'s spectrum LSMR has resolved.
    maxiter : int, optional
        The largest number of iterations per solve, ``>= 1``; default
        ``max(2 min(m, n), 20)``. SciPy's ``lsmr`` defaults to ``min(m, n)``, enough in
        exact arithmetic, but in floating point LSMR often takes a few steps more (a
        30 x 20 matrix of condition 20: 22 or 23 to ``1e-10``); a slowly converging or
        very ill-conditioned problem may need more still.
    damping : float, optional
        ``lambda >= 0`` (LSMR's ``damp``; lambda, not lambda squared): the operator
        then applies the damped inverse ``(A^H A + lambda^2 I)^-1 A^H =
        A^H (A A^H + lambda^2 I)^-1`` (``damped_pinv``), and its adjoint the same of
        ``A^H``.
    conlim : float, optional
        LSMR's limit on its estimate of ``cond(A)`` (stop reason 3), ``>= 0``; ``0``
        disables it. As in SciPy.

    Returns
    -------
    scipy.sparse.linalg.LinearOperator, shape (n, m)
        Of dtype float64 or complex128. Its ``info`` attribute holds the last solve's
        diagnostics, forward or adjoint (a named tuple of arrays with one entry per
        right-hand side: ``istop``, ``itn`` (iterations), ``normr`` (the estimate of
        ``|r|``), ``normar`` (of ``|A^H r|``), ``norma``, ``conda``, ``normx``, as
        SciPy's ``lsmr`` returns them); ``istop`` is 0 (``x = 0`` is exact), 1 or 2 (the
        ``atol``/``btol`` test above met), 3 (``cond(A)`` beyond ``conlim``), 4 or 5 (as
        1 or 2 at machine precision), 6 (``cond(A)`` too large for the machine) or 7
        (``maxiter`` reached).

    Raises
    ------
    TypeError
        ``A`` is not numeric, or a tolerance is not a number.
    ValueError
        ``A`` is not 2-D, holds NaN or Inf (the first such entry is named), or a
        tolerance is negative or NaN; when applied, a right-hand side with NaN or Inf.

    Warns
    -----
    ConvergenceWarning
        A ``RuntimeWarning``: some column stopped without meeting ``atol``/``btol``
        (the iteration limit, stop reason 7, or an estimate of ``cond(A)`` beyond
        ``conlim`` or the machine's, 3 and 6). It names the columns and the reason;
        the result is LSMR's last iterate. Never silent.

    Notes
    -----
    Cost per iteration: one product with ``A`` and one with ``A^H`` for the block of
    active columns (``2 nnz k`` multiply-adds for a sparse ``A``) plus ``O((m + n) k)``;
    memory ``O((m + n) k)`` beyond ``A`` (a CSR copy, and for complex ``A`` its
    conjugate). Non-finite entries of a ``LinearOperator`` cannot be checked.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> import pseudoinverse as pi
    >>> A = sp.csr_array(np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
    >>> op = pi.pinv_operator(A)
    >>> op.shape
    (2, 3)
    >>> b = np.array([1.0, 4.0, 3.0])
    >>> x = op @ b  # the least-squares solution: b's last entry is out of reach
    >>> np.allclose(x, [1.0, 2.0]), np.allclose(x, np.linalg.pinv(A.toarray()) @ b)
    (True, True)
    >>> int(op.info.istop[0]) in (1, 2)  # converged to atol/btol
    True
    >>> np.allclose(A @ (op @ (A @ x)), A @ x)  # A A^+ A = A on the applied operator
    True
    """
    from scipy.sparse.linalg import LinearOperator

    tol = {name: _tolerance(name, value) for name, value in
           (("atol", atol), ("btol", btol), ("damping", damping), ("conlim", conlim))}  # fmt: skip
    if maxiter is not None and (
        isinstance(maxiter, bool) or not isinstance(maxiter, numbers.Integral) or maxiter < 1
    ):
        raise ValueError(f"pinv_operator expects maxiter None or an integer >= 1, got {maxiter!r}")
    matmat, rmatmat, (m, n), dtype, operands, a_scale = _products(A)
    steps: dict[bool, Any] = {}  # the fused CSR steps of A and A^H, made on first use
    limit = max(2 * min(m, n), 20) if maxiter is None else int(maxiter)
    state: dict[str, Any] = {}

    def solve(b: np.ndarray, adjoint: bool) -> np.ndarray:
        rows, cols = (n, m) if adjoint else (m, n)
        b = np.asarray(b)
        b = b.reshape(rows, 1) if b.ndim == 1 else b
        if b.dtype.kind not in "biufc":
            raise TypeError(f"pinv_operator: the right-hand side must be numeric, got {b.dtype}")
        _check_finite(b, "the right-hand side")
        work = np.result_type(dtype, b.dtype)
        b = np.ascontiguousarray(b, dtype=work)
        if rows == 0 or cols == 0:  # A^+ is the zero (cols, rows) matrix
            k = b.shape[1]
            info = LSMRInfo(np.zeros(k, np.int64), np.zeros(k, np.int64),
                            *(np.zeros(k) for _ in range(5)))  # fmt: skip
            x = np.zeros((cols, k), dtype=work)
        else:
            # columns beyond 2^+-100 scaled by a power of two (the solution is linear in
            # b and the stopping rules scale-free): their squares would overflow
            c = _column_scale(b)
            b = b if c is None else b * (1 / c)
            fwd, adj = (rmatmat, matmat) if adjoint else (matmat, rmatmat)
            # one column: SciPy's lsmr itself, the same recurrence on Python floats (the
            # block's NumPy calls on length-1 vectors cost more than they save)
            # A = a_scale A' (a power of two, 1 unless A's entries lie beyond 2^+-100):
            # A^+ b = A'^+ b / a_scale, and lambda scales with A
            options = {"damp": tol["damping"] / a_scale, "atol": tol["atol"],
                       "btol": tol["btol"],
                       "conlim": tol["conlim"], "maxiter": limit}  # fmt: skip
            if b.shape[1] == 1:
                # SciPy's own products on A itself where the dtypes agree (its single
                # vector kernels beat the block ones at k = 1; a real A with a complex b
                # would fail in SciPy's lsmr: through the block products then)
                given = operands[adjoint] if work == dtype else None
                x, info = _lsmr_one(fwd, adj, b, cols, given, **options)
            else:
                step = _step(operands, adjoint, steps) if work == dtype else None
                x, info = lsmr_block(fwd, adj, b, cols, step=step, **options)
            c = np.ones(x.shape[1]) if c is None else c
            if a_scale != 1 or not (c == 1).all():
                x *= c / a_scale
                info = info._replace(
                    normr=info.normr * c, normar=info.normar * c * a_scale,
                    norma=info.norma * a_scale, normx=info.normx * c / a_scale,
                )  # fmt: skip
        state["op"].info = info
        _warn(info, limit, adjoint)
        return x

    op = LinearOperator(
        (n, m), dtype=dtype,
        matvec=lambda b: solve(b, False), rmatvec=lambda y: solve(y, True),
        matmat=lambda b: solve(b, False), rmatmat=lambda y: solve(y, True),
    )  # fmt: skip
    op.info = None  # set by every product: the last solve's LSMRInfo
    state["op"] = op
    return op


def _lsmr_one(fwd: Any, adj: Any, b: np.ndarray, n: int, given: Any, **options: Any) -> tuple:
    """``lsmr_block``'s contract for one column, by ``scipy.sparse.linalg.lsmr`` on
    ``given`` (the matrix or operator), or where that is None on ``fwd`` and ``adj``."""
    from scipy.sparse.linalg import LinearOperator, lsmr

    m, dtype = b.shape[0], b.dtype

    def product(f: Any, rows: int, cols: int) -> Any:
        def apply(v: np.ndarray) -> np.ndarray:
            out = np.zeros((rows, 1), dtype=dtype)
            f(np.ascontiguousarray(v, dtype=dtype).reshape(cols, 1), out)
            return out[:, 0]

        return apply

    if given is None:
        given = LinearOperator((m, n), dtype=dtype, matvec=product(fwd, m, n),
                               rmatvec=product(adj, n, m))  # fmt: skip
    x, istop, itn, *norms = lsmr(given, b[:, 0], **options)
    info = LSMRInfo(np.array([istop]), np.array([itn]), *(np.array([v], float) for v in norms))
    return np.asarray(x, dtype=dtype).reshape(n, 1), info


def _tolerance(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"pinv_operator expects {name} a real number, got {type(value).__name__}")
    value = float(value)
    if not value >= 0 or (name != "conlim" and not np.isfinite(value)):
        raise ValueError(f"pinv_operator expects {name} a finite number >= 0, got {value}")
    return value


def _products(A: Any) -> tuple[Any, Any, tuple[int, int], np.dtype, tuple[Any, Any], float]:
    """``(V, out) -> out += A' V``, the same for ``A'^H``, the shape, the working dtype,
    ``(A', A'^H)`` as objects that SciPy's ``lsmr`` takes, and ``c`` with ``A = c A'``:
    a power of two that brings the largest entry of a sparse or dense ``A`` near 1 where
    it lies beyond ``2^+-100`` (LSMR's norms square it), else 1 (a LinearOperator's
    entries are unknown: 1)."""
    import scipy.sparse as sp
    from scipy.sparse.linalg import LinearOperator

    if isinstance(A, LinearOperator):
        dtype = _working(np.dtype(A.dtype), "LinearOperator")

        def through(f: Any) -> Any:
            def add(v: np.ndarray, out: np.ndarray) -> None:
                out += np.asarray(f(v)).reshape(out.shape)

            return add

        return through(A.matmat), through(A.rmatmat), A.shape, dtype, (A, A.H), 1.0
    if sp.issparse(A):
        if A.ndim != 2:
            raise ValueError(f"pinv_operator expects a 2-D matrix (m, n), got shape {A.shape}")
        dtype = _working(A.dtype, f"sparse {A.format}")
        a = sp.csr_array(A, dtype=dtype)  # one conversion: CSR products are the fast ones
        a.sum_duplicates()
        _check_finite_sparse(a)
        c = _entry_scale(a.data)
        a = a if c == 1 else a * (1 / c)
        # A^H as the CSC transpose of A: its product scatters into an (n, k) block that
        # stays in cache, several times faster than a CSR copy of A^H gathering rows of U
        ah = a.T.conj() if dtype.kind == "c" else a.T
        return _sparse_add(a), _sparse_add(ah), a.shape, dtype, (a, ah), c
    if not hasattr(A, "shape") and not isinstance(A, list | tuple):
        raise TypeError(
            "pinv_operator expects a SciPy sparse matrix or array, a dense array or a "
            f"scipy.sparse.linalg.LinearOperator, got {type(A).__name__}"
        )
    a = np.asarray(A)
    if a.ndim != 2:
        raise ValueError(f"pinv_operator expects a 2-D matrix (m, n), got shape {a.shape}")
    dtype = _working(a.dtype, "array")
    a = np.ascontiguousarray(a, dtype=dtype)
    _check_finite(a, "A")
    c = _entry_scale(a)
    a = a if c == 1 else a * (1 / c)
    ah = a.conj().T

    def dense(mat: np.ndarray) -> Any:
        def add(v: np.ndarray, out: np.ndarray) -> None:
            out += mat @ v

        return add

    return dense(a), dense(ah), a.shape, dtype, (a, ah), c


def _pow2_scale(big: np.ndarray) -> np.ndarray:
    """For each largest magnitude in ``big``, a power of two near it where it lies beyond
    ``2^+-100``, else 1."""
    big = np.asarray(big, dtype=np.float64)
    far = (big > 2.0**100) | ((big < 2.0**-100) & (big > 0))
    return np.where(far, np.ldexp(1.0, np.frexp(np.where(far, big, 1.0))[1]), 1.0)


def _entry_scale(values: np.ndarray) -> float:
    """:func:`_pow2_scale` of ``max |values|`` (1 for no values)."""
    return float(_pow2_scale(np.abs(values).max() if values.size else 0.0))


def _column_scale(b: np.ndarray) -> np.ndarray | None:
    """:func:`_pow2_scale` of each column's largest magnitude; None where all are 1."""
    c = _pow2_scale(np.abs(b).max(axis=0))
    return None if (c == 1).all() else c


def _step(operands: tuple[Any, Any], adjoint: bool, steps: dict[bool, Any]) -> Any:
    """The fused step (``lsmr.CSRStep``) of ``A`` (``adjoint``: of ``A^H``, a CSR copy
    made once) where ``A`` is sparse, else None (dense arrays and LinearOperators)."""
    import scipy.sparse as sp

    if not sp.issparse(operands[0]):
        return None
    if adjoint not in steps:
        mat = operands[adjoint]
        steps[adjoint] = CSRStep(mat if mat.format == "csr" else mat.tocsr())
    return steps[adjoint]


def _sparse_add(a: Any) -> Any:
    """``(V, out) -> out += a @ V`` for a CSR or CSC ``a``, adding in place.

    SciPy's ``a @ V`` calls its compiled ``csr_matvecs``/``csc_matvecs`` (which add into
    their output) on a fresh block of zeros; calling it on ``out`` itself saves that
    block and the addition, a third of a step's memory traffic. Where that private
    routine is missing or the dtypes differ (a complex block, a real ``a``), ``a @ V``.
    """
    try:
        from scipy.sparse import _sparsetools

        kernel = getattr(_sparsetools, f"{a.format}_matvecs")
    except (ImportError, AttributeError):  # another SciPy: the public product
        kernel = None
    rows, cols = a.shape

    def add(v: np.ndarray, out: np.ndarray) -> None:
        if (
            kernel is None
            or v.dtype != a.dtype
            or out.dtype != a.dtype
            or not (v.flags.c_contiguous and out.flags.c_contiguous)
        ):
            out += a @ v
            return
        k = v.shape[1]
        kernel(rows, cols, k, a.indptr, a.indices, a.data, v.ravel(), out.reshape(-1))

    return add


def _working(dtype: np.dtype, what: str) -> np.dtype:
    if dtype.kind not in "biufc":
        raise TypeError(f"pinv_operator expects numeric entries, got a {what} of dtype {dtype}")
    return np.dtype(np.complex128 if dtype.kind == "c" else np.float64)


def _check_finite(a: np.ndarray, name: str) -> None:
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        i, j = np.argwhere(~np.isfinite(a))[0]
        raise ValueError(f"pinv_operator expects finite entries, got {a[i, j]} in {name} at "
                         f"[{i}, {j}]")  # fmt: skip


def _check_finite_sparse(a: Any) -> None:
    if a.dtype.kind in "fc" and not np.isfinite(a.data).all():
        first = int(np.flatnonzero(~np.isfinite(a.data))[0])
        row = int(np.searchsorted(a.indptr, first, side="right")) - 1
        raise ValueError(f"pinv_operator expects finite entries, got {a.data[first]} in A at "
                         f"[{row}, {a.indices[first]}] (a stored entry)")  # fmt: skip


def _warn(info: LSMRInfo, maxiter: int, adjoint: bool) -> None:
    """A ``ConvergenceWarning`` per stop reason that does not certify the tolerances."""
    for code in NOT_CONVERGED:
        cols = np.flatnonzero(info.istop == code)
        if cols.size:
            shown = ", ".join(map(str, cols[:10])) + (", ..." if cols.size > 10 else "")
            what = "adjoint " * adjoint
            warnings.warn(
                ConvergenceWarning(
                    f"pinv_operator: LSMR did not converge for {cols.size} of "
                    f"{info.istop.size} right-hand side column(s) of the {what}solve "
                    f"[{shown}]: istop {code}, {STOP_REASONS[code]} (maxiter {maxiter}; "
                    f"largest |r| estimate {info.normr[cols].max():.3e}); raise maxiter, "
                    "or loosen atol/btol, or use damping for an ill-conditioned A"
                ),
                stacklevel=4,
            )
