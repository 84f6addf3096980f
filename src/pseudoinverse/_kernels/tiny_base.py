"""The shared parts of ``tiny``'s generated kernels: the lane block ``BLK``, the pair
rotation and its check (``_pair_source``), the loading/storing text (``_REAL``), the block
driver (``_COMMON``) and the one-lane helpers (``sc_of``, ``_bits``); ``tiny``, ``tiny_complex``
and ``tiny_single`` build their kernels from them (``tiny.kernel``)."""

from __future__ import annotations

from numba import njit, types
from numba.extending import intrinsic

from .jacobi import EMAX, OPTS

#: Lanes of a block: a compile-time constant (constant offsets, no remainder loop).
BLK = 64

#: Largest ``p`` (rows of the tall orientation) with a generated kernel.
MAX_ROWS = 8


def _pair_source(p: int, q: int, s: str) -> str:
    """``_pair_{s}(X, Y, tol2, live)`` and ``_dot_{s}(X, Y, tol2, flag)``
    on two column blocks ``X``, ``Y``: rows ``0..p-1`` of ``W``, ``p..p+q-1`` of
    ``V``, row ``p + q`` the squared norm. A lane with ``live[k] == 0`` does not rotate
    (an infinite threshold); ``_dot`` marks ``flag[k]`` where the pair would rotate
    (with a margin of 2 in the cosine, so that a marked lane is one that rotates)."""
    nrm = (p + q) * BLK
    dot = " + ".join(f"x{i} * y{i}" for i in range(p))
    load = [f"x{i} = X[{i * BLK} + k]" for i in range(p)]
    load += [f"y{i} = Y[{i * BLK} + k]" for i in range(p)]
    body = [
        *load,
        f"g = {dot}",
        f"al = X[{nrm} + k]",
        f"be = Y[{nrm} + k]",
        "_, c, u, tg = rotation(al, be, g * g, tol2 if live[k] > 0.0 else np.inf)",
        "s = u * g",
        f"X[{nrm} + k] = max(al - tg, 0.0)",
        f"Y[{nrm} + k] = be + tg",
    ]
    for i in range(p + q):
        if i >= p:  # the rows of V, loaded here: fewer live registers
            body += [f"x{i} = X[{i * BLK} + k]", f"y{i} = Y[{i * BLK} + k]"]
        body.append(f"X[{i * BLK} + k] = c * x{i} - s * y{i}")
        body.append(f"Y[{i * BLK} + k] = s * x{i} + c * y{i}")
    return pair_functions(s, body, [*load, f"g = {dot}"], "g * g", nrm)


def pair_functions(s: str, body: list[str], dot: list[str], g2: str, nrm: int) -> str:
    """``_pair_{s}`` (the lines ``body`` for each lane) and ``_dot_{s}`` (the lines
    ``dot`` that form ``g``, then the flag where ``g2 = |g|^2`` would rotate, with the
    squared norms in row ``nrm // BLK``)."""
    pair = [f"def _pair_{s}(X, Y, tol2, live):", "    for k in range(BLK):"]
    pair += [f"        {b}" for b in body]
    check = [f"def _dot_{s}(X, Y, tol2, flag):", "    for k in range(BLK):"]
    check += [f"        {b}" for b in dot]
    check += [
        f"        big = {g2} > (4.0 * tol2) * X[{nrm} + k] * Y[{nrm} + k]",
        "        flag[k] = 1.0 if big else flag[k]",
    ]
    return "\n".join(pair + check) + "\n"


def _tree(op: str, terms: list[str]) -> str:
    """``op`` folded over ``terms`` as a balanced tree (short dependency chains);
    ``op == "+"`` adds, any other names a function (``max``, ``min``)."""
    while len(terms) > 1:
        pairs = zip(terms[::2], terms[1::2], strict=False)
        joined = [f"({x} + {y})" if op == "+" else f"{op}({x}, {y})" for x, y in pairs]
        terms = joined + (terms[-1:] if len(terms) % 2 else [])
    return terms[0]


@intrinsic
def _bits(typingctx, x):
    """The IEEE bits of a float64 as an int64 (one instruction, vectorisable)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def _from_bits(typingctx, i):
    """The float64 whose IEEE bits are the int64 ``i``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@njit(inline="always", **OPTS)
def sc_of(big):
    """``jacobi.scale_exponents`` for one lane, from the exponent bits (vectorisable):
    ``2**-e`` with ``big = f 2**e``, ``f`` in [1/2, 1), ``e`` clamped to ``+-EMAX``
    (``e = field - 1022``; a subnormal ``big`` has field 0, clamped alike); 1 for 0."""
    e = min(max((_bits(big) >> 52) - 1022, -EMAX), EMAX)
    return _from_bits((1023 - e) << 52) if big > 0.0 else 1.0


