"""The command line's solve and damped paths: ``--rhs FILE`` and ``--damping L``.

``--rhs`` gives ``pinv_solve(A, B)`` (no pseudo-inverse is formed), ``--damping`` gives
``damped_pinv(A, L)``, and both ``damped_pinv_solve(A, L, B)``. Their summaries replace
the four Penrose residuals, which need the pseudo-inverse, with residuals that cost a
few products with the result (docs/cli.rst defines each):

* a solve: ``|A x - b| / |b|`` and the normal-equations residual
  ``|A^H (A x - b)| / (|A| |A x - b|)``, LSQR's two stopping tests (Paige and Saunders,
  ACM TOMS 8, 1982, section 6): a least-squares solution has one of them near eps;
* damped: the damped normal equations ``A^H A X + L^2 X = A^H`` (or
  ``A^H (A x - b) + L^2 x = 0``) relative to the size of their terms, so that a
  backward-stable result shows a small multiple of eps. For the damped inverse they
  are exact up to ``EXACT_SIZE`` rows and columns and probed beyond, as the Penrose
  residuals are.

Norms are Frobenius (a matrix B's columns together); a batch reports its worst member.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from ._api import damped_pinv, damped_pinv_solve, pinv_solve
from ._cli_checks import (
    PROBES,
    api_error,
    ct,
    fro,
    hermitian_part,
    ratio,
    residual_line,
    shape_line,
    spectrum,
    summary_lines,
    tolerances,
)
from ._cli_io import BadInput, check_output, show, suffix_of

SOLVE_NAMES = ("|Ax-b|/|b|", "|A^H(Ax-b)|/(|A||Ax-b|)")
DAMPED_NAME = "|A^HAX+L^2X-A^H|/((|A|^2+L^2)|X|+|A|)"
DAMPED_SOLVE_NAME = "|A^H(Ax-b)+L^2x|/(|A|(|A||x|+|b|)+L^2|x|)"
_CHUNK = 2**22  # entries of work arrays per step of the exact damped residual (32 MiB)
PLOT_ERROR = (
    '--plot needs matplotlib: pip install matplotlib, or from a checkout pip install -e ".[plot]"'
)


def check_options(args: Any) -> str | None:
    """Everything that needs no file read; the output's format (None: no output).

    Shared by every path of the command line (this module is the one below ``_cli``).
    """
    out_suffix = suffix_of(args.output, "output") if args.output else None
    if args.plot and not args.plot.lower().endswith(".png"):
        raise BadInput(
            f"--plot writes a PNG image; give a name ending in .png, got {show(args.plot)}"
        )
    for name in ("rtol", "atol"):
        value = getattr(args, name)
        if value is not None and not value >= 0:  # also rejects NaN
            raise BadInput(f"--{name} must be a number >= 0, got {value}")
    if args.rhs_key is not None and args.rhs is None:
        raise BadInput("--rhs-key chooses an array of the --rhs file; give --rhs FILE too")
    if args.damping is not None:
        if not np.isfinite(args.damping) or args.damping < 0:
            raise BadInput(f"--damping must be a finite number >= 0, got {args.damping}")
        given = [f for f in ("rtol", "atol", "method") if getattr(args, f) is not None]
        if given:
            raise BadInput(
                f"--damping uses no threshold and no method; drop --{given[0]} "
                "(damping filters every singular value: sigma / (sigma^2 + L^2))"
            )
    inputs = [(args.input, "input")] + [(args.rhs, "right-hand side")] * (args.rhs is not None)
    for flag, path in (("-o", args.output), ("--plot", args.plot)):
        if path:
            check_output(path, inputs, flag)
    if args.output and args.plot and os.path.realpath(args.output) == os.path.realpath(args.plot):
        raise BadInput("-o and --plot name the same file")
    if args.plot:
        try:
            import matplotlib  # noqa: F401 - only to fail early, before computing
        except ImportError:
            raise BadInput(PLOT_ERROR) from None
    return out_suffix


def _is_vector(a: np.ndarray, b: np.ndarray) -> bool:
    """``pinv_solve``'s rule: 1-D, or one dimension fewer than A with shape A.shape[:-1]."""
    return b.ndim == 1 or (b.ndim == a.ndim - 1 and b.shape == a.shape[:-1])


