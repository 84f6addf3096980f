"""A file fuzzer for the command line: every generated input is right or one clear error.

Hypothesis writes valid and malformed files of every format (.npy with truncated or
corrupted headers, object, 0-d, 1-d and big-endian arrays; .npz with 0, 1 or several
arrays; .csv/.txt with ragged rows, blank lines, non-numbers, NaN, Inf, huge exponents,
unicode; .mtx with bad banners, sizes, counts, numbers and indices), unknown extensions,
directories, missing files, names with spaces, newlines and unicode, and outputs that
alias the input. Each case runs through ``main(argv)`` in-process, and a sample through
``python -m pseudoinverse`` in a subprocess (where a crash of compiled code would show).
Either the exit status is 0 and the output reads back as the pseudo-inverse of the data
(``numpy.linalg.pinv``, where the rank decision has a clear margin), or it is 2 with
exactly one line on stderr, and the output is not created (an existing one unchanged);
the input's bytes never change, no temporary file is left, nothing else is ever seen.

The CI size is a few hundred in-process examples and about 25 subprocess runs. The long
run (a maintainer's, before a release)::

    PI_FUZZ_EXAMPLES=20000 python -m pytest tests/test_fuzz_cli.py -q -p no:cacheprovider
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest
import scipy.io
import scipy.sparse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pseudoinverse._cli import main
from pseudoinverse._cli_io import parse_matrix_market

TOTAL = int(os.environ.get("PI_FUZZ_EXAMPLES", "400"))  # in-process examples, all tests
SUBPROCESS = max(25, TOTAL // 400)  # each costs about a second
SENTINEL = b"an existing output that a failed run must leave alone\n"
FUZZ = settings(
    max_examples=max(1, TOTAL // 5),  # five in-process tests share TOTAL
    deadline=None,
    database=None,  # nothing written into the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- the data and its expected reading ------------------------------------------------


@dataclasses.dataclass
class Case:
    files: dict[str, bytes]  # name -> bytes, written into a fresh folder
    argv: list[str]
    data: np.ndarray | None  # what a correct run reads; None: it must be refused
    certain: bool = True  # False: a mutation may or may not leave a valid file
    dirs: tuple[str, ...] = ()
    links: tuple[tuple[str, str, str], ...] = ()  # (kind, target, name)


NAMES = st.sampled_from(["a", "with space", "new\nline", "ünï€ødé", "tab\tx", "-dash", "a.b"])
FINITE = st.one_of(
    st.integers(-9, 9).map(float),
    st.floats(-1e3, 1e3, allow_nan=False, width=64),
    st.sampled_from([0.0, -0.0, 1e-300, 1e300, 5e-324, 1.5]),
)


@st.composite
def matrices(draw, max_side: int = 5, batch: bool = False) -> np.ndarray:
    shape = draw(st.tuples(*[st.integers(0, max_side)] * 2))
    if batch and draw(st.booleans()):
        shape = (draw(st.integers(0, 3)), *shape)
    n = int(np.prod(shape))
    values = draw(st.lists(FINITE, min_size=n, max_size=n))
    return np.array(values, dtype=np.float64).reshape(shape)


def output_args(draw, name: str, data: np.ndarray | None) -> tuple[list[str], bool]:
    """``-o`` choices; returns (arguments, whether they are fine for this data)."""
    choice = draw(st.sampled_from(["none", ".npy", ".npz", ".csv", ".txt", ".mtx", ".xlsx", ""]))
    if choice == "none":
        return [], True
    ok = choice in (".npy", ".npz") or (
        choice in (".csv", ".txt", ".mtx") and data is not None and data.ndim == 2
    )
    stem = name.rsplit(".", 1)[0]  # "out a" + "": no extension at all
    return ["-o", f"out {stem}{choice}"], ok and choice != ".xlsx" and choice != ""


# --- .npy / .npz ------------------------------------------------------------------------

DTYPES = [
    "<f8",
    ">f8",
    "<f4",
    ">f4",
    "<f2",
    "<c16",
    ">c16",
    "<c8",
    ">c8",
    "<i4",
    ">i8",
    "|u1",
    "|b1",
    "<i2",
]


def npy_bytes(a: np.ndarray) -> bytes:
    f = io.BytesIO()
    np.save(f, a, allow_pickle=True)
    return f.getvalue()


def expected(a: np.ndarray) -> np.ndarray | None:
    """The data a run must accept, or None where the CLI must refuse it."""
    if a.dtype.kind not in "biufc" or a.ndim < 2:
        return None
    if a.dtype.kind in "fc" and not np.isfinite(a).all():
        return None
    return a


@st.composite
def npy_cases(draw) -> Case:
    name = draw(NAMES) + ".npy"
    kind = draw(st.sampled_from(["matrix", "matrix", "matrix", "0-d", "1-d", "object", "str"]))
    base = draw(matrices(batch=True))
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    with np.errstate(all="ignore"):  # 1e300 in float16 is inf: a case the CLI must refuse
        a = base.astype(dtype) if dtype.kind != "c" else (base + 1j * base[::-1]).astype(dtype)
    if draw(st.booleans()) and a.size and a.dtype.kind in "fc":
        a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf]))
    if kind == "0-d":
        a = np.asarray(a.flat[0] if a.size else 1.0)
    elif kind == "1-d":
        a = a.ravel()
    elif kind == "object":
        a = a.astype(object)
    elif kind == "str":
        a = a.astype(str)
    raw, data, certain = npy_bytes(a), expected(a), True
    mutation = draw(st.sampled_from(["none"] * 4 + ["truncate", "flip", "append", "garbage"]))
    if mutation == "truncate":
        raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
        data = None
    elif mutation == "flip":
        i = draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1 :]
        certain = False
    elif mutation == "append":
        raw += draw(st.binary(min_size=1, max_size=16))
        certain = False  # NumPy reads a .npy's declared data and ignores a tail
    elif mutation == "garbage":
        raw, data = draw(st.binary(max_size=64)), None
        certain = raw.startswith(b"\x93NUMPY") is False
    out, out_ok = output_args(draw, name, data)
    return Case({name: raw}, [name, *out], data if out_ok else None, certain)


@st.composite
def npz_cases(draw) -> Case:
    name = draw(NAMES) + ".npz"
    arrays = {f"k{i}": draw(matrices(batch=True)) for i in range(draw(st.integers(0, 3)))}
    f = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(f, **arrays)
    key = draw(st.sampled_from([None, "k0", "k1", "k9"]))
    if key is None:
        data = next(iter(arrays.values())) if len(arrays) == 1 else None
    else:
        data = arrays.get(key)
    raw, certain = f.getvalue(), True
    if draw(st.integers(0, 4)) == 0:  # a truncated zip
        raw, data, certain = raw[: draw(st.integers(0, len(raw) - 1))], None, False
    data = expected(data) if data is not None else None
    out, out_ok = output_args(draw, name, data)
    argv = [name, *out] + (["--key", key] if key is not None else [])
    return Case({name: raw}, argv, data if out_ok else None, certain)


# --- .csv / .txt ------------------------------------------------------------------------

BAD_TOKENS = ["abc", "1-1", "2x3", "1_0", "١", "0x10", "1e", "--1", "nan(1)", "1.2.3", "∞", "1d5"]


@st.composite
def text_cases(draw) -> Case:
    suffix = draw(st.sampled_from([".csv", ".txt"]))
    name = draw(NAMES) + suffix
    a = draw(matrices(max_side=4))
    complex_ = draw(st.integers(0, 4)) == 0
    if complex_:
        a = a + 1j * a[::-1, ::-1]
    cells = [
        [
            repr(float(v)) if not complex_ else f"{float(v.real)!r}{float(v.imag):+.17g}j"
            for v in row
        ]
        for row in a
    ]
    values, bad = a.copy(), set()  # the numbers a correct reading gives; broken cells
    for _ in range(draw(st.integers(0, 2))):  # special or broken tokens
        if not a.size:
            break
        i, j = draw(st.integers(0, a.shape[0] - 1)), draw(st.integers(0, a.shape[1] - 1))
        token = draw(st.sampled_from(["nan", "inf", "-inf", "1e999", "1e-999", "-0", " 7 ",
                                      *BAD_TOKENS]))  # fmt: skip
        if token in ("1e-999", "-0", " 7 "):
            values[i, j] = {"1e-999": 0.0, "-0": -0.0, " 7 ": 7.0}[token]
            bad.discard((i, j))
        else:
            bad.add((i, j))  # a non-number, or a non-finite one
        if token == " 7 " and suffix == ".txt":
            token = "7"
        cells[i][j] = token
    if complex_ and not any("j" in c for row in cells for c in row):
        values = values.real  # every complex cell replaced: a real table
    data = values if a.size and not bad else None
    sep = "," if suffix == ".csv" else draw(st.sampled_from([" ", "\t", "  "]))
    lines = [sep.join(row) for row in cells]
    if a.size and len(lines) >= 2 and draw(st.integers(0, 3)) == 0:  # a ragged row
        lines[draw(st.integers(0, len(lines) - 1))] += sep + "1"
        data = None
    for _ in range(draw(st.integers(0, 2))):  # blank lines, spaces, comments: all skipped
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", "  ", "# note"])))
    end = draw(st.sampled_from(["\n", "\r\n"]))
    raw = (end.join(lines) + end * draw(st.booleans())).encode()
    if draw(st.integers(0, 9)) == 0:
        raw, data = raw + "\n1\u00a02\n".encode(), None  # a no-break space in the data
    out, out_ok = output_args(draw, name, data)
    return Case({name: raw}, [name, *out], data if out_ok else None)


# --- .mtx -------------------------------------------------------------------------------


@st.composite
def mtx_cases(draw) -> Case:
    name = draw(NAMES) + ".mtx"
    a = draw(matrices(max_side=4))
    kind = draw(st.sampled_from(["real", "complex", "integer", "symmetric", "skew", "hermitian"]))
    if kind == "integer":
        a = np.clip(np.round(a), -99, 99).astype(np.int64)
    elif kind == "complex":
        a = a + 1j * a[::-1, ::-1]
    elif kind in ("symmetric", "skew", "hermitian"):
        s = a[: min(a.shape), : min(a.shape)]
        a = {
            "symmetric": s + s.T,
            "skew": s - s.T,
            "hermitian": (s + 1j * s.T) + (s + 1j * s.T).conj().T,
        }[kind]
    sparse = draw(st.booleans())
    f = io.BytesIO()
    if a.size:
        scipy.io.mmwrite(f, scipy.sparse.coo_matrix(a) if sparse else a, precision=17)
    else:  # SciPy's mmwrite never returns for an empty complex (0, n) array
        field = {"c": "complex", "i": "integer"}.get(a.dtype.kind, "real")
        f.write(
            f"%%MatrixMarket matrix array {field} general\n{a.shape[0]} {a.shape[1]}\n".encode()
        )
    lines = f.getvalue().decode().split("\n")
    if lines[0].split()[3] == "real" and a.dtype.kind == "c":  # mmwrite's choice for 0j
        a = a.real
    data, certain = expected(a), True
    mutation = draw(
        st.sampled_from(
            ["none"] * 3 + ["number", "drop", "repeat", "size", "banner", "index", "blank"]
        )
    )
    body = [k for k, line in enumerate(lines) if k > 0 and line and not line.startswith("%")]
    entries = body[1:]
    if mutation == "number" and entries:
        k = draw(st.sampled_from(entries))
        parts = lines[k].split()
        parts[-1] = draw(st.sampled_from(BAD_TOKENS))
        lines[k], data = " ".join(parts), None
    elif mutation == "drop" and entries:
        del lines[draw(st.sampled_from(entries))]
        data = None
    elif mutation == "repeat" and entries:
        k = draw(st.sampled_from(entries))
        lines.insert(k, lines[k])
        data = None
    elif mutation == "size":
        parts = lines[body[0]].split()
        i = draw(st.integers(0, len(parts) - 1))
        parts[i] = draw(st.sampled_from(["-1", "x", "99999999999", str(int(parts[i]) + 1)]))
        lines[body[0]], certain = " ".join(parts), False
    elif mutation == "banner":
        lines[0] = draw(
            st.sampled_from(
                [
                    "%%MatrixMarket matrix array",
                    "%MatrixMarket matrix array real general",
                    "%%MatrixMarket tensor array real general",
                    "",
                    "%%MatrixMarket matrix coordinate pattern hermitian",
                ]
            )
        )
        data = None
    elif mutation == "index" and sparse and entries:
        k = draw(st.sampled_from(entries))
        parts = lines[k].split()
        parts[draw(st.integers(0, 1))] = draw(st.sampled_from(["0", "99", "-1", "1.0"]))
        lines[k], data = " ".join(parts), None
    elif mutation == "blank":
        lines.insert(draw(st.integers(1, len(lines))), draw(st.sampled_from(["", "% c", "  "])))
    out, out_ok = output_args(draw, name, data)
    return Case({name: "\n".join(lines).encode()}, [name, *out], data if out_ok else None, certain)


# --- paths ------------------------------------------------------------------------------


@st.composite
def path_cases(draw) -> Case:
    good = npy_bytes(np.diag([2.0, 4.0]))
    name = draw(NAMES) + ".npy"
    kind = draw(
        st.sampled_from(
            [
                "missing",
                "directory",
                "unknown in",
                "unknown out",
                "alias",
                "dot alias",
                "symlink",
                "hard link",
                "plot alias",
                "fine",
            ]
        )
    )
    files, data = {name: good}, None
    if kind == "missing":
        return Case({}, [name], None)
    if kind == "directory":
        return Case({}, [name], None, dirs=(name,))
    if kind == "unknown in":
        return Case({name + ".dat": good}, [name + ".dat"], None)
    if kind == "unknown out":
        return Case(files, [name, "-o", "x" + draw(st.sampled_from([".dat", "", ".np"]))], None)
    if kind == "alias":
        return Case(files, [name, "-o", name], None)
    if kind == "dot alias":
        return Case(files, [name, "-o", os.path.join(".", name)], None)
    if kind in ("symlink", "hard link"):
        link = "link " + name
        return Case(files, [name, "-o", link], None, links=((kind, name, link),))
    if kind == "plot alias":
        return Case(files, [name, "--plot", "p.png"], None, links=(("hard link", name, "p.png"),))
    data = np.diag([2.0, 4.0])
    out, out_ok = output_args(draw, name, data)
    return Case(files, [name, *out], data if out_ok else None)


# --- running and checking ---------------------------------------------------------------


def run_in_process(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def run_subprocess(argv: list[str], cwd: str) -> tuple[int, str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "pseudoinverse", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, result.stdout, result.stderr


def read_output(path: str, empty: bool) -> np.ndarray:
    """The written pseudo-inverse, read back with NumPy's and SciPy's own readers."""
    if path.endswith(".npy"):
        return np.load(path)
    if path.endswith(".npz"):
        with np.load(path) as npz:
            assert npz.files == ["pinv"]
            return npz["pinv"]
    if path.endswith(".mtx"):
        if empty:  # SciPy's reader dies (SIGFPE) on an empty array: ours, tested against it
            with open(path, "rb") as f:
                return parse_matrix_market(f.read())
        m = scipy.io.mmread(path)
        return m.toarray() if hasattr(m, "toarray") else np.asarray(m)
    delimiter = "," if path.endswith(".csv") else None
    try:
        return np.loadtxt(path, delimiter=delimiter, ndmin=2)
    except ValueError:
        return np.loadtxt(path, delimiter=delimiter, ndmin=2, dtype=complex)


def overflows(data: np.ndarray) -> bool:
    """Whether the pseudo-inverse of ``data`` is near or beyond its dtype's largest number."""
    real = np.float64 if data.dtype.kind in "biu" else data.real.dtype.newbyteorder("=")
    m, n = data.shape[-2:]
    wide = data.astype(np.complex128 if data.dtype.kind == "c" else np.float64)
    s = np.linalg.svd(wide.reshape(-1, m, n), compute_uv=False) if data.size else np.ones((1, 1))
    tol = max(m, n) * float(np.finfo(real).eps) * s[:, :1]
    kept = np.where(s > tol, s, np.inf).min()
    return bool(kept < 1e3 / float(np.finfo(real).max))


