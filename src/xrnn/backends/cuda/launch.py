"""Where and how the kernels run: the stream, the device, the arrays and the grid.

On a GPU the arrays are CuPy's: each is handed to numba-cuda through
``__cuda_array_interface__`` (``numba.cuda.as_cuda_array``: a view, no copy, and no
synchronisation on the array's stream, since the kernels run on that very stream),
kernels launch on CuPy's current stream (``numba.cuda.external_stream``), so they queue
in order with CuPy's own matmuls, and all of it on the device of the arrays.

Under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, numba-cuda running kernels on the
CPU) the arrays are NumPy's, handed to the kernels as the simulator's device arrays
(views again, not the copies it makes of bare NumPy arguments), on its default
stream: everything else (the grid, the strides, the indexing of gate blocks in
the kernels) is the code that runs on a GPU.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from types import ModuleType
from typing import Any

from array_api_compat import device as device_of
from array_api_compat import is_cupy_namespace

from ..._util.typing import Array

__all__ = ["Launcher", "simulated"]


def simulated(cuda: Any) -> bool:
    """Whether ``numba.cuda`` is the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return hasattr(cuda, "simulator_init") or not hasattr(cuda, "as_cuda_array")


class Launcher:
    """Kernel launches for the arrays of one namespace.

    Parameters
    ----------
    cuda : module
        ``numba.cuda``.
    xp : module
        CuPy's namespace; NumPy's only under the simulator.
    threads : int
        Threads per block. A launch over ``size`` elements takes ``ceil(size / threads)``
        blocks; the last one's spare threads return at once.
    """

    def __init__(self, cuda: Any, xp: ModuleType, threads: int) -> None:
        self.cuda, self.threads = cuda, threads
        self.on_gpu = is_cupy_namespace(xp)
        if not self.on_gpu and not simulated(cuda):
            raise ValueError(
                f"the CUDA kernels take CuPy arrays (or NumPy arrays under the CUDA simulator, "
                f"NUMBA_ENABLE_CUDASIM=1), got namespace {xp.__name__}"
            )

    @contextlib.contextmanager
    def on(self, array: Array) -> Iterator[Any]:
        """Make ``array``'s device current (CuPy and numba-cuda) and yield the stream to launch on."""
        if not self.on_gpu:
            yield self.cuda.default_stream()
            return
        import cupy

        index = device_of(array).id
        with cupy.cuda.Device(index), self.cuda.gpus[index]:
            ptr = cupy.cuda.get_current_stream().ptr  # 0: the legacy default stream
            yield self.cuda.external_stream(ptr) if ptr else self.cuda.default_stream()

    def array(self, a: Any) -> Any:
        """``a`` as the kernels take it: a numba-cuda view of a CuPy array (no copy).

        A view with negative strides (a time-reversed ``dy``) is copied first: numba-cuda's
        arrays start at their lowest address.
        """
        if self.on_gpu:
            if any(s < 0 for s in a.strides):
                a = a.copy()
            return self.cuda.as_cuda_array(a, sync=False)
        return self.cuda.devicearray.FakeCUDAArray(a)  # the simulator's view of a NumPy array

    def configure(self, kernel: Any, size: int, stream: Any) -> Any:
        """``kernel`` ready to launch over ``size`` elements on ``stream``: call it with the arguments.

        Made once per sequence and launched at every step. numba-cuda warns of "low
        occupancy" for grids under 128 blocks, which a step of a small batch is by nature
        (``N*H/threads`` blocks): not a mistake here, so not a warning.
        """
        blocks = (size + self.threads - 1) // self.threads
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"Grid size \d+ will likely result in GPU under")
            return kernel[blocks, self.threads, stream]