def output_shape(a: np.ndarray, b: np.ndarray | None, path: str | None) -> tuple[int, ...]:
    """The shape of the result, checked: B's rows are A's, the batches broadcast."""
    m, n = a.shape[-2:]
    if b is None:
        return (*a.shape[:-2], n, m)
    vector = _is_vector(a, b)
    rows, tail = (b.shape[-1], ()) if vector else (b.shape[-2], b.shape[-1:])
    if rows != m:
        raise BadInput(
            f"--rhs {show(path)} has {rows} rows, A has {m} (shape {a.shape}); B must be "
            f"({m},), ({m}, k) or a batch of them, got shape {b.shape}"
        )
    try:
        batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-1] if vector else b.shape[:-2])
    except ValueError:
        raise BadInput(
            f"the batch shapes of A {a.shape} and --rhs {show(path)} {b.shape} do not broadcast"
        ) from None
    return (*batch, n, *tail)


def compute(args: Any, a: np.ndarray, b: np.ndarray | None) -> tuple[np.ndarray, Any, float]:
    """The solution (or damped inverse), the rank (None when damped) and the seconds."""
    start = time.perf_counter()
    try:
        if args.damping is None:
            x, rank = pinv_solve(a, b, atol=args.atol, rtol=args.rtol, hermitian=args.hermitian,
                                 method=args.method or "auto", return_rank=True)  # fmt: skip
        elif b is None:
            x, rank = damped_pinv(a, args.damping, hermitian=args.hermitian), None
        else:
            x, rank = damped_pinv_solve(a, args.damping, b, hermitian=args.hermitian), None
    except ValueError as err:  # an unknown method, say (LinAlgError is a ValueError)
        raise api_error(err, args.method) from None
    seconds = time.perf_counter() - start
    if x.dtype.kind in "fc" and not np.isfinite(x).all():
        what = "solution" if b is not None else "damped inverse"
        raise BadInput(f"the {what} overflows {x.dtype}; scale the data"
                       + " or raise --atol/--rtol" * (args.damping is None))  # fmt: skip
    return np.asarray(x), rank, seconds


