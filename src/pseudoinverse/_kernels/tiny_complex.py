"""The complex parts of ``tiny``'s generated kernels (``tiny.kernel(p, q, complex_=True)``).

Complex stacks arrive as real views ``(B, m, 2n)``. A column block holds ``p`` rows of
``Re W``, ``p`` of ``Im W``, ``q`` of ``Re V``, ``q`` of ``Im V`` and the squared norm;
the sweeps, the check and the block driver are ``tiny``'s. The pair rotation is
``jacobi_complex``'s: ``x <- c x - conj(P) y``, ``y <- P x + c y`` with ``c`` real and
``P = u g`` (``g = x^H y``), a unitary map that zeroes ``g``. The working matrix is ``A``
(tall) or ``A^H`` (wide); ``hermitian`` reads the lower triangle and drops the imaginary
part of the diagonal, as ``jacobi_complex`` does.
"""

from __future__ import annotations

from .tiny_base import BLK, SCALE, THRESHOLD, pair_functions


def block_rows(p: int, q: int) -> int:
    """Rows of a column block: ``Re W, Im W, Re V, Im V``, the squared norm."""
    return 2 * p + 2 * q + 1


def sources(p: int, q: int, s: str) -> str:
    """The text of ``_pair_{s}``, ``_dot_{s}``, ``_load_{s}``, ``_norms_{s}``,
    ``_finish_{s}`` and ``_store_{s}`` (what ``tiny_base._COMMON`` calls)."""
    cb, p2q = block_rows(p, q) * BLK, 2 * p + q
    zero_im = f"\n                S[j * {cb} + ({p2q} + i) * BLK + k] = 0.0"
    fmt = {"s": s, "p": p, "q": q, "p2": 2 * p, "p2q": p2q, "nrm": 2 * p + 2 * q, "cb": cb}
    fmt.update(wrows=2 * p, vrows=2 * q, sc_of="sc_of", zero_im=zero_im)
    return _pair(p, q, s) + _PARTS.format(**fmt)


def _pair(p: int, q: int, s: str) -> str:
    nrm = (2 * p + 2 * q) * BLK
    load = []
    for i in range(p):
        load += [f"xr{i} = X[{i * BLK} + k]", f"xi{i} = X[{(p + i) * BLK} + k]"]
        load += [f"yr{i} = Y[{i * BLK} + k]", f"yi{i} = Y[{(p + i) * BLK} + k]"]
    gr = " + ".join(f"xr{i} * yr{i} + xi{i} * yi{i}" for i in range(p))
    gi = " + ".join(f"xr{i} * yi{i} - xi{i} * yr{i}" for i in range(p))
    body = [
        *load,
        f"gr = {gr}",
        f"gi = {gi}",
        f"al = X[{nrm} + k]",
        f"be = Y[{nrm} + k]",
        "t2 = tol2 if live[k] > 0.0 else np.inf",
        "_, c, u, tg = rotation(al, be, gr * gr + gi * gi, t2)",
        "pr = u * gr",
        "pi = u * gi",
        f"X[{nrm} + k] = max(al - tg, 0.0)",
        f"Y[{nrm} + k] = be + tg",
    ]
    rows = [(i, p + i) for i in range(p)] + [(2 * p + i, 2 * p + q + i) for i in range(q)]
    for r, (re, im) in enumerate(rows):
        if r >= p:  # the rows of V, loaded here: fewer live registers
            body += [f"xr{r} = X[{re * BLK} + k]", f"xi{r} = X[{im * BLK} + k]"]
            body += [f"yr{r} = Y[{re * BLK} + k]", f"yi{r} = Y[{im * BLK} + k]"]
        body += [
            f"X[{re * BLK} + k] = c * xr{r} - (pr * yr{r} + pi * yi{r})",
            f"X[{im * BLK} + k] = c * xi{r} - (pr * yi{r} - pi * yr{r})",
            f"Y[{re * BLK} + k] = c * yr{r} + (pr * xr{r} - pi * xi{r})",
            f"Y[{im * BLK} + k] = c * yi{r} + (pr * xi{r} + pi * xr{r})",
        ]
    return pair_functions(s, body, [*load, f"gr = {gr}", f"gi = {gi}"], "gr * gr + gi * gi", nrm)


