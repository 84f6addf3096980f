"""The command line: ``pseudoinverse INPUT [-o OUTPUT] ...`` (SPEC, "Command line").

Everything that can be checked before computing is checked first (arguments, formats,
the output paths, matplotlib for ``--plot``, the data); outputs are written to temporary
files next to their targets and moved into place only when all of them are ready, so a
failure never leaves a partial or overwritten file, and an output that names the input
(also through a symbolic or hard link) is refused. Bad input is exactly one line on
stderr (control characters in names escaped, warnings folded in) and exit status 2; a
closed stdout (``| head``) ends the program quietly.

``--rhs FILE`` solves (``pinv_solve``) and ``--damping L`` damps (``damped_pinv``,
``damped_pinv_solve``): ``_cli_solve`` computes those and their residuals, which need
no pseudo-inverse.

The summary's cost is kept a small multiple of the pseudo-inverse's own:

* the four Penrose residuals come from matrix products only, exactly while
  ``max(m, n) <= EXACT_SIZE``, else estimated from ``PROBES`` random probe vectors
  (``|M z|`` for Gaussian ``z``: within some 10% of the true norms, marked ``~``);
* the singular values are all computed (an SVD without vectors) while
  ``min(m, n) <= EXACT_SIZE`` or for ``--plot``; beyond, the largest comes from a Lanczos
  method (ARPACK) and the smallest kept from the same on the result, ``1 / |X|_2``, to
  about six digits, and the largest dropped one is not shown;
* ``--exact`` computes all of it exactly at any size (an SVD and four products: for a
  large matrix several times the pseudo-inverse's time).

The pseudo-inverse's time and the whole command's are reported separately. On a
terminal, a progress bar (tqdm, on stderr) shows the stages once they take a second.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from typing import Any, NoReturn

import numpy as np

from . import __version__
from ._api import pinv
from ._cli_checks import (
    EXACT_SIZE,
    PENROSE,
    PROBES,
    api_error,
    check_data,
    hermitian_part,
    penrose_residuals,
    residual_line,
    spectrum,
    summary_lines,
    tolerances,
)
from ._cli_io import (
    FORMATS,
    BadInput,
    read_matrix,
    save,
    show,
    write_all,
)
from ._cli_solve import PLOT_ERROR as PLOT_ERROR  # the hint, importable from here too
from ._cli_solve import check_options, compute, output_shape, summary
from ._cli_sparse import check_maxiter, wanted
from ._cli_sparse import solve as sparse_solve

TWO_D_ONLY = (".csv", ".txt", ".mtx")
PROGRESS_DELAY = 1.0  # seconds of work before a progress bar appears (tqdm's delay)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage + exit itself
        if message.endswith("expected one argument"):  # e.g. --rtol -1e-3: "-1e-3" is no number
            message += " (write a value that starts with '-' as --name=VALUE)"
        raise BadInput(message)


def _parser() -> _Parser:
    p = _Parser(
        prog="pseudoinverse",
        description="Compute the Moore-Penrose pseudo-inverse of the matrix (or stack of "
        "matrices) in INPUT, or with --rhs the solution pinv(A) @ B, or with --damping the "
        "damped (Tikhonov) inverse; print a summary and optionally write it to OUTPUT.",
        epilog="Singular values sigma <= max(atol, rtol * sigma_max) are treated as zero; "
        "by default atol = 0 and rtol = max(m, n) * eps. Formats: .npy, .npz, .csv "
        "(comma-separated, no header), .txt (whitespace-separated), .mtx (Matrix Market). "
        f"The summary is exact up to {EXACT_SIZE} rows and columns; beyond, the residuals are "
        f"estimated from {PROBES} random probes (marked ~) and sigma_max and the smallest "
        "kept sigma come from a Lanczos method, so that the summary costs far less than the "
        "pseudo-inverse; --exact computes all of them (slower). A solve (--rhs) prints "
        "|Ax-b|/|b| and |A^H(Ax-b)|/(|A||Ax-b|) instead of the Penrose residuals; --damping "
        "the residual of the damped normal equations. "
        "Example: pseudoinverse examples/jacobian.csv -o pinv.npy --plot spectrum.png",
    )
    p.add_argument("input", metavar="INPUT", help="matrix file: " + " ".join(FORMATS))
    p.add_argument("-o", "--output", metavar="OUTPUT", help="write the result here")
    p.add_argument("--rtol", type=float, metavar="R", help="relative tolerance (>= 0)")
    p.add_argument("--atol", type=float, metavar="A", help="absolute tolerance (>= 0)")
    p.add_argument(
        "--hermitian", action="store_true", help="assume A Hermitian (read its lower triangle)"
    )
    p.add_argument(
        "--method",
        metavar="M",
        help="auto (default), svd, eigh (with --hermitian) or another method of "
        "pseudoinverse.pinv; an unknown name lists them",
    )
    p.add_argument(
        "--rhs",
        metavar="FILE",
        help="solve: write x = pinv(A) @ B for B in FILE, shape (m,) or (..., m, k), "
        "without forming pinv(A) (pseudoinverse.pinv_solve)",
    )
    p.add_argument("--rhs-key", metavar="NAME", help="the array to read from an .npz --rhs file")
    p.add_argument(
        "--maxiter",
        type=int,
        metavar="N",
        help="with --rhs and a sparse (Matrix Market coordinate) INPUT, which is solved by "
        "LSMR without densifying: at most N iterations (default max(2 min(m, n), 20))",
    )
    p.add_argument(
        "--dense",
        action="store_true",
        help="read a sparse .mtx INPUT densely and solve by the SVD route even with --rhs",
    )
    p.add_argument(
        "--damping",
        type=float,
        metavar="L",
        help="damp with lambda = L >= 0 (not L^2): the damped inverse (A^H A + L^2 I)^-1 A^H, "
        "or with --rhs its solve; no threshold, so not with --rtol, --atol or --method",
    )
    p.add_argument("--plot", metavar="PNG", help="draw the singular values and the cutoff")
    p.add_argument("--key", metavar="NAME", help="the array to read from an .npz file")
    p.add_argument(
        "--exact",
        action="store_true",
        help="exact singular values and residuals in the summary at any size (slower)",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


class _Progress:
    """Stages on a tqdm bar on stderr: only on a terminal, only after PROGRESS_DELAY s."""

    STAGES = ("read", "pinv", "checks", "write")

    def __init__(self) -> None:
        self._bar: Any = None
        try:
            terminal = sys.stderr.isatty()
        except (AttributeError, ValueError):  # replaced or closed stderr
            terminal = False
        if terminal:
            from tqdm import tqdm  # lazily: only the command line on a terminal needs it

            bar = "pseudoinverse: {desc} {bar} {n}/{total} [{elapsed}]"
            self._bar = tqdm(total=len(self.STAGES), file=sys.stderr, delay=PROGRESS_DELAY,
                             leave=False, mininterval=0, miniters=1, bar_format=bar)  # fmt: skip

    def stage(self, name: str) -> None:
        if self._bar is None:
            return
        self._bar.update(self.STAGES.index(name) - self._bar.n)  # shown once past the delay
        self._bar.set_description_str(name, refresh=False)
        if time.time() - self._bar.start_t >= PROGRESS_DELAY:
            self._bar.refresh()  # name the stage now: it may run long without an update

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()  # leave=False: the line is cleared, stdout stays clean


def _check_data(a: np.ndarray, path: str, hermitian: bool) -> np.ndarray:
    a = check_data(a, path)
    if hermitian and a.shape[-1] != a.shape[-2]:
        raise BadInput(f"--hermitian needs square matrices, got shape {a.shape}")
    return a


def _plot(f: Any, sv: np.ndarray, tol: np.ndarray, rank: np.ndarray | None, name: str,
          damping: float | None = None) -> None:  # fmt: skip
    """The spectrum; with ``damping``, its line instead of a cutoff (nothing is dropped)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global state
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = min(len(sv), 100)  # more lines than this only blacken the plot
    marks = tol if damping is None else np.array([damping])
    positive = np.concatenate([sv[sv > 0], marks[marks > 0]])
    floor = positive.min() / 100 if positive.size else 1.0  # exact zeros drawn here, below all
    index, alpha = np.arange(1, sv.shape[-1] + 1), 1.0 if shown == 1 else 0.4
    damped = damping is not None
    for b in range(shown):
        s = np.maximum(sv[b], floor)
        keep = sv[b] > tol[b] if not damped else np.ones(len(s), bool)
        ax.semilogy(index, s, "-", color="0.75", zorder=1)
        kept = ("singular values" if damped else "kept") * (b == 0)
        ax.semilogy(index[keep], s[keep], "o", color="C0", alpha=alpha, label=kept)
        if not damped:
            drop = "treated as zero" * (b == 0)
            ax.semilogy(index[~keep], s[~keep], "x", color="C3", alpha=alpha, label=drop)
            cut = f"cutoff {tol[0]:.2e}" if shown == 1 else f"cutoffs (largest {tol.max():.2e})"
            ax.axhline(tol[b], color="C1", ls="--", lw=1, label=cut * (b == 0))
    if damped:
        if damping > 0:  # lambda = 0 has no place on a log axis
            ax.axhline(
                damping, color="C2", ls="--", lw=1, label=rf"damping $\lambda$ {damping:.2e}"
            )
        ax.set_title(rf"Singular values of {name} (damped, $\lambda$ = {damping:.2e})")
    else:
        what = f"rank {rank[0]}" if shown == 1 else f"rank {rank.min()} to {rank.max()}"
        ax.set_title(f"Singular values of {name}: {what} of {sv.shape[-1]}")
    more = f" ({len(sv)} matrices{f', first {shown} shown' * (shown < len(sv))})" * (len(sv) > 1)
    ax.set_xlabel(f"index $i${more}")
    zeros = f"  (zeros drawn at {floor:.0e})" if (sv == 0).any() else ""
    ax.set_ylabel(rf"$\sigma_i${zeros}")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    fig.savefig(f, format="png", dpi=100)


