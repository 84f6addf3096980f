"""The command line's files: strict readers, the writers, and the output-path rules.

Every reader either returns a NumPy array or raises ``BadInput`` with one line that
names the file (escaped: a newline in a name stays on the line) and, for text formats,
the line number. Nothing here can take the process down on a malformed file: Matrix
Market is parsed in Python (SciPy's compiled reader crashed on some malformed files and
read ``1-1`` as 1), ``.npy`` headers are checked against the file's size before NumPy
reads the data, and text is checked to be ASCII numbers before NumPy parses it.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import stat
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

FORMATS = (".npy", ".npz", ".csv", ".txt", ".mtx")
# A Matrix Market coordinate file of a few bytes can announce any size; a dense matrix
# beyond 2**30 entries (8 GiB in float64) would also be beyond a dense pseudo-inverse.
MAX_DENSE_ENTRIES = 2**30
# Significant digits that round-trip a float of this many bytes ("%.17g" for float64).
_DIGITS = {2: 5, 4: 9, 8: 17}
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


class BadInput(Exception):
    """A problem with the user's input: one line on stderr, exit status 2."""


def show(text: object) -> str:
    """``text`` on one printable line: control and unprintable characters as escapes.

    ``repr``'s escapes (``\\n``, ``\\x1b``, ``\\udcff`` for undecodable bytes of a file
    name), applied only where needed, so an ordinary path or message reads as it is.
    """
    s = str(text)
    if s.isprintable():
        return s
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in s)


