"""The command line (SPEC, "Command line"): formats, tolerances, summary, plot, bad input.

Most cases call ``main([...])`` in-process (fast); a handful run the real entry points,
``python -m pseudoinverse`` and the ``pseudoinverse`` console script, in a subprocess.
Every reference is computed live with NumPy/SciPy on the very numbers the CLI read.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import scipy.linalg

from pseudoinverse._cli import PLOT_ERROR, main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "jacobian.csv"
SCRIPT = Path(sys.executable).with_name("pseudoinverse" + (".exe" if os.name == "nt" else ""))
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SENTINEL = b"an existing file that bad input must leave alone\n"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_subprocess(*args: object, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    command = [*prefix, *(str(a) for a in args)] if prefix else [str(a) for a in args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=ROOT)


def low_rank(rng: np.random.Generator, m: int, n: int, r: int, dtype=np.float64) -> np.ndarray:
    b, c = rng.standard_normal((m, r)), rng.standard_normal((r, n))
    if np.dtype(dtype).kind == "c":
        b, c = b + 1j * rng.standard_normal((m, r)), c + 1j * rng.standard_normal((r, n))
    a = b @ c
    return a.astype(dtype)


def with_spectrum(rng: np.random.Generator, m: int, n: int, s: list[float]) -> np.ndarray:
    """A matrix with exactly the singular values ``s`` (random orthogonal factors)."""
    u = np.linalg.qr(rng.standard_normal((m, m)))[0][:, : len(s)]
    v = np.linalg.qr(rng.standard_normal((n, n)))[0][:, : len(s)]
    return (u * s) @ v.T


def default_rtol(a: np.ndarray) -> float:
    return max(a.shape[-2:]) * float(np.finfo(a.dtype).eps)


def summary_rank(out: str) -> str:
    return re.search(r"^rank +(.*)$", out, re.MULTILINE).group(1)


def write(path: Path, a: np.ndarray) -> Path:
    """Write ``a`` in the format that ``path``'s extension names (exactly, for text)."""
    if path.suffix == ".npy":
        np.save(path, a)
    elif path.suffix == ".npz":
        np.savez(path, matrix=a)
    elif path.suffix == ".mtx":
        scipy.io.mmwrite(path, a, precision=17)
    else:
        np.savetxt(path, a, fmt="%.17g", delimiter="," if path.suffix == ".csv" else " ")
    return path


def read(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path)
    if path.suffix == ".npz":
        with np.load(path) as npz:
            assert npz.files == ["pinv"]
            return npz["pinv"]
    if path.suffix == ".mtx":
        return np.asarray(scipy.io.mmread(path))
    delimiter = "," if path.suffix == ".csv" else None
    try:
        return np.loadtxt(path, delimiter=delimiter, ndmin=2)
    except ValueError:
        return np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=complex)


def assert_close(x: np.ndarray, ref: np.ndarray, dtype) -> None:
    rtol = 1e3 * float(np.finfo(dtype).eps)
    scale = max(float(np.abs(ref).max(initial=0.0)), 1.0)
    np.testing.assert_allclose(x, ref, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".txt", ".mtx"])
def test_each_input_format(tmp_path, capsys, suffix):
    rng = np.random.default_rng(1)
    a = write(tmp_path / f"a{suffix}", low_rank(rng, 6, 5, 3))
    code, out, err = run(capsys, a, "-o", tmp_path / "x.npy")
    assert (code, err) == (0, "")
    data = np.load(a)["matrix"] if suffix == ".npz" else read(a)  # the numbers the CLI read
    assert_close(np.load(tmp_path / "x.npy"), np.linalg.pinv(data, rtol=default_rtol(data)), float)
    assert summary_rank(out) == "3 (of 5)"
    assert "shape      (6, 5)  dtype float64" in out


@pytest.mark.parametrize(
    ("suffix", "dtype"),
    [(".npy", np.float32), (".npz", np.complex128), (".csv", np.float64),
     (".csv", np.complex64), (".txt", np.complex128), (".mtx", np.float64),
     (".mtx", np.complex128), (".txt", np.float16)],
)  # fmt: skip
def test_each_output_format(tmp_path, capsys, suffix, dtype):
    a = low_rank(np.random.default_rng(2), 4, 7, 2, dtype)
    np.save(tmp_path / "a.npy", a)
    code, out, _ = run(capsys, tmp_path / "a.npy", "-o", tmp_path / f"x{suffix}")
    assert code == 0
    x = read(tmp_path / f"x{suffix}")
    assert x.shape == (7, 4)
    ref = np.linalg.pinv(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64),
                         rtol=default_rtol(a))  # fmt: skip
    assert_close(x, ref, np.float32 if dtype == np.float16 else a.real.dtype)
    assert summary_rank(out) == "2 (of 4)"


def test_batch_npy_to_npz_and_batch_summary(tmp_path, capsys):
    rng = np.random.default_rng(3)
    a = np.stack([low_rank(rng, 5, 3, r) for r in (1, 3, 2, 3)]).reshape(2, 2, 5, 3)
    np.save(tmp_path / "a.npy", a)
    code, out, _ = run(capsys, tmp_path / "a.npy", "-o", tmp_path / "x.npz")
    assert code == 0
    assert_close(read(tmp_path / "x.npz"), np.linalg.pinv(a, rtol=default_rtol(a)), float)
    assert summary_rank(out) == "min 1, max 3 (of 3)"
    assert "4 matrices of 5 x 3" in out and "(worst in the batch)" in out


def test_rtol_and_atol_change_the_rank_as_numpy_and_scipy_predict(tmp_path, capsys):
    a = with_spectrum(np.random.default_rng(4), 6, 5, [1.0, 1e-3, 1e-6, 1e-9, 1e-12])
    path = write(tmp_path / "a.npy", a)
    cases = [((), None, None), (("--rtol", "1e-4"), 1e-4, None), (("--atol", "1e-7"), None, 1e-7),
             (("--rtol", "0", "--atol", "1e-2"), 0.0, 1e-2)]  # fmt: skip
    for flags, rtol, atol in cases:
        code, out, _ = run(capsys, path, "-o", tmp_path / "x.npy", *flags)
        assert code == 0
        if atol is None:
            rtol = default_rtol(a) if rtol is None else rtol
            ref = np.linalg.pinv(a, rtol=rtol)
            rank = np.linalg.matrix_rank(a, rtol=rtol)
        else:  # torch's rule: an atol > 0 turns the default rtol off (scipy adds the two)
            ref = scipy.linalg.pinv(a, atol=atol, rtol=rtol or 0.0)
            rank = np.linalg.matrix_rank(a, tol=atol)
        assert summary_rank(out) == f"{rank} (of 5)", flags
        assert_close(np.load(tmp_path / "x.npy"), ref, float)
    assert [2, 3, 1] == [
        np.linalg.matrix_rank(a, rtol=1e-4),
        np.linalg.matrix_rank(a, tol=1e-7),
        np.linalg.matrix_rank(a, tol=1e-2),
    ]  # the cases above really differ


