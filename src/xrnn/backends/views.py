"""How torch's and JAX's arrays become a compiled backend's arrays and back, without copies.

A :class:`~xrnn.backends.bridges.Bridge` holds one of these per place (``"cpu"``,
``"cuda"``): torch CPU tensors and JAX CPU arrays are NumPy arrays to the Numba loops
(``Tensor.numpy()``, DLPack), torch CUDA tensors and JAX GPU arrays CuPy arrays to the
CUDA kernels (CuPy's DLPack import). Each also says where an array is (or that the bridge
must not take it), which products its inner BLAS should run, and what a whole layer call
and a launch run under.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .._util.typing import Array

__all__ = ["JaxViews", "TorchViews"]


class TorchViews:
    """torch tensors as NumPy (CPU) or CuPy (CUDA) arrays and back, without copies.

    Parameters
    ----------
    device_type : {"cpu", "cuda"}
        The tensors' device type.
    """

    def __init__(self, device_type: str) -> None:
        self.device_type = device_type

    def place(self, a: Any) -> str | None:
        """``a``'s device type, or None where autograd records it (the bridge must not)."""
        import torch

        if a.requires_grad and torch.is_grad_enabled():
            return None
        return str(a.device.type)

    def view(self, a: Array) -> Array:
        """``a`` as an array of the inner backend's library, sharing its memory."""
        if self.device_type == "cpu":
            return a.detach().numpy()
        import cupy

        return cupy.from_dlpack(a.detach())

    def back(self, a: Array) -> Array:
        """The inner backend's array ``a`` as a tensor on the same memory."""
        import torch

        return torch.from_numpy(a) if self.device_type == "cpu" else torch.from_dlpack(a)

    def worth(self, work: int) -> bool:
        """Whether a product of ``work`` multiply-adds is better run by the inner backend's BLAS.

        On the CPU with more than one torch thread, below about ``2**29`` multiply-adds the
        switch between torch's thread pool and the inner BLAS's costs more than that BLAS
        gains (LSTM training steps, 2 threads: N=64, H=64 took 2.5x torch's own products;
        H=128 1.08x; H=256 0.75x); on one thread and on CUDA the route always ran faster.
        Inside a layer call torch is on one thread (:meth:`running`): every product goes.
        """
        import torch

        return self.device_type != "cpu" or work >= 2**29 or torch.get_num_threads() == 1

    def running(self, work: int) -> Any:
        """For a whole layer call on CPU tensors: torch on one thread, and at small sizes BLAS too.

        The loops call the inner BLAS at every step, whose threads wait spinning between
        calls; torch's own threads, woken by the engine's operations between the loops,
        then share the cores with them, and each pool waits for the other's (LSTM training
        steps on torch tensors, 2 threads, T=50, N=64, I=32, H=64: 2.4x the NumPy path's
        time, 1.0x with torch on one thread). With torch on one thread its operations run
        on the calling thread, and :meth:`worth` sends every product to the inner BLAS.

        Below ``2**24`` multiply-adds a step (``work``), the inner BLAS runs on one thread
        too, so that its workers do not wake and spin while the caller's torch operations
        around the layer (a loss, autograd's own work) want the cores: the training step of
        ``xrnn.torch.LSTM`` on 2 threads took 12 ms instead of 35 at N=64, I=32, H=64 (1.6
        million multiply-adds a step), 40 instead of 64 at I=H=128 (8.4 million), and 236
        instead of 190 at I=H=256 (34 million), where two BLAS threads pay. BLAS's thread
        count is the process's: NumPy products of other threads during such a call run on
        one thread too. On CUDA: nothing.

        Parameters
        ----------
        work : int
            Multiply-adds of one step of the call's first layer (projection and recurrent
            product), the measure of its size.
        """
        if self.device_type != "cpu":
            return _nothing()
        return _one_thread(blas=work < 2**24)

    def context(self, a: Array) -> Any:
        """Launch on torch's current stream of ``a``'s device (CUDA), else nothing."""
        if self.device_type == "cpu":
            return _nothing()
        import cupy
        import torch

        return cupy.cuda.ExternalStream(torch.cuda.current_stream(a.device).cuda_stream)


