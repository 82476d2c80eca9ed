"""Compiled loops of the cells whose step reduces over a row (``Cell.row_step``): the LayerNorm cells.

One loop for every such cell, built from its per-row form (:class:`~xrnn.cells.base.RowStep`)
and compiled once per cell: per step one ``gemm`` (``gh = h_prev @ W_hh^T``) and the
cell's row function on each row, then, back, the row function's backward and one
``gemm`` (``dh_prev = dgh @ W_hh``). Nothing here names a cell: a new reduction-carrying
cell adds its maths file and runs here.

A step's cache is one row of ``kept (T, N, L)`` per sequence (the fields of the cell's
step cache but the last, then ``c`` for a cell of two states: :class:`~xrnn.cells.RowStep`);
:class:`RowSteps` shows the buffers as the cell's own step caches. The cell's reductions
over a row are compiled with ``fastmath={"reassoc"}``: their sums are added in whatever
order vectorises (results within rounding of the strict order), and nothing else is.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np

from ..._util.typing import Array, State
from ...cells import Cell, RowStep
from .activations import sigmoid, tanh
from .buffers import RECYCLER, contiguous, int64_lengths
from .loops import call_gemm, carry, clear, gemm_address, upstream

__all__ = ["RowSteps", "backward", "forward"]


def _plain(function: Any) -> Any:
    """A row function compiled on its own: its loops are inside it, so nothing gains by inlining."""
    return numba.njit(nogil=True, error_model="numpy")(function)


def _reduction(function: Any) -> Any:
    """A cell's reduction over a row, its sums reassociated so that they vectorise."""
    return numba.njit(nogil=True, error_model="numpy", fastmath={"reassoc"})(function)


@numba.njit(inline="always")
def _sqrt(x: Any) -> Any:
    return math.sqrt(x)


class RowSteps(Sequence[Any]):
    """The step caches of a compiled forward of a row cell: the cell's own caches, made on access.

    ``kept (T, N, L)``, ``y (T, N, H)`` and ``first``, the last state before step 0
    (``c0``, or ``h0`` for a cell of one state).
    """

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
            prev = self.kept[t - 1, :, at : at + hidden] if self.cell.n_states == 2 else self.y[t - 1]
        fields = self.row.fields(self.kept[t], hidden)
        # compact copies: a field is a strided view of kept, which DLPack (the JAX bridge) refuses
        return self.row.cache(*(np.ascontiguousarray(a) for a in (*fields, prev)))


@functools.cache
def _loops(cell: Cell) -> tuple[RowStep, Any, Any]:
    """The cell's row form and its compiled ``(sequence, sequence_backward)``."""
    row = cell.row_step(sigmoid, tanh, _sqrt, _reduction)  # type: ignore[misc]
    row_forward, row_backward = _plain(row.forward), _plain(row.backward)
    two = cell.n_states == 2
    blocks, scalars = sum(row.widths), row.scalars  # c starts at blocks*H + scalars (two states)
    cell_eps = cell.eps

    # The previous last state of row b is before[b, lo : lo + H], a 2-d buffer (c0 or h0, the
    # step before's kept, or y[t - 1]) and a column: so sliced, a row is contiguous to Numba
    # (not a row of a 2-d slice), and the row functions' loops over it vectorise. step and
    # rows_back are inlined (Numba IR) where they are called: compiled apart, each is one
    # more LLVM module to optimise, a second time for a literal argument (compilation time).

    @numba.njit(nogil=True, inline="always")
    def step(gemm, t, lengths, gx, w_hh_t, v, h_prev, before, lo, h, kept, gh):  # type: ignore[no-untyped-def]
        call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
        one, eps = h.dtype.type(1), h.dtype.type(cell_eps)
        hidden = h.shape[1]
        for b in range(h.shape[0]):
            row_forward(one, eps, gx[b], gh[b], v, before[b, lo : lo + hidden], kept[b], h[b])
        carry(t, lengths, h_prev, h)
        if two:
            at = blocks * hidden + scalars
            carry(t, lengths, before[:, lo : lo + hidden], kept[:, at : at + hidden])

    @numba.njit(nogil=True)
    def sequence(gemm, lengths, gx, w_hh_t, v, h0, first, y, kept, gh):  # type: ignore[no-untyped-def]
        at = blocks * y.shape[2] + scalars
        for t in range(gx.shape[0]):
            if t == 0:
                step(gemm, t, lengths, gx[t], w_hh_t, v, h0, first, 0, y[t], kept[t], gh)
            elif two:
                step(gemm, t, lengths, gx[t], w_hh_t, v, y[t - 1], kept[t - 1], at, y[t], kept[t], gh)
            else:
                step(gemm, t, lengths, gx[t], w_hh_t, v, y[t - 1], y[t - 1], 0, y[t], kept[t], gh)

    @numba.njit(nogil=True, inline="always")
    def rows_back(d, dc, kept, before, lo, v, dg, dgh, dprev):  # type: ignore[no-untyped-def]
        one, eps = d.dtype.type(1), d.dtype.type(cell_eps)
        hidden = d.shape[1]
        for b in range(d.shape[0]):
            prev = before[b, lo : lo + hidden]
            row_backward(one, eps, d[b], dc[b], kept[b], prev, v, dg[b], dgh[b], dprev[b])

    @numba.njit(nogil=True)
    def sequence_backward(gemm, lengths, dy, dh, dc, kept, first, y, w_hh, v, dg, dgh):  # type: ignore[no-untyped-def]
        ds, dprev = np.empty_like(dh), np.empty_like(dh)
        at = blocks * dh.shape[1] + scalars
        for t in range(kept.shape[0] - 1, -1, -1):
            d = upstream(dh, dy, t, lengths, ds)
            if t == 0:
                rows_back(d, dc, kept[0], first, 0, v, dg[0], dgh[0], dprev)
            elif two:
                rows_back(d, dc, kept[t], kept[t - 1], at, v, dg[t], dgh[t], dprev)
            else:
                rows_back(d, dc, kept[t], y[t - 1], 0, v, dg[t], dgh[t], dprev)
            clear(t, lengths, dg[t])
            clear(t, lengths, dgh[t])
            if two:  # h reaches the previous step through W_hh alone, c directly
                call_gemm(gemm, dgh[t], w_hh, 0.0, dh)
                carry(t, lengths, d, dh)
                carry(t, lengths, dc, dprev)
                dc, dprev = dprev, dc
            else:  # dh_prev = dgh @ W_hh + the direct path
                call_gemm(gemm, dgh[t], w_hh, 1.0, dprev)
                carry(t, lengths, d, dprev)
                dh, dprev = dprev, dh
        return dh, dc

    return row, sequence, sequence_backward