def _scaled(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``m / s`` and ``s``, with ``s`` each member's largest entry (1 where zero)."""
    s = np.abs(m).max(axis=(-2, -1), initial=0)
    s = np.where(s > 0, s, 1.0)
    return m / s[:, None, None], s


def solve_residuals(a: np.ndarray, b: np.ndarray, x: np.ndarray, lam: float | None) -> np.ndarray:
    """``(B, 2)``: ``|Ax-b|/|b|`` and the (damped) normal-equations residual of stacks.

    ``a`` (B, m, n), ``b`` (B, m, k), ``x`` (B, n, k). A / s, b / t, x s / t and L / s
    have the same ratios; with s, t the largest entries, no product overflows needlessly.
    """
    a, s = _scaled(a)
    b, t = _scaled(b)
    with np.errstate(all="ignore"):
        x = x * (s / t)[:, None, None]
        r = a @ x - b
        norm_a, norm_r, norm_x, norm_b = fro(a), fro(r), fro(x), fro(b)
        if lam is None:
            normal = ratio(fro(ct(a) @ r), norm_a * norm_r)
        else:
            lam2 = (lam / s)[:, None, None] ** 2
            scale = norm_a * (norm_a * norm_x + norm_b) + lam2[:, 0, 0] * norm_x
            normal = ratio(fro(ct(a) @ r + lam2 * x), scale)
        return np.stack([ratio(norm_r, norm_b), normal], axis=-1)


def damped_residuals(a: np.ndarray, x: np.ndarray, lam: float, exact: bool) -> np.ndarray:
    """``(B,)``: ``|A^H A X + L^2 X - A^H| / ((|A|^2 + L^2) |X| + |A|)``, exact or probed.

    Exact: ``(A^H A) X`` for ``m >= n``, else ``A^H (A X)`` (O(m n min(m, n)) either way).
    Probed: ``|M Z| / sqrt(PROBES)`` for Gaussian ``Z``, products with ``Z`` only.
    """
    a, s = _scaled(a)
    m, n = a.shape[-2:]
    with np.errstate(all="ignore"):
        x = x * s[:, None, None]
        lam2 = (lam / s)[:, None, None] ** 2
        norm_a, norm_x = fro(a), fro(x)
        num = np.empty(len(a))
        if exact:
            step = max(1, _CHUNK // max(m * n, n * n, m * m, 1))
            for i in range(0, len(a), step):
                aa, xx, ll = a[i : i + step], x[i : i + step], lam2[i : i + step]
                normal = (ct(aa) @ aa) @ xx if m >= n else ct(aa) @ (aa @ xx)
                num[i : i + step] = fro(normal + ll * xx - ct(aa))
        else:
            rng = np.random.default_rng(0)  # the same summary for the same file
            z = rng.standard_normal((len(a), m, PROBES))
            if np.iscomplexobj(a):
                z = (z + 1j * rng.standard_normal(z.shape)) / np.sqrt(2)  # E|z|^2 = 1
            xz = x @ z
            ah_z = ct(ct(z) @ a)  # A^H Z without forming A^H
            num = fro(ct(a) @ (a @ xz) + lam2 * xz - ah_z) / np.sqrt(PROBES)
        return ratio(num, (norm_a**2 + lam2[:, 0, 0]) * norm_x + norm_a)


def _sigma_line(sp: Any) -> str:
    e = lambda v: f"{v:.3e}"  # noqa: E731
    if not sp.largest.size:
        return "sigma      none (no matrices)"
    if sp.values is None:
        return f"sigma      largest {e(sp.largest.max())}  (Lanczos; --exact for all values)"
    if not sp.values.shape[1]:
        return "sigma      none (empty matrices)"
    small = sp.values[:, -1]
    return f"sigma      largest {e(sp.largest.max())}, smallest {e(small.min())}"


def summary(args: Any, a: np.ndarray, b: np.ndarray | None, x: np.ndarray, rank: Any,
            exact: bool, all_values: bool) -> tuple[list[str], Any]:  # fmt: skip
    """The summary lines after ``input`` (and ``rhs``) and the spectrum for ``--plot``."""
    m, n = a.shape[-2:]
    big = np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(x) else np.float64
    count = int(np.prod(a.shape[:-2]))  # not -1: an empty (3, 0) has no -1 to infer
    own = a.reshape(count, m, n).astype(big, copy=False)
    full = hermitian_part(own) if args.hermitian else own
    lines = (
        [f"rhs        {show(args.rhs)}  shape {b.shape}  dtype {b.dtype}"] if b is not None else []
    )
    if args.damping is None:  # a solve: the rank decision as for pinv
        ranks = np.reshape(rank, -1)
        atol, rtol = tolerances(a, args.atol, args.rtol)
        sp = spectrum(full, None, ranks, all_values, atol, rtol)
        rule = f"max(atol {atol:.3g}, rtol {rtol:.3g} * sigma_max)"
        lines += summary_lines(a, ranks, sp, rule)
    else:
        sp = spectrum(full, None, np.zeros(len(full), int), all_values, 0.0, 0.0)
        lines += [shape_line(a), _sigma_line(sp)]
        lines.append(f"damping    L = {args.damping:.3e} (no threshold: each sigma becomes "
                     "sigma / (sigma^2 + L^2))")  # fmt: skip
    batched = x.ndim > (2 if b is None or not _is_vector(a, b) else 1)
    if b is None:  # the damped inverse
        xs = x.reshape(count, n, m).astype(big, copy=False)
        res = damped_residuals(full, xs, args.damping, exact) if full.size else np.zeros(len(xs))
        lines.append(residual_line((DAMPED_NAME,), res[:, None], batched, not exact))
        return lines, sp
    shape = x.shape[:-1] if _is_vector(a, b) else x.shape[:-2]
    bb = b[..., None] if _is_vector(a, b) else b
    k = bb.shape[-1]
    count = int(np.prod(shape))
    stack_a = np.broadcast_to(full.reshape(a.shape), (*shape, m, n)).reshape(count, m, n)
    stack_b = np.broadcast_to(bb, (*shape, m, k)).reshape(count, m, k).astype(big, copy=False)
    xs = x.reshape(count, n, k).astype(big, copy=False)
    if stack_a.size and stack_b.size:
        res = solve_residuals(stack_a, stack_b, xs, args.damping)
    else:
        res = np.zeros((len(xs), 2))
    names = SOLVE_NAMES if args.damping is None else (SOLVE_NAMES[0], DAMPED_SOLVE_NAME)
    lines.append(residual_line(names, res, batched, False))
    return lines, sp
