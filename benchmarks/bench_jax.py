"""JAX arrays on the CPU: ``pseudoinverse`` (the NumPy engine) against ``jnp.linalg.pinv``.

    python benchmarks/bench_jax.py                  # one thread, then default threads
    python benchmarks/bench_jax.py --threads one    # one|default|both (default both)
    python benchmarks/bench_jax.py --quick          # the two target rows only
    python benchmarks/bench_jax.py --full           # and a sweep of shapes and dtypes

``--threads both`` runs the script twice, each in a fresh process, because the limits
must be set before the libraries load: ``one`` (XLA's Eigen pool and intra-op
parallelism off through ``XLA_FLAGS``, OpenBLAS/MKL/OpenMP/numba one thread, set before
JAX is imported; threadpoolctl), then ``default``.

Each cell is ``jnp.linalg.pinv time / our time`` (> 1: we are faster), medians of
repeats with the calls interleaved repeat by repeat, after one untimed call each
(compiles, caches); every call ends in ``block_until_ready``. ``jnp`` is
``jax.jit(jnp.linalg.pinv)`` (its default ``rtol``). Ours, on the same JAX array:

* ``eager``: ``pi.pinv(a)``, the engine on NumPy's zero-copy view (validation and the
  finite check included);
* ``jit``: ``jax.jit(pi.pinv)(a)``, the engine through ``jax.pure_callback``;
* ``vmap``: ``jax.jit(jax.vmap(pi.pinv))(a)`` for stacks: one callback for the stack;
* ``grad``: ``jax.jit(jax.grad(lambda a: pinv(a).sum()))`` against the same with
  ``jnp.linalg.pinv`` (its own Golub–Pereyra rule), up to ``GRAD_MAX`` elements.

A second table (not with ``--quick``) times ``pinv_solve(A, b)`` against the jitted
``jnp.linalg.pinv(A) @ b`` and ``damped_pinv(A, 0.1)`` against the jitted normal-equations
form ``A^T (A A^T + 0.01 I)^-1`` (``jnp.linalg.solve``), ours eager and jitted.

``err`` and ``jnp err`` are the largest relative differences ``||X - X_ref|| /
||X_ref||`` over the stack's members of ours (jitted) and of ``jnp.linalg.pinv`` from
``numpy.linalg.pinv`` in float64/complex128 with our default ``rtol = max(m, n) eps``.
For float64 input that reference is the same LAPACK SVD as jnp's (``jnp err`` near 0),
so ``err`` shows ``kappa eps`` of a different algorithm (the Jacobi kernel, LU); for
float32 jnp's default ``rtol``, ten times larger, cuts the smallest singular value of a
few random members that ours keeps (``jnp err`` 1 there). ``path`` is the method
``"auto"`` chose. Targets (issue 12, one thread): 5x on 1e5 3x3 float64,
2x on 2000x2000 full-rank float64.
"""

from __future__ import annotations

import argparse
import sys

import harness

# (batch, m, n, dtype, target at one thread or None); batch 0: a single matrix
TARGETS = [(100_000, 3, 3, "float64", 5.0), (0, 2000, 2000, "float64", 2.0)]
QUICK = TARGETS
DEFAULT = [
    *TARGETS,
    (100_000, 3, 3, "float32", None),
    (10_000, 6, 7, "float64", None),
    (10_000, 3, 3, "complex128", None),
    (0, 500, 300, "float64", None),
]
FULL = [
    *DEFAULT,
    (1000, 16, 16, "float64", None),
    (200, 64, 64, "float64", None),
    (1, 3, 3, "float64", None),
    (0, 1000, 1000, "float32", None),
]
GRAD_MAX = 500_000  # elements of A up to which the gradient column runs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="the two target rows only")
    size.add_argument("--full", action="store_true", help="and a sweep of shapes and dtypes")
    p.add_argument("--threads", choices=["one", "default", "both"], default="both")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per cell")
    args = p.parse_args()
    if args.threads == "both":
        argv = ["--quick"] * args.quick + ["--full"] * args.full
        argv += ["--repeats", str(args.repeats)] if args.repeats else []
        sys.exit(harness.rerun(__file__, ["one", "default"], argv))
    if args.threads == "one":
        harness.limit_env(1)  # before NumPy, JAX and numba load
    run(args)


