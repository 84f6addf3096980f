"""The command line: ``pseudoinverse INPUT [-o OUTPUT] ...`` (SPEC, "Command line").

Everything that can be checked before computing is checked first (arguments, formats,
matplotlib for ``--plot``, the data); outputs are written to temporary files next to
their targets and moved into place only when all of them are ready, so a failure never
leaves a partial or overwritten file. Bad input is one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import sys
import time
import warnings
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from . import __version__, _methods, _tolerance
from ._api import pinv

FORMATS = (".npy", ".npz", ".csv", ".txt", ".mtx")
TWO_D_ONLY = (".csv", ".txt", ".mtx")
PLOT_ERROR = "--plot needs matplotlib: pip install 'pseudoinverse[plot]'"
# Significant digits that round-trip a float of this many bytes ("%.17g" for float64).
_DIGITS = {2: 5, 4: 9, 8: 17}
_MAGIC = {".npy": b"\x93NUMPY", ".npz": b"PK"}  # NumPy's format.MAGIC_PREFIX; a zip file
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


class BadInput(Exception):
    """A problem with the user's input: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # argparse would print usage + exit itself
        if message.endswith("expected one argument"):  # e.g. --rtol -1e-3: "-1e-3" is no number
            message += " (write a value that starts with '-' as --name=VALUE)"
        raise BadInput(message)


def _parser() -> _Parser:
    p = _Parser(
        prog="pseudoinverse",
        description="Compute the Moore-Penrose pseudo-inverse of the matrix (or stack of "
        "matrices) in INPUT, print a summary and optionally write it to OUTPUT.",
        epilog="Singular values sigma <= max(atol, rtol * sigma_max) are treated as zero; "
        "by default atol = 0 and rtol = max(m, n) * eps. Formats: .npy, .npz, .csv "
        "(comma-separated, no header), .txt (whitespace-separated), .mtx (Matrix Market). "
        "Example: pseudoinverse examples/jacobian.csv -o pinv.npy --plot spectrum.png",
    )
    p.add_argument("input", metavar="INPUT", help="matrix file: " + " ".join(FORMATS))
    p.add_argument("-o", "--output", metavar="OUTPUT", help="write the pseudo-inverse here")
    p.add_argument("--rtol", type=float, metavar="R", help="relative tolerance (>= 0)")
    p.add_argument("--atol", type=float, metavar="A", help="absolute tolerance (>= 0)")
    p.add_argument(
        "--hermitian", action="store_true", help="assume A Hermitian (read its lower triangle)"
    )
    p.add_argument(
        "--method", default="auto", metavar="M", help=f"one of {', '.join(_methods.METHODS)}"
    )
    p.add_argument("--plot", metavar="PNG", help="draw the singular values and the cutoff")
    p.add_argument("--key", metavar="NAME", help="the array to read from an .npz file")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return p


def _suffix(path: str, what: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise BadInput(
            f"unknown {what} format {suffix or '(none)'!r} of {path}; use {' '.join(FORMATS)}"
        )
    return suffix


def _loadtxt(path: str, delimiter: str | None) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty file: reported below as a shape error
        try:
            return np.loadtxt(path, delimiter=delimiter, ndmin=2)
        except ValueError as err:
            try:  # complex entries such as 1+2j
                return np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=complex)
            except ValueError:
                raise err from None


