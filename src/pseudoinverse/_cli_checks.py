"""The command line's checks: the data, tolerances, Penrose residuals, spectrum, summary.

Kept cheap against the pseudo-inverse itself (``_cli``'s module docstring says how):
exact residuals by blocks of products up to ``EXACT_SIZE``, random probes beyond;
all singular values up to ``EXACT_SIZE`` (or on request), Lanczos beyond.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._cli_io import MAX_DENSE_ENTRIES, BadInput, show

EXACT_SIZE = 512  # see the module docstring: up to here exact checks cost little
PROBES = 32  # random probes of an estimated residual: relative spread about 1/sqrt(2 * 32)
_CHUNK = 2**22  # entries of float64 work arrays per step of the exact residuals (32 MiB)
PENROSE = ("|AXA-A|/|A|", "|XAX-X|/|X|", "|(AX)^H-AX|/|AX|", "|(XA)^H-XA|/|XA|")


def check_data(a: np.ndarray, path: str, min_ndim: int = 2) -> np.ndarray:
    """Numbers, at least ``min_ndim`` dimensions, finite; native byte order, LAPACK dtypes."""
    if a.ndim < min_ndim:
        what = "a matrix (..., m, n)" if min_ndim == 2 else "a vector (m,) or matrices (..., m, k)"
        raise BadInput(f"{show(path)} must hold {what}, got shape {a.shape}")
    if a.dtype.kind not in "biufc":  # by kind: a big-endian >f8 or >c16 is numbers too
        raise BadInput(f"{show(path)} must hold numbers, got dtype {a.dtype}")
    if a.dtype.kind in "fc" and a.dtype.itemsize > (8 if a.dtype.kind == "f" else 16):
        a = a.astype(np.float64 if a.dtype.kind == "f" else np.complex128)  # no long double LAPACK
    a = a.astype(a.dtype.newbyteorder("="), copy=False)  # native: no byte order downstream
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        where = np.argwhere(~np.isfinite(a))[0]
        raise BadInput(
            f"{show(path)} contains NaN or Inf (first at index {tuple(map(int, where))})"
        )
    if max(a.shape) > MAX_DENSE_ENTRIES:  # e.g. an empty (10**11, 0) from a forged header
        raise BadInput(f"{show(path)}: shape {a.shape} has a dimension beyond 2**30")
    return a


def api_error(err: ValueError, method: str | None) -> BadInput:
    """A library ``ValueError`` (an unknown method, say) as one line in the CLI's words."""
    message = str(err).splitlines()[0] if str(err) else type(err).__name__
    if method is not None:
        message = message.replace(f'method="{method}"', f"--method {method}")
    return BadInput(show(message.replace("hermitian=True", "--hermitian")))


def _eps(dtype: np.dtype) -> float:
    # SPEC's rule: a float keeps its own eps (float16's too), integers and bools are float64.
    return float(np.finfo(dtype if dtype.kind in "fc" else np.float64).eps)


def tolerances(a: np.ndarray, atol: float | None, rtol: float | None) -> tuple[float, float]:
    """SPEC's defaults: atol None is 0; rtol None is max(m, n) * eps unless atol > 0."""
    atol = 0.0 if atol is None else atol
    if rtol is None:
        rtol = max(a.shape[-2:]) * _eps(a.dtype) if atol <= 0 else 0.0
    return atol, rtol


def ct(m: np.ndarray) -> np.ndarray:
    return np.conj(np.swapaxes(m, -1, -2))


def hermitian_part(a: np.ndarray) -> np.ndarray:
    """The matrix that ``hermitian=True`` means: the lower triangle, with a real diagonal."""
    low = np.tril(a, -1)
    return low + ct(low) + np.diagonal(a, 0, -2, -1).real[..., None] * np.eye(a.shape[-1])


def fro(m: np.ndarray) -> np.ndarray:
    """Frobenius norms of a stack, scaled first: entries near 1e200 do not overflow."""
    big = np.abs(m).max(axis=(-2, -1), initial=0)
    big = np.where(big > 0, big, 1.0)
    return big * np.linalg.norm(m / big[..., None, None], axis=(-2, -1))


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    return num / np.where(den > 0, den, 1.0)  # a zero matrix: the absolute residual (0)


