"""Shape sweep: ``pseudoinverse.pinv(a)`` against NumPy, PyTorch, JAX and MLX, two thread modes.

    python benchmarks/bench_sweep.py                # small grid, one thread then default threads
    python benchmarks/bench_sweep.py --full         # the whole grid, larger sizes (hours)
    python benchmarks/bench_sweep.py --threads one  # one mode only: one | default | both
    python benchmarks/bench_sweep.py --plot out.png --json out.json
    python benchmarks/bench_sweep.py --only 'batch|herm' --dtypes float64 --no-extras

Cases: single square matrices, tall and wide ones (aspect 2 to 400, and 100000x50 with
``--full``), stacks of small matrices, Hermitian inputs (``hermitian=True`` for every
library: NumPy, torch and JAX; MLX has no such flag) and a rank-deficient square ``B @ C``
(400^2 of rank 300; 2000^2 of rank 1500 with ``--full``), each in float32, float64 and
complex128. ``ours`` is the public ``pseudoinverse.pinv(a)`` (``method="auto"``,
validation and the finite check included); ``path`` is the ``method`` its
``return_rank=True`` result reports (``a->b`` when the warm-up call and a call after the
timing differ).

``--threads both`` (the default) re-launches this script twice, each in a fresh process
whose thread variables are set before anything is imported: ``one`` (bench_small's
ONE_THREAD_ENV, plus threadpoolctl and ``torch.set_num_threads(1)``), then ``default``
(those variables removed: every library's own default). Each mode prints its table and
worst cells; the parent then writes the heat map (rows: cases; columns: thread mode x
dtype; the colour is log2 of the ratio, centred at 1) and the raw JSON.

Times are medians of repeats, each library timed in its own block after untimed warm-up
calls (compiles, jit, caches; at default threads a ``--settle`` pause before each block:
torch's and XLA's thread pools spin after a call and stall whichever library runs next);
a call under 2 ms is timed in a loop. ``ratio`` is the median time of the faster of
numpy.linalg.pinv and torch.linalg.pinv over ours (> 1: we are faster); ``spread`` is the
lowest and highest of the per-repeat ratios, so noise is visible. ``dev`` is
max|ours - torch| / max|torch| (torch keeps the same singular values as we do; NumPy's
default ``rcond=1e-15`` may keep more). JAX is jitted and blocked on; MLX runs on its CPU
stream, float32 only, and not above 2000 rows or columns (its pinv forms the full U). A
slow cell gets fewer repeats (``--cell-budget`` seconds a cell).

Some machines set ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE``, which slow NumPy's OpenBLAS;
for a fair comparison run ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python ...``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from bench_small import ONE_THREAD_ENV

HERE = Path(__file__).resolve().parent
DTYPES = ["float32", "float64", "complex128"]
PEERS = ["numpy", "torch", "jax", "mlx"]
MLX_MAX = 2000  # mx.linalg.pinv forms the full m x m U: 100000^2 would be 80 GB
MIN_SAMPLE = 2e-3  # seconds: a faster call is timed in a loop this long


def grid(full: bool) -> list[dict]:
    """The cases: ``label``, ``shape`` (``(batch, m, n)``, batch 0 for one matrix),
    ``hermitian`` and ``rank`` (None: full rank)."""
    cases: list[dict] = []

    def add(label, batch, m, n, hermitian=False, rank=None):
        cases.append(dict(label=label, shape=(batch, m, n), hermitian=hermitian, rank=rank))

    squares = (
        [2, 4, 8, 16, 32, 64, 128, 256, 500, 1000, 2000, 4000] if full else [2, 8, 32, 128, 500]
    )
    for n in squares:
        add(f"{n}x{n}", 0, n, n)
    rect = [(500, 20), (400, 200), (2000, 50), (20000, 50)]
    rect += [(1000, 500), (8000, 20), (4000, 400), (4000, 2000), (100000, 50)] if full else []
    for m, n in rect:  # aspect 2 to 400 (100000x50: 2000), tall then wide
        add(f"{m}x{n} tall", 0, m, n)
        add(f"{n}x{m} wide", 0, n, m)
    if full:
        stacks = [(100_000, 2, 2), (100_000, 3, 3), (100_000, 4, 4), (100_000, 6, 7)]
        stacks += [(100_000, 7, 6), (100_000, 8, 8), (10_000, 12, 12), (10_000, 16, 16)]
        stacks += [(10_000, 8, 16), (2000, 32, 32), (2000, 48, 48), (500, 64, 64), (500, 96, 96)]
    else:
        stacks = [(5000, 2, 2), (5000, 4, 4), (5000, 6, 7), (5000, 7, 6)]
        stacks += [(1000, 16, 16), (200, 32, 32), (20, 96, 96)]
    for b, m, n in stacks:
        add(f"batch {b}x{m}x{n}", b, m, n)
    for n in [8, 128, 500, 2000] if full else [8, 128, 500]:
        add(f"{n}x{n} herm", 0, n, n, hermitian=True)
    for b, n in [(100_000, 4), (10_000, 16), (500, 64)] if full else [(5000, 4), (1000, 16)]:
        add(f"batch {b}x{n}x{n} herm", b, n, n, hermitian=True)
    n, r = (2000, 1500) if full else (400, 300)
    add(f"{n}x{n} rank {r}", 0, n, n, rank=r)
    return cases


def make(np, case: dict, dtype: str):
    """The case's input in ``dtype`` (C-contiguous; seeded by the case, not the dtype)."""
    rng = np.random.default_rng(zlib.crc32(case["label"].encode()))
    batch, m, n = case["shape"]
    lead = (batch,) if batch else ()
    cplx = dtype.startswith("complex")

    def gauss(*shape):
        x = rng.standard_normal((*lead, *shape))
        return x + 1j * rng.standard_normal((*lead, *shape)) if cplx else x

    if case["rank"] is not None:
        a = gauss(m, case["rank"]) @ gauss(case["rank"], n)
    else:
        a = gauss(m, n)
    if case["hermitian"]:
        a = (a + np.conj(np.swapaxes(a, -1, -2))) / 2
    return np.ascontiguousarray(a.astype(dtype))


