"""The command line's sparse route: ``--rhs`` with a Matrix Market ``coordinate`` INPUT.

The matrix is read as a sparse matrix, never densified, and ``x = pinv(A) @ B`` comes
from ``pinv_operator`` (LSMR from zero, all columns of ``B`` in lockstep; with
``--damping L``, the damped solve). It is taken when INPUT is a coordinate ``.mtx``
file, ``--rhs`` is given, and no option that needs the singular values is
(``--rtol``, ``--atol``, ``--method``, ``--hermitian``, ``--plot``, ``--exact``), nor
``--dense``. The summary names the route, LSMR's iterations and stop reason, and the
two residuals of a solve (``_cli_solve``'s names) from sparse products; a column that
did not converge is reported in the summary and as a warning on stderr (exit status 0:
the output holds LSMR's last iterate).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from ._cli_io import BadInput, show
from ._cli_solve import DAMPED_SOLVE_NAME, SOLVE_NAMES, _is_vector
from ._methods.lsmr import NOT_CONVERGED, STOP_REASONS
from ._operator import ConvergenceWarning, pinv_operator

DENSE_ONLY = ("rtol", "atol", "method", "hermitian", "plot", "exact", "dense")


def wanted(args: Any) -> bool:
    """Whether the options allow the sparse route (the file decides the rest)."""
    return args.rhs is not None and not any(getattr(args, f) for f in DENSE_ONLY)


def check_maxiter(args: Any, sparse: bool) -> None:
    if args.maxiter is not None and not sparse:
        raise BadInput(
            "--maxiter is for the sparse iterative solve: a Matrix Market coordinate INPUT "
            "with --rhs, without --rtol, --atol, --method, --hermitian, --plot, --exact, --dense"
        )
    if args.maxiter is not None and args.maxiter < 1:
        raise BadInput(f"--maxiter must be an integer >= 1, got {args.maxiter}")


def solve(args: Any, a: Any, b: np.ndarray) -> tuple[np.ndarray, list[str], float]:
    """``x`` of ``output_shape``, the summary lines after ``input``, the solve's seconds."""
    import scipy.sparse

    if a.dtype.kind in "fc" and not np.isfinite(a.data).all():
        first = int(np.flatnonzero(~np.isfinite(a.data))[0])
        raise BadInput(f"{show(args.input)} contains NaN or Inf (first at index "
                       f"({int(a.row[first])}, {int(a.col[first])}))")  # fmt: skip
    m, n = a.shape
    vector = _is_vector(a, b)
    bb = b[..., None] if vector else b
    batch, k = bb.shape[:-2], bb.shape[-1]
    columns = np.moveaxis(bb, -2, 0).reshape(m, -1)  # every right-hand side, side by side
    csr = scipy.sparse.csr_array(a)
    lam = args.damping or 0.0
    op = pinv_operator(csr, damping=lam, maxiter=args.maxiter)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported below, once
        x = op.matmat(columns) if columns.shape[1] else np.zeros((n, 0), op.dtype)
    seconds = time.perf_counter() - start
    info = op.info
    lines = [
        f"rhs        {show(args.rhs)}  shape {b.shape}  dtype {b.dtype}",
        f"shape      {a.shape}  dtype {csr.dtype}  sparse, {csr.nnz} stored entries",
        "method     sparse iterative: LSMR from zero (pinv_operator, atol 1e-10, btol 1e-10),"
        " no pseudo-inverse or SVD formed"
        + (f"; damping L = {lam:.3e}" if args.damping is not None else ""),
        _lsmr_line(info, columns.shape[1]),
    ]
    lines.append(_residual_line(csr, columns, x, lam, args.damping is not None))
    bad = np.isin(info.istop, NOT_CONVERGED)
    if bad.any():
        codes = sorted(set(info.istop[bad].tolist()))
        warnings.warn(
            f"LSMR did not converge for {int(bad.sum())} of {bad.size} right-hand side(s) "
            f"({'; '.join(STOP_REASONS[c] for c in codes)}); the output holds its last "
            "iterate: raise --maxiter, or use --dense",
            ConvergenceWarning,
            stacklevel=2,
        )
    out = np.moveaxis(x.reshape(n, *batch, k), 0, -2)
    return (out[..., 0] if vector else out), lines, seconds


def _lsmr_line(info: Any, k: int) -> str:
    """``lsmr  converged: all 3 columns, 44 iterations; stop: ... (istop 2: 3)``."""
    if not k:
        return "lsmr       no right-hand sides"
    stops = {c: int((info.istop == c).sum()) for c in sorted(set(info.istop.tolist()))}
    bad = sum(v for c, v in stops.items() if c in NOT_CONVERGED)
    head = f"NOT converged: {bad} of {k}" if bad else f"converged: all {k}"
    low, high = int(info.itn.min()), int(info.itn.max())
    itn = f"{low} iterations" if low == high else f"{low} to {high} iterations"
    reasons = "; ".join(f"{STOP_REASONS[c]} (istop {c}: {v})" for c, v in stops.items())
    return f"lsmr       {head} column{'s' * (k > 1)}, {itn}; stop: {reasons}"


def _residual_line(a: Any, b: np.ndarray, x: np.ndarray, lam: float, damped: bool) -> str:
    """``|Ax-b|/|b|`` and the (damped) normal-equations residual, by sparse products."""
    fro = np.linalg.norm
    with np.errstate(all="ignore"):
        r = a @ x - b
        norm_a, norm_r, norm_b, norm_x = fro(a.data), fro(r), fro(b), fro(x)
        first = norm_r / norm_b if norm_b > 0 else norm_r
        normal = a.T.conj() @ r
        if damped:
            num, den = (
                fro(normal + lam**2 * x),
                norm_a * (norm_a * norm_x + norm_b) + lam**2 * norm_x,
            )
        else:
            num, den = fro(normal), norm_a * norm_r
        second = num / den if den > 0 else num
    names = SOLVE_NAMES if not damped else (SOLVE_NAMES[0], DAMPED_SOLVE_NAME)
    return f"residuals  {names[0]} {first:.1e}  {names[1]} {second:.1e}"