class JaxViews:
    """JAX arrays as NumPy (CPU) or CuPy (GPU) arrays and back, without copies where JAX allows.

    Parameters
    ----------
    device_type : {"cpu", "cuda"}
        The arrays' platform (JAX names CUDA devices ``"gpu"``).
    """

    def __init__(self, device_type: str) -> None:
        self.device_type = device_type

    def place(self, a: Any) -> str | None:
        """``a``'s platform (``"cuda"`` for a GPU), or None for a tracer (under a transformation)."""
        import jax

        if isinstance(a, jax.core.Tracer):
            return None
        platform = next(iter(a.devices())).platform
        return "cuda" if platform == "gpu" else str(platform)

    def view(self, a: Array) -> Array:
        """``a`` as an array of the inner backend's library, sharing its memory.

        JAX exports its CPU buffers read-only; the view is writable so that the kernels
        take it like any other array (they write only into their own buffers).
        """
        if self.device_type == "cpu":
            import numpy as np

            return np.asarray(_Memory(a, np.from_dlpack(a)))
        import cupy

        return cupy.from_dlpack(a)

    def back(self, a: Array) -> Array:
        """The inner backend's array ``a`` as a JAX array, on the same memory from 128 KiB.

        XLA takes a CPU buffer without a copy only when it is 64-byte aligned, and its own
        copy of one that is not was slow (1.2 ms for 3 MiB): NumPy copies such an array
        into an aligned buffer first. Below 128 KiB a plain copy is quicker than the DLPack
        import (27 against 82 us at 16 KiB, measured on the project's machine).
        """
        import jax.numpy as jnp

        if self.device_type != "cpu":
            return jnp.from_dlpack(a)
        if a.nbytes < _SMALL:
            return jnp.asarray(a)
        if a.ctypes.data % _ALIGN:
            from .numba.buffers import RECYCLER

            aligned = RECYCLER.empty(a.shape, a.dtype)
            aligned[...] = a
            a = aligned
        return jnp.from_dlpack(a)

    def worth(self, work: int) -> bool:
        """True: the inner backend's BLAS runs JAX's products at every size measured."""
        return True

    def running(self, work: int) -> Any:
        """Nothing: JAX's eager operations between the loops keep their own threads."""
        return _nothing()

    def context(self, a: Array) -> Any:
        """Nothing: DLPack's stream handshake orders the kernels after JAX's work."""
        return _nothing()


_SMALL = 128 * 1024  # bytes: below, JaxViews.back copies (quicker than the DLPack import)
_ALIGN = 64  # bytes: the alignment XLA asks of a CPU buffer it takes without a copy


class _Memory:
    """A writable array interface over a read-only view, keeping the owner of the memory alive."""

    def __init__(self, owner: Any, view: Any) -> None:
        self.owner = owner
        self.__array_interface__ = {**view.__array_interface__, "data": (view.ctypes.data, False)}


def _nothing() -> Any:
    return contextlib.nullcontext()


@contextlib.contextmanager
def _one_thread(*, blas: bool) -> Iterator[None]:
    """Run torch on one thread, and NumPy's BLAS too where ``blas``, for the length of the block."""
    with _torch_threads(1), _blas_threads(1) if blas else _nothing():
        yield


@contextlib.contextmanager
def _blas_threads(n: int) -> Iterator[None]:
    """Set NumPy's BLAS (the loops' BLAS) to ``n`` threads, and back afterwards; where it can be."""
    from .numba.loops import blas_threads

    found = blas_threads()
    if found is None:
        yield
        return
    get, put = found
    before = get()
    if before != n:
        put(n)
    try:
        yield
    finally:
        if before != n:
            put(before)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Set the calling thread's torch threads to ``n``, and back afterwards."""
    import torch

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if before != n:
            torch.set_num_threads(before)
