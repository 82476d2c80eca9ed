"""IndRNN's whole sequence as one compiled loop: no matmul, no per-step call (``Cell.diagonal``).

A diagonal cell's recurrence is elementwise, ``h_t = act(gx_t + b + u * h_{t-1})``, so
after the hoisted input projection the loop over ``T`` steps is one compiled function,
each way: the cost of one pass over ``gx`` and ``y``. The step is the cell's scalar step
(:data:`xrnn.cells.SCALAR_STEPS`, the RNN's), inlined; the loop forms ``u * h_prev``
and, backward, ``dh_prev = dz * u``. The step caches have the RNN's layout (a step keeps
its ``h``, in ``y[t]``), so the generic backward reads them and this backward reads the
generic forward's.

Variable lengths: a row past its length keeps its state (forward) and carries its
gradient through (backward) with zero gate gradients, as the generic loop's mask does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..._util.typing import Array, State
from ..._util.validation import check_shape
from ...cells import SCALAR_STEPS, Cell
from .activations import sigmoid as _sigmoid
from .activations import tanh as _tanh
from .buffers import RECYCLER, contiguous, int64_lengths
from .compile import inline, jit

__all__ = ["backward", "forward", "loop", "loop_backward"]

_tanh_step, _tanh_back = (inline(f) for f in SCALAR_STEPS["indrnn_tanh"](_sigmoid, _tanh))
_relu_step, _relu_back = (inline(f) for f in SCALAR_STEPS["indrnn_relu"](_sigmoid, _tanh))


@jit
def loop(relu: bool, lengths: Array, gx: Array, bias: Array, u: Array, h0: Array, y: Array) -> None:
    """``y (T, N, H)`` from ``gx (T, N, H)``, ``bias (H,)``, ``u (H,)`` and ``h0 (N, H)``."""
    t_steps, n, hidden = gx.shape
    one = y.dtype.type(1)
    for t in range(t_steps):
        for b in range(n):
            prev = h0[b] if t == 0 else y[t - 1, b]
            out = y[t, b]
            if lengths.shape[0] != 0 and t >= lengths[b]:  # past the sequence: the state is kept
                out[:] = prev
            elif relu:
                x = gx[t, b]
                for j in range(hidden):
                    out[j] = _relu_step(one, x[j] + bias[j], u[j] * prev[j])
            else:
                x = gx[t, b]
                for j in range(hidden):
                    out[j] = _tanh_step(one, x[j] + bias[j], u[j] * prev[j])


@jit
def loop_backward(relu: bool, lengths: Array, dy: Array, d: Array, y: Array, u: Array, dz: Array) -> Array:
    """``dz (T, N, H)``; ``d (N, H)``: the final state's gradient in, the initial state's out."""
    t_steps, n, hidden = y.shape
    one = y.dtype.type(1)
    for t in range(t_steps - 1, -1, -1):
        for b in range(n):
            d_b, dz_b, h_b = d[b], dz[t, b], y[t, b]
            if dy.shape[0] != 0:
                dy_b = dy[t, b]
                for j in range(hidden):
                    d_b[j] += dy_b[j]
            if lengths.shape[0] != 0 and t >= lengths[b]:  # past the sequence: carried, no gate gradient
                dz_b[:] = 0
            elif relu:
                for j in range(hidden):
                    g = _relu_back(one, d_b[j], h_b[j])
                    dz_b[j] = g
                    d_b[j] = g * u[j]
            else:
                for j in range(hidden):
                    g = _tanh_back(one, d_b[j], h_b[j])
                    dz_b[j] = g
                    d_b[j] = g * u[j]
    return d


def forward(cell: Cell, gx: Array, u: Array, biases: Any, state0: State, lengths: Array | None) -> Any:
    """A diagonal cell's forward (see :meth:`xrnn.engine.ops.Ops.forward`): ``y``, final state, ``y``.

    ``u (H,)`` is the recurrent vector; the steps are ``y`` itself (the RNN's layout).
    """
    t_steps, n, hidden = gx.shape
    dtype = gx.dtype
    fits = f"for hidden size {hidden}"  # the loop reads and writes without bounds checks
    check_shape("W_hh", u, (hidden,), f"{fits} (a diagonal cell's vector)")
    for name, b in zip(("b_x", "b_h"), biases):
        if b is not None:
            check_shape(name, b, (hidden,), fits)
    check_shape("state[0]", state0[0], (n, hidden), fits)
    bias = np.zeros(hidden, dtype)
    for b in biases:
        bias = bias if b is None else bias + b
    y = RECYCLER.empty((t_steps, n, hidden), dtype)
    relu = cell.name.endswith("relu")
    loop(relu, int64_lengths(lengths), contiguous(gx), bias, contiguous(u), contiguous(state0[0]), y)
    return y, (y[-1],), y


def backward(
    cell: Cell, steps: Sequence[Any], dy: Array | None, dstate: State, u: Array, lengths: Array | None
) -> tuple[Array, None, State]:
    """A diagonal cell's backward (see :meth:`xrnn.engine.ops.Ops.backward`): ``dgx``, None, ``dh0``."""
    n, hidden = dstate[0].shape
    t_steps, dtype = len(steps), dstate[0].dtype
    fits = f"for hidden size {hidden}"
    check_shape("W_hh", u, (hidden,), f"{fits} (a diagonal cell's vector)")
    y = steps if isinstance(steps, np.ndarray) else np.stack([contiguous(h) for h in steps])
    check_shape("steps (h)", y, (t_steps, n, hidden), fits)
    if dy is not None:
        check_shape("dy", dy, (t_steps, n, hidden), fits)
    dy = np.empty((0, n, hidden), dtype) if dy is None else contiguous(dy)
    d = np.array(dstate[0], dtype=dtype, order="C")  # a copy: the loop writes it
    dz = RECYCLER.empty((t_steps, n, hidden), dtype)
    relu = cell.name.endswith("relu")
    d = loop_backward(relu, int64_lengths(lengths), dy, d, contiguous(y), contiguous(u), dz)
    return dz, None, (d,)