def sample(fns: dict, repeats: int, budget: float, settle: float) -> tuple[dict, dict]:
    """Per-repeat seconds per call of each ``fn`` and each warm-up result.

    Each library is timed in its own block (its repeats back to back), after an untimed
    call and at least ``settle`` seconds: torch's OpenMP and XLA's pools spin for a while
    after a call and would slow whichever library ran next (20-50x for a 500x20 pinv at
    two threads, 50 ms after torch's call; gone after 300 ms). A library gets fewer
    repeats (at least 3) where ``repeats`` would exceed its share of ``budget``.
    """
    times: dict[str, list[float]] = {}
    first = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        first[name] = fn()  # compiles, jit, caches: not timed
        t = time.perf_counter() - t0
        if settle > t:
            time.sleep(settle - t)  # let the previous library's spinning pool go idle
        if t < 1.0:  # the first call may have compiled: a second one sizes the loop
            t0 = time.perf_counter()
            fn()
            t = time.perf_counter() - t0
        loops = max(1, min(1000, int(MIN_SAMPLE / max(t, 1e-9))))
        n = max(min(repeats, 3), min(repeats, int(budget / len(fns) / max(t, MIN_SAMPLE))))
        times[name] = []
        for _ in range(n):
            t0 = time.perf_counter()
            for _ in range(loops):
                fn()
            times[name].append((time.perf_counter() - t0) / loops)
    return times, first


def peers(libs: dict, a, hermitian: bool) -> dict:
    """Zero-argument calls of each peer's pinv on ``a`` (converted once, outside timing)."""
    np = libs["numpy"]
    out = {"numpy": lambda: np.linalg.pinv(a, hermitian=hermitian)}
    if libs.get("torch") is not None:
        torch, t = libs["torch"], libs["torch"].from_numpy(a)
        out["torch"] = lambda: torch.linalg.pinv(t, hermitian=hermitian)
    if libs.get("jax") is not None:
        jax, jnp = libs["jax"], libs["jax"].numpy
        j = jnp.asarray(a)
        f = jax.jit(lambda z: jnp.linalg.pinv(z, hermitian=hermitian))
        out["jax"] = lambda: f(j).block_until_ready()
    mx = libs.get("mlx")
    if mx is not None and a.dtype == np.float32 and not hermitian and max(a.shape) <= MLX_MAX:
        m = mx.array(a)

        def mlx_call():
            x = mx.linalg.pinv(m, stream=mx.cpu)
            mx.eval(x)
            return x

        out["mlx"] = mlx_call
    return out