# Offsets in a column block j: Re W row i at (j cb + i BLK), Im W at (p + i), Re V at
# (2p + i), Im V at (2p + q + i), the squared norm at 2p + 2q.
_PARTS = (
    """
def _load_{s}(a, lanes, S, sc, tall, hermitian):
    mx = np.zeros(BLK)
    if hermitian:  # W[j, i] = H[i, j] = a[i, j] (i >= j), conj(a[j, i]) above
        for k in range(BLK):
            g = lanes[k]
            for i in range({p}):
                for j in range(i):
                    re = a[g, i, 2 * j]
                    im = a[g, i, 2 * j + 1]
                    S[j * {cb} + i * BLK + k] = re
                    S[j * {cb} + ({p} + i) * BLK + k] = im
                    S[i * {cb} + j * BLK + k] = re
                    S[i * {cb} + ({p} + j) * BLK + k] = -im
                S[i * {cb} + i * BLK + k] = a[g, i, 2 * i]
                S[i * {cb} + ({p} + i) * BLK + k] = 0.0  # a Hermitian diagonal is real
    elif tall:
        for k in range(BLK):
            g = lanes[k]
            for i in range({p}):
                for j in range({q}):
                    S[j * {cb} + i * BLK + k] = a[g, i, 2 * j]
                    S[j * {cb} + ({p} + i) * BLK + k] = a[g, i, 2 * j + 1]
    else:  # the working matrix is A^H: W[j, i] = conj(A[j, i])
        for k in range(BLK):
            g = lanes[k]
            for j in range({q}):
                for i in range({p}):
                    S[j * {cb} + i * BLK + k] = a[g, j, 2 * i]
                    S[j * {cb} + ({p} + i) * BLK + k] = -a[g, j, 2 * i + 1]
"""
    + SCALE
    + """


def _finish_{s}(S, sc, t1, t2, X, R, cnt, ok, a, lanes, tall):
"""
    + THRESHOLD
    + """    for i in range({q}):  # X[i, l] = sum_j V[j][i] conj(W[j][l]), into (re, im) rows
        for ll in range({p}):
            o = 2 * (i * {p} + ll) * BLK
            for k in range(BLK):
                X[o + k] = 0.0
                X[o + BLK + k] = 0.0
            for j in range({q}):
                c = j * {cb}
                for k in range(BLK):
                    vr = S[c + ({p2} + i) * BLK + k]
                    vi = S[c + ({p2q} + i) * BLK + k]
                    wr = S[c + ll * BLK + k]
                    wi = S[c + ({p} + ll) * BLK + k]
                    X[o + k] += vr * wr + vi * wi
                    X[o + BLK + k] += vi * wr - vr * wi


def _store_{s}(X, cnt, dst, nl, out, rank, b, tall):
    kk = b.shape[2] // 2
    for k in range(nl):
        rank[dst[k]] = int(cnt[k])
    if kk == 0 and tall:
        for k in range(nl):
            g = dst[k]
            for i in range({q}):
                for ll in range({p}):
                    o = 2 * (i * {p} + ll) * BLK + k
                    out[g, i, 2 * ll] = X[o]
                    out[g, i, 2 * ll + 1] = X[o + BLK]
    elif kk == 0:  # wide input: X^H
        for k in range(nl):
            g = dst[k]
            for i in range({q}):
                for ll in range({p}):
                    o = 2 * (i * {p} + ll) * BLK + k
                    out[g, ll, 2 * i] = X[o]
                    out[g, ll, 2 * i + 1] = -X[o + BLK]
    elif tall:  # X (q x p) @ b (p x kk)
        for k in range(nl):
            g = dst[k]
            for i in range({q}):
                for c in range(kk):
                    re = 0.0
                    im = 0.0
                    for ll in range({p}):
                        o = 2 * (i * {p} + ll) * BLK + k
                        xr = X[o]
                        xi = X[o + BLK]
                        br = b[g, ll, 2 * c]
                        bi = b[g, ll, 2 * c + 1]
                        re += xr * br - xi * bi
                        im += xr * bi + xi * br
                    out[g, i, 2 * c] = re
                    out[g, i, 2 * c + 1] = im
    else:  # X^H (p x q) @ b (q x kk)
        for k in range(nl):
            g = dst[k]
            for ll in range({p}):
                for c in range(kk):
                    re = 0.0
                    im = 0.0
                    for i in range({q}):
                        o = 2 * (i * {p} + ll) * BLK + k
                        xr = X[o]
                        xi = -X[o + BLK]
                        br = b[g, i, 2 * c]
                        bi = b[g, i, 2 * c + 1]
                        re += xr * br - xi * bi
                        im += xr * bi + xi * br
                    out[g, ll, 2 * c] = re
                    out[g, ll, 2 * c + 1] = im
"""
)