def assert_is_pinv(data: np.ndarray, x: np.ndarray, path: str) -> None:
    m, n = data.shape[-2:]
    if path.endswith((".csv", ".txt", ".mtx")) and x.size == 0:
        return  # an empty text table reads back without its shape
    assert x.shape == (*data.shape[:-2], n, m), (x.shape, data.shape)
    if path.endswith((".npy", ".npz")):
        want = {"e": np.float16, "f": np.float32, "d": np.float64, "F": np.complex64}
        assert x.dtype == np.dtype(
            want.get(data.dtype.char, np.complex128 if data.dtype.kind == "c" else np.float64)
        )
    real = np.float64 if data.dtype.kind in "biu" else data.real.dtype.newbyteorder("=")
    eps = float(np.finfo(real).eps)
    batch = int(np.prod(data.shape[:-2]))  # not -1: the data may be empty
    wide = data.astype(np.complex128 if data.dtype.kind == "c" else np.float64)
    wide, xs = wide.reshape(batch, m, n), x.astype(np.complex128).reshape(batch, n, m)
    for a, xb in zip(wide, xs, strict=True):
        if not a.size:
            continue
        s = np.linalg.svd(a, compute_uv=False)
        tol = max(m, n) * eps * s[0]
        if np.any((s > tol / 1e3) & (s < tol * 1e3)):
            continue  # no clear margin: either rank decision is right
        kept = s[s > tol]
        if not kept.size:
            assert np.all(xb == 0)
            continue
        cond = kept[0] / kept[-1]
        if cond * eps > 1e-3:
            continue  # too ill-conditioned for this dtype to promise digits
        ref = np.linalg.pinv(a, rtol=max(m, n) * eps)
        bound = 1e3 * max(m, n) * cond * eps * np.abs(ref).max()
        np.testing.assert_allclose(xb, ref, rtol=0, atol=bound)


