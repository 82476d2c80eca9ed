"""CUDA kernels and loops of the cells whose step reduces over a row (``Cell.row_step``).

The cell's per-row form (:class:`~xrnn.cells.base.RowStep`) compiled as CUDA device
functions, called by one kernel each way for every such cell, one thread per row ``b``
(each thread loops over its row's units, reductions included). Per step, as the other
cells: one cuBLAS matmul and one kernel each way::

    forward   gh = h_prev @ W_hh^T (N, G*H)            row forward into kept[t, b], y[t, b]
    backward  dh = ds or mm (+ carry), + dy[t]          row backward into dg[t, b], dgh[t, b]
              mm = dgh[t] @ W_hh                        the next step's upstream gradient

Buffers: ``kept (T, N, L)`` (the fields of the cell's step cache but the last, then
``c`` for a cell of two states: :class:`~xrnn.cells.RowStep`), ``y (T, N, H)``; the steps
read back as the cell's own step caches through :class:`xrnn.backends.numba.rows.RowSteps`'
layout, reimplemented here in the Array API (:class:`CudaRowSteps`). A row at or past its
length keeps its state and gets no gate gradient, as in every loop. Imported on first use:
it imports numba-cuda (the simulator under ``NUMBA_ENABLE_CUDASIM=1``), whose kernels name
``cuda`` as a module global.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

from array_api_compat import device as device_of
from numba import cuda

from ..._util.typing import Array, State
from ...cells import Cell, RowStep

__all__ = ["CudaRowSteps", "backward", "forward"]


class CudaRowSteps(Sequence[Any]):
    """The step caches of a CUDA forward of a row cell, made on access (see :class:`RowStep`)."""

    def __init__(self, cell: Cell, row: RowStep, y: Array, kept: Array, first: Array) -> None:
        self.cell, self.row, self.y, self.kept, self.first = cell, row, y, kept, first

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[t] for t in range(*index.indices(len(self)))]
        t = range(len(self))[index]
        hidden = self.y.shape[2]
        at = self.row.state_at(hidden)
        if t == 0:
            prev = self.first
        else:
            prev = self.kept[t - 1, :, at : at + hidden] if self.cell.n_states == 2 else self.y[t - 1, ...]
        return self.row.cache(*self.row.fields(self.kept[t, ...], hidden), prev)


@functools.cache
def _kernels(cell: Cell, raw: Any, dtype: str) -> tuple[RowStep, Any, Any]:
    """The cell's row form and its ``(forward, backward)`` kernels for ``dtype`` (by name: 1.0 == 1.0)."""
    device = cuda.jit(device=True)
    one, eps = getattr(raw, dtype)(1), getattr(raw, dtype)(cell.eps)

    @device
    def sigmoid(z: Any) -> Any:  # exp only ever sees -|z| <= 0: no overflow for any finite z
        e = math.exp(-abs(z))
        q = one / (one + e)
        return q if z >= 0 else e * q

    @device
    def tanh(x: Any) -> Any:
        return math.tanh(x)

    @device
    def sqrt(x: Any) -> Any:
        return math.sqrt(x)

    row = cell.row_step(sigmoid, tanh, sqrt, device)  # type: ignore[misc]
    row_forward, row_backward = device(row.forward), device(row.backward)
    two = cell.n_states == 2
    blocks, scalars = sum(row.widths), row.scalars  # c starts at blocks*H + scalars (two states)

    @cuda.jit
    def forward_kernel(t, lengths, gx, gh, v, h0, first, y, kept):  # type: ignore[no-untyped-def]
        b = cuda.grid(1)
        n, hidden = h0.shape
        if b >= n:
            return
        at = blocks * hidden + scalars
        h_prev = h0[b] if t == 0 else y[t - 1, b]
        if t == 0:
            prev = first[b]
        elif two:
            prev = kept[t - 1, b, at : at + hidden]
        else:
            prev = y[t - 1, b]
        row_forward(one, eps, gx[t, b], gh[b], v, prev, kept[t, b], y[t, b])
        if t >= lengths[b]:  # past the sequence: the state stays
            for j in range(hidden):
                y[t, b, j] = h_prev[j]
                if two:
                    kept[t, b, at + j] = prev[j]

    @cuda.jit
    def backward_kernel(t, lengths, has_dy, dy, ds, mm, carry, dc, dprev, y, kept, first, v, dg, dgh):  # type: ignore[no-untyped-def]
        b = cuda.grid(1)
        n, hidden = ds.shape
        if b >= n:
            return
        for j in range(hidden):
            dh = ds[b, j] if t + 1 >= lengths[b] else mm[b, j] + carry[b, j]
            if has_dy:
                dh = dh + dy[t, b, j]
            ds[b, j] = dh
        at = blocks * hidden + scalars
        if t == 0:
            prev = first[b]
        elif two:
            prev = kept[t - 1, b, at : at + hidden]
        else:
            prev = y[t - 1, b]
        row_backward(one, eps, ds[b], dc[b], kept[t, b], prev, v, dg[t, b], dgh[t, b], dprev[b])
        inside = t < lengths[b]
        zero = one - one
        if not inside:  # past the sequence: no gate gradient, the gradients carried through
            for j in range(dg.shape[2]):
                dg[t, b, j] = zero
            for j in range(dgh.shape[2]):
                dgh[t, b, j] = zero
        for j in range(hidden):
            if two:
                carry[b, j] = zero
                if inside:
                    dc[b, j] = dprev[b, j]
            else:
                carry[b, j] = dprev[b, j] if inside else zero

    return row, forward_kernel, backward_kernel