def _seconds(t: float) -> str:
    return f"{t * 1e3:.2f} ms" if t < 1 else f"{t:.2f} s"


def _pinv_summary(args: argparse.Namespace, a: np.ndarray, progress: _Progress) -> tuple:
    """The pseudo-inverse, its seconds, the summary lines and the spectrum."""
    start = time.perf_counter()
    try:
        x, rank = pinv(a, atol=args.atol, rtol=args.rtol, hermitian=args.hermitian,
                       method=args.method or "auto", return_rank=True)  # fmt: skip
    except ValueError as err:  # an unknown method, say (LinAlgError is a ValueError)
        raise api_error(err, args.method) from None
    pinv_seconds = time.perf_counter() - start
    if x.dtype.kind in "fc" and not np.isfinite(x).all():  # e.g. 1 / 5e-324: beyond float64
        raise BadInput(
            f"the pseudo-inverse of {show(args.input)} overflows {x.dtype} (a kept singular "
            "value is too small); scale the data or raise --atol/--rtol"
        )

    progress.stage("checks")
    m, n = a.shape[-2:]
    batch = int(np.prod(a.shape[:-2]))
    big = np.complex128 if a.dtype.kind == "c" else np.float64
    stack = a.reshape(batch, m, n).astype(big, copy=False)
    full = hermitian_part(stack) if args.hermitian else stack
    xs, ranks = x.reshape(batch, n, m).astype(big, copy=False), np.reshape(rank, batch)
    atol, rtol = tolerances(a, args.atol, args.rtol)
    exact = args.exact or max(m, n) <= EXACT_SIZE
    sp = spectrum(full, xs, ranks, exact or bool(args.plot) or min(m, n) <= EXACT_SIZE, atol, rtol)
    residuals = penrose_residuals(full, xs, exact)
    rule = f"max(atol {atol:.3g}, rtol {rtol:.3g} * sigma_max)"
    lines = summary_lines(a, ranks, sp, rule)
    lines.append(residual_line(PENROSE, residuals, a.ndim > 2, not exact))
    return x, ranks, pinv_seconds, lines, sp


