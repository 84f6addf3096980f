"""Batches of small matrices: pseudoinverse's Jacobi kernel against NumPy, PyTorch, JAX, MLX.

    python benchmarks/bench_small.py            # 1e4 matrices per case, under a minute
    python benchmarks/bench_small.py --full     # the issue's table: 1e5 (16x16: 1e4, 64x64: 1e3)
    python benchmarks/bench_small.py --threads default   # every library's default threads

Every library runs on ONE thread unless ``--threads default``: BLAS/LAPACK through
threadpoolctl, ``torch.set_num_threads(1)``, XLA's Eigen pool and intra-op parallelism
off (set before JAX is imported), MLX on its CPU stream, numba single-threaded.
Times are medians of repeats (first call, compile included, excluded; the kernels load
in the calling thread, ``PSEUDOINVERSE_KERNELS=sync``). ``ratio`` is
the time of the faster of numpy.linalg.pinv and torch.linalg.pinv over ours; ``floor``
is the memory-bandwidth bound, bytes in + out over the measured memcpy bandwidth.

``ours`` is the public ``pseudoinverse.pinv(a)`` (``method="auto"``, validation and
finite check included); ``path`` names what "auto" chose: ``jacobi`` (the compiled
kernel), ``batched`` (certified stacked inverses, else the SVD per matrix) or ``svd``.

Some machines set ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``, which slow NumPy's OpenBLAS;
for a fair comparison run ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from harness import median_time

ONE_THREAD_ENV = {
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
}

CASES = [(3, 3), (4, 4), (6, 7), (8, 8), (16, 16), (64, 64)]
DTYPES = ["float64", "float32", "complex128"]


def batch_size(m: int, n: int, full: bool) -> int:
    if max(m, n) >= 64:
        return 1000 if full else 200
    if max(m, n) >= 16:
        return 10_000 if full else 2000
    return 100_000 if full else 10_000


def memcpy_bandwidth(np) -> float:
    """Bytes per second of a large copy (read + write counted)."""
    src = np.ones(32 * 2**20 // 8)
    dst = np.empty_like(src)
    t = median_time(lambda: np.copyto(dst, src), 7)
    return 2 * src.nbytes / t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="the full-size table (1e5 matrices)")
    parser.add_argument("--threads", choices=["1", "default"], default="1")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    if args.threads == "1":
        os.environ.update(ONE_THREAD_ENV)  # before numpy, jax, numba are imported
    # the first call loads the kernels in the calling thread (the default policy serves
    # it by LAPACK while they load, and a cold load could outlast the repeats)
    os.environ.setdefault("PSEUDOINVERSE_KERNELS", "sync")

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    import numpy as np
    from threadpoolctl import threadpool_limits

    if args.threads == "1":
        threadpool_limits(1)
    libs = {}
    try:
        import torch

        if args.threads == "1":
            torch.set_num_threads(1)
        libs["torch"] = torch
    except ImportError:
        pass
    try:
        import jax

        jax.config.update("jax_enable_x64", True)
        libs["jax"] = jax
    except ImportError:
        pass
    try:
        import mlx.core as mx

        libs["mlx"] = mx
    except ImportError:
        pass

    repeats = args.repeats or (3 if args.full else 5)
    bandwidth = memcpy_bandwidth(np)
    rng = np.random.default_rng(0)
    print(
        f"threads: {args.threads}; memcpy bandwidth {bandwidth / 1e9:.1f} GB/s; "
        f"medians of {repeats}; times in ms"
    )
    cols = [
        "case",
        "dtype",
        "batch",
        "numpy",
        "torch",
        "jax",
        "mlx",
        "ours",
        "path",
        "ratio",
        "floor",
    ]
    print("  ".join(f"{c:>10}" for c in cols))
    for m, n in CASES:
        batch = batch_size(m, n, args.full)
        for dtype in DTYPES:
            a = rng.standard_normal((batch, m, n))
            if dtype.startswith("complex"):
                a = a + 1j * rng.standard_normal((batch, m, n))
            a = np.ascontiguousarray(a.astype(dtype))
            t, path = time_case(np, libs, a, repeats)
            best = min(t["numpy"], t.get("torch", np.inf))
            floor = 2 * a.nbytes / bandwidth
            row = [f"{m}x{n}", dtype, str(batch)]
            for lib in ["numpy", "torch", "jax", "mlx", "ours"]:
                row.append(f"{t[lib] * 1e3:.1f}" if lib in t else "n/a")
            row += [path, f"{best / t['ours']:.1f}x", f"{floor * 1e3:.2f}"]
            print("  ".join(f"{c:>10}" for c in row), flush=True)


def time_case(np, libs: dict, a, repeats: int) -> tuple[dict, str]:
    """Median seconds per library for one stack ``a``, and the path ours took."""
    import pseudoinverse as pi
    from pseudoinverse._methods import choose

    t = {"numpy": median_time(lambda: np.linalg.pinv(a), repeats)}
    if "torch" in libs:
        torch = libs["torch"]
        ta = torch.from_numpy(a)
        t["torch"] = median_time(lambda: torch.linalg.pinv(ta), repeats)
    if "jax" in libs:
        jax = libs["jax"]
        ja = jax.numpy.asarray(a)
        f = jax.jit(jax.numpy.linalg.pinv)
        t["jax"] = median_time(lambda: f(ja).block_until_ready(), repeats)
    if "mlx" in libs and a.dtype == np.float32:  # MLX's pinv: float32 only
        mx = libs["mlx"]
        ma = mx.array(a)
        t["mlx"] = median_time(lambda: mx.eval(mx.linalg.pinv(ma, stream=mx.cpu)), repeats)
    path = choose("auto", False, a.shape, a.dtype)  # what the public pinv runs
    t["ours"] = median_time(lambda: pi.pinv(a), repeats)
    return t, path


if __name__ == "__main__":
    main()
