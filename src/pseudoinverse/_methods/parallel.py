"""Stack kernels across the machine's cores: chunks of the batch on threads.

The compiled stack kernels (``_kernels``) release the GIL (``nogil=True``) and compute
each member independently of the others, so a stack is split along its batch axis into
one chunk per thread, each chunk's kernel call writing its slice of the output. The
chunk boundaries are multiples of the kernel's block of lanes, so every member is
computed in the same lane position, and the result is bit-identical to one call's
whatever the number of threads.

The number of threads is the first of ``PSEUDOINVERSE_NUM_THREADS``,
``NUMBA_NUM_THREADS`` and ``OMP_NUM_THREADS`` that is set (so a process limited to one
thread stays on one), else the CPUs this process may run on; a stack gets at most one
thread per ``MIN_WORK`` of work (members times ``max(m, n) min(m, n)^2``), so a small
stack stays on the calling thread. BLAS is not called inside these kernels.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np

_ENV = ("PSEUDOINVERSE_NUM_THREADS", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS")
_CAP = 64
# One thread per this much work (members x p q^2): about 0.4 ms of a 6 x 7 kernel, where
# handing a chunk to a thread (tens of microseconds) costs a few percent.
MIN_WORK = 120_000

_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def threads() -> int:
    """The threads the stack kernels may use (see the module docstring)."""
    for var in _ENV:
        value = os.environ.get(var, "").strip()
        if value:
            try:
                return max(1, min(_CAP, int(value)))
            except ValueError:
                continue  # a malformed value is another library's concern: the next one
    try:
        return max(1, min(_CAP, len(os.sched_getaffinity(0))))
    except AttributeError:  # not on Linux
        return max(1, min(_CAP, os.cpu_count() or 1))


def chunks(nbatch: int, work: float, align: int) -> list[slice]:
    """The batch's chunks: one per thread (at most one per ``MIN_WORK``), boundaries at
    multiples of ``align``."""
    n = min(threads(), int(work // MIN_WORK), -(-nbatch // max(align, 1)))
    if n <= 1:
        return [slice(0, nbatch)]
    cuts = [min(nbatch, round(nbatch * i / n / align) * align) for i in range(n + 1)]
    cuts[-1] = nbatch
    return [slice(lo, hi) for lo, hi in pairwise(cuts) if hi > lo]


def over_batch(
    kernel: Callable[..., Any],
    args: Sequence[Any],
    batched: Sequence[int],
    work: float,
    align: int,
    outputs: Sequence[int] = (),
) -> list[tuple[slice, Any]]:
    """``kernel(*args)``, the arguments at the positions ``batched`` (arrays whose first
    axis is the batch, outputs included) sliced into :func:`chunks`, one thread a chunk
    (the first on the calling thread); ``[(chunk, kernel's return value)]``. A kernel's
    exception is raised here.

    The arguments at the positions ``outputs`` (fresh, C-contiguous outputs) have their
    pages touched by the thread that fills them before its kernel runs: a large fresh
    array is mapped lazily, and the kernels' own first writes to its pages, from two
    threads at once, ran one after the other here (1e5 x 6x7 float64: 85 ms on two
    threads, as on one; 43 ms with the pages touched first)."""
    nbatch = args[batched[0]].shape[0]
    parts = chunks(nbatch, work, align)

    def call(part: slice) -> Any:
        sub = list(args)
        for i in batched:
            sub[i] = args[i][part]
        for i in outputs:
            touch(sub[i])
        return kernel(*sub)

    return list(zip(parts, over_parts(call, parts), strict=True))


def over_ranges(body: Callable[[slice], None], n: int, work: float) -> None:
    """``body(part)`` for contiguous parts of ``range(n)`` (loop indices), one thread a
    part (at most one per ``MIN_WORK`` of the total ``work``). For loops whose bodies
    release the GIL (NumPy's LAPACK gufuncs on chunks of a stack); ``body`` runs its
    part's iterations itself, so that its temporaries live from one to the next (freed
    at each iteration's end, glibc gave their pages back and faulted them in again:
    7% slower on a 20000 x 16x16 stack)."""
    over_parts(body, chunks(n, work, 1))


def over_parts(call: Callable[[slice], Any], parts: list[slice]) -> list[Any]:
    """``[call(part) for part in parts]``: the first on the calling thread, the others on
    the pool; waits for all, raising the first error (also for parts a caller cut)."""
    if len(parts) == 1:
        return [call(parts[0])]
    pool = _executor(len(parts) - 1)
    futures = [pool.submit(call, part) for part in parts[1:]]
    try:
        first = call(parts[0])
    finally:
        rest = [f.result() for f in futures]
    return [first, *rest]


def touch(x: np.ndarray) -> None:
    """Write a zero into every 4 KiB page of the C-contiguous output ``x``."""
    flat = x.reshape(-1)
    flat[:: max(1, 4096 // x.itemsize)] = 0


def _executor(n: int) -> ThreadPoolExecutor:
    """The process's pool of at least ``n`` worker threads (a new one after ``fork``,
    whose child has none of the parent's threads)."""
    global _pool, _pool_size
    with _lock:
        if _pool is None or _pool_size < n:
            old = _pool
            _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="pseudoinverse")
            _pool_size = n
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def _forget_pool() -> None:
    global _pool, _pool_size, _lock
    _pool, _pool_size, _lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def stack_work(shape: tuple[int, ...]) -> float:
    """Members times ``max(m, n) min(m, n)^2`` of a ``(B, m, n)`` stack."""
    nbatch, m, n = shape[-3:]
    return float(nbatch) * max(m, n) * min(m, n) ** 2 if np.prod(shape) else 0.0
