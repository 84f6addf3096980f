"""Stack kernels on several threads (``_methods/parallel.py``): the same bits as one thread.

Every route that runs a compiled stack kernel (the Jacobi pinv, solve and damped
kernels, real and complex, the CholeskyQR2 and float32 Gram kernels) is computed with
``PSEUDOINVERSE_NUM_THREADS=1`` and with several threads, and compared bit for bit;
each result is also checked against ``numpy.linalg.pinv`` in float64.
"""

from __future__ import annotations

import os
import threading
from itertools import pairwise

import numpy as np
import pytest

import pseudoinverse as pi
from pseudoinverse._methods import parallel


@pytest.fixture
def nthreads(monkeypatch):
    def set_(n):
        monkeypatch.setenv("PSEUDOINVERSE_NUM_THREADS", str(n))

    return set_


@pytest.fixture
def split_counts(monkeypatch):
    """Record how many chunks each split made (``parallel.chunks``)."""

    def start():
        split = []
        chunks = parallel.chunks

        def spy(*args):
            split.append(len(parts := chunks(*args)))
            return parts

        monkeypatch.setattr(parallel, "chunks", spy)
        return split

    return start


def test_threads_reads_the_environment(monkeypatch):
    for var in parallel._ENV:
        monkeypatch.delenv(var, raising=False)
    assert parallel.threads() == min(parallel._CAP, len(os.sched_getaffinity(0)))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert parallel.threads() == 1
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")
    assert parallel.threads() == 3  # numba's variable before OpenMP's
    monkeypatch.setenv("PSEUDOINVERSE_NUM_THREADS", "5")
    assert parallel.threads() == 5
    monkeypatch.setenv("PSEUDOINVERSE_NUM_THREADS", "many")  # malformed: the next one
    assert parallel.threads() == 3
    monkeypatch.setenv("PSEUDOINVERSE_NUM_THREADS", "0")
    assert parallel.threads() == 1


@pytest.mark.parametrize("nbatch", [1, 7, 64, 100, 1000, 4099])
@pytest.mark.parametrize("align", [1, 8, 32, 128])
@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_chunks_cover_the_batch_on_block_boundaries(nthreads, nbatch, align, n):
    nthreads(n)
    parts = parallel.chunks(nbatch, work=1e12, align=align)
    assert parts[0].start == 0 and parts[-1].stop == nbatch
    assert all(p.stop == q.start for p, q in pairwise(parts))
    assert all(p.stop > p.start for p in parts)
    assert all(p.start % align == 0 for p in parts)
    assert len(parts) <= n


def test_small_work_stays_on_one_thread(nthreads):
    nthreads(8)
    assert parallel.chunks(10_000, work=parallel.MIN_WORK * 1.5, align=8) == [slice(0, 10_000)]
    assert len(parallel.chunks(10_000, work=parallel.MIN_WORK * 4, align=8)) == 4


def test_a_kernel_error_reaches_the_caller(nthreads):
    nthreads(3)
    seen = []

    def kernel(x, tag):
        seen.append(threading.current_thread().name)
        if x[0] >= 50:
            raise RuntimeError(f"boom {tag}")

    with pytest.raises(RuntimeError, match="boom"):
        parallel.over_batch(kernel, (np.arange(100), "t"), (0,), 1e12, 1)
    assert len(seen) == 3


def _inputs(rng, dtype, shape):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    a[::5, :, -1] = a[::5, :, 0]  # rank-deficient members
    b = rng.standard_normal(shape[:-1])
    return a.astype(dtype), b.astype(dtype)


