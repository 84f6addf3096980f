"""Tall-and-skinny Dask matrices on ``dask.distributed``: TSQR against Dask's ``lstsq``.

    python benchmarks/bench_dask.py              # 1e7 x 32 float64 (2.56 GB), minutes
    python benchmarks/bench_dask.py --small      # 1e6 x 32, under a minute
    python benchmarks/bench_dask.py --threads default

The matrix is generated ON a ``LocalCluster`` of two worker processes (one thread each),
in chunks of 250 000 rows, from a seeded ``dask.array.random`` generator, and never
persisted: every timed call generates it again, so each time includes the generation
(its time alone, ``A.sum()``, is the first row: subtract it to compare the solvers).
Each worker's memory limit is below the matrix's size, so no worker can hold it.

Rows of the timing table: medians of ``--repeats`` calls computed to completion (one
untimed warm-up each, then the calls interleaved repeat by repeat), ``ratio`` = this
call's time / ``dask.array.linalg.lstsq``'s (target <= 1.2 for ``pinv_solve``).
``pinv(A) @ A`` is computed lazily to its 32 x 32 product (the 32 x 1e7 ``pinv(A)``
never materializes), its error ``max |X A - I|``.
Each worker's peak RSS is polled (``client.run`` every 0.1 s); a worker that was
restarted (killed) or spilled to disk fails the run.

The accuracy table: a 2e5 x 32 matrix ``A = G M`` generated on the cluster (``G``
Gaussian, ``M`` with singular values log-spaced from 1 to 1e-8: ``kappa(A)`` about 1e8,
printed), chunked by 25 000 rows and gathered once for the reference; ``b = A x``
(consistent) and a random ``b`` (a residual: its least-squares solution is sensitive as
``kappa**2``); the error relative to NumPy's in-memory ``pinv(A) @ b`` (LAPACK SVD), target <= 1e-6.
"""

from __future__ import annotations

import argparse
import threading
import time

import harness


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--small", action="store_true", help="1e6 x 32 instead of 1e7 x 32")
    p.add_argument("--threads", choices=["one", "default"], default="one")
    p.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    args = p.parse_args()
    if args.threads == "one":
        harness.limit_env(1)
    return args


class PeakRSS:
    """Each worker's peak resident set, polled in a background thread."""

    def __init__(self, client, every: float = 0.1) -> None:
        self.client, self.every = client, every
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                rss = self.client.run(lambda: psutil.Process().memory_info().rss)
            except Exception:  # a worker going away: the address check reports it
                rss = {}
            for w, v in rss.items():
                self.peak[w] = max(self.peak.get(w, 0), v)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def spilled(client) -> int:
    """Bytes spilled to disk, over the workers (the scheduler's worker metrics)."""
    total = 0
    for w in client.scheduler_info()["workers"].values():
        total += int(w.get("metrics", {}).get("spilled_bytes", {}).get("disk", 0))
    return total


def accuracy(client) -> list[list]:
    import dask.array as da
    import numpy as np

    import pseudoinverse as pi

    rng = np.random.default_rng(11)
    m, n = 200_000, 32
    # A = G M on the cluster (G Gaussian, kappa(G) ~ 1.03: kappa(A) ~ kappa(M) = 1e8),
    # gathered to the client only for NumPy's reference (no 51 MB graph to send)
    v, _ = np.linalg.qr(rng.standard_normal((n, n)))
    w, _ = np.linalg.qr(rng.standard_normal((n, n)))
    mix = (v * np.logspace(0, -8, n)) @ w.T
    A = (da.random.default_rng(12).standard_normal((m, n), chunks=(25_000, n)) @ mix).persist()
    a = A.compute()
    s = np.linalg.svd(a, compute_uv=False)
    print(f"\naccuracy: kappa(A) = {s[0] / s[-1]:.3g}")
    rows = []
    for label, b in (("b = A x", a @ rng.standard_normal(n)), ("random b", rng.standard_normal(m))):
        ref = np.linalg.pinv(a) @ b
        B = da.from_array(b, chunks=25_000)
        ours = pi.pinv_solve(A, B).compute()
        theirs = da.linalg.lstsq(A, B)[0].compute()
        norm = np.linalg.norm(ref)
        e_ours = np.linalg.norm(ours - ref) / norm
        e_lstsq = np.linalg.norm(theirs - ref) / norm
        rows.append(
            [label, f"{e_ours:.2e}", f"{e_lstsq:.2e}", "PASS" if e_ours <= 1e-6 else "MISS"]
        )
    gram = (pi.pinv(A) @ A).compute()
    rows.append(["pinv(A) @ A - I", f"{np.abs(gram - np.eye(n)).max():.2e}", "-", "-"])
    return rows


