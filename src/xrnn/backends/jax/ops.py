"""The JAX backend's :class:`~xrnn.engine.ops.Ops`: each whole sequence one ``lax.scan``.

The generic loop runs on JAX arrays too, but eagerly, one dispatched operation at a time
(a dozen per step), and under ``jax.jit`` it unrolls ``T`` copies of the step into the
program. Here the time loop is :func:`jax.lax.scan` over the cell's own ``step`` (forward)
and ``step_backward`` (backward), each in a :func:`jax.jit` keyed by the cell, so an eager
call compiles once per cell and shape, and a jitted program holds one loop per direction
whatever ``T`` is.

The scan builds its outputs functionally: ``y``, the step caches (the cell's own
``NamedTuple`` with a leading ``T`` axis, :class:`StackedSteps`) and the gate gradients are
the scan's stacked outputs, nothing is written into an array.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax

from ..._util.typing import Array, State
from ..._util.validation import check_shape
from ...cells import Cell
from ...engine import recurrence
from ...engine.ops import Ops, length_mask
from ...engine.zoneout import Masks, zone, zone_backward

__all__ = ["JaxOps", "StackedSteps"]


@jax.tree_util.register_pytree_node_class
class StackedSteps(Sequence[Any]):
    """Every step's cache as one pytree of arrays with a leading time axis.

    Indexing gives step ``t``'s cache as the cell's ``step`` returns it (any ``Ops``'s
    backward reads it so), and :meth:`JaxOps.backward` scans over the stacked arrays.

    Parameters
    ----------
    stacked : pytree of arrays, each (T, N, H)
        The cell's step cache with every leaf stacked over the ``T`` steps.
    length : int
        ``T``.
    """

    def __init__(self, stacked: Any, length: int) -> None:
        self.stacked, self.length = stacked, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, t: Any) -> Any:
        if isinstance(t, slice):
            return [self[j] for j in range(*t.indices(self.length))]
        if not -self.length <= t < self.length:
            raise IndexError(f"step {t} of a sequence of {self.length} steps")
        return jax.tree_util.tree_map(lambda a: a[t], self.stacked)

    def tree_flatten(self) -> tuple[tuple[Any], int]:
        """The stacked arrays as children, ``T`` as static data (a pytree for ``jax.jit``)."""
        return (self.stacked,), self.length

    @classmethod
    def tree_unflatten(cls, length: int, children: tuple[Any]) -> StackedSteps:
        """Rebuild from :meth:`tree_flatten`'s parts."""
        return cls(children[0], length)


class JaxOps(Ops):
    """Whole sequences of JAX arrays as one ``lax.scan`` per direction (see the module).

    Parameters
    ----------
    xp : module
        The JAX namespace (``jax.numpy``).
    """

    name = "jax"

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
        """Run ``cell`` forward over all steps (see :meth:`Ops.forward`)."""
        t_steps, n, width = gx.shape
        hidden = w_hh_t.shape[0] if w_hr is None else w_hr.shape[1]
        out = w_hh_t.shape[0]  # H, or P with a projection
        fits = f"for hidden size {hidden}"  # before tracing: a clear error, not one from inside lax
        square = (out, cell.n_gates * hidden)
        check_shape("W_hh", w_hh_t, square[1:] if cell.diagonal else square, fits)  # IndRNN: u (H,)
        check_shape("gx", gx, (t_steps, n, cell.n_gates * hidden), fits)
        for name, b in zip(("b_x", "b_h"), biases):
            if b is not None:
                check_shape(name, b, (width,), fits)
        for j, s in enumerate(state0):
            check_shape(f"state[{j}]", s, (n, out if j == 0 else hidden), fits)
        mask = None if lengths is None else length_mask(lengths, t_steps, xp=self.xp)
        masks = None if zoneout is None else tuple(zoneout)
        y, state, stacked = _forward(cell, gx, w_hh_t, biases, tuple(state0), mask, w_hr, vectors, masks)
        return y, state, StackedSteps(stacked, t_steps)

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
        """Backpropagate ``cell`` through all steps (see :meth:`Ops.backward`).

        ``steps`` may come from any ``Ops``: a list of step caches is stacked first.
        """
        t_steps = len(steps)
        n, out = dstate[0].shape  # H, or P with a projection
        hidden = out if w_hr is None else w_hr.shape[1]
        fits = f"for hidden size {hidden}"
        check_shape("W_hh", w_hh, (cell.n_gates * hidden,) + (() if cell.diagonal else (out,)), fits)
        for j, d in enumerate(dstate):
            check_shape(f"dstate[{j}]", d, (n, out if j == 0 else hidden), fits)
        if dy is not None:
            check_shape("dy", dy, (t_steps, n, out), fits)
        if isinstance(steps, StackedSteps):
            stacked = steps.stacked
        else:
            stacked = jax.tree_util.tree_map(lambda *a: self.xp.stack(a), *steps)
        mask = None if lengths is None else length_mask(lengths, t_steps, xp=self.xp)
        masks = None if zoneout is None else tuple(zoneout)
        return _backward(cell, stacked, dy, tuple(dstate), w_hh, mask, w_hr, vectors, masks)


