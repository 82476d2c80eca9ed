"""The time loop for inference: one direction of one layer, nothing kept for backward.

:func:`infer` is :func:`~xrnn.engine.scan.scan` with ``keep=False`` and without its
general machinery: the hoisted projection, then the :class:`~xrnn.engine.ops.Ops`'s
:meth:`~xrnn.engine.ops.Ops.infer` loop (which may write no step cache at all), the same
masking and reversal within lengths. The weights may come prepared
(:func:`~xrnn.engine.prepare.prepare`, once per set of weights, by the caller that can tell
when they change), and the sequence runs in one piece unless its projection would
take more than :data:`SEGMENT_BYTES`: then in segments, the state carried from one to
the next. The results equal those of :func:`~xrnn.engine.scan.scan` (tests/test_inference.py).
"""

from __future__ import annotations

from types import ModuleType

from .._util.typing import Array, State
from ..cells import Cell
from .lengths import from_loop_order, in_segments, to_loop_order
from .ops import Ops
from .prepare import Prepared, prepare
from .scan import Weights

__all__ = ["SEGMENT_BYTES", "infer"]

#: The most memory that the input projection of one segment may take, in bytes.
SEGMENT_BYTES = 64 * 2**20


def infer(
    cell: Cell,
    x: Array,
    state0: State,
    weights: Weights,
    *,
    lengths: Array | None = None,
    reverse: bool = False,
    prepared: Prepared | None = None,
    ops: Ops,
    xp: ModuleType,
) -> tuple[Array, State]:
    """Run ``cell`` over ``x`` from ``state0`` for inference.

    Parameters
    ----------
    cell : Cell
        The cell.
    x : array, shape (T, N, I)
        Input sequence.
    state0 : tuple of arrays, each (N, H)
        Initial state, ``h`` first (``h`` is ``(N, P)`` with a projection ``weights.w_hr``).
    weights : Weights
        Parameters of this direction.
    lengths : integer array, shape (N,), optional
        Valid steps per sequence (1..T); None when all are T.
    reverse : bool
        Run each sequence from its last valid step to its first.
    prepared : Prepared, optional
        ``prepare(cell, weights.w_hh, weights.b_ih, weights.b_hh)``, made before (made here
        when omitted).
    ops : Ops
        What runs the loop over the steps.
    xp : module
        Array namespace.

    Returns
    -------
    y : array, shape (T, N, H)
        Hidden state at each step, zero past each sequence's length.
    state : tuple of arrays, each (N, H)
        Each sequence's state after its last valid step.
    """
    t_steps, n, n_in = x.shape
    x, mask, order = to_loop_order(x, lengths, reverse, xp=xp)
    if prepared is None:
        prepared = prepare(cell, weights.w_hh, weights.b_ih, weights.b_hh, xp=xp)
    given = {} if weights.w_hr is None else {"w_hr": weights.w_hr}
    given = given if weights.vectors is None else {**given, "vectors": weights.vectors}

    def run(x_seg: Array, state: State, valid: Array | None, t0: int = 0) -> tuple[Array, State]:
        gx = ops.project(x_seg, weights.w_ih)  # (T, N, GH)
        return ops.infer(cell, gx, prepared.w_hh_t, prepared.biases, state, valid, **given)

    width = weights.w_ih.shape[0]
    size = max(1, SEGMENT_BYTES // max(1, n * width * (xp.finfo(x.dtype).bits // 8)))
    if size >= t_steps:
        y, state = run(x, tuple(state0), lengths)
    else:
        y, state = in_segments(run, x, state0, lengths, size, join=ops.join, xp=xp)
    return from_loop_order(y, mask, order, reverse, xp=xp), state