def _run(args: argparse.Namespace, progress: _Progress) -> str:
    begin = time.perf_counter()
    out_suffix = check_options(args)
    progress.stage("read")
    a = read_matrix(args.input, args.key, sparse=wanted(args))
    sparse = not isinstance(a, np.ndarray)  # a coordinate .mtx with --rhs: never densified
    check_maxiter(args, sparse)
    if not sparse:
        a = _check_data(a, args.input, args.hermitian)
    b = None
    if args.rhs is not None:
        b = check_data(read_matrix(args.rhs, args.rhs_key, "--rhs-key", "--rhs"), args.rhs, 1)
    if args.plot and a.size == 0:
        raise BadInput(f"--plot: {show(args.input)} is empty (shape {a.shape}), no values to draw")
    shape = output_shape(a, b, args.rhs)
    if out_suffix in TWO_D_ONLY and len(shape) > 2:
        raise BadInput(f"{out_suffix} holds one matrix; a result of shape {shape} needs .npy/.npz")

    progress.stage("pinv")
    if sparse:
        x, lines, seconds = sparse_solve(args, a, b)
        progress.stage("checks")
        label = "solve (sparse LSMR)"
    elif b is None and args.damping is None:
        x, ranks, seconds, lines, sp = _pinv_summary(args, a, progress)
        label = "pinv"
    else:
        x, rank, seconds = compute(args, a, b)
        progress.stage("checks")
        m, n = a.shape[-2:]
        exact = args.exact or max(m, n) <= EXACT_SIZE
        lines, sp = summary(args, a, b, x, rank, exact,
                            exact or bool(args.plot) or min(m, n) <= EXACT_SIZE)  # fmt: skip
        ranks = None if rank is None else np.reshape(rank, -1)
        label = "solve" if b is not None else "damped"
    lines.insert(0, f"input      {show(args.input)}")

    progress.stage("write")
    jobs, after = [], []
    if args.output:
        member = {"name": "solution"} if b is not None else {}  # an .npz's array: pinv or this
        jobs.append((args.output, lambda f: save(x, out_suffix, f, **member)))
        after.append(f"output     {show(args.output)}  shape {x.shape}  dtype {x.dtype}")
    if args.plot:
        name = show(os.path.basename(args.input))
        values = sp.values if sp.values is not None else np.zeros((len(sp.largest), 0))
        if b is not None and args.damping is None:  # a solve's ranks follow B's batch too
            ranks = (values > sp.tol[:, None]).sum(axis=1)
        jobs.append((args.plot, lambda f: _plot(f, values, sp.tol, ranks, name, args.damping)))
        after.append(f"plot       {show(args.plot)}")
    write_all(jobs)
    total = time.perf_counter() - begin
    lines.append(f"time       {label} {_seconds(seconds)}, total {_seconds(total)}")
    return "\n".join(lines + after)


