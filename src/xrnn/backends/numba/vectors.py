"""Compiled loops of the cells with per-unit vectors (``Cell.vectors``): the peephole LSTM.

The LSTM's loop (:mod:`.loops`: per step one ``gemm`` and one fused kernel each way) with
the peephole weights ``p (3H,)`` read by the kernels, which the cell's scalar step
(:func:`xrnn.cells.lstm_peephole.scalar_step`) defines. The step caches have the LSTM's
layout, ``kept (T, 6, N, H)``: ``i, f, g, o, tanh(c), c``. The loops take ``vectors``
after the arguments of :attr:`.table.CellKernels.sequence` and ``sequence_backward``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._util.typing import Array
from ...cells import lstm_peephole
from ..layout import LAYOUTS
from .activations import sigmoid as _sigmoid
from .activations import tanh as _tanh
from .compile import inline, jit
from .loops import call_gemm, carry, clear, upstream

__all__ = ["LAYOUT", "peephole_sequence", "peephole_sequence_backward"]

_step, _step_backward = (inline(f) for f in lstm_peephole.scalar_step(_sigmoid, _tanh))


@inline
def _unit(one: Any, x: Array, y: Array, bias: Array, p: Array, c_prev: Array, j: int) -> Any:
    """The scalar step of unit ``j`` of a row: ``x``, ``y``, ``bias`` ``(4, H)``, ``p (3, H)``."""
    return _step(
        one,
        x[0, j] + bias[0, j],
        x[1, j] + bias[1, j],
        x[2, j] + bias[2, j],
        x[3, j] + bias[3, j],
        y[0, j],
        y[1, j],
        y[2, j],
        y[3, j],
        p[0, j],
        p[1, j],
        p[2, j],
        c_prev[j],
    )


@jit
def _forward(gx: Array, gh: Array, bias: Array, p: Array, c_prev: Array, h: Array, out: Array) -> None:
    """One step: ``h``, and ``out (6, N, H)``: ``i, f, g, o, tanh(c), c``.

    Two passes over a row, each evaluating the whole scalar step and storing part of
    it: ``i, f, g, c``, then ``o, tanh(c), h``. In one pass, storing all seven, LLVM did
    not vectorise the loop (:mod:`.kernels`), not even with the biases and peepholes in
    one array: 6.5x slower (68.5 against 10.6 ms for 100 steps, N=64, H=256, float32),
    for the same bits.
    """
    n, hidden = c_prev.shape
    one = h.dtype.type(1)
    bias, p = bias.reshape((4, hidden)), p.reshape((3, hidden))
    for b in range(n):
        x, y = gx[b].reshape((4, hidden)), gh[b].reshape((4, hidden))
        i_b, f_b, g_b, o_b = out[0, b], out[1, b], out[2, b], out[3, b]
        tanh_c_b, h_b, c_b, c_prev_b = out[4, b], h[b], out[5, b], c_prev[b]
        for j in range(hidden):
            i_b[j], f_b[j], g_b[j], _, _, _, c_b[j] = _unit(one, x, y, bias, p, c_prev_b, j)
        for j in range(hidden):
            _, _, _, o_b[j], tanh_c_b[j], h_b[j], _ = _unit(one, x, y, bias, p, c_prev_b, j)


@jit
def _backward(
    dh: Array, dc_next: Array, kept: Array, c_prev: Array, p: Array, dz: Array, dc_prev: Array
) -> None:
    """One step back: ``dz (N, 4H)`` and ``dc_prev (N, H)`` from ``kept (6, N, H)``."""
    n, hidden = dh.shape
    one = dh.dtype.type(1)
    p = p.reshape((3, hidden))
    for b in range(n):
        d = dz[b].reshape((4, hidden))
        dz_i, dz_f, dz_g, dz_o, dc_prev_b = d[0], d[1], d[2], d[3], dc_prev[b]
        for j in range(hidden):
            dz_i[j], dz_f[j], dz_g[j], dz_o[j], dc_prev_b[j] = _step_backward(
                one,
                dh[b, j],
                dc_next[b, j],
                kept[0, b, j],
                kept[1, b, j],
                kept[2, b, j],
                kept[3, b, j],
                kept[4, b, j],
                c_prev[b, j],
                p[0, j],
                p[1, j],
                p[2, j],
            )


@jit
def _step_gemm(gemm, t, lengths, gx, w_hh_t, bias, p, h_prev, c_prev, h, kept, gh):  # type: ignore
    call_gemm(gemm, h_prev, w_hh_t, 0.0, gh)
    _forward(gx, gh, bias, p, c_prev, h, kept)
    carry(t, lengths, h_prev, h)
    carry(t, lengths, c_prev, kept[5])


@jit
def _sequence(gemm, lengths, gx, w_hh_t, bias, p, h0, c0, y, kept, gh):  # type: ignore
    _step_gemm(gemm, 0, lengths, gx[0], w_hh_t, bias, p, h0, c0, y[0], kept[0], gh)
    for t in range(1, gx.shape[0]):
        _step_gemm(gemm, t, lengths, gx[t], w_hh_t, bias, p, y[t - 1], kept[t - 1, 5], y[t], kept[t], gh)


@jit
def _sequence_backward(gemm, lengths, dy, dh, dc, kept, c0, w_hh, p, dz):  # type: ignore
    ds, dc_prev = np.empty_like(dh), np.empty_like(dc)
    for t in range(kept.shape[0] - 1, -1, -1):
        d = upstream(dh, dy, t, lengths, ds)
        _backward(d, dc, kept[t], c0 if t == 0 else kept[t - 1, 5], p, dz[t], dc_prev)
        clear(t, lengths, dz[t])
        call_gemm(gemm, dz[t], w_hh, 0.0, dh)
        carry(t, lengths, d, dh)
        carry(t, lengths, dc, dc_prev)
        dc, dc_prev = dc_prev, dc
    return dh, dc


def peephole_sequence(gemm: int, lengths: Array, gx: Array, w_hh_t: Array, *rest: Any) -> None:
    """Forward over ``T`` steps: :attr:`.table.CellKernels.sequence`'s arguments, then ``vectors``."""
    b_x, _, state0, y, kept, gh, vectors = rest  # b_hh is folded into b_x (Cell.fold_bias)
    _sequence(gemm, lengths, gx, w_hh_t, b_x, np.ascontiguousarray(vectors), *state0, y, kept, gh)


def peephole_sequence_backward(gemm: int, lengths: Array, dy: Array, d: Any, *rest: Any) -> tuple[Array, ...]:
    """Backward over ``T`` steps: ``sequence_backward``'s arguments, then ``vectors``."""
    _, kept, first, w_hh, dg, vectors = rest
    return _sequence_backward(
        gemm, lengths, dy, d[0], d[1], kept, first, w_hh, np.ascontiguousarray(vectors), dg[0]
    )


#: The step-cache layout: the LSTM's.
LAYOUT = LAYOUTS["lstm_peephole"]
