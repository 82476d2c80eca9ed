"""Sequences of their own lengths, in a direction's time order and in segments.

A sequence of length ``L < T`` is reversed within its first ``L`` steps, its padding left
in place, so that the reverse direction starts at each sequence's own last valid step.
:func:`to_loop_order` and :func:`from_loop_order` wrap a direction's loop in both the
training scan and the inference one; :func:`in_segments` runs a loop segment by segment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import ModuleType

from array_api_compat import device

from .._util.typing import Array, State

__all__ = [
    "from_loop_order",
    "in_segments",
    "length_mask",
    "reversal_order",
    "reversed_in_time",
    "to_loop_order",
    "within",
]


def length_mask(lengths: Array, t_steps: int, *, xp: ModuleType) -> Array:
    """``mask[t, n, 0]`` is True where step ``t`` is inside sequence ``n``: shape ``(T, N, 1)``."""
    steps = xp.arange(t_steps, dtype=lengths.dtype, device=device(lengths))
    return (steps[:, None] < lengths[None, :])[:, :, None]


def within(lengths: Array | None, t0: int, t1: int, *, xp: ModuleType) -> Array | None:
    """Each sequence's valid steps among steps ``t0..t1-1``, counted from ``t0``."""
    return None if lengths is None else xp.clip(lengths - t0, min=0, max=t1 - t0)


def reversal_order(lengths: Array, t_steps: int, n: int, *, xp: ModuleType) -> Array:
    """Flat gather index that reverses each sequence within its length, padding in place."""
    steps = xp.arange(t_steps, dtype=lengths.dtype, device=device(lengths))[:, None]  # (T, 1)
    source = xp.where(steps < lengths[None, :], lengths[None, :] - 1 - steps, steps)  # (T, N)
    batch = xp.arange(n, dtype=lengths.dtype, device=device(lengths))[None, :]
    return xp.reshape(source * n + batch, (t_steps * n,))


def reversed_in_time(a: Array, order: Array | None, *, xp: ModuleType) -> Array:
    """Time-reverse ``a (T, N, F)``: whole sequences, or each within its length."""
    if order is None:
        return xp.flip(a, axis=0)
    t_steps, n, f = a.shape
    flat = xp.take(xp.reshape(a, (t_steps * n, f)), order, axis=0)
    return xp.reshape(flat, (t_steps, n, f))


def to_loop_order(
    x: Array, lengths: Array | None, reverse: bool, *, xp: ModuleType
) -> tuple[Array, Array | None, Array | None]:
    """``x (T, N, I)`` as a direction's loop reads it, and what :func:`from_loop_order` needs.

    Zero past each length (padding may hold anything, NaN included: it never reaches a
    matmul) and, for the reverse direction, reversed within each length.

    Returns
    -------
    x : array, shape (T, N, I)
    mask : bool array, shape (T, N, 1), or None when every sequence is full
    order : integer array, shape (T*N,), or None
        The reversal within lengths (None: forward, or a whole-sequence flip).
    """
    t_steps, n = x.shape[0], x.shape[1]
    mask = None if lengths is None else length_mask(lengths, t_steps, xp=xp)
    if mask is not None:
        x = xp.where(mask, x, xp.zeros_like(x))
    order = None
    if reverse:
        order = None if lengths is None else reversal_order(lengths, t_steps, n, xp=xp)
        x = reversed_in_time(x, order, xp=xp)
    return x, mask, order


def from_loop_order(
    y: Array, mask: Array | None, order: Array | None, reverse: bool, *, xp: ModuleType
) -> Array:
    """A loop's ``y (T, N, H)`` back in time order, zero past each length (see :func:`to_loop_order`)."""
    if mask is not None:
        y = xp.where(mask, y, xp.zeros_like(y))
    return reversed_in_time(y, order, xp=xp) if reverse else y


def in_segments(
    run: Callable[[Array, State, Array | None, int], tuple[Array, State]],
    x: Array,
    state0: State,
    lengths: Array | None,
    size: int,
    *,
    join: Callable[..., Array],
    xp: ModuleType,
    starts: list[State] | None = None,
) -> tuple[Array, State]:
    """Run a loop over ``x (T, N, I)`` in segments of ``size`` steps, the state carried along.

    Parameters
    ----------
    run : callable
        ``run(x_seg, state, valid, t0) -> (y_seg, state)`` over the steps ``t0 ..`` of
        ``x_seg (S, N, I)``, ``valid`` their lengths within the segment.
    x : array, shape (T, N, I)
        The whole sequence.
    state0 : tuple of arrays, each (N, H)
        The state before step 0.
    lengths : integer array, shape (N,), or None
        Valid steps per sequence.
    size : int
        Steps per segment.
    join : callable
        ``join(parts, T)``: the segments' outputs as one array (:meth:`Ops.join`).
    xp : module
        Array namespace.
    starts : list, optional
        Gets the state each segment starts from (the checkpoints of a recomputing scan).

    Returns
    -------
    y : array, shape (T, N, H)
    state : tuple of arrays, each (N, H)
    """
    t_steps, state = x.shape[0], tuple(state0)

    def outputs() -> Iterator[Array]:
        nonlocal state
        for t0 in range(0, t_steps, size):
            t1 = min(t0 + size, t_steps)
            if starts is not None:
                starts.append(state)
            y_seg, state = run(x[t0:t1, ...], state, within(lengths, t0, t1, xp=xp), t0)
            # a backend's state may be a view into its segment's buffers: copy, so they can go
            state = tuple(xp.asarray(a, copy=True) for a in state)
            yield y_seg

    y = join(outputs(), t_steps)
    return y, state
