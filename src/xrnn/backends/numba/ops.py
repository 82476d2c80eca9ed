"""The Numba backend's :class:`~xrnn.engine.ops.Ops`: whole sequences on fused kernels.

Forward and backward run the cell's compiled loop (:mod:`.loops`) where NumPy's own
BLAS ``gemm`` was found, else a Python loop over the same kernels with NumPy's ``@`` per
step. Either way the buffers and step caches have one layout (:mod:`.table`), so either
loop's steps feed either backward, and the generic one's too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

import numpy as np

from ..._util.typing import Array, State
from ..._util.validation import check_shape
from ...cells import Cell
from ...cells.definition import DefinedCell
from ...engine.ops import Ops
from ...engine.zoneout import Masks
from . import defined_loops, diagonal, infer_ops, rows, zoned
from .buffers import RECYCLER, contiguous, int64_lengths
from .defined import fused
from .loops import blas, carry, clear, gemm_address, upstream
from .table import KERNELS, CellKernels, SequenceSteps, buffers

__all__ = ["NumbaOps"]

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class NumbaOps(Ops):
    """Whole sequences of NumPy float32 and float64 arrays on fused Numba kernels.

    Parameters
    ----------
    xp : module
        A NumPy namespace.
    compiled : bool, optional
        Run the compiled loops (they need NumPy's BLAS symbols; the default where they
        were found) or the Python per-step loop over the same kernels.
    """

    name = "numba"

    def __init__(self, xp: ModuleType, *, compiled: bool | None = None) -> None:
        super().__init__(xp)
        self.compiled = blas() is not None if compiled is None else compiled
        if self.compiled and blas() is None:
            raise ValueError("compiled=True needs NumPy's BLAS gemm, which this NumPy build does not export")

    def __repr__(self) -> str:
        return f"NumbaOps({self.xp.__name__}, compiled={self.compiled})"

    def _kernels(self, cell: Cell, dtype: Any, vectors: Array | None = None) -> CellKernels | None:
        if cell.vectors and vectors is None:
            raise TypeError(f"the {cell.name} cell needs its vectors {[k for k, _ in cell.vectors]}")
        if np.dtype(dtype) not in _DTYPES or ((cell.late is not None or cell.vectors) and not self.compiled):
            return None  # the per-step loop has no second matmul, no vectors: such cells run generic
        return None if isinstance(cell, DefinedCell) else KERNELS.get(cell.name)  # a user's "gru" is not ours

    def _defined(self, cell: Cell, dtype: Any, w_hr: Array | None, vectors: Array | None) -> bool:
        """Whether ``cell`` is a defined cell that :mod:`.defined_loops` runs (compiled, float32/64)."""
        fits = self.compiled and np.dtype(dtype) in _DTYPES and w_hr is None and vectors is None
        return fits and isinstance(cell, DefinedCell)

    def _zoned(self, k: CellKernels | None, zoneout: Masks | None) -> CellKernels | None:
        """``k``, or None (the generic loop) for zoneout where it has no compiled loop with masks."""
        if zoneout is None or (k is not None and k.zoned_sequence is not None and self.compiled):
            return k
        return None

    def _rows(self, cell: Cell, dtype: Any, w_hr: Array | None, vectors: Array | None) -> bool:
        """Whether ``cell`` runs the compiled row loop (:mod:`.rows`); else the generic one."""
        given = vectors is not None and w_hr is None and cell.row_step is not None
        return given and self.compiled and np.dtype(dtype) in _DTYPES

    def project(self, x: Array, w_ih: Array) -> Array:
        """``x @ w_ih^T`` into a recycled buffer (see :meth:`Ops.project`).

        A time-reversed view (negative strides) is copied first: BLAS then sees the rows
        it sees for the reversed sequence itself, so both give the same bits.
        """
        t_steps, n, n_in = x.shape
        out = RECYCLER.empty((t_steps * n, w_ih.shape[0]), x.dtype)
        np.matmul(contiguous(x).reshape(t_steps * n, n_in), w_ih.T, out=out)
        return out.reshape(t_steps, n, w_ih.shape[0])

    def join(self, parts: Iterable[Array], length: int, *, backwards: bool = False) -> Array:
        """The segments copied into one array as they come (see :meth:`Ops.join`).

        Each segment can go once copied, so a long sequence is held once, not twice (as
        a list of its segments and their concatenation).
        """
        whole, t = None, (length if backwards else 0)
        for part in parts:
            n = part.shape[0]
            if n == length:  # one segment: it is the whole (the loop still ends the iterator)
                whole = part
                continue
            if whole is None:
                whole = np.empty((length, *part.shape[1:]), part.dtype)
            t = t - n if backwards else t
            whole[t : t + n] = part
            t = t if backwards else t + n
            del part
        if whole is None:
            raise ValueError(f"join needs at least one segment of a sequence of {length} steps")
        return whole

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
        zoneout: Masks | None = None,
    ) -> tuple[Array, State, Sequence[Any]]:
        """Run ``cell`` forward over all steps (see :meth:`Ops.forward`)."""
        # a cell that reduces over rows: its row loop, which adds no bias (the layer gives none)
        rowwise = zoneout is None and all(b is None for b in biases)
        if rowwise and self._rows(cell, gx.dtype, w_hr, vectors):
            return rows.forward(cell, gx, w_hh_t, state0, lengths, vectors)  # type: ignore[arg-type]
        if zoneout is None and self._defined(cell, gx.dtype, w_hr, vectors):  # a defined cell's own loop
            return defined_loops.forward(cell, gx, w_hh_t, biases, state0, lengths)  # type: ignore[arg-type]
        k = self._zoned(self._kernels(cell, gx.dtype, vectors), zoneout)
        if k is not None and cell.diagonal and w_hr is None:  # IndRNN: one loop, no matmul
            return diagonal.forward(cell, gx, w_hh_t, biases, state0, lengths)
        if k is None or (w_hr is not None and (k.projected_sequence is None or vectors is not None)):
            cell = fused(cell, gx.dtype)  # a defined cell: its step compiled, in the generic loop
            given = _given(w_hr, vectors, zoneout)
            return super().forward(cell, gx, w_hh_t, biases, state0, lengths, **given)
        t_steps, n, width = gx.shape
        hidden, dtype = width // cell.n_gates, gx.dtype
        h_size = hidden if w_hr is None else w_hr.shape[0]  # P with a projection
        if cell.fold_bias and biases[1] is not None:  # the LSTM's kernel takes one bias
            biases = (biases[1] if biases[0] is None else biases[0] + biases[1], None)
        b_x, b_h = (np.zeros(width, dtype) if b is None else contiguous(b) for b in biases)
        # the compiled loops read and write without bounds checks: the sizes must agree first
        fits = f"for hidden size {hidden}, state size {h_size}"
        check_shape("W_hh", w_hh_t.T, (cell.n_gates * hidden, h_size), fits)
        check_shape("gx", gx, (t_steps, n, cell.n_gates * hidden), fits)
        check_shape("b_x", b_x, (width,), fits)
        check_shape("b_h", b_h, (width,), fits)
        if vectors is not None:
            check_shape("vectors", vectors, (sum(b for _, b in cell.vectors) * hidden,), fits)
        for j, s in enumerate(state0):
            check_shape(f"state[{j}]", s, (n, h_size if j == 0 else hidden), fits)
        gx, w_hh_t = contiguous(gx), contiguous(w_hh_t)
        state0 = tuple(contiguous(s) for s in state0)
        y = RECYCLER.empty((t_steps, n, h_size), dtype)
        kept = RECYCLER.empty((t_steps, k.layout.kept, n, hidden), dtype)
        gh = np.empty((n, width), dtype)
        lengths = int64_lengths(lengths)
        if w_hr is not None:
            check_shape("W_hr", w_hr, (h_size, hidden), fits)
            w_hr_t, h_cell = np.ascontiguousarray(w_hr.T), np.empty((n, hidden), dtype)
            if self.compiled:
                k.projected_sequence(  # type: ignore[misc]
                    gemm_address(dtype), lengths, gx, w_hh_t, b_x, state0, w_hr_t, y, kept, gh, h_cell
                )
            else:
                _forward_by_step(
                    k, lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh, projection=(w_hr_t, h_cell)
                )
        elif zoneout is not None:  # the loop with the masks (:meth:`_zoned`: compiled, LSTM or GRU)
            masks = zoned.masks(zoneout, (t_steps, n, hidden), dtype)
            k.zoned_sequence(gemm_address(dtype), lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh, masks)  # type: ignore[misc]
        elif self.compiled:
            k.sequence(
                gemm_address(dtype), lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh, *_extra(vectors)
            )
        else:
            _forward_by_step(k, lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh)
        state = (y[-1],) if k.layout.c_slot is None else (y[-1], kept[-1, k.layout.c_slot])
        return y, state, SequenceSteps(k.layout, y, kept, state0[-1])

    def infer(
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
    ) -> tuple[Array, State]:
        """Run ``cell`` forward keeping no step cache (see :meth:`Ops.infer`, :mod:`.infer_ops`)."""
        ours = not isinstance(cell, DefinedCell)  # a user's cell named "gru" is not our GRU
        if ours and w_hr is None and vectors is None and self.compiled and np.dtype(gx.dtype) in _DTYPES:
            done = infer_ops.infer(cell, gx, w_hh_t, biases, state0, lengths)
            if done is not None:
                return done
        return super().infer(cell, gx, w_hh_t, biases, state0, lengths, **_given(w_hr, vectors))

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
        zoneout: Masks | None = None,
    ) -> tuple[Array, Array | None, State]:
        """Backpropagate ``cell`` through all steps (see :meth:`Ops.backward`)."""
        if isinstance(steps, rows.RowSteps) and self._rows(cell, dstate[0].dtype, w_hr, vectors):
            return rows.backward(cell, steps, dy, dstate, w_hh, lengths, vectors)  # type: ignore[arg-type]
        if zoneout is None and self._defined(cell, dstate[0].dtype, w_hr, vectors):
            return defined_loops.backward(cell, steps, dy, dstate, w_hh, lengths)  # type: ignore[arg-type]
        k = self._zoned(self._kernels(cell, dstate[0].dtype, vectors), zoneout)
        if k is not None and cell.diagonal and w_hr is None:
            return diagonal.backward(cell, steps, dy, dstate, w_hh, lengths)
        if k is None or (w_hr is not None and (k.projected_sequence_backward is None or vectors is not None)):
            cell = fused(cell, dstate[0].dtype)
            given = _given(w_hr, vectors, zoneout)
            return super().backward(cell, steps, dy, dstate, w_hh, lengths, **given)
        t_steps = len(steps)
        n, h_size = dstate[0].shape
        hidden = w_hh.shape[0] // cell.n_gates
        dtype, width = dstate[0].dtype, cell.n_gates * hidden
        fits = f"for hidden size {hidden}, state size {h_size}"
        check_shape("W_hh", w_hh, (width, h_size), fits)
        for j, d in enumerate(dstate):
            check_shape(f"dstate[{j}]", d, (n, h_size if j == 0 else hidden), fits)
        if dy is not None:
            check_shape("dy", dy, (t_steps, n, h_size), fits)
        dy = np.empty((0, n, h_size), dtype) if dy is None else contiguous(dy)
        w_hh = contiguous(w_hh)
        d = tuple(np.array(a, dtype=dtype, order="C") for a in dstate)  # copies: the loops write them
        dg = RECYCLER.empty((k.layout.grads, t_steps, n, width), dtype)
        lengths = int64_lengths(lengths)
        if w_hr is not None:
            check_shape("W_hr", w_hr, (h_size, hidden), fits)
            w_hr = contiguous(w_hr)
        if self.compiled:
            y, kept, first = buffers(k, steps)
            if k.layout.c_slot is None:  # the LSTM's backward reads no y
                check_shape("steps (h)", y, (t_steps, n, hidden), fits)
            check_shape("steps (kept)", kept, (t_steps, k.layout.kept, n, hidden), fits)
            if w_hr is not None:
                d = k.projected_sequence_backward(  # type: ignore[misc]
                    gemm_address(dtype), lengths, dy, d, kept, first, w_hh, w_hr, dg
                )
            elif zoneout is not None:
                masks = zoned.masks(zoneout, (t_steps, n, hidden), dtype)
                args = (gemm_address(dtype), lengths, dy, d, y, kept, first, w_hh, dg, masks)
                d = k.zoned_sequence_backward(*args)  # type: ignore[misc]
            else:
                d = k.sequence_backward(
                    gemm_address(dtype), lengths, dy, d, y, kept, first, w_hh, dg, *_extra(vectors)
                )
        else:
            d = _backward_by_step(k, steps, lengths, dy, d, w_hh, dg, w_hr)
        return dg[0], (dg[1] if k.layout.grads > 1 else None), d


def _extra(vectors: Array | None) -> tuple[Array, ...]:
    """The compiled loops' last argument, the cell's vectors, where it has any (``Cell.vectors``)."""
    return () if vectors is None else (contiguous(vectors),)


def _given(w_hr: Array | None, vectors: Array | None = None, zoneout: Masks | None = None) -> dict[str, Any]:
    """``{"w_hr": w_hr}`` when there is a projection, ``vectors`` for a cell's vectors, zoneout's masks."""
    given: dict[str, Any] = {} if w_hr is None else {"w_hr": w_hr}
    if zoneout is not None:
        given["zoneout"] = zoneout
    return given if vectors is None else {**given, "vectors": vectors}


def _forward_by_step(
    k: CellKernels, lengths: Array, gx: Array, w_hh_t: Array, *rest: Any, projection: Any = None
) -> None:
    """The compiled forward loop, step by step from Python with NumPy's ``@``.

    ``projection`` is ``(W_hr^T (H, P), h_cell (N, H) scratch)`` or None.
    """
    b_x, b_h, state, y, kept, gh = rest
    for t in range(gx.shape[0]):
        np.matmul(state[0], w_hh_t, out=gh)
        if projection is None:
            k.step(gx[t], gh, b_x, b_h, state, y[t], kept[t])
        else:
            k.step(gx[t], gh, b_x, b_h, state, projection[1], kept[t])
            np.matmul(projection[1], projection[0], out=y[t])
        new = (y[t],) if k.layout.c_slot is None else (y[t], kept[t, k.layout.c_slot])
        for before, after in zip(state, new):
            carry(t, lengths, before, after)  # rows past their length keep their state
        state = new


def _backward_by_step(
    k: CellKernels,
    steps: Sequence[Any],
    lengths: Array,
    dy: Array,
    d: State,
    w_hh: Array,
    dg: Array,
    w_hr: Array | None = None,
) -> State:
    """The compiled backward loop, step by step from Python with NumPy's ``@``."""
    scratch = np.empty_like(d[0])
    for t in range(len(steps) - 1, -1, -1):
        ds = (upstream(d[0], dy, t, lengths, scratch), *d[1:])
        ds_cell = ds if w_hr is None else (ds[0] @ w_hr, *ds[1:])  # the gradient of o * tanh(c)
        direct = k.step_backward(ds_cell, steps[t], dg[:, t])
        for g in dg[:, t]:
            clear(t, lengths, g)  # rows past their length get no gate gradient
        dh_prev = dg[-1, t] @ w_hh  # (N, H)
        if direct[0] is not None:
            dh_prev = dh_prev + direct[0]
        d = (dh_prev, *direct[1:])
        for before, after in zip(ds, d):
            carry(t, lengths, before, after)  # ... and carry their gradient through
    return d
