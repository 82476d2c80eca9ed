"""The CUDA backend's :class:`~xrnn.engine.ops.Ops`: per step one cuBLAS matmul and one fused kernel.

Forward, step ``t``: ``gh = h_prev @ W_hh^T`` (CuPy's matmul, cuBLAS, into one
preallocated ``(N, G*H)`` buffer), then the cell's kernel (:mod:`.kernels`). Backward,
step ``t``: the cell's backward kernel, then ``dg_t @ W_hh`` into one ``(N, H)`` buffer.
The hoisted projection and the weight gradients stay in the engine, as matmuls of the
array namespace (cuBLAS again). Variable lengths are handled inside the kernels.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from array_api_compat import device as device_of
from array_api_compat import is_cupy_namespace

from ..._util.typing import Array, State
from ..._util.validation import check_shape
from ...cells import Cell
from ...cells.definition import DefinedCell
from ...engine.ops import Ops
from . import late
from .launch import Launcher
from .layout import LAYOUTS, CudaSteps, Layout, buffers

__all__ = ["CudaOps"]

_DTYPES = ("float32", "float64")


class CudaOps(Ops):
    """Whole sequences of CuPy float32 and float64 arrays on fused CUDA kernels.

    A case without kernels (another dtype, a cell not in :data:`.layout.LAYOUTS`) runs
    the generic loop (``super()``); so must any option that the seam gains and these
    kernels do not take.

    Parameters
    ----------
    xp : module
        CuPy's array namespace; NumPy's under the CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``),
        where the tests run the kernels on the CPU.
    threads : int, default 256
        Threads per block of every launch.
    """

    name = "cuda"

    def __init__(self, xp: ModuleType, *, threads: int = 256) -> None:
        super().__init__(xp)
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 1024:
            raise ValueError(f"threads must be an int in 1..1024 (threads per block), got {threads!r}")
        self.threads = threads

    def __repr__(self) -> str:
        return f"CudaOps({self.xp.__name__}, threads={self.threads})"

    @functools.cached_property
    def _launcher(self) -> Launcher:
        from numba import cuda  # numba-cuda, imported on first use

        return Launcher(cuda, self.xp, self.threads)

    @functools.cached_property
    def _raw(self) -> ModuleType:
        """The library behind the namespace, for ``matmul(..., out=)`` into a buffer."""
        if is_cupy_namespace(self.xp):
            import cupy

            return cupy
        import numpy  # the simulator's arrays

        return numpy

    def _kernels(self, cell: Cell, dtype: Any, vectors: Array | None = None) -> tuple[Layout, Any] | None:
        if cell.vectors and vectors is None:
            raise TypeError(f"the {cell.name} cell needs its vectors {[k for k, _ in cell.vectors]}")
        name = next((d for d in _DTYPES if dtype == getattr(self.xp, d)), None)
        if (
            name is None or cell.name not in LAYOUTS or isinstance(cell, DefinedCell)
        ):  # a user's "gru" is not ours
            return None
        return LAYOUTS[cell.name], _compiled(self._raw, name)[cell.name]

    def _defined(self, cell: Cell, dtype: Any, w_hr: Array | None, vectors: Array | None) -> bool:
        """Whether ``cell`` is a defined cell that :mod:`.defined_loops` runs (float32/64)."""
        fits = any(dtype == getattr(self.xp, d) for d in _DTYPES) and w_hr is None and vectors is None
        return fits and isinstance(cell, DefinedCell)

    def _lengths(self, lengths: Array | None, n: int, t_steps: int, like: Array) -> Array:
        """``lengths`` as int64 on the device; every sequence ``T`` steps long when None."""
        xp = self.xp
        if lengths is None:
            return xp.full((n,), t_steps, dtype=xp.int64, device=device_of(like))
        return lengths if lengths.dtype == xp.int64 else xp.astype(lengths, xp.int64)

    def forward(
        self,
        cell: Cell,
        gx: Array,
        w_hh_t: Array,
        biases: tuple[Array | None, Array | None],
        state0: State,
        lengths: Array | None,
        *,
        w_hr: Array | None = None,
        vectors: Array | None = None,
    ) -> tuple[Array, State, Sequence[Any]]:
        """Run ``cell`` forward over all steps (see :meth:`Ops.forward`).

        With a projection (``w_hr``) the generic loop runs: the kernels have no projection.
        """
        if self._defined(cell, gx.dtype, w_hr, vectors):  # a defined cell's own kernels
            from . import defined_loops  # numba-cuda, imported on first use

            return defined_loops.forward(self, cell, gx, w_hh_t, biases, state0, lengths)  # type: ignore[arg-type]
        found = None if w_hr is not None else self._kernels(cell, gx.dtype, vectors)
        if found is None:  # no kernels for this cell, dtype or option
            given = {} if vectors is None else {"vectors": vectors}
            return super().forward(cell, gx, w_hh_t, biases, state0, lengths, w_hr=w_hr, **given)
        layout, kernels = found
        xp, launch, raw = self.xp, self._launcher, self._raw
        t_steps, n, width = gx.shape
        if cell.late is not None:  # two matmuls and two kernels a step
            return self._late_forward(cell, layout, kernels, gx, w_hh_t, biases, state0, lengths)
        hidden, dtype, dev = w_hh_t.shape[0], gx.dtype, device_of(gx)
        # the kernels index without bounds checks: the sizes must agree first
        fits = f"for hidden size {hidden}"
        check_shape("W_hh", w_hh_t, (hidden, cell.n_gates * hidden), fits)
        check_shape("gx", gx, (t_steps, n, cell.n_gates * hidden), fits)
        b_x, b_h = (xp.zeros(width, dtype=dtype, device=dev) if b is None else b for b in biases)
        check_shape("b_x", b_x, (width,), fits)
        check_shape("b_h", b_h, (width,), fits)
        if vectors is not None:
            check_shape("vectors", vectors, (sum(b for _, b in cell.vectors) * hidden,), fits)
        for j, s in enumerate(state0):
            check_shape(f"state[{j}]", s, (n, hidden), fits)
        h0, c0 = state0[0], state0[-1]
        y = xp.empty((t_steps, n, hidden), dtype=dtype, device=dev)
        kept = xp.empty((t_steps, layout.kept, n, hidden), dtype=dtype, device=dev) if layout.kept else None
        gh = xp.empty((n, width), dtype=dtype, device=dev)
        lens = self._lengths(lengths, n, t_steps, gx)
        with launch.on(gx) as stream:
            a = launch.array
            kept_4d = y[:, None, ...] if kept is None else kept  # the RNN keeps nothing beside h
            args = (
                a(lens),
                a(gx),
                a(gh),
                a(b_x),
                a(b_h),
                a(h0),
                a(c0),
                a(y),
                a(kept_4d),
                *_vectors(a, vectors),
            )
            step = launch.configure(kernels.forward, n * hidden, stream)
            for t in range(t_steps):
                raw.matmul(h0 if t == 0 else y[t - 1, ...], w_hh_t, out=gh)
                step(t, *args)
        kept = y[:, None, ...] if kept is None else kept
        state = (y[-1, ...],) if layout.c_slot is None else (y[-1, ...], kept[-1, layout.c_slot, ...])
        return y, state, CudaSteps(layout, y, kept, c0 if layout.c_slot is not None else h0)

    def backward(
        self,
        cell: Cell,
        steps: Sequence[Any],
        dy: Array | None,
        dstate: State,
        w_hh: Array,
        lengths: Array | None,
        *,
        w_hr: Array | None = None,
        vectors: Array | None = None,
    ) -> tuple[Array, Array | None, State]:
        """Backpropagate ``cell`` through all steps (see :meth:`Ops.backward`).

        With a projection (``w_hr``) the generic loop runs, as forward.
        """
        if self._defined(cell, dstate[0].dtype, w_hr, vectors):
            from . import defined_loops

            return defined_loops.backward(self, cell, steps, dy, dstate, w_hh, lengths)  # type: ignore[arg-type]
        found = None if w_hr is not None else self._kernels(cell, dstate[0].dtype, vectors)
        if found is None:
            given = {} if vectors is None else {"vectors": vectors}
            return super().backward(cell, steps, dy, dstate, w_hh, lengths, w_hr=w_hr, **given)
        layout, kernels = found
        xp, launch, raw = self.xp, self._launcher, self._raw
        t_steps = len(steps)
        if cell.late is not None:
            return self._late_backward(cell, layout, kernels, steps, dy, dstate, w_hh, lengths)
        n, hidden = dstate[0].shape
        dtype, dev, width = dstate[0].dtype, device_of(dstate[0]), cell.n_gates * hidden
        fits = f"for hidden size {hidden}"
        check_shape("W_hh", w_hh, (width, hidden), fits)
        for j, d in enumerate(dstate):
            check_shape(f"dstate[{j}]", d, (n, hidden), fits)
        if dy is not None:
            check_shape("dy", dy, (t_steps, n, hidden), fits)
        y, kept, first = buffers(layout, steps, xp=xp)
        check_shape("steps (h)", y, (t_steps, n, hidden), fits)
        if vectors is not None:
            check_shape("vectors", vectors, (sum(b for _, b in cell.vectors) * hidden,), fits)
        check_shape("steps (kept)", kept, (t_steps, max(layout.kept, 1), n, hidden), fits)
        ds = xp.asarray(dstate[0], copy=True)  # the kernels write it: (N, H)
        carry = xp.asarray(dstate[1], copy=True) if layout.c_slot is not None else xp.zeros_like(ds)
        mm = xp.zeros_like(ds)
        dgx = xp.empty((t_steps, n, width), dtype=dtype, device=dev)
        dgh = xp.empty((t_steps, n, width), dtype=dtype, device=dev) if layout.grads > 1 else dgx
        lens = self._lengths(lengths, n, t_steps, ds)
        with launch.on(ds) as stream:
            a = launch.array
            has_dy = dy is not None
            dy_3d = dy if dy is not None else ds[None, ...]  # never read without dy
            buffers_ = (a(ds), a(mm), a(carry), a(y), a(kept), a(first), a(dgx), a(dgh))
            args = (a(lens), has_dy, a(dy_3d), *buffers_, *_vectors(a, vectors))
            step = launch.configure(kernels.backward, n * hidden, stream)
            for t in range(t_steps - 1, -1, -1):
                step(t, *args)
                raw.matmul(dgh[t, ...], w_hh, out=mm)
        # the gradient of h0: through step 0 where it was inside the sequence, else carried past it
        dh0 = mm + carry if layout.grads > 1 else mm
        if lengths is not None:
            dh0 = xp.where((lens > 0)[:, None], dh0, ds)
        d = (dh0,) if layout.c_slot is None else (dh0, carry)
        return dgx, (dgh if layout.grads > 1 else None), d

    def _late_forward(self, cell: Cell, layout: Layout, kernels: Any, *args: Any) -> Any:
        """:func:`.late.forward` after the checks of :meth:`forward`."""
        gx, w_hh_t, biases, state0, lengths = args
        t_steps, n, width = gx.shape
        hidden = w_hh_t.shape[0]
        fits = f"for hidden size {hidden}"
        check_shape("W_hh", w_hh_t, (hidden, cell.n_gates * hidden), fits)
        check_shape("gx", gx, (t_steps, n, cell.n_gates * hidden), fits)
        b_x, b_h = (
            self.xp.zeros(width, dtype=gx.dtype, device=device_of(gx)) if b is None else b for b in biases
        )
        check_shape("b_x", b_x, (width,), fits)
        check_shape("b_h", b_h, (width,), fits)
        check_shape("state[0]", state0[0], (n, hidden), fits)
        lens = self._lengths(lengths, n, t_steps, gx)
        return late.forward(self, layout, kernels, gx, w_hh_t, (b_x, b_h), state0, lens)

    def _late_backward(self, cell: Cell, layout: Layout, kernels: Any, *args: Any) -> Any:
        """:func:`.late.backward` after the checks of :meth:`backward`."""
        steps, dy, dstate, w_hh, lengths = args
        t_steps, (n, hidden) = len(steps), dstate[0].shape
        fits = f"for hidden size {hidden}"
        check_shape("W_hh", w_hh, (cell.n_gates * hidden, hidden), fits)
        check_shape("dstate[0]", dstate[0], (n, hidden), fits)
        if dy is not None:
            check_shape("dy", dy, (t_steps, n, hidden), fits)
        lens = self._lengths(lengths, n, t_steps, dstate[0])
        return late.backward(self, layout, kernels, steps, dy, dstate, w_hh, lens)


def _vectors(array: Any, vectors: Array | None) -> tuple[Any, ...]:
    """The kernels' last argument, the cell's vectors ``(V,)``, where it has any (``Cell.vectors``)."""
    return () if vectors is None else (array(vectors),)


@functools.cache
def _compiled(raw: ModuleType, dtype: str) -> dict[str, Any]:
    """Every cell's kernels for ``dtype``, made once (numba-cuda compiles each on its first launch)."""
    from .kernels import build  # imports numba-cuda

    return build(getattr(raw, dtype)(1))
