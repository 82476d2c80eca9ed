"""CuPy on a CUDA GPU: each cell's step fused into one CUDA kernel, compiled from the cells' scalar maths.

The generic cells spend a dozen elementwise kernel launches per time step on CuPy. For
CuPy arrays of float32 or float64, :class:`CudaOps` runs whole sequences instead: per
step one cuBLAS matmul and one fused kernel, one thread per element of the ``(N, H)``
step, compiled by numba-cuda from the same scalar functions (:class:`xrnn.cells.ScalarStep`)
that Numba compiles for the CPU. ``tests/test_cuda_sim.py`` holds it equal to the
generic :class:`~xrnn.engine.ops.Ops` under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``),
so it is tested on machines without a GPU; ``ci/gpu.sh`` tests and times it on one.

The package, by concern:

================  =====================================================================
:mod:`.kernels`   the kernels, built from each cell's scalar step for one dtype
:mod:`.launch`    stream, device, zero-copy arrays (``__cuda_array_interface__``), grid
:mod:`.layout`    each cell's step-cache layout in the sequence buffers
:mod:`.ops`       :class:`CudaOps`, the backend's ``Ops``
================  =====================================================================

Nothing here imports CuPy or numba-cuda until a CuPy array is run: the backend is chosen
by :func:`xrnn.engine.ops.ops_for` (the one place) and is off when the environment
variable ``XRNN_CUDA`` is ``0``. Kernels are compiled on first use.
"""

from .ops import CudaOps

__all__ = ["CudaOps"]