def run(args) -> None:
    import numpy as np

    import pseudoinverse as pi

    threads = argparse.Namespace(threads="1" if args.threads == "one" else "default")
    libs = harness.setup_threads(threads)  # jax_enable_x64 on
    jax = libs["jax"]
    if jax is None:
        sys.exit("bench_jax needs JAX")
    repeats = args.repeats or 5
    harness.banner(argparse.Namespace(threads=args.threads, repeats=repeats))
    print(f"jax {jax.__version__}, default backend {jax.default_backend()}")
    rows = QUICK if args.quick else FULL if args.full else DEFAULT
    rng = np.random.default_rng(0)
    table, summary = [], []
    for batch, m, n, dtype, target in rows:
        shape = (batch, m, n) if batch else (m, n)
        a_np = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            a_np = a_np + 1j * rng.standard_normal(shape)
        a = jax.numpy.asarray(a_np.astype(dtype))
        fns = calls(jax, pi, a, batch)
        grads = "grad" in fns
        results: dict = {}
        reps = repeats if a.size * max(m, n) < 1e9 else min(repeats, 3)
        times = harness.median_times(fns, reps, results)
        wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
        eps = float(np.finfo(dtype).eps)
        ref = np.linalg.pinv(a_np.astype(dtype).astype(wide), rtol=max(m, n) * eps)
        err, jnp_err = (rel_err(results[k], ref) for k in ("jit", "jnp"))
        path = pi.pinv(a, return_rank=True).method
        ratio = {k: times["jnp"] / times[k] for k in ("eager", "jit", "vmap") if k in times}
        grad = times["grad jnp"] / times["grad"] if grads else None
        label = f"{batch} x {m}x{n}" if batch else f"{m}x{n}"
        table.append(
            [
                label,
                dtype,
                path,
                f"{times['jnp'] * 1e3:.3g} ms",
                ratio["eager"],
                ratio["jit"],
                ratio.get("vmap"),
                grad,
                f"{err:.1e}",
                f"{jnp_err:.1e}",
            ]
        )
        if target is not None:
            best = min(ratio["eager"], ratio["jit"])
            want = target if args.threads == "one" else None
            verdict = "" if want is None else (" PASS" if best >= want else " MISS")
            summary.append(
                f"{label} {dtype}: eager {ratio['eager']:.1f}x, jit {ratio['jit']:.1f}x "
                f"jnp.linalg.pinv (target {target:g}x at one thread){verdict}"
            )
        print(f"  {label} {dtype}: done", flush=True)
    header = ["case", "dtype", "path", "jnp", "eager", "jit", "vmap", "grad", "err", "jnp err"]
    print(f"\n## jnp.linalg.pinv time / ours, threads {args.threads}")
    print(harness.table(header, table))
    if not args.quick:
        solve_table(jax, pi, rng, repeats)
    print(f"\n## summary, threads {args.threads}")
    print("\n".join(summary))


def rel_err(x, ref) -> float:
    """The largest relative error over the members of a stack (or one matrix)."""
    import numpy as np

    m, n = ref.shape[-2:]
    diff = np.linalg.norm((np.asarray(x) - ref).reshape(-1, m * n), axis=1)
    return float(np.max(diff / np.linalg.norm(ref.reshape(-1, m * n), axis=1)))


# pinv_solve and damped_pinv against their natural jnp forms: (label, batch, m, n)
SOLVE_ROWS = [(10_000, 6, 4), (100_000, 6, 7), (0, 2000, 2000)]


def solve_table(jax, pi, rng, repeats: int) -> None:
    """``pinv_solve(A, b)`` against ``jnp.linalg.pinv(A) @ b``, ``damped_pinv(A, 0.1)``
    against ``A^T (A A^T + 0.01 I)^-1`` (``jnp.linalg.solve``; wide ``A``), both
    jitted; ours eager and jitted."""
    jnp = jax.numpy
    rows = []
    for batch, m, n in SOLVE_ROWS:
        shape = (batch, m, n) if batch else (m, n)
        a = jnp.asarray(rng.standard_normal(shape))
        b = jnp.asarray(rng.standard_normal(shape[:-1]))
        label = f"{batch} x {m}x{n}" if batch else f"{m}x{n}"
        for name, fns in solve_cases(jax, pi, a, b).items():
            times = harness.median_times(fns, repeats if batch else min(repeats, 3))
            ratios = [times["jnp"] / times[k] for k in ("eager", "jit")]
            rows.append([name, label, f"{times['jnp'] * 1e3:.3g} ms", *ratios])
            print(f"  {name} {label}: done", flush=True)
    print("\n## pinv_solve / damped_pinv: jnp form time / ours (float64, b a vector)")
    print(harness.table(["call", "case", "jnp", "eager", "jit"], rows))


def _damped_jnp(jnp, t):
    """``A^T (A A^T + 0.01 I)^-1``, the user's natural form for a wide ``A``."""
    eye = jnp.eye(t.shape[-2], dtype=t.dtype)
    tt = jnp.swapaxes(t, -1, -2)
    return jnp.swapaxes(jnp.linalg.solve(t @ tt + 0.01 * eye, t), -1, -2)


def solve_cases(jax, pi, a, b) -> dict:
    """``{call: {"jnp"|"eager"|"jit": zero-argument call}}`` for one row."""
    jnp = jax.numpy

    def ready(f, *args):
        return lambda: jax.block_until_ready(f(*args))

    def pinv_b(t, v):
        return (jnp.linalg.pinv(t) @ v[..., None])[..., 0]

    cases = {
        "pinv_solve": {
            "jnp": ready(jax.jit(pinv_b), a, b),
            "eager": ready(pi.pinv_solve, a, b),
            "jit": ready(jax.jit(pi.pinv_solve), a, b),
        }
    }
    wide = a if a.shape[-2] <= a.shape[-1] else jnp.swapaxes(a, -1, -2)
    cases["damped_pinv"] = {
        "jnp": ready(jax.jit(lambda t: _damped_jnp(jnp, t)), wide),
        "eager": ready(pi.damped_pinv, wide, 0.1),
        "jit": ready(jax.jit(pi.damped_pinv), wide, 0.1),
    }
    return cases


def calls(jax, pi, a, batch: int) -> dict:
    """``{name: zero-argument call}`` on the JAX array ``a``, each ending in
    ``block_until_ready`` (and returning the result)."""
    jnp = jax.numpy

    def ready(f):
        return lambda: f(a).block_until_ready()

    fns = {
        "jnp": ready(jax.jit(jnp.linalg.pinv)),
        "eager": ready(pi.pinv),
        "jit": ready(jax.jit(pi.pinv)),
    }
    if batch:
        fns["vmap"] = ready(jax.jit(jax.vmap(pi.pinv)))
    if a.size <= GRAD_MAX:
        fns["grad jnp"] = ready(jax.jit(jax.grad(lambda t: jnp.sum(jnp.real(jnp.linalg.pinv(t))))))
        fns["grad"] = ready(jax.jit(jax.grad(lambda t: jnp.sum(jnp.real(pi.pinv(t))))))
    return fns


if __name__ == "__main__":
    main()
