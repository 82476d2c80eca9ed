"""The CUDA kernels of the diagonal cells (``Cell.diagonal``, IndRNN): the whole sequence in one launch.

A diagonal cell's unit ``(b, j)`` reads only its own ``h`` of the step before, so one
thread carries it through all ``T`` steps: one launch forward and one backward per
sequence, no matmul and no per-step launch. Thread ``k`` takes ``b = k // H``, ``j = k % H``
(consecutive threads read consecutive units: coalesced), as :mod:`.kernels`. The step is
the cell's scalar step (the RNN's); the kernel forms ``u * h_prev`` and ``dz * u``.

Forward ``(lengths, gx (T, N, H), bias (H,), u (H,), h0 (N, H), y (T, N, H))``; a row past
its length keeps its state. Backward ``(lengths, has_dy, dy (T, N, H), d (N, H), y, u,
dgx (T, N, H))``: ``d`` holds the final state's gradient and receives the initial state's;
a row past its length carries its gradient with zero gate gradients. Imported by
:mod:`.kernels` alone; the kernels name ``cuda`` as a module global, where the simulator
expects it.
"""

from __future__ import annotations

from typing import Any

from numba import cuda

__all__ = ["build"]


def _kernels(one: Any, step: Any, step_backward: Any, kernels: Any) -> Any:
    @cuda.jit
    def forward(lengths, gx, bias, u, h0, y):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        t_steps, n, hidden = gx.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        h, u_j, b_j, length = h0[b, j], u[j], bias[j], lengths[b]
        for t in range(t_steps):
            if t < length:
                h = step(one, gx[t, b, j] + b_j, u_j * h)
            y[t, b, j] = h

    @cuda.jit
    def backward(lengths, has_dy, dy, d, y, u, dgx):  # type: ignore[no-untyped-def]
        k = cuda.grid(1)
        t_steps, n, hidden = y.shape
        if k >= n * hidden:
            return
        b = k // hidden
        j = k - b * hidden
        dh, u_j, length = d[b, j], u[j], lengths[b]
        for t in range(t_steps - 1, -1, -1):
            if has_dy:
                dh = dh + dy[t, b, j]
            if t < length:
                dz = step_backward(one, dh, y[t, b, j])
                dgx[t, b, j] = dz
                dh = dz * u_j
            else:
                dgx[t, b, j] = one - one
        d[b, j] = dh

    return kernels(forward, backward)


def build(one: Any, steps: dict[str, Any], kernels: Any) -> dict[str, Any]:
    """IndRNN's ``kernels(forward, backward)`` for the dtype of ``one``, from the compiled ``steps``."""
    return {name: _kernels(one, *steps[name], kernels) for name in ("indrnn_tanh", "indrnn_relu")}
