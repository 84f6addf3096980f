"""The public functions: ``pinv``, ``pinverse``, ``pinv_solve``, ``damped_pinv`` and
``damped_pinv_solve``.

Each validates its arguments once into a request (``_validate``), hands it to the
array library's adapter (``_backends.adapter``: one interface, looked up by kind), which
converts and calls the one engine beneath (``_engine``), then applies the shared tail:
the result dtype, ``out=``, ``np.matrix`` and the named results. Nothing below calls up.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from . import _engine, _validate
from ._backends import MLX, TORCH, adapter
from ._validate import Request


class _Fields(NamedTuple):
    pinv: Any
    rank: Any


class PinvResult(_Fields):
    """``pinv(..., return_rank=True)``: the pseudo-inverse and the number of kept values.

    A named pair (``X, rank = pinv(A, return_rank=True)`` unpacks it). ``rank`` is a
    Python ``int`` for a single matrix, else an integer array of the batch shape, of the
    input's library. The attribute ``method`` (not part of the pair) names the method
    that ran: the one given, or the one ``method="auto"`` chose (see
    :func:`pinv`; ``None`` where the adapter does not report it).
    """

    method: str | None

    def __new__(cls, pinv: Any, rank: Any, method: str | None = None) -> PinvResult:
        self = super().__new__(cls, pinv, rank)
        self.method = method
        return self

    def __getnewargs__(self) -> tuple[Any, Any, str | None]:  # pickling keeps ``method``
        return (self.pinv, self.rank, self.method)

    def __repr__(self) -> str:
        return f"PinvResult(pinv={self.pinv!r}, rank={self.rank!r}, method={self.method!r})"


def pinv(
    A: Any,
    rcond: Any = None,
    hermitian: bool = False,
    *,
    atol: Any = None,
    rtol: Any = None,
    out: Any = None,
    method: str = "auto",
    return_rank: bool = False,
    check_finite: bool = True,
    stream: Any = None,
) -> Any:
    """Moore–Penrose pseudo-inverse of ``A``, for the arrays of any library.

    Parameters
    ----------
    A : array of shape ``(..., m, n)``
        NumPy array or array-like, PyTorch tensor, JAX, MLX, CuPy, Dask or any Array
        API array. The result has the same library and device. A Dask array gives a
        lazy Dask array: a tall-and-skinny (or wide) matrix by TSQR, chunked along its
        long axis and never gathered onto one worker; a stack block by block
        (``docs/dask.rst``).
    rcond : float or array, optional
        NumPy's positional alias of ``rtol``; passing both is a ``TypeError``. As in
        ``numpy.linalg.pinv(a, rcond, hermitian)``, it may be the second positional
        argument and ``hermitian`` the third.
    hermitian : bool
        Assume ``A`` Hermitian; only its lower triangle is read (and checked).
    atol, rtol : float or real array broadcastable to the batch shape, optional
        Per matrix, singular values ``sigma <= max(atol, rtol * sigma_max)`` are treated
        as zero. ``atol=None`` is 0; ``rtol=None`` is ``max(m, n) * eps`` where ``atol``
        is not positive, else 0: the rule of ``torch.linalg.pinv`` and the Array API
        standard. Other libraries' defaults differ: ``numpy.linalg.pinv``'s is
        ``rcond=1e-15`` (pass ``rtol=1e-15``), ``jax.numpy.linalg.pinv``'s and
        ``mlx.core.linalg.pinv``'s ``10 * max(m, n) * eps`` (pass that as ``rtol``),
        ``torch.pinverse``'s ``1e-15`` (:func:`pinverse`).
    out : array, optional
        Where to write the result (same library, shape ``(..., n, m)``, result dtype).
    method : {"auto", "svd", "eigh", "jacobi", "batched", "qr", "randomized"}
        ``"svd"``: LAPACK SVD (``gesdd``, else ``gesvd``), error about
        ``max(m, n) * eps * kappa`` (that of ``numpy.linalg.pinv``). ``"eigh"`` (needs
        ``hermitian=True``): LAPACK Hermitian eigensolver, the same promise.
        ``"jacobi"``: compiled batched Jacobi SVD for stacks of small matrices, error
        within 2x of ``numpy.linalg.pinv``'s in float64/complex128, of a float32 LAPACK
        pinv's (``torch.linalg.pinv``) in float32/complex64. ``"batched"``: stacked
        LU/QR inverses for medium matrices, each taken only where an a-posteriori certificate proves
        every singular value is kept, else the SVD. ``"qr"``: certified Householder QR
        for full-rank matrices, ``ValueError`` if it cannot be certified. ``"randomized"``:
        certified randomized range finder for low-rank matrices, else the SVD.
        ``"auto"`` picks by size and dtype (the rule in ``_methods/__init__.py``);
        whatever it picks, the rank is the SVD rule's. ``"auto"`` takes a compiled
        route only once its kernel is loaded: until then (the first calls of a process,
        while numba loads or compiles on a background thread) LAPACK serves, with the
        same promise (``PSEUDOINVERSE_KERNELS=background|sync|lapack`` sets this:
        ``docs/methods.rst``). JAX arrays on the CPU run on this NumPy engine (eager
        calls directly, traced ones through ``jax.pure_callback``); on the portable
        path (GPU tensors, JAX on other devices, Array API libraries) every general
        method is the SVD. On a tall
        or wide Dask matrix, the method applies to the ``min(m, n)``-square factor
        ``R`` of its TSQR.
    return_rank : bool
        Also return the number of kept singular values (a :class:`PinvResult`).
    check_finite : bool
        ``True``: NaN/Inf raises ``numpy.linalg.LinAlgError`` (a ``ValueError``
        subclass) naming the first bad batch index (for Dask arrays when the result is
        computed, naming the batch index, or the row (column) block of a tall (wide)
        matrix).
        ``False``: those matrices get an all-NaN result (and rank 0), the rest are
        computed normally.
    stream : MLX stream or device, optional
        ``mlx.core.linalg.pinv``'s argument; only for MLX arrays.

    Returns
    -------
    X : array of shape ``(..., n, m)``, or ``PinvResult(pinv, rank)``
        The input's library and device; an ``np.matrix`` gives an ``np.matrix``. With
        ``return_rank=True``, ``PinvResult.method`` names the method that ran (what
        ``"auto"`` chose: ``"svd"``, ``"eigh"``, ``"jacobi"``, ``"batched"``, or
        ``"direct_or_svd"``/``"cholesky_or_eigh"`` for large matrices: a certified
        LU/Gram/QR or Cholesky inverse per matrix, else the SVD or eigh for that matrix).
        The logger ``"pseudoinverse"`` reports the same choice at level ``DEBUG``.

    Raises
    ------
    ValueError
        Bad shape, tolerance, method, ``out`` or ``stream``; ``method="qr"`` on a
        matrix it cannot certify to have full rank.
    TypeError
        ``rcond`` and ``rtol`` together; ``out`` not an array; ``hermitian`` not a bool.
    numpy.linalg.LinAlgError
        NaN/Inf with ``check_finite=True``, or a LAPACK failure that no other driver
        solved (a ``ValueError`` subclass).

    Notes
    -----
    float32/float64/complex64/complex128 are kept; float16 and bfloat16 are computed in
    float32 and returned in their dtype (``eps`` stays theirs); integer and bool input
    is promoted to the library's default floating dtype. Empty input gives an empty
    result. A ``gesdd`` convergence failure is retried with ``gesvd`` for that matrix.

    Differentiable in PyTorch (autograd, forward mode, ``torch.func``), JAX (``grad``,
    ``jvp``, ``jit``, ``vmap``) and MLX (``grad``, ``vjp``, ``jvp``) through the
    constant-rank Golub–Pereyra formula, finite at repeated singular values; with
    ``hermitian=True`` the gradient lies on the lower triangle that is read. Tolerances
    are constants (not differentiated). Under tracing (``jax.jit``/``vmap``,
    ``torch.func.vmap``, ``mx.compile``) values cannot be inspected: NaN/Inf input then
    gives a NaN result (as with ``check_finite=False``) instead of raising.

    Examples
    --------
    >>> import numpy as np
    >>> import pseudoinverse as pi
    >>> A = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    >>> X = pi.pinv(A)
    >>> X.shape
    (2, 3)
    >>> all(np.allclose(l, r) for l, r in [(A @ X @ A, A), (X @ A @ X, X),
    ...                                    ((A @ X).T, A @ X), ((X @ A).T, X @ A)])
    True
    >>> pi.pinv(np.ones((2, 2)), return_rank=True).rank
    1
    """
    if (  # one plain matrix, every keyword at its default: microseconds of overhead
        type(A) is np.ndarray
        and all(v is None for v in (rcond, atol, rtol, out, stream))
        and type(hermitian) is bool
        and method == "auto"
        and type(check_finite) is bool
    ):
        got = _engine.pinv_single(A, hermitian)
        if got is not None:
            return PinvResult(*got) if return_rank else got[0]
    req = _validate.pinv_request(A, rcond, hermitian, atol, rtol, method, check_finite, stream)
    if out is not None:
        _validate.check_out(out, req.kind, (*req.batch, req.n, req.m), req.result_dtype)
    if math.prod((*req.batch, req.m, req.n)) == 0:
        x, rank, chosen = _empty(req, (*req.batch, req.n, req.m)), _zero_rank(req), req.method
    else:
        x, rank, chosen = adapter(req.kind).pinv(req)
    x = _finish(req, x, out, isinstance(A, np.matrix))
    if not return_rank:
        return x
    return PinvResult(x, rank if req.batch else scalar_rank(rank), chosen)


def _empty(req: Request, shape: tuple[int, ...], b: Any = None) -> Any:
    """The zero result of an empty problem: for a tensor that requires grad, one with a
    ``grad_fn`` (the transpose of the empty input, as ``torch.linalg.pinv`` gives)."""
    if req.kind == TORCH:
        x = req.a.mT.to(req.result_dtype, copy=True)
        if b is not None:
            x = x @ b.to(req.result_dtype)
        return x.expand(shape) if tuple(x.shape) != shape else x
    if req.kind == MLX:
        import mlx.core as mx

        return mx.zeros(shape, dtype=req.result_dtype)
    return req.xp.zeros(shape, dtype=req.result_dtype, **_device_kw(req.xp, req.a))


def _zero_rank(req: Request) -> Any:
    if req.kind == MLX:
        import mlx.core as mx

        return mx.zeros(req.batch, dtype=mx.int64)
    return req.xp.zeros(req.batch, dtype=req.xp.int64, **_device_kw(req.xp, req.a))


def _finish(req: Request, x: Any, out: Any, as_matrix: bool) -> Any:
    """The shared tail: the result dtype, ``out=``, ``np.matrix`` in, ``np.matrix`` out."""
    if x.dtype != req.result_dtype:
        x = x.astype(req.result_dtype) if req.kind == MLX else req.xp.astype(x, req.result_dtype)
    if out is not None:
        return _write_out(out, x, req.kind)
    return np.asmatrix(x) if as_matrix else x


def scalar_rank(rank: Any) -> Any:
    """A single matrix's rank as a Python ``int``; traced ranks (jit, vmap) stay arrays."""
    try:
        return int(rank)
    except (TypeError, RuntimeError, ValueError):  # a tracer has no concrete value
        return rank


