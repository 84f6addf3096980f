"""Block LSMR: LSMR for k right-hand sides in lockstep, one matrix product per step.

LSMR (Fong and Saunders, SIAM J. Sci. Comput. 33, 2011) solves
``min |A x - b|^2 + damp^2 |x|^2``; started from ``x = 0`` its iterates lie in the
Krylov space of ``A^H A`` on ``A^H b``, inside the row space of ``A``, so the limit is
the minimum-norm least-squares solution ``pinv(A) b`` (rank-deficient ``A`` included).

This is SciPy's ``scipy.sparse.linalg.lsmr`` (``_isolve/lsmr.py``) rewritten for a block
``B`` of shape ``(m, k)``: the same recurrences and stopping rules, with every scalar
of the recurrence a length-k vector (one entry per column) and the Golub–Kahan vectors
``U (m, k)`` and ``V (n, k)`` updated by one product ``A @ V`` and one ``A^H @ U`` per
step instead of k matrix-vector products (a sparse matrix is then read once per step,
not k times). A column that meets its stopping rule is frozen: its result and
diagnostics are stored and it leaves the active block, so later products are narrower.
The products add into the iteration's own blocks (``out += A V``), and ``U`` is kept
times a per-column gain so that SciPy's ``u = A v - alpha u`` is one product into ``U``
with a scaled copy of the small ``V``: a step reads the ``(m, k)`` block only in the
two products and one norm.

Columns do not interact: column j follows exactly the recurrence that ``lsmr(A, B[:, j])``
follows, up to the rounding of the products and norms (a block product may sum in
another order), so it stops at the same step or one step apart, with the same answer to
the stopping tolerances.

The caller passes the two products as functions; for a CSR matrix also a compiled
step (:class:`CSRStep`, the kernels of ``_kernels/sparse.py``) that forms ``U += A V``,
``U``'s column norms and ``A^H U`` over cache-sized column pieces of ``A``, on the
machine's threads, and the step's vector updates then run as one compiled pass.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import NamedTuple

import numpy as np

from .parallel import chunks, over_parts

# SciPy's lsmr messages, indexed by istop (``_isolve/lsmr.py``).
STOP_REASONS = (
    "x = 0 is the exact solution (b = 0 or A^H b = 0)",
    "Ax - b is small enough, given atol, btol",
    "the least-squares solution is good enough, given atol",
    "the estimate of cond(A) has exceeded conlim",
    "Ax - b is small enough for this machine",
    "the least-squares solution is good enough for this machine",
    "cond(A) seems to be too large for this machine",
    "the iteration limit has been reached",
)
# istop values that do not certify the tolerances: the answer may be far from pinv(A) b.
NOT_CONVERGED = (3, 6, 7)

# |gain| beyond which the stored u is rescaled (an (m, k) pass): far inside float64's
# range, so that entries times a gain and their squares in column_norms stay finite.
GAIN_LIMIT = 1e50

Product = Callable[[np.ndarray, np.ndarray], None]


class CSRStep:
    """``step(V, w, U) -> (T, sq)`` for a SciPy CSR matrix ``M`` (canonical: sorted, no
    duplicates): ``U += M (V diag(w))`` in place (``w`` real, float64), then ``T = M^H U``
    of the updated ``U`` and ``sq``, the squared 2-norms of its columns
    (``_kernels/sparse.py``).

    ``M`` is cut by columns into pieces whose rows of ``V`` take at most ``PIECE_BYTES``
    (a core's cache), made on first use for the block's width; the rows into one part
    per thread (``parallel.chunks``, at equal numbers of stored entries), each part
    adding into a ``T`` of its own, summed in order. ``T`` is a buffer of the step's,
    valid until the next call. ``V``, ``U`` C-contiguous of ``M``'s dtype, ``(n, k)``
    and ``(m, k)``.
    """

    def __init__(self, mat) -> None:
        self.mat = mat
        self.shape = mat.shape
        self._pieces: dict[int, list] = {}
        self._buffers: list[np.ndarray] = []

    def pieces(self, k: int) -> list:
        """``[(first column, last column + 1, CSR piece)]`` for blocks ``k`` wide."""
        n = self.shape[1]
        count = int(min(8, max(1, -(-n * k * self.mat.data.itemsize // PIECE_BYTES))))
        if count not in self._pieces:
            cuts = [round(n * i / count) for i in range(count + 1)]
            self._pieces[count] = [(lo, hi, self.mat[:, lo:hi].tocsr())
                                   for lo, hi in pairwise(cuts)]  # fmt: skip
        return self._pieces[count]

    def __call__(
        self, v: np.ndarray | None, w: np.ndarray | None, u: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """The step; ``v`` None: ``T = M^H U`` only (``sq`` then zeros)."""
        from .._kernels.sparse import gather, scatter

        m, n = self.shape
        k = u.shape[1]
        indptr = self.mat.indptr
        nnz = int(indptr[-1])
        nparts = len(chunks(m, float(nnz) * k, 1))
        cuts = np.searchsorted(indptr, np.linspace(0, nnz, nparts + 1)[1:-1])
        bounds = [0, *(int(c) for c in cuts), m]
        parts = [slice(lo, hi) for lo, hi in pairwise(bounds)]
        if len(self._buffers) < len(parts) or self._buffers[0].size < n * k:
            size = max(n * k, self._buffers[0].size if self._buffers else 0)
            self._buffers = [np.empty(size, dtype=u.dtype) for _ in range(len(parts))]
        ts = [buf[: n * k].reshape(n, k) for buf in self._buffers[: len(parts)]]
        sqs = [np.zeros(k) for _ in parts]
        pieces = self.pieces(k)
        vw = None if v is None else v * w  # one pass over the short block: cheaper than w
        # in the gathers

        def run(which: slice) -> None:  # which: slice(i, i + 1), part i
            i = which.start
            r0, r1 = parts[i].start, parts[i].stop
            t = ts[i]
            t.fill(0)
            if vw is not None:
                for j, (lo, hi, p) in enumerate(pieces):
                    gather(p.indptr, p.indices, p.data, vw[lo:hi], u, sqs[i], r0, r1,
                           j == len(pieces) - 1)  # fmt: skip
            for lo, hi, p in pieces:
                scatter(p.indptr, p.indices, p.data, u, t[lo:hi], r0, r1)

        over_parts(run, [slice(i, i + 1) for i in range(len(parts))])
        for t, sq in zip(ts[1:], sqs[1:], strict=True):
            ts[0] += t
            sqs[0] += sq
        return ts[0], sqs[0]


#: The most columns one block of the compiled step takes (``lsmr_block`` runs wider
#: ones as groups, each its own block): the pieces of ``A`` each pass over the long
#: ``(m, k)`` block, so a wider block pays more passes than it saves reads of ``A``
#: (1e5 x 1e4, 1.1e6 entries, k = 128: 3.9 s as one block, 2.1x SciPy's loop).
GROUP = 32

#: The most bytes of ``V``'s rows one piece of a CSR matrix gathers from (``CSRStep``):
#: about half a core's second-level cache (2 MiB here), where the rows gathered
#: together with the streamed ``U`` stay.
PIECE_BYTES = 1 << 20


class LSMRInfo(NamedTuple):
    """Per-column diagnostics of one block LSMR solve (SciPy's lsmr outputs, as arrays).

    Each field has one entry per right-hand side: ``istop`` (the stop reason, an index
    into ``STOP_REASONS``), ``itn`` (iterations), ``normr`` (estimate of
    ``|b - A x|``, damped: ``sqrt(|b - A x|^2 + damp^2 |x|^2)``), ``normar`` (of
    ``|A^H (b - A x) - damp^2 x|``), ``norma`` (of the Frobenius norm of
    ``[A; damp I]``), ``conda`` (of its condition number) and ``normx`` (``|x|``).
    """

    istop: np.ndarray
    itn: np.ndarray
    normr: np.ndarray
    normar: np.ndarray
    norma: np.ndarray
    conda: np.ndarray
    normx: np.ndarray


def column_norms(a: np.ndarray) -> np.ndarray:
    """The 2-norm of each column of a C-contiguous ``(p, k)`` array, as float64."""
    real = a.view(a.real.dtype) if a.dtype.kind == "c" else a  # (p, 2k): re, im interleaved
    sq = np.einsum("ij,ij->j", real, real)
    if a.dtype.kind == "c":
        sq = sq.reshape(-1, 2).sum(axis=1)
    out = np.sqrt(sq, dtype=np.float64)
    if not np.isfinite(out).all():  # squares overflowed (entries beyond 1e154): scaled norm
        big = np.abs(a).max(axis=0).astype(np.float64)
        big = np.where(big > 0, big, 1.0)
        out = np.sqrt(np.einsum("ij,ij->j", np.abs(a) / big, np.abs(a) / big)) * big
    return out


def sym_ortho(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SciPy's ``_sym_ortho`` (a stable Givens rotation ``c, s, r``) on arrays."""
    with np.errstate(divide="ignore", invalid="ignore"):
        big_b = np.abs(b) > np.abs(a)
        tau = np.where(big_b, a / b, b / a)
        q = 1 / np.sqrt(1 + tau * tau)
        s_b = np.sign(b) * q
        c_a = np.sign(a) * q
        c = np.where(big_b, s_b * tau, c_a)
        s = np.where(big_b, s_b, c_a * tau)
        r = np.where(big_b, b / s_b, a / c_a)
    zero_b, zero_a = b == 0, a == 0
    c = np.where(zero_b, np.sign(a), np.where(zero_a, 0.0, c))
    s = np.where(zero_b, 0.0, np.where(zero_a, np.sign(b), s))
    r = np.where(zero_b, np.abs(a), np.where(zero_a, np.abs(b), r))
    return c, s, r


# The per-column scalars of the recurrence (SciPy's names), compacted with the block.
_SCALARS = (
    "alpha", "beta", "zetabar", "alphabar", "rho", "rhobar", "cbar", "sbar", "betadd",
    "betad", "rhodold", "tautildeold", "thetatilde", "zeta", "d", "norma2", "maxrbar",
    "minrbar", "normb", "cols", "g",
)  # fmt: skip
_BLOCKS = ("u", "v", "h", "hbar", "x")


def lsmr_block(
    matmat_add: Product,
    rmatmat_add: Product,
    b: np.ndarray,
    n: int,
    *,
    damp: float = 0.0,
    atol: float = 1e-6,
    btol: float = 1e-6,
    conlim: float = 1e8,
    maxiter: int | None = None,
    step: CSRStep | None = None,
) -> tuple[np.ndarray, LSMRInfo]:
    """Solve ``min |A x_j - b_j|^2 + damp^2 |x_j|^2`` for every column of ``b``, from zero.

    Parameters
    ----------
    matmat_add, rmatmat_add : callable
        ``(V, out)`` with ``V (n, p)``, ``out (m, p)``: ``out += A @ V``; and ``(U, out)``
        with ``U (m, p)``, ``out (n, p)``: ``out += A^H @ U``; for any ``p <= k``, on
        C-contiguous blocks of ``b``'s dtype (adding in place saves a pass over ``out``).
    b : ndarray, shape (m, k)
        The right-hand sides, C-contiguous, of the working dtype (float64 or complex128).
    n : int
        Columns of ``A``.
    damp, atol, btol, conlim, maxiter
        As in ``scipy.sparse.linalg.lsmr`` (``maxiter=None``: ``min(m, n)``).
    step : CSRStep, optional
        The fused step of ``A`` (a CSR matrix of ``b``'s dtype): the iterations use it
        instead of the two products (which still form the first ``v``).

    Returns
    -------
    x : ndarray, shape (n, k)
    info : LSMRInfo
    """
    m, k = b.shape
    if step is not None and k > GROUP:  # groups of columns, each its own block
        options = {"damp": damp, "atol": atol, "btol": btol, "conlim": conlim,
                   "maxiter": maxiter, "step": step}  # fmt: skip
        parts = [lsmr_block(matmat_add, rmatmat_add, np.ascontiguousarray(b[:, j : j + GROUP]),
                            n, **options) for j in range(0, k, GROUP)]  # fmt: skip
        fields = zip(*(info for _, info in parts), strict=True)
        return (np.concatenate([x for x, _ in parts], axis=1),
                LSMRInfo(*(np.concatenate(f) for f in fields)))  # fmt: skip
    if step is not None:
        from .._kernels import sparse as kernels
    maxiter = min(m, n) if maxiter is None else maxiter
    ctol = 1 / conlim if conlim > 0 else 0.0
    x_out = np.zeros((n, k), dtype=b.dtype)
    info = {f: np.zeros(k) for f in LSMRInfo._fields}
    info["istop"] = np.zeros(k, dtype=np.int64)
    info["itn"] = np.zeros(k, dtype=np.int64)

    s = _State()
    s.normb = column_norms(b)
    s.beta = s.normb.copy()
    s.u, s.g = b.copy(), np.ones(k)  # kept unnormalised: u = s.u / (g beta)
    if step is None:
        s.v = np.zeros((n, k), dtype=b.dtype)
        rmatmat_add(s.u, s.v)
    else:
        s.v = step(None, None, s.u)[0].copy()
    s.v *= _safe_inverse(s.beta)
    s.alpha = column_norms(s.v)
    s.v *= _safe_inverse(s.alpha)
    ones, zeros = np.ones(k), np.zeros(k)
    s.zetabar, s.alphabar = s.alpha * s.beta, s.alpha.copy()
    s.rho, s.rhobar, s.cbar, s.sbar = ones.copy(), ones.copy(), ones.copy(), zeros.copy()
    s.h, s.hbar, s.x = s.v.copy(), np.zeros_like(s.v), np.zeros_like(s.v)
    s.betadd, s.betad, s.rhodold = s.beta.copy(), zeros.copy(), ones.copy()
    s.tautildeold, s.thetatilde, s.zeta, s.d = zeros.copy(), zeros.copy(), zeros.copy(), zeros
    s.norma2, s.maxrbar, s.minrbar = s.alpha**2, zeros.copy(), np.full(k, 1e100)
    s.cols = np.arange(k)
    info["normr"], info["normar"] = s.beta.copy(), s.zetabar.copy()
    info["norma"], info["conda"] = np.sqrt(s.norma2), ones.copy()
    # zetabar = |A^H b| |b| = 0: x = 0 is exact (istop 0), as SciPy returns before iterating
    s.compact(s.zetabar != 0)

    itn = 0
    while s.cols.size and itn < maxiter:
        itn += 1
        # SciPy's u = A v - alpha u, on u_raw = beta u stored as s.u = g u_raw (a gain g
        # per column): s.u += A (v w) is w (A v - alpha u) for w = -beta g / alpha, so
        # the step makes no pass over the (m, k) block besides the product and a norm
        safe_alpha = np.where(s.alpha != 0, s.alpha, 1.0)
        w = np.where(s.beta > 0, -s.beta * s.g / safe_alpha, 1.0)  # beta = 0: u = 0
        lost = (s.alpha == 0) & (s.beta > 0)
        if lost.any():  # v = 0, so u becomes 0: clear it (a rare strided write)
            s.u[:, lost] = 0
            w = np.where(lost, 1.0, w)
        if step is None:
            matmat_add(np.ascontiguousarray(s.v * w), s.u)
            unorm = column_norms(s.u)
        else:  # the product, A^H of its result and its norms in one pass
            t, sq = step(s.v, np.ascontiguousarray(w, dtype=np.float64), s.u)
            unorm = np.sqrt(sq)
            if not np.isfinite(unorm).all():  # squares overflowed: scaled norms
                unorm = column_norms(s.u)
        s.g = w
        s.beta = unorm / np.abs(s.g)
        pos = s.beta > 0
        # v = A^H u - beta v with u = s.u / (g beta): (A^H s.u - g beta^2 v) / (g beta),
        # then / alpha, in one scaling; where beta = 0 (u = 0) v and alpha stay, as SciPy
        denom = np.where(pos, s.g * s.beta, 1.0)
        f = np.where(pos, -s.beta * denom, 1.0)
        if step is None:
            s.v *= f
            rmatmat_add(s.u, s.v)
            vnorm = column_norms(s.v)
        else:  # v f + t and its norms in one pass
            sq = np.zeros(f.shape)
            kernels.combine(s.v, f, t, sq)
            vnorm = np.sqrt(sq)
            if not np.isfinite(vnorm).all():
                vnorm = column_norms(s.v)
        alpha = vnorm / np.abs(denom)
        s.alpha = np.where(pos, alpha, s.alpha)
        scale = pos & (alpha > 0)
        sv = np.where(scale, 1 / np.where(scale, denom * alpha, 1.0), 1.0)
        if step is None:
            s.v *= sv  # with a step, in the one pass of the updates below
        far = (np.abs(s.g) > GAIN_LIMIT) | (np.abs(s.g) < 1 / GAIN_LIMIT)
        if far.any():  # the gains multiply step by step: bring them back to 1 (rare)
            s.u[:, far] *= 1 / s.g[far]
            s.g = np.where(far, 1.0, s.g)

        chat, shat, alphahat = sym_ortho(s.alphabar, np.full_like(s.alpha, damp))
        rhoold = s.rho
        c, sn, s.rho = sym_ortho(alphahat, s.beta)
        thetanew = sn * s.alpha
        s.alphabar = c * s.alpha
        rhobarold, zetaold = s.rhobar, s.zeta
        thetabar = s.sbar * s.rho
        rhotemp = s.cbar * s.rho
        s.cbar, s.sbar, s.rhobar = sym_ortho(s.cbar * s.rho, thetanew)
        s.zeta = s.cbar * s.zetabar
        s.zetabar = -s.sbar * s.zetabar
        c1 = -(thetabar * s.rho / (rhoold * rhobarold))
        c2 = s.zeta / (s.rho * s.rhobar)
        c3 = -(thetanew / s.rho)
        if step is None:
            s.hbar *= c1
            s.hbar += s.h
            s.x += c2 * s.hbar
            s.h *= c3
            s.h += s.v
            normx = column_norms(s.x)
        else:  # v's normalisation and these updates in one pass
            sq = np.zeros(c1.shape)
            kernels.advance(s.v, sv, s.hbar, c1, s.h, c3, s.x, c2, sq)
            normx = np.sqrt(sq)
            if not np.isfinite(normx).all():
                normx = column_norms(s.x)

        # the estimate of |r| (SciPy's second set of rotations)
        betaacute = chat * s.betadd
        betacheck = -shat * s.betadd
        betahat = c * betaacute
        s.betadd = -sn * betaacute
        thetatildeold = s.thetatilde
        ctildeold, stildeold, rhotildeold = sym_ortho(s.rhodold, thetabar)
        s.thetatilde = stildeold * s.rhobar
        s.rhodold = ctildeold * s.rhobar
        s.betad = -stildeold * s.betad + ctildeold * betahat
        s.tautildeold = (zetaold - thetatildeold * s.tautildeold) / rhotildeold
        taud = (s.zeta - s.thetatilde * s.tautildeold) / s.rhodold
        s.d = s.d + betacheck * betacheck
        normr = np.sqrt(s.d + (s.betad - taud) ** 2 + s.betadd * s.betadd)
        s.norma2 = s.norma2 + s.beta * s.beta
        norma = np.sqrt(s.norma2)
        s.norma2 = s.norma2 + s.alpha * s.alpha
        s.maxrbar = np.maximum(s.maxrbar, rhobarold)
        if itn > 1:
            s.minrbar = np.minimum(s.minrbar, rhobarold)
        conda = np.maximum(s.maxrbar, rhotemp) / np.minimum(s.minrbar, rhotemp)

        normar = np.abs(s.zetabar)
        istop = _stop(itn, maxiter, normr, normar, norma, conda, normx, s.normb,
                      atol, btol, ctol)  # fmt: skip
        done = istop > 0
        if done.any():
            idx = s.cols[done]
            x_out[:, idx] = s.x[:, done]
            for name, value in (("istop", istop), ("normr", normr), ("normar", normar),
                                ("norma", norma), ("conda", conda), ("normx", normx)):  # fmt: skip
                info[name][idx] = value[done]
            info["itn"][idx] = itn
            s.compact(~done)
    return x_out, LSMRInfo(**info)


def _stop(itn, maxiter, normr, normar, norma, conda, normx, normb, atol, btol, ctol):
    """SciPy's istop for each column: the last test that holds in SciPy's order wins."""
    with np.errstate(divide="ignore", invalid="ignore"):
        test1 = normr / normb
        prod = norma * normr
        test2 = np.where(prod != 0, normar / np.where(prod != 0, prod, 1), np.inf)
        test3 = 1 / conda
        t1 = test1 / (1 + norma * normx / normb)
        rtol = btol + atol * norma * normx / normb
    istop = np.zeros(normr.shape, dtype=np.int64)
    tests = ((7, np.full(normr.shape, itn >= maxiter)), (6, 1 + test3 <= 1),
             (5, 1 + test2 <= 1), (4, 1 + t1 <= 1), (3, test3 <= ctol),
             (2, test2 <= atol), (1, test1 <= rtol))  # fmt: skip
    for code, holds in tests:
        istop = np.where(holds, code, istop)
    return istop


def _safe_inverse(t: np.ndarray) -> np.ndarray:
    """``1 / t`` where ``t > 0``, else 1 (a zero column stays zero)."""
    return 1 / np.where(t > 0, t, 1.0)


class _State:
    """The active columns' vectors and scalars; ``compact`` drops the frozen ones."""

    def compact(self, keep: np.ndarray) -> None:
        if keep.all():
            return
        for name in _SCALARS:
            setattr(self, name, getattr(self, name)[keep])
        for name in _BLOCKS:
            setattr(self, name, np.ascontiguousarray(getattr(self, name)[:, keep]))