@functools.partial(jax.jit, static_argnums=0)
def _forward(
    cell: Cell,
    gx: Array,
    w_hh_t: Array,
    biases: Any,
    state0: State,
    mask: Array | None,
    w_hr: Array | None,
    vectors: Array | None = None,
    zoneout: Any = None,
) -> tuple[Array, State, Any]:
    """``lax.scan`` of the generic forward step: ``y (T, N, H or P)``, final state, stacked caches."""
    xp = jax.numpy
    b_x, b_h = biases
    if b_x is not None:
        gx = gx + b_x  # hoisted: one pass for all steps

    def step(state: State, inputs: tuple[Array, Array | None, Any]) -> tuple[State, tuple[Array, Any]]:
        gx_t, inside, masks_t = inputs
        new, cache_t = recurrence.step(cell, gx_t, state, w_hh_t, b_h, xp=xp, vectors=vectors)
        if w_hr is not None:  # the projected h (N, P) is what is carried and output
            new = (new[0] @ xp.matrix_transpose(w_hr), *new[1:])
        if masks_t is not None:
            new = zone(masks_t, new, state, xp=xp)
        if inside is not None:  # rows past their length keep their state
            new = tuple(xp.where(inside, a, b) for a, b in zip(new, state))
        return new, (new[0], cache_t)

    state, (y, stacked) = jax.lax.scan(step, state0, (gx, mask, zoneout))
    return y, state, stacked


@functools.partial(jax.jit, static_argnums=0)
def _backward(
    cell: Cell,
    stacked: Any,
    dy: Array | None,
    dstate: State,
    w_hh: Array,
    mask: Array | None,
    w_hr: Array | None,
    vectors: Array | None = None,
    zoneout: Any = None,
) -> tuple[Array, Array | None, State]:
    """``lax.scan`` of the generic backward step, last step first: ``dgx``, ``dgh``, ``dstate0``."""
    xp = jax.numpy

    def step(d: State, inputs: tuple[Array | None, Array | None, Any, Any]) -> tuple[State, Any]:
        dy_t, inside, cache_t, masks_t = inputs
        ds = d if dy_t is None else (d[0] + dy_t, *d[1:])
        ds_cell = ds if w_hr is None else (ds[0] @ w_hr, *ds[1:])  # dh of the cell's own h (N, H)
        if masks_t is not None:  # the step's share, and the previous state's own
            ds_cell, kept = zone_backward(masks_t, ds_cell, xp=xp)
        if inside is not None:
            ds_cell = tuple(xp.where(inside, a, xp.zeros_like(a)) for a in ds_cell)
        dgx, dgh, new = recurrence.step_backward(cell, ds_cell, cache_t, w_hh, xp=xp, vectors=vectors)
        if masks_t is not None:
            new = tuple(a + b for a, b in zip(new, kept))
        if inside is not None:  # ... and carry their gradient through unchanged
            new = tuple(xp.where(inside, a, b) for a, b in zip(new, ds))
        return new, (dgx, dgh)

    d0, (dgx, dgh) = jax.lax.scan(step, dstate, (dy, mask, stacked, zoneout), reverse=True)
    return dgx, dgh, d0