def _device_kw(xp: Any, a: Any) -> dict[str, Any]:
    return {} if xp is np else {"device": array_api_compat.device(a)}


def _write_out(out: Any, x: Any, kind: str) -> Any:
    if kind == TORCH:
        with __import__("torch").no_grad():
            out.copy_(x)
        return out
    out[...] = x
    return out


def pinverse(input: Any, rcond: float = 1e-15) -> Any:
    """``torch.pinverse``'s API: ``pinv(input, rtol=rcond, atol=0)``, for any array.

    Singular values ``sigma <= rcond * sigma_max`` are treated as zero.

    Examples
    --------
    >>> import numpy as np
    >>> import pseudoinverse as pi
    >>> A = np.diag([1.0, 1e-20])
    >>> pi.pinverse(A)
    array([[1., 0.],
           [0., 0.]])
    """
    return pinv(input, rcond)  # rcond is rtol's alias: errors name rcond


class _SolveFields(NamedTuple):
    solution: Any
    rank: Any


class SolveResult(_SolveFields):
    """``pinv_solve(..., return_rank=True)``: the solution and the number of kept values.

    A named pair (``x, rank = pinv_solve(A, B, return_rank=True)``), with the attribute
    ``method`` naming the method that ran, as :class:`PinvResult`.
    """

    method: str | None

    def __new__(cls, solution: Any, rank: Any, method: str | None = None) -> SolveResult:
        self = super().__new__(cls, solution, rank)
        self.method = method
        return self

    def __getnewargs__(self) -> tuple[Any, Any, str | None]:
        return (self.solution, self.rank, self.method)

    def __repr__(self) -> str:
        return (
            f"SolveResult(solution={self.solution!r}, rank={self.rank!r}, method={self.method!r})"
        )