def suffix_of(path: str, what: str) -> str:
    """The lower-case extension of ``path`` if it is a supported format, else BadInput."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise BadInput(
            f"unknown {what} format {show(suffix or '(none)')!r} of {show(path)}; "
            f"use {' '.join(FORMATS)}"
        )
    return suffix


# --- reading ---------------------------------------------------------------------------


def read_matrix(path: str, key: str | None, flag: str = "--key", what: str = "input",
                sparse: bool = False) -> Any:  # fmt: skip
    """The array in ``path`` (any of ``FORMATS``; ``key``, from ``flag``, picks an .npz's).

    With ``sparse``, a Matrix Market ``coordinate`` file gives a ``scipy.sparse.coo_array``
    (never densified); every other file, an ndarray as without it.
    """
    suffix = suffix_of(path, what)
    if key is not None and suffix != ".npz":
        raise BadInput(f"{flag} is for .npz {what}, got {show(path)}")
    if os.path.isdir(path):
        raise BadInput(f"{show(path)} is a directory, not a matrix file")
    if not os.path.lexists(path):
        raise BadInput(f"no such file: {show(path)}")
    if not os.path.exists(path):
        raise BadInput(f"{show(path)} is a broken symbolic link")
    if not os.path.isfile(path):  # a FIFO or a device: reading it could block or not end
        raise BadInput(f"{show(path)} is not a regular file")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise BadInput(f"cannot read {show(path)}: {err.strerror}") from None
    try:
        if suffix == ".npy":
            return _read_npy(data)
        if suffix == ".npz":
            return _read_npz(data, key, flag)
        if suffix == ".mtx":
            return parse_matrix_market(data, sparse)
        return _read_text(data, "," if suffix == ".csv" else None)
    except BadInput as err:
        raise BadInput(f"cannot read {show(path)}: {err}") from None
    except Exception as err:  # NumPy's and zipfile's parsers raise many types: all mean bad input
        message = str(err).splitlines()[0] if str(err).strip() else type(err).__name__
        raise BadInput(f"cannot read {show(path)}: {show(message)}") from None


def _read_npy(data: bytes) -> np.ndarray:
    if not data.startswith(b"\x93NUMPY"):  # NumPy's format.MAGIC_PREFIX
        raise BadInput("not a NumPy .npy file")
    return _npy_array(io.BytesIO(data), len(data))


def _npy_array(f: IO[bytes], size: int) -> np.ndarray:
    """Read one ``.npy`` stream of ``size`` bytes, checking its header before its data."""
    fmt = np.lib.format
    version = fmt.read_magic(f)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(f)
    elif version == (2, 0):
        shape, fortran, dtype = fmt.read_array_header_2_0(f)
    else:  # 3.0 only adds UTF-8 field names: structured data, which is no matrix anyway
        raise BadInput(f"unsupported .npy format version {version[0]}.{version[1]}")
    if any(d < 0 for d in shape):
        raise BadInput(f"invalid shape {shape} in the header")
    if dtype.hasobject or dtype.kind not in "biufc":
        raise BadInput(f"the data must be numbers, got dtype {dtype}")
    need = int(np.prod(shape, dtype=object)) * dtype.itemsize  # Python ints: no overflow
    have = size - f.tell()
    if have < need:
        raise BadInput(f"truncated: shape {shape} of {dtype} needs {need} bytes, found {have}")
    a = np.frombuffer(f.read(need), dtype=dtype)
    return a.reshape(shape[::-1]).T if fortran else a.reshape(shape)


def _read_npz(data: bytes, key: str | None, flag: str) -> np.ndarray:
    if not data.startswith(b"PK"):  # a zip file; else zipfile's message is obscure
        raise BadInput("not a NumPy .npz file")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        members = {name.removesuffix(".npy"): name for name in z.namelist()}
        keys = list(members)
        if not keys:
            raise BadInput("it holds no arrays")
        if key is None and len(keys) != 1:
            raise BadInput(f"it holds arrays {show(keys)}; choose one with {flag} NAME")
        if key is not None and key not in members:
            raise BadInput(f"it has no array {show(repr(key))}; it holds {show(keys)}")
        name = members[key if key is not None else keys[0]]
        with z.open(name) as f:
            return _npy_array(f, z.getinfo(name).file_size)


# Printable ASCII, space and tab (and \r of a Windows line end): what a number table holds
# before a "#" comment; anything else (a NUL, U+00A0 that splits like a space) is refused.
_TEXT_LINE = re.compile(r"[\x20-\x7e\t]*\r?")
_TEXT_CHAR = re.compile(r"[\x20-\x7e\t]")


def _read_text(data: bytes, delimiter: str | None) -> np.ndarray:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise BadInput(f"line {line}: not UTF-8 text") from None
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        head = line.split("#", 1)[0]
        if not _TEXT_LINE.fullmatch(head):
            bad = next((c for c in head if not _TEXT_CHAR.fullmatch(c)), "\r")
            raise BadInput(f"line {number}: unexpected character {bad!r} in a number table")
    # A line of spaces is blank, as an empty one is (loadtxt reads it as one empty field).
    text = "\n".join(line if line.strip(" \t\r") else "" for line in lines)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty file: reported below as no numbers
        try:
            a = np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=2)
        except ValueError as err:
            try:  # complex entries such as 1+2j
                a = np.loadtxt(io.StringIO(text), delimiter=delimiter, ndmin=2, dtype=complex)
            except ValueError:
                message = str(err).splitlines()[0].split("; use `usecols`")[0]  # not our advice
                raise BadInput(message) from None
    if a.size == 0:
        raise BadInput("it holds no numbers")
    return a


# --- Matrix Market ---------------------------------------------------------------------

# The NIST format (https://math.nist.gov/MatrixMarket/formats.html); numbers as C's
# strtod reads them, plus NaN/Inf so that those get their own clear error later.
_REAL = (
    r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?"
    r"|[+-]?(?:[nN][aA][nN]|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?)"
)
_INT = r"[+-]?\d+"
_INDEX = r"\d+"
_FIELDS = {"real": [_REAL], "integer": [_INT], "complex": [_REAL, _REAL], "pattern": []}
_SYMMETRIES = ("general", "symmetric", "skew-symmetric", "hermitian")
_DTYPES = {"real": np.float64, "integer": np.int64, "complex": np.complex128, "pattern": np.float64}


class _MMError(BadInput):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")


def _line_pattern(tokens: list[str]) -> re.Pattern[str]:
    body = r"[ \t]+".join(f"({t})" for t in tokens)
    return re.compile(rf"[ \t]*{body}[ \t]*\r?", re.ASCII)  # ASCII: no Arabic digit as \d


def parse_matrix_market(data: bytes | str, sparse: bool = False) -> Any:
    """A Matrix Market file's matrix as a dense array (``sparse``: a ``coordinate`` one as
    a ``scipy.sparse.coo_array`` of any size), read strictly.

    Formats ``array`` (dense, column-major) and ``coordinate`` (1-based ``i j value``);
    fields ``real``/``integer``/``complex``/``pattern``; symmetries ``general``,
    ``symmetric``, ``skew-symmetric``, ``hermitian``, of which only the stored triangle
    (on and below the diagonal; strictly below for skew-symmetric) may be given.
    Repeated coordinates are summed, as ``scipy.io.mmread`` does. ``%`` comment lines
    and blank lines may appear anywhere after the banner. Any other deviation (a bad
    number such as ``1-1`` or ``2x3``, a wrong count of entries, an index out of range)
    is a ``BadInput`` naming the line.
    """
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _MMError(data.count(b"\n", 0, err.start) + 1, "not UTF-8 text") from None
    lines = data.split("\n")
    banner = re.split(r"[ \t]+", lines[0].strip(" \t\r"))
    if not banner or banner[0].lower() != "%%matrixmarket":
        raise _MMError(1, "not a Matrix Market file (no %%MatrixMarket banner)")
    if len(banner) != 5 or banner[1].lower() != "matrix":
        raise _MMError(1, "the banner must read %%MatrixMarket matrix FORMAT FIELD SYMMETRY")
    fmt, field, symmetry = (t.lower() for t in banner[2:])
    if fmt not in ("array", "coordinate"):
        raise _MMError(1, f"unknown format {show(fmt)!r}; use array or coordinate")
    if field not in _FIELDS:
        raise _MMError(1, f"unknown field {show(field)!r}; use {', '.join(_FIELDS)}")
    if symmetry not in _SYMMETRIES:
        raise _MMError(1, f"unknown symmetry {show(symmetry)!r}; use {', '.join(_SYMMETRIES)}")
    if field == "pattern" and (fmt == "array" or symmetry not in ("general", "symmetric")):
        raise _MMError(1, f"a pattern matrix cannot be {fmt} {symmetry}")
    if symmetry == "hermitian" and field != "complex":
        raise _MMError(1, "a hermitian matrix must be complex (a real one is symmetric)")

    rows = (
        (k, line) for k, line in enumerate(lines[1:], 2) if line.strip(" \t\r")[:1] not in ("", "%")
    )
    size_line, text = next(rows, (len(lines), ""))
    counts = [_INDEX] * (2 if fmt == "array" else 3)
    match = _line_pattern(counts).fullmatch(text)
    if match is None:
        what = "M N" if fmt == "array" else "M N ENTRIES"
        raise _MMError(size_line, f"expected the size line {what!r}, got {show(text)!r}")
    m, n, *nnz = (int(v) for v in match.groups())
    if symmetry != "general" and m != n:
        raise _MMError(size_line, f"a {symmetry} matrix must be square, got {m} x {n}")
    sparse = sparse and fmt == "coordinate"
    if max(m, n) > MAX_DENSE_ENTRIES or (m * n > MAX_DENSE_ENTRIES and not sparse):
        raise _MMError(size_line, f"{m} x {n} is too large for a dense pseudo-inverse")
    if fmt == "array":
        expected = {"general": m * n, "skew-symmetric": n * (n - 1) // 2}.get(
            symmetry, n * (n + 1) // 2
        )
        tokens = _FIELDS[field]
    else:
        expected, tokens = nnz[0], [_INDEX, _INDEX, *_FIELDS[field]]

    pattern, found, numbers = _line_pattern(tokens), [], []
    for k, text in rows:
        entry = pattern.fullmatch(text)
        if entry is None:
            raise _MMError(k, _entry_problem(text, len(tokens), field))
        if len(found) == expected:
            raise _MMError(k, f"more entries than the {expected} the size line announces")
        found.append(k)
        numbers.append(entry.groups())
    if len(found) < expected:
        raise _MMError(len(lines), f"{len(found)} entries; the size line announces {expected}")
    table = np.array(numbers, dtype=str).reshape(expected, len(tokens))
    if fmt == "array":
        return _dense(table, field, symmetry, m, n, found)
    return _coordinate(table, field, symmetry, m, n, found, sparse)


def _entry_problem(text: str, width: int, field: str) -> str:
    """Why a data line does not match: the count of numbers, or the first bad one."""
    parts = text.split()
    if len(parts) != width:
        return f"expected {width} numbers ({field} entry), got {len(parts)}: {show(text)!r}"
    return f"not a {field} entry: {show(text.strip())!r}"


def _values(table: np.ndarray, field: str, found: list[int]) -> np.ndarray:
    if field == "pattern":
        return np.ones(len(table))
    if field == "integer":
        big = [i for i, v in enumerate(table[:, 0]) if not -(2**63) <= int(v) < 2**63]
        if big:
            raise _MMError(found[big[0]], f"integer {table[big[0], 0]} is out of the int64 range")
        return table[:, 0].astype(np.int64)
    real = np.array([float(v) for v in table.ravel()]).reshape(table.shape)
    # A view, not real + 1j * imag: 1j * inf would put a NaN into the real part.
    return real.view(np.complex128)[:, 0] if field == "complex" else real[:, 0]


def _dense(table, field, symmetry, m, n, found) -> np.ndarray:
    values = _values(table, field, found)
    if symmetry == "general":
        return np.ascontiguousarray(values.reshape(n, m).T)
    # Column-major lower triangle: column j, rows j..n-1 (strictly below for skew).
    cols, rows = np.triu_indices(n, 1 if symmetry == "skew-symmetric" else 0)
    return _mirror(values, rows, cols, symmetry, n, found)


def _coordinate(table, field, symmetry, m, n, found, sparse=False) -> Any:
    index = np.array([int(v) if len(v) < 19 else 2**62 for v in table[:, :2].ravel()], np.int64)
    rows, cols = index.reshape(-1, 2).T - 1  # 1-based in the file; huge ones: out of range
    bad = np.flatnonzero((rows < 0) | (rows >= m) | (cols < 0) | (cols >= n))
    if bad.size:
        i, j = table[bad[0], :2]
        raise _MMError(found[bad[0]], f"index ({i}, {j}) is outside the {m} x {n} matrix")
    values = _values(table[:, 2:], field, found)
    if sparse and symmetry == "general":
        return _coo(values, rows, cols, m, n)
    if symmetry == "general":
        a = np.zeros((m, n), dtype=_DTYPES[field])
        np.add.at(a, (rows, cols), values)  # repeated entries add up, as in scipy.io.mmread
        return a
    above = np.flatnonzero(rows < cols if symmetry != "skew-symmetric" else rows <= cols)
    if above.size:
        i, j = table[above[0], :2]
        where = "on or above" if symmetry == "skew-symmetric" else "above"
        raise _MMError(found[above[0]], f"entry ({i}, {j}) is {where} the diagonal of a "
                       f"{symmetry} matrix, which stores only the lower triangle")  # fmt: skip
    if sparse:
        _real_diagonal(values, rows, cols, symmetry, found)
        strict = rows != cols
        mirrored = {"symmetric": values, "skew-symmetric": -values, "hermitian": np.conj(values)}
        return _coo(np.concatenate([values, mirrored[symmetry][strict]]),
                    np.concatenate([rows, cols[strict]]), np.concatenate([cols, rows[strict]]),
                    n, n)  # fmt: skip
    return _mirror(values, rows, cols, symmetry, n, found)


def _coo(values: np.ndarray, rows: np.ndarray, cols: np.ndarray, m: int, n: int) -> Any:
    """The sparse matrix, repeated entries summed as in scipy.io.mmread (lazy SciPy)."""
    import scipy.sparse

    a = scipy.sparse.coo_array((values, (rows, cols)), shape=(m, n))
    a.sum_duplicates()
    return a


def _real_diagonal(values, rows, cols, symmetry, found) -> None:
    diagonal = np.flatnonzero((rows == cols) & (np.imag(values) != 0))
    if symmetry == "hermitian" and diagonal.size:
        raise _MMError(found[diagonal[0]], "a hermitian matrix has a real diagonal")


def _mirror(values, rows, cols, symmetry, n, found) -> np.ndarray:
    """The full matrix from its lower triangle's entries (summed where repeated)."""
    _real_diagonal(values, rows, cols, symmetry, found)
    low = np.zeros((n, n), dtype=values.dtype)
    np.add.at(low, (rows, cols), values)
    strict = np.tril(low, -1)
    upper = {"symmetric": strict, "skew-symmetric": -strict, "hermitian": strict.conj()}
    return low + upper[symmetry].T