def _load(path: str, key: str | None) -> np.ndarray:
    suffix = _suffix(path, "input")
    if key is not None and suffix != ".npz":
        raise BadInput(f"--key is for .npz input, got {path}")
    if not os.path.isfile(path):
        raise BadInput(f"no such file: {path}")
    try:
        if suffix in _MAGIC:
            with open(path, "rb") as f:  # else np.load reports any other file as pickled data
                if not f.read(6).startswith(_MAGIC[suffix]):
                    raise BadInput(f"{path} is not a NumPy {suffix} file")
        if suffix == ".npy":
            return np.load(path, allow_pickle=False)
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as npz:
                keys = list(npz.files)
                if key is None and len(keys) != 1:
                    raise BadInput(f"{path} holds arrays {keys}; choose one with --key NAME")
                if key is not None and key not in keys:
                    raise BadInput(f"{path} has no array {key!r}; it holds {keys}")
                return npz[key if key is not None else keys[0]]
        if suffix == ".mtx":
            import scipy.io

            data = scipy.io.mmread(path)
            return np.asarray(data.toarray() if hasattr(data, "toarray") else data)
        a = _loadtxt(path, "," if suffix == ".csv" else None)
        if a.size == 0:
            raise BadInput(f"{path} holds no numbers")
        return a
    except BadInput:
        raise
    except Exception as err:  # parsers raise many types: all mean unreadable input
        message = str(err).splitlines()[0] if str(err) else repr(err)
        message = message.split("; use `usecols`")[0]  # loadtxt's advice does not apply here
        raise BadInput(f"cannot read {path}: {message}") from None


def _check_data(a: np.ndarray, path: str, hermitian: bool) -> np.ndarray:
    if a.ndim < 2:
        raise BadInput(f"{path} must hold a matrix (..., m, n), got shape {a.shape}")
    if a.dtype.kind not in "biufc":
        raise BadInput(f"{path} must hold numbers, got dtype {a.dtype}")
    if a.dtype.kind in "fc" and a.dtype.itemsize > (8 if a.dtype.kind == "f" else 16):
        a = a.astype(np.float64 if a.dtype.kind == "f" else np.complex128)  # no long double LAPACK
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        where = np.argwhere(~np.isfinite(a))[0]
        raise BadInput(f"{path} contains NaN or Inf (first at index {tuple(map(int, where))})")
    if hermitian and a.shape[-1] != a.shape[-2]:
        raise BadInput(f"--hermitian needs square matrices, got shape {a.shape}")
    return a


def _spectrum(a: np.ndarray, hermitian: bool) -> np.ndarray:
    """Singular values of a ``(B, m, n)`` stack, descending, in float64 (the summary's)."""
    work = a.astype(np.complex128 if a.dtype.kind == "c" else np.float64)
    if hermitian:
        w = np.abs(np.linalg.eigvalsh(work))  # reads the lower triangle, as pinv does
        return -np.sort(-w, axis=-1)
    return np.linalg.svd(work, compute_uv=False)