def test_hermitian_reads_the_lower_triangle_as_pinvh(tmp_path, capsys):
    rng = np.random.default_rng(5)
    q = np.linalg.qr(rng.standard_normal((5, 5)))[0]
    h = (q * [2.0, -1e-3, 1e-8, -1e-12, 0.0]) @ q.T
    a = np.tril(h) + np.triu(rng.standard_normal((5, 5)), 1)  # upper triangle: garbage
    path = write(tmp_path / "a.csv", a)
    for rtol, rank in (("1e-6", 2), ("1e-10", 3)):
        code, out, _ = run(capsys, path, "--hermitian", "--rtol", rtol, "-o", tmp_path / "x.npy")
        assert code == 0
        data = read(path)
        ref = scipy.linalg.pinvh(data, atol=0.0, rtol=float(rtol), lower=True)
        assert summary_rank(out) == f"{rank} (of 5)"
        assert_close(np.load(tmp_path / "x.npy"), ref, float)
        assert "|AXA-A|/|A|" in out


def test_summary_of_the_bundled_example(capsys):
    a = np.loadtxt(EXAMPLE, delimiter=",")
    code, out, _ = run(capsys, EXAMPLE)
    assert code == 0
    assert a.shape == (6, 7)
    assert summary_rank(out) == f"{np.linalg.matrix_rank(a)} (of 6)" == "5 (of 6)"
    s = np.linalg.svd(a, compute_uv=False)
    assert f"largest {s[0]:.3e}, smallest kept {s[4]:.3e}" in out
    assert f"threshold  {7 * np.finfo(float).eps * s[0]:.3e}" in out
    residuals = [float(v) for v in re.findall(r"\|\S* (\S+)", out)]
    assert len(residuals) == 4 and max(residuals) < 1e-12
    for field in ("shape", "dtype float64", "time"):
        assert field in out


def test_without_output_only_the_summary_is_printed(tmp_path, capsys):
    path = write(tmp_path / "a.npy", np.eye(3))
    assert run(capsys, path)[0] == 0
    assert sorted(os.listdir(tmp_path)) == ["a.npy"]


@pytest.mark.parametrize("shape", [(3, 0), (2, 3, 0), (0, 2, 2)])
def test_empty_input_gives_an_empty_result(tmp_path, capsys, shape):
    path = write(tmp_path / "a.npy", np.zeros(shape))
    code, out, _ = run(capsys, path, "-o", tmp_path / "x.npy")
    assert code == 0 and "rank       " in out
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (*shape[:-2], shape[-1], shape[-2]) and x.dtype == np.float64


def test_success_replaces_an_existing_output(tmp_path, capsys):
    path = write(tmp_path / "a.txt", np.diag([2.0, 4.0]))
    (tmp_path / "x.txt").write_bytes(SENTINEL)
    assert run(capsys, path, "-o", tmp_path / "x.txt")[0] == 0
    np.testing.assert_array_equal(read(tmp_path / "x.txt"), np.diag([0.5, 0.25]))
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "x.txt"]


def test_plot_writes_a_png_that_reads_back(tmp_path, capsys):
    image = pytest.importorskip("matplotlib.image", reason="--plot needs matplotlib")
    a = np.stack([np.diag([3.0, 1.0, 0.0]), np.diag([1.0, 1e-20, 0.0])])
    for path in (EXAMPLE, write(tmp_path / "b.npy", a)):
        png = tmp_path / f"{Path(path).stem}.png"
        code, out, _ = run(capsys, path, "--plot", png)
        assert code == 0 and f"plot       {png}" in out
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        pixels = image.imread(png)
        assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100


def bad_cases(tmp: Path) -> dict[str, list[object]]:
    """name -> arguments; ``-o out.npy --plot p.png`` (pre-created) is appended."""
    good = write(tmp / "good.npy", np.eye(3))
    (tmp / "words.csv").write_text("1,2\nthree,4\n")
    (tmp / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp / "header.csv").write_text("a,b\n1,2\n")
    (tmp / "empty.csv").write_text("")
    (tmp / "garbage.mtx").write_text("not a matrix market file\n")
    (tmp / "garbage.npy").write_bytes(b"not an npy file")
    (tmp / "a.dat").write_text("1 2\n3 4\n")
    nan, inf = np.eye(3), np.eye(2)
    nan[1, 2], inf[0, 0] = np.nan, np.inf
    np.savez(tmp / "two.npz", first=np.eye(2), second=np.eye(3))
    np.save(tmp / "objects.npy", np.array([[1, "x"]], dtype=object), allow_pickle=True)
    return {
        "missing file": [tmp / "missing.npy"],
        "unknown input format": [tmp / "a.dat"],
        "unknown output format": [good, "-o", tmp / "x.xlsx"],
        "no output extension": [good, "-o", tmp / "x"],
        "non-numeric csv": [tmp / "words.csv"],
        "header row": [tmp / "header.csv"],
        "ragged csv": [tmp / "ragged.csv"],
        "empty csv": [tmp / "empty.csv"],
        "corrupt mtx": [tmp / "garbage.mtx"],
        "corrupt npy": [tmp / "garbage.npy"],
        "npy named npz": [write(tmp / "npy.npy", np.eye(2)).rename(tmp / "npy.npz")],
        "object npy": [tmp / "objects.npy"],
        "strings npy": [write(tmp / "s.npy", np.array([["a", "b"]]))],
        "1-D": [write(tmp / "v.npy", np.ones(3))],
        "0-D": [write(tmp / "z.npy", np.float64(1.0))],
        "NaN": [write(tmp / "nan.npy", nan)],
        "Inf": [write(tmp / "inf.txt", inf)],
        "negative rtol": [good, "--rtol", "-1e-3"],
        "negative rtol with =": [good, "--rtol=-1e-3"],
        "negative atol": [good, "--atol=-1"],
        "NaN atol": [good, "--atol", "nan"],
        "not a number": [good, "--rtol", "small"],
        "unknown method": [good, "--method", "magic"],
        "eigh without hermitian": [good, "--method", "eigh"],
        "hermitian non-square": [EXAMPLE, "--hermitian"],
        "npz without key": [tmp / "two.npz"],
        "npz wrong key": [tmp / "two.npz", "--key", "third"],
        "key on npy": [good, "--key", "first"],
        "batch to csv": [write(tmp / "batch.npy", np.ones((2, 3, 3))), "-o", tmp / "x.csv"],
        "batch to mtx": [tmp / "batch.npy", "-o", tmp / "x.mtx"],
        "plot not png": [good, "--plot", tmp / "p.pdf"],
        "missing output dir": [good, "-o", tmp / "no" / "such" / "dir" / "x.npy"],
        "output is a directory": [good, "-o", tmp / "adir.npy"],
        "unknown option": [good, "--fast"],
        "no input": [],
    }


