"""When ``"auto"`` may take a compiled route: LAPACK serves while the kernels load.

The compiled routes (the Jacobi kernels of ``jacobi.py``, the CholeskyQR2 and Gram
kernels of ``stacked_qr.py``) are numba functions: their first use in a process imports
numba (0.3-0.8 s) and loads them from numba's cache, or compiles them where the cache is
cold (seconds to tens of seconds per dtype). NumPy serves a first call on a batch in
milliseconds. So ``"auto"`` takes a compiled route only once it is loaded: the first call
that would take it starts loading it on one background thread, from a small copy of
that call's shape and dtype (the exact kernels and types the call needs; a cold cache is
compiled first in a child process, away from this process's GIL), and is served by LAPACK
(the SVD, eigh or their solve and damped forms, the routes ``"auto"`` takes for short
stacks); the calls after the load take the kernel. Results of both routes keep their
documented promises, and the rank is the SVD rule's on either (near the threshold the two
may decide a singular value differently, as two SVD implementations may).

The environment variable ``PSEUDOINVERSE_KERNELS`` sets the policy, read at each call:

* ``background`` (the default): as above.
* ``sync``: the first call loads (or compiles) the kernel itself and then uses it, so a
  process gets the same route for the same input from its first call (benchmarks and
  tests use this).
* ``lapack``: ``"auto"`` never takes a compiled route (numba is never imported).

A named method (``method="jacobi"``) always runs its kernel, loading it in the calling
thread. A kernel that fails to load is logged (logger ``"pseudoinverse"``, level
``WARNING``) and never tried again in the process; LAPACK serves instead.

Which routes are loaded changes only when a compute entry point calls :func:`refresh`,
so a call's reported method (``PinvResult.method``, looked up after the computation by
``chosen_name``) is the one that ran.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Hashable

_log = logging.getLogger("pseudoinverse")

_ENV = "PSEUDOINVERSE_KERNELS"
_POLICIES = ("background", "sync", "lapack")

_lock = threading.Lock()
_ready: set[Hashable] = set()  # loaded, as the compute entry points see it
_done: set[Hashable] = set()  # loaded by the worker, not yet seen (refresh moves them)
_failed: set[Hashable] = set()
_pending: set[Hashable] = set()
_jobs: list[tuple[Hashable, Callable[[], object], str | None]] = []
_worker: threading.Thread | None = None  # alive while jobs remain; then it ends


def policy() -> str:
    """The policy in force (``PSEUDOINVERSE_KERNELS``; an unknown value is an error)."""
    value = os.environ.get(_ENV, "background").strip().lower() or "background"
    if value not in _POLICIES:
        raise ValueError(f"{_ENV}={value!r}: expected one of {', '.join(_POLICIES)}")
    return value


def refresh() -> None:
    """Make the routes the worker has loaded since the last call visible (called by the
    compute entry points of ``_methods``, once per computation)."""
    if _done:
        with _lock:
            _ready.update(_done)
            _done.clear()


def loaded(key: Hashable, job: Callable[[], object], child: str | None = None) -> bool:
    """Whether the compiled route ``key`` may run now; if it is not loaded, have ``job``
    (which runs that route on a small sample, loading its kernels) load it according to
    the policy: on the worker thread (``background``, returns ``False``), here
    (``sync``, returns whether it loaded), or never (``lapack``).

    ``child`` is Python source that does what ``job`` does: in the background the worker
    runs it first in a child process, so that a cold cache is compiled there (numba
    writes it; the job then loads it), not under this process's GIL, where it would slow
    the calls LAPACK serves meanwhile (on 2 cores, 2x for a 1000 x 6x7 pinv)."""
    global _worker
    if key in _ready:
        return True
    mode = policy()
    if mode == "lapack" or key in _failed:
        return False
    if mode == "sync":
        _run(key, job)
        refresh()
        return key in _ready
    with _lock:
        if key in _pending or key in _done:
            return False
        _pending.add(key)
        _jobs.append((key, job, child))
        if _worker is None:
            _worker = threading.Thread(target=_work, name="pseudoinverse-kernels", daemon=True)
            _worker.start()
    return False


# The worker waits this long before its first job: the call that queued it (and the calls
# right after) run on LAPACK without a thread that takes the GIL (starting a process,
# importing numba) while they run.
START_DELAY = 0.25  # seconds


def _work() -> None:
    """Run the queued loading jobs one after the other, then end (no idle thread stays)."""
    global _worker
    time.sleep(START_DELAY)
    while True:
        with _lock:
            if not _jobs:
                _worker = None
                return
            key, job, child = _jobs.pop(0)
        if child is not None:
            _compile_apart(child)
        _run(key, job)


def _compile_apart(child: str) -> None:
    """Run ``child`` in a fresh interpreter with this one's path; any failure is left to
    the in-process job (which then compiles itself)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    try:
        subprocess.run(
            [sys.executable, "-c", child],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=900,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as err:
        _log.debug("the kernels' child process failed (%s); they load here", err)


def _run(key: Hashable, job: Callable[[], object]) -> None:
    try:
        job()
    except Exception as err:  # any failure to load: LAPACK serves from now on
        _log.warning("the compiled route %r failed to load (%s); LAPACK serves it", key, err)
        with _lock:
            _failed.add(key)
            _pending.discard(key)
        return
    with _lock:
        _done.add(key)
        _pending.discard(key)


def wait() -> None:
    """Block until every queued load has finished (tests and benchmarks), then refresh."""
    while True:
        with _lock:
            worker = _worker
        if worker is None:
            break
        worker.join()
    refresh()


def reset() -> None:
    """Forget what is loaded (tests of the policy; the kernels stay compiled)."""
    wait()
    with _lock:
        _ready.clear()
        _done.clear()
        _failed.clear()