# --- writing ---------------------------------------------------------------------------


def save(x: np.ndarray, suffix: str, f: IO[bytes], name: str = "pinv") -> None:
    """Write ``x`` to ``f`` in ``suffix``'s format (an .npz member ``name``); 1-D as a column."""
    if x.ndim == 1 and suffix not in (".npy", ".npz"):
        x = x[:, None]  # a solution vector: an (n, 1) column in the matrix formats
    if suffix == ".npy":
        np.save(f, x)
    elif suffix == ".npz":
        np.savez(f, **{name: x})
    elif suffix == ".mtx":
        _write_matrix_market(f, x)
    elif x.size == 0:  # empty rows; no format string of x.shape[-1] cells
        f.write(b"\n" * x.shape[0])
    else:
        delimiter = "," if suffix == ".csv" else " "
        digits = _DIGITS.get(x.real.dtype.itemsize, 17)
        cell = f"%.{digits}g%+.{digits}gj" if x.dtype.kind == "c" else f"%.{digits}g"
        np.savetxt(f, x, fmt=delimiter.join([cell] * x.shape[-1]), delimiter=delimiter)


def _write_matrix_market(f: IO[bytes], x: np.ndarray) -> None:
    """A dense ``array ... general`` Matrix Market file, numbers as ``repr`` (round-trip).

    Ours, not ``scipy.io.mmwrite``: SciPy's compiled writer never returns for an empty
    complex (0, n) array (and its reader dies on an empty array).
    """
    field = "complex" if x.dtype.kind == "c" else "real"
    f.write(f"%%MatrixMarket matrix array {field} general\n%\n{x.shape[0]} {x.shape[1]}\n".encode())
    values = x.T.ravel()  # column-major, as the format stores it
    step = 1 << 16  # a bounded amount of text in memory at a time
    for start in range(0, values.size, step):
        chunk = values[start : start + step].tolist()  # Python numbers: exact, shortest repr
        if field == "complex":
            lines = [f"{v.real!r} {v.imag!r}" for v in chunk]
        else:
            lines = [repr(v) for v in chunk]
        f.write(("\n".join(lines) + "\n").encode())


