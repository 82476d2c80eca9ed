"""The CUDA loops of the diagonal cells (IndRNN): one kernel launch each way (:mod:`.diagonal_kernels`).

The steps are ``y`` itself, the RNN's layout (a step keeps its ``h``), so the generic
backward reads them and this backward reads the generic forward's (stacked).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..._util.typing import Array, State
from ..._util.validation import check_shape
from .layout import CudaSteps, Layout, buffers

__all__ = ["backward", "forward"]


def forward(
    ops: Any, layout: Layout, kernels: Any, gx: Array, u: Array, biases: Any, state0: State, lens: Array
) -> tuple[Array, State, Sequence[Any]]:
    """``y``, the final state and the steps; ``ops`` is the :class:`~.ops.CudaOps`."""
    xp, launch = ops.xp, ops._launcher
    t_steps, n, hidden = gx.shape
    fits = f"for hidden size {hidden}"  # the kernels index without bounds checks
    check_shape("W_hh", u, (hidden,), f"{fits} (a diagonal cell's vector)")
    bias = xp.zeros_like(u)
    for name, b in zip(("b_x", "b_h"), biases):
        if b is not None:
            check_shape(name, b, (hidden,), fits)
            bias = bias + b
    check_shape("state[0]", state0[0], (n, hidden), fits)
    y = xp.empty_like(gx)
    with launch.on(gx) as stream:
        a = launch.array
        launch.configure(kernels.forward, n * hidden, stream)(
            a(lens), a(gx), a(bias), a(u), a(state0[0]), a(y)
        )
    return y, (y[-1, ...],), CudaSteps(layout, y, y[:, None, ...], state0[0])


def backward(
    ops: Any,
    layout: Layout,
    kernels: Any,
    steps: Sequence[Any],
    dy: Array | None,
    dstate: State,
    u: Array,
    lens: Array,
) -> tuple[Array, None, State]:
    """``dgx``, None (``dgh`` is ``dgx``) and the initial state's gradient."""
    xp, launch = ops.xp, ops._launcher
    n, hidden = dstate[0].shape
    t_steps = len(steps)
    fits = f"for hidden size {hidden}"
    check_shape("W_hh", u, (hidden,), f"{fits} (a diagonal cell's vector)")
    y, _, _ = buffers(layout, steps, xp=xp)
    check_shape("steps (h)", y, (t_steps, n, hidden), fits)
    if dy is not None:
        check_shape("dy", dy, (t_steps, n, hidden), fits)
    d = xp.asarray(dstate[0], copy=True)  # the kernel writes it
    dgx = xp.empty_like(y)
    with launch.on(d) as stream:
        a = launch.array
        dy_3d = dy if dy is not None else d[None, ...]  # never read without dy
        args = (a(lens), dy is not None, a(dy_3d), a(d), a(y), a(u), a(dgx))
        launch.configure(kernels.backward, n * hidden, stream)(*args)
    return dgx, None, (d,)
