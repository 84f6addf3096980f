"""Overview: ``pseudoinverse.pinv`` against numpy, torch, JAX and MLX, side by side.

    python benchmarks/bench_pinv.py            # small sizes, one thread, < 1 minute
    python benchmarks/bench_pinv.py --full     # larger sizes
    python benchmarks/bench_pinv.py --threads default

Each cell is ``peer time / pseudoinverse time`` (> 1: pseudoinverse is faster), medians
of repeats in one run; the last column is the ratio to the faster of numpy and torch.
See ``bench_small.py`` (batches of small matrices) and ``bench_large.py`` (large ones)
for the issue-specific tables.
"""

from __future__ import annotations

import harness

args = harness.parse(__doc__)
libs = harness.setup_threads(args)

import numpy as np  # noqa: E402

import pseudoinverse as pi  # noqa: E402

PEERS = ["numpy", "torch", "jax", "mlx"]


def cases(full: bool):
    rng = np.random.default_rng(0)
    k = 10 if full else 1
    yield "batch 4x4", rng.standard_normal((10_000 * k, 4, 4)), False
    yield "batch 4x4 f32", rng.standard_normal((10_000 * k, 4, 4)).astype(np.float32), False
    yield "batch 6x7", rng.standard_normal((10_000 * k, 6, 7)), False
    yield "batch 16x16", rng.standard_normal((1_000 * k, 16, 16)), False
    n = 1000 if full else 400
    yield f"{n}x{n}", rng.standard_normal((n, n)), False
    yield f"{n}x{n} f32", rng.standard_normal((n, n)).astype(np.float32), False
    yield f"{4 * n}x{n // 2} tall", rng.standard_normal((4 * n, n // 2)), False
    yield f"{n // 2}x{4 * n} wide", rng.standard_normal((n // 2, 4 * n)), False
    b = rng.standard_normal((n, n))
    yield f"{n}x{n} hermitian", b + b.T, True
    c = rng.standard_normal((n // 2, n // 2)) + 1j * rng.standard_normal((n // 2, n // 2))
    yield f"{n // 2}x{n // 2} complex", c, False


def main() -> None:
    harness.banner(args)
    rows = []
    for name, a, herm in cases(args.full):
        ours = harness.median_time(lambda a=a, h=herm: pi.pinv(a, hermitian=h), args.repeats)
        times = {
            k: harness.median_time(f, args.repeats)
            for k, f in harness.peers(libs, a, hermitian=herm).items()
        }
        ratios = [times[p] / ours if p in times else None for p in PEERS]
        best = min(times[p] for p in ("numpy", "torch") if p in times)
        rows.append([name, str(a.dtype), f"{ours * 1e3:.3g} ms", *ratios, best / ours])
    print(harness.table(["case", "dtype", "ours", *PEERS, "vs best np/torch"], rows))


if __name__ == "__main__":
    main()
