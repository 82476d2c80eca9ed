"""The backend seam: an :class:`Ops` runs one direction of one layer over a whole sequence.

:class:`Ops` itself is the generic implementation, the Python time loop (the architecture
page of the documentation, "The time loop") over a cell's ``step`` and ``step_backward``,
in the Array API alone (no output arguments, no buffers, nothing written into an array).
A backend subclasses it in its own package (:mod:`xrnn.backends`) and replaces whole
methods: Numba's compiled loop, CUDA kernels or a ``lax.scan``. It may keep its own
buffers and step-cache layout, as long as its ``steps`` are read by its own ``backward``
and index like a list of the cell's step caches, so that any backward takes any forward's
steps. Where a backend cannot run a case (another dtype, a cell it has no kernels for) it
calls the generic method with ``super()``.

The engine never chooses among them: :func:`xrnn.backends.ops_for` does, from the
namespace and the dtype, and the caller hands the result to :func:`~xrnn.engine.scan.scan`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from array_api_compat import device

from .._util.sums import sum_rows
from .._util.typing import Array, State
from ..cells import Cell
from . import recurrence
from .lengths import length_mask
from .zoneout import Masks, at, zone, zone_backward

__all__ = ["Ops", "length_mask"]


class Ops:
    """Generic whole-sequence loops over a cell, for one array namespace.

    Parameters
    ----------
    xp : module
        The array namespace of every array this object is given.

    Notes
    -----
    Shapes: ``T`` steps, ``N`` sequences, ``H`` hidden units, ``G`` gates, ``I`` inputs.
    ``lengths`` is an integer array ``(N,)`` of valid steps per sequence, or None when
    every sequence has ``T``; a row past its length carries its state (forward) and its
    gradient (backward) through unchanged, and its gate gradients are zero.

    Projection (the LSTM's ``proj_size = P``): :meth:`forward` and :meth:`backward` take a
    keyword-only ``w_hr`` of shape ``(P, H)``, given only when the layer has one (the
    engine never passes ``w_hr=None`` explicitly, so an ``Ops`` without projections needs
    no change). Then the state's ``h`` and ``y`` are ``(N, P)`` and ``(T, N, P)``:
    forward runs the cell's step as usual and carries ``h = h_cell @ w_hr^T`` (``h_cell``
    the step's own output, ``cell.output(cache_t)``), so ``W_hh`` is ``(G*H, P)``; backward
    gives the cell's step ``dh @ w_hr`` (``(N, H)``) in place of ``dh``, and returns
    ``dstate0`` with ``dh0`` of shape ``(N, P)``. The step caches stay the cell's own (the
    projection keeps nothing: the engine computes ``dW_hr`` after the loop, from
    ``cell.output`` of the steps and the gate gradients). That is all a backend must do
    to support ``proj_size``: one more matmul per step each way.

    A cell with a late matmul (``cell.late``, :class:`~xrnn.cells.base.LateMatmul`: the
    reset-before GRU) runs its step through :func:`xrnn.engine.recurrence.step` and
    :func:`~xrnn.engine.recurrence.step_backward`: a second matmul each way after the
    earlier gates. A backend without kernels for such a cell calls the generic method.
    """

    name = "generic"

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.xp.__name__})"

    def running(self, x: Array, work: int) -> contextlib.AbstractContextManager[Any]:
        """The context a whole layer call on ``x`` runs in: nothing here.

        The layers enter it around everything they do with this ``Ops`` in one call
        (every layer and direction, and the engine's work around the loops), so that a
        backend may set up, once per call, what its loops need of the process: the
        torch bridge gives the cores to its inner BLAS (:class:`~xrnn.backends.bridges.Bridge`).

        Parameters
        ----------
        x : array, shape (T, N, I)
            The call's input.
        work : int
            Multiply-adds of one step of the call's first layer, ``N * G*H * (I + H_out)``:
            a measure of the call's size.

        Returns
        -------
        context manager
        """
        return contextlib.nullcontext()

    def project(self, x: Array, w_ih: Array) -> Array:
        """The hoisted input projection ``x @ w_ih^T``, one matmul for all steps.

        Parameters
        ----------
        x : array, shape (T, N, I)
            Every step's input.
        w_ih : array, shape (G*H, I)
            Input-to-hidden weights.

        Returns
        -------
        array, shape (T, N, G*H)
            Pre-activations from the input, without bias.
        """
        xp = self.xp
        t_steps, n, n_in = x.shape
        flat = xp.reshape(x, (t_steps * n, n_in)) @ xp.matrix_transpose(w_ih)
        return xp.reshape(flat, (t_steps, n, w_ih.shape[0]))

    def gradients(
        self,
        cell: Cell,
        dgx: Array,
        dgh: Array | None,
        x: Array,
        h0: Array,
        y: Array,
        w_ih: Array,
        *,
        biases: tuple[bool, bool],
        need_dx: bool = True,
    ) -> tuple[Array, Array, Array | None, Array | None, Array | None]:
        """The weight gradients and ``dx`` of a run of steps, from their gate gradients.

        Everything the engine computes after a backward loop but the late blocks of
        ``W_hh`` (:func:`.recurrence.late_weight_gradient`): three products over all the
        steps at once and two sums. One method, so that a backend that runs the loops
        elsewhere runs these there too (a bridge: on its views, in one call).

        Parameters
        ----------
        cell : Cell
            The cell (a diagonal one has a vector ``W_hh``).
        dgx : array, shape (T, N, W)
            Gradients of the input pre-activations; the first ``G*H`` columns are the gates'
            (``W`` is wider by the cell's ``gradient_blocks``).
        dgh : array, shape (T, N, G*H), or None
            Gradients of the recurrent pre-activations; None when they are ``dgx``'s.
        x : array, shape (T, N, I)
            The input of these steps.
        h0 : array, shape (N, H or P)
            The state the first step started from.
        y : array, shape (T, N, H or P)
            The outputs of these steps (step ``t`` started from ``y[t - 1]``).
        w_ih : array, shape (G*H, I)
            Input-to-hidden weights.
        biases : tuple of bool
            Whether the layer has ``b_ih`` and ``b_hh``.
        need_dx : bool, default True
            False: ``dx`` is not computed (None), one product fewer.

        Returns
        -------
        dw_ih : array, shape (G*H, I)
        dw_hh : array, shape (G*H, H or P), or (G*H,) for a diagonal cell
        db_ih, db_hh : array, shape (G*H,), or None without that bias
        dx : array, shape (T, N, I), or None without ``need_dx``
        """
        xp = self.xp
        t_steps, n, n_in = x.shape
        width, hidden = w_ih.shape[0], h0.shape[1]
        gates = dgx if dgx.shape[2] == width else dgx[:, :, :width]  # Cell.gradient_blocks
        flat = xp.reshape(gates, (t_steps * n, width))
        flat_h = flat if dgh is None else xp.reshape(dgh, (t_steps * n, width))
        dw_ih = xp.matrix_transpose(flat) @ xp.reshape(x, (t_steps * n, n_in))
        # step 0 starts from h0 and step t from y[t-1], without concatenating h0 and y
        h_prev = None if t_steps == 1 else xp.reshape(y[:-1, ...], ((t_steps - 1) * n, hidden))
        dw_hh = recurrence.recurrent_weight_gradient(cell, flat_h, h0, h_prev, xp=xp)
        db_ih = sum_rows(flat, xp=xp) if biases[0] else None
        if not biases[1]:
            db_hh = None
        elif dgh is None and db_ih is not None:  # the same sum: copy it rather than redo a pass
            db_hh = xp.asarray(db_ih, copy=True)
        else:
            db_hh = sum_rows(flat_h, xp=xp)
        dx = xp.reshape(flat @ w_ih, (t_steps, n, n_in)) if need_dx else None
        return dw_ih, dw_hh, db_ih, db_hh, dx

    def join(self, parts: Iterable[Array], length: int, *, backwards: bool = False) -> Array:
        """Consecutive segments of a sequence, joined along time as they come.

        Parameters
        ----------
        parts : iterable of arrays, each (T_j, ...)
            The segments, in time order, or last first with ``backwards``; an iterator
            is consumed one segment at a time (a backend need not hold them all).
        length : int
            The sum of the ``T_j``.
        backwards : bool, default False
            The segments come last first.

        Returns
        -------
        array, shape (length, ...)
            The whole sequence.
        """
        got = list(parts)
        if backwards:
            got.reverse()
        return got[0] if len(got) == 1 else self.xp.concat(got, axis=0)

    def forward(
        self,
        cell: Cell,
        gx: Array,
        w_hh_t: Array,
        biases: tuple[Array | None, Array | None],
        state0: State,
        lengths: Array | None,
        *,
        w_hr: Array | None = None,
        vectors: Array | None = None,
        zoneout: Masks | None = None,
    ) -> tuple[Array, State, Sequence[Any]]:
        """Run ``cell`` forward over all ``T`` steps.

        Parameters
        ----------
        cell : Cell
            The cell.
        gx : array, shape (T, N, G*H)
            Input pre-activations without bias (from :meth:`project`).
        w_hh_t : array, shape (H, G*H), or (P, G*H) with ``w_hr``
            ``W_hh`` transposed (a row-major copy).
        biases : tuple (b_x, b_h) of arrays (G*H,) or None
            Biases added to ``gx`` and to ``h @ W_hh^T`` (already folded for ``cell.fold_bias``).
        state0 : tuple of arrays, each (N, H)
            Initial state, ``h`` first (``(N, P)`` with ``w_hr``).
        lengths : integer array, shape (N,), or None
            Valid steps per sequence.
        w_hr : array, shape (P, H), optional
            Projection weights (see the class Notes); keyword-only, given only when used.
        vectors : array, shape (V,), optional
            The cell's per-unit vectors (``cell.vectors``); keyword-only, given only to
            such cells.
        zoneout : sequence of arrays (T, N, H) or (T, 1, 1), or None, optional
            Zoneout masks, one per state part (None: that part is not zoned), in the
            loop's time order (:mod:`xrnn.engine.zoneout`); keyword-only, given only when
            used, never with ``w_hr``.

        Returns
        -------
        y : array, shape (T, N, H), or (T, N, P) with ``w_hr``
            ``h`` after each step; past a sequence's length, whatever the loop carried there
            (the caller zeroes those rows).
        state : tuple of arrays, each (N, H)
            Each sequence's state after its last valid step.
        steps : sequence of T step caches
            ``steps[t]`` is the cache ``cell.step`` returns at step ``t``.
        """
        xp = self.xp
        b_x, b_h = biases
        if b_x is not None:
            gx = gx + b_x  # hoisted: one pass for all steps
        mask = None if lengths is None else length_mask(lengths, gx.shape[0], xp=xp)
        w_hr_t = None if w_hr is None else xp.matrix_transpose(w_hr)  # (H, P)
        state, outputs, steps = tuple(state0), [], []
        for t in range(gx.shape[0]):
            new, cache_t = recurrence.step(cell, gx[t, ...], state, w_hh_t, b_h, xp=xp, vectors=vectors)
            if w_hr_t is not None:
                new = (new[0] @ w_hr_t, *new[1:])  # (N, P)
            if zoneout is not None:
                new = zone(at(zoneout, t), new, state, xp=xp)
            if mask is not None:
                new = tuple(xp.where(mask[t, ...], a, b) for a, b in zip(new, state))
            outputs.append(new[0])
            steps.append(cache_t)
            state = new
        return xp.stack(outputs), state, steps  # y (T, N, H)

    def infer(
        self,
        cell: Cell,
        gx: Array,
        w_hh_t: Array,
        biases: tuple[Array | None, Array | None],
        state0: State,
        lengths: Array | None,
        *,
        w_hr: Array | None = None,
        vectors: Array | None = None,
    ) -> tuple[Array, State]:
        """:meth:`forward` for inference: the same ``y`` and ``state``, and no step caches.

        Takes the arguments of :meth:`forward`. The generic loop keeps nothing beyond
        one call either way; a backend may run a loop that writes no step cache at all.

        Returns
        -------
        y : array, shape (T, N, H), or (T, N, P) with ``w_hr``
            As :meth:`forward`'s.
        state : tuple of arrays, each (N, H)
            As :meth:`forward`'s.
        """
        given = {} if w_hr is None else {"w_hr": w_hr}
        given = given if vectors is None else {**given, "vectors": vectors}
        y, state, _ = self.forward(cell, gx, w_hh_t, biases, state0, lengths, **given)
        return y, state

    def backward(
        self,
        cell: Cell,
        steps: Sequence[Any],
        dy: Array | None,
        dstate: State,
        w_hh: Array,
        lengths: Array | None,
        *,
        w_hr: Array | None = None,
        vectors: Array | None = None,
        zoneout: Masks | None = None,
    ) -> tuple[Array, Array | None, State]:
        """Backpropagate ``cell`` through all ``T`` steps, last to first.

        Parameters
        ----------
        cell : Cell
            The cell that ran forward.
        steps : sequence of T step caches
            From :meth:`forward` (of this or any other ``Ops``).
        dy : array, shape (T, N, H), or (T, N, P) with ``w_hr``, or None
            Gradient with respect to each step's ``h``, zero past each length (None: zero).
        dstate : tuple of arrays, each (N, H)
            Gradient with respect to the final state (``dh`` ``(N, P)`` with ``w_hr``).
        w_hh : array, shape (G*H, H), or (G*H, P) with ``w_hr``
            Hidden-to-hidden weights.
        lengths : integer array, shape (N,), or None
            Valid steps per sequence.
        w_hr : array, shape (P, H), optional
            Projection weights (see the class Notes); keyword-only, given only when used.
        vectors : array, shape (V,), optional
            The cell's per-unit vectors, as given to :meth:`forward`.
        zoneout : sequence of arrays (T, N, H) or (T, 1, 1), or None, optional
            The zoneout masks given to :meth:`forward`.

        Returns
        -------
        dgx : array, shape (T, N, G*H), or (T, N, (G + cell.gradient_blocks)*H)
            Gradients of the input pre-activations, then the cell's per-row values for
            its vectors' gradients where it has any (``Cell.gradient_blocks``).
        dgh : array, shape (T, N, G*H), or None
            Gradients of the recurrent pre-activations; None when equal to ``dgx``.
        dstate0 : tuple of arrays, each (N, H)
            Gradient with respect to the initial state.
        """
        xp = self.xp
        d = tuple(dstate)
        t_steps = len(steps)
        mask = None if lengths is None else length_mask(lengths, t_steps, xp=xp)
        # what the cell's step sees is (N, H) for every state, the projected h included
        zeros = xp.zeros(
            (d[0].shape[0], w_hh.shape[0] // cell.n_gates), dtype=d[0].dtype, device=device(d[0])
        )
        dgxs, dghs = [], []
        for t in range(t_steps - 1, -1, -1):
            ds = d if dy is None else (d[0] + dy[t, ...], *d[1:])
            ds_cell = ds if w_hr is None else (ds[0] @ w_hr, *ds[1:])  # dh of the cell's own h (N, H)
            if zoneout is not None:  # the step's share, and the previous state's own
                ds_cell, kept = zone_backward(at(zoneout, t), ds_cell, xp=xp)
            if mask is not None:
                ds_cell = tuple(xp.where(mask[t, ...], a, zeros) for a in ds_cell)
            dgx, dgh, d = recurrence.step_backward(cell, ds_cell, steps[t], w_hh, xp=xp, vectors=vectors)
            if zoneout is not None:
                d = tuple(a + b for a, b in zip(d, kept))
            if mask is not None:
                d = tuple(xp.where(mask[t, ...], a, b) for a, b in zip(d, ds))
            dgxs.append(dgx)
            if dgh is not None:
                dghs.append(dgh)
        return xp.stack(dgxs[::-1]), (xp.stack(dghs[::-1]) if dghs else None), d  # (T, N, GH)