def _unvector(req: Request, x: Any) -> Any:
    """A vector right-hand side ``(..., m)`` gives a vector solution ``(..., n)``."""
    return x[..., 0] if req.vector else x


def pinv_solve(
    A: Any,
    B: Any,
    rcond: Any = None,
    *,
    atol: Any = None,
    rtol: Any = None,
    hermitian: bool = False,
    method: str = "auto",
    return_rank: bool = False,
    check_finite: bool = True,
) -> Any:
    """``pinv(A) @ B``, the minimum-norm least-squares solution, without forming ``pinv(A)``.

    The same tolerance rule, defaults and rank decision as :func:`pinv` (unlike
    ``numpy.linalg.lstsq``, ``scipy.linalg.lstsq`` and ``torch.linalg.lstsq``, whose
    cut-offs differ: torch's default CPU driver ``gelsy`` thresholds nothing).

    Parameters
    ----------
    A : array of shape ``(..., m, n)``
        Any array :func:`pinv` accepts.
    B : array of shape ``(..., m)`` or ``(..., m, k)``
        Of ``A``'s library (or an array-like when ``A`` is NumPy). ``B`` is a vector
        when it is 1-D, or has one dimension fewer than ``A`` and the shape
        ``A.shape[:-1]`` (``torch.linalg.solve``'s rule); otherwise a stack of
        ``(m, k)`` matrices. Batch dimensions of ``A`` and ``B`` broadcast.
    rcond, atol, rtol, hermitian, check_finite
        As in :func:`pinv`; ``check_finite`` covers ``B`` too (a NaN or Inf in a
        member of ``B`` raises, or gives that member's solution all-NaN and rank 0).
    method : str
        As in :func:`pinv`. ``"svd"``/``"eigh"`` apply the decomposition to ``B``
        (``V diag(1/sigma kept) U^H B``); ``"jacobi"`` the compiled kernel's solve;
        ``"auto"`` also uses certified full-rank solves for large matrices (normal
        equations, CholeskyQR2, QR, LU, Cholesky applied to ``B``), then a complete
        orthogonal decomposition (column-pivoted QR) or LAPACK's ``gelsd`` where their
        factors prove ``pinv``'s rank, and for stacks of 32 or more small real matrices
        a compiled CholeskyQR2 on the members it proves of full rank (the others by
        the Jacobi kernel). ``"batched"``, ``"qr"`` and ``"randomized"`` form
        ``pinv(A)`` with that method and multiply. On a tall Dask matrix, ``k <= n``
        right-hand sides come from the TSQR of ``[A B]`` (``Q`` is never formed),
        ``k > n`` is ``pinv(A) @ B`` summed over row blocks.
        JAX arrays on the CPU run on this NumPy engine (traced calls through
        ``jax.pure_callback``). On the portable path (GPU tensors, tensors that require
        grad, JAX on other devices, Array API libraries) and for MLX, the differentiable
        ``pinv`` is multiplied into ``B``.
    return_rank : bool
        Also return the rank (a :class:`SolveResult`).

    Returns
    -------
    x : array of shape ``(..., n)`` or ``(..., n, k)``, or ``SolveResult(solution, rank)``
        In the dtype that ``A`` and ``B`` promote to; the library and device of ``A``.

    Notes
    -----
    Accuracy: that of the method (:func:`pinv`'s promise, applied to ``B``). The
    derivative (torch, JAX, MLX) is that of ``pinv(A) @ B``, in ``A`` and ``B``.

    Examples
    --------
    >>> import numpy as np
    >>> import pseudoinverse as pi
    >>> A = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    >>> b = np.array([1.0, 2.0, 3.0])
    >>> x = pi.pinv_solve(A, b)
    >>> np.allclose(x, pi.pinv(A) @ b), np.allclose(A.T @ (A @ x - b), 0)
    (True, True)
    >>> pi.pinv_solve(np.ones((2, 2)), np.ones(2), return_rank=True).rank
    1
    """
    req = _validate.pinv_request(
        A, rcond, hermitian, atol, rtol, method, check_finite, None, name="pinv_solve"
    )
    req = _validate.with_rhs(req, B)
    k = req.b.shape[-1]
    if math.prod((*req.batch, req.m, req.n)) == 0:
        x, rank, chosen = _empty(req, (*req.batch, req.n, k), req.b), _zero_rank(req), req.method
    else:
        x, rank, chosen = adapter(req.kind).solve(req)
    x = _unvector(req, _finish(req, x, None, False))
    if not return_rank:
        return x
    return SolveResult(x, rank if req.batch else scalar_rank(rank), chosen)


