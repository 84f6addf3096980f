"""pinv_operator's block LSMR against separate ``scipy.sparse.linalg.lsmr`` calls.

    python benchmarks/bench_operator.py                  # the issue's case and the sweep
    python benchmarks/bench_operator.py --quick          # smaller stand-ins, < 1 minute
    python benchmarks/bench_operator.py --threads one    # one|default|both (default both)

The issue's case: 32 right-hand sides on a 100000 x 10000 CSR matrix with a million
nonzeros (``scipy.sparse.random(..., density=1e-3)`` plus the 100000 x 10000 identity,
which makes it full column rank and well-posed), ``atol = btol = 1e-10``, the same
``maxiter`` for both. ``pinv_operator(A) @ B`` solves all columns in lockstep; the
peer is ``[lsmr(A, B[:, j]) for j in range(k)]``, the natural SciPy loop. Each cell is
``SciPy time / our time`` (> 1: we are faster), the median of repeats after one
untimed call of ours (SciPy's loop is not warmed: it compiles nothing). ``max diff``
is the largest ``|x - x_scipy|_inf / |x_scipy|_inf`` over the columns, ``itn`` our
iterations (SciPy's in brackets, the extremes over the columns). ``--threads both``
runs the script twice, each in a fresh process: ``one`` (every library limited to one
thread before import: OpenBLAS through threadpoolctl, numba), then ``default``.
SciPy's sparse products are single-threaded either way.
"""

from __future__ import annotations

import argparse
import sys
import time

import harness

CASE = (100_000, 10_000, 1e-3, 32)  # m, n, density, k: the target case
TARGET = 4.0
SWEEP_SIZES = [(100_000, 10_000, 1e-3), (20_000, 2_000, 5e-3)]
SWEEP_K = [1, 4, 32, 128]
QUICK_SIZES = [(20_000, 2_000, 5e-3), (5_000, 500, 1e-2)]
ATOL = BTOL = 1e-10
MAXITER = 1000
SCIPY_BUDGET = 30.0  # seconds of SciPy's loop per cell: fewer repeats beyond it


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller stand-ins, < 1 minute")
    p.add_argument("--threads", choices=["one", "default", "both"], default="both")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per cell (median)")
    args = p.parse_args()
    if args.threads == "both":
        argv = ["--quick"] * args.quick + ["--repeats", str(args.repeats)]
        sys.exit(harness.rerun(__file__, ["one", "default"], argv))
    if args.threads == "one":
        harness.limit_env(1)  # before NumPy and numba load
    run(args)


def matrix(m: int, n: int, density: float):
    import scipy.sparse as sp

    a = sp.random(m, n, density=density, random_state=0, format="csr")
    return (a + sp.eye(m, n, format="csr")).tocsr()  # full column rank: well-posed


def cell(pi, a, b, repeats: int) -> dict:
    """Times (median s) and agreement of the block solve and of SciPy's loop."""
    import statistics

    import numpy as np
    from scipy.sparse.linalg import lsmr

    op = pi.pinv_operator(a, atol=ATOL, btol=BTOL, maxiter=MAXITER)
    ours = harness.median_time(lambda: op @ b, repeats)
    x = op @ b
    itn = op.info.itn
    times, refs = [], []
    for r in range(repeats):
        t0 = time.perf_counter()
        refs = [lsmr(a, b[:, j], atol=ATOL, btol=BTOL, maxiter=MAXITER) for j in range(b.shape[1])]
        times.append(time.perf_counter() - t0)
        if sum(times) * (r + 2) / (r + 1) > SCIPY_BUDGET:  # a long cell: fewer repeats
            break
    ref = np.stack([r[0] for r in refs], axis=1)
    scale = np.maximum(np.abs(ref).max(axis=0), 1e-300)
    diff = float((np.abs(x - ref).max(axis=0) / scale).max())
    ref_itn = np.array([r[2] for r in refs])
    return {
        "ours": ours,
        "scipy": statistics.median(times),
        "diff": diff,
        "itn": f"{itn.min()}-{itn.max()} [{ref_itn.min()}-{ref_itn.max()}]",
        "scipy repeats": len(times),
    }


def run(args) -> None:
    import numpy as np
    import scipy.sparse.linalg  # noqa: F401 - every library loaded before the limits apply

    import pseudoinverse as pi

    harness.setup_threads(argparse.Namespace(threads="1" if args.threads == "one" else "default"))
    harness.banner(argparse.Namespace(threads=args.threads, repeats=args.repeats))
    rng = np.random.default_rng(0)
    header = ["m", "n", "nnz", "k", "itn [scipy]", "scipy s", "ours s", "ratio", "max diff"]
    summary = []

    if not args.quick:
        m, n, density, k = CASE
        a = matrix(m, n, density)
        c = cell(pi, a, rng.standard_normal((m, k)), args.repeats)
        ratio = c["scipy"] / c["ours"]
        verdict = "PASS" if ratio >= TARGET else "MISS"
        print(f"\n## the issue's case: {k} right-hand sides, target >= {TARGET}x")
        row = [m, n, a.nnz, k, c["itn"], c["scipy"], c["ours"], ratio, c["diff"]]
        print(harness.table([*header, "target"], [[*row, f"{verdict} {TARGET}x"]]))
        summary.append(f"{m}x{n} nnz {a.nnz}, k={k}: {ratio:.2f}x ({verdict}), "
                       f"max diff {c['diff']:.1e}")  # fmt: skip

    print("\n## sweep: k right-hand sides, SciPy's loop / block LSMR")
    rows = []
    for m, n, density in QUICK_SIZES if args.quick else SWEEP_SIZES:
        a = matrix(m, n, density)
        for k in SWEEP_K:
            c = cell(pi, a, rng.standard_normal((m, k)), args.repeats)
            ratio = c["scipy"] / c["ours"]
            rows.append([m, n, a.nnz, k, c["itn"], c["scipy"], c["ours"], ratio, c["diff"]])
            print(f"  {m}x{n} k={k}: {ratio:.2f}x", file=sys.stderr, flush=True)
    print(harness.table(header, rows))
    if summary:
        print(f"\n## summary, threads {args.threads}")
        print("\n".join(summary))


if __name__ == "__main__":
    main()