def main() -> None:
    args = parse()
    import dask.array as da
    import numpy as np
    from distributed import Client, LocalCluster

    import pseudoinverse as pi

    m, n, rows = (1_000_000 if args.small else 10_000_000), 32, 250_000
    nbytes = m * n * 8
    limit = int(min(2.3 * 2**30, 0.92 * nbytes)) if not args.small else int(0.9 * nbytes)
    limit = max(limit, 600 * 2**20)  # --small: room for the worker process itself
    env = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"} if args.threads == "one" else {}
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        memory_limit=limit,
        dashboard_address=None,
        env=env,
    )
    client = Client(cluster)
    workers = set(client.scheduler_info()["workers"])
    print(
        f"A: {m} x {n} float64 ({nbytes / 1e9:.2f} GB), chunks of {rows} rows; "
        f"2 workers, memory limit {limit / 2**30:.2f} GiB each ({limit / nbytes:.0%} of A)"
    )
    print(f"threads: {args.threads}; {harness.blas_info()}")

    gen = da.random.default_rng(2026)
    A = gen.standard_normal((m, n), chunks=(rows, n))
    b = gen.standard_normal(m, chunks=rows)
    calls = {
        "generate A (A.sum())": lambda: A.sum().compute(),
        "pi.pinv_solve(A, b)": lambda: pi.pinv_solve(A, b).compute(),
        "da.linalg.lstsq(A, b)[0]": lambda: da.linalg.lstsq(A, b)[0].compute(),
        "pi.pinv(A) @ A": lambda: (pi.pinv(A) @ A).compute(),
        "pi.damped_pinv_solve(A, 0.1, b)": lambda: pi.damped_pinv_solve(A, 0.1, b).compute(),
    }
    # one untimed warm-up each, then the calls interleaved repeat by repeat (the machine's
    # load drifts: every call sees the same drift), each watched for peak worker RSS
    results, samples, peaks = {}, {name: [] for name in calls}, dict.fromkeys(calls, 0)

    def watched(name):
        with PeakRSS(client) as mon:
            t0 = time.perf_counter()
            out = calls[name]()
            took = time.perf_counter() - t0
        peaks[name] = max(peaks[name], *mon.peak.values(), 0)
        return out, took

    for name in calls:
        results[name], _ = watched(name)
    for r in range(args.repeats):
        for name in calls:
            samples[name].append(watched(name)[1])
        print(
            f"  repeat {r + 1}: " + ", ".join(f"{v[-1]:.1f}" for v in samples.values()), flush=True
        )
    times = {name: float(np.median(v)) for name, v in samples.items()}
    gram = results["pi.pinv(A) @ A"]
    x_ours, x_lstsq = results["pi.pinv_solve(A, b)"], results["da.linalg.lstsq(A, b)[0]"]
    base = times["da.linalg.lstsq(A, b)[0]"]
    table = []
    for name in calls:
        ratio = times[name] / base
        target = "-"
        if name.startswith("pi.pinv_solve"):
            target = "PASS" if ratio <= 1.2 else "MISS"
        table.append(
            [name, f"{times[name]:.2f}", f"{ratio:.2f}", f"{peaks[name] / 2**30:.2f}", target]
        )
    print()
    print(harness.table(["call", "median s", "/ lstsq", "peak worker RSS GiB", "<= 1.2x"], table))
    agree = np.linalg.norm(x_ours - x_lstsq) / np.linalg.norm(x_lstsq)
    print(
        f"\nmax |pinv(A) A - I| = {np.abs(gram - np.eye(n)).max():.2e}; "
        f"||x_ours - x_lstsq|| / ||x_lstsq|| = {agree:.2e}"
    )
    now = set(client.scheduler_info()["workers"])
    disk = spilled(client)
    print(f"workers killed or restarted: {len(workers - now)}; spilled to disk: {disk} bytes")
    print()
    print(
        harness.table(
            ["kappa = 1e8, 2e5 x 32", "pi.pinv_solve", "da lstsq", "<= 1e-6"], accuracy(client)
        )
    )
    client.close()
    cluster.close()
    if workers - now or disk:
        raise SystemExit("a worker was killed or spilled: the memory claim failed")


if __name__ == "__main__":
    main()
