"""The one time loop of xrnn: any cell, forward and backward through time.

Layout is time-major and batch-rows: ``x`` is ``(T, N, I)``, a state is ``(N, H)``, and
a cell with ``G`` gates sees pre-activations of shape ``(N, G*H)``.

Forward (see the architecture page of the documentation)::

    gx = X @ W_ih^T + b            one matmul over all T*N rows, hoisted out of the loop
    for t:  gh = h @ W_hh^T        one recurrent matmul for all gates
            state, cache_t = cell.step(gx[t], gh, state)

Backward::

    for t reversed:  dgx_t, dgh_t, direct = cell.step_backward(dstate, cache_t)
                     dh_prev = dgh_t @ W_hh + direct_h
    dW_ih = dGx^T X,  dW_hh = dGh^T H_prev,  db = sum(dG),  dX = dGx @ W_ih

The loops over ``t`` belong to an :class:`~xrnn.engine.ops.Ops`, given by the caller (the
generic one, or a backend's compiled one, as :func:`xrnn.backends.ops_for` chooses); everything
around them is here, once:
the projection before, the reversal within lengths, the masking of outputs and the weight
gradients after.

Variable lengths: a finished sequence keeps its state and outputs zeros, and what its
input holds past its length (zeros, NaN, anything) reaches no output and no gradient. The reverse
direction reverses each sequence within its own length, runs the same loop, and reverses
back.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import Any, Literal, NamedTuple, overload

from array_api_compat import device

from .._util.typing import Array, State
from ..cells import Cell
from . import recurrence
from .lengths import from_loop_order, in_segments, length_mask, reversed_in_time, to_loop_order, within
from .ops import Ops
from .prepare import prepare
from .projection import projection_gradient
from .zoneout import Masks

__all__ = ["ScanCache", "Weights", "scan", "scan_backward"]


class Weights(NamedTuple):
    """One direction of one layer: ``W_ih (G*H, I)``, ``W_hh (G*H, H)``, biases ``(G*H,)`` or None.

    ``w_hr (P, H)`` is the LSTM's projection (``proj_size = P``), or None; with it the state's
    ``h`` and ``W_hh``'s second axis have size ``P``. ``vectors (V,)`` are the cell's per-unit
    vectors (``Cell.vectors``, concatenated), or None for a cell without any.
    """

    w_ih: Array
    w_hh: Array
    b_ih: Array | None
    b_hh: Array | None
    w_hr: Array | None = None
    vectors: Array | None = None


class ScanCache(NamedTuple):
    """What :func:`scan_backward` needs from :func:`scan`, all in the loop's own time order."""

    x: Array  # (T, N, I) the input the loop saw
    h0: Array  # (N, H)
    y: Array  # (T, N, H) outputs, zero past each length
    steps: Sequence[Any]  # T cell caches, in the layout of the Ops that made them (none if segmented)
    lengths: Array | None  # (N,) integer, or None when every sequence is full length
    order: Array | None  # (T*N,) flat gather index of the within-length reversal
    reverse: bool
    weights: Weights
    segment: int | None = None  # steps per segment when only each segment's first state was kept ...
    checkpoints: Sequence[State] = ()  # ... and those states, one per segment
    zoneout: Masks | None = None  # zoneout masks per state part, in the loop's time order


@overload
def scan(
    cell: Cell,
    x: Array,
    state0: State,
    weights: Weights,
    *,
    lengths: Array | None = None,
    reverse: bool = False,
    segment: int | None = None,
    keep: Literal[True] = True,
    zoneout: Masks | None = None,
    ops: Ops,
    xp: ModuleType,
) -> tuple[Array, State, ScanCache]: ...


@overload
def scan(
    cell: Cell,
    x: Array,
    state0: State,
    weights: Weights,
    *,
    lengths: Array | None = None,
    reverse: bool = False,
    segment: int | None = None,
    keep: bool,
    zoneout: Masks | None = None,
    ops: Ops,
    xp: ModuleType,
) -> tuple[Array, State, ScanCache | None]: ...


