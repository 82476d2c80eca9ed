"""One record per cell: its kernels, its compiled loops, and how its step caches are laid out.

:data:`KERNELS` maps a cell's name (:mod:`xrnn.cells`) to a :class:`CellKernels`;
everything in :mod:`.ops` is written once over these records, with no branch on a
cell's name. A step keeps ``h`` in ``y[t]`` and its ``K`` other arrays in
``kept[t]`` (the layout of :mod:`.loops`); :class:`SequenceSteps` shows those buffers
as the list of the cell's own step caches, so the generic backward reads them
unchanged, and :func:`buffers` lays out any list of step caches in the buffers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._util.typing import Array
from ..layout import LAYOUTS, Layout, Steps
from . import diagonal, kernels, late, loops, vectors, zoned
from .buffers import RECYCLER
from .buffers import contiguous as _c

__all__ = ["KERNELS", "CellKernels", "SequenceSteps", "buffers"]


@dataclass(frozen=True)
class CellKernels:
    """How the Numba backend runs one cell.

    Attributes
    ----------
    layout : Layout
        How its steps keep their caches in ``y`` and ``kept`` (shared with the CUDA
        kernels: :mod:`xrnn.backends.layout`).
    sequence : callable
        The compiled forward loop, ``(gemm, lengths, gx, w_hh_t, b_x, b_h, state0, y,
        kept, gh) -> None``.
    sequence_backward : callable
        The compiled backward loop, ``(gemm, lengths, dy, d, y, kept, first, w_hh, dg)
        -> dstate0``; ``d`` (copies of the final-state gradients) is overwritten, ``dg``
        is ``(grads, T, N, G*H)``.
    step : callable
        One forward step's kernel, ``(gx_t, gh, b_x, b_h, state, h, kept_t) -> None``.
    step_backward : callable
        One backward step's kernel, ``(dstate, cache_t, dg_t) -> direct``: writes
        ``dg_t (grads, N, G*H)`` and returns the gradients of the previous state by paths
        other than ``W_hh`` (as ``Cell.step_backward`` does).
    projected_sequence : callable or None
        The compiled forward loop with a projection ``W_hr (P, H)`` (the LSTM's
        ``proj_size``), ``(gemm, lengths, gx, w_hh_t, b_x, state0, w_hr_t, y, kept, gh,
        h_cell) -> None`` with ``y (T, N, P)``; None for cells without projections.
    projected_sequence_backward : callable or None
        Its backward, ``(gemm, lengths, dy, d, kept, first, w_hh, w_hr, dg) -> dstate0``.
    zoned_sequence : callable or None
        The forward loop with zoneout: :attr:`sequence`'s arguments, then the masks, one
        ``(T, N, H)`` array per state part (:mod:`.zoned`); None where zoneout runs generic.
    zoned_sequence_backward : callable or None
        Its backward: :attr:`sequence_backward`'s arguments, then the masks.
    """

    layout: Layout
    sequence: Callable[..., None]
    sequence_backward: Callable[..., tuple[Array, ...]]
    step: Callable[..., None]
    step_backward: Callable[..., tuple[Array | None, ...]]
    projected_sequence: Callable[..., None] | None = None
    projected_sequence_backward: Callable[..., tuple[Array, ...]] | None = None
    zoned_sequence: Callable[..., None] | None = None
    zoned_sequence_backward: Callable[..., tuple[Array, ...]] | None = None


def _rnn(relu: bool) -> CellKernels:
    forward, backward = (
        (kernels.rnn_relu_forward, kernels.rnn_relu_backward)
        if relu
        else (kernels.rnn_tanh_forward, kernels.rnn_tanh_backward)
    )

    def sequence(gemm, lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh):
        loops.rnn_sequence(gemm, relu, lengths, gx, w_hh_t, b_x, b_h, state0[0], y, gh)

    def sequence_backward(gemm, lengths, dy, d, y, kept, first, w_hh, dg):
        return (loops.rnn_sequence_backward(gemm, relu, lengths, dy, d[0], y, w_hh, dg[0]),)

    def step(gx, gh, b_x, b_h, state, h, kept_t):
        forward(gx, gh, b_x, b_h, h)

    def step_backward(dstate, h, dg_t):
        backward(_c(dstate[0]), _c(h), dg_t[0])
        return (None,)

    layout = LAYOUTS["rnn_relu" if relu else "rnn_tanh"]
    return CellKernels(layout, sequence, sequence_backward, step, step_backward)


def _lstm_sequence(gemm, lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh):
    # b_h is zero: the LSTM folds b_hh into b_x (Cell.fold_bias), and its kernel takes one bias
    loops.lstm_sequence(gemm, lengths, gx, w_hh_t, b_x, state0[0], state0[1], y, kept, gh)


def _lstm_sequence_backward(gemm, lengths, dy, d, y, kept, first, w_hh, dg):
    return loops.lstm_sequence_backward(gemm, lengths, dy, d[0], d[1], kept, first, w_hh, dg[0])


def _lstm_step(gx, gh, b_x, b_h, state, h, kept_t):
    kernels.lstm_forward(gx, gh, b_x, _c(state[1]), h, kept_t)


def _lstm_step_backward(dstate, cache, dg_t):
    dh, dc_next = dstate
    dc_prev = np.empty_like(dh)
    i, f, g, o, tanh_c, c_prev = (_c(a) for a in cache)
    kernels.lstm_backward(_c(dh), _c(dc_next), i, f, g, o, tanh_c, c_prev, dg_t[0], dc_prev)
    return (None, dc_prev)


def _lstm_projected_sequence(gemm, lengths, gx, w_hh_t, b_x, state0, w_hr_t, y, kept, gh, h_cell):
    h0, c0 = state0
    loops.lstm_projected_sequence(gemm, lengths, gx, w_hh_t, b_x, h0, c0, w_hr_t, y, kept, gh, h_cell)


def _lstm_projected_sequence_backward(gemm, lengths, dy, d, kept, first, w_hh, w_hr, dg):
    return loops.lstm_projected_sequence_backward(
        gemm, lengths, dy, d[0], d[1], kept, first, w_hh, w_hr, dg[0]
    )


def _lstm_zoned(gemm, lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh, masks):
    zoned.lstm_sequence(gemm, lengths, gx, w_hh_t, b_x, state0[0], state0[1], y, kept, gh, *masks)


def _lstm_zoned_backward(gemm, lengths, dy, d, y, kept, first, w_hh, dg, masks):
    return zoned.lstm_sequence_backward(gemm, lengths, dy, d[0], d[1], kept, first, w_hh, dg[0], *masks)


def _gru_zoned(gemm, lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh, masks):
    zoned.gru_sequence(gemm, lengths, gx, w_hh_t, b_x, b_h, state0[0], y, kept, gh, *masks)


def _gru_zoned_backward(gemm, lengths, dy, d, y, kept, first, w_hh, dg, masks):
    return (zoned.gru_sequence_backward(gemm, lengths, dy, d[0], kept, first, y, w_hh, dg[0], dg[1], *masks),)


def _gru_sequence(gemm, lengths, gx, w_hh_t, b_x, b_h, state0, y, kept, gh):
    loops.gru_sequence(gemm, lengths, gx, w_hh_t, b_x, b_h, state0[0], y, kept, gh)


def _gru_sequence_backward(gemm, lengths, dy, d, y, kept, first, w_hh, dg):
    return (loops.gru_sequence_backward(gemm, lengths, dy, d[0], kept, first, y, w_hh, dg[0], dg[1]),)


def _gru_step(gx, gh, b_x, b_h, state, h, kept_t):
    kernels.gru_forward(gx, gh, b_x, b_h, _c(state[0]), h, kept_t)


def _gru_step_backward(dstate, cache, dg_t):
    direct = np.empty_like(dstate[0])
    r, z, n, gh_n, h_prev = cache
    kernels.gru_backward(_c(dstate[0]), _c(r), _c(z), _c(n), _c(gh_n), _c(h_prev), dg_t[0], dg_t[1], direct)
    return (direct,)


def _indrnn(relu: bool) -> CellKernels:
    """IndRNN's loops (:mod:`.diagonal`) under the table's signatures: no ``gemm``, ``w_hh`` is ``u (H,)``."""

    def sequence(gemm, lengths, gx, u, b_x, b_h, state0, y, kept, gh):
        diagonal.loop(relu, lengths, gx, b_x + b_h, u, state0[0], y)

    def sequence_backward(gemm, lengths, dy, d, y, kept, first, u, dg):
        return (diagonal.loop_backward(relu, lengths, dy, d[0], y, u, dg[0]),)

    layout = LAYOUTS["indrnn_relu" if relu else "indrnn_tanh"]
    return CellKernels(layout, sequence, sequence_backward, late.no_step, late.no_step)


#: The cells the backend has kernels for, by name; any other cell runs the generic loop.
KERNELS: dict[str, CellKernels] = {
    "rnn_tanh": _rnn(relu=False),
    "rnn_relu": _rnn(relu=True),
    "lstm": CellKernels(
        LAYOUTS["lstm"],
        _lstm_sequence,
        _lstm_sequence_backward,
        _lstm_step,
        _lstm_step_backward,
        _lstm_projected_sequence,
        _lstm_projected_sequence_backward,
        _lstm_zoned,
        _lstm_zoned_backward,
    ),
    "gru": CellKernels(
        LAYOUTS["gru"],
        _gru_sequence,
        _gru_sequence_backward,
        _gru_step,
        _gru_step_backward,
        zoned_sequence=_gru_zoned,
        zoned_sequence_backward=_gru_zoned_backward,
    ),
    "gru_reset_before": CellKernels(
        late.LAYOUT,
        late.gru_reset_before_sequence,
        late.gru_reset_before_sequence_backward,
        late.no_step,
        late.no_step,
    ),
    "lstm_peephole": CellKernels(
        vectors.LAYOUT,
        vectors.peephole_sequence,
        vectors.peephole_sequence_backward,
        late.no_step,
        late.no_step,
    ),
    "indrnn_tanh": _indrnn(relu=False),
    "indrnn_relu": _indrnn(relu=True),
}


class SequenceSteps(Steps):
    """The step caches of a Numba forward loop (see :class:`~xrnn.backends.layout.Steps`).

    ``first`` is the state before step 0 that the caches refer to: ``c0`` or ``h0``.
    """


def buffers(kernels: CellKernels, steps: Sequence[Any]) -> tuple[Array, Array, Array]:
    """``(y, kept, first)`` of :class:`SequenceSteps` for any list of the cell's step caches.

    A Numba forward's steps give their own buffers; other caches (the generic path's, the
    classic API's) are copied into buffers of that layout: the state before step ``t``
    (the last field of its cache) goes to ``kept[t - 1, c_slot]`` or to ``y[t - 1]``.
    """
    layout = kernels.layout
    if isinstance(steps, SequenceSteps) and steps.layout is layout:
        return steps.y, steps.kept, steps.first
    if layout.kept == 0:  # the RNN: a step's cache is its h
        first = _c(steps[0])
        return np.stack([_c(h) for h in steps]), np.empty((len(steps), 0, *first.shape), first.dtype), first
    t_steps, first = len(steps), _c(steps[0][-1])
    n, hidden = first.shape
    kept = RECYCLER.empty((t_steps, layout.kept, n, hidden), first.dtype)
    # with the second state in kept, backward reads no y: a view of kept stands in for its shape
    c_slot = layout.c_slot
    y = kept[:, 0] if c_slot is not None else RECYCLER.empty((t_steps, n, hidden), first.dtype)
    for t, step in enumerate(steps):
        kept[t, : len(step) - 1] = step[:-1]
        if t > 0:
            (kept[t - 1, c_slot] if c_slot is not None else y[t - 1])[...] = step[-1]
    return y, kept, first
