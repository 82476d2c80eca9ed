"""The CUDA kernels of the cells with per-unit vectors (``Cell.vectors``): the peephole LSTM.

The LSTM's kernels (:mod:`.kernels`, the same buffers and the same lengths handling) with
the peephole weights ``p (3H,)`` as a last argument, compiled from
:func:`xrnn.cells.lstm_peephole.scalar_step`. Imported by :mod:`.kernels` alone, which
imports numba-cuda; the kernels name ``cuda`` as a module global, where the simulator
expects it.
"""

from __future__ import annotations

from typing import Any

from numba import cuda

from ...cells import lstm_peephole

__all__ = ["build"]


def build(one: Any, sigmoid: Any, tanh: Any, kernels: Any) -> dict[str, Any]:
    """The peephole LSTM's ``kernels(forward, backward)`` for the dtype of ``one``."""
    device = cuda.jit(device=True)
    step, step_backward = (device(f) for f in lstm_peephole.scalar_step(sigmoid, tanh))

    @cuda.jit
    def forward(t, lengths, gx, gh, b_x, b_h, h0, c0, y, kept, p):  # type: ignore
        k = cuda.grid(1)
        n, hidden = h0.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        f_, g_, o_ = hidden + j, 2 * hidden + j, 3 * hidden + j  # the columns of gates f, g, o
        h_prev = h0[b, j] if t == 0 else y[t - 1, b, j]
        c_prev = c0[b, j] if t == 0 else kept[t - 1, 5, b, j]
        i, f, g, o, tanh_c, h, c = step(
            one,
            gx[t, b, j] + b_x[j],
            gx[t, b, f_] + b_x[f_],
            gx[t, b, g_] + b_x[g_],
            gx[t, b, o_] + b_x[o_],
            gh[b, j] + b_h[j],
            gh[b, f_] + b_h[f_],
            gh[b, g_] + b_h[g_],
            gh[b, o_] + b_h[o_],
            p[j],
            p[f_],
            p[g_],  # p is (3H,): input, forget, output
            c_prev,
        )
        kept[t, 0, b, j] = i
        kept[t, 1, b, j] = f
        kept[t, 2, b, j] = g
        kept[t, 3, b, j] = o
        kept[t, 4, b, j] = tanh_c
        inside = t < lengths[b]
        y[t, b, j] = h if inside else h_prev
        kept[t, 5, b, j] = c if inside else c_prev

    @cuda.jit
    def backward(t, lengths, has_dy, dy, ds, mm, carry, y, kept, first, dgx, dgh, p):  # type: ignore
        k = cuda.grid(1)
        n, hidden = ds.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        dh = ds[b, j] if t + 1 >= lengths[b] else mm[b, j]
        if has_dy:
            dh = dh + dy[t, b, j]
        ds[b, j] = dh
        dc = carry[b, j]
        c_prev = first[b, j] if t == 0 else kept[t - 1, 5, b, j]
        dz_i, dz_f, dz_g, dz_o, dc_prev = step_backward(
            one, dh, dc, kept[t, 0, b, j], kept[t, 1, b, j], kept[t, 2, b, j], kept[t, 3, b, j],
            kept[t, 4, b, j], c_prev, p[j], p[hidden + j], p[2 * hidden + j],
        )  # fmt: skip
        if t >= lengths[b]:  # past the sequence: no gate gradient, dc carried through
            zero = one - one
            dz_i, dz_f, dz_g, dz_o, dc_prev = zero, zero, zero, zero, dc
        dgx[t, b, j] = dz_i
        dgx[t, b, hidden + j] = dz_f
        dgx[t, b, 2 * hidden + j] = dz_g
        dgx[t, b, 3 * hidden + j] = dz_o
        carry[b, j] = dc_prev

    return {"lstm_peephole": kernels(forward, backward)}
