"""The registry: which :class:`~xrnn.engine.ops.Ops` runs the sequences of a namespace and dtype.

:func:`ops_for` is the one place that chooses; it reads the switches (``XRNN_NUMBA=0``,
``XRNN_CUDA=0``) and keeps one object per choice. A backend package is imported only when
a namespace it serves is in use.
"""

from __future__ import annotations

import functools
import os
from types import ModuleType
from typing import Any

from array_api_compat import is_cupy_namespace, is_jax_namespace, is_numpy_namespace, is_torch_namespace

from ..engine.linear_scan import LinearOps
from ..engine.ops import Ops

__all__ = ["cuda_ops", "linear_ops_for", "numba_ops", "ops_for"]


@functools.cache
def numba_ops(xp: ModuleType) -> Ops | None:
    """Numba's :class:`Ops` for NumPy namespace ``xp``, or None when numba is not installed.

    Parameters
    ----------
    xp : module
        A NumPy namespace.

    Returns
    -------
    Ops or None
        One object, made once.
    """
    try:
        from .numba import NumbaOps
    except ImportError:
        return None
    return NumbaOps(xp)


@functools.cache
def cuda_ops(xp: ModuleType) -> Ops | None:
    """The CUDA :class:`Ops` for CuPy namespace ``xp``, or None when numba-cuda is not installed.

    Parameters
    ----------
    xp : module
        A CuPy namespace.

    Returns
    -------
    Ops or None
        One object, made once.
    """
    try:
        import numba.cuda  # noqa: F401  (numba-cuda: imported only once CuPy arrays are in use)
    except ImportError:
        return None
    from .cuda import CudaOps

    return CudaOps(xp)


def ops_for(xp: ModuleType, dtype: Any) -> Ops:
    """The :class:`Ops` that runs sequences of namespace ``xp`` and ``dtype``.

    NumPy arrays of float32 or float64 get Numba's compiled loops
    (:mod:`xrnn.backends.numba`) when numba is installed and the environment variable
    ``XRNN_NUMBA`` is not ``0``; CuPy arrays of float32 or float64 get the fused CUDA
    kernels (:mod:`xrnn.backends.cuda`) when numba-cuda is installed and ``XRNN_CUDA`` is
    not ``0``. torch tensors and JAX arrays of float32 or float64 get a
    :class:`~xrnn.backends.bridges.Bridge` (unless ``XRNN_BRIDGE`` is ``0``), which runs
    CPU arrays on Numba's loops and GPU arrays on the CUDA kernels through zero-copy views
    (under the same switches), and everything else (autograd-recorded tensors, JAX
    tracers) on the namespace's own ``Ops``: JAX's one ``lax.scan`` per sequence
    (:mod:`xrnn.backends.jax`), torch's the generic one. Everything else gets the generic
    :class:`Ops`. Either way the results are the same
    (tests/test_ops.py, tests/test_cuda_sim.py).

    Parameters
    ----------
    xp : module
        Array namespace.
    dtype : dtype
        Dtype of the arrays.

    Returns
    -------
    Ops
        One object per choice, made once.
    """
    if is_numpy_namespace(xp) and os.environ.get("XRNN_NUMBA") != "0":
        return _ops(xp, str(dtype), "numba")
    if is_cupy_namespace(xp) and os.environ.get("XRNN_CUDA") != "0":
        return _ops(xp, str(dtype), "cuda")
    if (is_torch_namespace(xp) or is_jax_namespace(xp)) and os.environ.get("XRNN_BRIDGE") != "0":
        switches = tuple(os.environ.get(name) != "0" for name in ("XRNN_NUMBA", "XRNN_CUDA"))
        name = str(getattr(dtype, "dtype", dtype)).removeprefix("torch.")  # jnp.float32 -> "float32"
        return _bridge(xp, name, *switches)
    return _ops(xp, str(dtype), None)


@functools.cache
def _bridge(xp: ModuleType, dtype: str, numba: bool, cuda: bool) -> Ops:
    """The bridge of torch's or JAX's namespace (:mod:`.bridges`): CPU arrays on Numba, GPU ones on CUDA."""
    fallback = _ops(xp, dtype, None)
    if dtype not in ("float32", "float64"):
        return fallback
    from .bridges import Bridge, JaxViews, Route, TorchViews

    views = JaxViews if is_jax_namespace(xp) else TorchViews
    routes = {}
    if numba:
        routes["cpu"] = Route(views("cpu"), lambda: numba_ops(_numpy()))
    if cuda:
        routes["cuda"] = Route(views("cuda"), lambda: _cupy_ops())
    return Bridge(xp, routes, fallback) if routes else fallback


def _numpy() -> ModuleType:
    from array_api_compat import numpy

    return numpy


def _cupy_ops() -> Ops | None:
    """CuPy's CUDA :class:`Ops`, or None where CuPy is not installed."""
    try:
        from array_api_compat import cupy
    except ImportError:
        return None
    return cuda_ops(cupy)


@functools.cache
def _ops(xp: ModuleType, dtype: str, backend: str | None) -> Ops:
    if backend is not None and dtype in ("float32", "float64"):
        fast = numba_ops(xp) if backend == "numba" else cuda_ops(xp)
        if fast is not None:
            return fast
    if is_jax_namespace(xp):
        from .jax import JaxOps

        return JaxOps(xp)
    return Ops(xp)


def linear_ops_for(xp: ModuleType, dtype: Any) -> LinearOps:
    """The sequential loop of minGRU and minLSTM (:mod:`xrnn.engine.linear_scan`) for ``xp`` and ``dtype``.

    NumPy arrays of float32 or float64 get Numba's compiled loop when numba is installed
    and ``XRNN_NUMBA`` is not ``0`` (read on each call); everything else the generic one.

    Parameters
    ----------
    xp : module
        Array namespace.
    dtype : dtype
        Dtype of the arrays.

    Returns
    -------
    LinearOps
        One object per choice, made once.
    """
    if (
        is_numpy_namespace(xp)
        and str(dtype) in ("float32", "float64")
        and os.environ.get("XRNN_NUMBA") != "0"
    ):
        return _linear_ops(xp, "numba")
    return _linear_ops(xp, None)


@functools.cache
def _linear_ops(xp: ModuleType, backend: str | None) -> LinearOps:
    if backend == "numba":
        try:
            from .numba.linear import NumbaLinearOps
        except ImportError:
            return LinearOps(xp)
        return NumbaLinearOps(xp)
    return LinearOps(xp)
