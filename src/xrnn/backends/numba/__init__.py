"""NumPy on the CPU: each cell's step fused into one compiled Numba kernel, whole loops compiled.

The generic cells (:mod:`xrnn.cells`) spend a dozen elementwise array operations per
time step, each a full pass over memory; on the CPU those passes cost about as much as
the step's matmul. For NumPy arrays of float32 or float64, when numba is installed,
:class:`NumbaOps` runs whole sequences instead: per step one BLAS ``gemm`` and one fused
kernel that computes exactly the equations of the cell's module, reading each input
once and writing each output once. ``tests/test_ops.py`` holds it equal to the generic
:class:`~xrnn.engine.ops.Ops`.

The package, by concern:

================  =====================================================================
:mod:`.compile`   ``numba.njit`` with the disk cache where it can be written
:mod:`.activations`  vectorisable ``exp``, ``sigmoid`` and ``tanh``
:mod:`.kernels`   each cell's pointwise step, forward and backward
:mod:`.loops`     the time loops, compiled, calling NumPy's own BLAS ``gemm``
:mod:`.inference`  the inference loops: ``h`` (and ``c``) each step, no step cache
:mod:`.infer_ops`  which cells have them, and how ``NumbaOps.infer`` runs them
:mod:`.buffers`   recycled sequence buffers
:mod:`.table`     one record per cell: kernels, loops, step-cache layout
:mod:`.ops`       :class:`NumbaOps`, the backend's ``Ops``
================  =====================================================================

The backend is chosen by :func:`xrnn.engine.ops.ops_for` (the one place) and is off
when the environment variable ``XRNN_NUMBA`` is ``0``. Kernels are compiled on first use.
"""

from .buffers import release
from .ops import NumbaOps

__all__ = ["NumbaOps", "release"]