def real_formats(p: int, q: int, s: str) -> dict:
    """The fields of ``_REAL``, ``SCALE`` and ``THRESHOLD`` for real ``p x q`` column
    blocks (``W``, ``V``, the squared norm: ``p + q + 1`` rows of ``BLK`` lanes)."""
    cb = (p + q + 1) * BLK
    fmt = {"s": s, "p": p, "q": q, "pq": p + q, "cb": cb, "nrm": p + q, "wrows": p}
    return fmt | {"vrows": q, "zero_im": ""}


#: The text shared by the real and complex loading: the scale of each lane (``{sc_of}``
#: of its largest entry, over the ``{wrows}`` rows of ``W``), applied to ``W``, and
#: ``V = I`` (``{zero_im}``: complex zeroes ``Im V`` too); ``_norms``, the squared column
#: norms of ``W`` into row ``{nrm}`` of each block.
SCALE = """    for j in range({q}):
        for i in range({wrows}):
            for k in range(BLK):
                mx[k] = max(mx[k], abs(S[j * {cb} + i * BLK + k]))
    for k in range(BLK):
        sc[k] = {sc_of}(mx[k])
    for j in range({q}):
        for i in range({wrows}):
            for k in range(BLK):
                S[j * {cb} + i * BLK + k] *= sc[k]
        for i in range({q}):
            d = 1.0 if i == j else 0.0
            for k in range(BLK):
                S[j * {cb} + ({wrows} + i) * BLK + k] = d{zero_im}


def _norms_{s}(S):
    for j in range({q}):
        o = j * {cb}
        for k in range(BLK):
            S[o + {nrm} * BLK + k] = S[o + k] * S[o + k]
        for i in range(1, {wrows}):
            for k in range(BLK):
                S[o + {nrm} * BLK + k] += S[o + i * BLK + k] * S[o + i * BLK + k]
"""

#: The start of the loop version of ``_finish``, real and complex: the singular values
#: (square roots of the norms in row ``{nrm}``), ``f = 1/sigma`` for those kept (their
#: count into ``cnt``), then ``W diag(f)`` and ``V diag(f)`` times the scale (``{vrows}``
#: rows of ``V``: ``q``, or ``2q`` for its real and imaginary parts).
THRESHOLD = """    f = np.zeros(({q}, BLK))
    smax = np.zeros(BLK)
    _norms_{s}(S)
    for j in range({q}):
        for k in range(BLK):
            f[j, k] = math.sqrt(S[j * {cb} + {nrm} * BLK + k])
            smax[k] = max(smax[k], f[j, k])
    for k in range(BLK):
        smax[k] = max(t1[k] * sc[k], t2[k] * smax[k])
        cnt[k] = 0.0
    for j in range({q}):
        for k in range(BLK):
            keep = f[j, k] > smax[k]
            cnt[k] += 1.0 if keep else 0.0
            f[j, k] = 1.0 / f[j, k] if keep else 0.0
    for j in range({q}):  # V diag(f) (W diag(f))^H, times the scale
        for i in range({wrows}):
            for k in range(BLK):
                S[j * {cb} + i * BLK + k] *= f[j, k]
        for i in range({vrows}):
            for k in range(BLK):
                S[j * {cb} + ({wrows} + i) * BLK + k] *= f[j, k] * sc[k]
"""

_REAL = (
    """
def _load_{s}(a, lanes, S, sc, tall, hermitian):
    mx = np.zeros(BLK)
    if hermitian:
        for k in range(BLK):
            g = lanes[k]
            for i in range({p}):
                for j in range(i + 1):
                    S[j * {cb} + i * BLK + k] = S[i * {cb} + j * BLK + k] = a[g, i, j]
    elif tall:
        for k in range(BLK):
            g = lanes[k]
            for i in range({p}):
                for j in range({q}):
                    S[j * {cb} + i * BLK + k] = a[g, i, j]
    else:
        for k in range(BLK):
            g = lanes[k]
            for i in range({q}):
                for j in range({p}):
                    S[i * {cb} + j * BLK + k] = a[g, i, j]
"""
    + SCALE
    + """


def _store_{s}(X, cnt, dst, nl, out, rank, b, tall):
    kk = b.shape[2]
    for k in range(nl):
        rank[dst[k]] = int(cnt[k])
    if kk == 0 and tall:
        for k in range(nl):
            g = dst[k]
            for i in range({q}):
                for ll in range({p}):
                    out[g, i, ll] = X[(i * {p} + ll) * BLK + k]
    elif kk == 0:  # wide input: X^T
        for k in range(nl):
            g = dst[k]
            for ll in range({p}):
                for i in range({q}):
                    out[g, ll, i] = X[(i * {p} + ll) * BLK + k]
    elif tall:  # X (q x p) @ b (p x kk)
        for k in range(nl):
            g = dst[k]
            for i in range({q}):
                for c in range(kk):
                    acc = 0.0
                    for ll in range({p}):
                        acc += X[(i * {p} + ll) * BLK + k] * b[g, ll, c]
                    out[g, i, c] = acc
    else:  # X^T (p x q) @ b (q x kk)
        for k in range(nl):
            g = dst[k]
            for ll in range({p}):
                for c in range(kk):
                    acc = 0.0
                    for i in range({q}):
                        acc += X[(i * {p} + ll) * BLK + k] * b[g, i, c]
                    out[g, ll, c] = acc


"""
)