def cell(libs: dict, pi, case: dict, dtype: str, args) -> dict:
    """One case in one dtype: raw times, medians, the ratio and its spread, path, dev."""
    np = libs["numpy"]
    start = time.perf_counter()
    a = make(np, case, dtype)
    herm = case["hermitian"]
    path = pi.pinv(a, hermitian=herm, return_rank=True).method  # also the warm-up
    fns = {"ours": lambda: pi.pinv(a, hermitian=herm), **peers(libs, a, herm)}
    settle = args.settle if args.threads == "default" else 0.0
    times, first = sample(fns, args.repeats, args.cell_budget, settle)
    later = pi.pinv(a, hermitian=herm, return_rank=True).method
    med = {k: statistics.median(v) for k, v in times.items()}
    best = [k for k in ("numpy", "torch") if k in times]
    n = min(len(times[k]) for k in ["ours", *best])
    per_repeat = [min(times[k][i] for k in best) / times["ours"][i] for i in range(n)]
    ref = np.asarray(first["torch"].numpy() if "torch" in first else first["numpy"])
    scale = float(np.abs(ref).max()) or 1.0
    return dict(
        case=case["label"],
        dtype=dtype,
        shape=list(case["shape"]),
        hermitian=herm,
        rank=case["rank"],
        times=times,
        median=med,
        ratio=min(med[k] for k in best) / med["ours"],
        spread=[min(per_repeat), max(per_repeat)],
        faster_peer=min(best, key=lambda k: med[k]),
        path=path if path == later else f"{path}->{later}",
        dev=float(np.abs(np.asarray(first["ours"]) - ref).max()) / scale,
        wall=time.perf_counter() - start,
    )


COLUMNS = ["case", "dtype", *(f"{k} ms" for k in PEERS), "ours ms", "ratio", "spread", "dev"]


def widths(cases: list[dict]) -> list[int]:
    return [max(len(c["label"]) for c in cases), 10, *[9] * 5, 6, 11, 6]


def line(cells: list[str], w: list[int], path: str) -> str:
    """One fixed-width row (printed as each cell finishes); ``path`` last, unpadded."""
    return "  ".join(c.rjust(k) for c, k in zip(cells, w, strict=True)) + "  " + path


def row(c: dict) -> list[str]:
    ms = [f"{c['median'][k] * 1e3:.3g}" if k in c["median"] else "-" for k in [*PEERS, "ours"]]
    lo, hi = c["spread"]
    return [
        c["case"],
        c["dtype"],
        *ms,
        f"{c['ratio']:.2f}",
        f"{lo:.2f}-{hi:.2f}",
        f"{c['dev']:.0e}",
    ]


def worst(cells: list[dict], mode: str, k: int = 10) -> str:
    """The ``k`` lowest ratios of one mode, with the peer that beat us."""
    losses = sum(c["ratio"] < 1 for c in cells)
    lines = [f"worst cells, threads {mode} ({losses} of {len(cells)} below 1.0):"]
    for c in sorted(cells, key=lambda c: c["ratio"])[:k]:
        lo, hi = c["spread"]
        peer = c["faster_peer"]
        lines.append(
            f"  {c['ratio']:5.2f} ({lo:.2f}-{hi:.2f})  {c['case']} {c['dtype']} [{c['path']}]: "
            f"ours {c['median']['ours'] * 1e3:.3g} ms, {peer} {c['median'][peer] * 1e3:.3g} ms"
        )
    return "\n".join(lines)


def load_libs(args) -> dict:
    """NumPy, torch and (unless ``--no-extras``) JAX and MLX, thread limits applied."""
    import numpy as np
    import threadpoolctl

    libs: dict = {"numpy": np}
    if args.threads == "one":
        threadpoolctl.threadpool_limits(1)
    try:
        import torch

        if args.threads == "one":
            torch.set_num_threads(1)
        libs["torch"] = torch
    except ImportError:
        print("torch not installed: the ratio is against numpy alone")
    if args.no_extras:
        return libs
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
    return libs


