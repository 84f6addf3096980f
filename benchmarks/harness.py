"""Shared benchmark plumbing: thread limits, the peers' pinv, median timing, the table.

Import this module before NumPy/torch/JAX so that the thread limits apply: with
``--threads 1`` (the default) every library runs on one thread (OpenBLAS/MKL through
threadpoolctl, ``torch.set_num_threads(1)``, XLA's Eigen pool off, numba one thread).

Timings are medians of repeats; tables show ratios (peer time / pseudoinverse time, so
> 1 means pseudoinverse is faster), because these machines are noisy.

For the fairest NumPy numbers, run without the OpenBLAS core-type override some machines
set: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/...``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

# Steady-state timings: the compiled routes load at their first use, in the calling
# thread, instead of LAPACK serving while they load in the background (the default
# policy, whose first calls bench_coldstart.py measures).
os.environ.setdefault("PSEUDOINVERSE_KERNELS", "sync")


def parse(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None):
    """Common flags (``--threads``, ``--repeats``, ``--full``) and the thread set-up."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", default="1", help="'1' (default) or 'default'")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per cell (median)")
    p.add_argument("--full", action="store_true", help="the issue's full sizes")
    if extra:
        extra(p)
    args = p.parse_args()
    if args.threads != "default":
        limit_env(int(args.threads))
    return args


def limit_env(n: int = 1) -> None:
    """Thread-count variables for OpenMP, OpenBLAS, MKL, numba and XLA (before importing)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = str(n)
    os.environ["XLA_FLAGS"] = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


def rerun(script: str, settings: list[str], argv: list[str]) -> int:
    """Run ``script argv --threads S`` for each setting S in a fresh process (thread limits
    must be set before the libraries load), its output streamed; the worst exit status."""
    status = 0
    for s in settings:
        print(f"\n=== threads: {s} ===", flush=True)
        done = subprocess.run([sys.executable, script, *argv, "--threads", s], check=False)
        status = max(status, done.returncode)
    return status


def setup_threads(args) -> dict[str, Any]:
    """Apply limits to the imported libraries; returns the peers' modules (None if absent)."""
    import numpy as np
    import threadpoolctl

    libs: dict[str, Any] = {"numpy": np}
    if args.threads != "default":
        threadpoolctl.threadpool_limits(int(args.threads))
    try:
        import torch

        if args.threads != "default":
            torch.set_num_threads(int(args.threads))
        libs["torch"] = torch
    except ImportError:
        libs["torch"] = None
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        libs["jax"] = jax
    except ImportError:
        libs["jax"] = None
    try:
        import mlx.core as mx

        libs["mlx"] = mx
    except ImportError:
        libs["mlx"] = None
    return libs


def blas_info() -> str:
    import threadpoolctl

    rows = [
        f"{i['internal_api']} {i.get('version')} ({i.get('architecture')}, "
        f"{i['num_threads']} threads)"
        for i in threadpoolctl.threadpool_info()
    ]
    return "; ".join(rows)


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeats`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_times(
    fns: dict[str, Callable[[], Any]],
    repeats: int,
    results: dict[str, Any] | None = None,
    min_sample: float = 2e-3,
) -> dict[str, float]:
    """Median seconds per call of each ``fn``, the functions interleaved repeat by repeat.

    One warm-up call each (compiles, caches) is not timed; a call faster than
    ``min_sample`` is timed in a loop long enough to read (sized by a second call when
    the first took under a second). ``results`` (if given) receives each first result.
    """
    loops = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        out = fn()
        t = time.perf_counter() - t0
        if results is not None:
            results[name] = out
        if t < 1.0:
            t0 = time.perf_counter()
            fn()
            t = time.perf_counter() - t0
        loops[name] = max(1, min(1000, int(min_sample / max(t, 1e-9))))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / loops[name])
    return {name: statistics.median(v) for name, v in times.items()}


def peak_rss_growth(fn: Callable[[], Any]) -> int:
    """Bytes by which the peak resident set grows during ``fn()`` (Linux ``/proc``).

    Run it in a fresh process: it resets the high-water mark to the current RSS first.
    """

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(f"{key} not in /proc/self/status")

    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = status("VmRSS")
    out = fn()
    peak = status("VmHWM")
    del out
    return peak - base


def peers(libs: dict[str, Any], a, rtol: float | None = None, hermitian: bool = False):
    """``{name: zero-argument callable}`` running each peer's pinv on ``a`` (NumPy data).

    The data are converted once, outside the timed call; JAX is jitted and blocked on,
    MLX evaluated. A peer that cannot take the dtype is left out.
    """
    import numpy as np

    out: dict[str, Callable[[], Any]] = {
        "numpy": lambda: np.linalg.pinv(a, rtol=rtol, hermitian=hermitian)
    }
    torch = libs.get("torch")
    if torch is not None:
        t = torch.from_numpy(a)
        out["torch"] = lambda: torch.linalg.pinv(t, rtol=rtol, hermitian=hermitian)
    jax = libs.get("jax")
    if jax is not None:
        import jax.numpy as jnp

        j = jnp.asarray(a)
        f = jax.jit(lambda z: jnp.linalg.pinv(z, rtol=rtol, hermitian=hermitian))
        out["jax"] = lambda: f(j).block_until_ready()
    mx = libs.get("mlx")
    if mx is not None and a.dtype == np.float32 and not hermitian:
        m = mx.array(a)
        out["mlx"] = lambda: mx.eval(mx.linalg.pinv(m, stream=mx.cpu))
    return out


def table(header: list[str], rows: list[list[Any]]) -> str:
    """A plain aligned text table."""
    cells = [[str(c) for c in header]] + [[_fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(c: Any) -> str:
    if c is None:
        return "n/a"
    if isinstance(c, float):
        return f"{c:.2f}" if c >= 0.1 else f"{c:.3g}"
    return str(c)


def banner(args) -> None:
    print(f"python {sys.version.split()[0]}; threads={args.threads}; repeats={args.repeats}")
    print(f"BLAS: {blas_info()}")