def test_bad_input_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    cases = bad_cases(tmp_path)
    (tmp_path / "adir.npy").mkdir()
    out, png = tmp_path / "out.npy", tmp_path / "p.png"
    for name, args in cases.items():
        out.write_bytes(SENTINEL)
        png.write_bytes(SENTINEL)
        before = sorted(os.listdir(tmp_path))
        extra = ([] if "-o" in args else ["-o", out]) + (
            [] if "--plot" in args else ["--plot", png]
        )
        code, stdout, err = run(capsys, *args, *extra)
        assert code == 2, name
        assert err.startswith("pseudoinverse: error: ") and err.count("\n") == 1, (name, err)
        assert stdout == "", name
        assert out.read_bytes() == SENTINEL and png.read_bytes() == SENTINEL, name
        assert sorted(os.listdir(tmp_path)) == before, name  # no temporary file left
    assert "['first', 'second']" in run(capsys, tmp_path / "two.npz")[2]


def test_bad_input_through_the_real_entry_points(tmp_path):
    """No traceback from the script or ``-m``; argparse's usage text is not printed."""
    (tmp_path / "out.npy").write_bytes(SENTINEL)
    words = tmp_path / "words.csv"
    words.write_text("1,x\n")
    for prefix, args in [
        ((str(SCRIPT),), [words, "-o", tmp_path / "out.npy"]),
        ((sys.executable, "-m", "pseudoinverse"), [EXAMPLE, "--rtol", "-1"]),
        ((sys.executable, "-m", "pseudoinverse"), [EXAMPLE, "--bogus"]),
    ]:
        result = run_subprocess(*args, prefix=prefix)
        assert result.returncode == 2, result
        assert result.stderr.startswith("pseudoinverse: error: ")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert (tmp_path / "out.npy").read_bytes() == SENTINEL


def test_console_script_and_python_m_agree(tmp_path):
    assert SCRIPT.exists(), f"the console script should be installed at {SCRIPT}"
    python_m = (sys.executable, "-m", "pseudoinverse")
    results = [
        run_subprocess(EXAMPLE, "-o", tmp_path / "x1.npy", prefix=(str(SCRIPT),)),
        run_subprocess(EXAMPLE, "-o", tmp_path / "x2.npy", prefix=python_m),
    ]
    assert [r.returncode for r in results] == [0, 0], results
    untimed = [re.sub(r"time .*|x\d\.npy", "", r.stdout) for r in results]
    assert untimed[0] == untimed[1] and "rank       5 (of 6)" in untimed[0]
    np.testing.assert_array_equal(np.load(tmp_path / "x1.npy"), np.load(tmp_path / "x2.npy"))
    a = np.loadtxt(EXAMPLE, delimiter=",")
    assert_close(np.load(tmp_path / "x1.npy"), np.linalg.pinv(a, rtol=default_rtol(a)), float)


def test_help_and_version(capsys):
    import pseudoinverse

    code, out, _ = run(capsys, "--version")
    assert (code, out.strip()) == (0, f"pseudoinverse {pseudoinverse.__version__}")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for word in ("INPUT", "--rtol", "--atol", "--hermitian", "--method", "--plot", "--key", ".mtx"):
        assert word in out


BLOCK_MATPLOTLIB = """
import sys

class BlockMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib' (blocked by the test)")

sys.meta_path.insert(0, BlockMatplotlib())
from pseudoinverse._cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_plot_without_matplotlib_is_a_clear_error(tmp_path, capsys, monkeypatch):
    out, png = tmp_path / "out.npy", tmp_path / "p.png"
    out.write_bytes(SENTINEL)
    args = (EXAMPLE, "-o", out, "--plot", png)
    result = run_subprocess(*args, prefix=(sys.executable, "-c", BLOCK_MATPLOTLIB))
    assert result.returncode == 2, result
    assert result.stderr == f"pseudoinverse: error: {PLOT_ERROR}\n"
    assert not png.exists() and out.read_bytes() == SENTINEL
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # in-process: import fails too
    assert run(capsys, *args) == (2, "", f"pseudoinverse: error: {PLOT_ERROR}\n")
    assert not png.exists() and out.read_bytes() == SENTINEL


# --- Regressions of issue 9 (defects 10-14 and the first-hour notes) ---------------------

SEGFAULT_MTX = "%%MatrixMarket matrix array real general\n1 1\n1-1\n"


def one_error_line(err: str) -> str:
    assert err.startswith("pseudoinverse: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_defect10_malformed_mtx_does_not_crash_the_process(tmp_path):
    """SciPy's compiled reader died with SIGSEGV on this file; ours reads it in Python."""
    path = tmp_path / "crash.mtx"
    path.write_text(SEGFAULT_MTX)
    (tmp_path / "out.npy").write_bytes(SENTINEL)
    result = run_subprocess(path, "-o", tmp_path / "out.npy",
                            prefix=(sys.executable, "-m", "pseudoinverse"))  # fmt: skip
    assert result.returncode == 2, result
    assert "line 3" in one_error_line(result.stderr)
    assert (tmp_path / "out.npy").read_bytes() == SENTINEL
    assert path.read_text() == SEGFAULT_MTX
    empty = tmp_path / "empty.mtx"  # SciPy's reader: SIGFPE on this valid file (mmwrite's own)
    empty.write_text("%%MatrixMarket matrix array real general\n%\n0 3\n")
    result = run_subprocess(empty, "-o", tmp_path / "x.npy",
                            prefix=(sys.executable, "-m", "pseudoinverse"))  # fmt: skip
    assert (result.returncode, result.stderr) == (0, ""), result
    assert np.load(tmp_path / "x.npy").shape == (3, 0)


def mmwrite_cases(rng: np.random.Generator):
    """(matrix or sparse matrix, mmwrite keywords) over every format, field and symmetry."""
    import scipy.sparse

    for _ in range(12):
        m, n = (int(v) for v in rng.integers(1, 7, 2))
        r = rng.standard_normal((m, n)) * 10.0 ** rng.integers(-5, 6)
        c = r + 1j * rng.standard_normal((m, n))
        i = rng.integers(-50, 50, (m, n))
        s = rng.standard_normal((n, n))
        sym, skew = s + s.T, s - s.T
        t = s + 1j * rng.standard_normal((n, n))
        h = t + t.conj().T  # exactly Hermitian: a real diagonal
        sparse = np.where(rng.random((m, n)) < 0.4, r, 0.0)
        sparse_sym = np.where(rng.random((n, n)) < 0.4, sym, 0.0)
        sparse_sym = np.tril(sparse_sym) + np.tril(sparse_sym, -1).T
        for dense in (r, c, i, sym, skew, h, np.tril(i[:1, :1])):
            yield dense, {}
            yield dense, {"symmetry": "general"}
        for dense in (sparse, sparse_sym, np.tril(skew, -1) - np.tril(skew, -1).T, h):
            yield scipy.sparse.coo_matrix(dense), {}
        yield scipy.sparse.coo_matrix(sparse), {"field": "pattern"}
        yield scipy.sparse.coo_matrix(sparse_sym), {"field": "pattern"}
        yield scipy.sparse.coo_matrix(np.where(rng.random((m, n)) < 0.5, i, 0)), {}
        yield scipy.sparse.coo_matrix(np.where(rng.random((m, n)) < 0.5, c, 0)), {}
        skew_int = np.tril(i[:n, :n] if m >= n else i[:, :m], -1)
        yield scipy.sparse.coo_matrix(skew_int - skew_int.T), {}
    yield np.zeros((0, 3)), {}
    yield scipy.sparse.coo_matrix((3, 2)), {}