def damped_pinv(A: Any, damping: Any, *, hermitian: bool = False, check_finite: bool = True) -> Any:
    """The damped (Tikhonov) inverse ``V diag(sigma / (sigma**2 + damping**2)) U^H``.

    ``(A^H A + lambda^2 I)^{-1} A^H = A^H (A A^H + lambda^2 I)^{-1}``, the damped least
    squares inverse of robot inverse kinematics and ridge regression, computed from the
    SVD (never by forming ``A A^H``, whose rounding costs ``eps kappa^2``), so it is
    accurate for every ``lambda >= 0``, singular ``A`` included.

    **damping is lambda, not lambda squared.** (Pinocchio's ``damp`` and some IK codes
    pass ``lambda**2``: give its square root here.)

    Parameters
    ----------
    A : array of shape ``(..., m, n)``
        Any array :func:`pinv` accepts.
    damping : float or real array broadcastable to the batch shape
        ``lambda >= 0``; negative or NaN is a ``ValueError``. ``0`` gives exactly
        ``pinv(A, atol=0, rtol=0)`` (no NaN at exactly zero singular values). An array
        of ``A``'s library (a torch tensor, a JAX or MLX array) is differentiated.
    hermitian : bool
        Only the lower triangle of ``A`` is read (the Hermitian matrix it defines).
    check_finite : bool
        As in :func:`pinv`: NaN/Inf in ``A`` raises ``numpy.linalg.LinAlgError``, or
        (``False``) gives that member an all-NaN result.

    Returns
    -------
    X : array of shape ``(..., n, m)``
        The input's library, device and result dtype (as :func:`pinv`).

    Notes
    -----
    The solve form, :func:`damped_pinv_solve`, applies it to a right-hand side without
    forming it. Methods: stacks of 32 or more small real matrices take a compiled
    CholeskyQR2 of ``[A^H; lambda I]`` (float32 first a float64 Cholesky of the Gram
    matrix) wherever its error analysis holds, within the Jacobi route's promise
    (``docs/methods.rst``), the others the compiled Jacobi kernel with the damped
    filter; large matrices the SVD filter per matrix; others NumPy's batched SVD. A tall
    Dask matrix applies the filter to the SVD of its TSQR factor ``R``. Eager JAX arrays
    on the CPU run on this NumPy engine. On the portable path (GPU tensors, tensors that
    require grad, traced JAX, MLX, Array API libraries) it is ``pinv`` of ``[A; lambda I]`` with
    ``atol = rtol = 0``, whose first ``m`` columns are the damped inverse: the
    Golub–Pereyra derivative of that ``pinv`` is the exact derivative in ``A`` and in
    ``lambda`` (torch ``gradcheck``, JAX ``check_grads``).

    Examples
    --------
    >>> import numpy as np
    >>> import pseudoinverse as pi
    >>> J = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    >>> X = pi.damped_pinv(J, 0.1)
    >>> np.allclose(X, J.T @ np.linalg.inv(J @ J.T + 0.1**2 * np.eye(2)))
    True
    >>> np.allclose(pi.damped_pinv(J, 0.0), np.linalg.pinv(J))
    True
    """
    req = _validate.damped_request(A, damping, hermitian, check_finite)
    if math.prod((*req.batch, req.m, req.n)) == 0:
        x = _empty(req, (*req.batch, req.n, req.m))
    else:
        x = adapter(req.kind).damped(req)
    return _finish(req, x, None, isinstance(A, np.matrix))


