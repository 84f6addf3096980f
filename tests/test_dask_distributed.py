"""Tall-and-skinny (and wide) Dask matrices on ``dask.distributed``: the TSQR route.

Every result is computed on a two-worker ``LocalCluster`` (processes) and compared live
with ``numpy.linalg.pinv`` and with this package's NumPy result on the in-memory matrix,
plus the four Penrose conditions; the graph is checked to never hold the whole matrix
in one task.
"""

from __future__ import annotations

import numpy as np
import pytest

import pseudoinverse as pi

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit="1GiB",
        dashboard_address=None,
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def _eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def _matrix(rng, m, n, dtype, kind="random"):
    """``(a, kappa of its kept part)``: random, rank 4 (``B @ C^H``) or kappa = 1e8."""
    cplx = np.dtype(dtype).kind == "c"

    def draw(*shape):
        x = rng.standard_normal(shape)
        return x + 1j * rng.standard_normal(shape) if cplx else x

    if kind == "random":
        a = draw(m, n)
    elif kind == "rank4":
        a = draw(m, 4) @ draw(n, 4).conj().T
    else:  # kind == "kappa": singular values log-spaced from 1 to 1e-8
        u, _ = np.linalg.qr(draw(m, n))
        v, _ = np.linalg.qr(draw(n, n))
        a = (u * np.logspace(0, -8, n)) @ v.conj().T
    a = a.astype(dtype)
    s = np.linalg.svd(a.astype(np.complex128 if cplx else np.float64), compute_uv=False)
    kept = s[s > max(m, n) * _eps(dtype) * s[0]]
    return a, float(kept[0] / kept[-1])


def _close(x, ref, bound, what):
    err = np.abs(np.asarray(x) - ref).max() / max(np.abs(ref).max(), 1e-300)
    assert err <= bound, f"{what}: relative error {err:.3g} > {bound:.3g}"


def _penrose(a, x, kappa, dtype):
    a, x = a.astype(np.complex128), x.astype(np.complex128)
    tol = 50 * max(a.shape) * _eps(dtype) * kappa
    na, nx = np.abs(a).max(), np.abs(x).max()
    ax, xa = a @ x, x @ a
    checks = {
        "A X A = A": np.abs(ax @ a - a).max() / na,
        "X A X = X": np.abs(xa @ x - x).max() / nx,
        "(A X)^H = A X": np.abs(ax.conj().T - ax).max(),
        "(X A)^H = X A": np.abs(xa.conj().T - xa).max(),
    }
    for name, err in checks.items():
        assert err <= tol, f"Penrose {name}: {err:.3g} > {tol:.3g}"


CASES = [  # (m, n, row chunks, dtype, kind)
    (1000, 8, 100, np.float64, "random"),
    (1003, 7, (300, 3, 500, 200), np.float64, "random"),  # uneven, one shorter than n
    (400, 6, 10, np.float32, "random"),  # 40 chunks
    (600, 5, 150, np.complex128, "random"),
    (800, 10, 120, np.float64, "rank4"),
    (900, 6, 200, np.float64, "kappa"),
    (64, 9, 4, np.complex64, "rank4"),
    (31, 30, 16, np.float64, "random"),  # barely tall
]


@pytest.mark.parametrize(("m", "n", "chunks", "dtype", "kind"), CASES)
def test_pinv_tall(client, rng, m, n, chunks, dtype, kind):
    a, kappa = _matrix(rng, m, n, dtype, kind)
    A = da.from_array(a, chunks=(chunks, n))
    res = pi.pinv(A, return_rank=True)
    assert isinstance(res.pinv, da.Array)
    assert res.pinv.chunks == ((n,), A.chunks[0]), "the result stays chunked along m"
    x = res.pinv.compute()
    assert x.dtype == np.dtype(dtype)
    ours, rank = pi.pinv(a, return_rank=True)  # the package's NumPy path
    assert res.rank == rank, f"rank {res.rank}, NumPy path {rank}"
    bound = 100 * max(m, n) * _eps(dtype) * kappa
    _close(x, ours, bound, "against pi.pinv on NumPy")
    rtol = max(m, n) * _eps(dtype)  # this package's default rule, given to NumPy
    _close(x, np.linalg.pinv(a.astype(np.complex128), rtol=rtol), bound, "against NumPy")
    _penrose(a, x, kappa, dtype)