def check(case: Case, runner: str, existing: bool) -> None:
    folder = tempfile.mkdtemp(prefix="pi-fuzz-")
    try:
        for name, raw in case.files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(raw)
        for name in case.dirs:
            os.mkdir(os.path.join(folder, name))
        for kind, target, name in case.links:
            (os.symlink if kind == "symlink" else os.link)(
                os.path.join(folder, target), os.path.join(folder, name)
            )
        output = case.argv[case.argv.index("-o") + 1] if "-o" in case.argv else None
        existing = (
            existing and output is not None and not os.path.lexists(os.path.join(folder, output))
        )
        if existing:  # sometimes an output is already there: kept on failure
            with open(os.path.join(folder, output), "wb") as f:
                f.write(SENTINEL)
        before = {
            p: open(os.path.join(folder, p), "rb").read()
            for p in os.listdir(folder)
            if os.path.isfile(os.path.join(folder, p))
        }
        if runner == "subprocess":
            code, out, err = run_subprocess(case.argv, folder)
        else:
            cwd = os.getcwd()
            os.chdir(folder)
            try:
                code, out, err = run_in_process(case.argv)
            finally:
                os.chdir(cwd)
        if case.argv and case.argv[0].startswith("-"):  # argparse reads "-dash.npy" as an option
            case = dataclasses.replace(case, data=None, certain=True)
        assert "Traceback" not in err, err
        assert code in (0, 2), (code, err)
        after = set(os.listdir(folder))
        assert not [p for p in after if p.endswith(".tmp")], after  # no temporary file left
        for p, raw in before.items():  # the input (and any other file) unchanged...
            if p != output or code != 0:
                with open(os.path.join(folder, p), "rb") as f:
                    assert f.read() == raw, p
        if code == 2:
            assert err.startswith("pseudoinverse: error: ") and err.count("\n") == 1, err
            assert out == ""
            assert after == set(before) | set(case.dirs) | {n for _, _, n in case.links}
            refused = case.data is None or not case.certain
            assert refused or ("overflows" in err and overflows(case.data)), (case.argv, err)
            return
        assert err == "", err
        assert case.data is not None or not case.certain, (case.argv, out)
        empty_text = output is not None and output.endswith((".csv", ".txt"))
        if empty_text and case.data is not None and not case.data.size:
            with open(os.path.join(folder, output), "rb") as f:
                assert not f.read().strip()  # an empty table: at most empty lines
        elif output is not None:
            x = read_output(os.path.join(folder, output), case.data is None or not case.data.size)
            if case.data is not None and case.certain:
                assert_is_pinv(case.data, x, output)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@FUZZ
@given(npy_cases(), st.booleans())
def test_fuzz_npy(case, existing):
    check(case, "in-process", existing)


@FUZZ
@given(npz_cases(), st.booleans())
def test_fuzz_npz(case, existing):
    check(case, "in-process", existing)


@FUZZ
@given(text_cases(), st.booleans())
def test_fuzz_text(case, existing):
    check(case, "in-process", existing)


@FUZZ
@given(mtx_cases(), st.booleans())
def test_fuzz_mtx(case, existing):
    check(case, "in-process", existing)


@FUZZ
@given(path_cases(), st.booleans())
def test_fuzz_paths(case, existing):
    check(case, "in-process", existing)


@pytest.mark.skipif(os.name == "nt", reason="names with newlines; symbolic links")
@settings(FUZZ, max_examples=SUBPROCESS)
@given(st.one_of(npy_cases(), npz_cases(), text_cases(), mtx_cases(), path_cases()), st.booleans())
def test_fuzz_in_a_subprocess(case, existing):
    check(case, "subprocess", existing)
