"""PyTorch tensors in and out, against torch.linalg.pinv, and differentiable.

Both compute paths are exercised: ``numpy`` is the zero-copy CPU fast path (no grad);
``torch`` forces the torch-operations path that tensors on other devices, tensors
needing grad and ``torch.func`` transforms take.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import pseudoinverse as pi  # noqa: E402
from pseudoinverse._backends import _torch as backend  # noqa: E402

DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
SHAPES = ((3, 3), (5, 3), (3, 5), (1, 4), (4, 1), (2, 4, 3), (2, 3, 3, 2))


@pytest.fixture(params=["numpy", "torch"])
def path(request, monkeypatch):
    if request.param == "torch":
        monkeypatch.setattr(backend, "_numpy_ok", lambda a: False)
    return request.param


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(shape, dtype=torch.float64, seed=0):
    return torch.randn(shape, dtype=dtype, generator=gen(seed))


def low_rank(m, n, r, dtype=torch.float64, batch=(), seed=0):
    b = randn((*batch, m, r), dtype, seed)
    c = randn((*batch, n, r), dtype, seed + 1)
    return b @ c.mH


def tol(dtype) -> float:
    """Agreement between two backward-stable pinv implementations, well-conditioned."""
    return 1e-4 if dtype in (torch.float32, torch.complex64) else 1e-10


def hermitian_from_lower(a):
    return torch.tril(a) + torch.tril(a, -1).mH


# --------------------------------------------------------------- values vs torch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_matches_torch_linalg_pinv(path, shape, dtype):
    a = randn(shape, dtype, seed=sum(shape))
    x = pi.pinv(a)
    assert isinstance(x, torch.Tensor) and x.dtype == dtype and x.device == a.device
    torch.testing.assert_close(x, torch.linalg.pinv(a), rtol=tol(dtype), atol=tol(dtype))
    torch.testing.assert_close(pi.pinverse(a), torch.pinverse(a), rtol=tol(dtype), atol=tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_rank_deficient_batched_matches_torch(path, dtype):
    a = low_rank(6, 4, 2, dtype, batch=(3,))
    rtol = 1e-3 if dtype in (torch.float32, torch.complex64) else 1e-8
    x, rank = pi.pinv(a, rtol=rtol, return_rank=True)
    torch.testing.assert_close(x, torch.linalg.pinv(a, rtol=rtol), rtol=tol(dtype), atol=tol(dtype))
    assert rank.shape == (3,) and rank.tolist() == [2, 2, 2]
    assert isinstance(pi.pinv(a[0], rtol=rtol, return_rank=True).rank, int)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hermitian_matches_torch(path, dtype):
    raw = randn((2, 4, 4), dtype, seed=3)
    h = hermitian_from_lower(raw)
    h = h - 1j * torch.diag_embed(h.diagonal(dim1=-2, dim2=-1).imag) if h.is_complex() else h
    x = pi.pinv(raw, hermitian=True)  # reads the lower triangle of the raw matrix
    ref = torch.linalg.pinv(h, hermitian=True)
    torch.testing.assert_close(x, ref, rtol=tol(dtype), atol=tol(dtype))


def test_dtypes_half_int_bool(path):
    a = randn((4, 3), torch.float32)
    for half in (torch.float16, torch.bfloat16):
        x = pi.pinv(a.to(half))
        assert x.dtype == half
        torch.testing.assert_close(
            x.float(), torch.linalg.pinv(a.to(half).float()), rtol=0.05, atol=0.05
        )
    ints = torch.tensor([[1, 2], [3, 4], [5, 7]])
    assert pi.pinv(ints).dtype == torch.get_default_dtype()
    assert pi.pinv(ints > 2).dtype == torch.get_default_dtype()
    old = torch.get_default_dtype()
    try:
        torch.set_default_dtype(torch.float64)
        assert pi.pinv(ints).dtype == torch.float64
    finally:
        torch.set_default_dtype(old)


def test_bfloat16_eps_in_default_rtol(path):
    # sigma ratio 1e-3: kept with float32's eps, cut with bfloat16's (2**-7 * 2).
    a = torch.diag(torch.tensor([1.0, 1e-3]))
    assert pi.pinv(a, return_rank=True).rank == 2
    assert pi.pinv(a.to(torch.bfloat16), return_rank=True).rank == 1


def test_out_and_return_rank(path):
    a = randn((3, 5, 4))
    out = torch.empty(3, 4, 5, dtype=torch.float64)
    res, rank = pi.pinv(a, out=out, return_rank=True)
    assert res is out
    torch.testing.assert_close(out, torch.linalg.pinv(a))
    assert rank.dtype == torch.int64 and rank.shape == (3,)
    with pytest.raises(ValueError, match="shape"):
        pi.pinv(a, out=torch.empty(3, 5, 4, dtype=torch.float64))


def test_check_finite(path):
    a = randn((3, 4, 4))
    a[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match=r"batch index \(1,\)"):
        pi.pinv(a)
    x = pi.pinv(a, check_finite=False)
    assert torch.isnan(x[1]).all() and torch.isfinite(x[[0, 2]]).all()
    a[1, 2, 0] = 1.0
    a[1, 0, 2] = float("inf")  # upper triangle: not read with hermitian=True
    assert torch.isfinite(pi.pinv(a, hermitian=True)).all()


def test_torch_path_never_copies_to_numpy(monkeypatch):
    """What a GPU tensor does: no .numpy()/.cpu() on the data (checked on CPU here)."""
    monkeypatch.setattr(backend, "_numpy_ok", lambda a: False)
    monkeypatch.setattr(backend, "_on_host", lambda a: False)

    def forbidden(*args, **kwargs):
        raise AssertionError("the data left the device")

    a = randn((2, 5, 3))
    monkeypatch.setattr(torch.Tensor, "numpy", forbidden)
    monkeypatch.setattr(torch.Tensor, "cpu", forbidden)
    x = pi.pinv(a, atol=1e-9)
    monkeypatch.undo()
    torch.testing.assert_close(x, torch.linalg.pinv(a, atol=1e-9))


def test_conjugated_and_noncontiguous_views(path):
    a = randn((4, 6), torch.complex128)
    view = a.conj().mT  # lazy conjugation and a transposed stride
    torch.testing.assert_close(pi.pinv(view), torch.linalg.pinv(view.resolve_conj()))


# --------------------------------------------------------------- derivatives


def _grad_inputs():
    """(name, A, atol): full-rank and fixed-rank inputs, tall/wide/square/batched/complex."""
    yield "tall", randn((5, 3), seed=1), None
    yield "wide", randn((3, 5), seed=2), None
    yield "square-batched", randn((2, 3, 3), seed=3), None
    yield "complex-tall", randn((4, 3), torch.complex128, seed=4), None
    yield "complex-wide-batched", randn((2, 2, 4), torch.complex128, seed=5), None
    # Fixed rank: atol keeps the rank under gradcheck's perturbation (sigma ~ 1e-6 cut).
    yield "rank2-tall", low_rank(5, 4, 2, seed=6), 1e-4
    yield "rank2-wide-batched", low_rank(3, 5, 2, batch=(2,), seed=7), 1e-4
    yield "rank1-complex", low_rank(4, 4, 1, torch.complex128, seed=8), 1e-4
    yield "identity", torch.eye(4, dtype=torch.float64), None
    q, _ = torch.linalg.qr(randn((4, 4), seed=9))
    yield "orthogonal", q, None
    yield "partial-isometry", q[:, :2] @ q[:, 2:].mT, 1e-4  # sigma = 1, 1, 0, 0


GRAD_INPUTS = list(_grad_inputs())


@pytest.mark.parametrize(("name", "a", "atol"), GRAD_INPUTS, ids=[g[0] for g in GRAD_INPUTS])
def test_gradcheck_and_gradgradcheck(name, a, atol):
    a = a.clone().requires_grad_()

    def f(t):
        return pi.pinv(t, atol=atol)

    assert torch.autograd.gradcheck(f, (a,), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(f, (a,))


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_hermitian_gradient_on_read_triangle(dtype):
    """gradcheck passes on a raw (non-Hermitian) input: the derivative is that of the
    function the forward pass computes, which reads the lower triangle only."""
    shape = (2, 3, 3) if dtype == torch.float64 else (3, 3)  # complex gradgradcheck is slow
    raw = randn(shape, dtype, seed=10).requires_grad_()

    def f(t):
        return pi.pinv(t, hermitian=True)

    assert torch.autograd.gradcheck(f, (raw,), check_forward_ad=True)
    assert torch.autograd.gradgradcheck(f, (raw,))
    w = randn(shape, dtype, seed=11)
    (g,) = torch.autograd.grad((f(raw) * w.conj()).real.sum(), raw)
    assert torch.count_nonzero(torch.triu(g, 1)) == 0  # nothing on the unread triangle

    def through_h(t):  # the reference: torch.linalg.pinv on the matrix that is read
        h = hermitian_from_lower(t)
        if h.is_complex():
            h = h - 1j * torch.diag_embed(h.diagonal(dim1=-2, dim2=-1).imag)
        return torch.linalg.pinv(h, hermitian=False)

    (ref,) = torch.autograd.grad((through_h(raw) * w.conj()).real.sum(), raw)
    torch.testing.assert_close(g, ref)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (2, 4, 4)])
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_gradient_matches_torch_linalg_pinv(shape, dtype):
    a = randn(shape, dtype, seed=12).requires_grad_()
    w = randn(shape[:-2] + shape[-2:][::-1], dtype, seed=13)
    (ours,) = torch.autograd.grad((pi.pinv(a) * w).abs().sum(), a)
    (theirs,) = torch.autograd.grad((torch.linalg.pinv(a) * w).abs().sum(), a)
    torch.testing.assert_close(ours, theirs)
    b = low_rank(5, 4, 2, dtype, seed=14).requires_grad_()
    v = randn((4, 5), dtype, seed=15)
    (ours,) = torch.autograd.grad((pi.pinv(b, atol=1e-6) * v).real.sum(), b)
    (theirs,) = torch.autograd.grad((torch.linalg.pinv(b, atol=1e-6) * v).real.sum(), b)
    torch.testing.assert_close(ours, theirs)


def _svd_pinv(a):
    """pinv differentiated through the SVD, as written by hand."""
    u, s, vh = torch.linalg.svd(a, full_matrices=False)
    return vh.mH @ torch.diag_embed(1 / s).to(a.dtype) @ u.mH


@pytest.mark.parametrize("which", ["identity", "orthogonal", "repeated"])
def test_svd_backward_nan_regression(which):
    """Repeated singular values: autodiff through the SVD gives NaN, ours is finite and
    equals central finite differences."""
    q, _ = torch.linalg.qr(randn((4, 4), seed=16))
    a = {
        "identity": torch.eye(4, dtype=torch.float64),
        "orthogonal": q,
        "repeated": q @ torch.diag(torch.tensor([3.0, 3.0, 1.0, 1.0], dtype=torch.float64)),
    }[which].requires_grad_()
    w = randn((4, 4), seed=17)
    (bad,) = torch.autograd.grad((_svd_pinv(a) * w).sum(), a)
    (g,) = torch.autograd.grad((pi.pinv(a) * w).sum(), a)
    assert torch.isfinite(g).all()
    d = randn((4, 4), seed=18)
    h = 1e-6
    with torch.no_grad():
        fd = ((pi.pinv(a + h * d) - pi.pinv(a - h * d)) * w).sum() / (2 * h)
    torch.testing.assert_close((g * d).sum(), fd, rtol=1e-6, atol=1e-8)
    # through the SVD: NaN/Inf, or (singular values equal only to rounding) wrong by
    # its 1/(s_i^2 - s_j^2) terms: far from the finite differences that ours matches
    through_svd = (bad * d).sum()
    assert not torch.isfinite(through_svd) or abs(through_svd - fd) > 1e-2 * abs(fd)


def test_double_backward_and_hessian():
    a = randn((4, 3), seed=19)

    def loss(t):
        return pi.pinv(t).square().sum()

    hess = torch.func.hessian(loss)(a)  # forward-over-reverse through the Function
    ref = torch.func.hessian(lambda t: torch.linalg.pinv(t).square().sum())(a)
    torch.testing.assert_close(hess, ref)


def test_torch_func_transforms():
    a = randn((3, 5, 4), seed=20)
    torch.testing.assert_close(torch.func.vmap(pi.pinv)(a), torch.linalg.pinv(a))
    g = torch.func.grad(lambda t: pi.pinv(t).sum())(a)
    torch.testing.assert_close(g, torch.func.grad(lambda t: torch.linalg.pinv(t).sum())(a))
    pg = torch.func.vmap(torch.func.grad(lambda t: pi.pinv(t).sum()))(a)
    torch.testing.assert_close(pg, g)
    jf = torch.func.jacfwd(pi.pinv)(a[0])
    torch.testing.assert_close(jf, torch.func.jacrev(pi.pinv)(a[0]))
    torch.testing.assert_close(jf, torch.func.jacrev(torch.linalg.pinv)(a[0]))
    d = randn((5, 4), seed=21)
    _, tangent = torch.func.jvp(pi.pinv, (a[0],), (d,))
    _, ref = torch.func.jvp(torch.linalg.pinv, (a[0],), (d,))
    torch.testing.assert_close(tangent, ref)


def test_vmap_nan_input_gives_nan_not_raise():
    a = randn((2, 3, 3), seed=22)
    a[0, 0, 0] = float("nan")
    x = torch.func.vmap(pi.pinv)(a)
    assert torch.isnan(x[0]).all() and torch.isfinite(x[1]).all()


def test_half_precision_gradient_keeps_dtype():
    a = randn((4, 3), torch.float32, seed=23).to(torch.bfloat16).requires_grad_()
    pi.pinv(a).float().sum().backward()
    assert a.grad.dtype == torch.bfloat16 and torch.isfinite(a.grad.float()).all()


def test_fast_path_is_numpy_and_zero_copy(monkeypatch):
    from pseudoinverse import _engine

    calls = []

    original = _engine.compute_numpy

    def spy(a, *args, **kwargs):
        calls.append(a)
        return original(a, *args, **kwargs)

    monkeypatch.setattr(_engine, "compute_numpy", spy)
    t = randn((4, 3))
    pi.pinv(t)
    assert len(calls) == 1 and np.shares_memory(calls[0], t.numpy())
    x = pi.pinv(t.clone().requires_grad_())  # needs grad: the forward pass on NumPy too
    assert len(calls) == 2 and x.grad_fn is not None


# ------------------------------------------------- non-finite members, empty input


def hermitian_stack(n=3, batch=4, seed=40):
    """Complex Hermitian, well-conditioned, full rank (positive definite)."""
    b = randn((batch, n, n), torch.complex128, seed)
    return b @ b.mH + n * torch.eye(n, dtype=torch.complex128)


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")  # vmap of conj
@pytest.mark.parametrize("grad", [False, True], ids=["nograd", "grad"])
def test_hermitian_nan_imaginary_diagonal_makes_the_member_bad(path, grad):
    """A NaN in the imaginary part of a diagonal entry is a NaN where the matrix is read:
    that member's result is NaN (rank 0), as on the NumPy path; the Hermitian part's real
    diagonal must not hide it (it did on the differentiable path)."""
    h = hermitian_stack()
    bad = h.clone()
    bad[1, 0, 0] = complex(1, float("nan"))
    np_x, np_rank = pi.pinv(bad.numpy(), hermitian=True, check_finite=False, return_rank=True)
    assert np.isnan(np_x[1]).all() and np_rank.tolist() == [3, 0, 3, 3]
    good = [0, 2, 3]
    ref = torch.linalg.pinv(h[good], hermitian=True)
    t = bad.clone().requires_grad_(grad)
    x, rank = pi.pinv(t, hermitian=True, check_finite=False, return_rank=True)
    assert torch.isnan(x[1]).all() and rank.tolist() == [3, 0, 3, 3]
    torch.testing.assert_close(x[good], ref)
    np.testing.assert_allclose(x.detach().numpy(), np_x, atol=1e-12)
    one = torch.tensor([[complex(1, float("nan"))]], requires_grad=grad)
    assert torch.isnan(pi.pinv(one, hermitian=True, check_finite=False)).all()
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(1,\)"):
        pi.pinv(t, hermitian=True)
    if grad:  # finite at the good members, and theirs alone
        w = randn((4, 3, 3), torch.complex128, seed=41)
        w[1] = 0
        (g,) = torch.autograd.grad((x[good] * w[good]).real.sum(), t)
        assert torch.isfinite(g).all() and not g[1].any()
        g_ref = torch.zeros_like(g)
        part = bad[good].clone().requires_grad_()
        xp = pi.pinv(part, hermitian=True)
        (g_ref[good],) = torch.autograd.grad((xp * w[good]).real.sum(), part)
        torch.testing.assert_close(g, g_ref)
    fx = torch.func.vmap(lambda m: pi.pinv(m, hermitian=True, check_finite=False))(bad)
    assert torch.isnan(fx[1]).all()
    torch.testing.assert_close(fx[good], ref)


@pytest.mark.parametrize("hermitian", [False, True])
@pytest.mark.parametrize("grad", [False, True], ids=["nograd", "grad"])
def test_check_finite_false_matches_numpy_path(path, hermitian, grad):
    """NaN in member 0 and Inf in member 3: NaN results and rank 0 exactly there, the
    others equal torch.linalg.pinv and the NumPy path; the same error when raising."""
    a = hermitian_stack(batch=5, seed=42)
    a[0, 2, 1] = float("nan")
    a[3, 1, 1] = float("inf")
    np_x, np_rank = pi.pinv(a.numpy(), hermitian=hermitian, check_finite=False, return_rank=True)
    assert np_rank.tolist() == [0, 3, 3, 0, 3]
    t = a.clone().requires_grad_(grad)
    x, rank = pi.pinv(t, hermitian=hermitian, check_finite=False, return_rank=True)
    assert rank.tolist() == np_rank.tolist() and torch.isnan(x[[0, 3]]).all()
    good = [1, 2, 4]
    torch.testing.assert_close(x[good], torch.linalg.pinv(a[good], hermitian=hermitian))
    np.testing.assert_allclose(x.detach().numpy(), np_x, atol=1e-12)
    with pytest.raises(np.linalg.LinAlgError, match=r"batch index \(0,\)") as np_err:
        pi.pinv(a.numpy(), hermitian=hermitian)
    with pytest.raises(np.linalg.LinAlgError) as err:
        pi.pinv(t, hermitian=hermitian)
    assert str(err.value) == str(np_err.value)
    if grad:
        (g,) = torch.autograd.grad(x[good].real.sum(), t)
        assert torch.isfinite(g).all() and not g[[0, 3]].any()


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (2, 0, 3), (0, 3, 3), (2, 3, 0)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex128, torch.int32])
def test_empty_matches_numpy_path(path, shape, dtype):
    a = torch.zeros(shape, dtype=dtype)
    np_x, np_rank = pi.pinv(a.numpy(), return_rank=True, check_finite=False)
    x, rank = pi.pinv(a, return_rank=True, check_finite=False)
    ref = torch.linalg.pinv(a.to(x.dtype))
    assert tuple(x.shape) == np_x.shape == tuple(ref.shape)
    assert x.dtype == (torch.get_default_dtype() if dtype == torch.int32 else dtype)
    assert np.shape(rank) == np.shape(np_rank) and np.all(np.asarray(rank) == np_rank)