def test_defect10_matrix_market_reader_agrees_with_scipy_mmwrite_and_mmread():
    """Our strict parser reads exactly what scipy.io.mmwrite wrote (and mmread reads)."""
    import io

    from pseudoinverse._cli_io import parse_matrix_market

    banners = set()
    for matrix, keywords in mmwrite_cases(np.random.default_rng(10)):
        f = io.BytesIO()
        scipy.io.mmwrite(f, matrix, precision=17, **keywords)
        banners.add(f.getvalue().split(b"\n", 1)[0].decode())
        ours = parse_matrix_market(f.getvalue())
        dense = matrix.toarray() if hasattr(matrix, "toarray") else matrix
        if keywords.get("field") == "pattern":
            dense = (dense != 0).astype(float)
        np.testing.assert_array_equal(ours, dense)
        if ours.size:  # SciPy's reader dies (SIGFPE) on its own empty array "0 3"
            f.seek(0)
            theirs = scipy.io.mmread(f)
            theirs = theirs.toarray() if hasattr(theirs, "toarray") else np.asarray(theirs)
            np.testing.assert_array_equal(ours, theirs)
            assert ours.dtype.kind == theirs.dtype.kind
    for fmt in ("array", "coordinate"):  # every combination was met
        fields = {"real": "general symmetric skew-symmetric", "complex": "general hermitian",
                  "integer": "general"}  # fmt: skip
        for field, symmetries in fields.items():
            for symmetry in symmetries.split():
                assert f"%%MatrixMarket matrix {fmt} {field} {symmetry}" in banners
    assert "%%MatrixMarket matrix coordinate pattern symmetric" in banners


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("%%MatrixMarket matrix array real general\n1 1\n1-1\n", 3),
        ("%%MatrixMarket matrix array real general\n% a comment\n1 2\n2x3\n4\n", 4),
        ("%%MatrixMarket matrix array real general\n2 1\n1\n1 2\n", 4),  # two numbers
        ("%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n", 6),  # too few
        ("%%MatrixMarket matrix array real general\n1 1\n1\n2\n", 4),  # too many
        ("%%MatrixMarket matrix array integer general\n1 1\n1.5\n", 3),
        ("%%MatrixMarket matrix array real general\n1 1 1\n1\n", 2),  # size line of coordinate
        ("%%MatrixMarket matrix array real general\n1 x\n1\n", 2),
        ("%%MatrixMarket matrix array real symmetric\n2 3\n1\n", 2),  # not square
        ("%%MatrixMarket matrix coordinate real general\n2 2 1\n3 1 1.0\n", 3),  # row 3 of 2
        ("%%MatrixMarket matrix coordinate real general\n2 2 1\n0 1 1.0\n", 3),  # 1-based
        ("%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 2 1.0\n", 3),  # upper
        ("%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n1 1 1.0\n", 3),
        ("%%MatrixMarket matrix coordinate complex hermitian\n2 2 1\n1 1 1 2\n", 3),
        ("%%MatrixMarket matrix coordinate pattern general\n2 2 1\n1 1 1\n", 3),
        ("%%MatrixMarket matrix coordinate real general\n2 2 1\n1 1 ١\n", 3),  # Arabic 1
        ("%%MatrixMarket matrix array pattern general\n1 1\n1\n", 1),
        ("%%MatrixMarket matrix array real hermitian\n1 1\n1\n", 1),
        ("%%MatrixMarket vector array real general\n1\n1\n", 1),
        ("%MatrixMarket matrix array real general\n1 1\n1\n", 1),
        ("%%MatrixMarket matrix coordinate real general\n99999 99999 0\n", 2),  # 1e10 entries
    ],
)
def test_defect11_malformed_matrix_market_names_the_line(tmp_path, capsys, text, line):
    path = tmp_path / "bad.mtx"
    path.write_text(text, encoding="utf-8")
    code, out, err = run(capsys, path, "-o", tmp_path / "x.npy")
    assert (code, out) == (2, "")
    assert f"line {line}:" in one_error_line(err)
    assert not (tmp_path / "x.npy").exists()


def test_defect11_numbers_that_strtod_half_reads_are_refused(capsys, tmp_path):
    """``2x3`` and ``1-1`` were read as 2 and 1; well-formed neighbours still work."""
    good = "%%MatrixMarket matrix array real general\n1 2\n-1.5e+00\n.25\n"
    path = tmp_path / "good.mtx"
    path.write_text(good)
    assert run(capsys, path, "-o", tmp_path / "x.npy")[0] == 0
    np.testing.assert_allclose(np.load(tmp_path / "x.npy"), np.linalg.pinv([[-1.5, 0.25]]))
    for bad in ("2x3", "1-1", "1e", "0x10", "1,5", "1_0", "--1", "1e5.0"):
        path.write_text(good.replace(".25", bad))
        code, _, err = run(capsys, path)
        assert code == 2 and "line 4:" in one_error_line(err), bad


@pytest.mark.parametrize("how", ["same name", "./ prefix", "symlink", "hard link", "plot"])
def test_defect12_output_that_is_the_input_is_refused(tmp_path, capsys, monkeypatch, how):
    monkeypatch.chdir(tmp_path)
    a = write(tmp_path / "a.npy", np.diag([2.0, 4.0]))
    before = a.read_bytes()
    output = {"same name": "a.npy", "./ prefix": "./a.npy", "symlink": "link.npy",
              "hard link": "hard.npy", "plot": None}[how]  # fmt: skip
    if how == "symlink":
        os.symlink("a.npy", "link.npy")
    if how == "hard link":
        os.link("a.npy", "hard.npy")
    args = ["a.npy", "-o", output] if output else ["a.npy"]
    if how == "plot":  # a .png hard link to the input
        os.link("a.npy", "p.png")
        args += ["--plot", "p.png"]
    code, out, err = run(capsys, *args)
    assert (code, out) == (2, "")
    assert "is the input file" in one_error_line(err)
    assert a.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted(
        {"a.npy", "link.npy" if how == "symlink" else "", "hard.npy" if how == "hard link" else "",
         "p.png" if how == "plot" else ""} - {""}
    )  # fmt: skip


def test_output_through_a_symlink_writes_its_target(tmp_path, capsys):
    a = write(tmp_path / "a.npy", np.diag([2.0, 4.0]))
    (tmp_path / "target.npy").write_bytes(SENTINEL)
    os.symlink(tmp_path / "target.npy", tmp_path / "link.npy")
    assert run(capsys, a, "-o", tmp_path / "link.npy")[0] == 0
    assert (tmp_path / "link.npy").is_symlink()
    np.testing.assert_array_equal(np.load(tmp_path / "target.npy"), np.diag([0.5, 0.25]))


