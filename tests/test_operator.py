"""pinv_operator: LSMR's A^+ against live references (NumPy's pinv, SciPy's lsmr).

Accuracy is judged by LSMR's stopping rule: with ``atol = btol = 1e-10`` the solution's
relative error is about ``cond(A) * 1e-10`` for a consistent system and up to
``cond(A)^2 * 1e-10`` for a least-squares one; the matrices here have ``cond`` below
about 30 on their range, so ``TOL`` bounds both with a wide margin.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import pseudoinverse as pi
from pseudoinverse._methods.lsmr import STOP_REASONS, lsmr_block

TOL = 1e-6
CONVERGED = (1, 2, 4, 5)  # istop values that certify atol/btol
FORMATS = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")


def sparse(rng, m, n, dtype=np.float64, density=0.3, rank_deficient=False):
    """A well-conditioned sparse matrix (a random part plus a shifted diagonal); with
    ``rank_deficient``, its last two rows and columns repeat the first two (rank
    ``min(m, n) - 2``)."""
    rows, cols = (m - 2, n - 2) if rank_deficient else (m, n)
    a = sp.random_array((rows, cols), density=density, rng=rng, dtype=np.float64)
    a = a + 3 * sp.eye_array(rows, cols)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * sp.random_array((rows, cols), density=density, rng=rng)
    if rank_deficient:
        a = sp.csr_array(a)
        a = sp.vstack([a, a[:2]])
        a = sp.hstack([a, a[:, :2]])
    return sp.csr_array(a.astype(dtype))


def rhs(rng, m, k=None, dtype=np.float64):
    shape = (m,) if k is None else (m, k)
    b = rng.standard_normal(shape)
    return b + 1j * rng.standard_normal(shape) if np.dtype(dtype).kind == "c" else b


def close(x, ref, tol=TOL):
    scale = max(np.linalg.norm(ref), 1e-300)
    assert np.linalg.norm(x - ref) <= tol * scale, np.linalg.norm(x - ref) / scale


@pytest.mark.parametrize("shape", [(40, 25), (25, 40), (30, 30)], ids=["tall", "wide", "square"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("deficient", [False, True], ids=["full", "rank-deficient"])
def test_matches_dense_pinv(rng, shape, dtype, deficient):
    m, n = shape
    a = sparse(rng, m, n, dtype, rank_deficient=deficient)
    dense = a.toarray()
    if deficient:
        assert np.linalg.matrix_rank(dense) == min(m, n) - 2
    op = pi.pinv_operator(a)
    assert op.shape == (n, m) and op.dtype == np.dtype(dtype)
    b, B = rhs(rng, m, dtype=dtype), rhs(rng, m, 4, dtype)
    ref = np.linalg.pinv(dense)
    close(op @ b, ref @ b)
    assert op.info.istop[0] in CONVERGED
    x = op @ B
    assert x.shape == (n, 4)
    close(x, ref @ B)
    close(x, pi.pinv(dense) @ B)
    assert set(op.info.istop) <= set(CONVERGED) and op.info.itn.shape == (4,)
    if deficient:  # minimum norm: x lies in the row space, so A^+ A x = x
        close(ref @ (dense @ x), x)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["array", "matrix"])
def test_every_sparse_format(rng, fmt, kind):
    a = sparse(rng, 30, 20)
    one = (sp.csr_array(a) if kind == "array" else sp.csr_matrix(a)).asformat(fmt)
    assert one.format == fmt and sp.issparse(one)
    b = rhs(rng, 30, 3)
    x = pi.pinv_operator(one) @ b
    close(x, np.linalg.pinv(a.toarray()) @ b)
    np.testing.assert_allclose(x, pi.pinv_operator(a) @ b, rtol=0, atol=1e-13)


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.int64, np.float64), (np.int32, np.float64), (np.bool_, np.float64),
     (np.float32, np.float64), (np.complex64, np.complex128)],
)  # fmt: skip
def test_dtypes_are_promoted(rng, dtype, expected):
    base = sparse(rng, 12, 8, np.complex128 if np.dtype(dtype).kind == "c" else np.float64)
    a = (base * 4).astype(dtype) if np.dtype(dtype).kind in "iu" else base.astype(dtype)
    op = pi.pinv_operator(a)
    assert op.dtype == expected
    b = rhs(rng, 12)
    x = op @ b
    assert x.dtype == np.result_type(expected, b.dtype)
    close(x, np.linalg.pinv(a.toarray().astype(expected)) @ b)


@pytest.mark.parametrize("damping", [0.0, 0.5])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_several_rhs_equal_separate_scipy_lsmr(rng, damping, dtype):
    a = sparse(rng, 60, 35, dtype, density=0.15)
    B = rhs(rng, 60, 7, dtype)
    op = pi.pinv_operator(a, atol=1e-8, btol=1e-8, maxiter=300, damping=damping)
    x = op @ B
    for j in range(B.shape[1]):
        ref = sla.lsmr(a, B[:, j], damp=damping, atol=1e-8, btol=1e-8, maxiter=300)
        close(x[:, j], ref[0], 1e-5)  # both stopped by the same rule at 1e-8
        assert op.info.istop[j] == ref[1]
        steps = abs(int(op.info.itn[j]) - ref[2])
        assert steps <= 1  # the same recurrence, up to rounding
        np.testing.assert_allclose(op.info.normr[j], ref[3], rtol=1e-6)
        # |A|'s estimate sums the steps' alpha^2 + beta^2, which rounding changes by a few
        # percent once the Lanczos vectors lose orthogonality: close, not equal (the
        # run below, before that happens, checks it to rounding)
        np.testing.assert_allclose(op.info.norma[j], ref[5], rtol=0.1)
    # before orthogonality is lost, the recurrences agree to rounding
    with pytest.warns(pi.ConvergenceWarning, match="istop 7"):
        op5 = pi.pinv_operator(a, maxiter=5, damping=damping)
        x = op5 @ B
    for j in range(B.shape[1]):
        ref = sla.lsmr(a, B[:, j], damp=damping, atol=1e-10, btol=1e-10, maxiter=5)
        close(x[:, j], ref[0], 1e-10)
        assert (op5.info.istop[j], op5.info.itn[j]) == (ref[1], ref[2]) == (7, 5)
        np.testing.assert_allclose([op5.info.normr[j], op5.info.norma[j], op5.info.normx[j]],
                                   [ref[3], ref[5], ref[7]], rtol=1e-10)  # fmt: skip


def test_one_column_is_scipy_lsmr_and_the_block_agrees(rng):
    """``op @ b`` runs SciPy's lsmr itself; the block engine with k = 1 matches it too."""
    a = sparse(rng, 45, 30, np.complex128, density=0.15)
    b = rhs(rng, 45, dtype=np.complex128)
    op = pi.pinv_operator(a, damping=0.2, maxiter=200)
    ref = sla.lsmr(a, b, damp=0.2, atol=1e-10, btol=1e-10, maxiter=200)
    np.testing.assert_array_equal(op @ b, ref[0])
    assert op.info == tuple(np.array([v]) for v in ref[1:])
    ah = a.conj().T

    def fwd(v, out):
        out += a @ v

    def adj(u, out):
        out += ah @ u

    x, info = lsmr_block(fwd, adj, b[:, None], 30, damp=0.2, atol=1e-10, btol=1e-10,
                         maxiter=200)  # fmt: skip
    close(x[:, 0], ref[0], 1e-8)
    assert info.istop[0] == ref[1] and abs(int(info.itn[0]) - ref[2]) <= 1


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("index", [np.int32, np.int64])
@pytest.mark.parametrize("threads", ["1", "3"])
@pytest.mark.parametrize("piece_bytes", [1 << 20, 64])
def test_fused_step_is_the_two_products(rng, dtype, index, threads, piece_bytes, monkeypatch):
    """``CSRStep`` (``U += A V diag(w)``, ``A^H U``, the norms, over column pieces of
    ``A`` and row parts on threads) equals SciPy's two products and NumPy's norms to
    rounding, on one part and several (empty rows, a full row, a part with no entries),
    one piece and several, called again with fewer columns."""
    import pseudoinverse._methods.lsmr as engine
    import pseudoinverse._methods.parallel as parallel
    from pseudoinverse._methods.lsmr import CSRStep

    monkeypatch.setenv("PSEUDOINVERSE_NUM_THREADS", threads)
    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    monkeypatch.setattr(engine, "PIECE_BYTES", piece_bytes)
    a = sparse(rng, 70, 30, dtype, density=0.1).tolil()
    a[5:25] = 0  # empty rows: a part may hold no entries
    a[40] = rng.standard_normal(30)  # a full row
    a = sp.csr_array(a)
    a.indptr, a.indices = a.indptr.astype(index), a.indices.astype(index)
    step = CSRStep(a)
    for k in (6, 4, 1):
        v, u, w = rhs(rng, 30, k, dtype), rhs(rng, 70, k, dtype), rng.standard_normal(k)
        u_ref = u + a @ (v * w)
        t, sq = step(v, w, u)
        if piece_bytes == 64:
            assert len(step.pieces(k)) > 1
        np.testing.assert_allclose(u, u_ref, rtol=1e-14, atol=1e-14 * abs(u_ref).max())
        t_ref = a.conj().T @ u_ref
        np.testing.assert_allclose(t, t_ref, rtol=1e-13, atol=1e-13 * abs(t_ref).max())
        np.testing.assert_allclose(sq, np.linalg.norm(u_ref, axis=0) ** 2, rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_wide_blocks_run_in_groups(rng, dtype, monkeypatch):
    """A block wider than ``GROUP`` columns runs as groups, each its own block: the same
    answers and diagnostics as one block (columns do not interact; NumPy's column norms
    may round differently for another width), ragged last group too."""
    import pseudoinverse._methods.lsmr as engine

    a = sparse(rng, 60, 35, dtype, density=0.15)
    B = rhs(rng, 60, 7, dtype)
    op = pi.pinv_operator(a, atol=1e-9, btol=1e-9)
    whole, info = op @ B, op.info
    monkeypatch.setattr(engine, "GROUP", 3)
    grouped = op @ B
    close(grouped, whole, 1e-8)  # both stopped by the same rule at 1e-9
    assert np.all(np.abs(op.info.itn - info.itn) <= 1)
    np.testing.assert_array_equal(op.info.istop, info.istop)
    np.testing.assert_allclose(op.info.normr, info.normr, rtol=1e-6)


@pytest.mark.parametrize("scale", [1e200, 1e-200])
@pytest.mark.parametrize("k", [1, 3])
def test_huge_and_tiny_right_hand_sides(rng, scale, k):
    """Right-hand sides near 1e+-200 (their squares over- or underflow): the answer is
    the float64 reference's, scaled, alone and in a block, and so is the adjoint's."""
    a = sparse(rng, 50, 20, density=0.2)
    B = rhs(rng, 50, k)
    op = pi.pinv_operator(a)
    x = op @ (B * scale)
    close(x / scale, np.linalg.pinv(a.toarray()) @ B)
    assert np.all(np.isin(op.info.istop, CONVERGED))
    np.testing.assert_allclose(op.info.normx / scale, np.linalg.norm(x / scale, axis=0),
                               rtol=1e-6)  # fmt: skip
    y = rhs(rng, 20, k)
    close(op.H @ (y * scale) / scale, np.linalg.pinv(a.toarray()).conj().T @ y)


def test_column_norms_of_huge_entries():
    """Squares beyond float64's range: the scaled norms (the fused step falls back to
    them too), real and complex."""
    from pseudoinverse._methods.lsmr import column_norms

    a = np.array([[3e200, 1e-300], [4e200, 0.0]])
    np.testing.assert_allclose(column_norms(a), [5e200, 1e-300], rtol=1e-15)
    np.testing.assert_allclose(column_norms(a * (1 + 1j)), np.sqrt(2) * np.array([5e200, 1e-300]),
                               rtol=1e-15)  # fmt: skip


@pytest.mark.parametrize("scale", [1e200, 1e-200, 1e150])
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("damping", [0.0, 0.5])
def test_huge_and_tiny_matrices(rng, scale, k, damping):
    """A matrix's entries near 1e+-200 (LSMR's norms square them): scaled by a power of
    two first, so the answer is the float64 reference's (and the damping scales with
    it); ``info`` reports the unscaled problem's norms."""
    a = sparse(rng, 50, 20, density=0.2)
    B = rhs(rng, 50, k)
    dense = a.toarray()
    ref = np.linalg.solve(dense.T @ dense + damping**2 * np.eye(20), dense.T @ B)
    for mat in (a * scale, dense * scale):
        op = pi.pinv_operator(mat, damping=damping * scale)
        x = op @ B
        close(x * scale, ref)
        assert np.all(np.isin(op.info.istop, CONVERGED))
        np.testing.assert_allclose(op.info.normx * scale, np.linalg.norm(x * scale, axis=0),
                                   rtol=1e-6)  # fmt: skip
        # the estimate of |A| sums the steps' alpha^2 + beta^2: the unscaled run's, to
        # a few percent (rounding, once orthogonality is lost)
        plain = pi.pinv_operator(a, damping=damping)
        plain @ B
        np.testing.assert_allclose(op.info.norma / scale, plain.info.norma, rtol=0.1)


def test_gain_rescaling_changes_nothing(rng, monkeypatch):
    """The block keeps u times a per-column gain; rescaling it (normally after hundreds
    of steps) at every step gives the same answers as SciPy's lsmr."""
    import pseudoinverse._methods.lsmr as engine

    monkeypatch.setattr(engine, "GAIN_LIMIT", 1.0 + 1e-12)  # rescale at (almost) every step
    a = sparse(rng, 40, 25, np.complex128, density=0.15)
    B = rhs(rng, 40, 3, np.complex128)
    with pytest.warns(pi.ConvergenceWarning):
        x = pi.pinv_operator(a, maxiter=6) @ B
    for j in range(3):
        ref = sla.lsmr(a, B[:, j], atol=1e-10, btol=1e-10, maxiter=6)[0]
        close(x[:, j], ref, 1e-10)
    close(pi.pinv_operator(a) @ B, np.linalg.pinv(a.toarray()) @ B)


@pytest.mark.parametrize("shape", [(30, 18), (18, 30)])
def test_damped_matches_damped_pinv(rng, shape):
    m, n = shape
    a = sparse(rng, m, n, np.complex128)
    lam = 0.7
    op = pi.pinv_operator(a, damping=lam)
    ref = pi.damped_pinv(a.toarray(), lam)
    dense = a.toarray()  # the definition, independently: (A^H A + lam^2 I)^-1 A^H
    np.testing.assert_allclose(
        ref, np.linalg.solve(dense.conj().T @ dense + lam**2 * np.eye(n), dense.conj().T),
        atol=1e-12,
    )  # fmt: skip
    b, y = rhs(rng, m, 3, np.complex128), rhs(rng, n, 2, np.complex128)
    close(op @ b, ref @ b)
    close(op.H @ y, ref.conj().T @ y)


def test_linear_operator_input(rng):
    a = sparse(rng, 35, 20, np.complex128)
    b = rhs(rng, 35, 3, np.complex128)
    ref = np.linalg.pinv(a.toarray())
    for linear in (sla.aslinearoperator(a), sla.aslinearoperator(a.toarray())):
        op = pi.pinv_operator(linear)
        assert op.shape == (20, 35) and op.dtype == np.complex128
        close(op @ b, ref @ b)
        close(op.H @ b[:20], ref.conj().T @ b[:20])
    close(pi.pinv_operator(a.toarray()) @ b, ref @ b)  # a dense array too


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_adjoint(rng, dtype):
    a = sparse(rng, 40, 22, dtype, rank_deficient=True)
    ref = np.linalg.pinv(a.toarray()).conj().T  # (A^+)^H, shape (m, n)
    op = pi.pinv_operator(a)
    y, Y = rhs(rng, 22, dtype=dtype), rhs(rng, 22, 5, dtype)
    close(op.H @ y, ref @ y)
    close(op.rmatvec(y), ref @ y)
    close(op.H.matmat(Y), ref @ Y)
    assert op.info.itn.shape == (5,)  # the adjoint's solve is recorded too


def test_matmat_one_and_many_columns(rng):
    a = sparse(rng, 25, 15)
    op = pi.pinv_operator(a)
    ref = np.linalg.pinv(a.toarray())
    for b in (rhs(rng, 25), rhs(rng, 25, 1), rhs(rng, 25, 9)):
        x = op @ b
        assert x.shape == (15, *b.shape[1:])
        close(x, ref @ b)
    close(op.matvec(b[:, 0]), ref @ b[:, 0])
    close(op.matmat(b), ref @ b)
    mixed = np.column_stack([np.zeros(25), b[:, 0]])  # a zero column is exact at once
    x = op @ mixed
    assert np.all(x[:, 0] == 0) and op.info.istop[0] == 0 and op.info.itn[0] == 0
    close(x[:, 1], ref @ b[:, 0])


def test_real_operator_on_complex_rhs(rng):
    a = sparse(rng, 20, 12)
    b = rhs(rng, 20, 2, np.complex128)
    x = pi.pinv_operator(a) @ b
    assert x.dtype == np.complex128
    close(x, np.linalg.pinv(a.toarray()) @ b)


@pytest.mark.parametrize("shape", [(5, 4), (0, 4), (4, 0), (0, 0)])
def test_zero_and_empty(rng, shape):
    m, n = shape
    op = pi.pinv_operator(sp.csr_array(shape))
    assert op.shape == (n, m)
    x = op @ rhs(rng, m, 3)
    assert x.shape == (n, 3) and np.all(x == 0)
    assert np.all(op.info.istop == 0) and np.all(op.info.itn == 0)
    y = op.H @ rhs(rng, n, 2)
    assert y.shape == (m, 2) and np.all(y == 0)
    assert np.all(pi.pinv_operator(sparse(rng, 6, 4)) @ np.zeros(6) == 0)  # b = 0: x = 0


def test_nonconvergence_warns_with_columns_and_reason(rng):
    dense = np.diag(np.logspace(0, -6, 30))[:, :20]  # cond 1e4: far from done in 3 steps
    a = sp.csr_array(dense)
    op = pi.pinv_operator(a, maxiter=3)
    B = rhs(rng, 30, 4)
    B[:, 2] = 0  # exact at once: not named
    with pytest.warns(pi.ConvergenceWarning, match=r"3 of 4 .* \[0, 1, 3\]: istop 7") as rec:
        x = op @ B
    assert STOP_REASONS[7] in str(rec[0].message) and "maxiter 3" in str(rec[0].message)
    assert issubclass(pi.ConvergenceWarning, RuntimeWarning)
    assert list(op.info.istop) == [7, 7, 0, 7] and list(op.info.itn) == [3, 3, 0, 3]
    # the result is LSMR's third iterate, as SciPy's lsmr gives it
    ref = sla.lsmr(a, B[:, 0], atol=1e-10, btol=1e-10, maxiter=3)[0]
    np.testing.assert_allclose(x[:, 0], ref, rtol=1e-10, atol=1e-12)
    with pytest.warns(pi.ConvergenceWarning, match="adjoint"):
        op.H @ rhs(rng, 20)


def test_conlim_stop_warns(rng):
    a = sp.csr_array(np.diag(np.logspace(0, -9, 12)))
    with pytest.warns(pi.ConvergenceWarning, match="istop 3"):
        pi.pinv_operator(a, conlim=10.0, maxiter=100) @ np.ones(12)


BAD = {
    "1-D": (np.ones(3), {}, ValueError, r"2-D matrix \(m, n\), got shape \(3,\)"),
    "3-D": (np.ones((2, 3, 3)), {}, ValueError, r"got shape \(2, 3, 3\)"),
    "1-D sparse": (sp.coo_array(np.ones(3)), {}, ValueError, r"got shape \(3,\)"),
    "strings": (np.array([["a", "b"]]), {}, TypeError, "numeric entries, got a array of dtype"),
    "object": (object(), {}, TypeError, "got object"),
    "None": (None, {}, TypeError, "got NoneType"),
    "NaN sparse": (sp.csr_array(np.array([[1.0, 0], [0, np.nan]])), {}, ValueError,
                   r"finite entries, got nan in A at \[1, 1\]"),
    "Inf dense": (np.array([[1.0, np.inf]]), {}, ValueError, r"got inf in A at \[0, 1\]"),
    "negative damping": (np.eye(2), {"damping": -1.0}, ValueError, "damping a finite .* -1.0"),
    "NaN damping": (np.eye(2), {"damping": np.nan}, ValueError, "damping a finite .* nan"),
    "Inf damping": (np.eye(2), {"damping": np.inf}, ValueError, "damping a finite"),
    "negative atol": (np.eye(2), {"atol": -1e-3}, ValueError, "atol a finite number >= 0"),
    "string btol": (np.eye(2), {"btol": "1e-3"}, TypeError, "btol a real number, got str"),
    "bool atol": (np.eye(2), {"atol": True}, TypeError, "atol a real number, got bool"),
    "maxiter 0": (np.eye(2), {"maxiter": 0}, ValueError, "maxiter None or an integer >= 1, got 0"),
    "maxiter float": (np.eye(2), {"maxiter": 2.5}, ValueError, "got 2.5"),
    "negative conlim": (np.eye(2), {"conlim": -1}, ValueError, "conlim"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input(name):
    a, kwargs, error, message = BAD[name]
    with pytest.raises(error, match=message):
        pi.pinv_operator(a, **kwargs)


def test_bad_right_hand_side():
    op = pi.pinv_operator(sp.eye_array(3))
    with pytest.raises(ValueError, match=r"got nan in the right-hand side at \[2, 0\]"):
        op @ np.array([1.0, 2.0, np.nan])
    with pytest.raises(TypeError, match="right-hand side must be numeric"):
        op.matvec(np.array(["a", "b", "c"]))
    with pytest.raises(ValueError):  # SciPy's own shape check
        op @ np.ones(4)


def test_import_does_not_load_scipy_sparse():
    code = "import sys, pseudoinverse; print('scipy.sparse' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.split() == ["False"], result


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 9), st.integers(1, 9), st.floats(0.1, 0.9), st.integers(0, 2**32 - 1),
       st.booleans())  # fmt: skip
def test_penrose_conditions_on_the_applied_operator(m, n, density, seed, complex_):
    rng = np.random.default_rng(seed)
    a = sp.random_array((m, n), density=density, rng=rng)
    if complex_:
        a = a + 1j * sp.random_array((m, n), density=density, rng=rng)
    dense = a.toarray()
    s = np.linalg.svd(dense, compute_uv=False)
    kept = s[s > 1e-8 * max(s.max(initial=0), 1e-300)]
    assume(
        not s.size
        or not kept.size
        or (kept.max() / kept.min() < 100 and not np.any((s > 1e-12) & (s <= 1e-8 * s.max())))
    )
    op = pi.pinv_operator(a, maxiter=10 * min(m, n) + 50)
    b, y = rhs(rng, m, 2, dense.dtype), rhs(rng, m, 2, dense.dtype)
    x = op @ b
    tol = 1e-6 * (np.linalg.norm(b) + 1e-300)
    assert np.linalg.norm(dense @ (op @ (dense @ x)) - dense @ x) <= tol  # A X A = A
    assert np.linalg.norm(op @ (dense @ x) - x) <= tol * max(1, 1 / kept.min(initial=1))
    ax_b, ax_y = dense @ x, dense @ (op @ y)  # (A X)^H = A X: <A X b, y> = <b, A X y>
    assert abs(np.vdot(ax_b, y) - np.vdot(b, ax_y)) <= tol * np.linalg.norm(y)
    if kept.size:
        close(x, np.linalg.pinv(dense) @ b, 1e-5)
    else:  # the zero matrix
        assert np.all(x == 0)
