"""The backend fixture: each test that takes ``backend`` runs once per array library.

A backend converts NumPy data to its arrays (``to``) and back (``back``). A library that
is not installed, or cannot hold a dtype, skips with the reason named.
"""

from __future__ import annotations

import importlib
import os
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

# The compiled routes load in the calling thread at first use (``_methods/warmup.py``),
# so that "auto" takes the same route on the same input from a process's first call on;
# tests/test_warmup.py tests the default background policy itself.
os.environ.setdefault("PSEUDOINVERSE_KERNELS", "sync")


@dataclass(frozen=True)
class Backend:
    name: str
    to: Callable[[np.ndarray], Any]
    back: Callable[[Any], np.ndarray]
    dtypes: tuple  # NumPy dtypes it holds natively

    def check(self, dtype) -> None:
        if np.dtype(dtype) not in [np.dtype(d) for d in self.dtypes]:
            pytest.skip(f"{self.name} has no {np.dtype(dtype)} arrays")


ALL = (np.float32, np.float64, np.complex64, np.complex128)


def _numpy() -> Backend:
    return Backend("numpy", np.asarray, np.asarray, ALL)


def _torch() -> Backend:
    torch = importlib.import_module("torch")
    return Backend("torch", torch.from_numpy, lambda t: t.detach().cpu().numpy(), ALL)


def _jax() -> Backend:
    jax = importlib.import_module("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = importlib.import_module("jax.numpy")
    return Backend("jax", jnp.asarray, np.asarray, ALL)


def _mlx() -> Backend:
    mx = importlib.import_module("mlx.core")
    return Backend(
        "mlx",
        lambda a: mx.array(
            a,
            dtype={"float32": mx.float32, "float64": mx.float64, "complex64": mx.complex64}[
                a.dtype.name
            ],
        ),
        lambda x: np.array(x),
        (np.float32, np.float64, np.complex64),
    )


def _strict() -> Backend:
    xs = importlib.import_module("array_api_strict")
    return Backend("array_api_strict", xs.asarray, np.from_dlpack, ALL)


def _dask() -> Backend:
    da = importlib.import_module("dask.array")
    return Backend(
        "dask",
        lambda a: da.from_array(a, chunks=(1,) * (a.ndim - 2) + a.shape[-2:]),
        lambda x: np.asarray(x.compute() if hasattr(x, "compute") else x),
        ALL,
    )


def _cupy() -> Backend:
    cp = importlib.import_module("cupy")  # the generic Array API path, on a GPU
    try:
        gpus = cp.cuda.runtime.getDeviceCount()
    except Exception as err:  # no driver, no device
        raise ImportError(f"no CUDA device ({err})") from err
    if not gpus:
        raise ImportError("no CUDA device")
    return Backend("cupy", cp.asarray, cp.asnumpy, ALL)


_FACTORIES = {
    "numpy": _numpy,
    "torch": _torch,
    "jax": _jax,
    "mlx": _mlx,
    "array_api_strict": _strict,
    "dask": _dask,
    "cupy": _cupy,
}


@pytest.fixture(params=list(_FACTORIES))
def backend(request) -> Backend:
    try:
        return _FACTORIES[request.param]()
    except ImportError as err:
        pytest.skip(f"{request.param} is not installed: {err}")


# Fresh data on every run; PI_TEST_SEED=<n> replays a run (the header prints the seed).
SEED = int(os.environ.get("PI_TEST_SEED", secrets.randbits(32)))


def pytest_report_header(config) -> str:
    return f"pseudoinverse test seed: PI_TEST_SEED={SEED}"


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    # also under -q (the header is not printed then): a failure must be replayable
    terminalreporter.write_line(f"pseudoinverse test seed: PI_TEST_SEED={SEED}")


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the run's seed and the test's name."""
    return np.random.default_rng([SEED, zlib.crc32(request.node.nodeid.encode())])