def test_defect13_a_warning_before_an_error_is_folded_into_the_one_line(tmp_path, capsys):
    """A long double beyond float64 warned "overflow encountered in cast" on its own line."""
    a = np.array([[np.longdouble("1e4000"), 1]], dtype=np.longdouble)
    if not np.isfinite(a).all():
        pytest.skip("this platform's long double is float64")
    path = tmp_path / "big.npy"
    np.save(path, a)
    code, out, err = run(capsys, path)
    assert (code, out) == (2, "")
    assert "NaN or Inf" in one_error_line(err) and "overflow" in err


def test_defect13_a_newline_in_a_file_name_stays_on_the_line(tmp_path, capsys):
    code, _, err = run(capsys, tmp_path / "two\nlines.npy")
    assert code == 2 and "two\\nlines.npy" in one_error_line(err)
    path = write(tmp_path / "tab\there\x1b[31m.npy", np.eye(2))
    code, out, err = run(capsys, path, "-o", tmp_path / "new\nline.npy")
    assert (code, err) == (0, "")
    assert "tab\\there\\x1b[31m.npy" in out and "new\\nline.npy" in out
    assert all(c.isprintable() for line in out.splitlines() for c in line)


def test_defect13_a_closed_stdout_ends_quietly(tmp_path):
    """``pseudoinverse a.npy | head -0``: no BrokenPipeError traceback, the output written."""
    a = write(tmp_path / "a.npy", np.eye(3))
    read_end, write_end = os.pipe()
    os.close(read_end)  # closed before the child writes: its first write gets EPIPE
    try:
        command = [sys.executable, "-m", "pseudoinverse", a, "-o", tmp_path / "x.npy"]
        result = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, text=True,
                                timeout=60)  # fmt: skip
    finally:
        os.close(write_end)
    assert result.stderr == "" and result.returncode == 1, result
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), np.eye(3))


def test_defect14_a_directory_is_named_as_a_directory(tmp_path, capsys):
    (tmp_path / "folder.npy").mkdir()
    code, _, err = run(capsys, tmp_path / "folder.npy")
    assert code == 2 and "is a directory" in one_error_line(err) and "no such" not in err