def check_output(path: str, inputs: list[tuple[str, str]], flag: str) -> None:
    """Refuse an output that is an input (by name, symbolic or hard link) or unwritable.

    ``inputs`` are ``(path, what)`` pairs: ``what`` names the file in the message.
    """
    real = os.path.realpath(path)
    for source, what in inputs:
        same = os.path.realpath(source) == real
        with contextlib.suppress(OSError):  # a missing file is no alias
            same = same or os.path.samefile(source, path)
        if same:
            raise BadInput(f"{flag} {show(path)} is the {what} file {show(source)}; "
                           f"choose another name (the {what} is left as it is)")  # fmt: skip
    if os.path.isdir(real):
        raise BadInput(f"cannot write {show(path)}: it is a directory")
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        raise BadInput(f"cannot write {show(path)}: no such directory {show(folder)}")


def write_all(jobs: list[tuple[str, Callable[[IO[bytes]], Any]]]) -> None:
    """Write every ``(path, writer)`` to a temp file beside it, then move all into place.

    Paths are resolved first, so a symbolic link to an output is written through (as a
    shell's ``>`` does) rather than replaced. Until every writer has succeeded, no
    target is touched; a failure removes the temporary files.
    """
    temps: list[tuple[str, str, str]] = []
    try:
        for path, writer in jobs:
            target = os.path.realpath(path)
            folder, name = os.path.split(target)
            tmp = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
            try:  # O_EXCL: never an existing file; mode 0o666 & ~umask, as for any new file
                fd = os.open(tmp, _NEW_FILE, 0o666)
            except OSError as err:
                raise BadInput(f"cannot write {show(path)}: {err.strerror}") from None
            temps.append((tmp, target, path))
            with contextlib.suppress(OSError):  # a replaced output keeps its permissions
                os.chmod(tmp, stat.S_IMODE(os.stat(target).st_mode))
            try:
                with os.fdopen(fd, "wb") as f:
                    writer(f)
            except (OSError, ValueError, TypeError) as err:
                raise BadInput(f"cannot write {show(path)}: {show(err)}") from None
        for tmp, target, path in temps:
            try:
                os.replace(tmp, target)
            except OSError as err:
                raise BadInput(f"cannot write {show(path)}: {err.strerror}") from None
    finally:
        for tmp, _, _ in temps:
            with contextlib.suppress(OSError):
                os.remove(tmp)
