"""How the compiled backends keep a defined cell's step caches (:func:`xrnn.cells.define`).

A defined cell's step keeps its inputs: the ``A`` gate arguments (each gate's
pre-activation, or its input and recurrent parts apart for a gate in ``separate``) and
the previous state. The compiled loops of Numba (:mod:`.numba.defined_loops`) and CUDA
(:mod:`.cuda.defined_loops`) keep them in the buffers of every compiled cell: ``h`` in
``y[t]``, the gate arguments in ``kept[t, :A]`` and, for a cell of two state parts, the
second part after the step in ``kept[t, A]``; so the state before step ``t > 0`` is
``y[t - 1]`` (and ``kept[t - 1, A]``), and before step 0 the initial state, ``first``.
:class:`DefinedSteps` shows those buffers as the cell's own step caches ``(*arguments,
*previous_state)``, and :func:`buffers` lays out any list of such caches in them. Written
in the Array API alone.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from .._util.typing import Array
from ..cells.definition import DefinedCell
from .layout import Layout, Steps

__all__ = ["DefinedSteps", "arguments", "buffers", "defined_layout"]


def arguments(cell: DefinedCell) -> int:
    """``A``, the number of gate arguments of ``cell``'s step (a separate gate counts twice)."""
    return len(cell.inputs) - cell.n_states


@functools.cache
def defined_layout(cell: DefinedCell) -> Layout:
    """The step-cache layout of ``cell``'s compiled loops (see the module docstring).

    Parameters
    ----------
    cell : DefinedCell
        A cell made by :func:`xrnn.cells.define`.

    Returns
    -------
    Layout
        ``kept`` is ``A`` (+1 with a second state part, at ``c_slot = A``); ``grads`` is 2
        when some gate is separate (``dgh`` differs from ``dgx``). Its ``record`` takes
        ``first``, the tuple of initial state parts.
    """
    a = arguments(cell)
    two = cell.n_states == 2

    def record(y: Array, kept: Array, first: Any, t: int) -> tuple[Array, ...]:
        args = tuple(kept[t, q, ...] for q in range(a))
        if t == 0:
            return (*args, *first)
        return (*args, y[t - 1, ...], kept[t - 1, a, ...]) if two else (*args, y[t - 1, ...])

    return Layout(a + 1 if two else a, a if two else None, 2 if cell.separate else 1, record)


class DefinedSteps(Steps):
    """The step caches of a defined cell's compiled forward (see :class:`~xrnn.backends.layout.Steps`).

    ``first`` is the tuple of initial state parts, each ``(N, H)``.
    """


def buffers(cell: DefinedCell, steps: Sequence[Any], *, xp: ModuleType) -> tuple[Array, Array, Any]:
    """``(y, kept, first)`` as :class:`DefinedSteps` holds them, for any list of ``cell``'s step caches.

    Parameters
    ----------
    cell : DefinedCell
        The cell that ran forward.
    steps : sequence of T step caches
        A compiled forward's :class:`DefinedSteps` (its own buffers are returned), or the
        caches of the generic loop, ``(*arguments, *previous_state)`` each ``(N, H)``.
    xp : module
        Namespace of the arrays.

    Returns
    -------
    y : array, shape (T, N, H)
        ``y[t]`` the state before step ``t + 1`` (the last one is never read: zeros).
    kept : array, shape (T, K, N, H)
        The gate arguments and the second state part (see the module docstring).
    first : tuple of arrays, each (N, H)
        The state before step 0.
    """
    layout = defined_layout(cell)
    if isinstance(steps, DefinedSteps) and steps.layout is layout:
        return steps.y, steps.kept, steps.first
    a, first = arguments(cell), tuple(steps[0][arguments(cell) :])
    zeros = xp.zeros_like(first[0])
    later = [tuple(step[a:]) for step in steps[1:]] + [tuple(zeros for _ in first)]  # state after step t
    y = xp.stack([after[0] for after in later])
    kept = xp.stack([xp.stack([*step[:a], *after[1:]]) for step, after in zip(steps, later)])
    return y, kept, first