def _one_line(message: str, caught: list[warnings.WarningMessage]) -> str:
    """The error line, with the distinct warnings that came before it folded in."""
    seen = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught))
    if seen:
        message += f" (after {'; '.join(seen)})"
    return show(" ".join(message.split("\n")))


def main(argv: list[str] | None = None) -> int:
    """Run the ``pseudoinverse`` command line.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name; ``None`` means ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit status: 0 on success, 2 on bad input (one line on stderr, no output
        file written or overwritten), 1 if stdout was closed early (``| head``) or on an
        internal error (one line too), 130 on Ctrl-C.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "a.npy")
    >>> np.save(path, np.array([[1.0, 2.0], [2.0, 4.0]]))
    >>> main([path])  # doctest: +ELLIPSIS
    input      ...a.npy
    shape      (2, 2)  dtype float64
    rank       1 (of 2)
    sigma      largest 5.000e+00, smallest kept 5.000e+00, largest dropped ...
    threshold  2.220e-15 = max(atol 0, rtol 4.44e-16 * sigma_max)
    residuals  |AXA-A|/|A| ...
    time       pinv ... ms, total ... ms
    0
    >>> folder.cleanup()
    """
    progress = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # recorded, not printed: stderr keeps one line
        try:
            try:
                args = _parser().parse_args(argv)
            except SystemExit as exit_:  # --help and --version
                return int(exit_.code or 0)
            progress = _Progress()
            text = _run(args, progress)
            progress.close()
            print(text)
            sys.stdout.flush()  # a closed pipe shows here, inside the handler below
            for line in dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in caught):
                print(f"pseudoinverse: warning: {show(line)}", file=sys.stderr)
        except BadInput as err:
            _close(progress)
            print(f"pseudoinverse: error: {_one_line(str(err), caught)}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            # Python's docs, "Note on SIGPIPE": point stdout at devnull so that the final
            # flush at exit does not raise again, and end quietly.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):  # a stdout without a descriptor
                pass
            return 1
        except KeyboardInterrupt:
            _close(progress)
            print("pseudoinverse: interrupted", file=sys.stderr)
            return 130
        except Exception as err:  # a bug: still one line, and say where to report it
            _close(progress)
            what = _one_line(f"{type(err).__name__}: {err}", caught)
            print(f"pseudoinverse: internal error: {what} (please report this)", file=sys.stderr)
            return 1
    return 0


def _close(progress: _Progress | None) -> None:
    if progress is not None:
        progress.close()