@pytest.mark.parametrize(("m", "n", "chunks", "dtype", "kind"), CASES[:6])
def test_pinv_solve_tall(client, rng, m, n, chunks, dtype, kind):
    a, kappa = _matrix(rng, m, n, dtype, kind)
    A = da.from_array(a, chunks=(chunks, n))
    ref = np.linalg.pinv(a.astype(np.complex128), rtol=max(m, n) * _eps(dtype))
    bound = 100 * max(m, n) * _eps(dtype) * kappa
    for k in (None, 3, 2 * n + 1):  # a vector, k <= n ([A B]), k > n (pinv(A) @ B)
        b = _matrix(rng, m, 1 if k is None else k, dtype)[0]
        b = b[:, 0] if k is None else b
        B = da.from_array(b, chunks=(chunks,) + (-1,) * (b.ndim - 1))
        x = pi.pinv_solve(A, B).compute()
        assert x.shape == ((n,) if k is None else (n, k)) and x.dtype == np.dtype(dtype)
        np_x, np_rank = pi.pinv_solve(a, b, return_rank=True)
        if k is None:  # the rank is computed at the call (a second pass: once is enough)
            assert pi.pinv_solve(A, B, return_rank=True).rank == np_rank
        _close(x, ref @ b, bound, f"solve k={k} against NumPy")
        _close(x, np_x, bound, f"solve k={k} against pi.pinv_solve on NumPy")


@pytest.mark.parametrize(("m", "n", "chunks", "dtype", "kind"), [CASES[1], CASES[3], CASES[4]])
def test_damped_tall(client, rng, m, n, chunks, dtype, kind):
    a, _ = _matrix(rng, m, n, dtype, kind)
    A = da.from_array(a, chunks=(chunks, n))
    b = _matrix(rng, m, 2, dtype)[0]
    B = da.from_array(b, chunks=(chunks, 2))
    eps = _eps(dtype)
    for lam in (0.7, 1e-3):
        x = pi.damped_pinv(A, lam)
        assert x.chunks == ((n,), A.chunks[0])
        ah = a.conj().T.astype(np.complex128)
        ref = np.linalg.solve(ah @ a + lam**2 * np.eye(n), ah)  # well-posed for lam > 0
        kappa = (np.linalg.norm(a, 2) ** 2 + lam**2) / lam**2
        _close(x.compute(), ref, 100 * m * eps * kappa, f"damped lam={lam}")
        _close(x.compute(), pi.damped_pinv(a, lam), 100 * m * eps * kappa, "damped, NumPy")
        xs = pi.damped_pinv_solve(A, lam, B).compute()
        _close(xs, pi.damped_pinv_solve(a, lam, b), 100 * m * eps * kappa, "damped solve")
        xv = pi.damped_pinv_solve(A, lam, B[:, 0]).compute()
        _close(xv, ref @ b[:, 0], 100 * m * eps * kappa, "damped solve, vector")
    # damping 0: pinv with atol = rtol = 0, no NaN (rank-deficient: sigma at rounding
    # level is inverted, on NumPy as here, so only full rank is compared)
    x0 = pi.damped_pinv(A, 0.0).compute()
    assert np.isfinite(x0).all()
    if kind != "rank4":
        ref0 = np.linalg.pinv(a.astype(np.complex128), rtol=0)
        _close(x0, ref0, 1e3 * m * eps, "lam=0 against NumPy's pinv with rtol=0")


