"""Large single matrices: ``pseudoinverse.pinv`` against NumPy, PyTorch and JAX.

Usage::

    python benchmarks/bench_large.py              # small sizes, under 2 minutes
    python benchmarks/bench_large.py --full       # the issue-5 table (2000^2, 500x20000, ...)
    python benchmarks/bench_large.py --threads default

Every library runs at one thread by default (threadpoolctl for OpenBLAS/MKL/OpenMP,
``torch.set_num_threads(1)``, XLA flags for JAX); ``--threads default`` leaves them
alone. Times are medians of ``--repeats`` runs, the libraries interleaved run by run.
NumPy runs with ``rtol=None`` (the Array API default ``max(m, n) eps``, the rule of
torch and of ours). ``ratio`` is the faster of NumPy and torch divided by ours (for
Hermitian rows, NumPy's ``hermitian=True`` path, the issue's target). ``%dgemm`` is
each library's rate as a share of the measured dgemm rate (``2000^2``, or the small
size): the peers' work is an SVD and a product (``6 m n^2 + 20 n^3`` for the thin SVD,
Golub & Van Loan Table 8.6.1, plus ``2 m n^2``; ``m >= n``), ours that of the path it
takes (the ``own`` counts in ``_cases``). The peak-memory rows run each library in a fresh
process and report ``(VmHWM - VmRSS before the call) / input bytes``.

Benchmark with ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/...``:
those variables, when set on a machine, can make NumPy's OpenBLAS pick slow kernels.
The BLAS libraries in use (threadpoolctl) are printed first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

FULL = {"sq": 2000, "wide": (500, 20000), "tall": (20000, 500), "rand": (5000, 50), "mem": 4000}
SMALL = {"sq": 600, "wide": (200, 6000), "tall": (6000, 200), "rand": (2000, 20), "mem": 1500}


_LIMITS = []  # keeps the threadpoolctl limiter alive


def _setup_threads(threads: str) -> None:
    if threads == "1":
        os.environ["XLA_FLAGS"] = (
            "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
        )
    import jax  # noqa: F401  (every BLAS loaded before the limits apply)
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    import torch

    import pseudoinverse  # noqa: F401

    if threads == "1":
        from threadpoolctl import threadpool_limits

        _LIMITS.append(threadpool_limits(1))
        torch.set_num_threads(1)


def _cases(sizes: dict) -> list[dict]:
    import numpy as np

    rng = np.random.default_rng(0)
    n = sizes["sq"]
    m_w, n_w = sizes["wide"]
    m_t, n_t = sizes["tall"]
    n_r, k_r = sizes["rand"]
    g = rng.standard_normal((n, n))
    lowrank = rng.standard_normal((n, n // 2)) @ rng.standard_normal((n // 2, n))
    sym = (g + g.T) / 2
    pd = g @ g.T / n + 0.1 * np.eye(n)
    rand = rng.standard_normal((n_r, k_r)) @ rng.standard_normal((k_r, n_r))
    svd_sq = _svd_flops(n, n)
    # `own`: the flops of the path ours takes (LU 2n^3 + residual 2n^3; Gram + gemm 3pk^2;
    # wasted LU 2n^3/3 + SVD; eigh 9n^3 (Golub & Van Loan Table 8.6.1 counts 9n^3 for
    # the symmetric eigenproblem with vectors) + two syrk n^3; Cholesky + potri n^3 +
    # residual 2n^3; randomized: 2(POWER + 1) + 1 products with the sketch, about 8 n^2 l)
    return [
        dict(name=f"{n}x{n} full rank", a=g, target=3.0, own=4 * n**3),
        dict(
            name=f"{m_w}x{n_w} wide",
            a=rng.standard_normal((m_w, n_w)),
            target=2.5,
            own=3 * n_w * m_w**2,
        ),
        dict(
            name=f"{m_t}x{n_t} tall",
            a=rng.standard_normal((m_t, n_t)),
            target=1.5,
            own=3 * m_t * n_t**2,
        ),
        dict(name=f"{n}x{n} rank {n // 2} (SVD)", a=lowrank, target=1.0, own=2 * n**3 / 3 + svd_sq),
        dict(name=f"{n}x{n} sym. indefinite, herm.", a=sym, herm=True, target=1.0, own=10 * n**3),
        dict(name=f"{n}x{n} pos. definite, herm.", a=pd, herm=True, target=2.5, own=3 * n**3),
        dict(
            name=f"{n_r}x{n_r} rank {k_r}, randomized",
            a=rand,
            method="randomized",
            target=20,
            own=8 * n_r**2 * 2 * k_r,
        ),
    ]


def _svd_flops(m: int, n: int) -> float:
    m, n = max(m, n), min(m, n)
    return 6 * m * n * n + 20 * n**3 + 2 * m * n * n


def _runners(case: dict) -> dict:
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    import pseudoinverse as pi

    a, herm = case["a"], case.get("herm", False)
    method = case.get("method", "auto")
    t = torch.from_numpy(a)
    ja = jnp.asarray(a)
    jfn = jax.jit(jnp.linalg.pinv, static_argnames="hermitian")
    jfn(ja, hermitian=herm).block_until_ready()  # compile outside the timing
    return {
        "numpy": lambda: np.linalg.pinv(a, hermitian=herm, rtol=None),
        "torch": lambda: torch.linalg.pinv(t, hermitian=herm),
        "jax": lambda: jfn(ja, hermitian=herm).block_until_ready(),
        "ours": lambda: pi.pinv(a, hermitian=herm, method=method),
    }


def _time_case(case: dict, repeats: int) -> dict:
    runners = _runners(case)
    times: dict[str, list[float]] = {k: [] for k in runners}
    results = {}
    for _ in range(repeats):
        for name, fn in runners.items():
            t0 = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}, results


def _error(case: dict, ours, ref) -> float:
    import numpy as np

    ref = np.asarray(ref)
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


def _dgemm_rate(n: int) -> float:
    import numpy as np

    a = np.random.default_rng(1).standard_normal((n, n))
    a @ a
    t0 = time.perf_counter()
    a @ a
    return 2 * n**3 / (time.perf_counter() - t0) / 1e9


def _mem_child(lib: str, n: int, kind: str) -> None:
    """Fresh process: peak extra resident memory of one pinv call, in input sizes."""
    import numpy as np

    def status(key: str) -> int:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1]) * 1024
        raise RuntimeError(key)

    rng = np.random.default_rng(0)
    if kind == "full":
        a = rng.standard_normal((n, n))
    else:
        a = rng.standard_normal((n, n // 2)) @ rng.standard_normal((n // 2, n))
    if lib == "torch":
        import torch

        call = lambda: torch.linalg.pinv(torch.from_numpy(a))  # noqa: E731
    elif lib == "jax":
        import jax

        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp

        ja = jnp.asarray(a)
        call = lambda: jnp.linalg.pinv(ja).block_until_ready()  # noqa: E731
    elif lib == "ours":
        import pseudoinverse as pi

        call = lambda: pi.pinv(a)  # noqa: E731
    else:
        call = lambda: np.linalg.pinv(a, rtol=None)  # noqa: E731
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    base = status("VmRSS")
    x = call()
    print(json.dumps((status("VmHWM") - base) / a.nbytes))
    del x


def _mem_row(n: int, kind: str) -> dict:
    out = {}
    for lib in ("numpy", "torch", "jax", "ours"):
        cmd = [sys.executable, __file__, "--mem-child", lib, str(n), kind]
        res = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:
            out[lib] = json.loads(res.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            out[lib] = float("nan")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's full sizes")
    parser.add_argument("--threads", choices=("1", "default"), default="1")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--only", default="", help="run the cases whose name contains this")
    parser.add_argument("--no-mem", action="store_true", help="skip the peak-memory rows")
    parser.add_argument("--mem-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mem_child:
        lib, n, kind = args.mem_child
        _mem_child(lib, int(n), kind)
        return
    _setup_threads(args.threads)
    import jax

    jax.config.update("jax_enable_x64", True)
    import numpy as np
    import torch
    from threadpoolctl import threadpool_info

    sizes = FULL if args.full else SMALL
    repeats = args.repeats or (3 if args.full else 5)
    for pool in threadpool_info():
        print(
            f"# {pool['internal_api']:8s} {pool.get('architecture') or '':10s} "
            f"threads={pool['num_threads']} {os.path.basename(pool['filepath'])}"
        )
    print(
        f"# torch {torch.__version__} threads={torch.get_num_threads()}, numpy "
        f"{np.__version__}, jax {jax.__version__}; OPENBLAS_CORETYPE="
        f"{os.environ.get('OPENBLAS_CORETYPE')}, OPENBLAS_L2_SIZE="
        f"{os.environ.get('OPENBLAS_L2_SIZE')}; medians of {repeats}"
    )
    rate = _dgemm_rate(sizes["sq"])
    print(f"# dgemm {sizes['sq']}^2: {rate:.1f} GFLOP/s")
    head = f"{'case':34s} {'numpy':>8s} {'torch':>8s} {'jax':>8s} {'ours':>8s} {'ratio':>6s} "
    print(
        head + f"{'target':>6s} {'%dgemm: numpy':>13s} {'torch':>6s} {'jax':>6s} {'ours':>6s} "
        f"{'err vs numpy':>12s}"
    )
    for case in _cases(sizes):
        if args.only not in case["name"]:
            continue
        t, res = _time_case(case, repeats)
        herm = case.get("herm", False)
        best = t["numpy"] if herm else min(t["numpy"], t["torch"])
        ratio = best / t["ours"]
        svd = _svd_flops(*case["a"].shape) / 1e9  # the peers' work (an SVD and a product)
        pct = {k: 100 * svd / t[k] / rate for k in ("numpy", "torch", "jax")}
        pct["ours"] = 100 * case["own"] / 1e9 / t["ours"] / rate  # its own path's work
        err = _error(case, res["ours"], res["numpy"])
        ok = "" if ratio >= case["target"] else " MISSED"
        print(
            f"{case['name']:34s} {t['numpy']:8.3f} {t['torch']:8.3f} {t['jax']:8.3f} "
            f"{t['ours']:8.3f} {ratio:6.2f} {case['target']:6.1f} {pct['numpy']:12.0f}% "
            f"{pct['torch']:5.0f}% {pct['jax']:5.0f}% {pct['ours']:5.0f}% {err:12.1e}{ok}"
        )
    n = sizes["mem"]
    for kind in () if args.no_mem else ("full", "rankdef"):
        mem = _mem_row(n, kind)
        print(
            f"{'peak mem ' + str(n) + '^2 ' + kind + ' (x input)':34s} "
            + " ".join(f"{mem[k]:8.2f}" for k in ("numpy", "torch", "jax", "ours"))
            + f" {'':6s} {4.0:6.1f}"
        )


if __name__ == "__main__":
    main()