def forward(
    cell: Cell, gx: Array, w_hh_t: Array, state0: State, lengths: Array | None, vectors: Array
) -> tuple[Array, State, RowSteps]:
    """The compiled forward of a row cell (the arguments of :meth:`~xrnn.engine.ops.Ops.forward`, checked)."""
    row, sequence, _ = _loops(cell)
    t_steps, n, width = gx.shape
    hidden, dtype = width // cell.n_gates, gx.dtype
    at = row.state_at(hidden)  # c after the cached fields (two states)
    kept = RECYCLER.empty((t_steps, n, at + (cell.n_states - 1) * hidden), dtype)  # no page faults
    y = RECYCLER.empty((t_steps, n, hidden), dtype)
    gh = np.empty((n, width), dtype)
    h0, first = contiguous(state0[0]), contiguous(state0[-1])
    gx, w_hh_t, v = contiguous(gx), contiguous(w_hh_t), contiguous(vectors)
    sequence(gemm_address(dtype), int64_lengths(lengths), gx, w_hh_t, v, h0, first, y, kept, gh)
    # c is a strided view of kept: a copy, compact as the bridges' DLPack (JAX) needs
    last = (y[-1],) if cell.n_states == 1 else (y[-1], np.ascontiguousarray(kept[-1, :, at : at + hidden]))
    return y, last, RowSteps(cell, row, y, kept, first)


def backward(
    cell: Cell,
    steps: RowSteps,
    dy: Array | None,
    dstate: State,
    w_hh: Array,
    lengths: Array | None,
    vectors: Array,
) -> tuple[Array, Array, State]:
    """The compiled backward of a row cell over the steps of :func:`forward`: ``(dgx, dgh, dstate0)``."""
    _, _, sequence_backward = _loops(cell)
    t_steps = len(steps)
    n, hidden = dstate[0].shape
    dtype, width = dstate[0].dtype, w_hh.shape[0]
    dg = RECYCLER.empty((t_steps, n, width + cell.gradient_blocks * hidden), dtype)
    dgh = RECYCLER.empty((t_steps, n, width), dtype)
    d = [np.array(a, dtype=dtype, order="C") for a in dstate]  # copies: the loop writes them
    dc = d[1] if cell.n_states == 2 else np.zeros_like(d[0])
    dy = np.empty((0, n, hidden), dtype) if dy is None else contiguous(dy)
    args = (steps.kept, steps.first, steps.y, contiguous(w_hh), contiguous(vectors), dg, dgh)
    dh, dc = sequence_backward(gemm_address(dtype), int64_lengths(lengths), dy, d[0], dc, *args)
    return dg, dgh, ((dh,) if cell.n_states == 1 else (dh, dc))
