"""Backends: the ``Ops`` that run whole sequences fast, and the registry that chooses one.

Each backend lives in its own package and replaces whole sequences, never a piece of the
generic loop: :mod:`.numba` (NumPy on the CPU: compiled loops calling NumPy's own BLAS),
:mod:`.cuda` (CuPy on a GPU: fused CUDA kernels between cuBLAS matmuls) and :mod:`.jax`
(JAX: one ``lax.scan`` per sequence); :mod:`.layout` is the step-cache layout the compiled
backends share. :mod:`.registry` (:func:`ops_for`) chooses from the namespace, the dtype and
the switches, and is the only module that imports a backend package; nothing of a backend
is imported until a namespace it serves is in use. May import :mod:`xrnn.engine`,
:mod:`xrnn.cells` and the helpers, never a layer.
"""

from .registry import ops_for

__all__ = ["ops_for"]
