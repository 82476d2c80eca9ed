"""The gradient of the LSTM's projection ``W_hr`` (``proj_size``), from the gate gradients of one loop."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from array_api_compat import device

from .._util.typing import Array
from ..cells import Cell

__all__ = ["projection_gradient"]


def projection_gradient(
    cell: Cell,
    w_hh: Array,
    w_hr: Array,
    dgx: Array,
    dgh: Array | None,
    steps: Sequence[Any],
    dy: Array | None,
    dh_end: Array,
    lengths: Array | None,
    *,
    xp: ModuleType,
) -> Array:
    """``dW_hr (P, H)`` of the steps of one backward loop, from its gate gradients.

    ``h_t = W_hr h_cell_t`` gets the gradient ``dh_t = dy_t + dG_{t+1} W_hh`` (the
    projected ``h`` reaches the next step through ``W_hh`` alone: the LSTM has no
    other path), and the final-state gradient ``dh_end (N, P)`` at each sequence's
    last valid step; gate gradients are zero past each length. So ``dW_hr = sum_t
    dh_t^T h_cell_t`` is one matmul for the recurrence and one for the sum, as the
    other weight gradients. ``cell`` is the loop's cell, ``w_hh`` ``(G*H, P)`` and ``w_hr``
    ``(P, H)`` its weights, ``dgx``, ``dgh`` its gate gradients ``(T, N, G*H)``.
    """
    t_steps, n, _ = dgx.shape
    dg = dgx if dgh is None else dgh  # (T, N, GH)
    proj, hidden = w_hr.shape
    steps_t = xp.arange(t_steps, dtype=xp.int64, device=device(dgx))[:, None]  # (T, 1)
    last = steps_t == t_steps - 1 if lengths is None else steps_t == lengths[None, :] - 1  # (T, N)
    dh = xp.where(last[:, :, None], dh_end[None, ...], xp.zeros_like(dh_end)[None, ...])  # (T, N, P)
    if t_steps > 1:
        dg_next = xp.reshape(dg[1:, ...], ((t_steps - 1) * n, dg.shape[2]))
        recurrent = xp.reshape(dg_next @ w_hh, (t_steps - 1, n, proj))
        dh = dh + xp.concat([recurrent, xp.zeros_like(dh[:1, ...])], axis=0)
    if dy is not None:
        dh = dh + dy
    output = cell.output
    if output is None:
        raise TypeError(f"the {cell.name} cell takes no projection (it has no output function)")
    h_cell = xp.stack([output(s, xp=xp) for s in steps])  # (T, N, H)
    return xp.matrix_transpose(xp.reshape(dh, (t_steps * n, proj))) @ xp.reshape(
        h_cell, (t_steps * n, hidden)
    )
