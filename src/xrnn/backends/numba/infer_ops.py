""":meth:`NumbaOps.infer <xrnn.backends.numba.NumbaOps.infer>`: a whole sequence on the inference loops.

The cells with inference loops (:mod:`.inference`) are the RNN, the LSTM without a
projection and the GRU; the others (peepholes, projections, the reset-before GRU, defined
cells) run their training loop and drop its step caches, which gives the same results.
The matmul is threaded by BLAS at any size. The pointwise step can run on every thread of
Numba's pool too, from :data:`PARALLEL_ROWS` rows on; it is off by default (None): measured
on the project's shared 2-core machine under load (docs/benchmarks.md), OpenMP's spinning
workers and BLAS's contended for the cores and a forward pass took several times longer,
and no gain was measured where the machine was busy. ``benchmarks/inference.py`` measures
both settings on each run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..._util.typing import Array, State
from ..._util.validation import check_shape
from ...cells import Cell
from . import inference
from .buffers import RECYCLER, contiguous, int64_lengths
from .loops import gemm_address

__all__ = ["PARALLEL_ROWS", "infer"]

#: Batch rows from which the pointwise step of an inference loop runs on several threads
#: (None: never; see the module's docstring).
PARALLEL_ROWS: int | None = None


def _zeros(b: Array | None, like: Array) -> Array:
    """A bias, or zeros in its place (``like`` gives the width and dtype)."""
    return np.zeros(like.shape[-1], like.dtype) if b is None else b


def _rnn(relu: bool) -> Callable[..., State]:
    def run(gemm: int, parallel: bool, lengths: Array, gx: Array, w_hh_t: Array, b: Any, s0: State, y: Array):
        gh = np.empty(gx.shape[1:], gx.dtype)
        b_x, b_h = _zeros(b[0], gx), _zeros(b[1], gx)
        inference.rnn_infer(gemm, parallel, relu, lengths, gx, w_hh_t, b_x, b_h, s0[0], y, gh)
        return (y[-1],)

    return run


def _lstm(gemm: int, parallel: bool, lengths: Array, gx: Array, w_hh_t: Array, b: Any, s0: State, y: Array):
    # the kernel takes one bias: b_hh is folded into b_ih (as the training loop does)
    bias = _zeros(b[0], gx) if b[1] is None else (b[1] if b[0] is None else b[0] + b[1])
    cs = np.empty((2, *s0[1].shape), gx.dtype)
    gh = np.empty(gx.shape[1:], gx.dtype)
    inference.lstm_infer(gemm, parallel, lengths, gx, w_hh_t, bias, s0[0], s0[1], y, cs, gh)
    return y[-1], cs[(gx.shape[0] - 1) % 2]


def _gru(gemm: int, parallel: bool, lengths: Array, gx: Array, w_hh_t: Array, b: Any, s0: State, y: Array):
    gh = np.empty(gx.shape[1:], gx.dtype)
    inference.gru_infer(gemm, parallel, lengths, gx, w_hh_t, _zeros(b[0], gx), _zeros(b[1], gx), s0[0], y, gh)
    return (y[-1],)


#: The inference loop of each cell that has one, by the cell's name.
LOOPS: dict[str, Callable[..., State]] = {
    "rnn_tanh": _rnn(relu=False),
    "rnn_relu": _rnn(relu=True),
    "lstm": _lstm,
    "gru": _gru,
}


def infer(
    cell: Cell,
    gx: Array,
    w_hh_t: Array,
    biases: tuple[Array | None, Array | None],
    state0: State,
    lengths: Array | None,
) -> tuple[Array, State] | None:
    """Run ``cell``'s inference loop (shapes as :meth:`xrnn.engine.ops.Ops.forward`), or None.

    Parameters
    ----------
    cell : Cell
        The cell.
    gx : array, shape (T, N, G*H)
        Input pre-activations without bias, float32 or float64.
    w_hh_t : array, shape (H, G*H)
        ``W_hh`` transposed.
    biases : tuple (b_x, b_h) of arrays (G*H,) or None
        The biases of ``gx`` and of ``h @ W_hh^T``.
    state0 : tuple of arrays, each (N, H)
        Initial state, ``h`` first.
    lengths : integer array, shape (N,), or None
        Valid steps per sequence.

    Returns
    -------
    (y, state) or None
        ``y (T, N, H)`` and the final state; None for a cell without an inference loop
        (the caller runs its training loop).
    """
    run = LOOPS.get(cell.name)
    if run is None:
        return None
    t_steps, n, width = gx.shape
    hidden, dtype = width // cell.n_gates, gx.dtype
    # the compiled loops read and write without bounds checks: the sizes must agree first
    fits = f"for hidden size {hidden}"
    check_shape("W_hh", w_hh_t, (hidden, width), fits)
    b = tuple(None if v is None else contiguous(v) for v in biases)
    for name, v in zip(("b_x", "b_h"), b):
        if v is not None:
            check_shape(name, v, (width,), fits)
    for j, s in enumerate(state0):
        check_shape(f"state[{j}]", s, (n, hidden), fits)
    shape = (t_steps, n, hidden)
    # fresh memory costs a page fault a page (see .buffers): worth recycling from a megabyte on
    y = (
        RECYCLER.empty(shape, dtype)
        if t_steps * n * hidden * dtype.itemsize >= 2**20
        else np.empty(shape, dtype)
    )
    parallel = PARALLEL_ROWS is not None and n >= PARALLEL_ROWS and inference.parallel_available()
    state = run(
        gemm_address(dtype),
        parallel,
        int64_lengths(lengths),
        contiguous(gx),
        contiguous(w_hh_t),
        b,
        tuple(contiguous(s) for s in state0),
        y,
    )
    return y, state