def test_wide(client, rng):
    for dtype, kind in ((np.float64, "random"), (np.complex128, "rank4")):
        t, kappa = _matrix(rng, 700, 9, dtype, kind)
        a = t.conj().T.copy()  # 9 x 700, chunked along columns
        A = da.from_array(a, chunks=(9, 90))
        res = pi.pinv(A, return_rank=True)
        assert res.pinv.chunks == (A.chunks[1], (9,)), "chunked along the long axis"
        x = res.pinv.compute()
        ours, rank = pi.pinv(a, return_rank=True)
        assert res.rank == rank
        bound = 100 * 700 * _eps(dtype) * kappa
        _close(x, ours, bound, "wide pinv")
        _close(x, np.linalg.pinv(a, rtol=700 * _eps(dtype)), bound, "wide, NumPy")
        _penrose(a, x, kappa, dtype)
        b = _matrix(rng, 9, 2, dtype)[0]
        xs = pi.pinv_solve(A, da.from_array(b), return_rank=True)
        assert xs.solution.chunks[0] == A.chunks[1] and xs.rank == rank
        _close(xs.solution.compute(), ours @ b, bound, "wide solve")
        lam = 0.3
        bound = 100 * 700 * _eps(dtype) * (np.linalg.norm(a, 2) ** 2 + lam**2) / lam**2
        _close(pi.damped_pinv(A, lam).compute(), pi.damped_pinv(a, lam), bound, "wide damped")
        xd = pi.damped_pinv_solve(A, lam, da.from_array(b[:, 0])).compute()
        _close(xd, pi.damped_pinv_solve(a, lam, b[:, 0]), bound, "wide damped solve")


def test_check_finite_names_the_block(client, rng):
    a = rng.standard_normal((1000, 6))
    a[350, 2] = np.nan
    a[720, 0] = np.inf
    A = da.from_array(a, chunks=(100, 6))
    with pytest.raises(np.linalg.LinAlgError, match=r"^A .* row block 3 \(rows 300:400\)"):
        pi.pinv(A).compute()
    res = pi.pinv(A, return_rank=True)  # the rank stays lazy: the error comes with it
    with pytest.raises(np.linalg.LinAlgError, match=r"row block 3 \(rows 300:400\)"):
        res.rank.compute()
    b = rng.standard_normal(1000)
    b[120] = np.nan
    good = da.from_array(np.nan_to_num(a, nan=1.0, posinf=1.0), chunks=(100, 6))
    with pytest.raises(np.linalg.LinAlgError, match=r"^B .* row block 1 \(rows 100:200\)"):
        pi.pinv_solve(good, da.from_array(b, chunks=100)).compute()
    # the first bad block is named: B's block 1 comes before A's block 3
    with pytest.raises(np.linalg.LinAlgError, match=r"^B .* row block 1"):
        pi.pinv_solve(A, da.from_array(b, chunks=100)).compute()
    with pytest.raises(np.linalg.LinAlgError, match=r"^A .* column block 7 \(columns 700:800\)"):
        pi.pinv(da.from_array(np.where(np.isnan(a), 0, a).T, chunks=(6, 100))).compute()
    lazy = pi.pinv(A, check_finite=False, return_rank=True)
    assert lazy.rank == 0
    assert np.isnan(lazy.pinv.compute()).all()
    x = pi.pinv_solve(good, da.from_array(b, chunks=100), check_finite=False).compute()
    assert np.isnan(x).all()


def test_refused_and_routed(client, rng):
    big = da.zeros((20000, 5000), chunks=(2000, 1000))
    with pytest.raises(ValueError, match=r"small side 5000 > 4096.*rechunk"):
        pi.pinv(big)
    with pytest.raises(ValueError, match="rechunk"):
        pi.pinv_solve(big, da.zeros(20000, chunks=2000))
    with pytest.raises(ValueError, match="rechunk"):
        pi.damped_pinv(da.zeros((5000, 5000), chunks=(1000, 5000)), 0.1)
    # a tall matrix whose columns are chunked: rechunked to one chunk of columns
    a = rng.standard_normal((600, 12))
    x = pi.pinv(da.from_array(a, chunks=(100, 4)))
    assert x.chunks == ((12,), (100,) * 6)
    _close(x.compute(), np.linalg.pinv(a), 1e-12, "columns rechunked")
    # square, Hermitian: gathered (R would be as large as A), every option as on NumPy
    h = rng.standard_normal((40, 40))
    h = h + h.T
    H = da.from_array(h, chunks=(10, 40))
    _close(pi.pinv(H, hermitian=True).compute(), pi.pinv(h, hermitian=True), 1e-12, "herm")
    # stacks: block by block, as before
    s = rng.standard_normal((6, 20, 5))
    xs = pi.pinv(da.from_array(s, chunks=(2, 20, 5)))
    assert xs.chunks[0] == (2, 2, 2)
    _close(xs.compute(), np.linalg.pinv(s), 1e-12, "stack")
    # method applies to R: "qr" refuses a rank-deficient matrix when computed
    low = _matrix(rng, 300, 6, np.float64, "rank4")[0]
    res = pi.pinv(da.from_array(low, chunks=(50, 6)), method="svd", return_rank=True)
    assert res.method == "svd" and res.rank == 4
    with pytest.raises(ValueError):
        pi.pinv(da.from_array(low, chunks=(50, 6)), method="qr").compute()


