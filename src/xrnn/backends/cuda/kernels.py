"""One CUDA kernel per cell and direction, compiled from the cells' scalar maths.

:func:`build` compiles, for one dtype, each cell's :class:`~xrnn.cells.ScalarStep` as
CUDA device functions (on this target's ``sigmoid`` and ``tanh``: ``math.exp`` and
``math.tanh``, the CUDA maths library) and the kernels that call them. A kernel runs
one step for the whole batch, one thread per element ``(b, j)`` of the ``(N, H)`` step:
thread ``k`` of the 1-d grid takes ``b = k // H`` and ``j = k % H``, so consecutive
threads read consecutive hidden units of a row (coalesced), and gate ``q`` of that
element sits at column ``q*H + j`` of the ``(N, G*H)`` pre-activations.

This module imports numba-cuda (``numba.cuda``, the simulator under
``NUMBA_ENABLE_CUDASIM=1``): :class:`~.ops.CudaOps` imports it on its first sequence. The
kernels name ``cuda`` as a module global, where the simulator expects it.

Buffers (the layout of :mod:`.layout`): ``y (T, N, H)`` receives each step's ``h``,
``kept (T, K, N, H)`` what backward needs (the LSTM's ``i, f, g, o, tanh(c), c``, the
GRU's ``r, z, n, gh_n``; the RNN keeps only ``h``: its ``kept`` is any 4-d array, never
read). Kernels take whole sequence buffers and the step ``t``, so each array is handed
to numba-cuda once per sequence, not once per step.

Forward kernel, step ``t``: ``(t, lengths, gx (T, N, GH), gh (N, GH), b_x (GH,), b_h
(GH,), h0 (N, H), c0 (N, H), y, kept)``. ``gh = h_prev @ W_hh^T`` comes from the step's
matmul; ``h_prev`` is ``h0`` at ``t = 0``, else ``y[t - 1]``. A row at or past its length
(``t >= lengths[b]``) keeps its state: ``h`` and ``c`` are the previous ones.

Backward kernel, step ``t`` (last to first): ``(t, lengths, has_dy, dy (T, N, H), ds
(N, H), mm (N, H), carry (N, H), y, kept, first (N, H), dgx (T, N, GH), dgh (T, N, GH))``.
The gradient reaching ``h_t`` is ``mm`` (the previous step's ``dg @ W_hh``, plus
``carry``, the GRU's direct ``dh * z``) where step ``t + 1`` was inside the row's
sequence, else ``ds``, the gradient carried past it unchanged; plus ``dy[t]``. Each
thread reads its element of ``ds`` and ``carry`` and writes the new ones in place (no
other thread touches them). The LSTM's ``carry`` is ``dc``; ``first`` is the state
before step 0 that the caches refer to (``c0``, or ``h0`` for the GRU). Rows past their
length get zero gate gradients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from numba import cuda

from ...cells import SCALAR_STEPS
from . import diagonal_kernels, late_kernels, vector_kernels, zoned_kernels

__all__ = ["Kernels", "build"]


@dataclass(frozen=True)
class Kernels:
    """The forward and backward kernels of one cell and dtype."""

    forward: Any
    backward: Any


def build(one: Any) -> dict[str, Any]:
    """Each cell's kernels for the dtype of ``one``, by cell name (compiled on first launch).

    Parameters
    ----------
    one : scalar
        1 in the dtype of the arrays (``numpy.float32(1)``): the kernels' arithmetic stays
        in that dtype.

    Returns
    -------
    dict of str to Kernels
        (a :class:`.late_kernels.LateKernels` for a cell with a late matmul).
    """
    device = cuda.jit(device=True)

    @device
    def sigmoid(z: Any) -> Any:  # exp only ever sees -|z| <= 0: no overflow for any finite z
        e = math.exp(-abs(z))
        q = one / (one + e)
        return q if z >= 0 else e * q

    @device
    def tanh(x: Any) -> Any:
        return math.tanh(x)

    steps = {name: [device(f) for f in make(sigmoid, tanh)] for name, make in SCALAR_STEPS.items()}
    return {
        "rnn_tanh": _rnn(one, *steps["rnn_tanh"]),
        "rnn_relu": _rnn(one, *steps["rnn_relu"]),
        "lstm": _lstm(one, *steps["lstm"]),
        "gru": _gru(one, *steps["gru"]),
        **late_kernels.build(one, sigmoid, tanh),
        **vector_kernels.build(one, sigmoid, tanh, Kernels),
        **diagonal_kernels.build(one, steps, Kernels),
        **zoned_kernels.build(one, steps, Kernels),
    }


def _rnn(one: Any, step: Any, step_backward: Any) -> Kernels:
    @cuda.jit
    def forward(t, lengths, gx, gh, b_x, b_h, h0, c0, y, kept):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        n, hidden = h0.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        h_prev = h0[b, j] if t == 0 else y[t - 1, b, j]
        h = step(one, gx[t, b, j] + b_x[j], gh[b, j] + b_h[j])
        y[t, b, j] = h if t < lengths[b] else h_prev

    @cuda.jit
    def backward(t, lengths, has_dy, dy, ds, mm, carry, y, kept, first, dgx, dgh):  # type: ignore[no-untyped-def]
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
        dz = step_backward(one, dh, y[t, b, j])
        dgx[t, b, j] = dz if t < lengths[b] else one - one

    return Kernels(forward, backward)


def _lstm(one: Any, step: Any, step_backward: Any) -> Kernels:
    @cuda.jit
    def forward(t, lengths, gx, gh, b_x, b_h, h0, c0, y, kept):  # type: ignore[no-untyped-def]
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
    def backward(t, lengths, has_dy, dy, ds, mm, carry, y, kept, first, dgx, dgh):  # type: ignore[no-untyped-def]
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
            kept[t, 4, b, j], c_prev,
        )  # fmt: skip
        if t >= lengths[b]:  # past the sequence: no gate gradient, dc carried through
            zero = one - one
            dz_i, dz_f, dz_g, dz_o, dc_prev = zero, zero, zero, zero, dc
        dgx[t, b, j] = dz_i
        dgx[t, b, hidden + j] = dz_f
        dgx[t, b, 2 * hidden + j] = dz_g
        dgx[t, b, 3 * hidden + j] = dz_o
        carry[b, j] = dc_prev

    return Kernels(forward, backward)


def _gru(one: Any, step: Any, step_backward: Any) -> Kernels:
    @cuda.jit
    def forward(t, lengths, gx, gh, b_x, b_h, h0, c0, y, kept):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        n, hidden = h0.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        z_, n_ = hidden + j, 2 * hidden + j  # the columns of gates z, n
        h_prev = h0[b, j] if t == 0 else y[t - 1, b, j]
        gh_n = gh[b, n_] + b_h[n_]
        r, z, new, h = step(
            one,
            gx[t, b, j] + b_x[j],
            gx[t, b, z_] + b_x[z_],
            gx[t, b, n_] + b_x[n_],
            gh[b, j] + b_h[j],
            gh[b, z_] + b_h[z_],
            gh_n,
            h_prev,
        )
        kept[t, 0, b, j] = r
        kept[t, 1, b, j] = z
        kept[t, 2, b, j] = new
        kept[t, 3, b, j] = gh_n
        y[t, b, j] = h if t < lengths[b] else h_prev

    @cuda.jit
    def backward(t, lengths, has_dy, dy, ds, mm, carry, y, kept, first, dgx, dgh):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        n, hidden = ds.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        dh = ds[b, j] if t + 1 >= lengths[b] else mm[b, j] + carry[b, j]
        if has_dy:
            dh = dh + dy[t, b, j]
        ds[b, j] = dh
        h_prev = first[b, j] if t == 0 else y[t - 1, b, j]
        dr, dz, dn, dn_r, direct = step_backward(
            one, dh, kept[t, 0, b, j], kept[t, 1, b, j], kept[t, 2, b, j], kept[t, 3, b, j], h_prev
        )
        if t >= lengths[b]:  # past the sequence: no gate gradient (dh is carried by ds)
            zero = one - one
            dr, dz, dn, dn_r, direct = zero, zero, zero, zero, zero
        dgx[t, b, j] = dr
        dgx[t, b, hidden + j] = dz
        dgx[t, b, 2 * hidden + j] = dn
        dgh[t, b, j] = dr
        dgh[t, b, hidden + j] = dz
        dgh[t, b, 2 * hidden + j] = dn_r
        carry[b, j] = direct

    return Kernels(forward, backward)