def _dtype_name(ops: Any, dtype: Any) -> str:
    return "float32" if dtype == ops.xp.float32 else "float64"


def forward(
    ops: Any, cell: Cell, gx: Array, w_hh_t: Array, state0: State, lens: Array, vectors: Array
) -> tuple[Array, State, CudaRowSteps]:
    """The forward loop (see the module); ``ops`` is the :class:`~.ops.CudaOps`, sizes checked."""
    xp, launch, raw = ops.xp, ops._launcher, ops._raw
    t_steps, n, width = gx.shape
    hidden, dtype, dev = width // cell.n_gates, gx.dtype, device_of(gx)
    row, kernel, _ = _kernels(cell, ops._raw, _dtype_name(ops, dtype))
    h0, first = state0[0], state0[-1]
    y = xp.empty((t_steps, n, hidden), dtype=dtype, device=dev)
    at = row.state_at(hidden)  # c after the cached fields (two states)
    kept = xp.empty((t_steps, n, at + (cell.n_states - 1) * hidden), dtype=dtype, device=dev)
    gh = xp.empty((n, width), dtype=dtype, device=dev)
    with launch.on(gx) as stream:
        a = launch.array
        args = (a(lens), a(gx), a(gh), a(vectors), a(h0), a(first), a(y), a(kept))
        step = launch.configure(kernel, n, stream)
        for t in range(t_steps):
            raw.matmul(h0 if t == 0 else y[t - 1, ...], w_hh_t, out=gh)
            step(t, *args)
    last = (y[-1, ...],) if cell.n_states == 1 else (y[-1, ...], kept[-1, :, at : at + hidden])
    return y, last, CudaRowSteps(cell, row, y, kept, first)


def backward(
    ops: Any,
    cell: Cell,
    steps: CudaRowSteps,
    dy: Array | None,
    dstate: State,
    w_hh: Array,
    lens: Array,
    vectors: Array,
) -> tuple[Array, Array, State]:
    """The backward loop (see the module): ``(dgx, dgh, dstate0)``; sizes checked by the caller."""
    xp, launch, raw = ops.xp, ops._launcher, ops._raw
    t_steps = len(steps)
    n, hidden = dstate[0].shape
    dtype, dev, width = dstate[0].dtype, device_of(dstate[0]), w_hh.shape[0]
    _, _, kernel = _kernels(cell, ops._raw, _dtype_name(ops, dtype))
    ds = xp.asarray(dstate[0], copy=True)  # the kernel writes it: (N, H)
    dc = xp.asarray(dstate[1], copy=True) if cell.n_states == 2 else xp.zeros_like(ds)
    carry, mm, dprev = (xp.zeros_like(ds) for _ in range(3))
    dg = xp.empty((t_steps, n, width + cell.gradient_blocks * hidden), dtype=dtype, device=dev)
    dgh = xp.empty((t_steps, n, width), dtype=dtype, device=dev)
    with launch.on(ds) as stream:
        a = launch.array
        has_dy = dy is not None
        dy_3d = dy if dy is not None else ds[None, ...]  # never read without dy
        args = (a(lens), has_dy, a(dy_3d), a(ds), a(mm), a(carry), a(dc), a(dprev), a(steps.y))
        args_ = (*args, a(steps.kept), a(steps.first), a(vectors), a(dg), a(dgh))
        step = launch.configure(kernel, n, stream)
        for t in range(t_steps - 1, -1, -1):
            step(t, *args_)
            raw.matmul(dgh[t, ...], w_hh, out=mm)
    dh0 = xp.where((lens > 0)[:, None], mm + carry, ds)
    return dg, dgh, ((dh0,) if cell.n_states == 1 else (dh0, dc))