def exact_residuals(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The four Penrose residuals of a ``(B, m, n)`` stack and its ``(B, n, m)`` result.

    With ``m >= n`` (else the conjugate transposes, whose conditions 3 and 4 swap), only
    ``XA`` (n x n) is formed whole; ``AX`` (m x m) is taken in blocks of columns.
    """
    swap = a.shape[-2] < a.shape[-1]
    if swap:
        a, x = ct(a), ct(x)
    m = a.shape[-2]
    out = np.empty((len(a), 4))
    step = max(1, _CHUNK // max(m * m, 1))
    for s in range(0, len(a), step):
        aa, xx = a[s : s + step], x[s : s + step]
        xa = xx @ aa
        out[s : s + step, 0] = ratio(fro(aa @ xa - aa), fro(aa))
        out[s : s + step, 1] = ratio(fro(xa @ xx - xx), fro(xx))
        out[s : s + step, 3] = ratio(fro(ct(xa) - xa), fro(xa))
        width = max(1, _CHUNK // max(m, 1))
        num, den = np.zeros(len(aa)), np.zeros(len(aa))
        for j in range(0, m, width):  # AX[:, J] against (AX)^H[:, J] = (A[J, :] X)^H
            block = aa @ xx[..., j : j + width]
            num += fro(ct(aa[..., j : j + width, :] @ xx) - block) ** 2
            den += fro(block) ** 2
        out[s : s + step, 2] = ratio(np.sqrt(num), np.sqrt(den))
    return out[:, [0, 1, 3, 2]] if swap else out


def probed_residuals(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The residuals estimated as ``|M Z| / sqrt(PROBES)``, ``Z`` Gaussian (E|MZ|^2 = k|M|^2).

    Each costs a few products with ``PROBES`` columns: O(m n PROBES), not O(m n min).
    """
    rng = np.random.default_rng(0)  # the same summary for the same file

    def probes(rows: int) -> np.ndarray:
        z = rng.standard_normal((len(a), rows, PROBES))
        if np.iscomplexobj(a):
            z = (z + 1j * rng.standard_normal(z.shape)) / np.sqrt(2)  # E|z|^2 = 1
        return z

    # Products with the probes only; a conjugate transpose of A or X is never formed:
    # A^H Z = (Z^H A)^H, so that every product reads A and X in their own layout.
    k = np.sqrt(PROBES)
    zn, zm = probes(a.shape[-1]), probes(a.shape[-2])
    az, xz = a @ zn, x @ zm
    xaz, axz = x @ az, a @ xz
    xh_ah_zm = ct((ct(zm) @ a) @ x)  # X^H A^H Z
    ah_xh_zn = ct((ct(zn) @ x) @ a)  # A^H X^H Z
    return np.stack(
        [
            ratio(fro(a @ xaz - az) / k, fro(a)),
            ratio(fro(x @ axz - xz) / k, fro(x)),
            ratio(fro(xh_ah_zm - axz), fro(axz)),
            ratio(fro(ah_xh_zn - xaz), fro(xaz)),
        ],
        axis=-1,
    )


def _largest_sv(m: np.ndarray) -> float:
    """The largest singular value by Lanczos (ARPACK) on the smaller Gram matrix.

    In single precision, scaled to entries of at most 1: each step reads the matrix twice,
    and half the bytes halve the time; the summary prints four digits and ARPACK's
    ``tol=1e-5`` gives about five. If it does not converge, the exact SVD answers instead.
    """
    import scipy.linalg
    from scipy.sparse.linalg import ArpackError, LinearOperator, eigsh

    scale = float(np.abs(m).max(initial=0))
    if scale == 0:
        return 0.0
    m = (m / scale).astype(np.complex64 if m.dtype.kind == "c" else np.float32)
    mh = m.conj().T
    rows, cols = m.shape
    gram = (lambda v: mh @ (m @ v)) if cols <= rows else (lambda v: m @ (mh @ v))
    size = min(rows, cols)
    v0 = np.random.default_rng(0).standard_normal(size).astype(m.dtype)  # reproducible
    operator = LinearOperator((size, size), matvec=gram, dtype=m.dtype)
    try:
        w = eigsh(operator, k=1, which="LM", tol=1e-5, v0=v0, return_eigenvectors=False)
        return float(np.sqrt(max(float(np.real(w[0])), 0.0))) * scale
    except (ArpackError, ValueError):  # ArpackNoConvergence is an ArpackError
        return (
            float(
                scipy.linalg.svdvals(
                    m.astype(np.complex128 if m.dtype.kind == "c" else np.float64)
                )[0]
            )
            * scale
        )


class _Spectrum(NamedTuple):
    largest: np.ndarray  # (B,) sigma_max of each matrix
    smallest_kept: np.ndarray | None  # (B,), NaN where none is kept; None: not computed
    largest_dropped: np.ndarray | None  # (B,), NaN where none is dropped; None: not computed
    tol: np.ndarray  # (B,) the threshold
    values: np.ndarray | None  # (B, min(m, n)) all of them, descending, or None


def spectrum(stack: np.ndarray, x: np.ndarray | None, ranks: np.ndarray, all_values: bool,
              atol: float, rtol: float) -> _Spectrum:  # fmt: skip
    """The summary's singular values of a ``(B, m, n)`` float64/complex128 stack."""
    batch = len(stack)
    if all_values:
        sv = np.linalg.svd(stack, compute_uv=False) if stack.size else np.zeros((batch, 0))
        largest = sv[:, 0] if sv.shape[1] else np.zeros(batch)
        tol = np.maximum(atol, rtol * largest)
        kept = sv > tol[:, None]
        small = np.where(kept, sv, np.inf).min(axis=1, initial=np.inf)
        big = np.where(kept, -np.inf, sv).max(axis=1, initial=-np.inf)
        return _Spectrum(largest, np.where(np.isfinite(small), small, np.nan),
                         np.where(np.isfinite(big), big, np.nan), tol, sv)  # fmt: skip
    largest = np.array([_largest_sv(s) for s in stack])
    smallest = None  # a solve forms no pseudo-inverse X, whose 1 / |X|_2 it would be
    if x is not None:
        smallest = np.array(
            [1 / _largest_sv(xs) if r else np.nan for xs, r in zip(x, ranks, strict=True)]
        )
    return _Spectrum(largest, smallest, None, np.maximum(atol, rtol * largest), None)


def penrose_residuals(full: np.ndarray, xs: np.ndarray, exact: bool) -> np.ndarray:
    """The ``(B, 4)`` Penrose residuals of a stack and its pseudo-inverses, overflow-safe."""
    if not full.size:  # nothing to check (and no probes of an empty 10**6 x 0 matrix)
        return np.zeros((len(full), 4))
    # A / c and c X have the same residuals; c = sqrt(max|A| / max|X|) brings both to
    # sqrt(max|A| max|X|), so that no product overflows where A or X alone is extreme.
    big_a = np.abs(full).max(axis=(-2, -1))[:, None, None]
    big_x = np.abs(xs).max(axis=(-2, -1), initial=0)[:, None, None]
    c = np.where(
        (big_a > 0) & (big_x > 0), np.sqrt(big_a) / np.sqrt(np.maximum(big_x, 1e-300)), 1.0
    )
    with np.errstate(all="ignore"):  # beyond even that: a NaN residual, said as such
        return (exact_residuals if exact else probed_residuals)(full / c, xs * c)


def shape_line(a: np.ndarray) -> str:
    line = f"shape      {a.shape}  dtype {a.dtype}"
    if a.ndim > 2:
        line += f"  ({int(np.prod(a.shape[:-2]))} matrices of {a.shape[-2]} x {a.shape[-1]})"
    return line


def summary_lines(a: np.ndarray, rank: np.ndarray, sp: _Spectrum, rule: str) -> list[str]:
    """The shape, rank, kept singular values and threshold lines."""
    batch, (m, n), e = a.shape[:-2], a.shape[-2:], lambda v: f"{v:.3e}"
    lines = [shape_line(a)]
    if batch:
        lo, hi = (rank.min(), rank.max()) if rank.size else (0, 0)
        lines.append(f"rank       min {lo}, max {hi} (of {min(m, n)})")
    else:
        lines.append(f"rank       {rank[0]} (of {min(m, n)})")
    if sp.smallest_kept is None:  # a large solve: sigma_max alone (Lanczos)
        largest = e(sp.largest.max()) if sp.largest.size else "none (no matrices)"
        lines.append(f"sigma      largest {largest}  (Lanczos; --exact for all values)")
        kept = np.array([])
    else:
        kept = sp.smallest_kept[~np.isnan(sp.smallest_kept)]
    dropped = np.array([])
    if sp.largest_dropped is not None:
        dropped = sp.largest_dropped[~np.isnan(sp.largest_dropped)]
    if kept.size:
        line = f"sigma      largest {e(sp.largest.max())}, smallest kept {e(kept.min())}"
        line += f", largest dropped {e(dropped.max())}" if dropped.size else ""
        line += "" if sp.values is not None else "  (Lanczos; --exact for all values)"
        lines.append(line)
    elif sp.smallest_kept is not None:
        largest = f" (largest {e(sp.largest.max())})" if sp.largest.size and m * n else ""
        lines.append("sigma      none kept" + largest)
    if not sp.tol.size:
        span = "none (no matrices)"
    else:
        span = f"{e(sp.tol.min())} to {e(sp.tol.max())}" if batch else e(sp.tol[0])
    lines.append(f"threshold  {span} = {rule}")
    return lines


def residual_line(names: tuple[str, ...], res: np.ndarray, batched: bool, estimated: bool) -> str:
    """``residuals`` with each name and its worst value over the batch (``res``: (B, k))."""
    worst = res.max(axis=0) if res.size else np.zeros(len(names))
    mark = "~" if estimated else ""
    head = "residuals  " + ("(worst in the batch) " if batched else "")
    cells = "  ".join(f"{mark}{k} {v:.1e}" for k, v in zip(names, worst, strict=True))
    note = f"  (estimated from {PROBES} random probes; --exact for exact values)" * estimated
    return head + cells + note