CASES = [
    ("pinv", {}),
    ("pinv", {"hermitian": True}),
    ("solve", {}),
    ("damped", {"damping": 0.05}),
    ("damped", {"damping": 1e-4}),
    ("damped_solve", {"damping": 0.01}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize(("kind", "kw"), CASES, ids=lambda c: str(c))
def test_threads_give_the_same_bits(nthreads, split_counts, rng, dtype, kind, kw):
    shape = (3000, 6, 6) if kw.get("hermitian") else (3000, 6, 7)
    a, b = _inputs(rng, dtype, shape)
    if kw.get("hermitian"):
        a = a @ np.conj(np.swapaxes(a, -1, -2))

    def run():
        if kind == "pinv":
            return pi.pinv(a, return_rank=True, **kw)
        if kind == "solve":
            return pi.pinv_solve(a, b, return_rank=True)
        if kind == "damped":
            return pi.damped_pinv(a, kw["damping"])
        return pi.damped_pinv_solve(a, kw["damping"], b)

    nthreads(1)
    one = run()
    nthreads(3)
    split = split_counts()
    many = run()
    assert split and max(split) == 3  # a compiled kernel ran, on three threads
    if kind in ("pinv", "solve"):
        assert one.method == many.method
        np.testing.assert_array_equal(one.rank, many.rank)
        one, many = one[0], many[0]
    np.testing.assert_array_equal(one, many)
    # and right: against float64/complex128 NumPy
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    a64 = a.astype(wide)
    if kind == "pinv":
        ref = np.linalg.pinv(a64, rtol=max(shape[-2:]) * np.finfo(dtype).eps, hermitian=False)
    elif kind == "solve":
        ref = np.einsum("bij,bj->bi", np.linalg.pinv(a64, rtol=7 * np.finfo(dtype).eps), b)
    else:
        lam = kw["damping"]
        ah = np.conj(np.swapaxes(a64, -1, -2))
        ref = ah @ np.linalg.inv(a64 @ ah + lam**2 * np.eye(shape[1]))
        if kind == "damped_solve":
            ref = np.einsum("bij,bj->bi", ref, b)
    err = np.linalg.norm((many - ref).reshape(shape[0], -1), axis=1)
    scale = np.linalg.norm(ref.reshape(shape[0], -1), axis=1)
    keep = np.linalg.cond(a64) < 1e3  # members whose reference is itself accurate
    tol = 1e-3 if np.dtype(dtype) in (np.float32, np.complex64) else 1e-10
    assert np.all(err[keep] <= tol * scale[keep])


def test_fork_gets_a_fresh_pool(nthreads):
    nthreads(2)
    a = np.random.default_rng(0).standard_normal((3000, 6, 7))
    x = pi.pinv(a)  # the pool exists now
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its pool's threads did not survive the fork
        ok = np.array_equal(pi.pinv(a), x)
        os.write(w, b"1" if ok else b"0")
        os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    assert os.read(r, 1) == b"1" and status == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
@pytest.mark.parametrize(
    ("shape", "hermitian"),
    [
        ((3000, 16, 16), False),
        ((3000, 16, 16), True),
        ((1500, 24, 16), False),
        ((600, 20, 40), False),
    ],
    ids=str,
)
def test_medium_stacks_on_threads_give_the_same_bits(
    nthreads, split_counts, rng, dtype, shape, hermitian
):
    """The certified stacked inverses (``batched.py``) run their chunks on threads."""
    a, _ = _inputs(rng, dtype, shape)
    nthreads(1)
    one = pi.pinv(a, hermitian=hermitian, return_rank=True)
    assert one.method == "batched"
    nthreads(2)
    split = split_counts()
    many = pi.pinv(a, hermitian=hermitian, return_rank=True)
    assert split and max(split) == 2
    np.testing.assert_array_equal(one.pinv, many.pinv)
    np.testing.assert_array_equal(one.rank, many.rank)
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    a64 = a.astype(wide)
    if hermitian:
        low = np.tril(a64)
        a64 = low + np.conj(np.swapaxes(np.tril(a64, -1), -1, -2))
        a64 = np.where(np.eye(shape[1], dtype=bool), a64.real, a64)
    ref = np.linalg.pinv(a64, rtol=max(shape[-2:]) * np.finfo(dtype).eps)
    keep = np.linalg.cond(a64) < 1e3
    err = np.linalg.norm(many.pinv - ref, axis=(-2, -1)) / np.linalg.norm(ref, axis=(-2, -1))
    tol = 1e-3 if np.dtype(dtype) == np.float32 else 1e-10
    assert np.all(err[keep] <= tol)