_COMMON = """
def _sweep_{s}(S, C, pairs, tol2, live):
    _norms_{s}(S)
    for t in range(pairs.shape[0]):
        _pair_{s}(C[pairs[t, 0]], C[pairs[t, 1]], tol2, live)


def _check_{s}(S, C, pairs, tol2, flag):
    _norms_{s}(S)
    flag[:] = 0.0
    for t in range(pairs.shape[0]):
        _dot_{s}(C[pairs[t, 0]], C[pairs[t, 1]], tol2, flag)
    return flag.sum()


def _block_{s}(a, b, lanes, nb, t1, t2, out, rank, hermitian, tall, pairs, tol2, s0, extra,
               S, C, X, R, sc, pa, pb, ones, flag, ok, cnt):
    _load_{s}(a, lanes, S, sc, tall, hermitian)
    for k in range(BLK):
        pa[k] = t1[lanes[k]]
        pb[k] = t2[lanes[k]]
    for _ in range(s0):
        _sweep_{s}(S, C, pairs, tol2, ones)
    todo = _check_{s}(S, C, pairs, tol2, flag)
    for _ in range(extra):  # only the lanes not yet done rotate
        if todo == 0.0:
            break
        _sweep_{s}(S, C, pairs, tol2, flag)
        todo = _check_{s}(S, C, pairs, tol2, flag)
    _finish_{s}(S, sc, pa, pb, X, R, cnt, ok, a, lanes, tall)
    _store_{s}(X, cnt, lanes, nb, out, rank, b, tall)


def run_{s}(a, b, atol, rtol, out, rank, hermitian, pairs, tol2, s0, max_sweeps):
    nbatch = a.shape[0]
    tall = a.shape[1] >= {ncols}
    C = np.zeros(({q}, {cb}), {wdt})  # the column blocks
    S = C.reshape(-1)
    X = np.zeros({xsize} * BLK)
    R = np.zeros({rsize} * BLK)
    sc = np.ones(BLK, {wdt})
    pa = np.zeros(BLK)
    pb = np.zeros(BLK)
    ones = np.ones(BLK, {wdt})
    flag = np.zeros(BLK, {wdt})
    ok = np.ones(BLK)
    cnt = np.zeros(BLK)
    lanes = np.zeros(BLK, np.int64)
    late = np.zeros(nbatch, np.int64)
    refused = np.zeros(nbatch, np.int64)
    nlate = 0
    nref = 0
    none = s0 * 0  # an int64, as s0: a literal 0 would compile _block a second time
    more = max_sweeps - s0
    for b0 in range(0, nbatch, BLK):
        nb = min(BLK, nbatch - b0)
        for k in range(BLK):  # padding lanes repeat the last member (stored once)
            lanes[k] = b0 + min(k, nb - 1)
        _block_{s}(a, b, lanes, nb, atol, rtol, out, rank, hermitian, tall, pairs, tol2, s0,
                   none, S, C, X, R, sc, pa, pb, ones, flag, ok, cnt)
        for k in range(nb):
            if flag[k] > 0.0:
                late[nlate] = b0 + k
                nlate += 1
            elif ok[k] == 0.0:
                refused[nref] = b0 + k
                nref += 1
    for c0 in range(0, nlate, BLK):  # the few that need more sweeps, again from the start
        nb = min(BLK, nlate - c0)
        for k in range(BLK):
            lanes[k] = late[c0 + min(k, nb - 1)]
        _block_{s}(a, b, lanes, nb, atol, rtol, out, rank, hermitian, tall, pairs, tol2, s0,
                   more, S, C, X, R, sc, pa, pb, ones, flag, ok, cnt)
        for k in range(nb):
            if ok[k] == 0.0:
                refused[nref] = lanes[k]
                nref += 1
    return refused[:nref]
"""