def _residuals(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The four Penrose residuals of each matrix of a stack, shape ``(B, 4)``, in float64."""
    big = np.complex128 if np.iscomplexobj(a) or np.iscomplexobj(x) else np.float64
    a, x = a.astype(big), x.astype(big)
    ax, xa = a @ x, x @ a
    pairs = [(ax @ a - a, a), (xa @ x - x, x), (_ct(ax) - ax, ax), (_ct(xa) - xa, xa)]
    num, den = (np.stack([np.linalg.norm(p[i], axis=(-2, -1)) for p in pairs], -1) for i in (0, 1))
    return num / np.where(den > 0, den, 1.0)  # a zero matrix: the absolute residual (0)


def _ct(m: np.ndarray) -> np.ndarray:
    return np.conj(np.swapaxes(m, -1, -2))


def _hermitian(a: np.ndarray) -> np.ndarray:
    """The matrix that ``hermitian=True`` means: the lower triangle, with a real diagonal."""
    low = np.tril(a, -1)
    return low + _ct(low) + np.diagonal(a, 0, -2, -1).real[..., None] * np.eye(a.shape[-1])


def _eps(dtype: np.dtype) -> float:
    # pinv's rule (_api._dtypes): a float keeps its own eps, integers and bools are float64.
    return float(np.finfo(dtype if dtype.kind in "fc" else np.float64).eps)


def _summary(a: np.ndarray, rank: np.ndarray, sv: np.ndarray, tol: np.ndarray, rule: str,
             res: np.ndarray) -> list[str]:  # fmt: skip
    batch, (m, n), e = a.shape[:-2], a.shape[-2:], lambda v: f"{v:.3e}"
    lines = [f"shape      {a.shape}  dtype {a.dtype}"]
    if batch:
        lines[-1] += f"  ({int(np.prod(batch))} matrices of {m} x {n})"
        lo, hi = (rank.min(), rank.max()) if rank.size else (0, 0)
        lines.append(f"rank       min {lo}, max {hi} (of {min(m, n)})")
    else:
        lines.append(f"rank       {rank[0]} (of {min(m, n)})")
    kept = sv > tol[:, None]
    if kept.any():
        dropped = f", largest dropped {e(sv[~kept].max())}" if (~kept).any() else ""
        lines.append(
            f"sigma      largest {e(sv.max())}, smallest kept {e(sv[kept].min())}{dropped}"
        )
    else:
        lines.append("sigma      none kept" + (f" (largest {e(sv.max())})" if sv.size else ""))
    span = f"{e(tol.min(initial=0))} to {e(tol.max(initial=0))}" if batch else e(tol[0])
    lines.append(f"threshold  {span} = {rule}")
    names = ("|AXA-A|/|A|", "|XAX-X|/|X|", "|(AX)^H-AX|/|AX|", "|(XA)^H-XA|/|XA|")
    worst = res.max(axis=0) if res.size else np.zeros(4)
    head = "residuals  " + ("(worst in the batch) " if batch else "")
    lines.append(head + "  ".join(f"{k} {v:.1e}" for k, v in zip(names, worst, strict=True)))
    return lines


def _save(x: np.ndarray, suffix: str, f: Any) -> None:
    if suffix == ".npy":
        np.save(f, x)
    elif suffix == ".npz":
        np.savez(f, pinv=x)
    elif suffix == ".mtx":
        import scipy.io

        # mmwrite takes float16 for an integer type; float32 holds every float16 exactly.
        x = x.astype(np.float32) if x.dtype == np.float16 else x
        scipy.io.mmwrite(f, x, precision=_DIGITS.get(x.real.dtype.itemsize, 17))
    else:
        delimiter = "," if suffix == ".csv" else " "
        digits = _DIGITS.get(x.real.dtype.itemsize, 17)
        cell = f"%.{digits}g%+.{digits}gj" if x.dtype.kind == "c" else f"%.{digits}g"
        np.savetxt(f, x, fmt=delimiter.join([cell] * x.shape[-1]), delimiter=delimiter)


def _plot(f: Any, sv: np.ndarray, tol: np.ndarray, rank: np.ndarray, name: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # no pyplot: no global state
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(6.4, 4.2), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    shown = min(len(sv), 100)  # more lines than this only blacken the plot
    positive = np.concatenate([sv[sv > 0], tol[tol > 0]])
    floor = positive.min() / 100 if positive.size else 1.0  # exact zeros drawn here, below all
    index, alpha = np.arange(1, sv.shape[-1] + 1), 1.0 if shown == 1 else 0.4
    for b in range(shown):
        s, keep = np.maximum(sv[b], floor), sv[b] > tol[b]
        ax.semilogy(index, s, "-", color="0.75", zorder=1)
        ax.semilogy(index[keep], s[keep], "o", color="C0", alpha=alpha, label="kept" * (b == 0))
        drop = "treated as zero" * (b == 0)
        ax.semilogy(index[~keep], s[~keep], "x", color="C3", alpha=alpha, label=drop)
    cut = f"cutoff {tol[0]:.2e}" if shown == 1 else f"cutoffs (largest {tol.max():.2e})"
    for b in range(shown):
        ax.axhline(tol[b], color="C1", ls="--", lw=1, label=cut * (b == 0))
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


def _write_all(jobs: list[tuple[str, Any]]) -> None:
    """Write every ``(path, writer)`` to a temp file beside it, then move all into place."""
    temps: list[tuple[str, str]] = []
    try:
        for path, writer in jobs:
            folder = os.path.dirname(os.path.abspath(path))
            tmp = os.path.join(folder, f".{os.path.basename(path)}.{secrets.token_hex(6)}.tmp")
            try:  # O_EXCL: never an existing file; mode 0o666 & ~umask, as for any new file
                fd = os.open(tmp, _NEW_FILE, 0o666)
            except OSError as err:
                raise BadInput(f"cannot write {path}: {err.strerror}: {folder}") from None
            temps.append((tmp, path))
            try:
                with os.fdopen(fd, "wb") as f:
                    writer(f)
            except (OSError, ValueError, TypeError) as err:
                raise BadInput(f"cannot write {path}: {err}") from None
        for tmp, path in temps:
            try:
                os.replace(tmp, path)
            except OSError as err:
                raise BadInput(f"cannot write {path}: {err.strerror}") from None
    finally:
        for tmp, _ in temps:
            with contextlib.suppress(OSError):
                os.remove(tmp)


def _run(args: argparse.Namespace) -> str:
    out_suffix = _suffix(args.output, "output") if args.output else None
    if args.plot and Path(args.plot).suffix.lower() != ".png":
        raise BadInput(f"--plot writes a PNG image; give a name ending in .png, got {args.plot}")
    for name in ("rtol", "atol"):
        value = getattr(args, name)
        if value is not None and not value >= 0:  # also rejects NaN
            raise BadInput(f"--{name} must be a number >= 0, got {value}")
    try:
        method = _methods.validate(args.method, args.hermitian)
    except ValueError as err:
        raise BadInput(str(err).replace("hermitian=True", "--hermitian")) from None
    if args.plot:
        try:
            import matplotlib  # noqa: F401 - only to fail early, before computing
        except ImportError:
            raise BadInput(PLOT_ERROR) from None
    a = _check_data(_load(args.input, args.key), args.input, args.hermitian)
    if args.plot and a.size == 0:
        raise BadInput(f"--plot: {args.input} is empty (shape {a.shape}), no values to draw")
    if out_suffix in TWO_D_ONLY and a.ndim > 2:
        raise BadInput(f"{out_suffix} holds one matrix; a batch of shape {a.shape} needs .npy/.npz")

    start = time.perf_counter()
    try:
        x, rank = pinv(a, atol=args.atol, rtol=args.rtol, hermitian=args.hermitian,
                       method=method, return_rank=True)  # fmt: skip
    except (ValueError, np.linalg.LinAlgError) as err:
        raise BadInput(str(err)) from None
    seconds = time.perf_counter() - start

    m, n = a.shape[-2:]
    batch_shape = (int(np.prod(a.shape[:-2])),)  # not -1: the data may be empty
    stack, ranks = a.reshape(*batch_shape, m, n), np.reshape(rank, batch_shape)
    atol, rtol = _tolerance.resolve(
        None, args.atol, args.rtol, eps=_eps(a.dtype), m=m, n=n, batch_shape=batch_shape
    )
    sv = _spectrum(stack, args.hermitian) if stack.size else np.zeros((*batch_shape, 0))
    tol = _tolerance.threshold(sv[:, 0] if sv.shape[1] else np.zeros(batch_shape), atol, rtol)
    full = _hermitian(stack) if args.hermitian else stack
    rule = f"max(atol {atol.max(initial=0):.3g}, rtol {rtol.max(initial=0):.3g} * sigma_max)"
    lines = [f"input      {args.input}"]
    lines += _summary(a, ranks, sv, tol, rule, _residuals(full, x.reshape(*batch_shape, n, m)))
    lines.append(f"time       {seconds * 1e3:.2f} ms")
    jobs = []
    if args.output:
        jobs.append((args.output, lambda f: _save(x, out_suffix, f)))
        lines.append(f"output     {args.output}  shape {x.shape}  dtype {x.dtype}")
    if args.plot:
        name = os.path.basename(args.input)
        jobs.append((args.plot, lambda f: _plot(f, sv, tol, ranks, name)))
        lines.append(f"plot       {args.plot}")
    _write_all(jobs)
    return "\n".join(lines)


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
        file written or overwritten).

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
    time       ... ms
    0
    >>> folder.cleanup()
    """
    try:
        try:
            args = _parser().parse_args(argv)
        except SystemExit as exit_:  # --help and --version
            return int(exit_.code or 0)
        print(_run(args))
    except BadInput as err:
        print(f"pseudoinverse: error: {err}", file=sys.stderr)
        return 2
    return 0