def test_edge_cases(client, rng):
    empty = pi.pinv(da.zeros((0, 5), chunks=(10, 5)), return_rank=True)
    assert empty.pinv.shape == (5, 0) and empty.rank == 0
    assert pi.pinv_solve(da.zeros((0, 3), chunks=2), da.zeros(0, chunks=2)).compute().shape == (3,)
    col = rng.standard_normal((500, 1))
    _close(pi.pinv(da.from_array(col, chunks=(50, 1))).compute(), np.linalg.pinv(col), 1e-14, "")
    zero = pi.pinv(da.zeros((300, 4), chunks=(100, 4)), return_rank=True)
    assert zero.rank == 0 and not zero.pinv.compute().any()
    a = rng.standard_normal((300, 4))
    with_empty = da.from_array(a, chunks=((0, 150, 0, 150), (4,)))
    _close(pi.pinv(with_empty).compute(), np.linalg.pinv(a), 1e-13, "empty chunks")
    ints = da.from_array(rng.integers(-5, 5, (200, 3)), chunks=(40, 3))
    xi = pi.pinv(ints)
    assert xi.dtype == np.float64
    _close(xi.compute(), np.linalg.pinv(ints.compute().astype(float)), 1e-13, "ints")
    for scale in (2.0**900, 2.0**-1000, 1e-310):  # extreme entries: scaled, not lost
        xs = pi.pinv(da.from_array(a * scale, chunks=(60, 4))).compute()
        assert np.isfinite(xs).all()
        _close(xs, pi.pinv(a * scale), 1e-12 if scale > 1e-300 else 1e-2, f"scale {scale}")
    f16 = pi.pinv(da.from_array(a.astype(np.float16), chunks=(60, 4)))
    assert f16.dtype == np.float16


def test_no_task_holds_the_matrix(client, rng):
    """Every task's output (synchronous scheduler, each result seen) is far smaller than
    A; then the same graphs run on the cluster."""
    from dask.callbacks import Callback

    m, n, rows = 50000, 8, 2000
    a = rng.standard_normal((m, n))
    A = da.from_array(a, chunks=(rows, n))
    b = rng.standard_normal(m)
    largest = []

    def size(v):
        if isinstance(v, np.ndarray):
            return v.size
        if isinstance(v, tuple | list):
            return max((size(e) for e in v), default=0)
        return 0

    with Callback(posttask=lambda key, res, *_: largest.append(size(res))):
        gram = (pi.pinv(A) @ A).compute(scheduler="sync")
        x = pi.pinv_solve(A, da.from_array(b, chunks=rows)).compute(scheduler="sync")
        pi.damped_pinv_solve(A, 0.1, da.from_array(b, chunks=rows)).compute(scheduler="sync")
    assert max(largest) <= 2 * rows * n < m * n // 10, f"a task held {max(largest)} entries"
    np.testing.assert_allclose(gram, np.eye(n), atol=1e-12)
    _close(x, np.linalg.pinv(a) @ b, 1e-12, "solve")
    on_cluster = (pi.pinv(A) @ A).compute()
    np.testing.assert_allclose(on_cluster, np.eye(n), atol=1e-12)