def run_mode(args) -> list[dict]:
    """This process's thread mode: time every selected cell, print the table as it goes."""
    if args.threads == "one":
        os.environ.update(ONE_THREAD_ENV)  # before numpy, torch, jax, numba are imported
    sys.path.insert(0, str(HERE.parent / "src"))
    libs = load_libs(args)
    import harness

    import pseudoinverse as pi

    np = libs["numpy"]
    print(f"\n## threads {args.threads}: python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"BLAS: {harness.blas_info()}")
    if "torch" in libs:
        print(f"torch {libs['torch'].__version__}, {libs['torch'].get_num_threads()} threads")
    print(f"medians of {args.repeats} (fewer past {args.cell_budget:g} s a cell); times in ms")
    pattern = re.compile(args.only) if args.only else None
    cases = [c for c in grid(args.full) if pattern is None or pattern.search(c["label"])]
    if not cases:
        raise SystemExit(f"--only {args.only!r} selects no case")
    w, t0 = widths(cases), time.perf_counter()
    print(line(COLUMNS, w, "path"))
    print(line(["-" * k for k in w], w, "----"), flush=True)
    cells = []
    for case in cases:
        for dtype in args.dtypes:
            c = cell(libs, pi, case, dtype, args)
            c["threads"] = args.threads
            cells.append(c)
            print(line(row(c), w, c["path"]), flush=True)
    print()
    print(worst(cells, args.threads))
    print(f"threads {args.threads}: {time.perf_counter() - t0:.0f} s", flush=True)
    return cells


def plot(cells: list[dict], path: str) -> None:
    """Heat map of the ratios: rows are cases, columns thread mode x dtype."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cases = list(dict.fromkeys(c["case"] for c in cells))
    cols = list(dict.fromkeys((c["threads"], c["dtype"]) for c in cells))
    grid_ = np.full((len(cases), len(cols)), np.nan)
    for c in cells:
        grid_[cases.index(c["case"]), cols.index((c["threads"], c["dtype"]))] = c["ratio"]
    logs = np.log2(grid_)
    lim = max(1.0, min(4.0, float(np.nanmax(np.abs(logs))) if np.isfinite(logs).any() else 1))
    cmap = plt.get_cmap("RdBu").copy()
    cmap.set_bad("0.85")
    fig, ax = plt.subplots(figsize=(2 + 1.2 * len(cols), 1.5 + 0.28 * len(cases)))
    im = ax.imshow(np.ma.masked_invalid(logs), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    for i, j in zip(*np.nonzero(np.isfinite(grid_)), strict=True):
        r = grid_[i, j]
        color = "white" if abs(logs[i, j]) > 0.6 * lim else "black"
        ax.text(
            j,
            i,
            f"{r:.0f}" if r >= 10 else f"{r:.2f}" if r >= 0.1 else f"{r:.1g}",
            ha="center",
            va="center",
            fontsize=7,
            color=color,
        )
    ax.set_xticks(range(len(cols)), [f"{t} thr\n{d}" for t, d in cols], fontsize=8)
    ax.set_yticks(range(len(cases)), cases, fontsize=8)
    ax.xaxis.tick_top()
    ticks = np.arange(-np.floor(lim), np.floor(lim) + 1)
    bar = fig.colorbar(im, ax=ax, ticks=ticks, fraction=0.05)
    bar.ax.set_yticklabels([f"{2.0**t:g}" for t in ticks])
    bar.set_label("min(numpy, torch) / ours")
    ax.set_title("pseudoinverse.pinv: ratio per case", fontsize=10, pad=28)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"heat map: {path}")


def child_env(mode: str) -> dict:
    """The environment of a fresh process for ``mode``: the thread variables set, or
    removed so that every library takes its own default."""
    env = dict(os.environ)
    for key in ONE_THREAD_ENV:
        env.pop(key, None)
    if mode == "one":
        env.update(ONE_THREAD_ENV)
    return env


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="the whole grid, larger sizes (hours)")
    p.add_argument("--threads", choices=["one", "default", "both"], default="both")
    p.add_argument("--repeats", type=int, default=5, help="timed repeats per cell (median)")
    p.add_argument("--cell-budget", type=float, default=None, help="seconds a cell aims at")
    p.add_argument(
        "--settle", type=float, default=0.3, help="pause before each library (default threads)"
    )
    p.add_argument("--dtypes", nargs="+", choices=DTYPES, default=DTYPES)
    p.add_argument("--only", default=None, help="regular expression on the case labels")
    p.add_argument("--no-extras", action="store_true", help="numpy and torch only")
    p.add_argument("--plot", default=str(HERE / "sweep.png"), help="heat map path")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--json", default=None, help="raw results (every repeat's times)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.cell_budget is None:
        args.cell_budget = 60.0 if args.full else 3.0
    if args.threads != "both":
        cells = run_mode(args)
    else:
        cells = []
        argv = [a for a in sys.argv[1:] if a not in ("--no-plot",)]
        with tempfile.TemporaryDirectory() as tmp:
            for mode in ("one", "default"):
                out = Path(tmp) / f"{mode}.json"
                cmd = [sys.executable, __file__, *argv, "--threads", mode, "--no-plot"]
                cmd += ["--json", str(out), "--child"]
                done = subprocess.run(cmd, env=child_env(mode), check=False)
                if done.returncode:
                    raise SystemExit(f"threads {mode}: exit status {done.returncode}")
                cells += json.loads(out.read_text())["cells"]
    if args.json:
        meta = {"full": args.full, "repeats": args.repeats, "cell_budget": args.cell_budget}
        Path(args.json).write_text(json.dumps({"meta": meta, "cells": cells}, indent=1))
        if not args.child:
            print(f"raw results: {args.json}")
    if not args.no_plot:
        plot(cells, args.plot)


if __name__ == "__main__":
    main()