def scan(
    cell: Cell,
    x: Array,
    state0: State,
    weights: Weights,
    *,
    lengths: Array | None = None,
    reverse: bool = False,
    segment: int | None = None,
    keep: bool = True,
    zoneout: Masks | None = None,
    ops: Ops,
    xp: ModuleType,
) -> tuple[Array, State, ScanCache | None]:
    """Run ``cell`` over ``x`` from ``state0``.

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
    segment : int, optional
        Run the sequence in segments of this many steps and keep, of each, only the state
        it starts from; :func:`scan_backward` recomputes one segment's step caches at a
        time (memory ``O(T/segment + segment)`` states instead of ``O(T)`` step caches).
    keep : bool, default True
        Keep what backward needs; False runs in segments and keeps nothing (inference).
    zoneout : sequence of arrays (T, N, H) or (T, 1, 1), or None, optional
        Zoneout masks, one per state part, in the loop's time order (the reverse direction's
        first entry is each sequence's last step): :mod:`xrnn.engine.zoneout`.
    ops : Ops
        What runs the loop over the steps (:func:`xrnn.backends.ops_for` chooses one).
    xp : module
        Array namespace.

    Returns
    -------
    y : array, shape (T, N, H)
        Hidden state at each step, zero past each sequence's length.
    state : tuple of arrays, each (N, H)
        Each sequence's state after its last valid step.
    cache : ScanCache or None
        Input to :func:`scan_backward` (None when ``keep`` is False).
    """
    x, mask, order = to_loop_order(x, lengths, reverse, xp=xp)
    loop = _Loop(ops, cell, weights, xp, zoneout)
    checkpoints: list[State] = []
    if segment is None and keep:
        y, state, steps = loop.forward(x, tuple(state0), lengths)
    else:  # segment by segment, keeping at most each segment's first state
        steps = []

        def run(x_seg: Array, state: State, valid: Array | None, t0: int) -> tuple[Array, State]:
            y_seg, state, _ = loop.forward(x_seg, state, valid, t0)
            return y_seg, state

        size = segment if segment is not None else _INFERENCE_SEGMENT
        starts = checkpoints if keep else None
        y, state = in_segments(run, x, state0, lengths, size, join=ops.join, xp=xp, starts=starts)
    if mask is not None:
        y = xp.where(mask, y, xp.zeros_like(y))
    cache = None
    if keep:
        cache = ScanCache(
            x, state0[0], y, steps, lengths, order, reverse, weights, segment, checkpoints, zoneout
        )
    return from_loop_order(y, None, order, reverse, xp=xp), state, cache


def scan_backward(
    cell: Cell,
    cache: ScanCache,
    dy: Array | None,
    dstate: Sequence[Array | None] | None,
    *,
    ops: Ops,
    xp: ModuleType,
    need_dx: bool = True,
) -> tuple[Array | None, State, Weights]:
    """Backpropagate through the loop that produced ``cache``.

    Parameters
    ----------
    cell : Cell
        The cell that ran forward.
    cache : ScanCache
        From :func:`scan`.
    dy : array, shape (T, N, H), or None
        Gradient of the loss with respect to ``y`` (None: zero).
    dstate : sequence of (N, H) arrays or None, or None
        Gradient with respect to the final state (None: zero).
    ops : Ops
        The ``Ops`` that ran the forward pass (it reads its own step caches).
    xp : module
        Array namespace.
    need_dx : bool, default True
        False: skip the gradient with respect to ``x`` (one product), ``dx`` is None.

    Returns
    -------
    dx : array, shape (T, N, I), or None without ``need_dx``
        Gradient with respect to ``x``.
    dstate0 : tuple of arrays, each (N, H)
        Gradient with respect to the initial state.
    grads : Weights
        Gradients of the parameters (None where the parameter is None); ``dW_hr`` from
        :func:`.projection.projection_gradient` after the loop.
    """
    x, h0, y, steps, lengths, order, reverse, w, segment, checkpoints, zoneout = cache
    loop = _Loop(ops, cell, w, xp, zoneout)
    t_steps = x.shape[0]
    # h is (N, P) with a projection, every other state (N, H)
    hidden = w.w_hh.shape[0] // cell.n_gates
    zeros = (xp.zeros_like(h0),) + (xp.zeros((h0.shape[0], hidden), dtype=h0.dtype, device=device(h0)),) * (
        cell.n_states - 1
    )
    d = zeros if dstate is None else tuple(z if a is None else a for z, a in zip(zeros, dstate))
    if dy is not None:
        if reverse:
            dy = reversed_in_time(dy, order, xp=xp)
        if lengths is not None:
            dy = xp.where(length_mask(lengths, t_steps, xp=xp), dy, xp.zeros_like(dy))
    if segment is None:
        d_end = d
        dgx, dgh, d = loop.backward(steps, dy, d, lengths)
        grads, dx = loop.gradients(dgx, dgh, x, h0, y, steps, need_dx=need_dx)
        grads = grads._replace(vectors=recurrence.vector_gradient(cell, w.vectors, dgx, steps, xp=xp))
        if w.w_hr is not None:
            grads = grads._replace(
                w_hr=projection_gradient(cell, w.w_hh, w.w_hr, dgx, dgh, steps, dy, d_end[0], lengths, xp=xp)
            )
    else:  # each segment's step caches again from its first state, last segment first
        grads = Weights(None, None, None, None)

        def gradients_of_x() -> Iterator[Array | None]:
            nonlocal grads, d
            for j in range(len(checkpoints) - 1, -1, -1):
                t0, t1 = j * segment, min((j + 1) * segment, t_steps)
                valid = within(lengths, t0, t1, xp=xp)
                _, _, steps = loop.forward(x[t0:t1, ...], checkpoints[j], valid, t0)
                dy_seg = None if dy is None else dy[t0:t1, ...]
                d_end = d
                dgx, dgh, d = loop.backward(steps, dy_seg, d, valid, t0)
                h_first = h0 if t0 == 0 else y[t0 - 1, ...]
                part, dx_seg = loop.gradients(
                    dgx, dgh, x[t0:t1, ...], h_first, y[t0:t1, ...], steps, need_dx=need_dx
                )
                if w.w_hr is not None:
                    dw_hr = projection_gradient(
                        cell, w.w_hh, w.w_hr, dgx, dgh, steps, dy_seg, d_end[0], valid, xp=xp
                    )
                    part = part._replace(w_hr=dw_hr)
                part = part._replace(vectors=recurrence.vector_gradient(cell, w.vectors, dgx, steps, xp=xp))
                grads = Weights(*(b if a is None else a + b for a, b in zip(grads, part)))
                del steps, dgx, dgh  # before the next segment's recomputation
                yield dx_seg

        if need_dx:
            dx = loop.ops.join(gradients_of_x(), t_steps, backwards=True)
        else:
            for _ in gradients_of_x():  # each segment's weight gradients, no dx to join
                pass
            dx = None
    if reverse and dx is not None:
        dx = reversed_in_time(dx, order, xp=xp)
    return dx, d, grads


