"""The command line's sparse route: ``--rhs`` with a Matrix Market coordinate INPUT.

References are live: NumPy's pinv (and pseudoinverse's dense solves) on the matrix that
``scipy.io.mmread`` reads from the same file, and SciPy's ``lsmr`` for a truncated run.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.sparse as sp
import scipy.sparse.linalg as sla

import pseudoinverse as pi
from pseudoinverse._cli import main

SENTINEL = b"an existing file that bad input must leave alone\n"


def run(capsys, *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def matrix(rng, m, n, dtype=np.float64):
    a = sp.random_array((m, n), density=0.1, rng=rng) + 2 * sp.eye_array(m, n)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * sp.random_array((m, n), density=0.1, rng=rng)
    return sp.coo_array(a)


def mtx(path: Path, a) -> tuple[Path, np.ndarray]:
    scipy.io.mmwrite(path, a, precision=17)
    assert "coordinate" in path.read_text().splitlines()[0]
    return path, np.asarray(scipy.io.mmread(path).toarray())


def residuals(text: str) -> dict[str, float]:
    line = re.search(r"^residuals +(.*)$", text, re.MULTILINE).group(1)
    return {k: float(v) for k, v in re.findall(r"(\|\S*) (\S+)", line)}


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("b_shape", [(50,), (50, 3), (2, 50, 2)], ids=["vector", "k3", "batch"])
def test_sparse_rhs_matches_the_dense_solve(tmp_path, capsys, rng, dtype, b_shape):
    path, dense = mtx(tmp_path / "a.mtx", matrix(rng, 50, 30, dtype))
    b = rng.standard_normal(b_shape)
    np.save(tmp_path / "b.npy", b)
    code, text, err = run(capsys, path, "--rhs", tmp_path / "b.npy", "-o", tmp_path / "x.npy")
    assert (code, err) == (0, ""), err
    x = np.load(tmp_path / "x.npy")
    ref = pi.pinv_solve(dense, b)
    assert x.shape == ref.shape == ((30,) if b.ndim == 1 else (*b_shape[:-2], 30, b_shape[-1]))
    assert np.linalg.norm(x - ref) <= 1e-7 * np.linalg.norm(ref)
    bb = b[..., None] if b.ndim == 1 else b
    live = (np.linalg.pinv(dense) @ bb).reshape(ref.shape)
    assert np.linalg.norm(x - live) <= 1e-7 * np.linalg.norm(live)
    assert "sparse iterative: LSMR" in text and "no pseudo-inverse or SVD formed" in text
    assert re.search(r"^lsmr +converged: all \d+ columns?, \d+", text, re.MULTILINE)
    assert f"sparse, {sp.csr_array(scipy.io.mmread(path)).nnz} stored entries" in text
    assert "rank " not in text and re.search(r"^time +solve \(sparse LSMR\) ", text, re.M)
    res = residuals(text)
    r = dense @ x.reshape(*bb.shape[:-2], 30, bb.shape[-1]) - bb  # all columns together
    np.testing.assert_allclose(res["|Ax-b|/|b|"], np.linalg.norm(r) / np.linalg.norm(b), rtol=0.06)
    assert res["|A^H(Ax-b)|/(|A||Ax-b|)"] < 1e-9  # LSMR's atol = 1e-10 on its |A| estimate


def test_a_matrix_too_large_to_densify(tmp_path, capsys):
    n = 40_000  # dense: 1.6e9 entries, beyond MAX_DENSE_ENTRIES; sparse: 40000 of them
    d = np.where(np.arange(n) % 2, 2.0, 1.0)
    path = tmp_path / "big.mtx"
    scipy.io.mmwrite(path, sp.diags_array(d).tocoo())
    b = np.arange(n, dtype=float)
    np.save(tmp_path / "b.npy", b)
    code, text, err = run(capsys, path, "--rhs", tmp_path / "b.npy", "-o", tmp_path / "x.npy")
    assert (code, err) == (0, ""), err
    assert f"shape      ({n}, {n})  dtype float64  sparse, {n} stored entries" in text
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), b / d, rtol=1e-9)
    code, _, err = run(capsys, path, "--rhs", tmp_path / "b.npy", "--dense")
    assert code == 2 and "too large for a dense pseudo-inverse" in err


def test_symmetric_file_and_damping(tmp_path, capsys, rng):
    a = matrix(rng, 25, 25)
    sym = sp.coo_array(sp.tril(a + a.T))
    path = tmp_path / "s.mtx"
    scipy.io.mmwrite(path, sp.coo_array(a + a.T), symmetry="symmetric")
    assert "symmetric" in path.read_text().splitlines()[0] and sym.nnz
    dense = np.asarray(scipy.io.mmread(path).toarray())
    b = rng.standard_normal(25)
    np.save(tmp_path / "b.npy", b)
    code, text, err = run(capsys, path, "--rhs", tmp_path / "b.npy", "--damping", "0.3",
                          "-o", tmp_path / "x.npy")  # fmt: skip
    assert (code, err) == (0, ""), err
    ref = pi.damped_pinv_solve(dense, 0.3, b)
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), ref, rtol=1e-7, atol=1e-9)
    assert "damping L = 3.000e-01" in text
    assert residuals(text)["|A^H(Ax-b)+L^2x|/(|A|(|A||x|+|b|)+L^2|x|)"] < 1e-9


def test_nonconvergence_is_reported(tmp_path, capsys, rng):
    path, dense = mtx(tmp_path / "a.mtx", sp.coo_array(sp.diags_array(np.logspace(0, -5, 40))))
    b = rng.standard_normal((40, 2))
    np.save(tmp_path / "b.npy", b)
    code, text, err = run(capsys, path, "--rhs", tmp_path / "b.npy", "--maxiter", "2",
                          "-o", tmp_path / "x.npy")  # fmt: skip
    assert code == 0
    assert re.search(r"^lsmr +NOT converged: 2 of 2 columns, 2 iterations; stop: the iteration "
                     r"limit has been reached \(istop 7: 2\)", text, re.M)  # fmt: skip
    assert err.startswith("pseudoinverse: warning: ConvergenceWarning: LSMR did not converge")
    assert "--maxiter" in err and err.count("\n") == 1
    x = np.load(tmp_path / "x.npy")  # LSMR's last iterate, as SciPy's lsmr gives it
    for j in range(2):
        ref = sla.lsmr(sp.csr_array(dense), b[:, j], atol=1e-10, btol=1e-10, maxiter=2)[0]
        np.testing.assert_allclose(x[:, j], ref, rtol=1e-10, atol=1e-13)


def test_options_that_need_the_svd_take_the_dense_route(tmp_path, capsys, rng):
    path, _ = mtx(tmp_path / "a.mtx", matrix(rng, 12, 8))
    np.save(tmp_path / "b.npy", rng.standard_normal(12))
    for extra in (["--dense"], ["--rtol", "1e-3"], ["--method", "svd"], ["--exact"]):
        code, text, err = run(capsys, path, "--rhs", tmp_path / "b.npy", *extra)
        assert (code, err) == (0, ""), (extra, err)
        assert "sparse iterative" not in text and re.search(r"^rank +8 \(of 8\)", text, re.M)
    code, text, _ = run(capsys, path)  # no --rhs: the pseudo-inverse, densely, as before
    assert code == 0 and "sparse" not in text and "|AXA-A|/|A|" in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--maxiter", "0"], "--maxiter must be an integer >= 1, got 0"),
     (["--maxiter", "5", "--dense"], "--maxiter is for the sparse iterative solve")],
)  # fmt: skip
def test_bad_maxiter(tmp_path, capsys, rng, extra, message):
    path, _ = mtx(tmp_path / "a.mtx", matrix(rng, 6, 4))
    np.save(tmp_path / "b.npy", np.ones(6))
    out = tmp_path / "x.npy"
    out.write_bytes(SENTINEL)
    code, text, err = run(capsys, path, "--rhs", tmp_path / "b.npy", *extra, "-o", out)
    assert (code, text) == (2, "") and message in err and err.count("\n") == 1
    assert out.read_bytes() == SENTINEL


def test_maxiter_without_a_sparse_input(tmp_path, capsys):
    np.save(tmp_path / "a.npy", np.eye(3))
    code, _, err = run(capsys, tmp_path / "a.npy", "--maxiter", "4")
    assert code == 2 and "--maxiter is for the sparse iterative solve" in err


def test_nan_in_a_sparse_file_writes_nothing(tmp_path, capsys):
    path = tmp_path / "nan.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n3 2 2\n1 1 1.0\n3 2 nan\n")
    np.save(tmp_path / "b.npy", np.ones(3))
    out = tmp_path / "x.npy"
    out.write_bytes(SENTINEL)
    code, text, err = run(capsys, path, "--rhs", tmp_path / "b.npy", "-o", out)
    assert (code, text) == (2, "")
    assert "contains NaN or Inf (first at index (2, 1))" in err and err.count("\n") == 1
    assert out.read_bytes() == SENTINEL
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
