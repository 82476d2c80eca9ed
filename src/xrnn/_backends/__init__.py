"""Backend implementations of the engine's :class:`~xrnn._engine.ops.Ops` seam.

Each backend lives in its own package and replaces whole sequences, never a piece of the
generic loop: :mod:`.numba` (NumPy on the CPU: compiled loops calling NumPy's own BLAS),
:mod:`.cuda` (CuPy on a GPU: fused CUDA kernels between cuBLAS matmuls) and :mod:`.jax` (JAX:
one ``lax.scan`` per sequence, and the layers under ``jax.custom_vjp``).
:func:`xrnn._engine.ops.ops_for` chooses among them; nothing here is imported until a
namespace that a backend serves is in use.
"""

from __future__ import annotations

import functools
from types import ModuleType

from .._engine.ops import Ops

__all__ = ["cuda_ops", "numba_ops"]


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