def test_a_failing_writer_leaves_no_file_and_the_old_output(tmp_path, capsys, monkeypatch):
    import pseudoinverse._cli_io as cli_io

    a = write(tmp_path / "a.npy", np.eye(3))
    (tmp_path / "x.npy").write_bytes(SENTINEL)

    def half_then_fail(x, suffix, f):
        f.write(b"\x93NUMPY half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cli_io, "save", half_then_fail)
    monkeypatch.setattr("pseudoinverse._cli.save", half_then_fail)
    code, _, err = run(capsys, a, "-o", tmp_path / "x.npy")
    assert code == 2 and "No space left" in one_error_line(err)
    assert (tmp_path / "x.npy").read_bytes() == SENTINEL
    assert sorted(os.listdir(tmp_path)) == ["a.npy", "x.npy"]


def test_batch_threshold_range_is_the_real_min_and_max(tmp_path, capsys):
    a = np.stack([np.diag([3.0, 1.0]), np.diag([5.0, 2.0]), np.diag([7.0, 0.0])])
    code, out, _ = run(capsys, write(tmp_path / "a.npy", a))
    assert code == 0
    eps2 = 2 * np.finfo(float).eps
    assert f"threshold  {3 * eps2:.3e} to {7 * eps2:.3e} = " in out


def test_plot_hint_names_an_installable_extra():
    assert 'pip install -e ".[plot]"' in PLOT_ERROR and "pseudoinverse[plot]" not in PLOT_ERROR


@pytest.mark.parametrize("dtype", [">f8", ">f4", ">c8", ">c16", ">i4"])
def test_big_endian_npy(tmp_path, capsys, dtype):
    a = low_rank(np.random.default_rng(6), 5, 4, 3, np.dtype(dtype).newbyteorder("="))
    path = write(tmp_path / "a.npy", a.astype(dtype))
    code, out, err = run(capsys, path, "-o", tmp_path / "x.npy")
    assert (code, err) == (0, ""), err
    real = np.float64 if a.dtype.kind in "iu" else a.real.dtype  # pinv's eps and precision
    rtol = max(a.shape) * float(np.finfo(real).eps)
    ref = np.linalg.pinv(a.astype(np.complex128 if a.dtype.kind == "c" else np.float64), rtol=rtol)
    assert_close(np.load(tmp_path / "x.npy"), ref, real)
    assert summary_rank(out) == "3 (of 4)"


def test_npz_key_chooses_one_of_several_arrays(tmp_path, capsys):
    np.savez(tmp_path / "two.npz", first=np.diag([2.0, 4.0]), second=np.eye(3) * 5)
    for key, ref in (("first", np.diag([0.5, 0.25])), ("second", np.eye(3) / 5)):
        code, _, _ = run(capsys, tmp_path / "two.npz", "--key", key, "-o", tmp_path / "x.npy")
        assert code == 0
        np.testing.assert_allclose(np.load(tmp_path / "x.npy"), ref)


def test_unknown_output_extension_writes_nothing(tmp_path, capsys):
    a = write(tmp_path / "a.npy", np.eye(2))
    for name in ("x.xlsx", "x", "x.npy.bak"):
        code, _, err = run(capsys, a, "-o", tmp_path / name)
        assert code == 2 and "unknown output format" in one_error_line(err)
    assert sorted(os.listdir(tmp_path)) == ["a.npy"]


def test_large_summary_is_estimated_cheaply_and_close_to_exact(tmp_path, capsys):
    """Beyond EXACT_SIZE: Lanczos sigmas (about 5 digits) and probed residuals (marked ~)."""
    from pseudoinverse._cli_checks import EXACT_SIZE

    rng = np.random.default_rng(7)
    a = with_spectrum(rng, EXACT_SIZE + 40, EXACT_SIZE + 8, list(np.geomspace(10, 1e-3, 300)))
    path = write(tmp_path / "a.npy", a)
    code, out, _ = run(capsys, path)
    assert code == 0 and "~|AXA-A|/|A|" in out and "Lanczos" in out
    assert "sigma      largest 1.000e+01, smallest kept 1.000e-03" in out
    assert summary_rank(out) == f"300 (of {EXACT_SIZE + 8})"
    code, exact_out, _ = run(capsys, path, "--exact")
    assert code == 0 and "~" not in exact_out and "largest dropped" in exact_out
    estimated = [float(v) for v in re.findall(r"~\|\S* (\S+)", out)]
    exact = [float(v) for v in re.findall(r"\|\S* (\S+)", exact_out)]
    assert len(estimated) == len(exact) == 4
    for e, x in zip(estimated, exact, strict=True):  # the same order of magnitude
        assert x / 3 <= e <= 3 * x or max(e, x) < 1e-15, (estimated, exact)


def test_time_line_reports_pinv_and_total(tmp_path, capsys):
    code, out, _ = run(capsys, write(tmp_path / "a.npy", np.eye(3)))
    match = re.search(r"^time +pinv ([\d.]+) (ms|s), total ([\d.]+) (ms|s)$", out, re.MULTILINE)
    assert code == 0 and match, out
    pinv_s, total_s = (float(match[i]) * (1e-3 if match[i + 1] == "ms" else 1) for i in (1, 3))
    assert 0 < pinv_s <= total_s


class FakeTerminal:
    """A stderr that says it is a terminal and keeps what is written."""

    def __init__(self) -> None:
        self.text = ""

    def write(self, s: str) -> int:
        self.text += s
        return len(s)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal_and_only_after_the_delay(tmp_path, capsys, monkeypatch):
    import pseudoinverse._cli as cli

    path = write(tmp_path / "a.npy", np.eye(3))
    assert run(capsys, path)[2] == ""  # not a terminal: nothing extra
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main([str(path)]) == 0
    assert terminal.text == ""  # a terminal, but done within the delay
    monkeypatch.setattr(cli, "PROGRESS_DELAY", 0.0)
    assert main([str(path)]) == 0
    assert "pseudoinverse: pinv" in terminal.text and "checks" in terminal.text
    assert "input " not in terminal.text  # the summary goes to stdout only


def test_empty_complex_result_to_mtx_and_an_overflowing_result(tmp_path, capsys):
    """SciPy's mmwrite never returned for a (0, 3) complex array; 1 / 5e-324 is no float64."""
    from pseudoinverse._cli_io import parse_matrix_market

    np.save(tmp_path / "e.npy", np.zeros((3, 0), complex))
    assert run(capsys, tmp_path / "e.npy", "-o", tmp_path / "x.mtx")[0] == 0
    assert parse_matrix_market((tmp_path / "x.mtx").read_bytes()).shape == (0, 3)
    np.save(tmp_path / "tiny.npy", np.array([[5e-324, 0.0]]))
    code, _, err = run(capsys, tmp_path / "tiny.npy", "-o", tmp_path / "y.npy")
    assert code == 2 and "overflows" in one_error_line(err)
    assert not (tmp_path / "y.npy").exists()


# --- --rhs (pinv_solve) and --damping (damped_pinv, damped_pinv_solve) -------------------


def read_result(path: Path) -> np.ndarray:
    """A result file; an .npz holds one array, ``solution`` (a solve) or ``pinv``."""
    if path.suffix == ".npz":
        with np.load(path) as npz:
            assert len(npz.files) == 1 and npz.files[0] in ("solution", "pinv"), npz.files
            return npz[npz.files[0]]
    return read(path)


def read_back(path: Path) -> np.ndarray:
    """The numbers the CLI read from a file that ``write`` wrote."""
    return np.load(path)["matrix"] if path.suffix == ".npz" else read(path)


def residual_values(out: str) -> dict[str, float]:
    line = re.search(r"^residuals +(.*)$", out, re.MULTILINE).group(1)
    return {k: float(v) for k, v in re.findall(r"~?(\|\S*) (\S+)", line)}


FORMATS = [".npy", ".npz", ".csv", ".txt", ".mtx"]


@pytest.mark.parametrize("suffix", FORMATS)
@pytest.mark.parametrize("k", [None, 3])
def test_rhs_solves_as_pinv_solve_and_numpy_pinv_in_each_format(tmp_path, capsys, suffix, k):
    import pseudoinverse as pi

    rng = np.random.default_rng(11)
    a = write(tmp_path / f"a{suffix}", low_rank(rng, 7, 5, 3))
    b_shape = (7,) if k is None else (7, k)
    b = rng.standard_normal(b_shape)
    if suffix in (".csv", ".txt", ".mtx") and b.ndim == 1:
        b = b[:, None]  # a text or Matrix Market vector is a column
    b = write(tmp_path / f"b{suffix}", b)
    out = tmp_path / f"x{suffix}"
    code, text, err = run(capsys, a, "--rhs", b, "-o", out)
    assert (code, err) == (0, ""), err
    A, B = read_back(a), read_back(b)
    x = read_result(out)
    ref = pi.pinv_solve(A, B)
    assert x.shape == ref.shape == (5,) * (B.ndim == 1) + (5, B.shape[-1]) * (B.ndim == 2)
    assert_close(x, ref, float)
    assert_close(x, np.linalg.pinv(A, rtol=default_rtol(A)) @ B, float)
    assert f"rhs        {b}  shape {B.shape}  dtype float64" in text
    assert summary_rank(text) == "3 (of 5)" and "threshold  " in text
    res = residual_values(text)
    assert list(res) == ["|Ax-b|/|b|", "|A^H(Ax-b)|/(|A||Ax-b|)"]
    r = A @ x - B
    np.testing.assert_allclose(res["|Ax-b|/|b|"], np.linalg.norm(r) / np.linalg.norm(B), rtol=0.06)
    assert res["|A^H(Ax-b)|/(|A||Ax-b|)"] < 1e-13  # a least-squares solution
    assert "|AXA-A|" not in text and re.search(r"^time +solve ", text, re.MULTILINE)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv", ".txt", ".mtx"])
def test_a_vector_solution_in_each_output_format(tmp_path, capsys, suffix):
    rng = np.random.default_rng(12)
    a = write(tmp_path / "a.npy", rng.standard_normal((6, 4)))
    b = write(tmp_path / "b.npy", rng.standard_normal(6))
    out = tmp_path / f"x{suffix}"
    assert run(capsys, a, "--rhs", b, "-o", out)[0] == 0
    x = read_result(out)
    ref = np.linalg.pinv(np.load(a)) @ np.load(b)
    if suffix in (".npy", ".npz"):
        assert x.shape == (4,)  # 1-D stays 1-D
    else:
        assert x.shape == (4, 1)  # an (n, 1) column in the matrix formats
        ref = ref[:, None]
    assert_close(x, ref, float)
    if suffix == ".mtx":
        assert (tmp_path / "x.mtx").read_text().splitlines()[2] == "4 1"


def test_rhs_batches_broadcast_complex_and_integer(tmp_path, capsys):
    rng = np.random.default_rng(13)
    a = np.stack([low_rank(rng, 5, 4, r, np.complex128) for r in (2, 4, 3)])
    b = rng.integers(-3, 4, size=(3, 5))  # a batch of vectors: shape A.shape[:-1]
    pa, pb = write(tmp_path / "a.npy", a), write(tmp_path / "b.npy", b)
    code, out, _ = run(capsys, pa, "--rhs", pb, "-o", tmp_path / "x.npy")
    assert code == 0 and "(worst in the batch)" in out
    assert summary_rank(out) == "min 2, max 4 (of 4)"
    x = np.load(tmp_path / "x.npy")
    assert x.shape == (3, 4) and x.dtype == np.complex128
    ref = np.einsum("bij,bj->bi", np.linalg.pinv(a, rtol=default_rtol(a)), b)
    assert_close(x, ref, float)
    one = write(tmp_path / "one.npy", rng.standard_normal((5, 2)))  # one B for all of A
    assert run(capsys, pa, "--rhs", one, "-o", tmp_path / "y.npy")[0] == 0
    ref = np.linalg.pinv(a, rtol=default_rtol(a)) @ np.load(one)
    assert_close(np.load(tmp_path / "y.npy"), ref, float)


def test_rhs_with_tolerances_hermitian_and_method(tmp_path, capsys):
    import pseudoinverse as pi

    rng = np.random.default_rng(14)
    q = np.linalg.qr(rng.standard_normal((6, 6)))[0][:, :3]
    a = (q * [3.0, 1.0, 1e-6]) @ q.T  # symmetric, eigenvalues 3, 1, 1e-6 and 0
    low = np.tril(a)  # --hermitian reads the lower triangle alone
    pa, pb = write(tmp_path / "a.npy", low), write(tmp_path / "b.npy", rng.standard_normal(6))
    code, out, _ = run(capsys, pa, "--rhs", pb, "--hermitian", "--method", "eigh",
                       "--rtol", "1e-3", "-o", tmp_path / "x.npy")  # fmt: skip
    assert code == 0 and summary_rank(out) == "2 (of 6)", out
    ref = pi.pinv_solve(low, np.load(pb), rtol=1e-3, hermitian=True, method="eigh")
    assert_close(np.load(tmp_path / "x.npy"), ref, float)
    full = np.tril(low) + np.tril(low, -1).T
    assert_close(np.load(tmp_path / "x.npy"), np.linalg.pinv(full, rtol=1e-3) @ np.load(pb), float)


def test_rhs_npz_key_chooses_the_right_hand_side(tmp_path, capsys):
    a = write(tmp_path / "a.npy", np.diag([2.0, 4.0]))
    np.savez(tmp_path / "rhs.npz", first=np.array([2.0, 4.0]), second=np.array([4.0, 8.0]))
    for key, ref in (("first", [1.0, 1.0]), ("second", [2.0, 2.0])):
        code, _, _ = run(capsys, a, "--rhs", tmp_path / "rhs.npz", "--rhs-key", key,
                         "-o", tmp_path / "x.npy")  # fmt: skip
        assert code == 0
        np.testing.assert_allclose(np.load(tmp_path / "x.npy"), ref)


def normal_equations_damped(a: np.ndarray, lam: float) -> np.ndarray:
    """(A^H A + lambda^2 I)^-1 A^H in float64: a fine reference when A is well conditioned."""
    n = a.shape[-1]
    return np.linalg.solve(a.conj().T @ a + lam**2 * np.eye(n), a.conj().T)


@pytest.mark.parametrize("suffix", FORMATS)
def test_damping_is_damped_pinv_and_the_normal_equations(tmp_path, capsys, suffix):
    import pseudoinverse as pi

    rng = np.random.default_rng(15)
    a = write(tmp_path / f"a{suffix}", with_spectrum(rng, 6, 4, [4.0, 2.0, 1.0, 0.5]))
    out = tmp_path / f"x{suffix}"
    code, text, err = run(capsys, a, "--damping", "0.3", "-o", out)
    assert (code, err) == (0, ""), err
    A = read_back(a)
    x = read_result(out)
    assert x.shape == (4, 6)
    assert_close(x, pi.damped_pinv(A, 0.3), float)
    assert_close(x, normal_equations_damped(A, 0.3), float)
    assert "damping    L = 3.000e-01 (no threshold" in text
    assert not re.search(r"^(rank|threshold) ", text, re.MULTILINE) and "|AXA-A|" not in text
    assert "sigma      largest 4.000e+00, smallest 5.000e-01" in text
    res = residual_values(text)
    assert list(res) == ["|A^HAX+L^2X-A^H|/((|A|^2+L^2)|X|+|A|)"]
    assert res[next(iter(res))] < 1e-14
    assert re.search(r"^time +damped ", text, re.MULTILINE)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_damping_with_rhs_is_damped_pinv_solve(tmp_path, capsys, dtype):
    import pseudoinverse as pi

    rng = np.random.default_rng(16)
    a = with_spectrum(rng, 5, 7, [3.0, 2.0, 1.0, 0.5, 0.2]).astype(dtype)
    if dtype == np.complex128:
        a = a + 1j * with_spectrum(rng, 5, 7, [1.0, 0.5, 0.2, 0.1, 0.1])
    b = rng.standard_normal((5, 2)).astype(dtype)
    pa, pb = write(tmp_path / "a.npy", a), write(tmp_path / "b.mtx", b)
    code, out, err = run(capsys, pa, "--rhs", pb, "--damping", "0.1", "-o", tmp_path / "x.npy")
    assert (code, err) == (0, ""), err
    B = read(pb)
    x = np.load(tmp_path / "x.npy")
    assert_close(x, pi.damped_pinv_solve(a, 0.1, B), float)
    assert_close(x, normal_equations_damped(a, 0.1) @ B, float)
    res = residual_values(out)
    assert list(res) == ["|Ax-b|/|b|", "|A^H(Ax-b)+L^2x|/(|A|(|A||x|+|b|)+L^2|x|)"]
    assert res["|A^H(Ax-b)+L^2x|/(|A|(|A||x|+|b|)+L^2|x|)"] < 1e-14
    assert not re.search(r"^rank ", out, re.MULTILINE) and "damping    L = 1.000e-01" in out
    assert "rhs        " in out


def test_damping_zero_is_pinv_without_threshold_and_a_batch(tmp_path, capsys):
    a = np.stack([np.diag([2.0, 1.0, 0.0]), np.diag([4.0, 1e-20, 1.0])])
    pa = write(tmp_path / "a.npy", a)
    assert run(capsys, pa, "--damping", "0", "-o", tmp_path / "x.npy")[0] == 0
    np.testing.assert_allclose(np.load(tmp_path / "x.npy")[0], np.diag([0.5, 1.0, 0.0]))
    assert np.load(tmp_path / "x.npy")[1, 1, 1] == pytest.approx(1e20)  # nothing dropped
    code, out, _ = run(capsys, pa, "--damping", "1")
    assert code == 0 and "(worst in the batch)" in out
    np.testing.assert_allclose(residual_values(out)["|A^HAX+L^2X-A^H|/((|A|^2+L^2)|X|+|A|)"],
                               0.0, atol=1e-15)  # fmt: skip


def test_large_solve_and_damped_summaries_stay_cheap(tmp_path, capsys):
    from pseudoinverse._cli_checks import EXACT_SIZE

    rng = np.random.default_rng(17)
    a = with_spectrum(rng, EXACT_SIZE + 30, EXACT_SIZE + 4, list(np.geomspace(10, 1, 200)))
    pa, pb = write(tmp_path / "a.npy", a), write(tmp_path / "b.npy", rng.standard_normal(len(a)))
    code, out, _ = run(capsys, pa, "--rhs", pb)
    assert code == 0 and "sigma      largest 1.000e+01  (Lanczos" in out
    assert summary_rank(out) == f"200 (of {EXACT_SIZE + 4})"
    assert residual_values(out)["|A^H(Ax-b)|/(|A||Ax-b|)"] < 1e-12
    code, out, _ = run(capsys, pa, "--damping", "0.5")
    assert code == 0 and "~|A^HAX+L^2X-A^H|" in out and "random probes" in out
    code, exact, _ = run(capsys, pa, "--damping", "0.5", "--exact")
    assert code == 0 and "~|" not in exact and "sigma      largest 1.000e+01, smallest " in exact
    estimate, value = (next(iter(residual_values(t).values())) for t in (out, exact))
    assert value < 1e-14 and estimate < 1e-14


def test_plot_with_rhs_and_with_damping(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib")
    rng = np.random.default_rng(18)
    pa = write(tmp_path / "a.npy", np.stack([low_rank(rng, 5, 4, 2) for _ in range(2)]))
    pb = write(tmp_path / "b.npy", rng.standard_normal((2, 5)))
    for extra in (["--rhs", pb], ["--damping", "0.1"], ["--damping", "0", "--rhs", pb]):
        png = tmp_path / "p.png"
        code, out, err = run(capsys, pa, *extra, "--plot", png)
        assert (code, err) == (0, "") and f"plot       {png}" in out
        assert png.read_bytes().startswith(PNG_SIGNATURE)
        png.unlink()


def solve_bad_cases(tmp: Path) -> dict[str, list[object]]:
    """name -> arguments; ``-o out.npy --plot p.png`` (pre-created) is appended."""
    good = write(tmp / "good.npy", np.eye(3))
    rhs = write(tmp / "rhs.npy", np.ones(3))
    (tmp / "words.csv").write_text("1\nthree\n2\n")
    (tmp / "garbage.mtx").write_text("%%MatrixMarket matrix array real general\n3 1\n1\n2\n")
    nan, inf = np.ones(3), np.ones((3, 2))
    nan[1], inf[2, 1] = np.nan, np.inf
    np.savez(tmp / "two.npz", first=np.ones(3), second=np.ones(3))
    os.symlink(rhs, tmp / "rhs-link.npy")
    os.link(rhs, tmp / "rhs-hard.npy")
    (tmp / "rdir.npy").mkdir()
    batch = write(tmp / "batch.npy", np.ones((2, 3, 3)))
    rm = write(tmp / "rm.npy", np.ones((3, 2)))
    return {
        "missing rhs": [good, "--rhs", tmp / "missing.npy"],
        "rhs is a directory": [good, "--rhs", tmp / "rdir.npy"],
        "rhs unknown format": [good, "--rhs", tmp / "rhs.dat"],
        "malformed rhs csv": [good, "--rhs", tmp / "words.csv"],
        "truncated rhs mtx": [good, "--rhs", tmp / "garbage.mtx"],
        "rhs wrong rows": [good, "--rhs", write(tmp / "r4.npy", np.ones(4))],
        "rhs matrix wrong rows": [good, "--rhs", write(tmp / "r2.csv", np.ones((2, 2)))],
        "rhs batch mismatch": [batch, "--rhs", write(tmp / "rb.npy", np.ones((3, 3, 1)))],
        "rhs non-numeric": [good, "--rhs", write(tmp / "s.npy", np.array(["a", "b", "c"]))],
        "rhs 0-D": [good, "--rhs", write(tmp / "z.npy", np.float64(1.0))],
        "rhs NaN": [good, "--rhs", write(tmp / "nan.npy", nan)],
        "rhs Inf": [good, "--rhs", write(tmp / "inf.txt", inf)],
        "rhs npz without key": [good, "--rhs", tmp / "two.npz"],
        "rhs npz wrong key": [good, "--rhs", tmp / "two.npz", "--rhs-key", "third"],
        "rhs-key on npy": [good, "--rhs", rhs, "--rhs-key", "first"],
        "rhs-key without rhs": [good, "--rhs-key", "first"],
        "output is the rhs": [good, "--rhs", rhs, "-o", rhs],
        "output is the rhs via ./": [good, "--rhs", rhs, "-o", tmp / "." / "rhs.npy"],
        "output is a symlink to rhs": [good, "--rhs", rhs, "-o", tmp / "rhs-link.npy"],
        "output is a hard link of rhs": [good, "--rhs", rhs, "-o", tmp / "rhs-hard.npy"],
        "plot is the rhs": [good, "--rhs", tmp / "p.png"],
        "batched solution to csv": [batch, "--rhs", rm, "-o", tmp / "x.csv"],
        "damping with rtol": [good, "--damping", "0.1", "--rtol", "1e-3"],
        "damping with atol": [good, "--damping", "0.1", "--atol", "0"],
        "damping with method": [good, "--damping", "0.1", "--method", "svd"],
        "damping with method auto": [good, "--damping", "0.1", "--method", "auto"],
        "damping with rhs and rtol": [good, "--rhs", rhs, "--damping", "1", "--rtol", "0"],
        "negative damping": [good, "--damping=-1"],
        "NaN damping": [good, "--damping", "nan"],
        "infinite damping": [good, "--damping", "inf"],
        "damping not a number": [good, "--damping", "some"],
        "damping without value": [good, "--damping"],
        "rhs without value": [good, "--rhs"],
        "hermitian non-square with rhs": [EXAMPLE, "--rhs", rhs, "--hermitian"],
    }


def snapshot(folder: Path) -> dict[str, bytes | None]:
    return {p.name: None if p.is_dir() else p.read_bytes() for p in sorted(folder.iterdir())}


def test_bad_rhs_and_damping_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    cases = solve_bad_cases(tmp_path)
    out, png = tmp_path / "out.npy", tmp_path / "p.png"
    for name, args in cases.items():
        out.write_bytes(SENTINEL)
        png.write_bytes(SENTINEL)
        before = snapshot(tmp_path)  # the input and RHS files too, byte for byte
        extra = ([] if "-o" in args else ["-o", out]) + (
            [] if "--plot" in args or "p.png" in map(str, args) else ["--plot", png]
        )
        code, stdout, err = run(capsys, *args, *extra)
        assert code == 2, (name, err)
        assert err.startswith("pseudoinverse: error: ") and err.count("\n") == 1, (name, err)
        assert stdout == "", name
        assert snapshot(tmp_path) == before, name  # nothing written, moved or left over
    messages = {
        "output is a hard link of rhs": "is the right-hand side file",
        "rhs wrong rows": "has 4 rows, A has 3",
        "rhs npz without key": "--rhs-key NAME",
        "damping with method auto": "--damping uses no threshold",
        "rhs NaN": "NaN or Inf",
    }
    for name, words in messages.items():
        assert words in run(capsys, *cases[name])[2], name


def test_help_names_rhs_and_damping(capsys):
    code, out, _ = run(capsys, "--help")
    text = " ".join(out.split())
    assert code == 0
    for words in ("--rhs FILE", "--rhs-key NAME", "--damping L", "no threshold",
                  "not with --rtol, --atol or --method", "|Ax-b|/|b|"):  # fmt: skip
        assert words in text, words


def test_rhs_through_python_m(tmp_path):
    pa = write(tmp_path / "a.csv", np.array([[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]]))
    pb = write(tmp_path / "b.csv", np.array([[1.0], [4.0], [5.0]]))
    result = run_subprocess(pa, "--rhs", pb, "-o", tmp_path / "x.txt",
                            prefix=(sys.executable, "-m", "pseudoinverse"))  # fmt: skip
    assert result.returncode == 0 and result.stderr == "", result
    np.testing.assert_allclose(read(tmp_path / "x.txt"), [[1.0], [2.0]])
    assert "|Ax-b|/|b|" in result.stdout