def damped_pinv_solve(
    A: Any, damping: Any, B: Any, *, hermitian: bool = False, check_finite: bool = True
) -> Any:
    """``damped_pinv(A, damping) @ B`` without forming the damped inverse.

    The damped least-squares step of inverse kinematics, ``dq = J^H (J J^H +
    lambda^2 I)^{-1} e``, and the ridge solution ``argmin ||A x - b||^2 + lambda^2
    ||x||^2``. **damping is lambda, not lambda squared.** ``B`` as in
    :func:`pinv_solve`: ``(..., m)`` or ``(..., m, k)``, batch dimensions broadcast;
    ``check_finite`` covers ``B`` too. Accuracy and derivatives as
    :func:`damped_pinv` (differentiable in ``A``, ``B`` and ``damping``).

    Examples
    --------
    >>> import numpy as np
    >>> import pseudoinverse as pi
    >>> J = np.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    >>> e = np.array([0.1, -0.2])
    >>> dq = pi.damped_pinv_solve(J, 0.1, e)
    >>> np.allclose(dq, J.T @ np.linalg.solve(J @ J.T + 0.01 * np.eye(2), e))
    True
    """
    req = _validate.damped_request(A, damping, hermitian, check_finite)
    req = _validate.with_rhs(req, B, name="damped_pinv_solve")
    k = req.b.shape[-1]
    if math.prod((*req.batch, req.m, req.n)) == 0:
        x = _empty(req, (*req.batch, req.n, k), req.b)
    else:
        x = adapter(req.kind).damped(req)
    return _unvector(req, _finish(req, x, None, False))