#: Steps per segment of a forward pass that keeps nothing (inference): the memory of a
#: segment's projection and step caches, not of the whole sequence.
_INFERENCE_SEGMENT = 64


class _Loop:
    """One direction's weights prepared once, and what runs around an ``Ops`` loop."""

    def __init__(
        self, ops: Ops, cell: Cell, w: Weights, xp: ModuleType, zoneout: Masks | None = None
    ) -> None:
        self.ops, self.cell, self.w, self.xp, self.zoneout = ops, cell, w, xp, zoneout
        self._prepared: tuple[tuple[Array | None, Array | None], Array] | None = None

    def _prepare(self) -> tuple[tuple[Array | None, Array | None], Array]:
        """``(b_x, b_h)`` and ``W_hh^T`` (:func:`.prepare.prepare`), made on the first forward call."""
        if self._prepared is None:
            self._prepared = prepare(self.cell, self.w.w_hh, self.w.b_ih, self.w.b_hh, xp=self.xp)
        return self._prepared

    def forward(
        self, x: Array, state: State, lengths: Array | None, t0: int = 0
    ) -> tuple[Array, State, Sequence[Any]]:
        """The hoisted projection of ``x (T, N, I)`` (steps ``t0 ..``), then the ``Ops`` forward loop."""
        t_steps = x.shape[0]
        gx = self.ops.project(x, self.w.w_ih)  # (T, N, GH)
        biases, w_hh_t = self._prepare()
        given = self._given(t0, t_steps)
        return self.ops.forward(self.cell, gx, w_hh_t, biases, state, lengths, **given)

    def backward(
        self, steps: Sequence[Any], dy: Array | None, d: State, lengths: Array | None, t0: int = 0
    ) -> tuple[Array, Array | None, State]:
        """The ``Ops`` backward loop over the steps of :meth:`forward` (from ``t0``)."""
        given = self._given(t0, len(steps))
        return self.ops.backward(self.cell, steps, dy, d, self.w.w_hh, lengths, **given)

    def _given(self, t0: int, t_steps: int) -> dict[str, Any]:
        """``w_hr``, the cell's ``vectors``, the zoneout masks of steps ``t0 ..``: those there are."""
        given: dict[str, Any] = {} if self.w.w_hr is None else {"w_hr": self.w.w_hr}
        if self.w.vectors is not None:
            given["vectors"] = self.w.vectors
        if self.zoneout is not None:
            given["zoneout"] = tuple(None if m is None else m[t0 : t0 + t_steps, ...] for m in self.zoneout)
        return given

    def gradients(
        self,
        dgx: Array,
        dgh: Array | None,
        x: Array,
        h0: Array,
        y: Array,
        steps: Sequence[Any],
        *,
        need_dx: bool = True,
    ) -> tuple[Weights, Array | None]:
        """Weight gradients and ``dx`` of the steps of ``x (T, N, I)``, from the gate gradients.

        ``h0`` is the state before the first of these steps and ``y (T, N, H)`` their outputs,
        so step ``t`` started from ``y[t - 1]``; a cell's late blocks of ``W_hh`` read their
        input from the step caches ``steps`` instead (:func:`.recurrence.late_weight_gradient`).
        """
        xp, w = self.xp, self.w
        biases = (w.b_ih is not None, w.b_hh is not None)
        dw_ih, dw_hh, db_ih, db_hh, dx = self.ops.gradients(
            self.cell, dgx, dgh, x, h0, y, w.w_ih, biases=biases, need_dx=need_dx
        )
        if self.cell.late is not None:  # the late blocks multiplied m_t, not h_prev
            gh_width = w.w_hh.shape[0]
            split = gh_width - self.cell.late.gates * (gh_width // self.cell.n_gates)
            dg = xp.reshape(dgx[:, :, :gh_width] if dgh is None else dgh, (x.shape[0], x.shape[1], gh_width))
            late = recurrence.late_weight_gradient(self.cell, dg, steps, xp=xp)
            dw_hh = xp.concat([dw_hh[:split, ...], late], axis=0)
        return Weights(dw_ih, dw_hh, db_ih, db_hh), dx
