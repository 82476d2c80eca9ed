"""Zoneout on the state (Krueger et al. 2017), one step each way, written once for the array loops.

Each state part ``s`` (``h``, and the LSTM's ``c``) of a step is mixed with its value
before the step by a mask ``m`` of the step (haste's formulation)::

    s_t = m_t * s_{t-1} + (1 - m_t) * s_new          s_new: the cell's new state

In training ``m`` is drawn per step, row and unit (1 with probability ``p``: the unit
keeps its previous value); in evaluation it is ``p`` itself, the expectation. Backward,
with ``ds`` the gradient reaching ``s_t``: the cell's step gets ``(1 - m) * ds`` and the
previous state receives ``m * ds`` besides what the step gives it. The masks are the
loop's input (drawn by the layer, kept in its cache), so backward is exact; a part whose
mask is None is not zoned.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType

from .._util.typing import Array, State

__all__ = ["Masks", "at", "zone", "zone_backward"]

#: One mask per state part, each ``(T, N, H)`` (or ``(T, 1, 1)``, a constant per step), or None.
Masks = Sequence[Array | None]


def at(masks: Masks, t: int) -> tuple[Array | None, ...]:
    """The masks of step ``t``, each ``(N, H)`` or ``(1, 1)``, or None."""
    return tuple(None if m is None else m[t, ...] for m in masks)


def zone(masks_t: Sequence[Array | None], new: State, prev: State, *, xp: ModuleType) -> State:
    """``m * prev + (1 - m) * new`` for every part with a mask, ``new`` for the others."""
    return tuple(n if m is None else n + m * (p - n) for m, n, p in zip(masks_t, new, prev, strict=True))


def zone_backward(masks_t: Sequence[Array | None], ds: State, *, xp: ModuleType) -> tuple[State, State]:
    """``((1 - m) * ds, m * ds)``: what the cell's step gets, and what goes straight to the previous state.

    A part without a mask gives ``(ds, 0)`` (its second entry a zero array).
    """
    to_step = tuple(d if m is None else d - m * d for m, d in zip(masks_t, ds, strict=True))
    direct = tuple(xp.zeros_like(d) if m is None else m * d for m, d in zip(masks_t, ds, strict=True))
    return to_step, direct
